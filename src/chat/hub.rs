//! Fan-out. Every change to a conversation is announced with `NOTIFY chat` in the
//! transaction that makes it; each instance listens, reads what changed once, and passes
//! it to the sockets it holds: the visitor's (one room per conversation) and the
//! operators' consoles. A visitor on one instance and an operator on another thus see each
//! other's messages, and nobody sees what did not commit.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use serde_json::json;
use sqlx::{PgPool, postgres::PgListener};
use time::macros::format_description;
use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::store::{self, ChatMessage, Conversation};

/// An event as sent over a socket: JSON text, shared by every receiver.
pub type Frame = Arc<str>;

/// The sockets of one instance.
#[derive(Clone)]
pub struct Hub {
    inner: Arc<Inner>,
}

struct Inner {
    rooms: Mutex<HashMap<Uuid, broadcast::Sender<Frame>>>,
    console: broadcast::Sender<Frame>,
    online: watch::Sender<bool>,
    visitors: AtomicUsize,
}

impl Default for Hub {
    fn default() -> Self {
        Self {
            inner: Arc::new(Inner {
                rooms: Mutex::new(HashMap::new()),
                console: broadcast::channel(1024).0,
                online: watch::channel(false).0,
                visitors: AtomicUsize::new(0),
            }),
        }
    }
}

/// Counts an open visitor socket for as long as it lives.
pub struct VisitorSlot(Hub);

