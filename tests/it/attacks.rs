//! What an attacker can do with the login page, the public pages and a copy of the
//! database, and what an operator's database role may do.

use std::{sync::Arc, time::Duration};

use gdpr_register::{
    auth::Passwords,
    config::Config,
    keys::Keys,
    startup::{APP_ROLE, Database},
    users::Role,
};
use reqwest::StatusCode;
use sha2::{Digest, Sha256};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    sync::Semaphore,
};

use crate::support::{PASSWORD, Setup, TestApp, new_client, pg};

/// Row counts of every table of the application, to see that nothing was written.
async fn row_counts(app: &TestApp) -> Vec<(String, i64)> {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_schema || '.' || table_name FROM information_schema.tables
         WHERE table_schema IN ('public', 'tower_sessions') AND table_type = 'BASE TABLE'
         ORDER BY 1",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    let mut counts = Vec::new();
    for table in tables {
        let n: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
            .fetch_one(&app.pool)
            .await
            .unwrap();
        counts.push((table, n));
    }
    counts
}

/// A flood of anonymous visits writes nothing: no session row, no audit row, nothing.
#[tokio::test]
async fn anonymous_visits_to_the_login_and_consent_pages_write_no_row() {
    let app = TestApp::spawn().await;
    let admin = app.signed_in(Role::Admin).await;
    let company = crate::customers::add_company(&app, &admin, "ABB Oy").await;
    crate::customers::add_person(&app, &admin, &company, "Åsa Öberg", "asa@kund.test", "sv").await;
    let consent = app.mailed_link(0, "/consent/").await;
    gdpr_register::audit::seal(&app.pool).await.unwrap();
    let before = row_counts(&app).await;

    let mut visits = tokio::task::JoinSet::new();
    for i in 0..1000 {
        let url = app.url(if i % 2 == 0 { "/login" } else { &consent });
        visits.spawn(async move { new_client().get(url).send().await.unwrap().status() });
    }
    while let Some(status) = visits.join_next().await {
        assert_eq!(status.unwrap(), StatusCode::OK);
    }

    gdpr_register::audit::seal(&app.pool).await.unwrap();
    assert_eq!(row_counts(&app).await, before);
}

/// A burst of guesses at once: no more than the limit are checked, the rest are refused
/// without a look at the password, and the lock-out is one audit row.
#[tokio::test]
async fn of_32_simultaneous_guesses_no_more_than_the_limit_are_checked() {
    let app = TestApp::spawn().await;
    app.create_user("anna@btb.test", Role::Employee).await;
    let token = app.csrf_token(&app.client).await;

    let mut guesses = tokio::task::JoinSet::new();
    for i in 0..32 {
        let (client, url, token) = (app.client.clone(), app.url("/login"), token.clone());
        guesses.spawn(async move {
            let password = format!("wrong guess number {i}");
            client
                .post(url)
                .form(&[
                    ("email", "anna@btb.test"),
                    ("password", &password),
                    ("csrf_token", &token),
                ])
                .send()
                .await
                .unwrap()
                .status()
        });
    }
    let mut checked = 0;
    while let Some(status) = guesses.join_next().await {
        match status.unwrap() {
            StatusCode::UNAUTHORIZED => checked += 1,
            StatusCode::TOO_MANY_REQUESTS => {}
            other => panic!("{other}"),
        }
    }

    assert_eq!(checked, app.config.login_max_failures);
    let (failures, lockouts): (i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE action = 'login.failure'),
                count(*) FILTER (WHERE action = 'login.lockout') FROM audit_log",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!((failures, lockouts), (checked, 1));
}

/// While passwords are being checked (here: while every hashing slot is taken), the
/// logins waiting for them hold no database connection: staff pages go on.
#[tokio::test]
async fn logins_waiting_to_be_checked_hold_no_database_connection() {
    let hashing = Arc::new(Semaphore::new(1));
    // One connection is the mail worker's, listening; one is left for everything else.
    let setup = Setup {
        pool_size: 2,
        passwords: Passwords::sharing(hashing.clone()),
        ..Setup::default()
    };
    let app = TestApp::spawn_setup(setup, |_| {}).await;
    app.create_user("anna@btb.test", Role::Employee).await;
    let token = app.csrf_token(&app.client).await;
    let busy = hashing.clone().acquire_many_owned(1).await.unwrap();

    let (client, url) = (app.client.clone(), app.url("/login"));
    let login = tokio::spawn(async move {
        client
            .post(url)
            .form(&[
                ("email", "anna@btb.test"),
                ("password", PASSWORD),
                ("csrf_token", &token),
            ])
            .send()
            .await
            .unwrap()
            .status()
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let health = tokio::time::timeout(Duration::from_secs(5), app.get("/healthz")).await;

    assert_eq!(
        health.expect("answered while the login waited").status(),
        200
    );
    assert!(!login.is_finished());
    drop(busy);
    assert_eq!(login.await.unwrap(), StatusCode::SEE_OTHER);
}

/// A POST that comes without the CSRF cookie is refused at once: its body, however
/// large it claims to be, is not waited for.
#[tokio::test]
async fn a_post_without_the_csrf_cookie_is_refused_before_its_body_is_read() {
    let app = TestApp::spawn().await;
    let mut stream = tokio::net::TcpStream::connect(app.base.trim_start_matches("http://"))
        .await
        .unwrap();
    let head = "POST /login HTTP/1.1\r\nHost: localhost\r\n\
                Content-Type: application/x-www-form-urlencoded\r\n\
                Content-Length: 1000000\r\n\r\nemail=a";
    stream.write_all(head.as_bytes()).await.unwrap();

    let mut answer = vec![0u8; 1024];
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut answer))
        .await
        .expect("an answer without the rest of the body")
        .unwrap();

    let answer = String::from_utf8_lossy(&answer[..read]);
    assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
}

