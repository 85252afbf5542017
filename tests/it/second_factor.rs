//! The second factor (TOTP, RFC 6238): enrolling, logging in with a code or a recovery
//! code, the throttle, the CEO's register, REQUIRE_SECOND_FACTOR, removing, resetting.

use gdpr_register::users::Role;
use reqwest::StatusCode;

use crate::support::{PASSWORD, TestApp, location, texts, totp_code};

/// A browser that has given the right password of `email`, and is asked for the code.
async fn halfway(app: &TestApp, email: &str) -> reqwest::Client {
    let client = app.new_browser();
    let r = app.login_as(&client, email).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), "/login/code");
    client
}

async fn send_code(app: &TestApp, client: &reqwest::Client, code: &str) -> reqwest::Response {
    app.post_form_as(client, "/login/code", &[("code", code)])
        .await
}

/// A signed-in employee with a second factor; returns the browser and its secret.
async fn enrolled(app: &TestApp, email: &str) -> (reqwest::Client, crate::support::SecondFactor) {
    app.create_user(email, Role::Employee).await;
    let client = app.new_browser();
    app.login_as(&client, email).await;
    let factor = app.enrol_second_factor(&client).await;
    (client, factor)
}

#[tokio::test]
async fn enrolling_shows_a_qr_code_and_the_secret_and_takes_a_first_code() {
    let app = TestApp::spawn().await;
    let client = app.signed_in(Role::Employee).await;

    let page = app
        .get_as(&client, "/account/second-factor")
        .await
        .text()
        .await
        .unwrap();
    let doc = scraper::Html::parse_document(&page);
    let qr = doc
        .select(&scraper::Selector::parse("img.qr").unwrap())
        .next()
        .expect("a QR code");
    assert!(
        qr.value()
            .attr("src")
            .unwrap()
            .starts_with("data:image/svg+xml;base64,"),
        "drawn here, not fetched from another host"
    );
    assert!(!qr.value().attr("alt").unwrap_or("").is_empty());
    let secret = texts(&page, "code#totp-secret").remove(0);
    let reloaded = app
        .get_as(&client, "/account/second-factor")
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(
        texts(&reloaded, "code#totp-secret"),
        std::slice::from_ref(&secret),
        "the secret already scanned"
    );

    let wrong = app
        .post_form_as(&client, "/account/second-factor", &[("code", "000000")])
        .await;
    assert_eq!(wrong.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let right = app
        .post_form_as(
            &client,
            "/account/second-factor",
            &[("code", &totp_code(&secret, 0))],
        )
        .await;

    assert_eq!(right.status(), StatusCode::OK);
    let codes = texts(&right.text().await.unwrap(), "#recovery-codes code");
    assert_eq!(codes.len(), 10);
    let after = app
        .get_as(&client, "/account/second-factor")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        texts(&after, "#recovery-codes code").is_empty(),
        "shown once"
    );
    assert!(texts(&after, "code#totp-secret").is_empty());
    assert_eq!(texts(&after, "#factor-status").len(), 1);
    let added: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE action = 'user.second_factor_added'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(added, 1);
}

