//! Import and export of contacts, from the command line and the administrator's page.

use std::process::Output;

use gdpr_register::users::Role;
use reqwest::StatusCode;

use crate::support::TestApp;

const HEADER: &str = "company_name,company_address,company_website,company_email,company_phone,business_area,person_name,department,title,email,phone,language,legacy";

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
            "{HEADER}\nABB Oy,,abb.fi,,,Manufacturer,Anna Berg,,,anna@abb.test,,sv,no\nABB Oy,,,,,,Bo Ek,,,bo(at)abb.test,,sv,no\nABB Oy,,,,,,Cia Ny,,,cia@abb.test,,fi,yes\n"
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
        "\u{feff}{}\nVaasan Sähkö Oy;Sähkötie 1;vaasansahko.fi;info@vs.test;+358 6 123 4567;Power utility;Sanna Virtanen;Osto;Ostopäällikkö;sanna@vs.test;040 123 4567;fi;yes\nvaasan sähkö oy;;;;;;Olle Öst;;;olle@vs.test;;sv;no\n",
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
        &format!("{HEADER}\nABB,,,,,,Anna,,,anna@abb.test,,sv,yes\n"),
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
        &format!("{HEADER}\n\"Kraft, Ab\",,,,,,Åsa Öberg,,,asa@kraft.test,,sv,yes\n"),
    );
    run(&app, &["import", "contacts", &file]).await;

    let out = run(&app, &["export", "contacts"]).await;

    assert!(out.status.success());
    let csv = String::from_utf8(out.stdout).unwrap();
    let mut lines = csv.lines();
    assert_eq!(lines.next().unwrap(), format!("{HEADER},status"));
    assert_eq!(
        lines.next().unwrap(),
        "\"Kraft, Ab\",,,,,,Åsa Öberg,,,asa@kraft.test,,sv,yes,legacy"
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
        &format!("{HEADER}\nABB,,,,,,Anna,,,anna@abb.test,,sv,yes\n"),
    );
    run(&app, &["import", "contacts", &first]).await;
    let again = write_csv(
        &app,
        "again.csv",
        &format!(
            "{HEADER}\nABB,,,,,,Anna,,,ANNA@abb.test,,sv,yes\nABB,,,,,,Bo,,,bo@abb.test,,sv,yes\n"
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
