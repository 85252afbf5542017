//! The personnel register over HTTP, as the CEO with a second factor uses it: employees,
//! identity codes and bank accounts, encryption at rest, reveals and views in the audit
//! log, who else sees nothing of it, and retention when an employment ends.

use gdpr_register::{local_pg::LocalPostgres, users::Role};
use std::time::Duration;

use reqwest::StatusCode;
use time::macros::datetime;

use crate::support::{TestApp, location, pg, texts, totp_code};

const CODE: &str = "131052-308T";
const IBAN: &str = "FI21 1234 5600 0007 85";
const SALARY: &str = "3 850,00 EUR/month, TES Teknologiateollisuus";

/// The CEO, signed in with a second factor.
pub async fn ceo(app: &TestApp) -> reqwest::Client {
    let client = app.signed_in(Role::Ceo).await;
    app.enrol_second_factor(&client).await;
    client
}

/// Every field filled, the employment ending on `end` (empty: still employed).
pub fn employee<'a>(code: &'a str, end: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("name", "Märta Sjöholm"),
        ("identity_code", code),
        ("email", "marta.sjoholm@example.test"),
        ("home_address", "Storgatan 1\n68600 Jakobstad"),
        ("bank_account", IBAN),
        ("salary", SALARY),
        ("employment_start", "2019-03-01"),
        ("employment_end", end),
        ("duties", "Winding design"),
        ("education", "2018-06-01 – M.Sc. (Tech.), Åbo Akademi"),
        ("experience", "2014-08-01 – Draughtsman, Vaasan Sähkö"),
        ("courses", "2022-05-10 – Working at heights"),
    ]
}

/// Adds an employee through the form; returns the record's path.
pub async fn add(app: &TestApp, ceo: &reqwest::Client, fields: &[(&str, &str)]) -> String {
    let r = app.post_form_as(ceo, "/personnel/new", fields).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let path = location(&r);
    assert!(path.starts_with("/personnel/"), "{path}");
    path
}

async fn page(app: &TestApp, client: &reqwest::Client, path: &str) -> String {
    let r = app.get_as(client, path).await;
    assert_eq!(r.status(), StatusCode::OK, "{path}");
    r.text().await.unwrap()
}

/// R-PERS-1
#[tokio::test]
async fn an_employee_is_saved_with_every_field_and_shown_on_their_page() {
    let app = TestApp::spawn().await;
    let ceo = ceo(&app).await;

    let path = add(&app, &ceo, &employee(CODE, "")).await;

    let shown = page(&app, &ceo, &path).await;
    assert_eq!(texts(&shown, "h1"), ["Märta Sjöholm"]);
    for text in [
        "marta.sjoholm@example.test",
        "68600 Jakobstad",
        "2019-03-01",
        "Winding design",
        "2018-06-01 – M.Sc. (Tech.), Åbo Akademi",
        "2014-08-01 – Draughtsman, Vaasan Sähkö",
        "2022-05-10 – Working at heights",
    ] {
        assert!(shown.contains(text), "{text}");
    }
    assert_eq!(texts(&shown, "#identity_code"), ["131052-***T"]);
    assert_eq!(texts(&shown, "#bank_account"), ["FI21 **** **** **85"]);
    let list = page(&app, &ceo, "/personnel").await;
    assert_eq!(texts(&list, "tbody td a"), ["Märta Sjöholm"]);
}