/// The throttle's table holds keyed hashes: the plain SHA-256 of an address or an
/// account, which anyone can compute, is not there.
#[tokio::test]
async fn the_throttle_keeps_keyed_hashes_not_plain_ones() {
    let app = TestApp::spawn().await;
    let r = app
        .post_form(
            "/login",
            &[
                ("email", "anna@btb.test"),
                ("password", "wrong wrong wrong"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    let stored: Vec<Vec<u8>> = sqlx::query_scalar("SELECT key_hash FROM login_throttle")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert_eq!(stored.len(), 2);
    for plain in ["account:anna@btb.test", "address:127.0.0.1"] {
        assert!(!stored.contains(&Sha256::digest(plain.as_bytes()).to_vec()));
    }
}

/// R-CUST-10: the suppression list is keyed with the application key, kept outside the
/// database: with the database alone (another key) an erased address is not recognised.
#[tokio::test]
async fn the_suppression_list_tells_nothing_without_the_application_key() {
    let app = TestApp::spawn().await;
    let admin = app.signed_in(Role::Admin).await;
    let company = crate::customers::add_company(&app, &admin, "ABB Oy").await;
    let person =
        crate::customers::add_person(&app, &admin, &company, "Åsa Öberg", "asa@kund.test", "sv")
            .await;
    let r = app
        .post_form_as(&admin, &format!("/people/{person}/delete"), &[])
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);

    let mut conn = app.pool.acquire().await.unwrap();
    let with_key =
        gdpr_register::customers::suppressed_since(&mut conn, &app.config.keys, "asa@kund.test")
            .await
            .unwrap();
    let other_key =
        gdpr_register::customers::suppressed_since(&mut conn, &Keys::random(), "asa@kund.test")
            .await
            .unwrap();

    assert!(with_key.is_some());
    assert!(other_key.is_none());
}

/// PostgreSQL's own log never holds an address: an address already taken is refused
/// without its value reaching the server's log.
#[tokio::test]
async fn a_taken_address_does_not_reach_the_database_log() {
    let app = TestApp::spawn().await;
    let address = format!("taken-{}@btb.test", uuid::Uuid::new_v4().simple());
    app.create_user(&address, Role::Employee).await;
    let admin = app.signed_in(Role::Admin).await;

    let r = app
        .post_form_as(
            &admin,
            "/users",
            &[("email", &address), ("name", "Bo Ek"), ("role", "employee")],
        )
        .await;

    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let log = std::fs::read_to_string(pg::cluster().pg.log_file()).unwrap();
    assert!(!log.contains(&address));
}

/// On the embedded default the application works as a role that cannot switch the
/// audit log's protection off; migrations ran as the owner.
#[tokio::test]
async fn the_embedded_default_works_as_a_role_that_cannot_touch_the_audit_triggers() {
    use std::os::unix::fs::PermissionsExt;
    let data = tempfile::tempdir().unwrap();
    // The postgres user (when the tests run as root) must be able to enter it.
    std::fs::set_permissions(data.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let config = Config::with_defaults(data.path().to_path_buf(), "127.0.0.1:0".parse().unwrap());
    let db = Database::connect(&config).await.unwrap();

    let role: String = sqlx::query_scalar("SELECT current_user::text")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(role, APP_ROLE);
    gdpr_register::audit::record(
        &mut db.pool.acquire().await.unwrap(),
        gdpr_register::audit::Event::new(
            &gdpr_register::audit::Actor::System("test"),
            "test.write",
            "test",
            None,
        ),
    )
    .await
    .unwrap();
    for statement in [
        "ALTER TABLE audit_log DISABLE TRIGGER USER",
        "DROP TRIGGER audit_log_no_update_or_delete ON audit_log",
        "SET session_replication_role = replica",
        "DELETE FROM audit_log",
        "TRUNCATE audit_log",
        "UPDATE audit_log SET action = 'nothing'",
        "DELETE FROM _sqlx_migrations",
    ] {
        assert!(
            sqlx::query(statement).execute(&db.pool).await.is_err(),
            "{statement} was allowed"
        );
    }
    db.close(true).await;
}
