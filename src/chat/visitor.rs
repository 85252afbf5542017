//! The visitor's side: one WebSocket per page with the widget. Nothing is written until
//! the visitor starts a chat; the token that brings them back to it lives in a cookie the
//! widget keeps on the site that shows it.

use std::{net::IpAddr, time::Duration};

use axum::extract::ws::{Message as WsMessage, Utf8Bytes, WebSocket};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::time::Instant;
use uuid::Uuid;

use super::{
    hub::{Hub, VisitorSlot, visitor_message_value},
    store::{self, Visitor},
};
use crate::{
    audit::Actor,
    auth,
    contact::{self, NewMessage, Source},
    domain::{Email, Phone, optional, short_text},
    keys::Use,
    state::AppState,
    tokens,
    web::{Lang, Tr, form::Errors},
};

/// The longest chat message, in characters.
pub const MAX_MESSAGE: usize = 2000;
/// The longest page address kept.
const MAX_PAGE: usize = 500;
/// Conversations one client address may have open at once.
const MAX_LIVE_PER_CLIENT: i64 = 3;
/// New conversations one client address may start in a quarter of an hour.
const MAX_NEW_PER_CLIENT: i32 = 10;
/// While this many wait for an operator, new chats are asked to leave a message instead.
const MAX_WAITING: i64 = 200;
/// A socket that has not said hello by then is closed.
const HELLO_WITHIN: Duration = Duration::from_secs(10);
/// Messages a socket may send: a burst, refilled at a steady rate.
const BURST: f64 = 10.0;
const PER_SECOND: f64 = 5.0;
/// How often a socket is pinged: a proxy between closes a socket it thinks idle.
pub const PING: Duration = Duration::from_secs(30);
/// After this many refused messages the socket is closed.
const MAX_REFUSED: u32 = 50;

/// What the widget sends.
#[derive(Deserialize)]
#[serde(tag = "t", rename_all = "lowercase")]
enum FromVisitor {
    Hello {
        #[serde(default)]
        token: Option<String>,
        #[serde(default)]
        page: String,
    },
    Start {
        #[serde(default)]
        name: String,
        #[serde(default)]
        company: String,
        #[serde(default)]
        email: String,
        #[serde(default)]
        phone: String,
        #[serde(default)]
        text: String,
        #[serde(default)]
        page: String,
    },
    Say {
        #[serde(default)]
        text: String,
    },
    Page {
        #[serde(default)]
        url: String,
    },
    Close,
    Leave {
        #[serde(default)]
        name: String,
        #[serde(default)]
        company: String,
        #[serde(default)]
        email: String,
        #[serde(default)]
        phone: String,
        #[serde(default)]
        text: String,
        /// The honeypot.
        #[serde(default)]
        website: String,
    },
}

/// A chat message as typed: like a contact-form message, shorter.
pub fn chat_text(input: &str) -> Result<String, &'static str> {
    contact::message_text(input, MAX_MESSAGE).map_err(|e| match e {
        "contact.message.too_long" => "chat.message.too_long",
        other => other,
    })
}

/// The widget's texts, sent in the visitor's language.
const TEXTS: &[&str] = &[
    "chat.widget.open",
    "chat.widget.title",
    "chat.widget.hide",
    "chat.widget.intro",
    "chat.widget.privacy",
    "chat.widget.privacy_link",
    "chat.widget.name",
    "chat.widget.company",
    "chat.widget.email",
    "chat.widget.phone",
    "chat.widget.optional",
    "chat.widget.message",
    "chat.widget.start",
    "chat.widget.send",
    "chat.widget.end",
    "chat.widget.offline",
    "chat.widget.leave",
    "chat.widget.left",
    "chat.widget.closed",
    "chat.widget.new",
    "chat.widget.you",
    "chat.widget.waiting",
    "chat.widget.connection_lost",
];

fn texts(t: Tr) -> Value {
    Value::Object(
        TEXTS
            .iter()
            .map(|k| (k.to_string(), Value::from(t.get(k))))
            .collect(),
    )
}

struct Session {
    state: AppState,
    hub: Hub,
    address: IpAddr,
    lang: Lang,
    conversation: Option<Uuid>,
    room: Option<tokio::sync::broadcast::Receiver<super::hub::Frame>>,
}

async fn send(socket: &mut WebSocket, value: Value) -> bool {
    socket
        .send(WsMessage::Text(Utf8Bytes::from(value.to_string())))
        .await
        .is_ok()
}

