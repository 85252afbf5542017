//! The website chat over its WebSockets, as the widget and the console use them:
//! R-CHAT-1 … R-CHAT-7.

use std::{sync::Arc, time::Duration};

use futures::{SinkExt, StreamExt};
use gdpr_register::{chat, domain::Email, users::Role};
use reqwest::{StatusCode, cookie::CookieStore};
use serde_json::{Value, json};
use time::OffsetDateTime;
use tokio::net::TcpStream;
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream, connect_async,
    tungstenite::{self, Message, client::IntoClientRequest},
};

use crate::support::{PASSWORD, TestApp, start_server, texts};

pub const MARKUP: &str = "<script>alert(1)</script><b>bold</b> & more";

/// One end of a chat socket.
pub struct Socket(WebSocketStream<MaybeTlsStream<TcpStream>>);

impl Socket {
    async fn open(
        base: &str,
        path: &str,
        origin: &str,
        cookie: Option<&str>,
    ) -> Result<Self, tungstenite::Error> {
        let url = format!("{}{path}", base.replace("http://", "ws://"));
        let mut request = url.into_client_request().unwrap();
        request
            .headers_mut()
            .insert("origin", origin.parse().unwrap());
        if let Some(cookie) = cookie {
            request
                .headers_mut()
                .insert("cookie", cookie.parse().unwrap());
        }
        let (ws, _) = connect_async(request).await?;
        Ok(Self(ws))
    }

    /// The widget's socket, from a page of the app itself.
    pub async fn visitor(base: &str) -> Self {
        Self::open(base, "/chat/ws?lang=en", base, None)
            .await
            .unwrap()
    }

    pub async fn send(&mut self, message: Value) {
        self.0
            .send(Message::text(message.to_string()))
            .await
            .unwrap();
    }

    /// The next message of this type; others are passed over.
    pub async fn next_of(&mut self, kind: &str) -> Value {
        let found = tokio::time::timeout(Duration::from_secs(15), async {
            loop {
                match self.0.next().await {
                    Some(Ok(Message::Text(text))) => {
                        let value: Value = serde_json::from_str(&text).unwrap();
                        if value["t"] == kind {
                            return value;
                        }
                    }
                    Some(Ok(_)) => {}
                    other => panic!("the socket ended waiting for {kind}: {other:?}"),
                }
            }
        })
        .await;
        found.unwrap_or_else(|_| panic!("no {kind} in time"))
    }

    /// Says hello and returns the state.
    pub async fn hello(&mut self, token: Option<&str>, page: &str) -> Value {
        self.send(json!({"t": "hello", "token": token, "page": page}))
            .await;
        self.next_of("state").await
    }

    /// Waits until the widget hears that an operator is online.
    pub async fn until_online(&mut self, state: &Value) {
        if state["online"] != true {
            let online = self.next_of("online").await;
            assert_eq!(online["online"], true);
        }
    }
}