impl Drop for VisitorSlot {
    fn drop(&mut self) {
        self.0.inner.visitors.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Hub {
    /// A place for one more visitor socket, unless `max` are open on this instance.
    pub fn visitor_slot(&self, max: usize) -> Option<VisitorSlot> {
        let before = self.inner.visitors.fetch_add(1, Ordering::Relaxed);
        let slot = VisitorSlot(self.clone());
        (before < max).then_some(slot)
    }

    /// Listens to one conversation's events.
    pub fn join(&self, conversation: Uuid) -> broadcast::Receiver<Frame> {
        let mut rooms = self.inner.rooms.lock().expect("rooms lock");
        rooms
            .entry(conversation)
            .or_insert_with(|| broadcast::channel(64).0)
            .subscribe()
    }

    /// Forgets rooms nobody listens to any more.
    pub fn leave(&self, conversation: Uuid) {
        let mut rooms = self.inner.rooms.lock().expect("rooms lock");
        if rooms
            .get(&conversation)
            .is_some_and(|r| r.receiver_count() == 0)
        {
            rooms.remove(&conversation);
        }
    }

    pub fn console(&self) -> broadcast::Receiver<Frame> {
        self.inner.console.subscribe()
    }

    /// Whether an operator has a console open anywhere, as last heard.
    pub fn online(&self) -> watch::Receiver<bool> {
        self.inner.online.subscribe()
    }

    fn room(&self, conversation: Uuid) -> Option<broadcast::Sender<Frame>> {
        let rooms = self.inner.rooms.lock().expect("rooms lock");
        rooms.get(&conversation).cloned()
    }

    fn consoles_listening(&self) -> bool {
        self.inner.console.receiver_count() > 0
    }

    fn pass_on(&self, message: &ChatMessage) {
        if let Some(room) = self.room(message.conversation_id) {
            let _ = room.send(visitor_message(message));
        }
        let _ = self.inner.console.send(console_message(message));
    }

    async fn on_notification(&self, pool: &PgPool, payload: &str) -> sqlx::Result<()> {
        if let Some(json) = payload.strip_prefix("M:") {
            if let Ok(message) = serde_json::from_str::<ChatMessage>(json) {
                self.pass_on(&message);
            }
            return Ok(());
        }
        let mut parts = payload.split(':');
        match (parts.next(), parts.next(), parts.next()) {
            (Some("m"), Some(conversation), Some(id)) => {
                let (Ok(conversation), Ok(id)) = (conversation.parse(), id.parse()) else {
                    return Ok(());
                };
                let room = self.room(conversation);
                if room.is_none() && !self.consoles_listening() {
                    return Ok(());
                }
                let mut conn = pool.acquire().await?;
                if let Some(message) = store::message(&mut conn, id).await? {
                    self.pass_on(&message);
                }
            }
            (Some("c"), Some(conversation), None) => {
                let Ok(conversation) = conversation.parse() else {
                    return Ok(());
                };
                let mut conn = pool.acquire().await?;
                let found = store::find(&mut conn, conversation).await?;
                let live = found.filter(|c| c.status != "closed");
                if live.is_none()
                    && let Some(room) = self.room(conversation)
                {
                    let _ = room.send(Arc::from(json!({"t": "closed"}).to_string()));
                }
                let frame = match live {
                    Some(c) => console_conversation(&c),
                    None => {
                        Arc::from(json!({"t": "gone", "conversation": conversation}).to_string())
                    }
                };
                let _ = self.inner.console.send(frame);
            }
            (Some("p"), None, None) => self.refresh_presence(pool).await?,
            _ => {}
        }
        Ok(())
    }

    async fn refresh_presence(&self, pool: &PgPool) -> sqlx::Result<()> {
        let mut conn = pool.acquire().await?;
        let online = store::operators_online(&mut conn).await?;
        self.inner.online.send_if_modified(|now| {
            let changed = *now != online;
            *now = online;
            changed
        });
        Ok(())
    }
}

fn clock(message: &ChatMessage) -> String {
    message
        .created_at
        .format(format_description!("[hour]:[minute]"))
        .unwrap_or_default()
}

/// A message as the visitor's widget shows it: an operator by name only.
pub fn visitor_message(message: &ChatMessage) -> Frame {
    Arc::from(visitor_message_value(message).to_string())
}

pub fn visitor_message_value(message: &ChatMessage) -> serde_json::Value {
    json!({
        "t": "message",
        "id": message.id,
        "from": message.sender,
        "name": message.operator,
        "text": message.body,
        "at": clock(message),
    })
}

pub fn console_message_value(message: &ChatMessage) -> serde_json::Value {
    json!({
        "t": "message",
        "conversation": message.conversation_id,
        "id": message.id,
        "from": message.sender,
        "name": message.operator,
        "text": message.body,
        "at": clock(message),
    })
}

fn console_message(message: &ChatMessage) -> Frame {
    Arc::from(console_message_value(message).to_string())
}

pub fn console_conversation_value(c: &Conversation) -> serde_json::Value {
    json!({
        "t": "conversation",
        "id": c.id,
        "status": c.status,
        "name": c.name,
        "company": c.company,
        "email": c.email,
        "phone": c.phone,
        "page": c.page,
        "language": c.language,
        "started": c.created_at.format(format_description!("[hour]:[minute]")).unwrap_or_default(),
    })
}

fn console_conversation(c: &Conversation) -> Frame {
    Arc::from(console_conversation_value(c).to_string())
}

/// Connects the listener before the server takes requests, so no change is missed. It
/// has a connection of its own, outside the pool the requests share.
pub async fn listen(pool: &PgPool) -> anyhow::Result<PgListener> {
    let own = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect_lazy_with((*pool.connect_options()).clone());
    let mut listener = PgListener::connect_with(&own).await?;
    listener.listen("chat").await?;
    Ok(listener)
}

/// Passes notifications to this instance's sockets until cancelled; checks who is online
/// now and then, so a console that vanished with its instance stops counting.
pub async fn run(pool: PgPool, hub: Hub, mut listener: PgListener, stop: CancellationToken) {
    let mut presence = tokio::time::interval(Duration::from_secs(30));
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = presence.tick() => {
                if let Err(e) = hub.refresh_presence(&pool).await {
                    tracing::warn!(error = %e, "chat: checking who is online");
                }
            }
            received = listener.try_recv() => match received {
                Ok(Some(notification)) => {
                    if let Err(e) = hub.on_notification(&pool, notification.payload()).await {
                        tracing::warn!(error = %e, "chat: passing on a change");
                    }
                }
                // Reconnected: what was said meanwhile is read again by each socket's
                // next resume; who is online is asked anew.
                Ok(None) => {
                    let _ = hub.refresh_presence(&pool).await;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "chat: listening");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }
}
