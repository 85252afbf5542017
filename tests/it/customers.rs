//! The customer register over HTTP: companies, people, quarantine, consent, erasure,
//! retention.

use gdpr_register::users::Role;
use reqwest::StatusCode;
use time::{Duration, OffsetDateTime};

use crate::support::{TestApp, location, texts};

/// Adds a company through the form and returns its id.
pub async fn add_company(app: &TestApp, client: &reqwest::Client, name: &str) -> String {
    let r = app
        .post_form_as(
            client,
            "/customers",
            &[("name", name), ("website", "btb.fi")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "adding {name}");
    location(&r).trim_start_matches("/customers/").to_string()
}

/// Adds a person (into quarantine) and returns their id.
pub async fn add_person(
    app: &TestApp,
    client: &reqwest::Client,
    company: &str,
    name: &str,
    email: &str,
    language: &str,
) -> String {
    let r = app
        .post_form_as(
            client,
            &format!("/customers/{company}/people"),
            &[
                ("name", name),
                ("email", email),
                ("language", language),
                ("source", "fair"),
                ("phone", "+358 40 123 4567"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "adding {email}");
    location(&r).trim_start_matches("/people/").to_string()
}

/// A person in quarantine at a company of their own; returns the person's id.
async fn person_in_quarantine(
    app: &TestApp,
    staff: &reqwest::Client,
    name: &str,
    email: &str,
    language: &str,
) -> String {
    let company = add_company(app, staff, "Fortum").await;
    add_person(app, staff, &company, name, email, language).await
}

async fn status_of(app: &TestApp, id: &str) -> Option<String> {
    sqlx::query_scalar("SELECT status FROM contacts WHERE id = $1::uuid")
        .bind(id)
        .fetch_optional(&app.pool)
        .await
        .unwrap()
}

fn path(link: &str) -> String {
    url::Url::parse(link).unwrap().path().to_string()
}

/// R-CUST-1, R-CUST-2, R-CUST-11: a company and a person with every field, and where
/// we met them.
#[tokio::test]
async fn staff_add_a_company_and_a_person_with_all_their_details() {
    let app = TestApp::spawn().await;
    let staff = app.signed_in(Role::Employee).await;
    let area: String =
        sqlx::query_scalar("SELECT id::text FROM business_areas WHERE name_en = 'Power utility'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    let r = app
        .post_form_as(
            &staff,
            "/customers",
            &[
                ("name", "Vaasan Sähkö Oy"),
                ("address", "Sähkötie 1\n65100 Vaasa"),
                ("website", "www.vaasansahko.fi"),
                ("email", "info@vaasansahko.fi"),
                ("phone", "+358 6 123 4567"),
                ("business_area", &area),
            ],
        )
        .await;
    let company = location(&r).trim_start_matches("/customers/").to_string();
    let r = app
        .post_form_as(
            &staff,
            &format!("/customers/{company}/people"),
            &[
                ("name", "Åsa Öberg-Łukasiewicz"),
                ("title", "Inköpschef"),
                ("department", "Inköp"),
                ("email", "asa@vaasansahko.fi"),
                ("phone", "040 123 4567"),
                ("language", "sv"),
                ("source", "fair"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);

    let page = app
        .get_as(&staff, &format!("/customers/{company}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("Vaasan Sähkö Oy") && page.contains("Elbolag"));
    assert!(page.contains("https://www.vaasansahko.fi/"));
    let person = app
        .get_as(&staff, &location(&r))
        .await
        .text()
        .await
        .unwrap();
    for shown in [
        "Åsa Öberg-Łukasiewicz",
        "Inköpschef",
        "Inköp",
        "asa@vaasansahko.fi",
        "040 123 4567",
        "Svenska",
        "På en mässa",
        "Karantän",
    ] {
        assert!(person.contains(shown), "{shown} is not shown");
    }
}

/// R-CUST-2: bad input gets a message next to the field and the form keeps what was typed.
#[tokio::test]
async fn invalid_details_are_refused_next_to_the_field_and_kept_in_the_form() {
    let app = TestApp::spawn().await;
    let staff = app.signed_in(Role::Employee).await;
    let company = add_company(&app, &staff, "Wärtsilä").await;

    let r = app
        .post_form_as(
            &staff,
            &format!("/customers/{company}/people"),
            &[
                ("name", "Jörg Müller"),
                ("email", "joerg(at)example.de"),
                ("phone", "ring me"),
                ("language", "de"),
                ("source", "fair"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = r.text().await.unwrap();
    assert!(
        page.contains(r#"value="Jörg Müller""#) && page.contains(r#"value="joerg(at)example.de""#)
    );
    assert_eq!(
        texts(&page, ".field-error"),
        [
            "Det här är ingen e-postadress (till exempel anna@exempel.fi).",
            "Det här är inget telefonnummer (bara siffror, mellanslag och + - ( )).",
            "Välj ett av alternativen."
        ]
    );
    let bad_site = app
        .post_form_as(
            &staff,
            "/customers",
            &[("name", "X"), ("website", "javascript:alert(1)")],
        )
        .await;
    assert_eq!(bad_site.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM contacts")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(count, 0);
}

/// R-CUST-2: the e-mail is unique whatever its case.
#[tokio::test]
async fn an_address_already_in_the_register_is_refused() {
    let app = TestApp::spawn().await;
    let staff = app.signed_in(Role::Employee).await;
    let company = add_company(&app, &staff, "ABB").await;
    add_person(&app, &staff, &company, "Anna", "anna@abb.test", "en").await;
    let r = app
        .post_form_as(
            &staff,
            &format!("/customers/{company}/people"),
            &[
                ("name", "Anna Again"),
                ("email", "ANNA@abb.test"),
                ("language", "en"),
                ("source", "fair"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("har redan den här e-postadressen")
    );
}

/// R-CUST-12: a new person is in quarantine, apart from the register, and gets the
/// question in their own language.
#[tokio::test]
async fn a_new_person_waits_in_quarantine_and_is_asked_in_their_language() {
    let app = TestApp::spawn().await;
    let staff = app.signed_in(Role::Employee).await;
    let company = add_company(&app, &staff, "Elenia").await;
    add_person(&app, &staff, &company, "Sven", "sven@elenia.test", "sv").await;
    add_person(&app, &staff, &company, "Sanna", "sanna@elenia.test", "fi").await;
    add_person(&app, &staff, &company, "Sam", "sam@elenia.test", "en").await;

    let mails = app.smtp.wait_for(3).await;
    let subject = |to: &str| {
        mails
            .iter()
            .find(|m| m.recipients == [to])
            .unwrap()
            .subject()
    };
    assert_eq!(
        subject("sven@elenia.test"),
        "Bekräfta dina uppgifter hos BTB Transformers Ab"
    );
    assert_eq!(
        subject("sanna@elenia.test"),
        "Vahvista tietosi – BTB Transformers Ab"
    );
    assert_eq!(
        subject("sam@elenia.test"),
        "Please confirm your details with BTB Transformers Ab"
    );
    let register = app.get_as(&staff, "/people").await.text().await.unwrap();
    let quarantine = app
        .get_as(&staff, "/people?status=quarantine")
        .await
        .text()
        .await
        .unwrap();
    assert!(!register.contains("sven@elenia.test"));
    let home = app.get_as(&staff, "/").await.text().await.unwrap();
    assert_eq!(texts(&home, ".stats li"), ["3 väntar på bekräftelse"]);
    assert!(quarantine.contains("sven@elenia.test") && quarantine.contains("sanna@elenia.test"));
}

/// R-CUST-12: opening the link changes nothing; the button confirms, with a consent
/// record; a second confirmation is harmless.
#[tokio::test]
async fn confirming_moves_the_person_into_the_register_with_a_consent_record() {
    let app = TestApp::spawn().await;
    let staff = app.signed_in(Role::Employee).await;
    let id = person_in_quarantine(&app, &staff, "Fredrik", "fredrik@fortum.test", "sv").await;
    let link = app.mailed_link(0, "/consent/").await;
    let visitor = app.new_browser();

    let opened = app.get_as(&visitor, &link).await;
    assert_eq!(opened.status(), StatusCode::OK);
    let page = opened.text().await.unwrap();
    assert!(page.contains("Bekräfta dina uppgifter") && page.contains(r#"name="newsletter""#));
    assert!(
        !page.contains("checked"),
        "the newsletter box is not ticked in advance"
    );
    app.get_as(&visitor, &link).await;
    assert_eq!(
        status_of(&app, &id).await.as_deref(),
        Some("quarantine"),
        "GET changes nothing"
    );

    let confirmed = app.post_form_as(&visitor, &link, &[]).await;
    assert_eq!(confirmed.status(), StatusCode::OK);
    assert!(
        confirmed
            .text()
            .await
            .unwrap()
            .contains("Dina uppgifter är bekräftade")
    );
    assert_eq!(status_of(&app, &id).await.as_deref(), Some("active"));
    let again = app.post_form_as(&visitor, &link, &[]).await;
    assert_eq!(again.status(), StatusCode::OK);
    assert!(again.text().await.unwrap().contains("redan bekräftade"));

    let consents: i64 =
        sqlx::query_scalar("SELECT count(*) FROM consents WHERE contact_id = $1::uuid")
            .bind(&id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(consents, 1, "the second confirmation records nothing more");
    let (purpose, version, text, method): (String, String, String, String) = sqlx::query_as(
        "SELECT purpose, text_version, text, method FROM consents WHERE contact_id = $1::uuid",
    )
    .bind(&id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        (purpose.as_str(), method.as_str()),
        ("storage", "email_link")
    );
    assert!(!version.is_empty() && text.contains("BTB Transformers Ab"));
    let newsletter: bool =
        sqlx::query_scalar("SELECT newsletter FROM contacts WHERE id = $1::uuid")
            .bind(&id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert!(!newsletter);
    let register = app.get_as(&staff, "/people").await.text().await.unwrap();
    assert!(register.contains("fredrik@fortum.test"));
}

/// R-CUST-8: the newsletter opt-in on the confirmation page is recorded with its history.
#[tokio::test]
async fn ticking_the_newsletter_on_confirmation_subscribes_with_a_record() {
    let app = TestApp::spawn().await;
    let staff = app.signed_in(Role::Employee).await;
    let id = person_in_quarantine(&app, &staff, "Fredrik", "fredrik@fortum.test", "en").await;
    let link = app.mailed_link(0, "/consent/").await;

    app.post_form_as(&app.new_browser(), &link, &[("newsletter", "on")])
        .await;

    let purposes: Vec<String> = sqlx::query_scalar(
        "SELECT purpose FROM consents WHERE contact_id = $1::uuid ORDER BY purpose",
    )
    .bind(&id)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(purposes, ["newsletter", "storage"]);
    let page = app
        .get_as(&staff, &format!("/people/{id}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("Prenumererar") && page.contains("prenumeration startad"));
}

/// R-CUST-12: refusing deletes the person at once; a second click says it is done.
#[tokio::test]
async fn refused_consent_deletes_the_contact_at_once() {
    let app = TestApp::spawn().await;
    let staff = app.signed_in(Role::Employee).await;
    let id = person_in_quarantine(&app, &staff, "Helena", "helena@helen.test", "fi").await;
    let link = app.mailed_link(0, "/refuse/").await;
    let visitor = app.new_browser();

    let page = app.get_as(&visitor, &link).await.text().await.unwrap();
    assert!(page.contains("Poista tietoni"));
    assert!(status_of(&app, &id).await.is_some(), "GET changes nothing");
    let refused = app.post_form_as(&visitor, &link, &[]).await;
    assert_eq!(refused.status(), StatusCode::OK);
    assert!(
        refused
            .text()
            .await
            .unwrap()
            .contains("Olemme poistaneet tietosi")
    );
    assert_eq!(status_of(&app, &id).await, None);
    let again = app.post_form_as(&visitor, &link, &[]).await;
    assert_eq!(again.status(), StatusCode::OK);
    assert!(again.text().await.unwrap().contains("redan raderade"));
}

#[tokio::test]
async fn unknown_and_expired_consent_links_get_clear_pages() {
    let app = TestApp::spawn().await;
    let staff = app.signed_in(Role::Employee).await;
    let company = add_company(&app, &staff, "Helen").await;
    add_person(&app, &staff, &company, "Helena", "helena@helen.test", "en").await;
    let link = app.mailed_link(0, "/consent/").await;
    sqlx::query("UPDATE link_tokens SET expires_at = now() - interval '1 second'")
        .execute(&app.pool)
        .await
        .unwrap();

    let expired = app.get(&link).await;
    let unknown = app
        .get("/consent/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
        .await;
    let junk = app.get("/refuse/..%2F..%2Fetc%2Fpasswd").await;
    let not_utf8 = app.get("/refuse/%ff%fe").await;
    let post_unknown = app
        .post_form("/consent/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", &[])
        .await;

    assert_eq!(expired.status(), StatusCode::GONE);
    assert!(expired.text().await.unwrap().contains("gått ut"));
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    assert!(unknown.text().await.unwrap().contains("Länken gäller inte"));
    assert_eq!(junk.status(), StatusCode::NOT_FOUND);
    assert_eq!(not_utf8.status(), StatusCode::BAD_REQUEST);
    assert!(
        not_utf8
            .text()
            .await
            .unwrap()
            .contains("Begäran kunde inte tolkas")
    );
    assert_eq!(post_unknown.status(), StatusCode::NOT_FOUND);
}

/// R-CUST-12: reminders on days 3, 7 and 12 (not before), each once however often the
/// job runs.
#[tokio::test]
async fn reminders_go_out_on_day_three_not_day_two_and_only_once() {
    let app = TestApp::spawn().await;
    let staff = app.signed_in(Role::Employee).await;
    let company = add_company(&app, &staff, "Caruna").await;
    add_person(&app, &staff, &company, "Carl", "carl@caruna.test", "sv").await;
    app.smtp.wait_for(1).await;
    let added = OffsetDateTime::now_utc();
    let to_carl = |app: &TestApp| app.smtp.received_by("carl@caruna.test");

    app.run_jobs_at(added + Duration::days(2)).await;
    app.outbox_drained().await;
    assert_eq!(to_carl(&app).len(), 1, "no reminder on day 2");
    app.run_jobs_at(added + Duration::days(3) + Duration::minutes(1))
        .await;
    app.run_jobs_at(added + Duration::days(3) + Duration::minutes(2))
        .await;
    app.outbox_drained().await;
    let mails = to_carl(&app);
    assert!(mails[1].subject().starts_with("Påminnelse"));
    app.run_jobs_at(added + Duration::days(7) + Duration::minutes(1))
        .await;
    app.run_jobs_at(added + Duration::days(12) + Duration::minutes(1))
        .await;
    app.run_jobs_at(added + Duration::days(12) + Duration::minutes(2))
        .await;
    app.outbox_drained().await;
    let mails = to_carl(&app);
    assert_eq!(mails.len(), 4, "the first mail and three reminders");
    // A reminder's links work like the first mail's.
    let link = path(&mails[3].link(&format!("{}/consent/", app.base)));
    assert_eq!(app.get(&link).await.status(), StatusCode::OK);
}

/// R-CUST-12: no answer within 14 days deletes the person; day 13 does not.
#[tokio::test]
async fn an_unconfirmed_person_is_deleted_on_day_fourteen_not_day_thirteen() {
    let app = TestApp::spawn().await;
    let staff = app.signed_in(Role::Employee).await;
    let company = add_company(&app, &staff, "Caruna").await;
    let id = add_person(&app, &staff, &company, "Carl", "carl@caruna.test", "sv").await;
    let added = OffsetDateTime::now_utc();

    app.run_jobs_at(added + Duration::days(13)).await;
    assert!(status_of(&app, &id).await.is_some());
    let reports = app
        .run_jobs_at(added + Duration::days(14) + Duration::minutes(1))
        .await;
    assert_eq!(status_of(&app, &id).await, None);
    assert!(
        reports
            .iter()
            .any(|r| r.outcome.contains("deleted 1 unconfirmed")),
        "{reports:?}"
    );
    let audited: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE action = 'contact.quarantine_expired' AND entity_id = $1")
        .bind(&id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(audited, 1);
}

async fn confirmed_person(app: &TestApp, staff: &reqwest::Client, email: &str) -> String {
    let id = person_in_quarantine(app, staff, "Kim", email, "sv").await;
    let mail = app.smtp.wait_for_recipient(email).await;
    let link = path(&mail.link(&format!("{}/consent/", app.base)));
    app.post_form_as(&app.new_browser(), &link, &[]).await;
    id
}

/// R-CUST-7: five years without communication deletes; the day before does not; the
/// administrator sees who is due within 30 days.
#[tokio::test]
async fn five_years_without_communication_deletes_the_person_at_the_boundary() {
    let app = TestApp::spawn().await;
    let staff = app.signed_in(Role::Employee).await;
    let admin = app.signed_in(Role::Admin).await;
    let id = confirmed_person(&app, &staff, "kim@kraft.test").await;
    // Move the person's history back so that the deadline falls within 30 days.
    sqlx::query("UPDATE contacts SET created_at = created_at - interval '5 years' + interval '10 days', confirmed_at = confirmed_at - interval '5 years' + interval '10 days', last_communication_at = last_communication_at - interval '5 years' + interval '10 days' WHERE id = $1::uuid")
        .bind(&id)
        .execute(&app.pool)
        .await
        .unwrap();
    let due = app
        .get_as(&admin, "/people/due")
        .await
        .text()
        .await
        .unwrap();
    assert!(due.contains("Kim"), "{due}");

    let moved: OffsetDateTime =
        sqlx::query_scalar("SELECT last_communication_at FROM contacts WHERE id = $1::uuid")
            .bind(&id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    // Five calendar years on: the same date and time (the moved date is never 29 February).
    let deadline = moved.replace_year(moved.year() + 5).unwrap();
    app.run_jobs_at(deadline - Duration::minutes(1)).await;
    assert!(status_of(&app, &id).await.is_some());
    app.run_jobs_at(deadline + Duration::minutes(1)).await;
    assert_eq!(status_of(&app, &id).await, None);
}

/// R-CUST-7: a sweep of hundreds deletes them a few hundred per transaction, so it never
/// holds the register's rows for long, and still deletes everyone due.
#[tokio::test]
async fn the_inactivity_sweep_deletes_hundreds_a_few_hundred_per_transaction() {
    let app = TestApp::spawn().await;
    let rows: String = (1..=650)
        .map(|i| format!("Old Friends Ab,Person {i},p{i}@old.test,yes,2014-06-01\n"))
        .collect();
    app.import_csv(&format!(
        "company_name,person_name,email,legacy,last_contacted\n{rows}"
    ))
    .await;

    let reports = app.run_jobs_at(OffsetDateTime::now_utc()).await;

    let sweep = reports
        .iter()
        .find(|r| r.job == "inactivity-sweep")
        .unwrap();
    assert_eq!(
        sweep.outcome,
        "deleted 650 contacts with no communication for 5 years, in 3 transactions"
    );
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM contacts")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(left, 0);
}

/// R-CUST-7: logging a communication keeps the person; the date counts, not the typing.
#[tokio::test]
async fn logging_a_communication_keeps_the_person_from_the_sweep() {
    let app = TestApp::spawn().await;
    let staff = app.signed_in(Role::Employee).await;
    let id = confirmed_person(&app, &staff, "kim@kraft.test").await;
    sqlx::query("UPDATE contacts SET created_at = now() - interval '6 years', confirmed_at = now() - interval '6 years', last_communication_at = now() - interval '6 years' WHERE id = $1::uuid")
        .bind(&id)
        .execute(&app.pool)
        .await
        .unwrap();
    let year_ago = (OffsetDateTime::now_utc() - Duration::days(365))
        .date()
        .to_string();
    let r = app
        .post_form_as(
            &staff,
            &format!("/people/{id}/communications"),
            &[
                ("kind", "call"),
                ("happened_on", &year_ago),
                ("note", "Offert på 40 MVA"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let bad = app
        .post_form_as(
            &staff,
            &format!("/people/{id}/communications"),
            &[
                ("kind", "call"),
                ("happened_on", "2999-01-01"),
                ("note", "x"),
            ],
        )
        .await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);

    app.run_jobs_at(OffsetDateTime::now_utc()).await;

    assert!(status_of(&app, &id).await.is_some());
    let last: String = sqlx::query_scalar(
        "SELECT (last_communication_at AT TIME ZONE 'UTC')::date::text FROM contacts WHERE id = $1::uuid",
    )
    .bind(&id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        last, year_ago,
        "the date logged counts, not the day it was typed"
    );
    let page = app
        .get_as(&staff, &format!("/people/{id}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("Offert på 40 MVA") && page.contains(&year_ago));
}

/// R-CUST-6, R-CUST-10: erasure leaves no row anywhere with the address, only the
/// suppression hash; adding it again warns and needs a confirmation.
#[tokio::test]
async fn erasure_leaves_nothing_but_the_suppression_hash_and_re_adding_needs_confirmation() {
    let app = TestApp::spawn().await;
    let staff = app.signed_in(Role::Employee).await;
    let id = confirmed_person(&app, &staff, "erase.me@kraft.test").await;
    app.post_form_as(
        &staff,
        &format!("/people/{id}/communications"),
        &[
            ("kind", "meeting"),
            ("happened_on", "2026-01-15"),
            ("note", "Möte"),
        ],
    )
    .await;
    let company: String =
        sqlx::query_scalar("SELECT company_id::text FROM contacts WHERE id = $1::uuid")
            .bind(&id)
            .fetch_one(&app.pool)
            .await
            .unwrap();

    let r = app
        .post_form_as(&staff, &format!("/people/{id}/delete"), &[])
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);

    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_schema || '.' || table_name FROM information_schema.tables WHERE table_schema IN ('public', 'tower_sessions') AND table_type = 'BASE TABLE'",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    for table in tables {
        let hits: i64 = sqlx::query_scalar(&format!(
            "SELECT count(*) FROM {table} t WHERE t::text ILIKE '%erase.me%'"
        ))
        .fetch_one(&app.pool)
        .await
        .unwrap();
        assert_eq!(hits, 0, "{table} still mentions the address");
        let by_id: i64 = sqlx::query_scalar(&format!(
            "SELECT count(*) FROM {table} t WHERE t::text LIKE '%' || $1 || '%'"
        ))
        .bind(&id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
        if table != "public.audit_log" {
            assert_eq!(by_id, 0, "{table} still holds a row of the person");
        }
    }
    let suppressed: i64 = sqlx::query_scalar("SELECT count(*) FROM suppressed_emails")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(suppressed, 1);

    let again = app
        .post_form_as(
            &staff,
            &format!("/customers/{company}/people"),
            &[
                ("name", "Kim"),
                ("email", "Erase.Me@kraft.test"),
                ("language", "sv"),
                ("source", "phone"),
            ],
        )
        .await;
    assert_eq!(again.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = again.text().await.unwrap();
    assert!(page.contains("bad att bli raderad") && page.contains(r#"name="confirm_erased""#));
    let confirmed = app
        .post_form_as(
            &staff,
            &format!("/customers/{company}/people"),
            &[
                ("name", "Kim"),
                ("email", "Erase.Me@kraft.test"),
                ("language", "sv"),
                ("source", "phone"),
                ("confirm_erased", "on"),
            ],
        )
        .await;
    assert_eq!(confirmed.status(), StatusCode::SEE_OTHER);
}

/// A company goes with its people only after a confirmation that says how many.
#[tokio::test]
async fn deleting_a_company_says_how_many_people_go_with_it() {
    let app = TestApp::spawn().await;
    let staff = app.signed_in(Role::Employee).await;
    let company = add_company(&app, &staff, "Fingrid").await;
    add_person(&app, &staff, &company, "A", "a@fingrid.test", "fi").await;
    add_person(&app, &staff, &company, "B", "b@fingrid.test", "fi").await;

    let page = app
        .get_as(&staff, &format!("/customers/{company}/delete"))
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("Radera företaget och 2 personer"));
    let stale = app
        .post_form_as(
            &staff,
            &format!("/customers/{company}/delete"),
            &[("people", "1")],
        )
        .await;
    assert_eq!(location(&stale), format!("/customers/{company}/delete"));
    let r = app
        .post_form_as(
            &staff,
            &format!("/customers/{company}/delete"),
            &[("people", "2")],
        )
        .await;
    assert_eq!(location(&r), "/customers");

    let left: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM companies) + (SELECT count(*) FROM contacts)",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(left, 0);
}

/// R-CUST-5: every change is audited with the field names, never the values.
#[tokio::test]
async fn changes_are_audited_with_field_names_only() {
    let app = TestApp::spawn().await;
    let staff = app.signed_in(Role::Employee).await;
    let id = person_in_quarantine(&app, &staff, "Anni", "anni@fingrid.test", "fi").await;
    app.post_form_as(
        &staff,
        &format!("/people/{id}"),
        &[
            ("name", "Anni Virtanen"),
            ("email", "anni@fingrid.test"),
            ("language", "fi"),
            ("source", "fair"),
            ("title", "CTO"),
            ("phone", "+358 40 123 4567"),
        ],
    )
    .await;

    let fields: Vec<String> = sqlx::query_scalar(
        "SELECT unnest(fields) FROM audit_log WHERE action = 'contact.update' AND entity_id = $1",
    )
    .bind(&id)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(fields, ["name", "title"]);
    let dump: String = sqlx::query_scalar("SELECT string_agg(a::text, ' ') FROM audit_log a")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert!(!dump.contains("Virtanen") && !dump.contains("anni@") && !dump.contains("CTO"));
}

/// Search ignores case and accents and finds partial words.
#[tokio::test]
async fn search_ignores_case_and_accents_and_finds_parts_of_words() {
    let app = TestApp::spawn().await;
    let staff = app.signed_in(Role::Employee).await;
    app.import_csv(
        "company_name,person_name,email,legacy,last_contacted\n\
         Jakobstads Kraft,Åsa Öberg,asa.oberg@kraft.test,yes,2017-06-01\n",
    )
    .await;
    add_company(&app, &staff, "Vaasan Sähkö").await;

    for term in ["asa ober", "ÅSA", "berg", "kraft.test"] {
        let page = app
            .get_as(&staff, &format!("/people?q={}", urlencode(term)))
            .await
            .text()
            .await
            .unwrap();
        assert!(page.contains("Åsa Öberg"), "searching {term}");
    }
    let none = app
        .get_as(&staff, "/people?q=zzz")
        .await
        .text()
        .await
        .unwrap();
    assert!(!none.contains("Åsa Öberg"));
    let companies = app
        .get_as(&staff, "/customers?q=sahko")
        .await
        .text()
        .await
        .unwrap();
    assert!(companies.contains("Vaasan Sähkö") && !companies.contains("Jakobstads Kraft"));
    let odd = app
        .get_as(&staff, "/customers?q=%25_%5C&after=garbage")
        .await;
    assert_eq!(odd.status(), StatusCode::OK);
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Lists page with a cursor, fifty at a time.
#[tokio::test]
async fn the_people_list_pages_fifty_at_a_time() {
    let app = TestApp::spawn().await;
    let staff = app.signed_in(Role::Employee).await;
    let rows: String = (1..=60)
        .map(|i| format!("Big Co,Person {i:03},p{i}@big.test,yes,2017-06-01\n"))
        .collect();
    app.import_csv(&format!(
        "company_name,person_name,email,legacy,last_contacted\n{rows}"
    ))
    .await;

    let first = app.get_as(&staff, "/people").await.text().await.unwrap();
    let names = texts(&first, "tbody td:first-child a");
    assert_eq!(names.len(), 50);
    assert_eq!(names[0], "Person 001");
    let next = scraper::Html::parse_document(&first)
        .select(&scraper::Selector::parse("a.button[href^='/people?']").unwrap())
        .next()
        .unwrap()
        .value()
        .attr("href")
        .unwrap()
        .to_string();
    let second = app.get_as(&staff, &next).await.text().await.unwrap();
    let names = texts(&second, "tbody td:first-child a");
    assert_eq!(names.len(), 10);
    assert_eq!(names[0], "Person 051");
}

/// R-CUST-13: legacy contacts get the information mailing, each at most once, and the
/// administrator sees who has been informed.
#[tokio::test]
async fn legacy_contacts_are_informed_once_each() {
    let app = TestApp::spawn().await;
    let admin = app.signed_in(Role::Admin).await;
    app.import_csv(
        "company_name,person_name,email,language,legacy,last_contacted\n\
         Old Friends Ab,Olle Gammal,olle@old.test,sv,yes,2015-03-01\n\
         Old Friends Ab,Outi Vanha,outi@old.test,fi,yes,2016-05-01\n",
    )
    .await;

    let page = app
        .get_as(&admin, "/people/legacy")
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("Skicka informationen till 2 personer"));
    app.post_form_as(&admin, "/people/legacy/inform", &[]).await;
    app.post_form_as(&admin, "/people/legacy/inform", &[]).await;
    let mails = app.smtp.wait_for(2).await;
    app.outbox_drained().await;

    assert_eq!(app.smtp.received().len(), 2);
    let outi = mails
        .iter()
        .find(|m| m.recipients == ["outi@old.test"])
        .unwrap();
    assert!(outi.subject().contains("käsittelee henkilötietojasi"));
    assert!(outi.text().contains("info@btb.fi"));
    let page = app
        .get_as(&admin, "/people/legacy")
        .await
        .text()
        .await
        .unwrap();
    assert!(!page.contains("Skicka informationen"));
    assert!(page.contains("Olle Gammal") && page.contains("Outi Vanha"));
    let today = time::OffsetDateTime::now_utc().date().to_string();
    assert_eq!(
        page.matches(&today).count(),
        2,
        "both shown as informed today"
    );
    assert!(!page.contains("Inte ännu"));
}

/// Markup typed into any field is shown as text.
#[tokio::test]
async fn markup_in_any_field_is_shown_as_text() {
    let app = TestApp::spawn().await;
    let staff = app.signed_in(Role::Employee).await;
    let company = add_company(&app, &staff, "<script>alert('co')</script>").await;
    let r = app
        .post_form_as(
            &staff,
            &format!("/customers/{company}/people"),
            &[
                ("name", "<img src=x onerror=alert(1)>"),
                ("title", "<b>boss</b>"),
                ("email", "x@y.test"),
                ("language", "en"),
                ("source", "web"),
            ],
        )
        .await;
    let person = app
        .get_as(&staff, &location(&r))
        .await
        .text()
        .await
        .unwrap();
    let list = app.get_as(&staff, "/customers").await.text().await.unwrap();

    assert!(!list.contains("<script>alert"));
    assert!(!person.contains("<img src=x") && !person.contains("<b>boss</b>"));
    assert!(person.contains("&#60;img src=x onerror=alert(1)&#62;"));
}

/// R-CUST-1: the company list filters by business area and sorts by name or newest.
#[tokio::test]
async fn companies_filter_by_business_area_and_sort_newest_first() {
    let app = TestApp::spawn().await;
    let staff = app.signed_in(Role::Employee).await;
    let utility: String =
        sqlx::query_scalar("SELECT id::text FROM business_areas WHERE name_en = 'Power utility'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    for name in ["Alfa Oy", "Beta Ab", "Gamma AS"] {
        app.post_form_as(
            &staff,
            "/customers",
            &[("name", name), ("business_area", &utility)],
        )
        .await;
    }
    add_company(&app, &staff, "Delta GmbH").await;

    let by_name = texts(
        &app.get_as(&staff, "/customers").await.text().await.unwrap(),
        "tbody td:first-child a",
    );
    let newest = texts(
        &app.get_as(&staff, "/customers?sort=newest")
            .await
            .text()
            .await
            .unwrap(),
        "tbody td:first-child a",
    );
    let utilities = texts(
        &app.get_as(&staff, &format!("/customers?area={utility}"))
            .await
            .text()
            .await
            .unwrap(),
        "tbody td:first-child a",
    );

    assert_eq!(by_name, ["Alfa Oy", "Beta Ab", "Delta GmbH", "Gamma AS"]);
    assert_eq!(newest, ["Delta GmbH", "Gamma AS", "Beta Ab", "Alfa Oy"]);
    assert_eq!(utilities, ["Alfa Oy", "Beta Ab", "Gamma AS"]);
}

/// R-CUST-12: a corrected address in quarantine gets fresh links; the old ones stop working.
#[tokio::test]
async fn correcting_the_address_of_someone_in_quarantine_asks_the_new_address() {
    let app = TestApp::spawn().await;
    let staff = app.signed_in(Role::Employee).await;
    let id = person_in_quarantine(&app, &staff, "Fredrik", "fredrik@fortum.tset", "sv").await;
    let old = app.mailed_link(0, "/consent/").await;

    let r = app
        .post_form_as(
            &staff,
            &format!("/people/{id}"),
            &[
                ("name", "Fredrik"),
                ("email", "fredrik@fortum.test"),
                ("language", "sv"),
                ("source", "fair"),
                ("phone", "+358 40 123 4567"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);

    let mails = app.smtp.wait_for(2).await;
    assert_eq!(mails[1].recipients, ["fredrik@fortum.test"]);
    assert_eq!(app.get(&old).await.status(), StatusCode::NOT_FOUND);
}

/// R-CUST-10: changing someone's address to an erased one needs the same confirmation.
#[tokio::test]
async fn changing_an_address_to_an_erased_one_needs_confirmation() {
    let app = TestApp::spawn().await;
    let staff = app.signed_in(Role::Employee).await;
    let company = add_company(&app, &staff, "Fortum").await;
    let gone = add_person(&app, &staff, &company, "Gone", "gone@fortum.test", "sv").await;
    app.post_form_as(&staff, &format!("/people/{gone}/delete"), &[])
        .await;
    let other = add_person(&app, &staff, &company, "Other", "other@fortum.test", "sv").await;

    let r = app
        .post_form_as(
            &staff,
            &format!("/people/{other}"),
            &[
                ("name", "Other"),
                ("email", "gone@fortum.test"),
                ("language", "sv"),
                ("source", "fair"),
            ],
        )
        .await;

    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().await.unwrap().contains("bad att bli raderad"));
}

#[tokio::test]
async fn nul_bytes_and_impossible_dates_are_refused_not_crashed_on() {
    let app = TestApp::spawn().await;
    let staff = app.signed_in(Role::Employee).await;
    let admin = app.signed_in(Role::Admin).await;
    let id = confirmed_person(&app, &staff, "kim@kraft.test").await;

    let login = app
        .post_form("/login", &[("email", "a\0b@btb.test"), ("password", "x")])
        .await;
    let search = app.get_as(&staff, "/people?q=a%00b").await;
    let date = app
        .post_form_as(
            &staff,
            &format!("/people/{id}/communications"),
            &[
                ("kind", "call"),
                ("happened_on", "-9999-01-01"),
                ("note", "x"),
            ],
        )
        .await;
    let audit = app.get_as(&admin, "/audit?from=-9999-01-01").await;

    assert_eq!(login.status(), StatusCode::BAD_REQUEST);
    assert_eq!(search.status(), StatusCode::BAD_REQUEST);
    assert_eq!(date.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(audit.status(), StatusCode::OK);
    assert!(audit.text().await.unwrap().contains("ÅÅÅÅ-MM-DD"));
}

/// Changes a person's address through the form, keeping their other details.
async fn change_address(
    app: &TestApp,
    staff: &reqwest::Client,
    id: &str,
    email: &str,
) -> reqwest::Response {
    app.post_form_as(
        staff,
        &format!("/people/{id}"),
        &[
            ("name", "Kim"),
            ("email", email),
            ("language", "sv"),
            ("source", "fair"),
            ("phone", "+358 40 123 4567"),
        ],
    )
    .await
}

/// A confirmed person's address changed by staff is confirmed by its owner before any
/// other mail goes to it: opening the link changes nothing, the button confirms, once.
#[tokio::test]
async fn a_new_address_of_a_confirmed_person_is_confirmed_by_its_owner() {
    let app = TestApp::spawn().await;
    let staff = app.signed_in(Role::Employee).await;
    let id = confirmed_person(&app, &staff, "kim@kraft.test").await;

    let r = change_address(&app, &staff, &id, "kim@nykraft.test").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);

    let mail = app.smtp.wait_for_recipient("kim@nykraft.test").await;
    assert_eq!(
        mail.subject(),
        "Bekräfta din e-postadress hos BTB Transformers Ab"
    );
    let link = path(&mail.link(&format!("{}/address/", app.base)));
    let page = || async {
        app.get_as(&staff, &format!("/people/{id}"))
            .await
            .text()
            .await
            .unwrap()
    };
    assert!(page().await.contains("Adressen är inte bekräftad ännu"));
    let visitor = app.new_browser();
    let opened = app.get_as(&visitor, &link).await;
    assert_eq!(opened.status(), StatusCode::OK);
    assert!(
        opened
            .text()
            .await
            .unwrap()
            .contains("Det här är min adress")
    );
    assert!(
        page().await.contains("Adressen är inte bekräftad ännu"),
        "GET changes nothing"
    );

    let confirmed = app.post_form_as(&visitor, &link, &[]).await;
    assert_eq!(confirmed.status(), StatusCode::OK);
    assert!(
        confirmed
            .text()
            .await
            .unwrap()
            .contains("Din e-postadress är bekräftad")
    );
    assert!(!page().await.contains("inte bekräftad"));
    let again = app.post_form_as(&visitor, &link, &[]).await;
    assert_eq!(again.status(), StatusCode::OK);
    assert!(again.text().await.unwrap().contains("redan bekräftad"));
    let confirmations: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE action = 'contact.email_confirm' AND entity_id = $1",
    )
    .bind(&id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(confirmations, 1);
}

/// Sending the confirmation again replaces the link; the earlier one stops working.
#[tokio::test]
async fn sending_the_address_confirmation_again_replaces_the_link() {
    let app = TestApp::spawn().await;
    let staff = app.signed_in(Role::Employee).await;
    let id = confirmed_person(&app, &staff, "kim@kraft.test").await;
    change_address(&app, &staff, &id, "kim@nykraft.test").await;
    let first = app.smtp.wait_for_recipient("kim@nykraft.test").await;
    let old = path(&first.link(&format!("{}/address/", app.base)));

    let r = app
        .post_form_as(&staff, &format!("/people/{id}/address-confirmation"), &[])
        .await;

    assert_eq!(location(&r), format!("/people/{id}"));
    let mails = app.smtp.wait_for(3).await;
    assert_eq!(mails[2].recipients, ["kim@nykraft.test"]);
    let new = path(&mails[2].link(&format!("{}/address/", app.base)));
    assert_eq!(app.get(&old).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(app.get(&new).await.status(), StatusCode::OK);
}

/// R-CUST-13: the information mailing waits while a legacy person's new address is not
/// confirmed, and reaches them once it is.
#[tokio::test]
async fn the_legacy_mailing_skips_an_address_not_yet_confirmed() {
    let app = TestApp::spawn().await;
    let admin = app.signed_in(Role::Admin).await;
    let file = app.data_dir.path().join("legacy.csv");
    std::fs::write(
        &file,
        "company_name,person_name,email,language,legacy,last_contacted\n\
         Gamla Ab,Kim,kim@old.test,sv,yes,2017-09-01\n\
         Gamla Ab,Outi,outi@old.test,fi,yes,2017-09-01\n",
    )
    .unwrap();
    let out = app
        .cli()
        .args(["import", "contacts", file.to_str().unwrap()])
        .output()
        .await
        .unwrap();
    assert!(out.status.success());
    let kim: String =
        sqlx::query_scalar("SELECT id::text FROM contacts WHERE email = 'kim@old.test'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    change_address(&app, &admin, &kim, "kim@new.test").await;
    let confirmation = app.smtp.wait_for_recipient("kim@new.test").await;

    let page = app
        .get_as(&admin, "/people/legacy")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("Skicka informationen till 1 personer"),
        "{page}"
    );
    assert!(page.contains("adressen inte bekräftad ännu"));
    app.post_form_as(&admin, "/people/legacy/inform", &[]).await;
    app.smtp.wait_for(2).await;
    app.outbox_drained().await;
    assert_eq!(app.smtp.received()[1].recipients, ["outi@old.test"]);

    let link = path(&confirmation.link(&format!("{}/address/", app.base)));
    app.post_form_as(&app.new_browser(), &link, &[]).await;
    app.post_form_as(&admin, "/people/legacy/inform", &[]).await;

    let mails = app.smtp.wait_for(3).await;
    assert_eq!(mails[2].recipients, ["kim@new.test"]);
    assert!(mails[2].subject().contains("behandlar"));
}
