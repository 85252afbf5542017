use std::{
    collections::HashMap,
    num::NonZeroU32,
    os::unix::fs::PermissionsExt,
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};

use gdpr_register::{
    mail::{self, Attachment, Mail},
    users::Role,
    web::Lang,
};
use reqwest::StatusCode;

use crate::{
    customers::{add_company, add_person},
    support::{SmtpSink, TestApp, pool, smtp::Behaviour, start_server},
};

/// A mail as a feature would queue it, to `recipient`.
fn test_mail(recipient: &str) -> Mail {
    Mail {
        recipient: recipient.into(),
        language: Lang::En,
        kind: "test",
        subject: format!("For {recipient}"),
        text: "Hello".into(),
        html: "<p>Hello</p>".into(),
        headers: vec![],
        attachments: vec![],
        contact_id: None,
        batch_id: None,
    }
}

async fn enqueue_all(app: &TestApp, mails: impl IntoIterator<Item = Mail>) -> Vec<uuid::Uuid> {
    let mut tx = app.pool.begin().await.unwrap();
    let mut ids = Vec::new();
    for mail in mails {
        ids.push(mail::enqueue(&mut tx, &mail).await.unwrap());
    }
    tx.commit().await.unwrap();
    ids
}

/// A port where nothing listens yet.
fn free_port() -> std::net::SocketAddr {
    let reserved = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    reserved.local_addr().unwrap()
}

/// How many mails each recipient received.
fn per_recipient(sink: &SmtpSink) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for mail in sink.received() {
        *counts.entry(mail.recipients.join(",")).or_default() += 1;
    }
    counts
}

/// The instances delivering mail on this database (by their first sender's session).
async fn delivery_sessions(app: &TestApp) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity
         WHERE datname = current_database() AND application_name = 'gdpr-register mail delivery 1'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap()
}