/// R-PERS-1: each wrong value gets the form back as typed (422), with the reason beside
/// its field, in the page's language.
#[tokio::test]
async fn wrong_identity_codes_and_ibans_are_refused_with_the_form_as_typed_and_the_reason() {
    let app = TestApp::spawn().await;
    let ceo = ceo(&app).await;
    for (field, value, swedish) in [
        (
            "identity_code",
            "310252-308T",
            "inte ett verkligt födelsedatum",
        ),
        ("identity_code", "131052-308U", "Kontrolltecknet"),
        ("identity_code", "131052G308T", "sekeltecken"),
        ("identity_code", "131052-308", "11 tecken"),
        ("bank_account", "FI21 1234 5600 0007 8", "fel antal tecken"),
        ("bank_account", "FI21 1234 5600 0007 86", "kontrollsiffror"),
        ("employment_start", "2019-02-30", "ÅÅÅÅ-MM-DD"),
        ("education", "Åbo Akademi", "börja med ett datum"),
    ] {
        let mut fields = employee(CODE, "");
        fields.retain(|(name, _)| *name != field);
        fields.push((field, value));
        let r = app.post_form_as(&ceo, "/personnel/new", &fields).await;
        assert_eq!(
            r.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{field}={value}"
        );
        let body = r.text().await.unwrap();
        let error = texts(&body, &format!("#{field}-error"));
        assert!(
            error.len() == 1 && error[0].contains(swedish),
            "{field}={value}: {error:?}"
        );
        let doc = scraper::Html::parse_document(&body);
        let input = scraper::Selector::parse(&format!("#{field}")).unwrap();
        let described = doc
            .select(&input)
            .next()
            .and_then(|e| e.value().attr("aria-describedby"))
            .unwrap_or_default();
        assert!(
            described
                .split(' ')
                .any(|id| id == format!("{field}-error")),
            "{field}: the error is tied to its field"
        );
        assert!(body.contains(value), "{value} kept as typed");
        assert!(body.contains("Märta Sjöholm"));
    }
    app.post_form_as(&ceo, "/lang", &[("lang", "en"), ("back", "/")])
        .await;
    let mut fields = employee("131052-308U", "");
    fields.retain(|(name, _)| *name != "bank_account");
    fields.push(("bank_account", "FI21 1234 5600 0007 855"));
    let r = app.post_form_as(&ceo, "/personnel/new", &fields).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body = r.text().await.unwrap();
    assert!(texts(&body, "#identity_code-error")[0].contains("check character"));
    assert!(texts(&body, "#bank_account-error")[0].contains("Finnish one has 18"));
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM employees")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(count, 0);
}

