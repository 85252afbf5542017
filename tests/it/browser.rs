use fantoccini::Locator;
use gdpr_register::users::Role;

use crate::support::{PASSWORD, TestApp, browser::Browser, totp_code};

#[tokio::test]
async fn a_user_logs_in_through_a_real_browser_and_sees_the_dashboard() {
    let Some(browser) =
        Browser::start("a_user_logs_in_through_a_real_browser_and_sees_the_dashboard").await
    else {
        return;
    };
    let app = TestApp::spawn().await;
    app.create_user("anna@btb.test", Role::Admin).await;
    let c = &browser.client;

    browser.log_in(&app.url("/"), "anna@btb.test").await;
    c.wait()
        .for_url(&app.url("/").parse().unwrap())
        .await
        .unwrap();
    let heading = c.find(Locator::Css("main h1")).await.unwrap();

    assert_eq!(heading.text().await.unwrap(), "Välkommen, Test admin");
    let nav = c.find_all(Locator::Css("header nav a")).await.unwrap();
    assert_eq!(nav.len(), 11);
    browser.close().await;
}

/// R-CUST-1, R-CUST-2: a company and a person made through the pages, then found by search.
#[tokio::test]
async fn staff_create_a_contact_in_a_real_browser_and_find_it_by_search() {
    let test = "staff_create_a_contact_in_a_real_browser_and_find_it_by_search";
    let Some(browser) = Browser::start(test).await else {
        return;
    };
    let app = TestApp::spawn().await;
    app.create_user("anna@btb.test", Role::Employee).await;
    let c = &browser.client;
    let click = |css: &'static str| async move {
        c.find(Locator::Css(css))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
    };
    let fill = |css: &'static str, text: &'static str| async move {
        c.find(Locator::Css(css))
            .await
            .unwrap()
            .send_keys(text)
            .await
            .unwrap();
    };

    c.goto(&app.url("/login")).await.unwrap();
    fill("#email", "anna@btb.test").await;
    fill("#password", PASSWORD).await;
    click("button.primary").await;
    c.wait()
        .for_url(&app.url("/").parse().unwrap())
        .await
        .unwrap();
    c.goto(&app.url("/customers/new")).await.unwrap();
    fill("#name", "Jakobstads Elverk Ab").await;
    fill("#website", "elverk.fi").await;
    click("form.card button.primary").await;
    c.wait()
        .for_element(Locator::LinkText("Lägg till en person"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait().for_element(Locator::Css("#name")).await.unwrap();
    fill("#name", "Märta Sjöholm").await;
    fill("#email", "marta@elverk.test").await;
    click("input[name=source][value=fair]").await;
    click("form.card button.primary").await;
    // The person's page: the heading carries the quarantine badge.
    let heading = c
        .wait()
        .for_element(Locator::Css("main h1 .badge"))
        .await
        .unwrap();
    assert_eq!(heading.text().await.unwrap(), "Karantän");
    let title = c
        .find(Locator::Css("main h1"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(title.starts_with("Märta Sjöholm"), "{title}");

    c.goto(&app.url("/people?status=quarantine")).await.unwrap();
    fill("input[name=q]", "marta sjo").await;
    click("form.filters button").await;
    c.wait()
        .for_url(
            &app.url("/people?status=quarantine&q=marta+sjo")
                .parse()
                .unwrap(),
        )
        .await
        .unwrap();
    let found = c
        .find_all(Locator::Css("tbody td:first-child a"))
        .await
        .unwrap();

    assert_eq!(found.len(), 1);
    assert_eq!(found[0].text().await.unwrap(), "Märta Sjöholm");
    browser.close().await;
}

/// R-PERS-1, R-PERS-3: the CEO sets up a second factor as they would with their phone,
/// opens the register, adds an employee and shows the bank account.
#[tokio::test]
async fn the_ceo_enrols_a_second_factor_adds_an_employee_and_reveals_the_bank_account() {
    let test = "the_ceo_enrols_a_second_factor_adds_an_employee_and_reveals_the_bank_account";
    let Some(browser) = Browser::start(test).await else {
        return;
    };
    let app = TestApp::spawn().await;
    app.create_user("vd@btb.test", Role::Ceo).await;
    let c = &browser.client;
    let find =
        |css: &'static str| async move { c.wait().for_element(Locator::Css(css)).await.unwrap() };
    let fill = |css: &'static str, text: &'static str| async move {
        find(css).await.send_keys(text).await.unwrap();
    };

    c.goto(&app.url("/login?next=/personnel")).await.unwrap();
    fill("#email", "vd@btb.test").await;
    fill("#password", PASSWORD).await;
    find("button.primary").await.click().await.unwrap();
    // Without a second factor the register sends the CEO to set one up.
    c.wait()
        .for_url(&app.url("/account/second-factor").parse().unwrap())
        .await
        .unwrap();
    let secret = find("code#totp-secret").await.text().await.unwrap();
    find("#code")
        .await
        .send_keys(&totp_code(&secret, 0))
        .await
        .unwrap();
    find("form[action='/account/second-factor'] button.primary")
        .await
        .click()
        .await
        .unwrap();
    assert_eq!(
        c.wait()
            .for_element(Locator::Css("#recovery-codes"))
            .await
            .unwrap()
            .find_all(Locator::Css("code"))
            .await
            .unwrap()
            .len(),
        10
    );

    c.goto(&app.url("/personnel")).await.unwrap();
    find("a[href='/personnel/new']")
        .await
        .click()
        .await
        .unwrap();
    fill("#name", "Märta Sjöholm").await;
    fill("#identity_code", "131052-308T").await;
    fill("#bank_account", "FI21 1234 5600 0007 85").await;
    // A date field takes its value as the browser's own date picker would set it.
    c.execute(
        "document.getElementById('employment_start').value = '2019-03-01'",
        vec![],
    )
    .await
    .unwrap();
    find("form button.primary").await.click().await.unwrap();
    let masked = find("#bank_account").await.text().await.unwrap();
    assert_eq!(masked, "FI21 **** **** **85");
    let heading = find("main h1").await.text().await.unwrap();
    assert_eq!(heading, "Märta Sjöholm");

    find("form:has(input[name=field][value=bank_account]) button")
        .await
        .click()
        .await
        .unwrap();
    let shown = find("#bank_account.revealed").await.text().await.unwrap();
    assert_eq!(shown, "FI21 1234 5600 0007 85");
    browser.close().await;
}

/// R-CUST-3, R-CUST-4: the administrator writes a campaign, previews it, sends it, and
/// watches the progress bar reach 100 % without the page reloading.
#[tokio::test]
async fn the_administrator_composes_previews_sends_a_campaign_and_watches_it_reach_100_percent() {
    let test =
        "the_administrator_composes_previews_sends_a_campaign_and_watches_it_reach_100_percent";
    let Some(browser) = Browser::start(test).await else {
        return;
    };
    let app = TestApp::spawn().await;
    app.create_user("anna@btb.test", Role::Admin).await;
    let company = uuid::Uuid::new_v4();
    sqlx::query("INSERT INTO companies (id, name) VALUES ($1, 'Kund Ab')")
        .bind(company)
        .execute(&app.pool)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO contacts (id, company_id, name, email, language, source, status, newsletter)
         SELECT gen_random_uuid(), $1, 'Kund ' || n, 'kund' || n || '@kund.test', 'sv', 'fair', 'active', true
         FROM generate_series(1, 30) AS n",
    )
    .bind(company)
    .execute(&app.pool)
    .await
    .unwrap();
    let c = &browser.client;
    let find =
        |css: &'static str| async move { c.wait().for_element(Locator::Css(css)).await.unwrap() };
    let fill = |css: &'static str, text: &'static str| async move {
        find(css).await.send_keys(text).await.unwrap();
    };

    c.goto(&app.url("/login?next=/campaigns")).await.unwrap();
    fill("#email", "anna@btb.test").await;
    fill("#password", PASSWORD).await;
    find("button.primary").await.click().await.unwrap();
    find("a[href='/campaigns/new']")
        .await
        .click()
        .await
        .unwrap();
    fill("#subject", "Nytt från BTB").await;
    fill("#body", "# Hösten\n\nVi har **nya** transformatorer.").await;
    find("form.card button.primary")
        .await
        .click()
        .await
        .unwrap();

    // The preview, as subscribers will see it.
    let preview = find("#preview h1").await.text().await.unwrap();
    assert_eq!(preview, "Hösten");
    let bold = find("#preview h1 + p strong").await.text().await.unwrap();
    assert_eq!(bold, "nya");
    find("#send-form button.primary")
        .await
        .click()
        .await
        .unwrap();
    find("[data-progress-url]").await;
    c.execute("window.notReloaded = true", vec![])
        .await
        .unwrap();
    c.wait()
        .at_most(std::time::Duration::from_secs(30))
        .for_element(Locator::XPath(
            "//span[@data-field='percent' and text()='100']",
        ))
        .await
        .unwrap();
    let state = c
        .execute(
            "const bar = document.querySelector('progress'); \
             return [bar.value, bar.max, window.notReloaded === true, \
                     document.querySelector('[data-field=sent]').textContent, \
                     document.querySelector('[data-field=left]').textContent];",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(state, serde_json::json!([30, 30, true, "30", "0"]));
    // Once everything is sent, pausing and cancelling are no longer offered.
    let controls = c
        .execute(
            "return document.querySelector('[data-while-sending]').hidden",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(controls, serde_json::json!(true));
    assert_eq!(app.smtp.received().len(), 30);
    browser.close().await;
}
