use fantoccini::Locator;
use gdpr_register::users::Role;

use crate::support::{PASSWORD, TestApp, browser::Browser};

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

    c.goto(&app.url("/")).await.unwrap();
    c.find(Locator::Css("#email"))
        .await
        .unwrap()
        .send_keys("anna@btb.test")
        .await
        .unwrap();
    c.find(Locator::Css("#password"))
        .await
        .unwrap()
        .send_keys(PASSWORD)
        .await
        .unwrap();
    c.find(Locator::Css("button.primary"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let heading = c.wait().for_element(Locator::Css("main h1")).await.unwrap();

    assert_eq!(heading.text().await.unwrap(), "Välkommen, Test admin");
    assert_eq!(c.current_url().await.unwrap().path(), "/");
    let nav = c.find_all(Locator::Css("header nav a")).await.unwrap();
    assert_eq!(nav.len(), 7);
    browser.close().await;
}
