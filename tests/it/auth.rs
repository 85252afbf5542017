use std::time::Duration;

use gdpr_register::users::Role;
use reqwest::StatusCode;

use crate::support::{PASSWORD, TestApp, location, texts};

/// A wrong password for `email`, from the test client's address.
async fn fail_login(app: &TestApp, email: &str) {
    let r = app
        .post_form(
            "/login",
            &[("email", email), ("password", "wrong wrong wrong")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

fn session_cookie(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("gdpr_session="))
        .map(|v| v.split(';').next().unwrap().to_string())
}

/// R-CUST-14: personal logins.
#[tokio::test]
async fn staff_log_in_with_a_new_session_id_and_land_on_the_dashboard() {
    let app = TestApp::spawn().await;
    app.create_user("anna@btb.test", Role::Employee).await;
    let first = app.login_as(&app.client, "anna@btb.test").await;
    let first_cookie = session_cookie(&first).expect("login sets the session cookie");

    let response = app.login_as(&app.client, "ANNA@btb.test").await;

    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/");
    let renewed = session_cookie(&response).expect("login sets the session cookie");
    assert_ne!(renewed, first_cookie, "the session id is renewed at login");
    let cookie = response
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    let home = app.get("/").await.text().await.unwrap();
    assert!(home.contains("Test employee"), "{home}");
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_address_get_the_same_answer() {
    let app = TestApp::spawn().await;
    app.create_user("anna@btb.test", Role::Employee).await;

    let wrong_password = app
        .post_form(
            "/login",
            &[("email", "anna@btb.test"), ("password", "not the password")],
        )
        .await;
    let status_a = wrong_password.status();
    let page_a = wrong_password.text().await.unwrap();
    let unknown = app
        .post_form(
            "/login",
            &[("email", "nobody@btb.test"), ("password", PASSWORD)],
        )
        .await;
    let status_b = unknown.status();
    let page_b = unknown.text().await.unwrap();

    assert_eq!(status_a, StatusCode::UNAUTHORIZED);
    assert_eq!(status_b, StatusCode::UNAUTHORIZED);
    let message = |page: &str| texts(page, "#login-error");
    assert_eq!(message(&page_a), message(&page_b));
    assert_eq!(
        message(&page_a),
        ["E-postadressen eller lösenordet är fel."]
    );
    // What was typed stays in the form; the password never comes back.
    assert!(page_a.contains(r#"value="anna@btb.test""#));
    assert!(!page_a.contains("not the password"));
}

/// Each guess from another address, so that only the account's count can stop them.
#[tokio::test]
async fn five_failures_on_an_account_refuse_even_the_right_password() {
    let app = TestApp::spawn_with(|c| c.trust_proxy = true).await;
    app.create_user("anna@btb.test", Role::Employee).await;
    for i in 0..5 {
        let from = format!("203.0.113.{i}");
        let r = login_via_proxy(&app, &from, "anna@btb.test", "wrong wrong wrong").await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }

    let right = login_via_proxy(&app, "203.0.113.99", "anna@btb.test", PASSWORD).await;

    assert_eq!(right.status(), StatusCode::TOO_MANY_REQUESTS);
    let page = right.text().await.unwrap();
    assert!(page.contains("För många misslyckade försök"), "{page}");
    let logged: Vec<(String, Option<i64>)> = sqlx::query_as(
        "SELECT action, count FROM audit_log WHERE action LIKE 'login.%' ORDER BY id",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    let failure = ("login.failure".to_string(), None);
    let lockout = ("login.lockout".to_string(), Some(5));
    assert_eq!(logged, [vec![failure; 5], vec![lockout]].concat());
}

#[tokio::test]
async fn five_failures_from_one_address_refuse_other_accounts_too() {
    let app = TestApp::spawn().await;
    app.create_user("anna@btb.test", Role::Employee).await;
    for i in 0..5 {
        let email = format!("guess{i}@btb.test");
        fail_login(&app, &email).await;
    }

    let right = app.login_as(&app.client, "anna@btb.test").await;

    assert_eq!(right.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn four_failures_then_the_right_password_still_logs_in() {
    let app = TestApp::spawn().await;
    app.create_user("anna@btb.test", Role::Employee).await;
    for _ in 0..4 {
        fail_login(&app, "anna@btb.test").await;
    }
    let right = app.login_as(&app.client, "anna@btb.test").await;
    assert_eq!(right.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn a_post_without_a_valid_csrf_token_is_refused() {
    let app = TestApp::spawn().await;
    app.create_user("anna@btb.test", Role::Employee).await;
    app.get("/login").await;

    let without = app
        .client
        .post(app.url("/login"))
        .form(&[("email", "anna@btb.test"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    let forged = app
        .client
        .post(app.url("/login"))
        .form(&[
            ("email", "anna@btb.test"),
            ("password", PASSWORD),
            ("csrf_token", "forged"),
        ])
        .send()
        .await
        .unwrap();
    let no_session = app
        .new_browser()
        .post(app.url("/login"))
        .form(&[
            ("email", "anna@btb.test"),
            ("password", PASSWORD),
            ("csrf_token", "x"),
        ])
        .send()
        .await
        .unwrap();

    assert_eq!(without.status(), StatusCode::FORBIDDEN);
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    assert_eq!(no_session.status(), StatusCode::FORBIDDEN);
    assert!(
        forged
            .text()
            .await
            .unwrap()
            .contains("Formuläret hade gått ut")
    );
    let logins: i64 =
        sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE action LIKE 'login.%'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(logins, 0, "nothing was attempted");
}

#[tokio::test]
async fn logging_out_ends_the_session() {
    let app = TestApp::spawn().await;
    let client = app.signed_in(Role::Employee).await;
    assert_eq!(app.get_as(&client, "/").await.status(), StatusCode::OK);

    let out = app.post_form_as(&client, "/logout", &[]).await;

    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    let after = app.get_as(&client, "/").await;
    assert_eq!(after.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&after), "/login?next=%2F");
}

#[tokio::test]
async fn changing_the_password_logs_out_other_sessions_but_not_this_one() {
    let app = TestApp::spawn().await;
    app.create_user("anna@btb.test", Role::Employee).await;
    let laptop = app.new_browser();
    let phone = app.new_browser();
    for device in [&laptop, &phone] {
        assert_eq!(
            app.login_as(device, "anna@btb.test").await.status(),
            StatusCode::SEE_OTHER
        );
    }

    let changed = app
        .post_form_as(
            &laptop,
            "/account/password",
            &[
                ("current", PASSWORD),
                ("new", "a brand new passphrase"),
                ("repeat", "a brand new passphrase"),
            ],
        )
        .await;

    assert_eq!(changed.status(), StatusCode::SEE_OTHER);
    assert_eq!(app.get_as(&laptop, "/").await.status(), StatusCode::OK);
    assert_eq!(
        app.get_as(&phone, "/").await.status(),
        StatusCode::SEE_OTHER
    );
    let old = app.login_as(&app.new_browser(), "anna@btb.test").await;
    assert_eq!(old.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_short_or_mistyped_new_password_is_refused_with_a_reason() {
    let app = TestApp::spawn().await;
    let client = app.signed_in(Role::Employee).await;
    for (new, repeat, reason) in [
        ("too short", "too short", "minst 12 tecken"),
        ("long enough password", "long enough passwort", "inte lika"),
    ] {
        let r = app
            .post_form_as(
                &client,
                "/account/password",
                &[("current", PASSWORD), ("new", new), ("repeat", repeat)],
            )
            .await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert!(r.text().await.unwrap().contains(reason), "{reason}");
    }
    let wrong_current = app
        .post_form_as(
            &client,
            "/account/password",
            &[
                ("current", "not it at all"),
                ("new", "long enough password"),
                ("repeat", "long enough password"),
            ],
        )
        .await;
    assert_eq!(wrong_current.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn a_disabled_account_loses_its_session_and_cannot_log_in() {
    let app = TestApp::spawn().await;
    let id = app.create_user("anna@btb.test", Role::Employee).await;
    let client = app.new_browser();
    assert_eq!(
        app.login_as(&client, "anna@btb.test").await.status(),
        StatusCode::SEE_OTHER
    );

    let admin = app.signed_in(Role::Admin).await;
    let r = app
        .post_form_as(
            &admin,
            &format!("/users/{id}"),
            &[
                ("email", "anna@btb.test"),
                ("name", "Test employee"),
                ("role", "employee"),
                ("disabled", "on"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);

    assert_eq!(
        app.get_as(&client, "/").await.status(),
        StatusCode::SEE_OTHER
    );
    let again = app.login_as(&app.new_browser(), "anna@btb.test").await;
    assert_eq!(again.status(), StatusCode::UNAUTHORIZED);
}

async fn signed_in_still(app: &TestApp, client: &reqwest::Client) -> bool {
    app.get_as(client, "/").await.status() == StatusCode::OK
}

#[tokio::test]
async fn a_session_ends_after_the_idle_time_out_not_before() {
    let app = TestApp::spawn_with(|c| c.session_idle = Duration::from_secs(2)).await;
    let client = app.signed_in(Role::Employee).await;

    // Busy for longer than the idle time-out: each request keeps the session.
    let started = std::time::Instant::now();
    while started.elapsed() < Duration::from_secs(3) {
        assert!(signed_in_still(&app, &client).await, "ended while in use");
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    tokio::time::sleep(Duration::from_millis(3000)).await;

    assert!(
        !signed_in_still(&app, &client).await,
        "idle for longer than allowed"
    );
}

#[tokio::test]
async fn a_session_ends_at_the_absolute_time_out_however_active() {
    let app = TestApp::spawn_with(|c| c.session_absolute = Duration::from_secs(2)).await;
    let client = app.signed_in(Role::Employee).await;
    let started = std::time::Instant::now();

    // Busy all along: a request every fifth of a second.
    let mut samples = Vec::new();
    while started.elapsed() < Duration::from_millis(2600) {
        let at = started.elapsed();
        samples.push((at, signed_in_still(&app, &client).await));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    for (at, open) in &samples {
        if *at < Duration::from_millis(1500) {
            assert!(open, "ended early, at {at:?}");
        }
    }
    assert!(
        !samples[samples.len() - 1].1,
        "still open at the end despite the time-out"
    );
}

/// R-CUST-14, R-CHAT-5: behind TLS the cookie is Secure and browsers are told to keep to https.
#[tokio::test]
async fn the_session_cookie_is_secure_when_the_site_is_https() {
    let app =
        TestApp::spawn_with(|c| c.base_url = "https://register.btb.test/".parse().unwrap()).await;
    let response = app.get("/login").await;
    let cookie = response
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap();
    assert!(cookie.contains("Secure"), "{cookie}");
    assert!(response.headers().contains_key("strict-transport-security"));
}

#[tokio::test]
async fn login_returns_to_the_page_asked_for_but_never_off_site() {
    let app = TestApp::spawn().await;
    app.create_user("anna@btb.test", Role::Admin).await;
    let r = app
        .post_form(
            "/login",
            &[
                ("email", "anna@btb.test"),
                ("password", PASSWORD),
                ("next", "/users"),
            ],
        )
        .await;
    assert_eq!(location(&r), "/users");

    let other = app.new_browser();
    let r = app
        .post_form_as(
            &other,
            "/login",
            &[
                ("email", "anna@btb.test"),
                ("password", PASSWORD),
                ("next", "//evil.example/"),
            ],
        )
        .await;
    assert_eq!(location(&r), "/");
}

#[tokio::test]
async fn logins_and_failures_are_audited_without_the_typed_address() {
    let app = TestApp::spawn().await;
    app.create_user("anna@btb.test", Role::Employee).await;
    app.post_form(
        "/login",
        &[("email", "typo-address@btb.test"), ("password", "x")],
    )
    .await;
    app.login_as(&app.client, "anna@btb.test").await;
    app.post_form("/logout", &[]).await;

    let actions: Vec<String> =
        sqlx::query_scalar("SELECT action FROM audit_log WHERE action LIKE 'log%' ORDER BY id")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(actions, ["login.failure", "login.success", "logout"]);
    let dump: String = sqlx::query_scalar("SELECT string_agg(audit_log::text, ' ') FROM audit_log")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert!(!dump.contains("typo-address"), "{dump}");
    assert!(!dump.contains("anna@btb.test"), "{dump}");
}

/// A login attempt that a proxy forwarded from `from`.
async fn login_via_proxy(
    app: &TestApp,
    from: &str,
    email: &str,
    password: &str,
) -> reqwest::Response {
    let token = app.csrf_token(&app.client).await;
    app.client
        .post(app.url("/login"))
        .header("x-forwarded-for", format!("198.51.100.7, {from}"))
        .form(&[
            ("email", email),
            ("password", password),
            ("csrf_token", &token),
        ])
        .send()
        .await
        .unwrap()
}

/// Behind a trusted proxy each visitor is throttled by their own address, not the proxy's.
#[tokio::test]
async fn behind_a_trusted_proxy_addresses_are_throttled_apart() {
    let app = TestApp::spawn_with(|c| c.trust_proxy = true).await;
    app.create_user("anna@btb.test", Role::Employee).await;
    for i in 0..5 {
        let email = format!("guess{i}@btb.test");
        login_via_proxy(&app, "203.0.113.1", &email, "wrong wrong wrong").await;
    }

    let same = login_via_proxy(&app, "203.0.113.1", "anna@btb.test", PASSWORD).await;
    let other = login_via_proxy(&app, "203.0.113.2", "anna@btb.test", PASSWORD).await;

    assert_eq!(same.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(other.status(), StatusCode::SEE_OTHER);
}
