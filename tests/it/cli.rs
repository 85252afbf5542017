use std::process::{Output, Stdio};

use tokio::{io::AsyncWriteExt, process::Command};

use gdpr_register::users::Role;
use reqwest::StatusCode;

use crate::support::{TestApp, pg};

/// Runs the binary without blocking the test's runtime (which serves the app meanwhile).
async fn gdpr_register(args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gdpr-register"));
    cmd.args(args)
        .env_remove("DATABASE_URL")
        .env_remove("SMTP_URL")
        .env("DATA_DIR", std::env::temp_dir().join("gdpr-it-cli"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        // A command that refuses its arguments may exit before reading.
        let _ = input.write_all(text.as_bytes()).await;
    }
    drop(input);
    child.wait_with_output().await.unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

#[tokio::test]
async fn help_lists_every_setting_and_hides_secret_values() {
    let out = gdpr_register(
        &["--help"],
        &[
            ("DATABASE_URL", "postgres://u:hunter2@db/x"),
            ("SMTP_URL", "smtp://u:hunter2@mail:25"),
        ],
        None,
    )
    .await;
    assert!(out.status.success());
    let help = stdout(&out);
    for setting in [
        "DATABASE_URL",
        "DATA_DIR",
        "LISTEN_ADDR",
        "BASE_URL",
        "SMTP_URL",
        "MAIL_FROM",
        "INFO_ADDRESS",
        "COMPANY_NAME",
        "SESSION_IDLE_MINUTES",
        "SESSION_MAX_MINUTES",
        "LOGIN_MAX_FAILURES",
        "LOGIN_LOCKOUT_MINUTES",
        "MAIL_MAX_ATTEMPTS",
        "TRUST_PROXY",
        "QUARANTINE_DAYS",
        "QUARANTINE_REMINDER_DAYS",
        "INACTIVITY_YEARS",
    ] {
        assert!(help.contains(setting), "--help does not mention {setting}");
    }
    for command in [
        "serve",
        "migrate",
        "user",
        "audit",
        "jobs",
        "import",
        "export",
        "demo-data",
    ] {
        assert!(help.contains(command), "--help does not mention {command}");
    }
    assert!(!help.contains("hunter2"));
}

#[tokio::test]
async fn bad_settings_are_a_clear_message_and_exit_2() {
    for (name, value, says) in [
        ("SMTP_URL", "http://mail.example", "smtp://"),
        ("DATABASE_URL", "mysql://db/x", "postgres://"),
        ("LISTEN_ADDR", "not-an-address", "LISTEN_ADDR"),
        ("BASE_URL", "/relative", "BASE_URL"),
        ("MAIL_FROM", "nobody", "e-mail address"),
        ("SESSION_IDLE_MINUTES", "0", "at least 1"),
        ("LOGIN_MAX_FAILURES", "-3", "LOGIN_MAX_FAILURES"),
        ("QUARANTINE_REMINDER_DAYS", "12,3", "ascending"),
    ] {
        let out = gdpr_register(&["migrate"], &[(name, value)], None).await;
        assert_eq!(out.status.code(), Some(2), "{name}={value}");
        let err = stderr(&out);
        assert!(err.contains(says), "{name}={value}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[tokio::test]
async fn user_add_reads_the_password_from_standard_input() {
    let app = TestApp::spawn().await;
    let url = pg::database_url(&app.db);

    let out = gdpr_register(
        &[
            "user",
            "add",
            "--email",
            "chef@btb.test",
            "--name",
            "Åke Chef",
            "--role",
            "admin",
        ],
        &[("DATABASE_URL", &url)],
        Some("ett långt lösenord\n"),
    )
    .await;

    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("created chef@btb.test"));
    let r = app
        .post_form(
            "/login",
            &[
                ("email", "chef@btb.test"),
                ("password", "ett långt lösenord"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        app.get("/users").await.status(),
        StatusCode::OK,
        "an administrator"
    );
}

#[tokio::test]
async fn user_add_refuses_a_short_password_a_bad_address_and_a_taken_one() {
    let app = TestApp::spawn().await;
    let url = pg::database_url(&app.db);
    app.create_user("taken@btb.test", Role::Employee).await;
    let env = [("DATABASE_URL", url.as_str())];

    let short = gdpr_register(
        &[
            "user",
            "add",
            "--email",
            "a@btb.test",
            "--name",
            "A",
            "--role",
            "employee",
        ],
        &env,
        Some("short\n"),
    )
    .await;
    let bad_email = gdpr_register(
        &[
            "user",
            "add",
            "--email",
            "not-an-address",
            "--name",
            "A",
            "--role",
            "employee",
        ],
        &env,
        Some("a long enough password\n"),
    )
    .await;
    let bad_role = gdpr_register(
        &[
            "user",
            "add",
            "--email",
            "a@btb.test",
            "--name",
            "A",
            "--role",
            "king",
        ],
        &env,
        Some("a long enough password\n"),
    )
    .await;
    let taken = gdpr_register(
        &[
            "user",
            "add",
            "--email",
            "TAKEN@btb.test",
            "--name",
            "A",
            "--role",
            "employee",
        ],
        &env,
        Some("a long enough password\n"),
    )
    .await;

    assert_eq!(short.status.code(), Some(2));
    assert!(
        stderr(&short).contains("at least 12 characters"),
        "{}",
        stderr(&short)
    );
    assert_eq!(bad_email.status.code(), Some(2));
    assert!(stderr(&bad_email).contains("not an e-mail address"));
    assert_eq!(bad_role.status.code(), Some(2));
    assert_eq!(taken.status.code(), Some(2));
    assert!(stderr(&taken).contains("already has an account"));
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(count, 1);
}

#[tokio::test]
async fn user_add_with_invite_mails_a_link_to_set_the_password() {
    let app = TestApp::spawn().await;
    let url = pg::database_url(&app.db);
    let base = app.base.clone();

    // The running app's worker and the command share the outbox: one of them sends it.
    let out = gdpr_register(
        &[
            "user",
            "add",
            "--email",
            "vd@btb.test",
            "--name",
            "Vera VD",
            "--role",
            "ceo",
            "--invite",
        ],
        &[
            ("DATABASE_URL", &url),
            ("SMTP_URL", &app.smtp.url()),
            ("BASE_URL", &base),
        ],
        None,
    )
    .await;

    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("invitation"), "{}", stdout(&out));
    let mail = app.smtp.wait_for(1).await.remove(0);
    assert_eq!(mail.recipients, ["vd@btb.test"]);
    assert!(mail.subject().contains("Ditt konto"));
    let link = mail.link(&format!("{base}/invite/"));
    assert_eq!(app.get(&link[base.len()..]).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn audit_verify_reports_an_intact_chain_with_its_row_count() {
    let app = TestApp::spawn().await;
    app.create_user("anna@btb.test", Role::Employee).await;
    gdpr_register::audit::seal(&app.pool).await.unwrap();
    let out = gdpr_register(
        &["audit", "verify"],
        &[("DATABASE_URL", &pg::database_url(&app.db))],
        None,
    )
    .await;
    assert_eq!(out.status.code(), Some(0));
    let printed = stdout(&out);
    let mut lines = printed.lines();
    assert_eq!(lines.next(), Some("audit log intact: 2 rows"));
    assert!(
        lines.next().unwrap().starts_with("head: row 2 "),
        "{printed}"
    );
}

#[tokio::test]
async fn jobs_run_once_runs_every_job_as_of_the_given_instant() {
    let app = TestApp::spawn().await;
    let url = pg::database_url(&app.db);
    // A session that ends after an hour without activity.
    app.signed_in(Role::Employee).await;
    let at = |minutes: i64| {
        (time::OffsetDateTime::now_utc() + time::Duration::minutes(minutes))
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };

    let before = gdpr_register(
        &["jobs", "run-once", "--at", &at(30)],
        &[("DATABASE_URL", &url)],
        None,
    )
    .await;
    let after = gdpr_register(
        &["jobs", "run-once", "--at", &at(120)],
        &[("DATABASE_URL", &url)],
        None,
    )
    .await;
    let bad = gdpr_register(
        &["jobs", "run-once", "--at", "tomorrow"],
        &[("DATABASE_URL", &url)],
        None,
    )
    .await;

    assert!(before.status.success(), "{}", stderr(&before));
    assert!(
        stdout(&before).contains("session-cleanup: removed 0 expired sessions"),
        "{}",
        stdout(&before)
    );
    for job in [
        "sent-mail-retention:",
        "quarantine:",
        "inactivity-sweep:",
        "audit-head:",
    ] {
        assert!(stdout(&before).contains(job), "{job} did not run");
    }
    assert!(
        stdout(&after).contains("session-cleanup: removed 1 expired sessions"),
        "{}",
        stdout(&after)
    );
    assert_eq!(bad.status.code(), Some(2));
    assert!(stderr(&bad).contains("RFC 3339"));
}
