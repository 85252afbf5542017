//! Import and export of contacts, from the command line and the administrator's page.

use std::process::Output;

use gdpr_register::users::Role;
use reqwest::StatusCode;
use time::OffsetDateTime;

use crate::{
    customers::{add_company, add_person},
    support::{TestApp, location, pg},
};

const HEADER: &str = "company_name,company_address,company_website,company_email,company_phone,business_area,person_name,department,title,email,phone,language,legacy,last_contacted";

async fn run(app: &TestApp, args: &[&str]) -> Output {
    app.cli().args(args).output().await.unwrap()
}

fn write_csv(app: &TestApp, name: &str, content: &str) -> String {
    let path = app.data_dir.path().join(name);
    std::fs::write(&path, content).unwrap();
    path.display().to_string()
}

async fn people(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM contacts")
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn an_import_with_one_bad_row_reports_it_and_imports_nothing() {
    let app = TestApp::spawn().await;
    let file = write_csv(
        &app,
        "bad.csv",
        &format!(
            "{HEADER}\nABB Oy,,abb.fi,,,Manufacturer,Anna Berg,,,anna@abb.test,,sv,no\nABB Oy,,,,,,Bo Ek,,,bo(at)abb.test,,sv,no\nABB Oy,,,,,,Cia Ny,,,cia@abb.test,,fi,yes,2016-01-01\n"
        ),
    );

    let out = run(&app, &["import", "contacts", &file]).await;

    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("line 3: email: This is not an e-mail address"),
        "{err}"
    );
    assert!(!err.contains("line 2") && !err.contains("line 4"), "{err}");
    assert!(err.contains("nothing was imported"), "{err}");
    assert_eq!(people(&app).await, 0);
    let companies: i64 = sqlx::query_scalar("SELECT count(*) FROM companies")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(companies, 0);
}

/// R-CUST-13: legacy rows skip quarantine; the others are asked to confirm.
#[tokio::test]
async fn an_import_with_a_bom_and_semicolons_puts_legacy_people_in_the_register_and_others_in_quarantine()
 {
    let app = TestApp::spawn().await;
    let content = format!(
        "\u{feff}{}\nVaasan Sähkö Oy;Sähkötie 1;vaasansahko.fi;info@vs.test;+358 6 123 4567;Power utility;Sanna Virtanen;Osto;Ostopäällikkö;sanna@vs.test;040 123 4567;fi;yes;1.3.2015\nvaasan sähkö oy;;;;;;Olle Öst;;;olle@vs.test;;sv;no\n",
        HEADER.replace(',', ";")
    );
    let file = write_csv(&app, "good.csv", &content);

    let dry = run(&app, &["import", "contacts", &file, "--dry-run"]).await;
    assert!(
        dry.status.success(),
        "{}",
        String::from_utf8_lossy(&dry.stderr)
    );
    assert_eq!(people(&app).await, 0, "a dry run imports nothing");
    let out = run(&app, &["import", "contacts", &file]).await;

    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("imported 2 people (1 legacy"));
    let statuses: Vec<(String, String)> =
        sqlx::query_as("SELECT email, status FROM contacts ORDER BY email")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(
        statuses,
        [
            ("olle@vs.test".into(), "quarantine".into()),
            ("sanna@vs.test".into(), "legacy".into())
        ]
    );
    let companies: i64 = sqlx::query_scalar("SELECT count(*) FROM companies")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(companies, 1, "the same company, whatever its case");
    let mails = app.smtp.wait_for(1).await;
    assert_eq!(mails[0].recipients, ["olle@vs.test"]);
}

/// R-CUST-10: an erased address is not imported again without an explicit confirmation.
#[tokio::test]
async fn an_import_refuses_an_erased_address_unless_confirmed() {
    let app = TestApp::spawn().await;
    let file = write_csv(
        &app,
        "one.csv",
        &format!("{HEADER}\nABB,,,,,,Anna,,,anna@abb.test,,sv,yes,2017-05-01\n"),
    );
    run(&app, &["import", "contacts", &file]).await;
    let staff = app.signed_in(Role::Employee).await;
    let id: String = sqlx::query_scalar("SELECT id::text FROM contacts")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    app.post_form_as(&staff, &format!("/people/{id}/delete"), &[])
        .await;

    let refused = run(&app, &["import", "contacts", &file]).await;
    let confirmed = run(&app, &["import", "contacts", &file, "--confirm-erased"]).await;

    assert_eq!(refused.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&refused.stderr)
            .contains("line 2: the owner of this address asked to be erased on")
    );
    assert!(confirmed.status.success());
    assert_eq!(people(&app).await, 1);
}