/// R-PERS-1: the same person twice is refused, found by the code's keyed hash; the same
/// digits with another century sign are another person.
#[tokio::test]
async fn a_second_employee_with_the_same_identity_code_is_refused() {
    let app = TestApp::spawn().await;
    let ceo = ceo(&app).await;
    add(&app, &ceo, &employee("010594Y9032", "")).await;

    let again = app
        .post_form_as(&ceo, "/personnel/new", &employee("010594y9032", ""))
        .await;
    assert_eq!(again.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body = again.text().await.unwrap();
    assert!(texts(&body, "#identity_code-error")[0].contains("redan"));

    add(&app, &ceo, &employee("010594-9032", "")).await;
}

/// R-PERS-3: to anyone but the CEO every personnel path is an unknown path; the CEO
/// without a second factor is sent to enrol.
#[tokio::test]
async fn the_register_is_not_there_for_anyone_but_the_ceo() {
    let app = TestApp::spawn().await;
    let ceo = ceo(&app).await;
    let record = add(&app, &ceo, &employee(CODE, "")).await;
    let admin = app.signed_in(Role::Admin).await;
    let others = [
        app.new_browser(),
        app.signed_in(Role::Employee).await,
        app.signed_in_with(Role::Employee, |u| u.chat_operator = true)
            .await,
        app.signed_in_with(Role::Employee, |u| u.mailbox = true)
            .await,
        admin.clone(),
    ];
    for client in &others {
        let unknown = app.get_as(client, "/no-such-page").await;
        assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
        let unknown = texts(&unknown.text().await.unwrap(), "main");
        for path in [
            "/personnel".to_string(),
            "/personnel/new".to_string(),
            "/personnel/audit".to_string(),
            record.clone(),
            format!("{record}/edit"),
        ] {
            let r = app.get_as(client, &path).await;
            assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
            assert_eq!(texts(&r.text().await.unwrap(), "main"), unknown, "{path}");
        }
        let r = app
            .post_form_as(
                client,
                &format!("{record}/reveal"),
                &[("field", "identity_code")],
            )
            .await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        let home = app.get_as(client, "/").await.text().await.unwrap();
        assert!(!home.contains("/personnel"));
    }
    let without_factor = app.signed_in(Role::Ceo).await;
    let r = app.get_as(&without_factor, &record).await;
    assert_eq!(location(&r), "/account/second-factor");

    let audit = page(&app, &admin, "/audit").await;
    let entities = texts(&audit, "tbody td:nth-child(5)");
    assert!(
        entities.iter().any(|e| e.starts_with("user")),
        "{entities:?}"
    );
    assert!(
        !entities.iter().any(|e| e.starts_with("employee")),
        "no personnel row in the administrator's log"
    );
}

/// R-PERS-3
#[tokio::test]
async fn after_the_idle_time_the_ceo_enters_a_code_again_and_goes_back_where_they_were() {
    let app = TestApp::spawn_with(|c| c.personnel_idle = Duration::from_secs(3)).await;
    let ceo = app.signed_in(Role::Ceo).await;
    let factor = app.enrol_second_factor(&ceo).await;
    let record = add(&app, &ceo, &employee(CODE, "")).await;
    page(&app, &ceo, &record).await;

    tokio::time::sleep(Duration::from_millis(3500)).await;
    let r = app.get_as(&ceo, &record).await;
    let asked = location(&r);
    assert!(asked.starts_with("/personnel/code?next="), "{asked}");
    let form = page(&app, &ceo, &asked).await;
    assert_eq!(texts(&form, "label[for=code]").len(), 1);
    let r = app.get_as(&ceo, "/personnel").await;
    assert!(location(&r).starts_with("/personnel/code"), "still asked");

    let r = app.post_form_as(&ceo, &asked, &[("code", "000000")]).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let refused = r.text().await.unwrap();
    assert_eq!(texts(&refused, "#code-error").len(), 1);
    let r = app.get_as(&ceo, &record).await;
    assert_eq!(
        r.status(),
        StatusCode::SEE_OTHER,
        "a wrong code opens nothing"
    );

    let code = totp_code(&factor.secret, 1);
    let r = app.post_form_as(&ceo, &asked, &[("code", &code)]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), record);
    page(&app, &ceo, &record).await;
}

/// The fields a deletion on request may clear, and the identity code, still stored.
async fn stored(app: &TestApp, id: &str) -> (Vec<Option<String>>, bool) {
    sqlx::query_as(
        "SELECT ARRAY[email, home_address, education, experience, courses],
                identity_code IS NOT NULL
         FROM employees WHERE id = $1::uuid",
    )
    .bind(id)
    .fetch_one(&app.pool)
    .await
    .unwrap()
}

/// R-PERS-5
#[tokio::test]
async fn a_deletion_on_request_removes_only_what_no_law_requires_and_says_what_it_kept_and_why() {
    let app = TestApp::spawn().await;
    let ceo = ceo(&app).await;
    let employed = add(&app, &ceo, &employee(CODE, "")).await;
    let confirm = page(&app, &ceo, &format!("{employed}/erase")).await;
    assert_eq!(texts(&confirm, "#deleted li").len(), 5);
    assert_eq!(texts(&confirm, "form[action$='/erase'] button").len(), 1);
    assert!(
        stored(&app, employed.trim_start_matches("/personnel/"))
            .await
            .0
            .iter()
            .all(Option::is_some),
        "nothing goes before the confirmation"
    );

    let r = app
        .post_form_as(&ceo, &format!("{employed}/erase"), &[])
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let shown = r.text().await.unwrap();
    let kept = texts(&shown, "#kept li");
    assert_eq!(kept.len(), 2, "{kept:?}");
    assert!(
        kept[0].contains("1336/1997") && kept[0].contains("Anställningen fortsätter"),
        "{kept:?}"
    );
    assert!(kept[1].contains("55/2001"), "{kept:?}");
    assert!(!shown.contains("Working at heights"));
    let id = employed.trim_start_matches("/personnel/");
    let (cleared, code) = stored(&app, id).await;
    assert!(cleared.iter().all(Option::is_none), "{cleared:?}");
    assert!(code, "the identity code is kept");
    let fields: Vec<String> = sqlx::query_scalar(
        "SELECT fields FROM audit_log WHERE action = 'employee.erase_request' AND entity_id = $1",
    )
    .bind(id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        fields,
        [
            "email",
            "home_address",
            "education",
            "experience",
            "courses"
        ]
    );

    let left = add(&app, &ceo, &employee("010594Y9032", "2026-06-30")).await;
    let r = app.post_form_as(&ceo, &format!("{left}/erase"), &[]).await;
    let kept = texts(&r.text().await.unwrap(), "#kept li");
    assert!(kept[0].contains("2033-01-01"), "{kept:?}");
    assert!(kept[1].contains("2036-07-01"), "{kept:?}");
}

