use reqwest::StatusCode;

use crate::support::{TestApp, texts};

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let app = TestApp::spawn().await;
    for path in [
        "/login",
        "/no-such-page",
        "/healthz",
        "/static/app.css",
        "/",
    ] {
        let r = app.get(path).await;
        let h = r.headers();
        let csp = h.get("content-security-policy").unwrap().to_str().unwrap();
        assert!(
            csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
            "{path}"
        );
        assert!(csp.contains("frame-ancestors 'none'"), "{path}");
        assert_eq!(
            h.get("x-content-type-options").unwrap(),
            "nosniff",
            "{path}"
        );
        assert!(h.contains_key("referrer-policy"), "{path}");
        assert!(
            !h.contains_key("strict-transport-security"),
            "{path}: no HSTS over http"
        );
    }
}

#[tokio::test]
async fn error_pages_speak_the_visitors_language() {
    let app = TestApp::spawn().await;
    let swedish = app.get("/no-such-page").await;
    let english = app
        .client
        .get(app.url("/no-such-page"))
        .header("accept-language", "en-GB,en;q=0.9")
        .send()
        .await
        .unwrap();

    assert_eq!(swedish.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        texts(&swedish.text().await.unwrap(), "h1"),
        ["Sidan hittades inte."]
    );
    assert_eq!(english.status(), StatusCode::NOT_FOUND);
    let page = english.text().await.unwrap();
    assert_eq!(texts(&page, "h1"), ["The page was not found."]);
    assert!(page.contains(r#"<html lang="en">"#));
}

#[tokio::test]
async fn the_language_switch_is_remembered() {
    let app = TestApp::spawn().await;
    let r = app
        .post_form("/lang", &[("lang", "en"), ("back", "/login")])
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(crate::support::location(&r), "/login");
    let page = app.get("/login").await.text().await.unwrap();
    assert_eq!(texts(&page, "h1"), ["Log in"]);

    let bad = app
        .post_form("/lang", &[("lang", "xx"), ("back", "/login")])
        .await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let off_site = app
        .post_form("/lang", &[("lang", "sv"), ("back", "https://evil.example")])
        .await;
    assert_eq!(crate::support::location(&off_site), "/");
}

#[tokio::test]
async fn malformed_forms_get_a_page_not_a_crash() {
    let app = TestApp::spawn().await;
    // A form without its fields.
    let r = app.post_form("/login", &[("only", "this")]).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().await.unwrap().contains("kunde inte läsas"));
    // A method the route does not have.
    let r = app.client.delete(app.url("/login")).send().await.unwrap();
    assert!(r.status().is_client_error());
}

#[tokio::test]
async fn health_answers_when_the_database_does() {
    let app = TestApp::spawn().await;
    let r = app.get("/healthz").await;
    assert_eq!(r.status(), StatusCode::OK);
    app.pool.close().await;
    let r = app.get("/healthz").await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn the_style_sheet_is_served_from_the_binary_and_nothing_from_other_hosts() {
    let app = TestApp::spawn().await;
    let css = app.get("/static/app.css").await;
    assert_eq!(css.status(), StatusCode::OK);
    assert!(
        css.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/css")
    );
    let page = app.get("/login").await.text().await.unwrap();
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "{page}"
    );
    assert_eq!(
        app.get("/static/..%2FCargo.toml").await.status(),
        StatusCode::NOT_FOUND
    );
}