#[tokio::test]
async fn a_file_without_the_columns_is_refused_at_line_one() {
    let app = TestApp::spawn().await;
    let file = write_csv(&app, "wrong.csv", "name,email\nAnna,anna@abb.test\n");
    let binary = write_csv(&app, "binary.csv", "\u{0}\u{1}");
    std::fs::write(&binary, [0xff, 0xfe, 0x00, 0x41]).unwrap();

    let out = run(&app, &["import", "contacts", &file]).await;
    let not_text = run(&app, &["import", "contacts", &binary]).await;
    let missing = run(&app, &["import", "contacts", "/no/such/file.csv"]).await;

    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("line 1: the header lacks the columns: company_name")
    );
    assert_eq!(not_text.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&not_text.stderr).contains("not UTF-8"));
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("cannot read /no/such/file.csv"));
}

#[tokio::test]
async fn export_writes_the_import_columns_and_the_status() {
    let app = TestApp::spawn().await;
    let file = write_csv(
        &app,
        "one.csv",
        &format!("{HEADER}\n\"Kraft, Ab\",,,,,,Åsa Öberg,,,asa@kraft.test,,sv,yes,2015-06-01\n"),
    );
    run(&app, &["import", "contacts", &file]).await;

    let out = run(&app, &["export", "contacts"]).await;

    assert!(out.status.success());
    let csv = String::from_utf8(out.stdout).unwrap();
    let mut lines = csv.lines();
    assert_eq!(lines.next().unwrap(), format!("{HEADER},status"));
    assert_eq!(
        lines.next().unwrap(),
        "\"Kraft, Ab\",,,,,,Åsa Öberg,,,asa@kraft.test,,sv,yes,2015-06-01,legacy"
    );
}