fn error(t: Tr, errors: &Errors, fields: &[&'static str]) -> Value {
    let list: serde_json::Map<String, Value> = fields
        .iter()
        .filter_map(|f| {
            errors
                .get(f)
                .map(|e| (f.to_string(), Value::from(t.get(e))))
        })
        .collect();
    json!({"t": "error", "fields": list})
}

fn notice(t: Tr, key: &str) -> Value {
    json!({"t": "error", "text": t.get(key)})
}

/// A page address as the visitor's browser reports it: an http(s) URL, cut short.
fn page(url: &str) -> String {
    let url = url.trim();
    if !(url.starts_with("https://") || url.starts_with("http://"))
        || url.chars().any(char::is_control)
    {
        return String::new();
    }
    url.chars().take(MAX_PAGE).collect()
}

pub async fn run(
    mut socket: WebSocket,
    state: AppState,
    hub: Hub,
    address: IpAddr,
    lang: Lang,
    _slot: VisitorSlot,
) {
    let t = Tr(lang);
    let mut session = Session {
        state,
        hub,
        address,
        lang,
        conversation: None,
        room: None,
    };
    // The hello: resume the chat the cookie names, or offer a new one.
    let hello = tokio::time::timeout(HELLO_WITHIN, socket.recv()).await;
    let Ok(Some(Ok(WsMessage::Text(text)))) = hello else {
        return;
    };
    let Ok(FromVisitor::Hello { token, page: at }) = serde_json::from_str(&text) else {
        return;
    };
    let mut online = session.hub.online();
    let resumed = match session.resume(token.as_deref(), &page(&at)).await {
        Ok(resumed) => resumed,
        Err(e) => {
            tracing::warn!(error = %e, "chat: resuming");
            return;
        }
    };
    let state_frame = json!({
        "t": "state",
        "online": *online.borrow_and_update(),
        "texts": texts(t),
        "privacy": session.state.config.absolute_url("/privacy"),
        "conversation": resumed,
    });
    if !send(&mut socket, state_frame).await {
        return;
    }
    let mut tokens = BURST;
    let mut refilled = Instant::now();
    let mut refused = 0;
    let mut ping = tokio::time::interval(PING);
    ping.tick().await;
    loop {
        tokio::select! {
            _ = ping.tick() => {
                if socket.send(WsMessage::Ping(Default::default())).await.is_err() {
                    break;
                }
            }
            incoming = socket.recv() => {
                let Some(Ok(incoming)) = incoming else { break };
                let text = match incoming {
                    WsMessage::Text(text) => text,
                    WsMessage::Close(_) => break,
                    _ => continue,
                };
                let now = Instant::now();
                tokens = (tokens + now.duration_since(refilled).as_secs_f64() * PER_SECOND).min(BURST);
                refilled = now;
                if tokens < 1.0 {
                    refused += 1;
                    if refused > MAX_REFUSED || !send(&mut socket, notice(t, "chat.too_fast")).await {
                        break;
                    }
                    continue;
                }
                tokens -= 1.0;
                let answer = match serde_json::from_str::<FromVisitor>(&text) {
                    Ok(message) => session.handle(message).await,
                    Err(_) => Ok(Some(notice(t, "chat.not_understood"))),
                };
                match answer {
                    Ok(Some(answer)) => {
                        if !send(&mut socket, answer).await {
                            break;
                        }
                    }
                    Ok(None) => {}
                    Err(e) => {
                        tracing::warn!(error = format!("{e:#}"), "chat: a visitor's message");
                        if !send(&mut socket, notice(t, "error.unexpected")).await {
                            break;
                        }
                    }
                }
            }
            frame = recv_room(&mut session.room) => match frame {
                Some(frame) => {
                    if socket.send(WsMessage::Text(Utf8Bytes::from(&*frame))).await.is_err() {
                        break;
                    }
                }
                None => session.room = None,
            },
            changed = online.changed() => {
                if changed.is_err() {
                    break;
                }
                let now = *online.borrow_and_update();
                if !send(&mut socket, json!({"t": "online", "online": now})).await {
                    break;
                }
            }
        }
    }
    session.part();
}

/// The next event of the conversation, or never without one. A receiver that fell
/// behind skips what it missed; the widget reads it again on its next load.
async fn recv_room(
    room: &mut Option<tokio::sync::broadcast::Receiver<super::hub::Frame>>,
) -> Option<super::hub::Frame> {
    let Some(receiver) = room else {
        return std::future::pending().await;
    };
    loop {
        match receiver.recv().await {
            Ok(frame) => return Some(frame),
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
        }
    }
}

impl Session {
    fn part(&mut self) {
        self.room = None;
        if let Some(id) = self.conversation.take() {
            self.hub.leave(id);
        }
    }

    fn enter(&mut self, id: Uuid) {
        self.part();
        self.room = Some(self.hub.join(id));
        self.conversation = Some(id);
    }

    async fn resume(&mut self, token: Option<&str>, at: &str) -> anyhow::Result<Value> {
        let Some(token) = token.filter(|t| tokens::looks_valid(t)) else {
            return Ok(Value::Null);
        };
        let mut conn = self.state.pool.acquire().await?;
        let Some(conversation) = store::find_live_by_token(&mut conn, &tokens::hash(token)).await?
        else {
            return Ok(json!({"gone": true}));
        };
        // Joined before the history is read: nothing said in between is lost.
        self.enter(conversation.id);
        if !at.is_empty() {
            let mut tx = self.state.pool.begin().await?;
            store::set_page(&mut tx, conversation.id, at).await?;
            tx.commit().await?;
        }
        let messages: Vec<Value> = store::messages(&mut conn, conversation.id)
            .await?
            .iter()
            .map(visitor_message_value)
            .collect();
        Ok(json!({"status": conversation.status, "messages": messages}))
    }

    async fn handle(&mut self, message: FromVisitor) -> anyhow::Result<Option<Value>> {
        let t = Tr(self.lang);
        match message {
            FromVisitor::Hello { .. } => Ok(Some(notice(t, "chat.not_understood"))),
            FromVisitor::Start {
                name,
                company,
                email,
                phone,
                text,
                page: at,
            } => {
                // One chat at a time; once it has ended, the next may begin.
                if let Some(id) = self.conversation {
                    let mut conn = self.state.pool.acquire().await?;
                    if store::find(&mut conn, id)
                        .await?
                        .is_some_and(|c| c.status != "closed")
                    {
                        return Ok(Some(notice(t, "chat.not_understood")));
                    }
                    self.part();
                }
                let mut errors = Errors::default();
                let name = errors.check("name", short_text(&name, 200));
                let company = errors.check("company", short_text(&company, 200));
                let email = errors.check("email", optional(&email, Email::parse));
                let phone = errors.check("phone", optional(&phone, Phone::parse));
                let text = errors.check("text", chat_text(&text));
                let (Some(name), Some(company), Some(email), Some(phone), Some(text)) =
                    (name, company, email, phone, text)
                else {
                    return Ok(Some(error(
                        t,
                        &errors,
                        &["name", "company", "email", "phone", "text"],
                    )));
                };
                let visitor = Visitor {
                    name,
                    company,
                    email,
                    phone: phone.map(|p| p.as_str().to_string()).unwrap_or_default(),
                };
                let keys = &self.state.config.keys;
                let client_hash = keys.keyed_hash(
                    Use::Throttle,
                    format!("chat-client:{}", self.address).as_bytes(),
                );
                let mut tx = self.state.pool.begin().await?;
                if store::live_of_client(&mut tx, &client_hash).await? >= MAX_LIVE_PER_CLIENT
                    || store::waiting(&mut tx).await? >= MAX_WAITING
                {
                    return Ok(Some(json!({"t": "busy", "text": t.get("chat.busy")})));
                }
                let window = Duration::from_secs(15 * 60);
                if !auth::spend_throttled(
                    &mut tx,
                    keys,
                    &format!("chat:{}", self.address),
                    MAX_NEW_PER_CLIENT,
                    window,
                )
                .await?
                {
                    return Ok(Some(json!({"t": "busy", "text": t.get("chat.busy")})));
                }
                let token = tokens::random_token();
                let id = store::start(
                    &mut tx,
                    &tokens::hash(&token),
                    &client_hash,
                    &visitor,
                    &page(&at),
                    self.lang,
                    &text,
                )
                .await?;
                // In the room before the commit announces the first message.
                self.enter(id);
                tx.commit().await?;
                Ok(Some(json!({"t": "started", "token": token})))
            }
            FromVisitor::Say { text } => {
                let Some(id) = self.conversation else {
                    return Ok(Some(notice(t, "chat.not_understood")));
                };
                let text = match chat_text(&text) {
                    Ok(text) => text,
                    Err(e) => return Ok(Some(json!({"t": "error", "fields": {"text": t.get(e)}}))),
                };
                let mut tx = self.state.pool.begin().await?;
                store::without_flush(&mut tx).await?;
                let said = store::say(&mut tx, id, None, &text).await?;
                tx.commit().await?;
                Ok(said.is_none().then(|| json!({"t": "closed"})))
            }
            FromVisitor::Page { url } => {
                if let Some(id) = self.conversation {
                    let at = page(&url);
                    if !at.is_empty() {
                        let mut tx = self.state.pool.begin().await?;
                        store::set_page(&mut tx, id, &at).await?;
                        tx.commit().await?;
                    }
                }
                Ok(None)
            }
            FromVisitor::Close => {
                let Some(id) = self.conversation else {
                    return Ok(None);
                };
                let mut tx = self.state.pool.begin().await?;
                store::close(&mut tx, &self.state.config, id, &Actor::Anonymous).await?;
                tx.commit().await?;
                Ok(None)
            }
            FromVisitor::Leave {
                name,
                company,
                email,
                phone,
                text,
                website,
            } => {
                if !website.is_empty() {
                    return Ok(Some(json!({"t": "left"})));
                }
                let new = match NewMessage::parse(&email, &name, &company, &phone, &text) {
                    Ok(new) => new,
                    Err(errors) => {
                        let mut answer = error(
                            t,
                            &errors,
                            &["name", "company", "email", "phone", "message"],
                        );
                        // The widget calls the message field `text`.
                        if let Some(e) = answer["fields"]
                            .as_object_mut()
                            .and_then(|f| f.remove("message"))
                        {
                            answer["fields"]["text"] = e;
                        }
                        return Ok(Some(answer));
                    }
                };
                let mut tx = self.state.pool.begin().await?;
                if !contact::allowed(&mut tx, &self.state.config, self.address).await? {
                    return Ok(Some(notice(t, "contact.too_many")));
                }
                contact::submit(&mut tx, &self.state.config, &new, Source::Chat, self.lang).await?;
                tx.commit().await?;
                Ok(Some(json!({"t": "left"})))
            }
        }
    }
}
