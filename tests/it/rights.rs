//! The data subject's rights: notices generated from the register definitions, extracts,
//! self-service requests.

use fantoccini::Locator;
use gdpr_register::users::Role;
use reqwest::StatusCode;
use serde_json::json;

use crate::{
    chat::start_chat,
    customers::{add_company, add_person},
    support::{TestApp, location, texts},
};

/// R-ALL-1: the privacy notice states the retention the jobs enforce, so changing a
/// setting changes the notice.
#[tokio::test]
async fn changing_a_retention_setting_changes_the_privacy_notice() {
    let default = TestApp::spawn().await;
    let changed = TestApp::spawn_with(|c| {
        c.inactivity_years = 3;
        c.contact_retention_days = 90;
        c.chat_retention_days = Some(30);
    })
    .await;
    let notice = |app: &TestApp| {
        let client = app.new_browser();
        let url = app.url("/privacy");
        async move {
            client
                .get(url)
                .header("accept-language", "en")
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        }
    };
    let before = notice(&default).await;
    let after = notice(&changed).await;
    assert!(before.contains("no communication for 5 years"), "{before}");
    assert!(before.contains("Messages are deleted after 180 days"));
    assert!(before.contains("kept until an operator deletes them"));
    assert!(after.contains("no communication for 3 years"));
    assert!(after.contains("Messages are deleted after 90 days"));
    assert!(after.contains("Conversations are deleted after 30 days"));
    // Each register names its responsible person and the personnel recipients (R-PERS-2).
    assert!(before.contains("Jakobstads Bokföringsbyrå Ab"));
    assert!(before.contains("Jakobstads Arbetshälsovårdsförening r.f."));
    assert!(before.contains(r#"href="/my-data""#));
}

/// R-COOK-1: the notice is public in three languages and lists every cookie the site sets
/// on a visit, a language choice and a login.
#[tokio::test]
async fn the_cookie_notice_lists_every_cookie_the_site_sets() {
    let app = TestApp::spawn().await;
    app.create_user("anna@btb.test", Role::Employee).await;
    let browser = app.new_browser();
    let mut set = Vec::new();
    let mut note = |r: &reqwest::Response| {
        for v in r.headers().get_all("set-cookie") {
            let name = v.to_str().unwrap().split('=').next().unwrap().to_string();
            set.push(name);
        }
    };
    note(&app.get_as(&browser, "/login").await);
    note(
        &app.post_form_as(&browser, "/lang", &[("lang", "fi"), ("back", "/")])
            .await,
    );
    note(&app.login_as(&browser, "anna@btb.test").await);
    assert!(set.len() >= 3, "{set:?}");
    for lang in ["sv", "fi", "en"] {
        let page = app
            .new_browser()
            .get(app.url("/cookies"))
            .header("accept-language", lang)
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), StatusCode::OK);
        let page = page.text().await.unwrap();
        assert!(page.contains(&format!(r#"<html lang="{lang}">"#)));
        let listed = texts(&page, "td code");
        for name in &set {
            assert!(listed.contains(name), "{lang}: {name} in {listed:?}");
        }
    }
}

/// R-ALL-1: the administrator's record of processing covers every register.
#[tokio::test]
async fn the_record_of_processing_covers_every_register() {
    let app = TestApp::spawn().await;
    let admin = app.signed_in(Role::Admin).await;
    let page = app.get_as(&admin, "/record").await.text().await.unwrap();
    for id in ["customers", "personnel", "chat", "contact"] {
        assert!(page.contains(&format!(r#"id="{id}""#)), "{id}");
    }
}

/// Adds a person with letters from across Europe, confirmed, with a logged call; and
/// another person at another company. Returns the first person's id.
pub async fn person_with_history(app: &TestApp, staff: &reqwest::Client) -> String {
    let company = add_company(app, staff, "Vaasan Sähkö Oy").await;
    let id = add_person(
        app,
        staff,
        &company,
        "Łucja Hořčičková-Kőszegi",
        "lucja@sahko.test",
        "en",
    )
    .await;
    let mail = app.smtp.wait_for_recipient("lucja@sahko.test").await;
    let link = mail.link(&app.url("/consent/"));
    app.post_form_as(&app.new_browser(), &link[app.base.len()..], &[])
        .await;
    let r = app
        .post_form_as(
            staff,
            &format!("/people/{id}/communications"),
            &[
                ("kind", "call"),
                ("happened_on", "2026-01-15"),
                ("note", "Offert på transformator, Łódź-projektet"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let other = add_company(app, staff, "Kraftwerk Zwölf GmbH").await;
    add_person(
        app,
        staff,
        &other,
        "Ödön Someoneelse",
        "odon@zwolf.test",
        "sv",
    )
    .await;
    app.smtp.wait_for_recipient("odon@zwolf.test").await;
    // What each of them left on the website: a contact-form message and a chat.
    for (email, message, chat) in [
        (
            "lucja@sahko.test",
            "Proszę o ofertę, Gdańsk",
            "Dobrý den, chci nabídku",
        ),
        ("odon@zwolf.test", "Angebot für Zwölf", "Grüß Gott, Zwölf"),
    ] {
        let r = app
            .post_form_as(
                &app.new_browser(),
                "/contact",
                &[("email", email), ("message", message)],
            )
            .await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        start_chat(app, json!({ "email": email, "text": chat })).await;
    }
    let info = &app.config.info_address.email.to_string();
    while app.smtp.received_by(info).len() < 2 {
        app.smtp.wait_for(app.smtp.received().len() + 1).await;
    }
    id
}

fn pdf_text(pdf: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("extract.pdf");
    std::fs::write(&file, pdf).unwrap();
    let check = std::process::Command::new("qpdf")
        .arg("--check")
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "qpdf --check: {}",
        String::from_utf8_lossy(&check.stdout)
    );
    let text = std::process::Command::new("pdftotext")
        .arg("-enc")
        .arg("UTF-8")
        .arg(&file)
        .arg("-")
        .output()
        .unwrap();
    assert!(text.status.success());
    String::from_utf8(text.stdout).unwrap()
}

/// R-CUST-9: staff send the extract; it goes as PDF and JSON to the address on record
/// only, holds the person's data with its accents and nothing of anyone else, the page
/// never shows it, and the sending is in the audit log.
#[tokio::test]
async fn staff_send_the_extract_as_pdf_and_json_to_the_address_on_record() {
    let app = TestApp::spawn().await;
    let staff = app.signed_in(Role::Employee).await;
    let id = person_with_history(&app, &staff).await;
    // Subscribed by phone, and sent one newsletter.
    let r = app
        .post_form_as(
            &staff,
            &format!("/people/{id}/newsletter/phone"),
            &[("agreed", "on")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let admin = app.signed_in(Role::Admin).await;
    let r = app
        .post_form_as(
            &admin,
            "/campaigns/new",
            &[
                ("subject", "Nytt från BTB"),
                ("body", "Vi har nya transformatorer."),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let r = app
        .post_form_as(
            &admin,
            &format!("{}/send", location(&r)),
            &[("send_at", "")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    while app.smtp.received_by("lucja@sahko.test").len() < 2 {
        app.smtp.wait_for(app.smtp.received().len() + 1).await;
    }
    app.outbox_drained().await;
    let before = app.smtp.received().len();
    let r = app
        .post_form_as(&staff, &format!("/people/{id}/extract"), &[])
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), format!("/people/{id}"));
    let page = app
        .get_as(&staff, &location(&r))
        .await
        .text()
        .await
        .unwrap();
    assert!(!page.contains("%PDF"));
    let received = app.smtp.wait_for(before + 1).await;
    let mail = received.last().unwrap();
    assert_eq!(mail.header("To").unwrap(), "lucja@sahko.test");
    let attachments = mail.attachments();
    assert_eq!(attachments.len(), 2);
    let pdf = &attachments
        .iter()
        .find(|a| a.1 == "application/pdf")
        .unwrap()
        .2;
    let json = &attachments
        .iter()
        .find(|a| a.1 == "application/json")
        .unwrap()
        .2;
    let text = pdf_text(pdf);
    for held in [
        "Łucja Hořčičková-Kőszegi",
        "lucja@sahko.test",
        "Vaasan Sähkö Oy",
        "Łódź-projektet",
        "Proszę o ofertę",
        "Gdańsk",
        "Dobrý den, chci nabídku",
        "Newsletters sent to you",
        "Nytt från BTB",
        "Register extract",
        "Page 1 of",
    ] {
        assert!(text.contains(held), "{held} in {text}");
    }
    for other in ["Ödön", "odon@zwolf.test", "Zwölf"] {
        assert!(!text.contains(other), "{other}");
    }
    let json: serde_json::Value = serde_json::from_slice(json).unwrap();
    let registers: Vec<_> = json["sections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["register"].as_str().unwrap())
        .collect();
    assert_eq!(registers, ["customers", "chat", "contact"]);
    assert_eq!(
        json["sections"][2]["held"][0]["message"],
        "Proszę o ofertę, Gdańsk"
    );
    assert!(json.to_string().contains("Dobrý den, chci nabídku"));
    let held = &json["sections"][0]["held"];
    assert_eq!(json["sections"][0]["register"], "customers");
    assert_eq!(held["name"], "Łucja Hořčičková-Kőszegi");
    assert_eq!(held["company"]["name"], "Vaasan Sähkö Oy");
    assert_eq!(held["newsletter"], true);
    assert_eq!(held["newsletter_campaigns"][0]["subject"], "Nytt från BTB");
    assert_eq!(held["newsletter_campaigns"][0]["status"], "sent");
    assert_eq!(
        held["communications"][0]["note"],
        "Offert på transformator, Łódź-projektet"
    );
    assert!(!json.to_string().contains("odon@zwolf.test"));
    let audited: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE action = 'extract.send' AND entity_id = $1",
    )
    .bind(&id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(audited, 1);
}

/// Asks for one's data on `/my-data` as a visitor, in English.
async fn ask_for_my_data(
    app: &TestApp,
    client: &reqwest::Client,
    email: &str,
) -> (StatusCode, String) {
    let token = app.csrf_token(client).await;
    let r = client
        .post(app.url("/my-data"))
        .header("accept-language", "en")
        .form(&[("email", email), ("csrf_token", &token)])
        .send()
        .await
        .unwrap();
    (r.status(), r.text().await.unwrap())
}

/// R-CUST-9, R-CUST-10: `/my-data` answers a known and an unknown address with the same
/// bytes; only the known address gets mail: the extract, and links to ask for a
/// correction or erasure that land in the requests queue.
#[tokio::test]
async fn my_data_answers_known_and_unknown_addresses_alike_and_mails_only_the_known() {
    let app = TestApp::spawn().await;
    let staff = app.signed_in(Role::Employee).await;
    person_with_history(&app, &staff).await;
    let before = app.smtp.received().len();
    let visitor = app.new_browser();
    let (known_status, known) = ask_for_my_data(&app, &visitor, "LUCJA@sahko.test").await;
    let (unknown_status, unknown) = ask_for_my_data(&app, &visitor, "nobody@sahko.test").await;
    assert_eq!(known_status, StatusCode::OK);
    assert_eq!(unknown_status, StatusCode::OK);
    assert_eq!(known, unknown);
    let received = app.smtp.wait_for(before + 1).await;
    let mail = received.last().unwrap();
    assert_eq!(mail.header("To").unwrap(), "lucja@sahko.test");
    assert_eq!(mail.attachments().len(), 2);
    app.outbox_drained().await;
    assert!(app.smtp.received_by("nobody@sahko.test").is_empty());

    // The correction link: a form; the request is queued once, due in a month.
    let rectify = mail.link(&app.url("/my-data/rectify/"));
    let rectify = &rectify[app.base.len()..];
    assert_eq!(app.get_as(&visitor, rectify).await.status(), StatusCode::OK);
    let empty = app
        .post_form_as(&visitor, rectify, &[("details", " ")])
        .await;
    assert_eq!(empty.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let sent = app
        .post_form_as(
            &visitor,
            rectify,
            &[("details", "My title is Chief Engineer")],
        )
        .await;
    assert_eq!(sent.status(), StatusCode::OK);
    let again = app
        .post_form_as(&visitor, rectify, &[("details", "again")])
        .await;
    assert_eq!(again.status(), StatusCode::GONE);
    let kinds: Vec<(String, String)> =
        sqlx::query_as("SELECT kind, state FROM subject_requests ORDER BY created_at")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(
        kinds,
        [
            ("access".into(), "done".into()),
            ("rectification".into(), "open".into())
        ]
    );
}

/// Bad input on `/my-data` gets a message and a 4xx, and asks beyond the limit are
/// refused for that address.
#[tokio::test]
async fn my_data_refuses_bad_addresses_and_floods() {
    let app = TestApp::spawn().await;
    let visitor = app.new_browser();
    for bad in [
        "",
        "not an address",
        "<script>@x.test",
        &format!("{}@x.test", "a".repeat(300)),
    ] {
        let (status, page) = ask_for_my_data(&app, &visitor, bad).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
        assert!(!page.contains("<script>@"), "{bad}");
    }
    for _ in 0..app.config.login_max_failures {
        assert_eq!(
            ask_for_my_data(&app, &visitor, "flood@x.test").await.0,
            StatusCode::OK
        );
    }
    let (status, _) = ask_for_my_data(&app, &visitor, "flood@x.test").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
}

/// Every text in the database that contains `needle`: (table, column) pairs.
async fn rows_containing(app: &TestApp, needle: &str) -> Vec<String> {
    let columns: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT table_schema::text, table_name::text, column_name::text FROM information_schema.columns
         WHERE table_schema IN ('public', 'tower_sessions')
           AND data_type IN ('text', 'character varying', 'jsonb', 'json', 'ARRAY', 'bytea')",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    let mut found = Vec::new();
    for (schema, table, column) in columns {
        let sql = format!(
            r#"SELECT count(*) FROM "{schema}"."{table}"
               WHERE position(lower($1) in lower("{column}"::text)) > 0"#
        );
        let n: i64 = sqlx::query_scalar(&sql)
            .bind(needle)
            .fetch_one(&app.pool)
            .await
            .unwrap();
        if n > 0 {
            found.push(format!("{schema}.{table}.{column}"));
        }
    }
    found
}

/// R-CUST-10: an erasure request that arrived through the self-service links, carried
/// out by staff, erases the person from every register in one go; the person is told
/// what was erased and what was kept, and afterwards no table holds the address or the
/// name, only the suppression hash.
#[tokio::test]
async fn erasure_from_a_request_leaves_no_row_with_the_address() {
    let app = TestApp::spawn().await;
    let staff = app.signed_in(Role::Employee).await;
    person_with_history(&app, &staff).await;
    let visitor = app.new_browser();
    let before = app.smtp.received().len();
    ask_for_my_data(&app, &visitor, "lucja@sahko.test").await;
    let received = app.smtp.wait_for(before + 1).await;
    let erase = received.last().unwrap().link(&app.url("/my-data/erase/"));
    let erase = &erase[app.base.len()..];
    let asked = app
        .post_form_as(
            &visitor,
            erase,
            &[("details", "Łucja Hořčičková-Kőszegi wants out")],
        )
        .await;
    assert_eq!(asked.status(), StatusCode::OK);
    let request: String = sqlx::query_scalar(
        "SELECT id::text FROM subject_requests WHERE kind = 'erasure' AND state = 'open'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    let queue = app.get_as(&staff, "/requests").await.text().await.unwrap();
    assert!(queue.contains(&format!("/requests/{request}")));
    let r = app
        .post_form_as(&staff, &format!("/requests/{request}/erase"), &[])
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let reply = app.smtp.wait_for(before + 2).await;
    let reply = reply.last().unwrap();
    assert_eq!(reply.header("To").unwrap(), "lucja@sahko.test");
    let text = reply.text();
    for register in ["Customer register", "Website chat", "Website contact form"] {
        assert!(text.contains(register), "{register} in {text}");
    }
    assert!(text.contains("keyed hash"), "{text}");
    assert!(text.contains("delivers mail on our behalf"), "{text}");
    app.outbox_drained().await;

    for needle in [
        "lucja@sahko.test",
        "Hořčičková",
        "Łódź-projektet",
        "Gdańsk",
        "chci nabídku",
    ] {
        assert_eq!(
            rows_containing(&app, needle).await,
            Vec::<String>::new(),
            "{needle}"
        );
    }
    let suppressed: i64 = sqlx::query_scalar("SELECT count(*) FROM suppressed_emails")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(suppressed, 1);
    let state: (String, String) =
        sqlx::query_as("SELECT state, outcome FROM subject_requests WHERE id = $1::uuid")
            .bind(&request)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(state.0, "done");
    let audited: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE action IN ('contact.erase', 'subject_request.erase')",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(audited, 2);
    // The other person is untouched.
    assert!(!rows_containing(&app, "odon@zwolf.test").await.is_empty());
}

/// Art. 12(3): a request logged by staff is due a calendar month after receipt (31
/// January → the last day of February); past due, it stands out on the start page.
#[tokio::test]
async fn a_logged_request_is_due_a_calendar_month_later_and_overdue_ones_stand_out() {
    let app = TestApp::spawn().await;
    let staff = app.signed_in(Role::Employee).await;
    let r = app
        .post_form_as(
            &staff,
            "/requests",
            &[
                ("kind", "objection"),
                ("channel", "phone"),
                ("email", "caller@x.test"),
                ("received_on", "2026-01-31"),
                ("details", "No more calls, please"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let page = app
        .get_as(&staff, &location(&r))
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("2026-02-28"), "{page}");
    let home = app.get_as(&staff, "/").await.text().await.unwrap();
    assert!(home.contains(r#"id="requests-overdue""#));
    // Past the first month it can no longer be extended.
    let late = app
        .post_form_as(
            &staff,
            &format!("{}/extend", location(&r)),
            &[("until", "2026-04-30"), ("reason", "busy")],
        )
        .await;
    assert_eq!(late.status(), StatusCode::UNPROCESSABLE_ENTITY);
    for (fields, why) in [
        (
            vec![
                ("kind", "access"),
                ("channel", "email"),
                ("email", "x"),
                ("received_on", "2026-01-01"),
            ],
            "bad address",
        ),
        (
            vec![
                ("kind", "wish"),
                ("channel", "email"),
                ("email", "a@x.test"),
                ("received_on", "2026-01-01"),
            ],
            "unknown kind",
        ),
        (
            vec![
                ("kind", "access"),
                ("channel", "email"),
                ("email", "a@x.test"),
                ("received_on", "2999-01-01"),
            ],
            "future",
        ),
        (
            vec![
                ("kind", "access"),
                ("channel", "email"),
                ("email", "a@x.test"),
                ("received_on", "31.1.2026"),
            ],
            "bad date",
        ),
    ] {
        let r = app.post_form_as(&staff, "/requests", &fields).await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{why}");
    }
}

/// Art. 12(3): within the first month the answer can be extended by up to two months,
/// with a reason the subject is mailed; later than three months from receipt is refused.
#[tokio::test]
async fn extending_a_request_tells_the_subject_the_new_date_and_why() {
    let app = TestApp::spawn().await;
    let staff = app.signed_in(Role::Employee).await;
    let today = time::OffsetDateTime::now_utc().date();
    let r = app
        .post_form_as(
            &staff,
            "/requests",
            &[
                ("kind", "access"),
                ("channel", "letter"),
                ("email", "writer@x.test"),
                ("received_on", &today.to_string()),
            ],
        )
        .await;
    let path = location(&r);
    let too_late = today + time::Duration::days(100);
    let refused = app
        .post_form_as(
            &staff,
            &format!("{path}/extend"),
            &[
                ("until", &too_late.to_string()),
                ("reason", "Archive search"),
            ],
        )
        .await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let until = today + time::Duration::days(60);
    let extended = app
        .post_form_as(
            &staff,
            &format!("{path}/extend"),
            &[("until", &until.to_string()), ("reason", "Archive search")],
        )
        .await;
    assert_eq!(extended.status(), StatusCode::SEE_OTHER);
    let mail = app.smtp.wait_for_recipient("writer@x.test").await;
    assert!(mail.text().contains(&until.to_string()));
    assert!(mail.text().contains("Archive search"));
    let again = app
        .post_form_as(
            &staff,
            &format!("{path}/extend"),
            &[("until", &until.to_string()), ("reason", "again")],
        )
        .await;
    assert_eq!(again.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

/// Art. 33(5): the administrator records a breach; until the authority is told, the
/// page shows the 72-hour clock and the start page warns; the record of processing
/// includes it; every change is audited.
#[tokio::test]
async fn a_breach_not_yet_reported_shows_its_clock_and_warns_on_the_start_page() {
    let app = TestApp::spawn().await;
    let admin = app.signed_in(Role::Admin).await;
    let discovered = time::OffsetDateTime::now_utc() - time::Duration::hours(30);
    let discovered = format!(
        "{}T{:02}:{:02}",
        discovered.date(),
        discovered.hour(),
        discovered.minute()
    );
    let bad = app
        .post_form_as(
            &admin,
            "/breaches",
            &[("what", ""), ("discovered_at", "yesterday")],
        )
        .await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let r = app
        .post_form_as(
            &admin,
            "/breaches",
            &[
                ("what", "A laptop with an export of the register was stolen"),
                ("discovered_at", &discovered),
                ("register_customers", "on"),
                ("people", "120"),
                ("measures", "Disk encryption checked; passwords changed"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let path = location(&r);
    let page = app.get_as(&admin, &path).await.text().await.unwrap();
    assert!(page.contains("data-deadline="), "{page}");
    assert!(page.contains("41 h") || page.contains("42 h"), "{page}");
    let home = app.get_as(&admin, "/").await.text().await.unwrap();
    assert!(home.contains(r#"id="breach-warning""#));
    let record = app.get_as(&admin, "/record").await.text().await.unwrap();
    assert!(record.contains("A laptop with an export of the register was stolen"));

    let now = time::OffsetDateTime::now_utc();
    let told = format!("{}T{:02}:{:02}", now.date(), now.hour(), now.minute());
    let r = app
        .post_form_as(
            &admin,
            &path,
            &[
                ("what", "A laptop with an export of the register was stolen"),
                ("discovered_at", &discovered),
                ("register_customers", "on"),
                ("people", "120"),
                ("authority_told_at", &told),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let home = app.get_as(&admin, "/").await.text().await.unwrap();
    assert!(!home.contains(r#"id="breach-warning""#));
    let audited: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE action IN ('breach.create', 'breach.update')",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(audited, 2);
}

/// R-PERS-6: the CEO sends an employee their extract, secrets opened, to the employee's
/// address on record; the sending is audited.
#[tokio::test]
async fn the_ceo_sends_an_employee_their_extract_with_the_sealed_fields_opened() {
    let app = TestApp::spawn().await;
    let ceo = crate::personnel::ceo(&app).await;
    let path =
        crate::personnel::add(&app, &ceo, &crate::personnel::employee("131052-308T", "")).await;
    let r = app
        .post_form_as(&ceo, &format!("{path}/extract"), &[])
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), path);
    let mail = app
        .smtp
        .wait_for_recipient("marta.sjoholm@example.test")
        .await;
    let attachments = mail.attachments();
    let pdf = &attachments
        .iter()
        .find(|a| a.1 == "application/pdf")
        .unwrap()
        .2;
    let text = pdf_text(pdf);
    for held in [
        "Märta Sjöholm",
        "131052-308T",
        "Åbo Akademi",
        "Jakobstads Bokföringsbyrå Ab",
    ] {
        assert!(text.contains(held), "{held} in {text}");
    }
    let json = &attachments
        .iter()
        .find(|a| a.1 == "application/json")
        .unwrap()
        .2;
    let json: serde_json::Value = serde_json::from_slice(json).unwrap();
    assert_eq!(json["sections"][0]["register"], "personnel");
    assert_eq!(json["sections"][0]["held"]["identity_code"], "131052-308T");
    let audited: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE action = 'extract.send' AND entity = 'employee'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(audited, 1);
}

/// R-CUST-9: a visitor asks for their data on `/my-data` in a real browser, and the PDF
/// arrives at the address on record.
#[tokio::test]
async fn a_visitor_asks_for_their_data_in_a_real_browser_and_the_pdf_arrives() {
    let test = "a_visitor_asks_for_their_data_in_a_real_browser_and_the_pdf_arrives";
    let Some(browser) = crate::support::browser::Browser::start(test).await else {
        return;
    };
    let app = TestApp::spawn().await;
    let staff = app.signed_in(Role::Employee).await;
    person_with_history(&app, &staff).await;
    let before = app.smtp.received().len();
    let c = &browser.client;
    c.goto(&app.url("/privacy")).await.unwrap();
    c.find(Locator::Css("main a[href='/my-data']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.find(Locator::Css("#email"))
        .await
        .unwrap()
        .send_keys("lucja@sahko.test")
        .await
        .unwrap();
    c.find(Locator::Css("main button.primary"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let answer = c.find(Locator::Css("main [role=status]")).await.unwrap();
    assert!(!answer.text().await.unwrap().is_empty());
    let received = app.smtp.wait_for(before + 1).await;
    let mail = received.last().unwrap();
    assert_eq!(mail.header("To").unwrap(), "lucja@sahko.test");
    let attachments = mail.attachments();
    let pdf = &attachments
        .iter()
        .find(|a| a.1 == "application/pdf")
        .unwrap()
        .2;
    assert!(pdf_text(pdf).contains("Łucja Hořčičková-Kőszegi"));
    browser.close().await;
}

/// R-CUST-9, R-CUST-10: an access request that came by e-mail is logged by staff and
/// answered from its page: the extract goes to the address on record and the request is
/// closed as done, with who handled it.
#[tokio::test]
async fn staff_answer_a_logged_access_request_with_the_extract() {
    let app = TestApp::spawn().await;
    let staff = app.signed_in(Role::Employee).await;
    person_with_history(&app, &staff).await;
    let today = time::OffsetDateTime::now_utc().date().to_string();
    let r = app
        .post_form_as(
            &staff,
            "/requests",
            &[
                ("kind", "access"),
                ("channel", "email"),
                ("email", "Lucja@Sahko.test"),
                ("received_on", &today),
            ],
        )
        .await;
    let path = location(&r);
    let before = app.smtp.received().len();
    let sent = app
        .post_form_as(&staff, &format!("{path}/extract"), &[])
        .await;
    assert_eq!(sent.status(), StatusCode::SEE_OTHER);
    let received = app.smtp.wait_for(before + 1).await;
    let mail = received.last().unwrap();
    assert_eq!(mail.header("To").unwrap(), "lucja@sahko.test");
    assert_eq!(mail.attachments().len(), 2);
    let page = app.get_as(&staff, &path).await.text().await.unwrap();
    assert!(page.contains("Test employee"), "{page}");
    let again = app
        .post_form_as(&staff, &format!("{path}/extract"), &[])
        .await;
    assert_eq!(again.status(), StatusCode::GONE);
}