/// R-PERS-2
#[tokio::test]
async fn the_register_names_the_payroll_bureau_and_occupational_health_with_what_each_receives() {
    let app = TestApp::spawn().await;
    let ceo = ceo(&app).await;
    let register = page(&app, &ceo, "/personnel").await;
    let recipients = texts(&register, "#recipients li");
    assert_eq!(recipients.len(), 2, "{recipients:?}");
    let [payroll, health] = [&recipients[0], &recipients[1]];
    assert!(
        payroll.starts_with("Jakobstads Bokföringsbyrå Ab"),
        "{payroll}"
    );
    assert!(
        payroll.contains("Bankkonto") && payroll.contains("Lönedata"),
        "{payroll}"
    );
    assert!(
        health.starts_with("Jakobstads Arbetshälsovårdsförening r.f."),
        "{health}"
    );
    assert!(health.contains("Arbetsuppgifter"), "{health}");
    assert!(
        !health.contains("Bankkonto") && !health.contains("Lönedata"),
        "{health}"
    );
}

/// R-PERS-3: the plain values are in no column of the table, in no dump of the database
/// and in no line of PostgreSQL's log.
#[tokio::test]
async fn identity_codes_bank_accounts_and_salaries_are_in_no_row_dump_or_log_in_plain_text() {
    let app = TestApp::spawn().await;
    let ceo = ceo(&app).await;
    add(&app, &ceo, &employee(CODE, "")).await;

    let rows: Vec<String> = sqlx::query_scalar("SELECT e::text FROM employees e")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    let secrets = [
        CODE,
        "131052",
        "FI2112345600000785",
        "12345600000785",
        IBAN,
        "3 850,00",
    ];
    let hex = |s: &str| hex::encode(s.as_bytes());
    for secret in secrets {
        assert!(!rows[0].contains(secret), "{secret} in the row");
        assert!(
            !rows[0].contains(&hex(secret)),
            "{secret} as bytes in the row"
        );
    }
    assert!(rows[0].contains("Märta Sjöholm"), "the row is read as text");
    // A second employee with the same code is refused, and neither that nor anything
    // else this register did wrote a value into PostgreSQL's own log.
    let twice = app
        .post_form_as(&ceo, "/personnel/new", &employee(CODE, ""))
        .await;
    assert_eq!(twice.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let log = std::fs::read_to_string(pg::cluster().pg.log_file()).unwrap();
    for secret in secrets {
        assert!(!log.contains(secret), "{secret} in PostgreSQL's log");
    }

    let Ok(bin) = LocalPostgres::find_binaries() else {
        return;
    };
    let dump = std::process::Command::new(bin.join("pg_dump"))
        .args(["--data-only", "--dbname"])
        .arg(pg::database_url(&app.db))
        .output()
        .unwrap();
    assert!(
        dump.status.success(),
        "{}",
        String::from_utf8_lossy(&dump.stderr)
    );
    let dump = String::from_utf8_lossy(&dump.stdout);
    assert!(dump.contains("Märta Sjöholm"), "the dump holds the table");
    for secret in secrets {
        assert!(!dump.contains(secret), "{secret} in the dump");
        assert!(
            !dump.contains(&hex(secret)),
            "{secret} as bytes in the dump"
        );
    }
}

/// Masked until revealed; a reveal is a POST, shows the value on the page and is in the
/// audit log with the field's name.
#[tokio::test]
async fn values_are_masked_until_the_ceo_reveals_one_and_each_reveal_is_audited() {
    let app = TestApp::spawn().await;
    let ceo = ceo(&app).await;
    let record = add(&app, &ceo, &employee("010594Y9032", "")).await;
    let shown = page(&app, &ceo, &record).await;
    assert_eq!(texts(&shown, "#identity_code"), ["010594Y***2"]);
    assert_eq!(texts(&shown, "#bank_account"), ["FI21 **** **** **85"]);
    assert_eq!(texts(&shown, "#salary"), ["****"]);
    assert!(!shown.contains("9032") && !shown.contains("5600") && !shown.contains("3 850"));

    for (field, plain) in [
        ("identity_code", "010594Y9032"),
        ("bank_account", IBAN),
        ("salary", SALARY),
    ] {
        let r = app
            .post_form_as(&ceo, &format!("{record}/reveal"), &[("field", field)])
            .await;
        assert_eq!(r.status(), StatusCode::OK);
        let body = r.text().await.unwrap();
        assert_eq!(texts(&body, &format!("#{field}")), [plain]);
    }
    let bad = app
        .post_form_as(&ceo, &format!("{record}/reveal"), &[("field", "name")])
        .await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);

    let id = record.trim_start_matches("/personnel/");
    let reveals: Vec<Vec<String>> = sqlx::query_scalar(
        "SELECT fields FROM audit_log WHERE action = 'employee.reveal' AND entity = 'employee'
         AND entity_id = $1 AND actor_kind = 'user' ORDER BY id",
    )
    .bind(id)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(reveals, [["identity_code"], ["bank_account"], ["salary"]]);
}

