//! The data subject's rights: notices generated from the register definitions, extracts,
//! self-service requests.

use gdpr_register::users::Role;
use reqwest::StatusCode;

use crate::support::{TestApp, texts};

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
