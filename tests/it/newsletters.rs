//! Newsletters: double opt-in, withdrawal by link, one-click and staff, campaigns with
//! their headers, pacing, bounces, and exactly-once sending across instances.

use std::{collections::HashMap, sync::Arc, time::Duration};

use gdpr_register::users::Role;
use reqwest::StatusCode;
use uuid::Uuid;

use crate::{
    customers::{add_company, add_person},
    support::{Setup, SmtpSink, TestApp, location, pool, smtp::Behaviour, start_server, texts},
};

/// Asks for the newsletter on the public page, as a visitor would.
async fn ask(app: &TestApp, client: &reqwest::Client, email: &str) -> reqwest::Response {
    app.post_form_as(
        client,
        "/subscribe",
        &[
            ("email", email),
            ("name", "Åsa Öberg"),
            ("company", "Vaasan Sähkö Oy"),
            ("area", "00000000-0000-4000-8000-000000000003"),
        ],
    )
    .await
}

/// `n` subscribers in the register, confirmed, in `lang`; their ids.
async fn subscribers(app: &TestApp, n: usize, lang: &str) -> Vec<Uuid> {
    let company = Uuid::new_v4();
    sqlx::query("INSERT INTO companies (id, name) VALUES ($1, 'Kund Ab')")
        .bind(company)
        .execute(&app.pool)
        .await
        .unwrap();
    let mut ids = Vec::new();
    for _ in 0..n {
        let id = Uuid::new_v4();
        sqlx::query(
            "INSERT INTO contacts (id, company_id, name, email, language, source, status, newsletter, confirmed_at)
             VALUES ($1, $2, 'Kund', $3, $4, 'fair', 'active', true, now())",
        )
        .bind(id)
        .bind(company)
        .bind(format!("s{}@kund.test", id.simple()))
        .bind(lang)
        .execute(&app.pool)
        .await
        .unwrap();
        ids.push(id);
    }
    ids
}