/// Waits (at most 20 seconds) until `n` instances are ready to deliver.
async fn wait_for_delivery_sessions(app: &TestApp, n: i64) {
    for _ in 0..200 {
        if delivery_sessions(app).await >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("fewer than {n} instances deliver mail");
}

fn eml_files(app: &TestApp) -> Vec<PathBuf> {
    match std::fs::read_dir(app.data_dir.path().join("outbox")) {
        Ok(dir) => dir.map(|e| e.unwrap().path()).collect(),
        Err(_) => vec![],
    }
}

/// Waits (at most 20 seconds) until the outbox folder holds exactly `n` files.
async fn wait_for_eml_files(app: &TestApp, n: usize) -> Vec<PathBuf> {
    for _ in 0..200 {
        let files = eml_files(app);
        if files.len() == n {
            return files;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("expected {n} .eml files, found {:?}", eml_files(app));
}

async fn outbox_row(app: &TestApp) -> (String, i32) {
    sqlx::query_as("SELECT status, attempts FROM mail_outbox")
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

async fn invite(app: &TestApp, admin: &reqwest::Client, email: &str) {
    let r = app
        .post_form_as(
            admin,
            "/users",
            &[
                ("email", email),
                ("name", "Åsa Öberg"),
                ("role", "employee"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn with_the_smtp_server_down_an_invitation_is_delivered_once_it_comes_back() {
    let port = free_port();
    let app = TestApp::spawn_with(|c| {
        c.smtp_url = Some(gdpr_register::config::Secret::new(
            format!("smtp://{port}").parse().unwrap(),
        ));
    })
    .await;
    let admin = app.signed_in(Role::Admin).await;
    invite(&app, &admin, "asa@kund.test").await;

    // The worker tries, fails, and keeps the mail queued.
    let mut waited = 0;
    loop {
        let (status, attempts) = outbox_row(&app).await;
        if attempts >= 2 {
            assert_eq!(status, "queued");
            break;
        }
        waited += 1;
        assert!(waited < 200, "no delivery attempt was made");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let sink = SmtpSink::start_on(port).await;
    let mails = sink.wait_for(1).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;

    assert_eq!(sink.received().len(), 1, "delivered exactly once");
    assert_eq!(mails[0].recipients, ["asa@kund.test"]);
    assert_eq!(outbox_row(&app).await.0, "sent");
}

/// Both instances take part, and each mail leaves once: a sink that takes a while over
/// each mail keeps the first instance busy while the second claims its share.
#[tokio::test]
async fn two_instances_on_one_database_both_deliver_and_send_fifty_mails_exactly_once() {
    let sink = SmtpSink::slow(Duration::from_millis(20)).await;
    let app = TestApp::spawn_with(|c| sink.receive_for(c)).await;
    let second_pool = pool(&app.db).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let second = start_server(&second_pool, &Arc::clone(&app.config), listener).await;
    wait_for_delivery_sessions(&app, 2).await;

    enqueue_all(
        &app,
        (0..50).map(|i| test_mail(&format!("person{i}@kund.test"))),
    )
    .await;
    sink.wait_for(50).await;
    app.outbox_drained().await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    let counts = per_recipient(&sink);
    assert_eq!(counts.len(), 50);
    assert!(counts.values().all(|n| *n == 1), "{counts:?}");
    let senders: Vec<(String, i64)> = sqlx::query_as(
        "SELECT sent_by, count(*) FROM mail_outbox WHERE status = 'sent' GROUP BY sent_by",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(senders.len(), 2, "both instances delivered: {senders:?}");
    second.stop().await;
}

/// A batch at 20 a second: two instances together keep to the pace, and each mail
/// leaves once.
#[tokio::test]
async fn two_instances_keep_a_batch_to_its_rate_and_send_each_mail_once() {
    let app = TestApp::spawn().await;
    let second_pool = pool(&app.db).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let second = start_server(&second_pool, &Arc::clone(&app.config), listener).await;
    wait_for_delivery_sessions(&app, 2).await;

    let mut tx = app.pool.begin().await.unwrap();
    let batch = mail::new_batch(&mut tx, "test", NonZeroU32::new(20))
        .await
        .unwrap();
    for i in 0..40 {
        let mail = test_mail(&format!("paced{i}@kund.test")).in_batch(batch);
        mail::enqueue(&mut tx, &mail).await.unwrap();
    }
    let started = Instant::now();
    tx.commit().await.unwrap();
    app.smtp.wait_for(40).await;
    let took = started.elapsed();
    app.outbox_drained().await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    // 39 intervals of 50 ms after the first: never faster, however many instances send.
    assert!(took >= Duration::from_millis(1900), "took only {took:?}");
    let counts = per_recipient(&app.smtp);
    assert_eq!(counts.len(), 40);
    assert!(counts.values().all(|n| *n == 1), "{counts:?}");
    second.stop().await;
}

/// An instance with nothing to send leaves the database alone: the statements with which
/// it claims mail and records outcomes do not wake it again.
#[tokio::test]
async fn an_idle_instance_leaves_the_database_alone() {
    let app = TestApp::spawn().await;
    enqueue_all(&app, [test_mail("one@kund.test")]).await;
    app.smtp.wait_for(1).await;
    app.outbox_drained().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let last_statements = || async {
        sqlx::query_scalar::<_, Vec<time::OffsetDateTime>>(
            "SELECT array_agg(state_change ORDER BY application_name) FROM pg_stat_activity
             WHERE datname = current_database()
               AND application_name LIKE 'gdpr-register mail delivery %'",
        )
        .fetch_one(&app.pool)
        .await
        .unwrap()
    };
    let before = last_statements().await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!before.is_empty());
    assert_eq!(
        last_statements().await,
        before,
        "the senders ran statements"
    );
}

/// A sign-in link or a password reset does not wait behind a mailing of hundreds queued
/// before it: mail of no mailing goes first.
#[tokio::test]
async fn mail_of_no_mailing_goes_before_a_mailing_queued_earlier() {
    let sink = SmtpSink::slow(Duration::from_millis(10)).await;
    let app = TestApp::spawn_with(|c| {
        sink.receive_for(c);
        c.smtp_connections = 2;
    })
    .await;
    let mut tx = app.pool.begin().await.unwrap();
    let batch = mail::new_batch(&mut tx, "test", None).await.unwrap();
    let mailing: Vec<Mail> = (0..200)
        .map(|i| test_mail(&format!("many{i}@kund.test")).in_batch(batch))
        .collect();
    mail::enqueue_many(&mut tx, &mailing).await.unwrap();
    tx.commit().await.unwrap();
    sink.wait_for(1).await;
    enqueue_all(&app, [test_mail("urgent@kund.test")]).await;

    let urgent = sink.wait_for_recipient("urgent@kund.test").await;
    let position = sink
        .received()
        .iter()
        .position(|m| m.recipients == urgent.recipients)
        .unwrap();
    assert!(position < 50, "sent after {position} mails of the mailing");
}

/// An instance killed while it holds claims: its session ends with it, and the instance
/// still running delivers every one of its mails, once, well within a minute.
#[tokio::test]
async fn a_mail_claimed_by_a_killed_instance_is_delivered_by_another_within_a_minute() {
    // This instance's mail server is down at first, so the other one claims mail too.
    let port = free_port();
    let app = TestApp::spawn_with(|c| {
        c.smtp_url = Some(gdpr_register::config::Secret::new(
            format!("smtp://{port}").parse().unwrap(),
        ));
        c.mail_max_attempts = 10_000;
    })
    .await;
    let stalling = SmtpSink::start_with(
        "127.0.0.1:0".parse().unwrap(),
        Behaviour {
            stall: true,
            ..Behaviour::default()
        },
    )
    .await;
    enqueue_all(
        &app,
        (0..200).map(|i| test_mail(&format!("k{i}@kund.test"))),
    )
    .await;
    let mut other = app
        .cli()
        .arg("serve")
        .env("SMTP_URL", stalling.url())
        .env("LISTEN_ADDR", "127.0.0.1:0")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();

    // The other instance is mid-conversation with its mail server, holding its claims.
    stalling.wait_stalled().await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let held: Vec<uuid::Uuid> = sqlx::query_scalar(
        "SELECT id FROM mail_outbox WHERE status = 'sending' AND claimed_at < now() - interval '1 second'",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert!(!held.is_empty(), "the other instance holds no claims");
    other.kill().await.unwrap(); // SIGKILL
    let killed = Instant::now();
    let sink = SmtpSink::start_on(port).await;

    let mut sent = 0;
    while sent < 200 {
        assert!(
            killed.elapsed() < Duration::from_secs(60),
            "{sent} of 200 sent a minute after the kill"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
        sent =
            sqlx::query_scalar::<_, i64>("SELECT count(*) FROM mail_outbox WHERE status = 'sent'")
                .fetch_one(&app.pool)
                .await
                .unwrap();
    }
    sink.wait_for(200).await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    let counts = per_recipient(&sink);
    assert_eq!(counts.len(), 200);
    assert!(counts.values().all(|n| *n == 1), "{counts:?}");
    assert!(stalling.received().is_empty());
    let held_sent: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM mail_outbox WHERE id = ANY($1) AND status = 'sent'",
    )
    .bind(&held)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(held_sent, held.len() as i64);
}

/// The register extract's shape: a PDF and a JSON file, and the unsubscribe headers of
/// RFC 8058, all reach the recipient; the attachments are not kept once sent.
#[tokio::test]
async fn attachments_and_unsubscribe_headers_reach_the_recipient_and_are_dropped_once_sent() {
    let app = TestApp::spawn().await;
    let pdf = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj << >> endobj\n%%EOF\n".to_vec();
    let json = r#"{"name":"Åsa Öberg","email":"asa@kund.test"}"#.as_bytes().to_vec();
    let mut mail = test_mail("asa@kund.test");
    mail.headers = vec![
        (
            "List-Unsubscribe".into(),
            "<https://register.btb.fi/unsubscribe/abc123>".into(),
        ),
        (
            "List-Unsubscribe-Post".into(),
            "List-Unsubscribe=One-Click".into(),
        ),
    ];
    mail.attachments = vec![
        Attachment {
            filename: "register-extract.pdf".into(),
            content_type: "application/pdf".into(),
            content: pdf.clone(),
        },
        Attachment {
            filename: "register-extract.json".into(),
            content_type: "application/json".into(),
            content: json.clone(),
        },
    ];
    enqueue_all(&app, [mail]).await;

    let received = app.smtp.wait_for(1).await.remove(0);
    app.outbox_drained().await;

    assert_eq!(
        received.header("List-Unsubscribe").unwrap(),
        "<https://register.btb.fi/unsubscribe/abc123>"
    );
    assert_eq!(
        received.header("List-Unsubscribe-Post").unwrap(),
        "List-Unsubscribe=One-Click"
    );
    assert_eq!(received.parsed().ctype.mimetype, "multipart/mixed");
    assert_eq!(received.text().trim(), "Hello");
    assert_eq!(
        received.attachments(),
        [
            (
                "register-extract.pdf".to_string(),
                "application/pdf".to_string(),
                pdf
            ),
            (
                "register-extract.json".to_string(),
                "application/json".to_string(),
                json
            ),
        ]
    );
    let kept: i64 = sqlx::query_scalar("SELECT count(*) FROM mail_attachments")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(kept, 0);
}

/// A refused recipient: the server's answer names the address, but neither the outbox
/// (nor the log line, which carries the same text) keeps it; a permanent refusal is
/// not retried.
#[tokio::test]
async fn a_recipient_refused_by_the_server_fails_at_once_without_its_address_in_the_error() {
    let sink = SmtpSink::start_with(
        "127.0.0.1:0".parse().unwrap(),
        Behaviour {
            refuse: vec!["refused@kund.test".into()],
            ..Behaviour::default()
        },
    )
    .await;
    let app = TestApp::spawn_with(|c| sink.receive_for(c)).await;
    let admin = app.signed_in(Role::Admin).await;
    invite(&app, &admin, "refused@kund.test").await;

    let mut waited = 0;
    while outbox_row(&app).await.0 != "failed" {
        waited += 1;
        assert!(waited < 200, "the mail was never marked failed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let (attempts, error): (i32, String) =
        sqlx::query_as("SELECT attempts, last_error FROM mail_outbox")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(attempts, 1);
    assert!(error.contains("550"), "{error}");
    assert!(!error.to_lowercase().contains("refused@"), "{error}");
    assert!(error.contains("[address]"), "{error}");
}
#[tokio::test]
async fn mail_is_multipart_text_and_html_in_the_recipients_language() {
    let app = TestApp::spawn().await;
    let admin = app.signed_in(Role::Admin).await;
    // The administrator works in English; the new user has chosen nothing yet, so the
    // invitation follows the page it was sent from.
    app.post_form_as(&admin, "/lang", &[("lang", "en"), ("back", "/")])
        .await;
    invite(&app, &admin, "asa@kund.test").await;

    let mail = app.smtp.wait_for(1).await.remove(0);

    assert_eq!(mail.parsed().ctype.mimetype, "multipart/alternative");
    assert_eq!(
        mail.subject(),
        "Your account in the BTB Transformers Ab register"
    );
    assert!(mail.text().contains("Hello Åsa Öberg,"));
    let html = mail.part("text/html").unwrap();
    assert!(html.contains("Åsa Öberg") && html.contains("<a href=\"http://"));
    assert!(mail.header("Message-ID").unwrap().contains('@'));
}

#[tokio::test]
async fn a_mail_that_keeps_failing_is_marked_failed_and_shown_to_the_administrator() {
    let port = free_port();
    let app = TestApp::spawn_with(|c| {
        c.smtp_url = Some(gdpr_register::config::Secret::new(
            format!("smtp://{port}").parse().unwrap(),
        ));
        c.mail_max_attempts = 2;
    })
    .await;
    let admin = app.signed_in(Role::Admin).await;
    invite(&app, &admin, "asa@kund.test").await;

    let mut waited = 0;
    while outbox_row(&app).await.0 != "failed" {
        waited += 1;
        assert!(waited < 200, "the mail was never marked failed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let page = app.get_as(&admin, "/mail").await.text().await.unwrap();
    assert!(
        page.contains("asa@kund.test") && page.contains("Försök igen"),
        "{page}"
    );
    let home = app.get_as(&admin, "/").await.text().await.unwrap();
    assert!(
        home.contains("1 e-postmeddelanden kunde inte levereras"),
        "{home}"
    );

    // Once the server is back, "try again" sends it.
    let sink = SmtpSink::start_on(port).await;
    let id: uuid::Uuid = sqlx::query_scalar("SELECT id FROM mail_outbox")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let r = app
        .post_form_as(&admin, &format!("/mail/{id}/retry"), &[])
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    sink.wait_for(1).await;
}

#[tokio::test]
async fn without_an_smtp_server_mail_is_written_as_eml_files() {
    let app = TestApp::spawn_with(|c| c.smtp_url = None).await;
    let admin = app.signed_in(Role::Admin).await;
    invite(&app, &admin, "asa@kund.test").await;
    app.outbox_drained().await;

    let files = eml_files(&app);
    assert_eq!(files.len(), 1);
    let id: uuid::Uuid = sqlx::query_scalar("SELECT id FROM mail_outbox")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(files[0].file_name().unwrap(), format!("{id}.eml").as_str());
    let mode = std::fs::metadata(&files[0]).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "readable by the owner only");
    let content = std::fs::read_to_string(&files[0]).unwrap();
    assert!(content.contains("asa@kund.test"));
}

/// R-CUST-10: erasing a person removes the `.eml` copies of the mail they were sent, and
/// only theirs.
#[tokio::test]
async fn erasing_a_person_removes_the_eml_files_of_their_mail() {
    let app = TestApp::spawn_with(|c| c.smtp_url = None).await;
    let staff = app.signed_in(Role::Employee).await;
    let company = add_company(&app, &staff, "Fortum").await;
    let asa = add_person(&app, &staff, &company, "Åsa Öberg", "asa@kund.test", "sv").await;
    add_person(&app, &staff, &company, "Outi Vanha", "outi@kund.test", "fi").await;
    wait_for_eml_files(&app, 2).await;

    let r = app
        .post_form_as(&staff, &format!("/people/{asa}/delete"), &[])
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);

    let left = wait_for_eml_files(&app, 1).await;
    let content = std::fs::read_to_string(&left[0]).unwrap();
    assert!(content.contains("outi@kund.test") && !content.contains("asa@kund.test"));
}

#[tokio::test]
async fn eml_files_are_removed_with_their_mail_after_the_retention_period() {
    let app = TestApp::spawn_with(|c| c.smtp_url = None).await;
    let admin = app.signed_in(Role::Admin).await;
    invite(&app, &admin, "asa@kund.test").await;
    app.outbox_drained().await;
    wait_for_eml_files(&app, 1).await;

    // The jobs mail the audit log's head to the info address too: count Åsa's only.
    let to_asa = |app: &TestApp| {
        eml_files(app)
            .iter()
            .filter(|f| {
                std::fs::read_to_string(f)
                    .unwrap()
                    .contains("asa@kund.test")
            })
            .count()
    };
    let now = time::OffsetDateTime::now_utc();
    app.run_jobs_at(now + time::Duration::days(29)).await;
    let kept = to_asa(&app);
    app.run_jobs_at(now + time::Duration::days(31)).await;

    assert_eq!((kept, to_asa(&app)), (1, 0));
}

/// R-CUST-13: informing hundreds of earlier contacts queues one paced batch, a few
/// hundred people per transaction, never all in one.
#[tokio::test]
async fn the_information_mailing_to_everyone_is_one_paced_batch_queued_a_few_hundred_per_transaction()
 {
    let app = TestApp::spawn().await;
    let admin = app.signed_in(Role::Admin).await;
    let rows: String = (1..=450)
        .map(|n| format!("Old Friends Ab,Person {n},person{n}@old.test,sv,yes,2015-03-01\n"))
        .collect();
    app.import_csv(&format!(
        "company_name,person_name,email,language,legacy,last_contacted\n{rows}"
    ))
    .await;

    let r = app.post_form_as(&admin, "/people/legacy/inform", &[]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);

    let (informed, transactions): (i64, i64) = sqlx::query_as(
        "SELECT count(*), count(DISTINCT xmin::text) FROM contacts WHERE legacy_informed_at IS NOT NULL",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!((informed, transactions), (450, 3));
    let (mails, batches, rate): (i64, i64, Option<i32>) = sqlx::query_as(
        "SELECT count(*), count(DISTINCT o.batch_id), max(b.per_second)
         FROM mail_outbox o JOIN mail_batches b ON b.id = o.batch_id",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!((mails, batches, rate), (450, 1, Some(10)));
}

#[tokio::test]
async fn delivered_mail_is_removed_after_the_retention_period() {
    let app = TestApp::spawn().await;
    let admin = app.signed_in(Role::Admin).await;
    invite(&app, &admin, "asa@kund.test").await;
    app.smtp.wait_for(1).await;
    app.outbox_drained().await;

    let now = time::OffsetDateTime::now_utc();
    let invitations = "SELECT count(*) FROM mail_outbox WHERE kind = 'invitation'";
    app.run_jobs_at(now + time::Duration::days(29)).await;
    let kept: i64 = sqlx::query_scalar(invitations)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    app.run_jobs_at(now + time::Duration::days(31)).await;
    let left: i64 = sqlx::query_scalar(invitations)
        .fetch_one(&app.pool)
        .await
        .unwrap();

    assert_eq!((kept, left), (1, 0));
}

#[tokio::test]
async fn a_delivered_mail_keeps_no_body_because_its_links_work() {
    let app = TestApp::spawn().await;
    let admin = app.signed_in(Role::Admin).await;
    invite(&app, &admin, "asa@kund.test").await;
    app.smtp.wait_for(1).await;
    app.outbox_drained().await;

    let (text, html): (String, String) =
        sqlx::query_as("SELECT body_text, body_html FROM mail_outbox")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!((text.as_str(), html.as_str()), ("", ""));
}