/// R-PERS-3: every view of a record is in the audit log, which the CEO reads under the
/// register, with who looked and when.
#[tokio::test]
async fn every_view_of_a_record_is_in_the_ceos_audit_view() {
    let app = TestApp::spawn().await;
    let ceo = ceo(&app).await;
    let record = add(&app, &ceo, &employee(CODE, "")).await;
    let id = record.trim_start_matches("/personnel/");
    page(&app, &ceo, &record).await;
    page(&app, &ceo, &record).await;
    page(&app, &ceo, &format!("{record}/edit")).await;

    let views: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE action = 'employee.view' AND entity_id = $1",
    )
    .bind(id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(views, 3);
    let log = page(&app, &ceo, "/personnel/audit?action=employee.view").await;
    let actions = texts(&log, "tbody td code:not(.id)");
    assert_eq!(actions, ["employee.view"; 3]);
    assert_eq!(texts(&log, "tbody code.id"), [id; 3]);
    let everything = page(&app, &ceo, "/personnel/audit").await;
    let entities = texts(&everything, "tbody td:nth-child(5)");
    assert_eq!(
        entities.len(),
        4,
        "the creation and three views: {entities:?}"
    );
    assert!(
        entities.iter().all(|e| e.starts_with("employee")),
        "only the register's rows"
    );
}

/// R-PERS-5: an end date schedules each group of data, and the record says when each
/// goes.
#[tokio::test]
async fn ending_an_employment_shows_what_is_deleted_when() {
    let app = TestApp::spawn().await;
    let ceo = ceo(&app).await;
    let record = add(&app, &ceo, &employee(CODE, "")).await;
    let before = page(&app, &ceo, &record).await;
    assert!(texts(&before, "#retention li").is_empty());

    let mut fields = employee("", "2026-06-15");
    fields.retain(|(name, _)| !["identity_code", "bank_account", "salary"].contains(name));
    let r = app.post_form_as(&ceo, &record, &fields).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);

    let after = page(&app, &ceo, &record).await;
    let due = texts(&after, "#retention li");
    assert_eq!(due.len(), 3, "{due:?}");
    assert!(due[0].contains("2026-07-16"), "{due:?}");
    assert!(due[1].contains("2033-01-01"), "{due:?}");
    assert!(due[2].contains("2036-06-16"), "{due:?}");
    assert_eq!(
        texts(&after, "#identity_code"),
        ["131052-***T"],
        "kept when left empty"
    );
}