#[tokio::test]
async fn the_administrator_imports_through_the_page_and_sees_each_bad_line() {
    let app = TestApp::spawn().await;
    let admin = app.signed_in(Role::Admin).await;
    let token = app.csrf_token(&admin).await;
    let upload = |content: String| {
        let part = reqwest::multipart::Part::bytes(content.into_bytes()).file_name("contacts.csv");
        reqwest::multipart::Form::new()
            .text("csrf_token", token.clone())
            .part("file", part)
    };

    let bad = admin
        .post(app.url("/import"))
        .multipart(upload(format!(
            "{HEADER}\nABB,,,,,,Anna,,,anna@abb.test,,sv,maybe\n"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = bad.text().await.unwrap();
    assert!(
        page.contains("legacy: skriv yes eller no") && page.contains("Ingenting importerades"),
        "{page}"
    );

    let good = admin
        .post(app.url("/import"))
        .multipart(upload(format!(
            "{HEADER}\nABB,,,,,,Anna,,,anna@abb.test,,sv,no\n"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(good.status(), StatusCode::OK);
    assert!(
        good.text()
            .await
            .unwrap()
            .contains("1 personer importerade")
    );
    assert_eq!(people(&app).await, 1);

    let employee = app.signed_in(Role::Employee).await;
    assert_eq!(
        app.get_as(&employee, "/import").await.status(),
        StatusCode::FORBIDDEN
    );
}

/// The page sends its token as the upload's first field: a token in the address (where
/// it would reach logs and the Referer of the next page) is not accepted.
#[tokio::test]
async fn an_upload_is_refused_without_its_token_as_the_first_field() {
    let app = TestApp::spawn().await;
    let admin = app.signed_in(Role::Admin).await;
    let token = app.csrf_token(&admin).await;
    let csv = || {
        reqwest::multipart::Part::bytes(
            format!("{HEADER}\nABB,,,,,,Anna,,,anna@abb.test,,sv,no\n").into_bytes(),
        )
        .file_name("contacts.csv")
    };
    let in_the_address = reqwest::multipart::Form::new().part("file", csv());
    let after_the_file = reqwest::multipart::Form::new()
        .part("file", csv())
        .text("csrf_token", token.clone());

    for (form, query) in [
        (in_the_address, format!("?csrf_token={token}")),
        (after_the_file, String::new()),
    ] {
        let response = admin
            .post(app.url(&format!("/import{query}")))
            .multipart(form)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
    }
    assert_eq!(people(&app).await, 0);
}

#[tokio::test]
async fn demo_data_fills_a_realistic_register() {
    let app = TestApp::spawn().await;
    let out = run(&app, &["demo-data", "--people", "400"]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("added 400 people at 20 companies"));
    let (people, legacy, nordic): (i64, i64, i64) = sqlx::query_as(
        "SELECT count(*), count(*) FILTER (WHERE status = 'legacy'), count(*) FILTER (WHERE name ~ '[åäöøłÅÖØŁ]') FROM contacts",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(people, 400);
    assert!(legacy > 0 && nordic > 0);
    let reports = app.run_jobs_at(time::OffsetDateTime::now_utc()).await;
    assert!(
        reports.iter().any(|r| r
            .outcome
            .contains("deleted 0 contacts with no communication")),
        "{reports:?}"
    );
}

#[tokio::test]
async fn an_address_already_in_the_register_is_a_reported_row_not_a_crash() {
    let app = TestApp::spawn().await;
    let first = write_csv(
        &app,
        "first.csv",
        &format!("{HEADER}\nABB,,,,,,Anna,,,anna@abb.test,,sv,yes,2017-05-01\n"),
    );
    run(&app, &["import", "contacts", &first]).await;
    let again = write_csv(
        &app,
        "again.csv",
        &format!(
            "{HEADER}\nABB,,,,,,Anna,,,ANNA@abb.test,,sv,yes,2017-05-01\nABB,,,,,,Bo,,,bo@abb.test,,sv,yes,2017-05-01\n"
        ),
    );

    let out = run(&app, &["import", "contacts", &again]).await;

    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("line 2: the e-mail address is already in the register")
    );
    assert_eq!(people(&app).await, 1);
}

/// The page's upload form, with the session's token first.
async fn upload(app: &TestApp, admin: &reqwest::Client, content: &[u8]) -> reqwest::Response {
    let token = app.csrf_token(admin).await;
    let part = reqwest::multipart::Part::bytes(content.to_vec()).file_name("contacts.csv");
    let form = reqwest::multipart::Form::new()
        .text("csrf_token", token)
        .part("file", part);
    admin
        .post(app.url("/import"))
        .multipart(form)
        .send()
        .await
        .unwrap()
}

/// R-CUST-7, R-CUST-13: the five years run from the last contact before the import, not
/// from the import.
#[tokio::test]
async fn a_legacy_contact_last_met_in_2014_is_due_for_deletion_at_once() {
    let app = TestApp::spawn().await;
    let file = write_csv(
        &app,
        "old.csv",
        "company_name,person_name,email,legacy,last_contacted\n\
         Gamla Ab,Olle Gammal,olle@old.test,yes,1.3.2014\n\
         Gamla Ab,Nora Ny,nora@old.test,no,\n",
    );

    let out = run(&app, &["import", "contacts", &file]).await;

    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(
            "1 legacy people had no contact for 5 years and go at the next inactivity sweep"
        ),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let staff = app.signed_in(Role::Employee).await;
    let page = app
        .get_as(&staff, "/people?q=olle")
        .await
        .text()
        .await
        .unwrap();
    let link = scraper::Html::parse_document(&page)
        .select(&scraper::Selector::parse("a[href^='/people/']").unwrap())
        .filter_map(|a| a.value().attr("href"))
        .find(|href| href.len() > "/people/".len() + 30)
        .unwrap()
        .to_string();
    let person = app.get_as(&staff, &link).await.text().await.unwrap();
    assert!(
        person.contains("2014-03-01"),
        "the last communication shown"
    );

    let reports = app.run_jobs_at(OffsetDateTime::now_utc()).await;

    assert!(
        reports.iter().any(|r| r
            .outcome
            .contains("deleted 1 contacts with no communication")),
        "{reports:?}"
    );
    assert_eq!(
        app.get_as(&staff, &link).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(people(&app).await, 1, "the one in quarantine stays");
}

#[tokio::test]
async fn a_header_needs_only_the_company_the_person_and_the_address() {
    let app = TestApp::spawn().await;
    let file = write_csv(
        &app,
        "short.csv",
        "EMAIL;Person_Name;company_name\nanna@abb.test;Anna Berg;ABB Oy\n",
    );

    let out = run(&app, &["import", "contacts", &file]).await;

    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(people(&app).await, 1);
    let mails = app.smtp.wait_for(1).await;
    assert_eq!(mails[0].recipients, ["anna@abb.test"]);
}

/// R-CUST-13: a legacy row says when the contact was last met, on a day that exists and
/// before 25.5.2018.
#[tokio::test]
async fn a_legacy_row_needs_a_real_day_of_last_contact_before_25_may_2018() {
    let app = TestApp::spawn().await;
    let rows = [
        (
            "Anna,a@x.test,yes,",
            "last_contacted: required for a legacy contact",
        ),
        (
            "Bo,b@x.test,yes,2019-01-01",
            "last_contacted: a legacy contact (legacy yes) was last met before 25.5.2018",
        ),
        (
            "Cia,c@x.test,yes,2018-05-25",
            "last_contacted: a legacy contact (legacy yes) was last met before 25.5.2018",
        ),
        (
            "Dan,d@x.test,yes,31.02.2014",
            "last_contacted: there is no such date",
        ),
        (
            "Eva,e@x.test,yes,2014-02-30",
            "last_contacted: there is no such date",
        ),
        (
            "Fia,f@x.test,yes,March 2014",
            "last_contacted: write the date as YYYY-MM-DD or D.M.YYYY",
        ),
        (
            "Gus,g@x.test,no,2999-01-01",
            "last_contacted: The date cannot be in the future.",
        ),
    ];
    let mut content = String::from("company_name,person_name,email,legacy,last_contacted\n");
    for (row, _) in &rows {
        content.push_str(&format!("ABB,{row}\n"));
    }
    content.push_str("ABB,Hugo,h@x.test,yes,24.5.2018\n");
    let file = write_csv(&app, "dates.csv", &content);

    let out = run(&app, &["import", "contacts", &file]).await;

    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    for (i, (_, reason)) in rows.iter().enumerate() {
        assert!(
            err.contains(&format!("line {}: {reason}", i + 2)),
            "{reason}\n{err}"
        );
    }
    assert!(!err.contains(&format!("line {}:", rows.len() + 2)), "{err}");
    assert_eq!(people(&app).await, 0);
}

/// Bad files get a clear message on the page and a 422, never a 500.
#[tokio::test]
async fn nasty_files_are_refused_on_the_page_with_a_clear_message() {
    let app = TestApp::spawn().await;
    let admin = app.signed_in(Role::Admin).await;
    let cases: [(&[u8], &str); 7] = [
        (b"", "filen är tom"),
        (b"\xef\xbb\xbfcompany_name;person_name;email\n", "filen har inga rader"),
        (
            b"\xef\xbb\xbfcompany_name;person_name;email\nABB;=HYPERLINK(\"http://x.test\");anna@abb.test\n",
            "person_name: cellen innehåller en formel",
        ),
        (
            b"company_name,person_name,email,phon\nABB,Anna,anna@abb.test,040 123\n",
            "okända kolumner: phon",
        ),
        (
            b"company_name,person_name,email,email\nABB,Anna,anna@abb.test,b@abb.test\n",
            "nämner kolumnen email två gånger",
        ),
        (
            b"company_name,person_name,email,legacy,last_contacted\nABB,Anna,anna@abb.test,yes,2019-01-01\n",
            "träffades senast före 25.5.2018",
        ),
        (b"\xff\xfe\x00A", "inte UTF-8"),
    ];
    for (content, message) in cases {
        let response = upload(&app, &admin, content).await;
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{message}"
        );
        let page = response.text().await.unwrap();
        assert!(page.contains(message), "{message}\n{page}");
    }
    assert_eq!(people(&app).await, 0);
}

/// A value a spreadsheet would run (a phone number too) is exported behind a `'`, and the
/// file imports into a fresh register with the same values.
#[tokio::test]
async fn an_exported_file_imports_into_a_fresh_register_with_the_same_values() {
    let app = TestApp::spawn().await;
    let staff = app.signed_in(Role::Employee).await;
    let r = app
        .post_form_as(
            &staff,
            "/customers",
            &[
                ("name", "Vaasan Sähkö Oy"),
                ("address", "Sähkötie 1\n65100 Vaasa"),
                ("website", "vaasansahko.fi"),
                ("phone", "+358 6 123 4567"),
            ],
        )
        .await;
    let company = location(&r).trim_start_matches("/customers/").to_string();
    add_person(&app, &staff, &company, "=1+2", "kim@vs.test", "fi").await;
    let file = write_csv(
        &app,
        "odd.csv",
        &format!(
            "{HEADER}\n'=Kraft Ab,,,,'+358 6 765 4321,Manufacturer,@Åsa,-,'@home,asa@kraft.test,+358 40 765 4321,sv,yes,2016-04-01\n\
             ''s-Hertogenbosch BV,,,,,,'s Jansen,,,jan@sh.test,,en,no,\n"
        ),
    );
    let imported = run(&app, &["import", "contacts", &file]).await;
    assert!(
        imported.status.success(),
        "{}",
        String::from_utf8_lossy(&imported.stderr)
    );

    let exported = run(&app, &["export", "contacts"]).await;
    let csv = String::from_utf8(exported.stdout).unwrap();
    for escaped in [
        "'=1+2",
        "'+358 40 123 4567",
        "'=Kraft Ab",
        "'+358 6 765 4321",
        "'@Åsa",
        "'-",
        "'@home",
        "''s-Hertogenbosch BV",
    ] {
        assert!(csv.contains(escaped), "{escaped} in\n{csv}");
    }
    let fresh = TestApp::spawn().await;
    let file = write_csv(&fresh, "register.csv", &csv);
    let out = run(&fresh, &["import", "contacts", &file]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let again = run(&fresh, &["export", "contacts"]).await;

    assert_eq!(String::from_utf8(again.stdout).unwrap(), csv);
}

/// Rows are written a few hundred per transaction, each contact with its audit row.
#[tokio::test]
async fn a_large_import_is_written_a_few_hundred_rows_per_transaction() {
    let app = TestApp::spawn().await;
    let file = write_csv(&app, "large.csv", &legacy_rows(1..=600));

    let out = run(&app, &["import", "contacts", &file]).await;

    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(people(&app).await, 600);
    let (transactions, audited): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(DISTINCT xmin::text) FROM contacts),
                (SELECT count(*) FROM audit_log WHERE action = 'contact.create')",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(transactions, 3, "600 rows in batches of 250");
    assert_eq!(audited, 600);
}

/// A file of legacy people numbered `range`, at six companies.
fn legacy_rows(range: std::ops::RangeInclusive<u32>) -> String {
    let mut content = String::from("company_name,person_name,email,legacy,last_contacted\n");
    for i in range {
        content.push_str(&format!(
            "Firma {},Person {i},p{i}@big.test,yes,2017-06-01\n",
            i % 6
        ));
    }
    content
}

/// After an import that stopped between two batches, the same file again reports the rows
/// already written and imports nothing; the rest imports once those rows are left out.
#[tokio::test]
async fn running_an_import_again_after_it_stopped_reports_the_rows_already_there() {
    let app = TestApp::spawn().await;
    // What a first batch leaves when the process dies before the second.
    let first_batch = write_csv(&app, "first.csv", &legacy_rows(1..=250));
    run(&app, &["import", "contacts", &first_batch]).await;
    let whole = write_csv(&app, "whole.csv", &legacy_rows(1..=300));

    let again = run(&app, &["import", "contacts", &whole]).await;

    assert_eq!(again.status.code(), Some(2));
    let err = String::from_utf8_lossy(&again.stderr);
    assert_eq!(
        err.matches("the e-mail address is already in the register")
            .count(),
        250,
        "{err}"
    );
    assert!(err.contains("line 251: the e-mail address") && !err.contains("line 252:"));
    assert_eq!(people(&app).await, 250);

    let rest = write_csv(&app, "rest.csv", &legacy_rows(251..=300));
    let out = run(&app, &["import", "contacts", &rest]).await;
    assert!(String::from_utf8_lossy(&out.stdout).contains("imported 50 people (50 legacy"));
    let companies: i64 = sqlx::query_scalar("SELECT count(*) FROM companies")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!((people(&app).await, companies), (300, 6));
}

/// An address already in the register is found before the write: PostgreSQL never meets a
/// duplicate, whose detail would write the address into its log.
#[tokio::test]
async fn a_taken_address_is_refused_before_postgres_sees_a_duplicate() {
    let app = TestApp::spawn().await;
    let staff = app.signed_in(Role::Employee).await;
    let company = add_company(&app, &staff, "ABB").await;
    add_person(&app, &staff, &company, "Anna", "anna.taken@abb.test", "sv").await;
    let bo = add_person(&app, &staff, &company, "Bo", "bo@abb.test", "sv").await;
    let log = pg::cluster().pg.log_file();
    let violations = || {
        std::fs::read_to_string(&log)
            .unwrap()
            .matches("contacts_email_key")
            .count()
    };
    let before = violations();

    let create = app
        .post_form_as(
            &staff,
            &format!("/customers/{company}/people"),
            &[
                ("name", "Anna"),
                ("email", "Anna.Taken@abb.test"),
                ("language", "sv"),
                ("source", "fair"),
            ],
        )
        .await;
    let update = app
        .post_form_as(
            &staff,
            &format!("/people/{bo}"),
            &[
                ("name", "Bo"),
                ("email", "ANNA.TAKEN@abb.test"),
                ("language", "sv"),
                ("source", "fair"),
            ],
        )
        .await;
    let file = write_csv(
        &app,
        "taken.csv",
        "company_name,person_name,email\nABB,Anna,anna.taken@ABB.test\n",
    );
    let import = run(&app, &["import", "contacts", &file]).await;

    assert_eq!(create.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(update.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(import.status.code(), Some(2));
    assert_eq!(
        violations(),
        before,
        "no unique violation reached the server"
    );
}
