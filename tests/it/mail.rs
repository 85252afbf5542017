use std::{collections::HashSet, sync::Arc, time::Duration};

use gdpr_register::{
    mail::{self, Mail},
    users::Role,
    web::Lang,
};
use reqwest::StatusCode;

use crate::support::{SmtpSink, TestApp, pool, start_server};

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
    let reserved = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = reserved.local_addr().unwrap();
    drop(reserved);
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

#[tokio::test]
async fn two_instances_on_one_database_deliver_fifty_mails_exactly_once() {
    let app = TestApp::spawn().await;
    let second_pool = pool(&app.db).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let second = start_server(&second_pool, &Arc::clone(&app.config), listener).await;

    let mut tx = app.pool.begin().await.unwrap();
    for i in 0..50 {
        let mail = Mail {
            recipient: format!("person{i}@kund.test"),
            language: Lang::En,
            kind: "test",
            subject: format!("Mail {i}"),
            text: "Hello".into(),
            html: "<p>Hello</p>".into(),
            headers: vec![],
            contact_id: None,
        };
        mail::enqueue(&mut tx, &mail).await.unwrap();
    }
    tx.commit().await.unwrap();

    app.smtp.wait_for(50).await;
    app.outbox_drained().await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    let received = app.smtp.received();
    assert_eq!(received.len(), 50);
    let distinct: HashSet<_> = received.iter().map(|m| m.recipients.clone()).collect();
    assert_eq!(distinct.len(), 50);
    second.stop().await;
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
    let reserved = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = reserved.local_addr().unwrap();
    drop(reserved);
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

    let files: Vec<_> = std::fs::read_dir(app.data_dir.path().join("outbox"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].extension().unwrap(), "eml");
    let content = std::fs::read_to_string(&files[0]).unwrap();
    assert!(content.contains("asa@kund.test"));
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

/// A sender that died with mail claimed: once the claim runs out, the mail goes out.
#[tokio::test]
async fn mail_claimed_by_a_crashed_instance_is_sent_when_the_claim_runs_out() {
    let app = TestApp::spawn().await;
    let mut tx = app.pool.begin().await.unwrap();
    let mail = Mail {
        recipient: "late@kund.test".into(),
        language: Lang::En,
        kind: "test",
        subject: "Late".into(),
        text: "Hello".into(),
        html: "<p>Hello</p>".into(),
        headers: vec![],
        contact_id: None,
    };
    let id = mail::enqueue(&mut tx, &mail).await.unwrap();
    sqlx::query("UPDATE mail_outbox SET status = 'sending', claimed_until = now() + interval '3 seconds' WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();

    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        app.smtp.received().is_empty(),
        "not while another instance holds it"
    );
    let mails = app.smtp.wait_for(1).await;

    assert_eq!(mails[0].recipients, ["late@kund.test"]);
}
