use gdpr_register::users::Role;
use reqwest::StatusCode;

use crate::support::{PASSWORD, TestApp, location, texts};

fn path_of(link: &str) -> String {
    let url = url::Url::parse(link).unwrap();
    url.path().to_string()
}

/// The administrator invites Nils Ny (ny@btb.test) through the form.
async fn invite_nils(app: &TestApp, admin: &reqwest::Client) {
    let r = app
        .post_form_as(
            admin,
            "/users",
            &[
                ("email", "ny@btb.test"),
                ("name", "Nils Ny"),
                ("role", "employee"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn an_invited_user_sets_a_password_through_the_link_and_logs_in() {
    let app = TestApp::spawn().await;
    let admin = app.signed_in(Role::Admin).await;
    invite_nils(&app, &admin).await;
    let mail = app.smtp.wait_for(1).await.remove(0);
    assert_eq!(mail.recipients, ["ny@btb.test"]);
    let link = path_of(&mail.link(&app.base));
    let visitor = app.new_browser();

    // Opening the link (as a mail scanner would) changes nothing.
    let form = app.get_as(&visitor, &link).await;
    assert_eq!(form.status(), StatusCode::OK);
    assert!(form.text().await.unwrap().contains("Nils Ny"));
    let opened_twice = app.get_as(&visitor, &link).await;
    assert_eq!(opened_twice.status(), StatusCode::OK);

    let set = app
        .post_form_as(
            &visitor,
            &link,
            &[
                ("password", "mitt nya lösenord"),
                ("repeat", "mitt nya lösenord"),
            ],
        )
        .await;
    assert_eq!(set.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&set), "/login");

    let login = app
        .post_form_as(
            &visitor,
            "/login",
            &[("email", "ny@btb.test"), ("password", "mitt nya lösenord")],
        )
        .await;
    assert_eq!(login.status(), StatusCode::SEE_OTHER);
    let again = app.get_as(&app.new_browser(), &link).await;
    assert_eq!(again.status(), StatusCode::GONE);
    assert!(again.text().await.unwrap().contains("redan använts"));
}

#[tokio::test]
async fn unknown_and_expired_invitation_links_get_clear_pages() {
    let app = TestApp::spawn().await;
    let admin = app.signed_in(Role::Admin).await;
    invite_nils(&app, &admin).await;
    let link = app.mailed_link(0, "/invite/").await;
    sqlx::query("UPDATE link_tokens SET expires_at = now() - interval '1 minute'")
        .execute(&app.pool)
        .await
        .unwrap();

    let expired = app.get(&link).await;
    let unknown = app
        .get("/invite/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
        .await;
    let junk = app.get("/invite/..%2F..%2Fetc").await;
    let post_expired = app
        .post_form(
            &link,
            &[
                ("password", "mitt nya lösenord"),
                ("repeat", "mitt nya lösenord"),
            ],
        )
        .await;

    assert_eq!(expired.status(), StatusCode::GONE);
    assert!(expired.text().await.unwrap().contains("gått ut"));
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    assert_eq!(junk.status(), StatusCode::NOT_FOUND);
    assert_eq!(post_expired.status(), StatusCode::GONE);
}

#[tokio::test]
async fn a_new_invitation_replaces_the_old_link() {
    let app = TestApp::spawn().await;
    let admin = app.signed_in(Role::Admin).await;
    invite_nils(&app, &admin).await;
    let first = app.mailed_link(0, "/invite/").await;
    let id: uuid::Uuid = sqlx::query_scalar("SELECT id FROM users WHERE email = 'ny@btb.test'")
        .fetch_one(&app.pool)
        .await
        .unwrap();

    let r = app
        .post_form_as(&admin, &format!("/users/{id}/invite"), &[])
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let second = path_of(&app.smtp.wait_for(2).await[1].link(&app.base));

    assert_eq!(app.get(&first).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(app.get(&second).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_user_form_keeps_what_was_typed_and_says_what_is_wrong() {
    let app = TestApp::spawn().await;
    let admin = app.signed_in(Role::Admin).await;
    app.create_user("taken@btb.test", Role::Employee).await;

    let bad = app
        .post_form_as(
            &admin,
            "/users",
            &[
                ("email", "not-an-address"),
                ("name", "Łukasz Żółć"),
                ("role", "boss"),
            ],
        )
        .await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = bad.text().await.unwrap();
    assert!(page.contains(r#"value="Łukasz Żółć""#) && page.contains(r#"value="not-an-address""#));
    assert_eq!(
        texts(&page, ".field-error"),
        [
            "Det här är ingen e-postadress (till exempel anna@exempel.fi).",
            "Välj en roll."
        ]
    );

    let taken = app
        .post_form_as(
            &admin,
            "/users",
            &[
                ("email", "TAKEN@btb.test"),
                ("name", "Someone"),
                ("role", "employee"),
            ],
        )
        .await;
    assert_eq!(taken.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(taken.text().await.unwrap().contains("använder redan"));
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(count, 2, "nothing half-written");
}

#[tokio::test]
async fn names_with_markup_are_shown_as_text() {
    let app = TestApp::spawn().await;
    let admin = app.signed_in(Role::Admin).await;
    app.post_form_as(
        &admin,
        "/users",
        &[
            ("email", "x@btb.test"),
            ("name", "<script>alert(1)</script>"),
            ("role", "employee"),
        ],
    )
    .await;

    let page = app.get_as(&admin, "/users").await.text().await.unwrap();

    assert!(!page.contains("<script>alert(1)</script>"));
    assert!(
        page.contains("&#60;script&#62;alert(1)&#60;/script&#62;"),
        "{page}"
    );
}

#[tokio::test]
async fn the_administrator_changes_roles_and_disables_accounts_with_an_audit_trail() {
    let app = TestApp::spawn().await;
    let admin = app.signed_in(Role::Admin).await;
    let id = app.create_user("anna@btb.test", Role::Employee).await;
    let anna = app.new_browser();
    assert_eq!(
        app.login_as(&anna, "anna@btb.test").await.status(),
        StatusCode::SEE_OTHER
    );
    let promote = app
        .post_form_as(
            &admin,
            &format!("/users/{id}"),
            &[
                ("email", "anna@btb.test"),
                ("name", "Test employee"),
                ("role", "admin"),
            ],
        )
        .await;
    assert_eq!(promote.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        app.get_as(&anna, "/users").await.status(),
        StatusCode::OK,
        "now an administrator"
    );

    let r = app
        .post_form_as(
            &admin,
            &format!("/users/{id}"),
            &[
                ("email", "anna@btb.test"),
                ("name", "Test employee"),
                ("role", "employee"),
                ("chat_operator", "on"),
                ("disabled", "on"),
            ],
        )
        .await;

    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        app.get_as(&anna, "/").await.status(),
        StatusCode::SEE_OTHER,
        "her session ended"
    );
    let fields: Vec<String> = sqlx::query_scalar(
        "SELECT unnest(fields) FROM audit_log WHERE action = 'user.update' AND entity_id = $1",
    )
    .bind(id.to_string())
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(fields, ["role", "role", "chat_operator", "disabled"]);
}

#[tokio::test]
async fn an_administrator_cannot_lock_themselves_out() {
    let app = TestApp::spawn().await;
    let id = app.create_user("boss@btb.test", Role::Admin).await;
    let admin = app.new_browser();
    assert_eq!(
        app.login_as(&admin, "boss@btb.test").await.status(),
        StatusCode::SEE_OTHER
    );

    let r = app
        .post_form_as(
            &admin,
            &format!("/users/{id}"),
            &[
                ("email", "boss@btb.test"),
                ("name", "Boss"),
                ("role", "employee"),
            ],
        )
        .await;

    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(app.get_as(&admin, "/users").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn correcting_an_invited_users_address_voids_the_old_link_and_invites_the_new_one() {
    let app = TestApp::spawn().await;
    let admin = app.signed_in(Role::Admin).await;
    app.post_form_as(
        &admin,
        "/users",
        &[
            ("email", "typo@btb.tset"),
            ("name", "Nils Ny"),
            ("role", "employee"),
        ],
    )
    .await;
    let old = app.mailed_link(0, "/invite/").await;
    let id: uuid::Uuid = sqlx::query_scalar("SELECT id FROM users WHERE email = 'typo@btb.tset'")
        .fetch_one(&app.pool)
        .await
        .unwrap();

    app.post_form_as(
        &admin,
        &format!("/users/{id}"),
        &[
            ("email", "nils@btb.test"),
            ("name", "Nils Ny"),
            ("role", "employee"),
        ],
    )
    .await;

    let mails = app.smtp.wait_for(2).await;
    assert_eq!(mails[1].recipients, ["nils@btb.test"]);
    assert_eq!(app.get(&old).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        app.get(&path_of(&mails[1].link(&app.base))).await.status(),
        StatusCode::OK
    );
}

/// The administrator Anna, signed in, and the CEO's account.
async fn admin_and_ceo(app: &TestApp) -> (reqwest::Client, uuid::Uuid) {
    let admin = app.signed_in(Role::Admin).await;
    let ceo = app.create_user("vd@btb.test", Role::Ceo).await;
    (admin, ceo)
}

#[tokio::test]
async fn an_administrator_cannot_point_a_ceo_account_at_their_own_address() {
    let app = TestApp::spawn().await;
    let (admin, ceo) = admin_and_ceo(&app).await;
    let audit_rows = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM audit_log")
            .fetch_one(&app.pool)
            .await
            .unwrap()
    };
    let before = audit_rows().await;

    let change = app
        .post_form_as(
            &admin,
            &format!("/users/{ceo}"),
            &[
                ("email", "admin@btb.test"),
                ("name", "Test ceo"),
                ("role", "ceo"),
            ],
        )
        .await;
    let reinvite = app
        .post_form_as(&admin, &format!("/users/{ceo}/invite"), &[])
        .await;
    let disable = app
        .post_form_as(
            &admin,
            &format!("/users/{ceo}"),
            &[
                ("email", "vd@btb.test"),
                ("name", "Test ceo"),
                ("role", "ceo"),
                ("disabled", "on"),
            ],
        )
        .await;
    let form = app.get_as(&admin, &format!("/users/{ceo}")).await;
    let another_ceo = app
        .post_form_as(
            &admin,
            "/users",
            &[
                ("email", "admin2@btb.test"),
                ("name", "Me Again"),
                ("role", "ceo"),
            ],
        )
        .await;

    for r in [change, reinvite, disable, form, another_ceo] {
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        let page = r.text().await.unwrap();
        assert!(page.contains("gdpr-register user"), "{page}");
    }
    let email: String = sqlx::query_scalar("SELECT email FROM users WHERE id = $1")
        .bind(ceo)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(email, "vd@btb.test");
    assert_eq!(audit_rows().await, before, "nothing written");
    let mails: i64 = sqlx::query_scalar("SELECT count(*) FROM mail_outbox")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(mails, 0);
}

#[tokio::test]
async fn an_email_change_takes_effect_only_through_the_link_to_the_new_address() {
    let app = TestApp::spawn().await;
    let admin = app.signed_in(Role::Admin).await;
    let id = app.create_user("anna@btb.test", Role::Employee).await;
    let anna = app.new_browser();
    app.login_as(&anna, "anna@btb.test").await;

    let r = app
        .post_form_as(
            &admin,
            &format!("/users/{id}"),
            &[
                ("email", "anna.new@btb.test"),
                ("name", "Test employee"),
                ("role", "employee"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let mail = app.smtp.wait_for(1).await.remove(0);
    assert_eq!(mail.recipients, ["anna.new@btb.test"]);
    let link = path_of(&mail.link(&format!("{}/account/email/", app.base)));
    let still = app.login_as(&app.new_browser(), "anna@btb.test").await;
    assert_eq!(location(&still), "/", "the old address still logs in");

    // The link works for the account itself only, signed in.
    let stranger = app.get_as(&app.new_browser(), &link).await;
    assert!(location(&stranger).starts_with("/login?next="));
    assert_eq!(
        app.get_as(&admin, &link).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.post_form_as(&admin, &link, &[]).await.status(),
        StatusCode::NOT_FOUND
    );
    app.post_form_as(&admin, &format!("/users/{id}/invite"), &[])
        .await;
    let invitation = app.smtp.wait_for_recipient("anna@btb.test").await;
    let invitation = path_of(&invitation.link(&format!("{}/invite/", app.base)));
    let page = app.get_as(&anna, &link).await;
    assert_eq!(page.status(), StatusCode::OK);
    assert_eq!(
        texts(&page.text().await.unwrap(), "#new-email"),
        ["anna.new@btb.test"]
    );
    let confirmed = app.post_form_as(&anna, &link, &[]).await;

    assert_eq!(confirmed.status(), StatusCode::SEE_OTHER);
    let email: String = sqlx::query_scalar("SELECT email FROM users WHERE id = $1")
        .bind(id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(email, "anna.new@btb.test");
    let mails = app.smtp.wait_for(3).await;
    assert_eq!(
        mails[2].recipients,
        ["anna@btb.test"],
        "the old address is told"
    );
    assert!(!mails[2].text().contains("anna.new@btb.test"));
    assert_eq!(
        app.get(&invitation).await.status(),
        StatusCode::NOT_FOUND,
        "the account's other links stop working"
    );
    assert_eq!(app.get_as(&anna, &link).await.status(), StatusCode::GONE);
    let new_login = app.login_as(&app.new_browser(), "anna.new@btb.test").await;
    assert_eq!(location(&new_login), "/");
}

#[tokio::test]
async fn staff_change_their_own_address_with_the_password_and_the_link() {
    let app = TestApp::spawn().await;
    let ceo = app.signed_in(Role::Ceo).await;
    let wrong = app
        .post_form_as(
            &ceo,
            "/account/email",
            &[("email", "vd@btb.test"), ("password", "not the password")],
        )
        .await;
    assert_eq!(location(&wrong), "/account");
    app.create_user("taken@btb.test", Role::Employee).await;
    let taken = app
        .post_form_as(
            &ceo,
            "/account/email",
            &[("email", "TAKEN@btb.test"), ("password", PASSWORD)],
        )
        .await;
    assert!(
        app.get_as(&ceo, "/account")
            .await
            .text()
            .await
            .unwrap()
            .contains("använder redan")
    );
    assert_eq!(location(&taken), "/account");

    let asked = app
        .post_form_as(
            &ceo,
            "/account/email",
            &[("email", "vd@btb.test"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(location(&asked), "/account");
    let mail = app.smtp.wait_for(1).await.remove(0);
    assert_eq!(
        mail.recipients,
        ["vd@btb.test"],
        "only the right request mailed"
    );
    let link = path_of(&mail.link(&format!("{}/account/email/", app.base)));
    app.post_form_as(&ceo, &link, &[]).await;

    let login = app.login_as(&app.new_browser(), "vd@btb.test").await;
    assert_eq!(location(&login), "/");
}

/// What the administrator may not do to a CEO's account is done on the server.
#[tokio::test]
async fn user_commands_on_the_server_change_the_address_and_disable_an_account() {
    let app = TestApp::spawn().await;
    app.create_user("vd@btb.test", Role::Ceo).await;
    let run = |args: &'static [&'static str]| {
        let mut cmd = app.cli();
        cmd.args(args);
        async move { cmd.output().await.unwrap() }
    };

    let moved = run(&[
        "user",
        "set-email",
        "--email",
        "vd@btb.test",
        "--new-email",
        "ceo@btb.test",
    ])
    .await;
    assert!(moved.status.success(), "{moved:?}");
    assert_eq!(
        location(&app.login_as(&app.new_browser(), "ceo@btb.test").await),
        "/"
    );
    let disabled = run(&["user", "disable", "--email", "ceo@btb.test"]).await;
    assert!(disabled.status.success(), "{disabled:?}");
    let refused = app.login_as(&app.new_browser(), "ceo@btb.test").await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let unknown = run(&["user", "disable", "--email", "nobody@btb.test"]).await;
    assert_eq!(unknown.status.code(), Some(2));
}