async fn row(app: &TestApp, id: &str) -> Option<(Option<String>, Option<Vec<u8>>, String)> {
    sqlx::query_as("SELECT email, identity_code, name FROM employees WHERE id = $1::uuid")
        .bind(id)
        .fetch_optional(&app.pool)
        .await
        .unwrap()
}

/// R-PERS-5: the six years of payroll data count from the end of the calendar year in
/// which the employment ended; the job can run twice.
#[tokio::test]
async fn payroll_data_is_kept_to_the_end_of_the_sixth_calendar_year_after_the_employment() {
    let app = TestApp::spawn().await;
    let ceo = ceo(&app).await;
    let on_new_year = add(&app, &ceo, &employee(CODE, "2026-12-31")).await;
    let on_new_year = on_new_year.trim_start_matches("/personnel/");

    app.run_jobs_at(datetime!(2027-01-30 12:00 UTC)).await;
    let (email, code, _) = row(&app, on_new_year).await.unwrap();
    assert!(email.is_some() && code.is_some(), "within the grace period");
    app.run_jobs_at(datetime!(2027-01-31 00:00 UTC)).await;
    let (email, code, _) = row(&app, on_new_year).await.unwrap();
    assert!(email.is_none(), "private data gone after the grace period");
    assert!(code.is_some());

    app.run_jobs_at(datetime!(2032-12-31 23:59 UTC)).await;
    assert!(
        row(&app, on_new_year).await.unwrap().1.is_some(),
        "kept to 31 December"
    );
    let reports = app.run_jobs_at(datetime!(2033-01-01 00:00 UTC)).await;
    let (_, code, name) = row(&app, on_new_year).await.unwrap();
    assert!(code.is_none(), "{reports:?}");
    assert_eq!(name, "Märta Sjöholm");
    let again = app.run_jobs_at(datetime!(2033-01-01 00:00 UTC)).await;
    let outcome = &again
        .iter()
        .find(|r| r.job == "personnel-retention")
        .unwrap()
        .outcome;
    assert!(outcome.contains("payroll data of 0"), "{outcome}");
    // The jobs, run years ahead, ended the sessions of today.
    let ceo = self::ceo(&app).await;
    let shown = page(&app, &ceo, &format!("/personnel/{on_new_year}")).await;
    assert!(texts(&shown, "#identity_code").is_empty());
    let audited: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE action = 'employee.retention' AND entity_id = $1",
    )
    .bind(on_new_year)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(audited, 2);
}

/// R-PERS-5: ten years from 29 February end on the last day of February; the record goes
/// the day after.
#[tokio::test]
async fn a_record_ended_on_29_february_goes_after_the_last_day_of_february_ten_years_on() {
    let app = TestApp::spawn().await;
    let ceo = ceo(&app).await;
    let record = add(&app, &ceo, &employee(CODE, "2028-02-29")).await;
    let id = record.trim_start_matches("/personnel/");

    app.run_jobs_at(datetime!(2038-02-28 23:59 UTC)).await;
    assert!(
        row(&app, id).await.is_some(),
        "kept through 28 February 2038"
    );
    app.run_jobs_at(datetime!(2038-03-01 00:00 UTC)).await;
    assert!(row(&app, id).await.is_none());
    // The jobs, run years ahead, ended the sessions of today.
    let ceo = self::ceo(&app).await;
    assert_eq!(
        app.get_as(&ceo, &record).await.status(),
        StatusCode::NOT_FOUND
    );
    let deleted: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE action = 'employee.delete' AND entity_id = $1",
    )
    .bind(id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(deleted, 1);
    // The identity code is free again: the same person can be employed anew.
    add(&app, &ceo, &employee(CODE, "")).await;
}

