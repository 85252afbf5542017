//! The operators' side: one WebSocket per open console. It lists the waiting and open
//! chats and every change to them as it happens, and takes answers and closings. While
//! a console is open its operator counts as online (R-CHAT-5).

use std::time::Duration;

use axum::extract::ws::{Message as WsMessage, Utf8Bytes, WebSocket};
use futures::{SinkExt, StreamExt, stream::SplitSink};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::{broadcast::error::RecvError, mpsc};
use uuid::Uuid;

use super::{
    hub::{Hub, console_conversation_value, console_message_value},
    store,
    visitor::{PING, chat_text},
};
use crate::{
    audit::Actor,
    auth::CurrentUser,
    state::AppState,
    web::{Lang, Tr},
};

/// How often an open console says it is still there.
const HEARTBEAT: Duration = Duration::from_secs(30);

#[derive(Deserialize)]
#[serde(tag = "t", rename_all = "lowercase")]
enum FromOperator {
    /// Show a conversation's messages.
    Open {
        conversation: Uuid,
    },
    Say {
        conversation: Uuid,
        #[serde(default)]
        text: String,
    },
    Close {
        conversation: Uuid,
    },
}

type Sink = SplitSink<WebSocket, WsMessage>;

async fn send(sink: &mut Sink, value: Value) -> bool {
    sink.send(WsMessage::Text(Utf8Bytes::from(value.to_string())))
        .await
        .is_ok()
}

/// Sends the waiting and open chats; `false` if that failed.
async fn send_live(state: &AppState, sink: &mut Sink) -> bool {
    let live = async {
        let mut conn = state.pool.acquire().await?;
        store::live(&mut conn).await
    };
    match live.await {
        Ok(list) => {
            let conversations: Vec<Value> = list.iter().map(console_conversation_value).collect();
            send(sink, json!({"t": "live", "conversations": conversations})).await
        }
        Err(e) => {
            tracing::warn!(error = %e, "chat: listing the chats");
            false
        }
    }
}

async fn presence(state: &AppState, connection: Uuid, user: Uuid, here: bool) -> sqlx::Result<()> {
    let mut tx = state.pool.begin().await?;
    if here {
        store::present(&mut tx, connection, user).await?;
    } else {
        store::absent(&mut tx, connection).await?;
    }
    store::notify(&mut tx, "p").await?;
    tx.commit().await
}

pub async fn run(socket: WebSocket, state: AppState, hub: Hub, user: CurrentUser) {
    let t = Tr(user.language.unwrap_or(Lang::Sv));
    let connection = Uuid::new_v4();
    // Subscribed before the list is read: no change between the two is lost.
    let mut events = hub.console();
    if let Err(e) = presence(&state, connection, user.id, true).await {
        tracing::warn!(error = %e, "chat: an operator's presence");
        return;
    }
    let (mut sink, mut stream) = socket.split();
    // Changes go out as they come, beside the operator's own work: an answer being saved
    // never holds up what the operator sees.
    let (answers, mut answered) = mpsc::channel::<Value>(16);
    let writer = async {
        if !send_live(&state, &mut sink).await {
            return;
        }
        let mut ping = tokio::time::interval(PING);
        ping.tick().await;
        loop {
            tokio::select! {
                _ = ping.tick() => {
                    if sink.send(WsMessage::Ping(Default::default())).await.is_err() {
                        return;
                    }
                }
                answer = answered.recv() => match answer {
                    Some(answer) => {
                        if !send(&mut sink, answer).await {
                            return;
                        }
                    }
                    None => return,
                },
                event = events.recv() => match event {
                    Ok(frame) => {
                        if sink.send(WsMessage::Text(Utf8Bytes::from(&*frame))).await.is_err() {
                            return;
                        }
                    }
                    // Fell behind: the whole list again.
                    Err(RecvError::Lagged(_)) => {
                        if !send_live(&state, &mut sink).await {
                            return;
                        }
                    }
                    Err(RecvError::Closed) => return,
                },
            }
        }
    };
    let reader = async {
        let mut heartbeat = tokio::time::interval(HEARTBEAT);
        heartbeat.tick().await;
        loop {
            tokio::select! {
                incoming = stream.next() => {
                    let Some(Ok(incoming)) = incoming else { return };
                    let text = match incoming {
                        WsMessage::Text(text) => text,
                        WsMessage::Close(_) => return,
                        _ => continue,
                    };
                    let answer = match serde_json::from_str::<FromOperator>(&text) {
                        Ok(message) => handle(&state, &user, message, t).await,
                        Err(_) => Ok(Some(json!({"t": "error", "text": t.get("chat.not_understood")}))),
                    };
                    let answer = answer.unwrap_or_else(|e| {
                        tracing::warn!(error = format!("{e:#}"), "chat: an operator's message");
                        Some(json!({"t": "error", "text": t.get("error.unexpected")}))
                    });
                    if let Some(answer) = answer && answers.send(answer).await.is_err() {
                        return;
                    }
                }
                _ = heartbeat.tick() => {
                    if let Ok(mut conn) = state.pool.acquire().await {
                        let _ = store::present(&mut conn, connection, user.id).await;
                    }
                }
            }
        }
    };
    // Whichever side ends first ends the console.
    tokio::select! {
        () = writer => {}
        () = reader => {}
    }
    if let Err(e) = presence(&state, connection, user.id, false).await {
        tracing::warn!(error = %e, "chat: an operator left");
    }
}

async fn handle(
    state: &AppState,
    user: &CurrentUser,
    message: FromOperator,
    t: Tr,
) -> anyhow::Result<Option<Value>> {
    match message {
        FromOperator::Open { conversation } => {
            let mut conn = state.pool.acquire().await?;
            let messages: Vec<Value> = store::messages(&mut conn, conversation)
                .await?
                .iter()
                .map(console_message_value)
                .collect();
            Ok(Some(
                json!({"t": "history", "conversation": conversation, "messages": messages}),
            ))
        }
        FromOperator::Say { conversation, text } => {
            let text = match chat_text(&text) {
                Ok(text) => text,
                Err(e) => return Ok(Some(json!({"t": "error", "text": t.get(e)}))),
            };
            let mut tx = state.pool.begin().await?;
            store::without_flush(&mut tx).await?;
            let said =
                store::say(&mut tx, conversation, Some((user.id, &user.name)), &text).await?;
            tx.commit().await?;
            Ok(said
                .is_none()
                .then(|| json!({"t": "error", "text": t.get("chat.console.closed")})))
        }
        FromOperator::Close { conversation } => {
            let mut tx = state.pool.begin().await?;
            store::close(&mut tx, &state.config, conversation, &Actor::User(user.id)).await?;
            tx.commit().await?;
            Ok(None)
        }
    }
}
