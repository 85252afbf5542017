//! The chat's routes: the two sockets, the visitor's page, the operators' console and
//! the history.

use std::net::SocketAddr;

use askama::Template;
use askama_web::WebTemplate;
use axum::{
    Extension,
    extract::{ConnectInfo, Path, Query, State, WebSocketUpgrade},
    http::{HeaderMap, header},
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use time::OffsetDateTime;
use tower_sessions::Session;
use uuid::Uuid;

use super::{
    console,
    hub::Hub,
    store::{self, Conversation, Transcript},
    visitor,
};
use crate::{
    audit::Actor,
    auth::{self, CurrentUser},
    error::{AppError, AppResult},
    state::AppState,
    web::{Lang, Layout, RequestContext, flash, see_other},
};

/// Visitor sockets one instance holds at most; beyond, the widget is told to come back.
const MAX_VISITOR_SOCKETS: usize = 5000;
/// The largest frame a socket takes.
const MAX_FRAME: usize = 16 * 1024;
/// Conversations on one page of the history.
const PAGE: i64 = 50;

fn origin(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::ORIGIN).and_then(|v| v.to_str().ok())
}

#[derive(Debug, Default, Deserialize)]
pub struct SocketParams {
    #[serde(default)]
    lang: String,
}

/// The widget's socket: only from this application's pages and the allowed sites.
pub async fn visitor_socket(
    State(state): State<AppState>,
    Extension(hub): Extension<Hub>,
    Extension(context): Extension<RequestContext>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(params): Query<SocketParams>,
    ws: WebSocketUpgrade,
) -> AppResult<Response> {
    if !origin(&headers).is_some_and(|o| state.config.allows_origin(o)) {
        return Err(AppError::Forbidden("error.forbidden"));
    }
    let Some(slot) = hub.visitor_slot(MAX_VISITOR_SOCKETS) else {
        return Err(AppError::TooManyRequests("chat.busy"));
    };
    let lang = Lang::parse(&params.lang)
        .filter(|l| Lang::PUBLIC.contains(l))
        .unwrap_or(context.lang);
    let address = auth::client_address(peer, &headers, state.config.trust_proxy);
    Ok(ws
        .max_message_size(MAX_FRAME)
        .max_frame_size(MAX_FRAME)
        .on_upgrade(move |socket| visitor::run(socket, state, hub, address, lang, slot)))
}

/// The console's socket: only from this application's own pages (a signed-in operator's
/// cookie must not open it from another site).
pub async fn console_socket(
    State(state): State<AppState>,
    Extension(hub): Extension<Hub>,
    user: CurrentUser,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> AppResult<Response> {
    let own = state.config.base_url.origin().ascii_serialization();
    if origin(&headers) != Some(own.as_str()) {
        return Err(AppError::Forbidden("error.forbidden"));
    }
    Ok(ws
        .max_message_size(MAX_FRAME)
        .max_frame_size(MAX_FRAME)
        .on_upgrade(move |socket| console::run(socket, state, hub, user)))
}

#[derive(Template, WebTemplate)]
#[template(path = "chat/page.html")]
pub struct ChatPage {
    layout: Layout,
}

/// The chat as a page of its own.
pub async fn page(layout: Layout) -> ChatPage {
    ChatPage { layout }
}

#[derive(Template, WebTemplate)]
#[template(path = "chat/console.html")]
pub struct ConsolePage {
    layout: Layout,
    texts: String,
}

/// Texts the console's script shows.
const CONSOLE_TEXTS: &[&str] = &[
    "chat.console.waiting",
    "chat.console.open",
    "chat.console.none",
    "chat.console.choose",
    "chat.console.answer",
    "chat.console.send",
    "chat.console.close",
    "chat.console.closed",
    "chat.console.connection_lost",
    "chat.visitor",
    "chat.page",
    "chat.status.waiting",
    "chat.status.open",
    "field.email",
    "field.phone",
    "contact.company",
];

pub async fn console_page(layout: Layout) -> ConsolePage {
    let texts: serde_json::Map<String, serde_json::Value> = CONSOLE_TEXTS
        .iter()
        .map(|k| (k.to_string(), layout.t.get(k).into()))
        .collect();
    ConsolePage {
        texts: serde_json::Value::Object(texts).to_string(),
        layout,
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct HistoryParams {
    #[serde(default)]
    q: String,
    before: Option<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "chat/history.html")]
pub struct HistoryPage {
    layout: Layout,
    q: String,
    conversations: Vec<Conversation>,
    next: Option<String>,
    retention_days: Option<u32>,
}

/// R-CHAT-4, R-CHAT-6: every conversation, newest first, searchable.
pub async fn history(
    State(state): State<AppState>,
    layout: Layout,
    Query(params): Query<HistoryParams>,
) -> AppResult<HistoryPage> {
    let before = params
        .before
        .as_deref()
        .and_then(|b| b.parse::<i128>().ok())
        .and_then(|n| OffsetDateTime::from_unix_timestamp_nanos(n).ok());
    let mut conn = state.pool.acquire().await?;
    let mut conversations = store::search(&mut conn, &params.q, before, PAGE + 1).await?;
    let next = if conversations.len() as i64 > PAGE {
        conversations.truncate(PAGE as usize);
        conversations.last().map(|c| {
            let before = c.created_at.unix_timestamp_nanos().to_string();
            serde_urlencoded::to_string([("q", params.q.as_str()), ("before", &before)])
                .unwrap_or_default()
        })
    } else {
        None
    };
    Ok(HistoryPage {
        layout,
        q: params.q,
        conversations,
        next,
        retention_days: state.config.chat_retention_days,
    })
}

#[derive(Template, WebTemplate)]
#[template(path = "chat/transcript.html")]
pub struct TranscriptPage {
    layout: Layout,
    transcript: Transcript,
}

fn parse_id(id: &str) -> AppResult<Uuid> {
    id.parse().map_err(|_| AppError::NotFound)
}

pub async fn transcript(
    State(state): State<AppState>,
    layout: Layout,
    Path(id): Path<String>,
) -> AppResult<TranscriptPage> {
    let mut conn = state.pool.acquire().await?;
    let transcript = store::transcript(&mut conn, parse_id(&id)?)
        .await?
        .ok_or(AppError::NotFound)?;
    Ok(TranscriptPage { layout, transcript })
}

/// Deletes a conversation (R-CHAT-6); an open one is closed for the visitor as well.
pub async fn delete(
    State(state): State<AppState>,
    session: Session,
    user: CurrentUser,
    Path(id): Path<String>,
) -> AppResult<Response> {
    let mut tx = state.pool.begin().await?;
    if !store::delete(&mut tx, parse_id(&id)?, &Actor::User(user.id)).await? {
        return Err(AppError::NotFound);
    }
    tx.commit().await?;
    flash::success(&session, "chat.history.deleted").await?;
    Ok(see_other("/chat/history").into_response())
}
