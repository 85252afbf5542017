//! Running it for real: /metrics, JSON logs without personal data, --version, the stop on
//! SIGTERM.

use std::{os::unix::fs::PermissionsExt, process::Stdio};

use gdpr_register::{config::Secret, startup::MIGRATOR, users::Role};
use nix::{
    sys::signal::{Signal, kill},
    unistd::Pid,
};
use reqwest::StatusCode;
use time::OffsetDateTime;
use tokio::io::AsyncReadExt;

use crate::{
    customers::{add_company, add_person},
    embedded::{free_port, wait_until_healthy},
    support::{TestApp, pg},
};

const TOKEN: &str = "0123456789abcdef0123456789abcdef";

/// The binary serving on a free port, its log read as it comes (a full pipe would stop
/// it).
struct Served {
    child: tokio::process::Child,
    log: tokio::task::JoinHandle<String>,
    port: u16,
}

impl Served {
    async fn start(env: &[(&str, &str)]) -> Self {
        let port = free_port();
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_gdpr-register"))
            .env_remove("DATABASE_URL")
            .env_remove("SMTP_URL")
            .env("LISTEN_ADDR", format!("127.0.0.1:{port}"))
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stderr = child.stderr.take().unwrap();
        let log = tokio::spawn(async move {
            let mut log = String::new();
            stderr.read_to_string(&mut log).await.unwrap();
            log
        });
        Self { child, log, port }
    }

    /// Sends SIGTERM, as systemd stops a service; the exit status and the whole log.
    async fn terminate(mut self) -> (std::process::ExitStatus, String) {
        let pid = self.child.id().unwrap() as i32;
        kill(Pid::from_raw(pid), Signal::SIGTERM).unwrap();
        let status = self.child.wait().await.unwrap();
        (status, self.log.await.unwrap())
    }
}