/// R-PERS-2: the payroll export holds exactly what payroll needs, of everyone whose
/// payroll data is kept, and each employee in it is in the audit log as disclosed to the
/// accounting bureau.
#[tokio::test]
async fn the_payroll_export_holds_what_payroll_needs_and_is_audited_as_a_disclosure() {
    let app = TestApp::spawn().await;
    let ceo = ceo(&app).await;
    let record = add(&app, &ceo, &employee(CODE, "")).await;
    let mut other = employee("010594Y9032", "");
    other.retain(|(name, _)| !["name", "salary"].contains(name));
    other.extend([("name", "=Kalle"), ("salary", "-")]);
    add(&app, &ceo, &other).await;

    let r = app.post_form_as(&ceo, "/personnel/payroll", &[]).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment")
    );
    let csv = r.text().await.unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines,
        [
            "name,identity_code,bank_account,salary,employment_start,employment_end",
            "'=Kalle,010594Y9032,FI2112345600000785,'-,2019-03-01,",
            &format!("Märta Sjöholm,{CODE},FI2112345600000785,\"{SALARY}\",2019-03-01,"),
        ]
    );
    let disclosed: Vec<String> = sqlx::query_scalar(
        "SELECT entity_id FROM audit_log WHERE action = 'employee.disclose.payroll_bureau'
         AND actor_kind = 'user' ORDER BY id",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(disclosed.len(), 2);
    assert!(disclosed.contains(&record.trim_start_matches("/personnel/").to_string()));
}

/// Runs `import personnel` on CSV text; returns whether it succeeded, and its output.
async fn import(app: &TestApp, csv: &str, dry_run: bool) -> (bool, String) {
    let path = app.data_dir.path().join("personnel.csv");
    std::fs::write(&path, csv).unwrap();
    let mut cmd = app.cli();
    cmd.args(["import", "personnel"]).arg(&path);
    if dry_run {
        cmd.arg("--dry-run");
    }
    let out = cmd.output().await.unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

async fn employees(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM employees")
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

/// R-PERS-1: the spreadsheet is imported all or nothing, every bad row listed by its line,
/// identity codes and IBANs checked as the form checks them.
#[tokio::test]
async fn the_personnel_spreadsheet_is_imported_all_or_nothing_with_each_bad_row_listed() {
    let app = TestApp::spawn().await;
    let header = "name;identity_code;bank_account;employment_start;employment_end;education\n";
    let bad = format!(
        "{header}\
         Märta Sjöholm;131052-308T;FI21 1234 5600 0007 85;2019-03-01;;2018-06-01 – M.Sc.\n\
         Kalle Ek;131052-308U;;2020-01-01;;\n\
         Anna Berg;010594Y9032;FI21 1234 5600 0007 8;2021-05-01;;\n\
         Märta igen;131052-308t;;2019-03-01;;\n"
    );
    let (ok, out) = import(&app, &bad, false).await;
    assert!(!ok);
    assert!(
        out.contains("line 3: identity_code: The check character"),
        "{out}"
    );
    assert!(
        out.contains("line 4: bank_account: The IBAN has the wrong number"),
        "{out}"
    );
    assert!(
        out.contains("line 5: identity_code: the same identity code is on an earlier line"),
        "{out}"
    );
    assert!(!out.contains("line 2"), "{out}");
    assert_eq!(employees(&app).await, 0);

    let good = format!(
        "{header}\
         Märta Sjöholm;131052-308T;FI21 1234 5600 0007 85;2019-03-01;;2018-06-01 – M.Sc.\n\
         Anna Berg;010594Y9032;;2021-05-01;2026-06-15;\n"
    );
    let (ok, out) = import(&app, &good, true).await;
    assert!(ok && out.contains("2 employees would be imported"), "{out}");
    assert_eq!(employees(&app).await, 0);
    let (ok, out) = import(&app, &good, false).await;
    assert!(ok && out.contains("imported 2 employees"), "{out}");

    let ceo = ceo(&app).await;
    let list = page(&app, &ceo, "/personnel").await;
    assert_eq!(texts(&list, "tbody td a"), ["Märta Sjöholm", "Anna Berg"]);
    let (ok, out) = import(&app, &good, false).await;
    assert!(!ok && out.contains("already in the register"), "{out}");
    assert_eq!(employees(&app).await, 2);
}
