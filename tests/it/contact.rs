//! The website contact form and the inbox: R-FORM-1 … R-FORM-5.

use gdpr_register::{contact, domain::Email, users::Role};
use reqwest::StatusCode;
use time::{Duration, OffsetDateTime};

use crate::{
    customers::add_company,
    support::{TestApp, location, texts},
};

/// Form fields as posted.
type Fields<'a> = &'a [(&'a str, &'a str)];

const MARKUP: &str = "<script>alert(1)</script><b>bold</b> & more";

async fn send(
    app: &TestApp,
    client: &reqwest::Client,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    app.post_form_as(client, "/contact", fields).await
}

/// The id of the newest message in the inbox.
async fn newest_message(app: &TestApp) -> uuid::Uuid {
    sqlx::query_scalar("SELECT id FROM contact_messages ORDER BY created_at DESC LIMIT 1")
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

async fn message_count(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM contact_messages")
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

/// R-FORM-1, R-FORM-3: e-mail and text are enough; the message is stored, the visitor is
/// thanked, and the info address gets all of it.
#[tokio::test]
async fn a_message_with_email_and_text_is_stored_thanked_and_mailed_to_info() {
    let app = TestApp::spawn().await;
    let visitor = app.new_browser();
    let page = app.get_as(&visitor, "/contact").await;
    assert_eq!(page.status(), StatusCode::OK);
    let r = send(
        &app,
        &visitor,
        &[
            ("email", "anna@kunde.test"),
            ("message", "Please call me about a 40 MVA transformer."),
            ("website", ""),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), "/contact/thanks?");
    let thanks = app
        .get_as(&visitor, "/contact/thanks")
        .await
        .text()
        .await
        .unwrap();
    assert!(texts(&thanks, "h1").contains(&"Tack för ditt meddelande".to_string()));
    assert_eq!(message_count(&app).await, 1);
    let mail = app.smtp.wait_for_recipient("info@btb.fi").await;
    assert!(mail.text().contains("anna@kunde.test"));
    assert!(mail.text().contains("40 MVA transformer"));
}

/// R-FORM-1: wrong input is answered 422 with the form as typed and a message per field;
/// nothing is stored.
#[tokio::test]
async fn wrong_input_gets_the_form_back_as_typed_with_a_message_per_field() {
    let app = TestApp::spawn().await;
    let visitor = app.new_browser();
    let too_long = "x".repeat(10_001);
    let cases: [(Fields, &str, &str); 4] = [
        (
            &[("email", ""), ("message", "Hej")],
            "email-error",
            "Fältet är obligatoriskt.",
        ),
        (
            &[("email", "not an address"), ("message", "Hej")],
            "email-error",
            "ingen e-postadress",
        ),
        (
            &[("email", "a@b.test"), ("message", "  ")],
            "message-error",
            "obligatoriskt",
        ),
        (
            &[("email", "a@b.test"), ("message", &too_long)],
            "message-error",
            "högst 10 000 tecken",
        ),
    ];
    for (fields, error_id, says) in cases {
        let mut fields = fields.to_vec();
        fields.push(("name", "Åsa <Öberg>"));
        let r = send(&app, &visitor, &fields).await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{error_id}");
        let page = r.text().await.unwrap();
        let error = texts(&page, &format!("#{error_id}")).join(" ");
        assert!(error.contains(says), "{error_id}: {error}");
        assert!(
            page.contains(r#"value="Åsa &#60;Öberg&#62;""#) || page.contains("Åsa &lt;Öberg&gt;")
        );
    }
    assert_eq!(message_count(&app).await, 0);
    // Exactly 10,000 characters are taken.
    let limit = "y".repeat(10_000);
    let r = send(
        &app,
        &visitor,
        &[("email", "a@b.test"), ("message", &limit)],
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
}

/// A robot that fills the hidden field is thanked, and nothing is stored or mailed.
#[tokio::test]
async fn a_filled_honeypot_is_thanked_and_nothing_is_kept() {
    let app = TestApp::spawn().await;
    let r = send(
        &app,
        &app.new_browser(),
        &[
            ("email", "bot@spam.test"),
            ("message", "Cheap pills"),
            ("website", "http://spam.test"),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(message_count(&app).await, 0);
    let queued: i64 = sqlx::query_scalar("SELECT count(*) FROM mail_outbox")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(queued, 0);
}

/// One client address gets five messages a quarter of an hour; the sixth is answered 429
/// with the form as typed, and is not stored.
#[tokio::test]
async fn a_client_sending_too_many_messages_is_asked_to_wait() {
    let app = TestApp::spawn().await;
    let visitor = app.new_browser();
    for n in 0..5 {
        let text = format!("Message {n}");
        let r = send(&app, &visitor, &[("email", "a@b.test"), ("message", &text)]).await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "message {n}");
    }
    // Another browser from the same address counts too.
    let r = send(
        &app,
        &app.new_browser(),
        &[("email", "a@b.test"), ("message", "Sixth")],
    )
    .await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let page = r.text().await.unwrap();
    assert!(page.contains("Vänta en kvart"));
    assert!(page.contains(">Sixth</textarea>"));
    assert_eq!(message_count(&app).await, 5);
}

/// The framed form works without our cookie (a frame on another site keeps it back): a
/// POST from our own page or an allowed site is taken by its Origin; another site's is
/// refused. The frame may only be placed by the allowed sites.
#[tokio::test]
async fn the_framed_form_is_taken_by_its_origin_without_a_cookie() {
    let app = TestApp::spawn_with(|c| {
        c.chat_origins = vec!["https://www.btb.test".parse().unwrap()];
    })
    .await;
    let page = app.get("/contact/embed?lang=fi").await;
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        csp.contains("frame-ancestors 'self' https://www.btb.test"),
        "{csp}"
    );
    let html = page.text().await.unwrap();
    assert!(texts(&html, "h1").contains(&"Ota yhteyttä".to_string()));
    assert!(texts(&html, "header").is_empty(), "no staff layout");
    let fields = [
        ("email", "pekka@kunde.test"),
        ("message", "Hei"),
        ("embed", "1"),
        ("lang", "fi"),
    ];
    let cookieless = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let post = |origin: &'static str| {
        cookieless
            .post(app.url("/contact"))
            .header("origin", origin)
            .form(&fields)
            .send()
    };
    let ours = app.base.clone();
    let r = cookieless
        .post(app.url("/contact"))
        .header("origin", ours)
        .form(&fields)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), "/contact/thanks?embed=1&lang=fi");
    assert_eq!(
        post("https://www.btb.test").await.unwrap().status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        post("https://evil.test").await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    let no_origin = cookieless
        .post(app.url("/contact"))
        .form(&fields)
        .send()
        .await
        .unwrap();
    assert_eq!(no_origin.status(), StatusCode::FORBIDDEN);
    // Another public form gets no such exception.
    let other = cookieless
        .post(app.url("/lang"))
        .header("origin", "https://www.btb.test")
        .form(&[("lang", "en")])
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), StatusCode::FORBIDDEN);
    assert_eq!(message_count(&app).await, 2);
    let thanks = app
        .get("/contact/thanks?embed=1&lang=fi")
        .await
        .text()
        .await
        .unwrap();
    assert!(texts(&thanks, "h1").contains(&"Kiitos viestistäsi".to_string()));
}

