use gdpr_register::users::Role;
use reqwest::StatusCode;

use crate::support::{TestApp, location, texts};

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
