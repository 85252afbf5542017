//! Every page, public and staff, checked in real Chromium with axe-core against the
//! WCAG 2.1 A and AA rules. axe-core (MPL-2.0) is vendored under `tests/it/vendor/`.

use fantoccini::{Client, Locator};
use gdpr_register::users::Role;

use reqwest::StatusCode;
use serde_json::json;

use crate::{
    chat::start_chat,
    customers::{add_company, add_person},
    support::{TestApp, browser::Browser, location, totp_code},
};

const AXE: &str = include_str!("vendor/axe-core/axe.min.js");

/// Runs axe on the page at `path` and returns its violations, one line each.
async fn violations(c: &Client, app: &TestApp, path: &str) -> Vec<String> {
    c.goto(&app.url(path)).await.unwrap();
    let title = c.title().await.unwrap();
    assert!(
        !title.is_empty() && c.current_url().await.unwrap().path() == path,
        "{path} was shown as itself"
    );
    c.execute(AXE, vec![]).await.unwrap();
    let found = c
        .execute_async(
            "const done = arguments[arguments.length - 1];
             axe.run(document, { runOnly: { type: 'tag',
                 values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } })
               .then(r => done(r.violations.map(v => v.id + ' at ' +
                   v.nodes.map(n => n.target.join(' ')).join(', '))));",
            vec![],
        )
        .await
        .unwrap();
    found
        .as_array()
        .unwrap()
        .iter()
        .map(|v| format!("{path}: {}", v.as_str().unwrap()))
        .collect()
}

/// Posts a form that creates something; the path of what it made.
async fn created(
    app: &TestApp,
    client: &reqwest::Client,
    path: &str,
    fields: &[(&str, &str)],
) -> String {
    let r = app.post_form_as(client, path, fields).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "{path}");
    location(&r)
}

async fn log_out(c: &Client, app: &TestApp) {
    c.goto(&app.url("/")).await.unwrap();
    c.find(Locator::Css("form[action='/logout'] button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

#[tokio::test]
async fn every_page_passes_axe_core_wcag_2_1_aa_rules_and_public_pages_fit_a_phone() {
    let test = "every_page_passes_axe_core_wcag_2_1_aa_rules_and_public_pages_fit_a_phone";
    let Some(browser) = Browser::start(test).await else {
        return;
    };
    let app = TestApp::spawn().await;
    let c = &browser.client;

    // Something on every page: a company, a person in quarantine, an employee.
    app.create_user_with("anna@btb.test", Role::Admin, |u| u.mailbox = true)
        .await;
    let admin = app.new_browser();
    app.login_as(&admin, "anna@btb.test").await;
    let company = add_company(&app, &admin, "Vaasan Sähkö").await;
    let person = add_person(
        &app,
        &admin,
        &company,
        "Łucja Dvořák",
        "lucja@example.test",
        "en",
    )
    .await;
    let consent = app.mailed_link(0, "/consent/").await;
    let ceo_email = "ceo@btb.test";
    app.create_user(ceo_email, Role::Ceo).await;
    let ceo = app.new_browser();
    app.login_as(&ceo, ceo_email).await;
    let factor = app.enrol_second_factor(&ceo).await;
    let employee = created(
        &app,
        &ceo,
        "/personnel/new",
        &[
            ("name", "Märta Sjöholm"),
            ("identity_code", "131052-308T"),
            ("email", "marta@example.test"),
            ("employment_start", "2019-03-01"),
        ],
    )
    .await;

    let request = created(
        &app,
        &admin,
        "/requests",
        &[
            ("kind", "access"),
            ("channel", "phone"),
            ("email", "lucja@example.test"),
            ("received_on", "2026-11-02"),
            ("details", "Wants to see what is held"),
        ],
    )
    .await;
    let breach = created(
        &app,
        &admin,
        "/breaches",
        &[
            ("what", "A laptop was stolen"),
            ("discovered_at", "2026-11-30T08:00"),
            ("register_customers", "on"),
            ("people", "12"),
        ],
    )
    .await;

    let r = app
        .post_form_as(
            &app.new_browser(),
            "/contact",
            &[("email", "lucja@example.test"), ("message", "Call me")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (_visitor, _, chat) = start_chat(
        &app,
        json!({ "email": "lucja@example.test", "text": "Hello" }),
    )
    .await;
    let message: uuid::Uuid = sqlx::query_scalar("SELECT id FROM contact_messages")
        .fetch_one(&app.pool)
        .await
        .unwrap();

    let campaign = created(
        &app,
        &admin,
        "/campaigns/new",
        &[
            ("subject", "Nytt från BTB"),
            ("body", "# Hösten\n\nNya **transformatorer**."),
        ],
    )
    .await;

    let mut found = Vec::new();
    // Public pages are opened on a phone as well: nothing may need scrolling sideways.
    for path in [
        "/login",
        consent.as_str(),
        "/privacy",
        "/cookies",
        "/my-data",
        "/contact",
        "/contact/embed",
        "/contact/thanks",
        "/chat",
        "/subscribe",
    ] {
        found.extend(violations(c, &app, path).await);
        c.set_window_size(390, 844).await.unwrap();
        let (page, screen) = c
            .execute(
                "return [document.documentElement.scrollWidth, window.innerWidth]",
                vec![],
            )
            .await
            .map(|v| (v[0].as_i64().unwrap(), v[1].as_i64().unwrap()))
            .unwrap();
        if page > screen {
            found.push(format!("{path}: {page} px wide on a {screen} px phone"));
        }
        c.set_window_size(1200, 900).await.unwrap();
    }

    browser.log_in(&app.url("/login"), "anna@btb.test").await;
    let company_page = format!("/customers/{company}");
    let person_page = format!("/people/{person}");
    for path in [
        "/",
        "/customers",
        "/customers/new",
        &company_page,
        &format!("{company_page}/edit"),
        &format!("{company_page}/people/new"),
        "/people",
        &person_page,
        &format!("{person_page}/edit"),
        &format!("{person_page}/delete"),
        &format!("{person_page}/newsletter"),
        "/campaigns",
        "/campaigns/new",
        &campaign,
        "/newsletter/unsubscribed",
        "/people/due",
        "/people/legacy",
        "/import",
        "/business-areas",
        "/users",
        "/users/new",
        "/audit",
        "/mail",
        "/account",
        "/account/second-factor",
        "/requests",
        &request,
        "/breaches",
        &breach,
        "/record",
        "/inbox",
        &format!("/inbox/{message}"),
        &format!("/inbox/{message}/contact"),
        "/chat/console",
        "/chat/history",
        &format!("/chat/history/{chat}"),
        "/no-such-page",
    ] {
        found.extend(violations(c, &app, path).await);
    }
    log_out(c, &app).await;

    browser.log_in(&app.url("/login"), ceo_email).await;
    found.extend(violations(c, &app, "/login/code").await);
    c.find(Locator::Css("#code"))
        .await
        .unwrap()
        .send_keys(&totp_code(&factor.secret, 1))
        .await
        .unwrap();
    c.find(Locator::Css("button.primary"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    for path in [
        "/personnel",
        "/personnel/new",
        employee.as_str(),
        &format!("{employee}/edit"),
        &format!("{employee}/erase"),
        "/personnel/audit",
    ] {
        found.extend(violations(c, &app, path).await);
    }

    browser.close().await;
    assert!(found.is_empty(), "{}", found.join("\n"));
}