/// A signed-in operator's session cookie, and the operator's address.
pub async fn operator(app: &TestApp, name: &str) -> (String, String) {
    let email = format!("{name}@btb.test");
    app.create_user_with(&email, Role::Employee, |u| {
        u.chat_operator = true;
        u.name = gdpr_register::domain::PersonName::parse(name).unwrap();
    })
    .await;
    let jar = Arc::new(reqwest::cookie::Jar::default());
    let client = reqwest::Client::builder()
        .cookie_provider(jar.clone())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = app
        .post_form_as(
            &client,
            "/login",
            &[("email", &email), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let url = app.base.parse().unwrap();
    let cookie = jar.cookies(&url).unwrap().to_str().unwrap().to_string();
    (cookie, email)
}

pub async fn console(base: &str, cookie: &str) -> Socket {
    let mut socket = Socket::open(base, "/chat/console/ws", base, Some(cookie))
        .await
        .unwrap();
    socket.next_of("live").await;
    socket
}

/// A visitor who started a chat; returns the socket, the token and the conversation id.
pub async fn start_chat(app: &TestApp, details: Value) -> (Socket, String, uuid::Uuid) {
    let mut visitor = Socket::visitor(&app.base).await;
    visitor.hello(None, "https://www.btb.test/products").await;
    let mut start = json!({"t": "start", "page": "https://www.btb.test/products"});
    for (k, v) in details.as_object().unwrap() {
        start[k] = v.clone();
    }
    visitor.send(start).await;
    let started = visitor.next_of("started").await;
    let token = started["token"].as_str().unwrap().to_string();
    let id =
        sqlx::query_scalar("SELECT id FROM chat_conversations ORDER BY created_at DESC LIMIT 1")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    (visitor, token, id)
}

/// R-CHAT-1, R-CHAT-4, R-CHAT-7: a visitor who gives a name (or nothing) chats with an
/// operator live; the operator sees the page the visitor is on; both sides are stored.
#[tokio::test]
async fn a_visitor_and_an_operator_see_each_others_messages_live() {
    let app = TestApp::spawn().await;
    let (cookie, _) = operator(&app, "Olle").await;
    let mut console = console(&app.base, &cookie).await;
    let mut visitor = Socket::visitor(&app.base).await;
    let state = visitor.hello(None, "https://www.btb.test/").await;
    assert_eq!(state["conversation"], Value::Null);
    assert_eq!(state["texts"]["chat.widget.open"], "Chat with us");
    visitor.until_online(&state).await;
    visitor
        .send(json!({"t": "start", "name": "Anna", "company": "Kraft Oy", "text": "Do you make 40 MVA units?", "page": "https://www.btb.test/products"}))
        .await;
    let token = visitor.next_of("started").await["token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(token.len(), 43);
    let waiting = console.next_of("conversation").await;
    assert_eq!(waiting["status"], "waiting");
    assert_eq!(waiting["name"], "Anna");
    assert_eq!(waiting["page"], "https://www.btb.test/products");
    let first = console.next_of("message").await;
    assert_eq!(first["text"], "Do you make 40 MVA units?");
    assert_eq!(visitor.next_of("message").await["from"], "visitor");

    let conversation = waiting["id"].as_str().unwrap();
    console
        .send(json!({"t": "say", "conversation": conversation, "text": "Yes, up to 63 MVA."}))
        .await;
    let answer = visitor.next_of("message").await;
    assert_eq!(answer["from"], "operator");
    assert_eq!(answer["name"], "Olle");
    assert_eq!(answer["text"], "Yes, up to 63 MVA.");
    assert_eq!(console.next_of("conversation").await["status"], "open");

    // A second operator, joining now, finds the chat open and sees the answers given.
    let (cookie, _) = operator(&app, "Greta").await;
    let mut second = Socket::open(&app.base, "/chat/console/ws", &app.base, Some(&cookie))
        .await
        .unwrap();
    let live = second.next_of("live").await;
    assert_eq!(live["conversations"][0]["status"], "open");
    second
        .send(json!({"t": "open", "conversation": conversation}))
        .await;
    let history = second.next_of("history").await;
    assert_eq!(history["messages"][1]["name"], "Olle");
    second
        .send(json!({"t": "say", "conversation": conversation, "text": "Greta here too."}))
        .await;
    assert_eq!(console.next_of("message").await["name"], "Greta");
    assert_eq!(visitor.next_of("message").await["text"], "Greta here too.");

    // The visitor moves to another page: the operator sees it.
    visitor
        .send(json!({"t": "page", "url": "https://www.btb.test/contact"}))
        .await;
    assert_eq!(
        console.next_of("conversation").await["page"],
        "https://www.btb.test/contact"
    );

    // An anonymous visitor may chat too.
    let mut anonymous = Socket::visitor(&app.base).await;
    anonymous.hello(None, "").await;
    anonymous
        .send(json!({"t": "start", "text": "Hello?"}))
        .await;
    anonymous.next_of("started").await;
    assert_eq!(console.next_of("conversation").await["name"], "");

    let stored: Vec<(String, String)> =
        sqlx::query_as("SELECT sender, body FROM chat_messages ORDER BY id")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(
        stored[0],
        ("visitor".into(), "Do you make 40 MVA units?".into())
    );
    assert_eq!(stored[1], ("operator".into(), "Yes, up to 63 MVA.".into()));
}

/// Reload: the widget's next socket, given the token from its cookie, continues the
/// conversation with what was said so far; an unknown token starts afresh.
#[tokio::test]
async fn a_reload_with_the_token_continues_the_conversation() {
    let app = TestApp::spawn().await;
    let (mut first, token, _) = start_chat(&app, json!({"text": "First"})).await;
    first.next_of("message").await;
    first.send(json!({"t": "say", "text": "Second"})).await;
    first.next_of("message").await;
    drop(first);
    let mut again = Socket::visitor(&app.base).await;
    let state = again
        .hello(Some(&token), "https://www.btb.test/other")
        .await;
    let texts: Vec<&str> = state["conversation"]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["First", "Second"]);
    again.send(json!({"t": "say", "text": "Third"})).await;
    assert_eq!(again.next_of("message").await["text"], "Third");
    let mut stranger = Socket::visitor(&app.base).await;
    let state = stranger.hello(Some(&"A".repeat(43)), "").await;
    assert_eq!(state["conversation"]["gone"], true);
}

/// R-CHAT-3: when a chat closes, what the visitor left and the transcript go to the info
/// address and to each chat operator, through the outbox; markup stays text.
#[tokio::test]
async fn a_closed_chat_is_mailed_to_info_and_the_operators_with_markup_as_text() {
    let app = TestApp::spawn().await;
    let (cookie, operator_email) = operator(&app, "Olle").await;
    let mut console = console(&app.base, &cookie).await;
    let (mut visitor, _, id) = start_chat(
        &app,
        json!({"name": "Anna <b>", "email": "anna@kraft.test", "phone": "+358 40 111 2222", "text": MARKUP}),
    )
    .await;
    console.next_of("message").await;
    console
        .send(json!({"t": "say", "conversation": id, "text": "We will call you."}))
        .await;
    visitor.next_of("message").await;
    console
        .send(json!({"t": "close", "conversation": id}))
        .await;
    visitor.next_of("closed").await;
    assert_eq!(
        console.next_of("gone").await["conversation"],
        id.to_string()
    );
    for recipient in ["info@btb.fi", operator_email.as_str()] {
        let mail = app.smtp.wait_for_recipient(recipient).await;
        let text = mail.text();
        assert!(
            text.contains("anna@kraft.test") && text.contains("+358 40 111 2222"),
            "{text}"
        );
        assert!(text.contains("https://www.btb.test/products"));
        assert!(text.contains(&format!("Anna <b>: {MARKUP}")), "{text}");
        assert!(text.contains("Olle: We will call you."));
        let html = mail.part("text/html").unwrap();
        assert!(
            !html.contains("<script>") && !html.contains("<b>bold"),
            "{html}"
        );
    }
    let kinds: Vec<String> =
        sqlx::query_scalar("SELECT kind FROM mail_outbox WHERE kind = 'chat_transcript'")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(kinds.len(), 2);
    // A message to a closed chat is refused, and a second close changes nothing.
    console
        .send(json!({"t": "close", "conversation": id}))
        .await;
    console
        .send(json!({"t": "say", "conversation": id, "text": "Late"}))
        .await;
    console.next_of("error").await;
}

/// Markup typed into the chat is text in the history the operators read.
#[tokio::test]
async fn markup_in_a_chat_is_text_in_the_history() {
    let app = TestApp::spawn().await;
    let (mut visitor, _, id) = start_chat(&app, json!({"name": MARKUP, "text": MARKUP})).await;
    visitor.next_of("message").await;
    let operator = app
        .signed_in_with(Role::Employee, |u| u.chat_operator = true)
        .await;
    let list = app
        .get_as(&operator, "/chat/history")
        .await
        .text()
        .await
        .unwrap();
    assert!(!list.contains("<script>alert"));
    let page = app
        .get_as(&operator, &format!("/chat/history/{id}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(!page.contains("<script>alert") && !page.contains("<b>bold"));
    assert_eq!(texts(&page, "ol.transcript .text"), [MARKUP]);
}

/// Across instances (LISTEN/NOTIFY): a visitor on one instance and an operator on
/// another see each other's messages.
#[tokio::test]
async fn a_visitor_on_one_instance_and_an_operator_on_another_see_each_other() {
    let app = TestApp::spawn().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let other = format!("http://{}", listener.local_addr().unwrap());
    let mut config = (*app.config).clone();
    config.chat_origins = vec![app.base.parse().unwrap()];
    let _second = start_server(&app.pool, &Arc::new(config), listener).await;

    let (cookie, _) = operator(&app, "Olle").await;
    let mut console = console(&app.base, &cookie).await;
    let mut visitor = Socket::open(&other, "/chat/ws", &app.base, None)
        .await
        .unwrap();
    let state = visitor.hello(None, "https://www.btb.test/").await;
    visitor.until_online(&state).await;
    visitor
        .send(json!({"t": "start", "text": "From the other instance"}))
        .await;
    visitor.next_of("started").await;
    let message = console.next_of("message").await;
    assert_eq!(message["text"], "From the other instance");
    let id = message["conversation"].as_str().unwrap().to_string();
    console
        .send(json!({"t": "say", "conversation": id, "text": "Heard you"}))
        .await;
    let mut seen = visitor.next_of("message").await;
    if seen["from"] == "visitor" {
        seen = visitor.next_of("message").await;
    }
    assert_eq!(seen["text"], "Heard you");
}

/// R-FORM-3 through the chat: with nobody online the widget says so and takes a message
/// that lands in the contact-form inbox and is mailed to the info address.
#[tokio::test]
async fn with_nobody_online_a_message_left_in_the_widget_lands_in_the_inbox() {
    let app = TestApp::spawn().await;
    let mut visitor = Socket::visitor(&app.base).await;
    let state = visitor.hello(None, "").await;
    assert_eq!(state["online"], false);
    visitor
        .send(json!({"t": "leave", "text": "Call me", "email": ""}))
        .await;
    let error = visitor.next_of("error").await;
    assert!(
        error["fields"]["email"]
            .as_str()
            .unwrap()
            .contains("required")
    );
    visitor
        .send(json!({"t": "leave", "text": "Call me", "email": "bo@kunde.test", "name": "Bo"}))
        .await;
    visitor.next_of("left").await;
    let source: String = sqlx::query_scalar("SELECT source FROM contact_messages")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(source, "chat");
    let mail = app.smtp.wait_for_recipient("info@btb.fi").await;
    assert!(mail.text().contains("Call me"));
    // The honeypot: thanked, nothing kept.
    visitor
        .send(json!({"t": "leave", "text": "Spam", "email": "s@spam.test", "website": "x"}))
        .await;
    visitor.next_of("left").await;
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM contact_messages")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(count, 1);
}

/// The widget's socket opens only from this application and the allowed sites; the
/// console's only from this application, whatever cookie comes with it.
#[tokio::test]
async fn sockets_from_other_origins_are_refused() {
    let app =
        TestApp::spawn_with(|c| c.chat_origins = vec!["https://www.btb.test".parse().unwrap()])
            .await;
    assert!(
        Socket::open(&app.base, "/chat/ws", "https://www.btb.test", None)
            .await
            .is_ok()
    );
    let refused = |r: Result<Socket, tungstenite::Error>| match r {
        Err(tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(e) => panic!("{e}"),
        Ok(_) => 101,
    };
    assert_eq!(
        refused(Socket::open(&app.base, "/chat/ws", "https://evil.test", None).await),
        403
    );
    assert_eq!(
        refused(Socket::open(&app.base, "/chat/ws", "null", None).await),
        403
    );
    let (cookie, _) = operator(&app, "Olle").await;
    assert_eq!(
        refused(
            Socket::open(
                &app.base,
                "/chat/console/ws",
                "https://www.btb.test",
                Some(&cookie)
            )
            .await
        ),
        403
    );
    // Without a session the console is not opened at all.
    let anonymous = Socket::open(&app.base, "/chat/console/ws", &app.base, None).await;
    assert_eq!(refused(anonymous), 303);
}

/// Floods: a message is at most 2,000 characters; a socket sending faster than five a
/// second is told to wait; one client address has at most three chats open.
#[tokio::test]
async fn long_messages_fast_senders_and_many_chats_from_one_client_are_capped() {
    let app = TestApp::spawn().await;
    let mut visitor = Socket::visitor(&app.base).await;
    visitor.hello(None, "").await;
    visitor
        .send(json!({"t": "start", "text": "x".repeat(2001)}))
        .await;
    let error = visitor.next_of("error").await;
    assert!(error["fields"]["text"].as_str().unwrap().contains("2,000"));
    let count = |app: &TestApp| {
        let pool = app.pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>("SELECT count(*) FROM chat_conversations")
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    assert_eq!(count(&app).await, 0);
    visitor
        .send(json!({"t": "start", "text": "x".repeat(2000)}))
        .await;
    visitor.next_of("started").await;
    for _ in 0..20 {
        visitor.send(json!({"t": "say", "text": "flood"})).await;
    }
    let notice = visitor.next_of("error").await;
    assert!(notice["text"].as_str().unwrap().contains("too fast"));
    let said: i64 = sqlx::query_scalar("SELECT count(*) FROM chat_messages WHERE body = 'flood'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert!(said < 20, "{said}");
    for _ in 0..2 {
        start_chat(&app, json!({"text": "again"})).await;
    }
    let mut fourth = Socket::visitor(&app.base).await;
    fourth.hello(None, "").await;
    fourth
        .send(json!({"t": "start", "text": "one too many"}))
        .await;
    fourth.next_of("busy").await;
    assert_eq!(count(&app).await, 3);
}

/// R-CHAT-6: with CHAT_RETENTION_DAYS a conversation is kept that many days after it
/// ended, to the second, then deleted by the job; without it, kept until deleted.
/// A chat the visitor left open is closed after two idle hours, and mailed.
#[tokio::test]
async fn ended_chats_are_deleted_after_the_retention_days_only_when_set() {
    let app = TestApp::spawn_with(|c| c.chat_retention_days = Some(30)).await;
    let (mut visitor, _, id) = start_chat(&app, json!({"text": "Hello"})).await;
    visitor.next_of("message").await;
    let started: OffsetDateTime =
        sqlx::query_scalar("SELECT last_activity_at FROM chat_conversations")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    app.run_jobs_at(started + time::Duration::hours(2)).await;
    let status: String = sqlx::query_scalar("SELECT status FROM chat_conversations")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(status, "waiting", "not idle yet on the second");
    app.run_jobs_at(started + time::Duration::hours(2) + time::Duration::seconds(1))
        .await;
    visitor.next_of("closed").await;
    app.smtp.wait_for_recipient("info@btb.fi").await;
    let closed: OffsetDateTime = sqlx::query_scalar("SELECT closed_at FROM chat_conversations")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    app.run_jobs_at(closed + time::Duration::days(30)).await;
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM chat_conversations")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(left, 1, "kept on the last second");
    app.run_jobs_at(closed + time::Duration::days(30) + time::Duration::seconds(1))
        .await;
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM chat_conversations")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(left, 0);
    let audited: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE action = 'chat.delete' AND entity_id = $1",
    )
    .bind(id.to_string())
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(audited, 1);

    let kept = TestApp::spawn().await;
    let (mut visitor, _, _) = start_chat(&kept, json!({"text": "Hello"})).await;
    visitor.send(json!({"t": "close"})).await;
    visitor.next_of("closed").await;
    kept.run_jobs_at(OffsetDateTime::now_utc() + time::Duration::days(3650))
        .await;
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM chat_conversations")
        .fetch_one(&kept.pool)
        .await
        .unwrap();
    assert_eq!(left, 1, "kept until deleted");
}

/// R-CHAT-6: an operator deletes a conversation from the history, audited.
#[tokio::test]
async fn an_operator_deletes_a_conversation_from_the_history_with_an_audit_row() {
    let app = TestApp::spawn().await;
    let (_visitor, _, id) = start_chat(&app, json!({"name": "Anna", "text": "Hello"})).await;
    let admin = app.signed_in(Role::Admin).await;
    let found = app
        .get_as(&admin, "/chat/history?q=anna")
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(texts(&found, "tbody tr").len(), 1);
    let none = app
        .get_as(&admin, "/chat/history?q=bertil")
        .await
        .text()
        .await
        .unwrap();
    assert!(texts(&none, "tbody tr").is_empty());
    let by_text = app
        .get_as(&admin, "/chat/history?q=HELLO")
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(texts(&by_text, "tbody tr").len(), 1);
    let r = app
        .post_form_as(&admin, &format!("/chat/history/{id}/delete"), &[])
        .await;
    assert_eq!(crate::support::location(&r), "/chat/history");
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM chat_messages")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(left, 0);
    let audited: i64 =
        sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE action = 'chat.delete'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(audited, 1);
}

/// What the data-subject rights see and erase: every conversation the address was given
/// in, with its transcript, and nobody else's.
#[tokio::test]
async fn held_about_and_erase_about_reach_every_conversation_of_the_address() {
    let app = TestApp::spawn().await;
    start_chat(&app, json!({"email": "Anna@Kraft.test", "text": "one"})).await;
    start_chat(&app, json!({"email": "bo@kraft.test", "text": "two"})).await;
    let email = Email::parse("anna@kraft.test").unwrap();
    let mut tx = app.pool.begin().await.unwrap();
    let held = chat::held_about(&mut tx, &email).await.unwrap();
    assert_eq!(held.len(), 1);
    assert_eq!(held[0].messages[0].body, "one");
    assert!(
        serde_json::to_string(&held)
            .unwrap()
            .contains("\"body\":\"one\"")
    );
    assert_eq!(chat::erase_about(&mut tx, &email).await.unwrap(), 1);
    tx.commit().await.unwrap();
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM chat_conversations")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(left, 1);
}

/// The pages: the chat on a page of its own loads the widget; a plain GET of a socket
/// is refused.
#[tokio::test]
async fn the_chat_page_carries_the_widget_script() {
    let app = TestApp::spawn().await;
    let page = app.get("/chat").await.text().await.unwrap();
    assert!(page.contains(r#"<script src="/static/chat.js" defer></script>"#));
    assert!(page.contains(r#"id="btb-chat""#));
    let script = app.get("/static/chat.js").await;
    assert_eq!(
        script.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
}

/// A page of the company's site, served from another origin, carrying the widget.
async fn company_site(listener: tokio::net::TcpListener, app_base: &str) {
    let page = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>BTB Transformers</title></head>\
         <body><h1>Transformers</h1>\
         <iframe title=\"Contact\" src=\"{app_base}/contact/embed?lang=en\" width=\"400\" height=\"800\"></iframe>\
         <script src=\"{app_base}/static/chat.js\" defer></script></body></html>"
    );
    let site = axum::Router::new().route(
        "/products",
        axum::routing::get(move || {
            let page = page.clone();
            async move { axum::response::Html(page) }
        }),
    );
    tokio::spawn(async move {
        axum::serve(listener, site).await.unwrap();
    });
}

/// Polls until the element's text satisfies `test` (at most 15 seconds).
async fn wait_for_text(c: &fantoccini::Client, css: &str, test: impl Fn(&str) -> bool) -> String {
    for _ in 0..150 {
        if let Ok(elements) = c.find_all(fantoccini::Locator::Css(css)).await {
            for e in elements {
                if let Ok(text) = e.text().await
                    && test(&text)
                {
                    return text;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no {css} as expected");
}

/// R-CHAT-1, R-CHAT-7 in a real browser: a visitor on the company's site (another
/// origin) opens the widget and writes; an operator answers in the console; each sees
/// the other; markup stays text; a reload keeps the conversation.
#[tokio::test]
async fn a_visitor_on_the_company_site_and_an_operator_chat_in_a_real_browser() {
    use fantoccini::Locator;
    let test = "a_visitor_on_the_company_site_and_an_operator_chat_in_a_real_browser";
    let Some(browser) = crate::support::browser::Browser::start(test).await else {
        return;
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let site = format!("http://{}", listener.local_addr().unwrap());
    let origin: url::Url = site.parse().unwrap();
    let app = TestApp::spawn_with(|c| c.chat_origins = vec![origin]).await;
    company_site(listener, &app.base).await;
    app.create_user_with("olle@btb.test", Role::Employee, |u| {
        u.chat_operator = true;
        u.name = gdpr_register::domain::PersonName::parse("Olle").unwrap();
    })
    .await;
    let c = &browser.client;
    let fill = |css: &'static str, text: &'static str| async move {
        c.find(Locator::Css(css))
            .await
            .unwrap()
            .send_keys(text)
            .await
            .unwrap();
    };
    let click = |css: &'static str| async move {
        c.find(Locator::Css(css))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
    };

    // The operator opens the console.
    c.goto(&app.url("/login")).await.unwrap();
    fill("#email", "olle@btb.test").await;
    fill("#password", PASSWORD).await;
    click("button.primary").await;
    c.wait()
        .for_url(&app.url("/").parse().unwrap())
        .await
        .unwrap();
    c.goto(&app.url("/chat/console")).await.unwrap();
    let console = c.window().await.unwrap();

    // The visitor, in another window, on the company's site.
    let visitor = c.new_window(false).await.unwrap().handle;
    c.switch_to_window(visitor.clone()).await.unwrap();
    c.goto(&format!("{site}/products")).await.unwrap();
    wait_for_text(c, ".btbchat-launcher", |t| t == "Chat with us").await;
    click(".btbchat-launcher").await;
    wait_for_text(c, ".btbchat-primary", |t| t == "Start the chat").await;
    fill("#btbchat-name", "Anna").await;
    fill("#btbchat-text", MARKUP).await;
    click(".btbchat-primary").await;
    wait_for_text(c, ".btbchat-me .btbchat-text", |t| t == MARKUP).await;

    // The operator sees the chat, the page and the markup as text, and answers.
    c.switch_to_window(console.clone()).await.unwrap();
    wait_for_text(c, ".console-chat", |t| t.starts_with("Anna")).await;
    click(".console-chat").await;
    wait_for_text(c, ".console-log .text", |t| t == MARKUP).await;
    wait_for_text(c, ".console-page", |t| t.ends_with("/products")).await;
    assert!(
        c.find_all(Locator::Css(".console-log b, .console-log script"))
            .await
            .unwrap()
            .is_empty()
    );
    fill("#console-text", "Hello Anna, how can I help?").await;
    click(".console-answer button").await;
    wait_for_text(c, ".console-log .from-operator .text", |t| {
        t == "Hello Anna, how can I help?"
    })
    .await;

    // The visitor sees the answer; after a reload the conversation is still there.
    c.switch_to_window(visitor).await.unwrap();
    wait_for_text(c, ".btbchat-them .btbchat-text", |t| {
        t == "Hello Anna, how can I help?"
    })
    .await;
    assert!(
        c.find_all(Locator::Css(".btbchat-log b"))
            .await
            .unwrap()
            .is_empty()
    );
    c.refresh().await.unwrap();
    wait_for_text(c, ".btbchat-them .btbchat-text", |t| {
        t == "Hello Anna, how can I help?"
    })
    .await;
    wait_for_text(c, ".btbchat-me .btbchat-text", |t| t == MARKUP).await;

    // The contact form in a frame on the same page (R-FORM-1).
    c.enter_frame(0).await.unwrap();
    wait_for_text(c, "h1", |t| t == "Contact us").await;
    fill("#email", "anna@kraft.test").await;
    fill("#message", "Please send a quote.").await;
    click("button.primary").await;
    wait_for_text(c, "h1", |t| t == "Thank you for your message").await;
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM contact_messages")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(stored, 1);
    browser.close().await;
}

/// A message too long to travel whole in a notification (2,000 four-byte characters) is
/// read back by each instance instead, and arrives all the same.
#[tokio::test]
async fn the_longest_message_of_the_widest_characters_is_relayed() {
    let app = TestApp::spawn().await;
    let (cookie, _) = operator(&app, "Olle").await;
    let mut console = console(&app.base, &cookie).await;
    let long = "𝄞".repeat(2000);
    let (mut visitor, _, _) = start_chat(&app, json!({"text": long})).await;
    assert_eq!(console.next_of("message").await["text"], long.as_str());
    assert_eq!(visitor.next_of("message").await["text"], long.as_str());
}