#[tokio::test]
async fn the_secret_is_kept_encrypted() {
    let app = TestApp::spawn().await;
    let (_, factor) = enrolled(&app, "anna@btb.test").await;
    let raw = totp_rs::Secret::Encoded(factor.secret.clone())
        .to_bytes()
        .unwrap();

    let stored: String = sqlx::query_scalar(
        "SELECT coalesce(string_agg(encode(secret, 'hex'), ' '), '') FROM second_factors",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    let sessions: String = sqlx::query_scalar(
        "SELECT coalesce(string_agg(encode(data, 'escape'), ' '), '') FROM tower_sessions.session",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();

    assert!(!stored.is_empty());
    assert!(!stored.contains(&hex::encode(&raw)));
    for (place, text) in [("second_factors", &stored), ("sessions", &sessions)] {
        assert!(!text.contains(&factor.secret), "{place}");
        assert!(
            !text.to_lowercase().contains(&factor.secret.to_lowercase()),
            "{place}"
        );
    }
    let codes: String = sqlx::query_scalar(
        "SELECT string_agg(encode(code_hash, 'escape'), ' ') FROM recovery_codes",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    for code in &factor.recovery_codes {
        assert!(!codes.contains(code.as_str()));
    }
}

#[tokio::test]
async fn after_the_password_an_enrolled_user_is_asked_for_a_code_that_works_once() {
    let app = TestApp::spawn().await;
    let (_, factor) = enrolled(&app, "anna@btb.test").await;

    let client = halfway(&app, "anna@btb.test").await;
    let not_yet = app.get_as(&client, "/").await;
    assert_eq!(location(&not_yet), "/login?next=%2F", "not signed in yet");
    let page = app
        .get_as(&client, "/login/code")
        .await
        .text()
        .await
        .unwrap();
    let doc = scraper::Html::parse_document(&page);
    let inputs: Vec<_> = doc
        .select(&scraper::Selector::parse("main form input:not([type=hidden])").unwrap())
        .collect();
    assert_eq!(inputs.len(), 1, "one field");
    assert_eq!(inputs[0].value().attr("name"), Some("code"));
    assert_eq!(
        inputs[0].value().attr("autocomplete"),
        Some("one-time-code")
    );
    assert_eq!(inputs[0].value().attr("inputmode"), Some("numeric"));

    let code = totp_code(&factor.secret, 1);
    let signed_in = send_code(&app, &client, &code).await;
    assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&signed_in), "/");
    assert_eq!(app.get_as(&client, "/").await.status(), StatusCode::OK);

    let again = halfway(&app, "anna@btb.test").await;
    let replayed = send_code(&app, &again, &code).await;
    assert_eq!(
        replayed.status(),
        StatusCode::UNAUTHORIZED,
        "a code works once"
    );
    assert_eq!(
        texts(&replayed.text().await.unwrap(), "#code-error").len(),
        1
    );
}

#[tokio::test]
async fn a_recovery_code_works_in_place_of_the_code_once() {
    let app = TestApp::spawn().await;
    let (_, factor) = enrolled(&app, "anna@btb.test").await;
    let recovery = factor.recovery_codes[3].to_uppercase();

    let first = halfway(&app, "anna@btb.test").await;
    let used = send_code(&app, &first, &recovery).await;
    let second = halfway(&app, "anna@btb.test").await;
    let reused = send_code(&app, &second, &recovery).await;

    assert_eq!(used.status(), StatusCode::SEE_OTHER);
    assert_eq!(app.get_as(&first, "/").await.status(), StatusCode::OK);
    assert_eq!(reused.status(), StatusCode::UNAUTHORIZED);
    let audited: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE action = 'user.recovery_code_used'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(audited, 1);
}

/// Password and codes share the throttle: the right password leaves its attempt counted
/// until the code is right, so a known password does not buy endless guesses.
#[tokio::test]
async fn wrong_codes_count_towards_the_login_throttle() {
    let app = TestApp::spawn().await;
    let (_, factor) = enrolled(&app, "anna@btb.test").await;
    let client = halfway(&app, "anna@btb.test").await;
    for _ in 0..4 {
        let r = send_code(&app, &client, "000000").await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }

    let right = send_code(&app, &client, &totp_code(&factor.secret, 1)).await;
    let password = app.login_as(&app.new_browser(), "anna@btb.test").await;

    assert_eq!(right.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(password.status(), StatusCode::TOO_MANY_REQUESTS);
    let logged: Vec<(String, Option<i64>)> = sqlx::query_as(
        "SELECT action, count FROM audit_log WHERE action LIKE 'login.%' ORDER BY id",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    let failure = ("login.failure".to_string(), None);
    let lockout = ("login.lockout".to_string(), Some(5));
    // The enrolment's own login, then four wrong codes, the last starting the lock-out.
    let success = ("login.success".to_string(), None);
    assert_eq!(
        logged,
        [vec![success], vec![failure; 4], vec![lockout]].concat()
    );
}

/// R-PERS-3: the personnel register opens to the CEO only, and only with a second factor.
#[tokio::test]
async fn the_ceo_is_sent_to_enrol_before_the_personnel_register_opens() {
    let app = TestApp::spawn().await;
    let ceo = app.signed_in(Role::Ceo).await;
    let admin = app.signed_in(Role::Admin).await;
    app.enrol_second_factor(&admin).await;

    let before = app.get_as(&ceo, "/personnel").await;
    assert_eq!(before.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&before), "/account/second-factor");
    app.enrol_second_factor(&ceo).await;
    let after = app.get_as(&ceo, "/personnel").await;

    assert_eq!(after.status(), StatusCode::OK);
    assert_eq!(
        app.get_as(&admin, "/personnel").await.status(),
        StatusCode::NOT_FOUND,
        "no other role, with or without a factor: to them it is not there"
    );
}

#[tokio::test]
async fn require_second_factor_sends_an_administrator_to_enrol_before_anything_else() {
    let app = TestApp::spawn_with(|c| c.require_second_factor = vec![Role::Admin]).await;
    let admin = app.signed_in(Role::Admin).await;
    let employee = app.signed_in(Role::Employee).await;

    for path in ["/", "/users", "/account", "/customers"] {
        let r = app.get_as(&admin, path).await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "{path}");
        assert_eq!(location(&r), "/account/second-factor", "{path}");
    }
    let enrol_page = app
        .get_as(&admin, "/account/second-factor")
        .await
        .text()
        .await
        .unwrap();
    assert!(texts(&enrol_page, "header nav a").is_empty());
    let lang = app
        .post_form_as(&admin, "/lang", &[("lang", "en"), ("back", "/")])
        .await;
    assert_eq!(lang.status(), StatusCode::SEE_OTHER);
    assert_eq!(app.get_as(&employee, "/").await.status(), StatusCode::OK);

    app.enrol_second_factor(&admin).await;

    assert_eq!(app.get_as(&admin, "/users").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_bad_require_second_factor_setting_is_refused_with_a_reason() {
    let app = TestApp::spawn().await;
    let out = app
        .cli()
        .env("REQUIRE_SECOND_FACTOR", "admin,boss")
        .arg("migrate")
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("REQUIRE_SECOND_FACTOR") && err.contains("boss"),
        "{err}"
    );
}

#[tokio::test]
async fn removing_the_second_factor_needs_the_password_and_a_code_and_is_audited() {
    let app = TestApp::spawn().await;
    let (client, factor) = enrolled(&app, "anna@btb.test").await;
    let code = totp_code(&factor.secret, 1);

    let no_password = app
        .post_form_as(
            &client,
            "/account/second-factor/remove",
            &[("password", "not the password"), ("code", &code)],
        )
        .await;
    let no_code = app
        .post_form_as(
            &client,
            "/account/second-factor/remove",
            &[("password", PASSWORD), ("code", "000000")],
        )
        .await;
    assert_eq!(no_password.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(no_code.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let removed = app
        .post_form_as(
            &client,
            "/account/second-factor/remove",
            &[("password", PASSWORD), ("code", &code)],
        )
        .await;

    assert_eq!(removed.status(), StatusCode::SEE_OTHER);
    assert_eq!(app.get_as(&client, "/").await.status(), StatusCode::OK);
    let audited: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE action = 'user.second_factor_removed'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(audited, 1);
    let login = app.login_as(&app.new_browser(), "anna@btb.test").await;
    assert_eq!(location(&login), "/", "no code asked any more");
}

/// A lost phone: the command on the server removes the factor; the password logs in.
#[tokio::test]
async fn user_reset_second_factor_on_the_server_lets_the_owner_in_with_the_password() {
    let app = TestApp::spawn().await;
    let (client, _) = enrolled(&app, "anna@btb.test").await;

    let out = app
        .cli()
        .args(["user", "reset-second-factor", "--email", "anna@btb.test"])
        .output()
        .await
        .unwrap();

    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        location(&app.get_as(&client, "/").await),
        "/login?next=%2F",
        "the session that used the factor has ended"
    );
    let login = app.login_as(&app.new_browser(), "anna@btb.test").await;
    assert_eq!(location(&login), "/");
    let audited: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT action, actor_id FROM audit_log WHERE action = 'user.second_factor_removed'",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(audited.len(), 1);
}