/// GET /metrics as a request the trusted proxy forwarded from `from`, with `token`.
async fn metrics_from(app: &TestApp, from: &str, token: Option<&str>) -> reqwest::Response {
    let mut request = app
        .client
        .get(app.url("/metrics"))
        .header("x-forwarded-for", from);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn metrics_are_refused_to_another_address_without_the_token_and_served_with_it() {
    let app = TestApp::spawn_with(|c| {
        c.trust_proxy = true;
        c.metrics_token = Some(Secret::new(TOKEN.into()));
    })
    .await;

    for (from, token, expected, why) in [
        ("203.0.113.9", None, 401, "another address, no token"),
        (
            "203.0.113.9",
            Some("0123456789abcdef0123456789abcdeX"),
            401,
            "a wrong token",
        ),
        (
            "127.0.0.1, 203.0.113.9",
            None,
            401,
            "a client that claims to be loopback",
        ),
        ("203.0.113.9", Some(TOKEN), 200, "the token"),
        ("127.0.0.1", None, 200, "loopback, forwarded"),
        ("::1", None, 200, "loopback over IPv6, forwarded"),
    ] {
        let r = metrics_from(&app, from, token).await;
        assert_eq!(r.status().as_u16(), expected, "{why}");
        if expected == 401 {
            assert_eq!(r.headers()["www-authenticate"], "Bearer", "{why}");
        }
    }
    let direct = app.get("/metrics").await;
    assert_eq!(direct.status(), StatusCode::OK, "loopback, not proxied");
}

#[tokio::test]
async fn without_a_token_only_loopback_may_read_the_metrics() {
    let app = TestApp::spawn_with(|c| c.trust_proxy = true).await;

    let remote = metrics_from(&app, "198.51.100.4", Some(TOKEN)).await;
    let local = app.get("/metrics").await;

    assert_eq!(remote.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(local.status(), StatusCode::OK);
}

#[tokio::test]
async fn metrics_name_requests_mail_jobs_logins_the_pool_and_unsealed_audit_rows() {
    let app = TestApp::spawn().await;
    let staff = app.signed_in(Role::Employee).await;
    let company = add_company(&app, &staff, "Wärtsilä").await;
    add_person(&app, &staff, &company, "Aino Aalto", "aino@kone.test", "fi").await;
    let wrong = app
        .post_form(
            "/login",
            &[
                ("email", "nobody@kone.test"),
                ("password", "not the password"),
            ],
        )
        .await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    app.run_jobs_at(OffsetDateTime::now_utc()).await;
    let person_id = uuid::Uuid::new_v4().to_string();
    app.get_as(&staff, &format!("/people/{person_id}")).await;

    let r = app.get("/metrics").await;

    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = r.text().await.unwrap();
    for series in [
        r#"gdpr_http_requests_total{method="POST",route="/login",status="401"}"#,
        r#"gdpr_http_requests_total{method="GET",route="/people/{id}",status="404"}"#,
        r#"gdpr_http_request_duration_seconds_bucket{method="POST",route="/login",le="0.005"}"#,
        r#"gdpr_http_request_duration_seconds_bucket{method="POST",route="/login",le="+Inf"}"#,
        r#"gdpr_http_request_duration_seconds_sum{method="POST",route="/login"}"#,
        r#"gdpr_http_request_duration_seconds_count{method="POST",route="/login"}"#,
        r#"gdpr_mail_outbox{status="queued"}"#,
        r#"gdpr_mail_outbox{status="sending"}"#,
        r#"gdpr_mail_outbox{status="failed"}"#,
        "gdpr_mail_oldest_queued_age_seconds ",
        r#"gdpr_job_last_run_timestamp_seconds{job="audit-head"}"#,
        r#"gdpr_job_last_run_success{job="audit-head"} 1"#,
        r#"gdpr_job_last_run_duration_seconds{job="audit-head"}"#,
        "gdpr_logins_refused_total ",
        "gdpr_login_lockouts_total ",
        r#"gdpr_db_pool_connections{state="in_use"}"#,
        r#"gdpr_db_pool_connections{state="idle"}"#,
        "gdpr_db_pool_max_connections ",
        "gdpr_database_up 1",
        "gdpr_audit_unsealed_rows ",
    ] {
        assert!(text.contains(series), "{series} missing from:\n{text}");
    }
    assert!(!text.contains(&person_id), "a path's id became a label");
    let refused: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("gdpr_logins_refused_total "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(refused >= 1);
}

#[tokio::test]
async fn every_response_carries_a_request_id_of_its_own() {
    let app = TestApp::spawn().await;

    let first = app.get("/healthz").await;
    let second = app.get("/no-such-page").await;

    let id = |r: &reqwest::Response| r.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(id(&first).len(), 32);
    assert_ne!(id(&first), id(&second));
}

/// The binary with LOG_FORMAT=json and RUST_LOG=trace (beyond debug), on the app's
/// database: a login, a search by name and an erasure over HTTP leave JSON lines with no
/// e-mail address, name or client address in them.
#[tokio::test]
async fn json_logs_of_a_login_and_an_erasure_hold_no_personal_data_at_any_level() {
    let mut app = TestApp::spawn().await;
    let staff_email = "helmi.staff@kone.test";
    app.create_user(staff_email, Role::Employee).await;
    let served = Served::start(&[
        ("DATABASE_URL", &pg::database_url(&app.db)),
        ("SMTP_URL", &app.smtp.url()),
        ("DATA_DIR", &app.data_dir.path().display().to_string()),
        ("LOG_FORMAT", "json"),
        ("RUST_LOG", "trace"),
    ])
    .await;
    let healthy = wait_until_healthy(served.port).await;
    // From here on the helpers talk to the binary.
    app.base = format!("http://127.0.0.1:{}", served.port);
    let staff = app.new_browser();
    let login = app.login_as(&staff, staff_email).await;
    let login_id = login.headers()["x-request-id"].to_str().unwrap().to_owned();
    let company = add_company(&app, &staff, "Kone").await;
    let person = add_person(
        &app,
        &staff,
        &company,
        "Ilmari Oksanen",
        "ilmari@kone.test",
        "fi",
    )
    .await;
    app.get_as(&staff, "/people?q=Oksanen").await;
    let erased = app
        .post_form_as(&staff, &format!("/people/{person}/delete"), &[])
        .await;
    let (status, log) = served.terminate().await;

    assert!(healthy, "the app never answered: {log}");
    assert_eq!(login.status(), StatusCode::SEE_OTHER, "{log}");
    assert_eq!(erased.status(), StatusCode::SEE_OTHER, "{log}");
    assert!(status.success(), "{log}");
    let mut requests = Vec::new();
    for line in log.lines() {
        let entry: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON object ({e}): {line}"));
        for personal in [
            staff_email,
            "ilmari@kone.test",
            "Ilmari",
            "Oksanen",
            "Test employee",
            "@",
        ] {
            assert!(!line.contains(personal), "{personal} logged: {line}");
        }
        // The client's address is personal data too; only the server's own is printed.
        let says_where_it_serves = entry["fields"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("serving on"));
        assert!(
            says_where_it_serves || !line.contains("127.0.0.1"),
            "an address logged: {line}"
        );
        if entry["fields"]["message"] == "request" {
            requests.push(entry["fields"].clone());
        }
    }
    for fields in &requests {
        for key in ["request_id", "route", "status", "latency_ms"] {
            assert!(!fields[key].is_null(), "{key} missing: {fields}");
        }
    }
    let logged = |route: &str, status: u64| {
        requests
            .iter()
            .any(|f| f["route"] == route && f["status"] == status)
    };
    assert!(
        requests
            .iter()
            .any(|f| f["request_id"] == login_id.as_str() && f["route"] == "/login"),
        "the login's request id is in its line: {log}"
    );
    assert!(logged("/people/{id}/delete", 303), "{log}");
    assert!(logged("/people", 200), "{log}");
}

#[tokio::test]
async fn version_prints_the_migration_level() {
    let level = MIGRATOR.iter().map(|m| m.version).max().unwrap();

    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_gdpr-register"))
        .arg("--version")
        .output()
        .await
        .unwrap();

    assert!(out.status.success());
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        printed.contains(env!("CARGO_PKG_VERSION"))
            && printed.contains(&format!("migration level {level}")),
        "{printed}"
    );
}

#[tokio::test]
async fn a_bad_log_format_or_metrics_token_is_a_clear_message_and_exit_2() {
    for (name, value, says) in [
        ("LOG_FORMAT", "xml", "text, json"),
        ("METRICS_TOKEN", "short", "at least 24 characters"),
        (
            "METRICS_TOKEN",
            "a token with spaces, long enough",
            "without spaces",
        ),
    ] {
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_gdpr-register"))
            .arg("migrate")
            .env_remove("DATABASE_URL")
            .env(name, value)
            .output()
            .await
            .unwrap();

        assert_eq!(out.status.code(), Some(2), "{name}={value}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(name) || err.contains(&name.to_lowercase().replace('_', "-")));
        assert!(err.contains(says), "{name}={value}: {err}");
    }
}

#[tokio::test]
async fn help_names_the_new_settings_and_hides_the_metrics_token() {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_gdpr-register"))
        .arg("--help")
        .env("METRICS_TOKEN", TOKEN)
        .output()
        .await
        .unwrap();

    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(
        help.contains("LOG_FORMAT") && help.contains("METRICS_TOKEN"),
        "{help}"
    );
    assert!(!help.contains(TOKEN));
}

/// systemd stops a service with SIGTERM: the server ends cleanly, with the embedded
/// cluster it ran on.
#[tokio::test]
async fn sigterm_stops_the_server_and_its_embedded_cluster_with_exit_0() {
    let data = tempfile::tempdir().unwrap();
    // The postgres user (when the tests run as root) must be able to enter it.
    std::fs::set_permissions(data.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let served = Served::start(&[("DATA_DIR", &data.path().display().to_string())]).await;
    let healthy = wait_until_healthy(served.port).await;

    let (status, log) = served.terminate().await;

    assert!(healthy, "the app never answered: {log}");
    assert_eq!(status.code(), Some(0), "{log}");
    assert!(
        log.contains("the private PostgreSQL cluster has stopped"),
        "{log}"
    );
    assert!(
        !data.path().join("postgres/postmaster.pid").exists(),
        "the cluster was stopped: {log}"
    );
}