/// R-FORM-4: the inbox shows markup in a message as text, in the inbox and in the mail;
/// handling and deleting are audited; others get 403.
#[tokio::test]
async fn the_inbox_shows_markup_as_text_marks_handled_and_deletes_with_audit() {
    let app = TestApp::spawn().await;
    let r = send(
        &app,
        &app.new_browser(),
        &[
            ("email", "x@kunde.test"),
            ("name", MARKUP),
            ("message", MARKUP),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let id = newest_message(&app).await;
    let mailbox = app
        .signed_in_with(Role::Employee, |u| u.mailbox = true)
        .await;
    let employee = app.signed_in(Role::Employee).await;
    assert_eq!(
        app.get_as(&employee, "/inbox").await.status(),
        StatusCode::FORBIDDEN
    );

    let list = app.get_as(&mailbox, "/inbox").await.text().await.unwrap();
    assert!(!list.contains("<script>alert"), "escaped in the list");
    assert!(texts(&list, "td.excerpt")[0].contains("<script>alert(1)</script>"));
    let page = app
        .get_as(&mailbox, &format!("/inbox/{id}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(!page.contains("<script>alert") && !page.contains("<b>bold"));
    assert_eq!(texts(&page, ".message-text")[0], MARKUP);

    let mail = app.smtp.wait_for_recipient("info@btb.fi").await;
    let html = mail.part("text/html").unwrap();
    assert!(!html.contains("<script>") && !html.contains("<b>bold"));
    assert!(html.contains("&lt;script&gt;") || html.contains("&#60;script&#62;"));
    assert!(mail.text().contains(MARKUP));

    let r = app
        .post_form_as(&mailbox, &format!("/inbox/{id}/handled"), &[])
        .await;
    assert_eq!(location(&r), "/inbox");
    let open = app.get_as(&mailbox, "/inbox").await.text().await.unwrap();
    assert!(texts(&open, "td.excerpt").is_empty());
    let all = app
        .get_as(&mailbox, "/inbox?all=1")
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(texts(&all, "td.excerpt").len(), 1);

    let r = app
        .post_form_as(&mailbox, &format!("/inbox/{id}/delete"), &[])
        .await;
    assert_eq!(location(&r), "/inbox");
    assert_eq!(message_count(&app).await, 0);
    let actions: Vec<String> = sqlx::query_scalar(
        "SELECT action FROM audit_log WHERE entity = 'contact_message' ORDER BY id",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        actions,
        [
            "contact_message.create",
            "contact_message.handled",
            "contact_message.delete"
        ]
    );
    let again = app
        .post_form_as(&mailbox, &format!("/inbox/{id}/delete"), &[])
        .await;
    assert_eq!(again.status(), StatusCode::NOT_FOUND);
}

/// R-CUST-12 from a message: the register's own form opens filled in from the message,
/// and the person it adds waits in quarantine with the consent mail sent.
#[tokio::test]
async fn a_message_turned_into_a_contact_enters_quarantine_with_the_consent_mail() {
    let app = TestApp::spawn().await;
    let staff = app
        .signed_in_with(Role::Employee, |u| u.mailbox = true)
        .await;
    let company = add_company(&app, &staff, "Vaasan Sähkö").await;
    send(
        &app,
        &app.new_browser(),
        &[
            ("email", "ville@sahko.test"),
            ("name", "Ville Virtanen"),
            ("company", "Vaasan Sähkö"),
            ("phone", "+358 40 765 4321"),
            ("message", "Tarjouspyyntö"),
            ("lang", "fi"),
        ],
    )
    .await;
    let id = newest_message(&app).await;
    let choose = app
        .get_as(&staff, &format!("/inbox/{id}/contact"))
        .await
        .text()
        .await
        .unwrap();
    let doc = scraper::Html::parse_document(&choose);
    let link = doc
        .select(&scraper::Selector::parse("main ul a").unwrap())
        .next()
        .expect("the company offered")
        .value()
        .attr("href")
        .unwrap()
        .to_string();
    assert!(link.starts_with(&format!("/customers/{company}/people/new?")));
    let form = app.get_as(&staff, &link).await.text().await.unwrap();
    assert!(form.contains(r#"value="ville@sahko.test""#));
    assert!(form.contains(r#"value="Ville Virtanen""#));
    let r = app
        .post_form_as(
            &staff,
            &format!("/customers/{company}/people"),
            &[
                ("name", "Ville Virtanen"),
                ("email", "ville@sahko.test"),
                ("phone", "+358 40 765 4321"),
                ("language", "fi"),
                ("source", "web"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let status: String =
        sqlx::query_scalar("SELECT status FROM contacts WHERE email = 'ville@sahko.test'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(status, "quarantine");
    let consent = app.smtp.wait_for_recipient("ville@sahko.test").await;
    assert!(consent.text().contains("/consent/"));
    // Someone without the customer register reads the inbox but cannot add people.
    let mailbox_only = app.signed_in_with(Role::Ceo, |u| u.mailbox = true).await;
    let r = app
        .get_as(&mailbox_only, &format!("/inbox/{id}/contact"))
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}

/// R-FORM-5: a message is kept for CONTACT_RETENTION_DAYS days to the second, and deleted
/// by the job after that, with an audit row.
#[tokio::test]
async fn messages_are_deleted_by_the_job_after_the_retention_days_and_not_before() {
    let app = TestApp::spawn_with(|c| c.contact_retention_days = 30).await;
    send(
        &app,
        &app.new_browser(),
        &[("email", "a@b.test"), ("message", "Hej")],
    )
    .await;
    let created: OffsetDateTime = sqlx::query_scalar("SELECT created_at FROM contact_messages")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    app.run_jobs_at(created + Duration::days(30)).await;
    assert_eq!(message_count(&app).await, 1, "kept on the last second");
    let reports = app
        .run_jobs_at(created + Duration::days(30) + Duration::seconds(1))
        .await;
    assert_eq!(message_count(&app).await, 0);
    let report = reports
        .iter()
        .find(|r| r.job == "contact-retention")
        .unwrap();
    assert_eq!(report.outcome, "deleted 1 contact-form messages");
    let audited: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE action = 'contact_message.delete' AND actor_id = 'contact-retention'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(audited, 1);
}

/// The same boundary through the command line's `jobs run-once --at`.
#[tokio::test]
async fn the_command_line_runs_the_retention_at_a_given_time() {
    let app = TestApp::spawn().await;
    send(
        &app,
        &app.new_browser(),
        &[("email", "a@b.test"), ("message", "Hej")],
    )
    .await;
    sqlx::query("UPDATE contact_messages SET created_at = '2026-01-01T00:00:00Z'")
        .execute(&app.pool)
        .await
        .unwrap();
    for (at, left) in [("2026-06-30T00:00:00Z", 1), ("2026-06-30T00:00:01Z", 0)] {
        let out = app
            .cli()
            .args(["jobs", "run-once", "--at", at])
            .output()
            .await
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(message_count(&app).await, left, "at {at}");
    }
}

/// What the data-subject rights see and erase: every message left with the address,
/// whatever its case, and nobody else's.
#[tokio::test]
async fn held_about_and_erase_about_reach_every_message_of_the_address() {
    let app = TestApp::spawn().await;
    for (email, text) in [
        ("Anna@Kunde.test", "one"),
        ("anna@kunde.test", "two"),
        ("bo@kunde.test", "three"),
    ] {
        send(
            &app,
            &app.new_browser(),
            &[("email", email), ("message", text)],
        )
        .await;
    }
    let email = Email::parse("ANNA@kunde.test").unwrap();
    let mut tx = app.pool.begin().await.unwrap();
    let held = contact::held_about(&mut tx, &email).await.unwrap();
    let texts: Vec<&str> = held.iter().map(|m| m.message.as_str()).collect();
    assert_eq!(texts, ["one", "two"]);
    assert!(
        serde_json::to_string(&held)
            .unwrap()
            .contains("\"message\":\"one\"")
    );
    assert_eq!(contact::erase_about(&mut tx, &email).await.unwrap(), 2);
    tx.commit().await.unwrap();
    assert_eq!(message_count(&app).await, 1);
}