/// Writes a campaign as the administrator; its id.
async fn new_campaign(app: &TestApp, admin: &reqwest::Client, rate: &str) -> String {
    let r = app
        .post_form_as(
            admin,
            "/campaigns/new",
            &[
                ("subject", "Nytt från BTB"),
                ("body", "# Hösten\n\nVi har **nya** transformatorer."),
                ("per_second", rate),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    location(&r).trim_start_matches("/campaigns/").to_string()
}

async fn send_now(app: &TestApp, admin: &reqwest::Client, campaign: &str) {
    let r = app
        .post_form_as(
            admin,
            &format!("/campaigns/{campaign}/send"),
            &[("send_at", "")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
}

fn per_recipient(sink: &SmtpSink) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for mail in sink.received() {
        *counts.entry(mail.recipients.join(",")).or_default() += 1;
    }
    counts
}

async fn newsletter_of(app: &TestApp, email: &str) -> Option<bool> {
    sqlx::query_scalar("SELECT newsletter FROM contacts WHERE lower(email) = lower($1)")
        .bind(email)
        .fetch_optional(&app.pool)
        .await
        .unwrap()
}

/// R-CUST-8: a visitor subscribes by double opt-in. Opening the mailed link changes
/// nothing; the button subscribes, with a consent record, and the new subscriber enters
/// the register as a person with the source web.
#[tokio::test]
async fn opening_the_confirmation_link_changes_nothing_and_its_button_subscribes_a_new_person() {
    let app = TestApp::spawn().await;
    let visitor = app.new_browser();
    let page = app.get_as(&visitor, "/subscribe").await;
    assert_eq!(page.status(), StatusCode::OK);

    let r = ask(&app, &visitor, "asa@kund.test").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        newsletter_of(&app, "asa@kund.test").await,
        None,
        "nothing stored yet"
    );
    let link = app.mailed_link(0, "/subscribe/").await;

    let stranger = app.new_browser();
    for _ in 0..2 {
        let page = app.get_as(&stranger, &link).await;
        assert_eq!(page.status(), StatusCode::OK);
        let page = page.text().await.unwrap();
        assert_eq!(texts(&page, "main form button").len(), 1, "one button");
    }
    assert_eq!(
        newsletter_of(&app, "asa@kund.test").await,
        None,
        "GET changed nothing"
    );

    let r = app
        .post_form_as(&stranger, &link, &[("from", "page")])
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(newsletter_of(&app, "asa@kund.test").await, Some(true));
    let kept: i64 =
        sqlx::query_scalar("SELECT count(*) FROM link_tokens WHERE payload IS NOT NULL")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(kept, 0, "what was typed is not kept in the used link");
    let (source, status): (String, String) =
        sqlx::query_as("SELECT source, status FROM contacts WHERE email = 'asa@kund.test'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!((source.as_str(), status.as_str()), ("web", "active"));
    let (version, method, text, given): (String, String, String, bool) = sqlx::query_as(
        "SELECT text_version, method, text, given_at IS NOT NULL FROM consents WHERE purpose = 'newsletter'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        (version.as_str(), method.as_str(), given),
        ("2026-12-01", "form", true)
    );
    assert!(
        text.contains("unsubscribe at any time") || text.contains("när som helst"),
        "{text}"
    );
    let interests: i64 = sqlx::query_scalar("SELECT count(*) FROM newsletter_interests")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(interests, 1);

    // Used once: pressing again subscribes no one twice.
    let again = app
        .post_form_as(&stranger, &link, &[("from", "page")])
        .await;
    assert_eq!(again.status(), StatusCode::OK);
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM newsletter_events")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(events, 1);
}

/// An address already subscribed gets exactly the answer a new one gets (no enumeration),
/// and a flood for one address is refused after three requests.
#[tokio::test]
async fn subscribing_an_address_already_subscribed_answers_the_same_and_is_rate_limited() {
    let app = TestApp::spawn().await;
    subscribers(&app, 1, "sv").await;
    let known: String = sqlx::query_scalar("SELECT email FROM contacts")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let fresh = ask(&app, &app.new_browser(), "new@kund.test").await;
    let again = ask(&app, &app.new_browser(), &known).await;
    assert_eq!(fresh.status(), again.status());
    let strip = |page: String| texts(&page, "main").join("");
    assert_eq!(
        strip(fresh.text().await.unwrap()),
        strip(again.text().await.unwrap())
    );

    for _ in 0..2 {
        assert_eq!(
            ask(&app, &app.new_browser(), &known).await.status(),
            StatusCode::OK
        );
    }
    let refused = ask(&app, &app.new_browser(), &known).await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    // Another address from elsewhere is not held up.
    assert_eq!(
        ask(&app, &app.new_browser(), "other@kund.test")
            .await
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_subscription_form_with_bad_input_is_refused_with_messages_and_writes_nothing() {
    let app = TestApp::spawn().await;
    let visitor = app.new_browser();
    let long = "x".repeat(300);
    for fields in [
        vec![
            ("email", "not-an-address"),
            ("name", "Åsa"),
            ("company", "Kund"),
        ],
        vec![
            ("email", "asa@kund.test"),
            ("name", ""),
            ("company", "Kund"),
        ],
        vec![("email", "asa@kund.test"), ("name", "Åsa"), ("company", "")],
        vec![
            ("email", "asa@kund.test"),
            ("name", "Åsa"),
            ("company", &long),
        ],
        vec![
            ("email", "asa@kund.test"),
            ("name", "Åsa"),
            ("company", "K"),
            ("area", "<script>"),
        ],
    ] {
        let r = app.post_form_as(&visitor, "/subscribe", &fields).await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{fields:?}");
        assert!(r.text().await.unwrap().contains("field-error"));
    }
    let tokens: i64 = sqlx::query_scalar("SELECT count(*) FROM link_tokens")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(tokens, 0);
}

/// R-CUST-8: staff record an opt-in given by phone, naming who took it, and unsubscribe
/// someone who asks by phone; the person's page shows the history.
#[tokio::test]
async fn staff_record_a_phone_opt_in_with_their_name_and_unsubscribe_on_request() {
    let app = TestApp::spawn().await;
    let staff = app.signed_in(Role::Employee).await;
    let company = add_company(&app, &staff, "Kund Ab").await;
    let person = add_person(&app, &staff, &company, "Åsa", "asa@kund.test", "sv").await;

    let r = app
        .post_form_as(&staff, &format!("/people/{person}/newsletter/phone"), &[])
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        newsletter_of(&app, "asa@kund.test").await,
        Some(false),
        "not without the tick"
    );

    let r = app
        .post_form_as(
            &staff,
            &format!("/people/{person}/newsletter/phone"),
            &[("agreed", "on")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(newsletter_of(&app, "asa@kund.test").await, Some(true));
    let (method, by): (String, String) = sqlx::query_as(
        "SELECT c.method, u.name FROM consents c JOIN users u ON u.id = c.recorded_by
         WHERE c.purpose = 'newsletter'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!((method.as_str(), by.as_str()), ("staff", "Test employee"));

    let r = app
        .post_form_as(
            &staff,
            &format!("/people/{person}/newsletter/unsubscribe"),
            &[],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(newsletter_of(&app, "asa@kund.test").await, Some(false));
    let withdrawn: bool = sqlx::query_scalar(
        "SELECT withdrawn_at IS NOT NULL FROM consents WHERE purpose = 'newsletter'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert!(withdrawn, "the consent record has its withdrawal time");

    let page = app
        .get_as(&staff, &format!("/people/{person}/newsletter"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("Test employee"),
        "who took the opt-in is named"
    );
    let history = texts(&page, "ul.plain li");
    assert!(
        history.iter().any(|l| l.contains("per telefon")),
        "{history:?}"
    );
}

/// R-CUST-8: every campaign mail has a personal link and the exact List-Unsubscribe and
/// List-Unsubscribe-Post headers; a POST of `List-Unsubscribe=One-Click` from a client
/// with no cookie unsubscribes at once and answers 200, every time; the GET shows one
/// button and changes nothing; the administrator sees who unsubscribed and when.
#[tokio::test]
async fn campaign_mails_carry_the_unsubscribe_headers_and_one_click_works_without_cookies() {
    let app = TestApp::spawn().await;
    let admin = app.signed_in(Role::Admin).await;
    let ids = subscribers(&app, 2, "sv").await;
    let campaign = new_campaign(&app, &admin, "").await;
    send_now(&app, &admin, &campaign).await;
    let mails = app.smtp.wait_for(2).await;

    let mail = &mails[0];
    let base = app.url("/unsubscribe/");
    let header = mail.header("List-Unsubscribe").unwrap();
    let (https, mailto) = header.split_once(", ").unwrap();
    assert!(
        https.starts_with(&format!("<{base}")) && https.ends_with('>'),
        "{header}"
    );
    assert_eq!(mailto, "<mailto:info@btb.fi?subject=unsubscribe>");
    assert_eq!(
        mail.header("List-Unsubscribe-Post").as_deref(),
        Some("List-Unsubscribe=One-Click")
    );
    let url = &https[1..https.len() - 1];
    assert!(
        mail.text().contains(url),
        "the personal link is in the mail too"
    );
    assert_ne!(
        mails[1].header("List-Unsubscribe").unwrap(),
        header,
        "each recipient has a link of their own"
    );

    // A GET only shows the button.
    let bare = reqwest::Client::new();
    let page = bare.get(url).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert_eq!(
        texts(&page.text().await.unwrap(), "main form button").len(),
        1
    );
    let subscribed: i64 = sqlx::query_scalar("SELECT count(*) FROM contacts WHERE newsletter")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(subscribed, 2);

    // One-click, as a mail provider sends it: no cookie, no token, twice.
    for _ in 0..2 {
        let r = reqwest::Client::new()
            .post(url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body("List-Unsubscribe=One-Click")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    }
    let who: Uuid = sqlx::query_scalar("SELECT id FROM contacts WHERE NOT newsletter")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert!(ids.contains(&who));
    let events: Vec<(bool, String)> =
        sqlx::query_as("SELECT subscribed, how FROM newsletter_events WHERE contact_id = $1")
            .bind(who)
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(
        events,
        [(false, "one-click".to_string())],
        "unsubscribed once"
    );

    let list = app
        .get_as(&admin, "/newsletter/unsubscribed")
        .await
        .text()
        .await
        .unwrap();
    let rows = texts(&list, "tbody tr");
    assert_eq!(rows.len(), 1);
    assert!(
        rows[0].contains("@kund.test") && rows[0].contains("ett klick"),
        "{rows:?}"
    );

    // Resubscribing goes through double opt-in again.
    let email: String = sqlx::query_scalar("SELECT email FROM contacts WHERE id = $1")
        .bind(who)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    ask(&app, &app.new_browser(), &email).await;
    assert_eq!(newsletter_of(&app, &email).await, Some(false));
}

/// R-CUST-4: employees see campaigns but may not write or send them.
#[tokio::test]
async fn an_employee_sees_campaigns_but_gets_403_on_send() {
    let app = TestApp::spawn().await;
    let admin = app.signed_in(Role::Admin).await;
    let employee = app.signed_in(Role::Employee).await;
    subscribers(&app, 1, "sv").await;
    let campaign = new_campaign(&app, &admin, "").await;

    assert_eq!(
        app.get_as(&employee, &format!("/campaigns/{campaign}"))
            .await
            .status(),
        StatusCode::OK
    );
    let r = app
        .post_form_as(
            &employee,
            &format!("/campaigns/{campaign}/send"),
            &[("send_at", "")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let status: String = sqlx::query_scalar("SELECT status FROM newsletter_campaigns")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(status, "draft");
}

/// Campaign text is Markdown; HTML in it never reaches the mail.
#[tokio::test]
async fn markup_in_a_campaign_is_left_out_of_the_mail() {
    let app = TestApp::spawn().await;
    let admin = app.signed_in(Role::Admin).await;
    subscribers(&app, 1, "en").await;
    let r = app
        .post_form_as(
            &admin,
            "/campaigns/new",
            &[
                ("subject", "<b>News</b>"),
                (
                    "body",
                    "**Big** news <script>alert(1)</script><img src=x onerror=alert(1)>",
                ),
            ],
        )
        .await;
    let campaign = location(&r).trim_start_matches("/campaigns/").to_string();
    let preview = app
        .get_as(&admin, &format!("/campaigns/{campaign}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(!preview.contains("<script>alert") && !preview.contains("<img"));
    send_now(&app, &admin, &campaign).await;
    let mail = app.smtp.wait_for(1).await.remove(0);
    let html = mail.part("text/html").unwrap();
    assert!(html.contains("<strong>Big</strong>"));
    assert!(!html.contains("<script") && !html.contains("onerror") && !html.contains("<b>"));
}

/// A campaign's mails go out `SMTP_CONNECTIONS` at a time, over connections kept open
/// from mail to mail: thirty mails open no more than three.
#[tokio::test]
async fn a_campaign_is_sent_over_no_more_connections_than_configured_kept_open() {
    let app = TestApp::spawn_with(|c| c.smtp_connections = 3).await;
    let admin = app.signed_in(Role::Admin).await;
    subscribers(&app, 30, "en").await;
    let before = app.smtp.connections();
    let campaign = new_campaign(&app, &admin, "").await;
    send_now(&app, &admin, &campaign).await;
    app.smtp.wait_for(30).await;
    let opened = app.smtp.connections() - before;
    assert!(opened <= 3, "{opened} connections for 30 mails");
}

/// R-CUST-8: someone who unsubscribes while a campaign is being sent gets nothing more
/// of it.
#[tokio::test]
async fn an_unsubscribe_during_sending_stops_further_mail_to_that_person() {
    let app = TestApp::spawn().await;
    let admin = app.signed_in(Role::Admin).await;
    subscribers(&app, 3, "sv").await;
    let campaign = new_campaign(&app, &admin, "1").await;
    send_now(&app, &admin, &campaign).await;
    let first = app.smtp.wait_for(1).await.remove(0);
    let got: Vec<String> = first.recipients.clone();

    // Someone still waiting unsubscribes through the link in the mail they have not got
    // yet: here, through staff, as the person asked by phone.
    let waiting: Uuid = sqlx::query_scalar(
        "SELECT d.contact_id FROM newsletter_deliveries d JOIN mail_outbox o ON o.id = d.mail_id
         WHERE o.status = 'queued' LIMIT 1",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    let r = app
        .post_form_as(
            &admin,
            &format!("/people/{waiting}/newsletter/unsubscribe"),
            &[],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    app.outbox_drained().await;
    let email: String = sqlx::query_scalar("SELECT email FROM contacts WHERE id = $1")
        .bind(waiting)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert!(!got.contains(&email));
    assert!(
        app.smtp.received_by(&email).is_empty(),
        "nothing more after unsubscribing"
    );
    assert_eq!(app.smtp.received().len(), 2);
    let stopped: String =
        sqlx::query_scalar("SELECT status FROM newsletter_deliveries WHERE contact_id = $1")
            .bind(waiting)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(stopped, "stopped");
}

/// A mail server's permanent refusal marks the address bouncing; the next campaign passes
/// it over until staff clear it.
#[tokio::test]
async fn a_refused_address_is_skipped_by_later_campaigns_until_staff_clear_it() {
    let sink = SmtpSink::start_with(
        "127.0.0.1:0".parse().unwrap(),
        Behaviour {
            refuse: vec!["gone@kund.test".into()],
            ..Behaviour::default()
        },
    )
    .await;
    let app = TestApp::spawn_with(|c| sink.receive_for(c)).await;
    let admin = app.signed_in(Role::Admin).await;
    let ids = subscribers(&app, 1, "sv").await;
    sqlx::query("UPDATE contacts SET email = 'gone@kund.test' WHERE id = $1")
        .bind(ids[0])
        .execute(&app.pool)
        .await
        .unwrap();
    subscribers(&app, 1, "sv").await;

    let first = new_campaign(&app, &admin, "").await;
    send_now(&app, &admin, &first).await;
    app.outbox_drained().await;
    let bouncing: i64 =
        sqlx::query_scalar("SELECT count(*) FROM mail_bounces WHERE contact_id = $1")
            .bind(ids[0])
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(bouncing, 1);

    let second = new_campaign(&app, &admin, "").await;
    send_now(&app, &admin, &second).await;
    let recipients: i32 =
        sqlx::query_scalar("SELECT recipients FROM newsletter_campaigns WHERE id = $1::uuid")
            .bind(&second)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(recipients, 1, "the bouncing address is passed over");

    let r = app
        .post_form_as(
            &admin,
            &format!("/people/{}/newsletter/bounce", ids[0]),
            &[],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let third = new_campaign(&app, &admin, "").await;
    send_now(&app, &admin, &third).await;
    let recipients: i32 =
        sqlx::query_scalar("SELECT recipients FROM newsletter_campaigns WHERE id = $1::uuid")
            .bind(&third)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(recipients, 2, "cleared by staff, it gets campaigns again");
}

/// Two instances share one campaign, and each recipient gets it exactly once.
#[tokio::test]
async fn two_instances_send_a_campaign_exactly_once_to_each_recipient() {
    let sink = SmtpSink::slow(Duration::from_millis(10)).await;
    let app = TestApp::spawn_with(|c| sink.receive_for(c)).await;
    let second_pool = pool(&app.db).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let _second = start_server(&second_pool, &Arc::clone(&app.config), listener).await;
    let admin = app.signed_in(Role::Admin).await;
    subscribers(&app, 60, "fi").await;
    let campaign = new_campaign(&app, &admin, "").await;
    send_now(&app, &admin, &campaign).await;
    sink.wait_for(60).await;
    app.outbox_drained().await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    let counts = per_recipient(&sink);
    assert_eq!(counts.len(), 60);
    assert!(counts.values().all(|n| *n == 1), "{counts:?}");
    let senders: i64 =
        sqlx::query_scalar("SELECT count(DISTINCT sent_by) FROM mail_outbox WHERE status = 'sent'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(senders, 2, "both instances took part");
}

/// Killing the sending instance mid-campaign and starting it again sends no one a
/// second copy: what was under way goes on, and a mail the killed instance had already
/// handed to the server is marked, not sent again.
#[tokio::test]
async fn killing_the_sending_instance_mid_campaign_and_restarting_it_sends_no_second_copy() {
    let sink = SmtpSink::slow(Duration::from_millis(5)).await;
    // This instance sends no mail: the child process does the sending.
    let app = TestApp::spawn_setup(
        Setup {
            sends_mail: false,
            ..Setup::default()
        },
        |_| {},
    )
    .await;
    let admin = app.signed_in(Role::Admin).await;
    subscribers(&app, 100, "sv").await;
    let campaign = new_campaign(&app, &admin, "50").await;
    send_now(&app, &admin, &campaign).await;

    let serve = |app: &TestApp| {
        app.cli()
            .arg("serve")
            .env("SMTP_URL", sink.url())
            .env("SMTP_CONNECTIONS", "4")
            .env("LISTEN_ADDR", "127.0.0.1:0")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap()
    };
    let mut child = serve(&app);
    sink.wait_for(20).await;
    child.kill().await.unwrap(); // SIGKILL, mid-campaign
    let at_kill = sink.received().len();
    assert!(at_kill < 100, "killed mid-campaign");
    let mut child = serve(&app);
    app.outbox_drained().await;
    child.kill().await.unwrap();

    let counts = per_recipient(&sink);
    assert!(counts.values().all(|n| *n == 1), "{counts:?}");
    let (sent, uncertain): (i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE status = 'sent'),
                count(*) FILTER (WHERE status = 'failed' AND handed_at IS NOT NULL)
         FROM mail_outbox WHERE batch_id IS NOT NULL",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(sent + uncertain, 100, "every recipient is accounted for");
    assert!(counts.len() as i64 >= sent);
    assert!(
        counts.len() >= 96,
        "at most the mails in hand at the kill, one per connection, are in doubt"
    );
}

/// Erasing a person removes every newsletter row about them but the suppression hash.
#[tokio::test]
async fn erasing_a_person_removes_their_newsletter_rows_and_keeps_only_the_suppression_hash() {
    let app = TestApp::spawn().await;
    let admin = app.signed_in(Role::Admin).await;
    let ids = subscribers(&app, 1, "sv").await;
    let person = ids[0];
    sqlx::query("INSERT INTO newsletter_interests SELECT $1, id FROM business_areas LIMIT 1")
        .bind(person)
        .execute(&app.pool)
        .await
        .unwrap();
    let campaign = new_campaign(&app, &admin, "").await;
    send_now(&app, &admin, &campaign).await;
    app.outbox_drained().await;
    sqlx::query("INSERT INTO mail_bounces (contact_id) VALUES ($1)")
        .bind(person)
        .execute(&app.pool)
        .await
        .unwrap();
    app.post_form_as(
        &admin,
        &format!("/people/{person}/newsletter/unsubscribe"),
        &[],
    )
    .await;

    let r = app
        .post_form_as(&admin, &format!("/people/{person}/delete"), &[])
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    for table in [
        "newsletter_events",
        "newsletter_interests",
        "newsletter_deliveries",
        "mail_bounces",
        "consents",
        "mail_outbox",
    ] {
        let left: i64 = sqlx::query_scalar(&format!(
            "SELECT count(*) FROM {table} WHERE contact_id = $1"
        ))
        .bind(person)
        .fetch_one(&app.pool)
        .await
        .unwrap();
        assert_eq!(left, 0, "{table}");
    }
    let links: i64 = sqlx::query_scalar("SELECT count(*) FROM link_tokens WHERE subject_id = $1")
        .bind(person)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(links, 0, "unsubscribe links");
    let suppressed: i64 = sqlx::query_scalar("SELECT count(*) FROM suppressed_emails")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(suppressed, 1);
}

/// What the newsletter holds about a person, for the register extract.
#[tokio::test]
async fn held_about_lists_subscription_consents_campaigns_and_bouncing() {
    let app = TestApp::spawn().await;
    let admin = app.signed_in(Role::Admin).await;
    let staff = app.signed_in(Role::Employee).await;
    let company = add_company(&app, &staff, "Kund Ab").await;
    let person = add_person(&app, &staff, &company, "Åsa", "asa@kund.test", "sv").await;
    sqlx::query("UPDATE contacts SET status = 'active' WHERE id = $1::uuid")
        .bind(&person)
        .execute(&app.pool)
        .await
        .unwrap();
    app.post_form_as(
        &staff,
        &format!("/people/{person}/newsletter/phone"),
        &[("agreed", "on")],
    )
    .await;
    let campaign = new_campaign(&app, &admin, "").await;
    send_now(&app, &admin, &campaign).await;
    app.outbox_drained().await;

    let mut conn = app.pool.acquire().await.unwrap();
    let record = gdpr_register::newsletters::held_about(&mut conn, person.parse().unwrap())
        .await
        .unwrap();
    let json = serde_json::to_value(&record).unwrap();
    assert_eq!(json["subscribed"], true);
    assert_eq!(json["bouncing_since"], serde_json::Value::Null);
    assert_eq!(json["consents"][0]["method"], "staff");
    assert_eq!(json["consents"][0]["withdrawn_at"], serde_json::Value::Null);
    assert_eq!(json["campaigns"][0]["subject"], "Nytt från BTB");
    assert_eq!(json["campaigns"][0]["status"], "sent");
    assert!(json["campaigns"][0]["sent_at"].is_string());
}

/// A DKIM key pair made with openssl: the private key in PEM, the public key as the
/// `p=` value of its DNS record.
fn dkim_key_pair(dir: &std::path::Path) -> (std::path::PathBuf, String) {
    let key = dir.join("dkim.pem");
    let made = std::process::Command::new("openssl")
        .args(["genrsa", "-traditional", "-out"])
        .arg(&key)
        .arg("2048")
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let public = std::process::Command::new("openssl")
        .args(["rsa", "-pubout", "-outform", "DER", "-in"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(public.status.success());
    use base64::Engine;
    let p = base64::engine::general_purpose::STANDARD.encode(public.stdout);
    (key, p)
}

/// Deliverability: with a key and selector, campaign mail is DKIM-signed for the
/// sender's domain, the unsubscribe headers among those signed, and the signature
/// verifies (dkimpy, against the public key as its DNS record would publish it).
#[tokio::test]
async fn campaign_mail_carries_a_dkim_signature_that_verifies_over_the_unsubscribe_headers() {
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = dkim_key_pair(dir.path());
    let pem = std::fs::read_to_string(&key).unwrap();
    let app = TestApp::spawn_with(|c| {
        c.dkim = Some(gdpr_register::mail::Dkim::new("news2026", "btb.fi", &pem).unwrap());
    })
    .await;
    let admin = app.signed_in(Role::Admin).await;
    subscribers(&app, 1, "fi").await;
    let campaign = new_campaign(&app, &admin, "").await;
    send_now(&app, &admin, &campaign).await;
    let mail = app.smtp.wait_for(1).await.remove(0);

    let signature = mail
        .header("DKIM-Signature")
        .expect("a DKIM-Signature header");
    assert!(
        signature.contains("d=btb.fi") && signature.contains("s=news2026"),
        "{signature}"
    );
    let signed: String = signature
        .split(';')
        .find_map(|p| p.trim().strip_prefix("h="))
        .unwrap()
        .split_whitespace()
        .collect();
    let signed = signed.to_ascii_lowercase();
    for header in [
        "from",
        "subject",
        "list-unsubscribe",
        "list-unsubscribe-post",
    ] {
        assert!(
            signed.split(':').any(|h| h == header),
            "{header} in h={signed}"
        );
    }

    let eml = dir.path().join("signed.eml");
    std::fs::write(&eml, &mail.raw).unwrap();
    let script = format!(
        "import dkim, sys\n\
         record = b'v=DKIM1; k=rsa; p={public}'\n\
         def dns(name, timeout=5):\n\
         \x20   return record if name == b'news2026._domainkey.btb.fi.' else None\n\
         sys.exit(0 if dkim.verify(open(sys.argv[1], 'rb').read(), dnsfunc=dns) else 1)\n"
    );
    let verified = std::process::Command::new("/usr/bin/python3")
        .arg("-c")
        .arg(&script)
        .arg(&eml)
        .output()
        .unwrap();
    assert!(
        verified.status.success(),
        "the signature does not verify: {}",
        String::from_utf8_lossy(&verified.stderr)
    );

    // Changing a signed header breaks it: the check is real.
    let raw = String::from_utf8(mail.raw.clone()).unwrap();
    let tampered = raw.replacen(
        "List-Unsubscribe-Post: List-Unsubscribe=One-Click",
        "List-Unsubscribe-Post: List-Unsubscribe=Two-Clicks",
        1,
    );
    assert_ne!(raw, tampered);
    std::fs::write(&eml, tampered).unwrap();
    let refused = std::process::Command::new("/usr/bin/python3")
        .arg("-c")
        .arg(&script)
        .arg(&eml)
        .output()
        .unwrap();
    assert!(!refused.status.success());
}

#[tokio::test]
async fn a_dkim_key_file_that_is_no_key_stops_the_program_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.pem");
    std::fs::write(&bad, "not a key").unwrap();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_gdpr-register"))
        .args(["--version"])
        .output()
        .await
        .unwrap();
    assert!(out.status.success());
    for (selector, file, says) in [
        ("news2026", bad.to_str().unwrap(), "RSA private key"),
        ("news2026", "/no/such/file.pem", "DKIM_KEY_FILE"),
        ("bad selector!", bad.to_str().unwrap(), "selector"),
    ] {
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_gdpr-register"))
            .args(["export", "contacts"])
            .env("DATA_DIR", dir.path())
            .env("DKIM_SELECTOR", selector)
            .env("DKIM_KEY_FILE", file)
            .output()
            .await
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{selector} {file}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(says), "{stderr}");
    }
}

/// Consent mailings use the same machinery: the information mailing to earlier
/// contacts shows the same progress, and a person in quarantine shows where the
/// request to confirm stands.
#[tokio::test]
async fn consent_mailings_show_the_same_progress_and_delivery_status() {
    let app = TestApp::spawn().await;
    let admin = app.signed_in(Role::Admin).await;
    app.import_csv(
        "company_name,person_name,email,legacy,last_contacted\n\
         Jakobstads Kraft,Åsa Öberg,asa@kraft.test,yes,2017-06-01\n\
         Jakobstads Kraft,Nils Berg,nils@kraft.test,yes,2017-06-01\n",
    )
    .await;
    let r = app.post_form_as(&admin, "/people/legacy/inform", &[]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    app.outbox_drained().await;
    let page = app
        .get_as(&admin, "/people/legacy")
        .await
        .text()
        .await
        .unwrap();
    let doc = scraper::Html::parse_document(&page);
    let bar = scraper::Selector::parse("[data-progress-url]").unwrap();
    let url = doc
        .select(&bar)
        .next()
        .expect("a progress bar")
        .value()
        .attr("data-progress-url")
        .unwrap()
        .to_string();
    assert!(page.contains(r#"<script src="/static/progress.js""#));
    let progress: serde_json::Value =
        serde_json::from_str(&app.get_as(&admin, &url).await.text().await.unwrap()).unwrap();
    assert_eq!(progress["total"], 2);
    assert_eq!(progress["sent"], 2);
    assert_eq!(progress["left"], 0);

    let staff = app.signed_in(Role::Employee).await;
    let company = add_company(&app, &staff, "Kund Ab").await;
    let person = add_person(&app, &staff, &company, "Eva", "eva@kund.test", "sv").await;
    app.outbox_drained().await;
    let page = app
        .get_as(&staff, &format!("/people/{person}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("Begäran om bekräftelse") && page.contains("levererad"));
}

/// A campaign set for a later time waits for it; one set in the past is refused.
#[tokio::test]
async fn a_campaign_set_for_later_is_sent_by_the_schedule_job_when_its_time_comes() {
    let app = TestApp::spawn().await;
    let admin = app.signed_in(Role::Admin).await;
    subscribers(&app, 2, "en").await;
    let campaign = new_campaign(&app, &admin, "").await;
    let send = |at: &'static str| {
        let (app, admin, campaign) = (&app, &admin, &campaign);
        async move {
            app.post_form_as(
                admin,
                &format!("/campaigns/{campaign}/send"),
                &[("send_at", at)],
            )
            .await
        }
    };
    assert_eq!(
        send("2020-01-01T09:00").await.status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(send("next tuesday").await.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        send("2099-01-01T09:00").await.status(),
        StatusCode::SEE_OTHER
    );
    let status = || async {
        sqlx::query_scalar::<_, String>("SELECT status FROM newsletter_campaigns")
            .fetch_one(&app.pool)
            .await
            .unwrap()
    };
    assert_eq!(status().await, "scheduled");
    app.run_jobs_at(time::OffsetDateTime::now_utc()).await;
    assert_eq!(status().await, "scheduled", "not before its time");

    app.run_jobs_at(time::macros::datetime!(2099-01-01 09:00 UTC))
        .await;
    assert_eq!(status().await, "sending");
    app.smtp.wait_for(2).await;
}

/// Pause holds a campaign, cancel ends it: what was not handed over stays unsent, and
/// each recipient is accounted for as sent or stopped.
#[tokio::test]
async fn pausing_and_cancelling_a_campaign_leaves_the_rest_unsent() {
    let app = TestApp::spawn().await;
    let admin = app.signed_in(Role::Admin).await;
    subscribers(&app, 5, "sv").await;
    let campaign = new_campaign(&app, &admin, "1").await;
    send_now(&app, &admin, &campaign).await;
    let post = |what: &'static str| {
        let (app, admin, campaign) = (&app, &admin, &campaign);
        async move {
            let r = app
                .post_form_as(admin, &format!("/campaigns/{campaign}/{what}"), &[])
                .await;
            assert_eq!(r.status(), StatusCode::SEE_OTHER, "{what}");
        }
    };
    post("pause").await;
    let page = app
        .get_as(&admin, &format!("/campaigns/{campaign}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains(&format!("/campaigns/{campaign}/resume")),
        "offers to resume"
    );
    post("resume").await;
    post("cancel").await;
    app.outbox_drained().await;

    let (sent, stopped): (i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE status = 'sent'), count(*) FILTER (WHERE status = 'stopped')
         FROM newsletter_deliveries",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(sent + stopped, 5);
    assert!(stopped >= 3, "cancelled early: {sent} sent");
    assert_eq!(app.smtp.received().len() as i64, sent);
    let status: String = sqlx::query_scalar("SELECT status FROM newsletter_campaigns")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(status, "cancelled");
}
