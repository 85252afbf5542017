//! Conversations and their messages in the database; each change notifies every instance
//! (see [`super::hub`]) in the same transaction, so nobody hears of what did not commit.

use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use time::{OffsetDateTime, macros::format_description};
use uuid::Uuid;

use crate::{
    audit::{self, Actor, Event},
    config::Config,
    domain::Email,
    mail::{
        self, Mail,
        kinds::{ChatTranscript, TranscriptLine},
    },
    web::{Lang, Tr},
};

pub const ENTITY: &str = "chat_conversation";

/// What a visitor chose to say about themselves (R-CHAT-1): any of it, or nothing.
#[derive(Clone, Debug, Default)]
pub struct Visitor {
    pub name: String,
    pub company: String,
    pub email: Option<Email>,
    pub phone: String,
}

/// A conversation as the console lists it and the history shows it.
#[derive(Clone, Debug, Serialize)]
pub struct Conversation {
    pub id: Uuid,
    pub status: String,
    pub name: String,
    pub company: String,
    pub email: String,
    pub phone: String,
    pub page: String,
    pub language: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub closed_at: Option<OffsetDateTime>,
}

/// One message of a conversation.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ChatMessage {
    pub id: i64,
    pub conversation_id: Uuid,
    /// `visitor` or `operator`.
    pub sender: String,
    /// The operator's name; empty for the visitor.
    pub operator: String,
    pub body: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// A conversation with its transcript, as an extract lists it.
#[derive(Clone, Debug, Serialize)]
pub struct Transcript {
    pub conversation: Conversation,
    pub messages: Vec<ChatMessage>,
}

/// Tells every instance (each listening on `chat`) what changed; sent when the caller's
/// transaction commits. Ids only, except a new message, which goes whole (`M:` and its
/// JSON) when it fits, so that no instance reads it back; the database sees its text in
/// the INSERT already.
pub async fn notify(conn: &mut PgConnection, payload: &str) -> sqlx::Result<()> {
    sqlx::query!("SELECT pg_notify('chat', $1)", payload)
        .execute(conn)
        .await?;
    Ok(())
}

macro_rules! conversation_from_row {
    ($r:expr) => {
        Conversation {
            id: $r.id,
            status: $r.status,
            name: $r.name,
            company: $r.company,
            email: $r.email,
            phone: $r.phone,
            page: $r.page,
            language: $r.language,
            created_at: $r.created_at,
            closed_at: $r.closed_at,
        }
    };
}

/// Starts a conversation with its first message; returns its id.
#[allow(clippy::too_many_arguments)]
pub async fn start(
    conn: &mut PgConnection,
    token_hash: &[u8],
    client_hash: &[u8],
    visitor: &Visitor,
    page: &str,
    lang: Lang,
    first: &str,
) -> sqlx::Result<Uuid> {
    let id = Uuid::new_v4();
    sqlx::query!(
        "INSERT INTO chat_conversations (id, token_hash, client_hash, name, company, email, phone, page, language)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        id,
        token_hash,
        client_hash,
        visitor.name,
        visitor.company,
        visitor.email.as_ref().map_or("", Email::as_str),
        visitor.phone,
        page,
        lang.code(),
    )
    .execute(&mut *conn)
    .await?;
    audit::record(
        conn,
        Event::new(
            &Actor::Anonymous,
            "chat.start",
            ENTITY,
            Some(id.to_string()),
        )
        .with_fields(&["name", "company", "email", "phone", "page"]),
    )
    .await?;
    notify(conn, &format!("c:{id}")).await?;
    say(conn, id, None, first).await?;
    Ok(id)
}

/// The longest NOTIFY payload PostgreSQL takes is 8000 bytes.
const MAX_PAYLOAD: usize = 7900;

/// A chat message's transaction need not wait for the disk: should the database server
/// itself crash, the last moment of chat may be lost, never made inconsistent. The
/// relay's speed depends on it.
pub async fn without_flush(conn: &mut PgConnection) -> sqlx::Result<()> {
    sqlx::query!("SET LOCAL synchronous_commit = off")
        .execute(conn)
        .await?;
    Ok(())
}

/// Adds a message (from the visitor when `operator` is `None`; else the operator's id and
/// name) to a conversation that is not closed; an operator's answer opens a waiting one.
/// `None` if it is closed or gone.
pub async fn say(
    conn: &mut PgConnection,
    conversation: Uuid,
    operator: Option<(Uuid, &str)>,
    body: &str,
) -> sqlx::Result<Option<i64>> {
    let answering = operator.is_some();
    let before = sqlx::query_scalar!(
        "UPDATE chat_conversations c SET last_activity_at = now(),
             status = CASE WHEN $2 THEN 'open' ELSE c.status END
         FROM (SELECT id, status FROM chat_conversations WHERE id = $1 FOR UPDATE) old
         WHERE c.id = old.id AND old.status <> 'closed'
         RETURNING old.status",
        conversation,
        answering
    )
    .fetch_optional(&mut *conn)
    .await?;
    let Some(before) = before else {
        return Ok(None);
    };
    let sender = if operator.is_some() {
        "operator"
    } else {
        "visitor"
    };
    let row = sqlx::query!(
        "INSERT INTO chat_messages (conversation_id, sender, operator_id, body)
         VALUES ($1, $2, $3, $4) RETURNING id, created_at",
        conversation,
        sender,
        operator.map(|(id, _)| id),
        body
    )
    .fetch_one(&mut *conn)
    .await?;
    let id = row.id;
    let message = ChatMessage {
        id,
        conversation_id: conversation,
        sender: sender.into(),
        operator: operator
            .map(|(_, name)| name.to_string())
            .unwrap_or_default(),
        body: body.into(),
        created_at: row.created_at,
    };
    let whole = serde_json::to_string(&message)
        .map(|json| format!("M:{json}"))
        .ok()
        .filter(|p| p.len() <= MAX_PAYLOAD);
    let payload = whole.unwrap_or_else(|| format!("m:{conversation}:{id}"));
    notify(conn, &payload).await?;
    if answering && before == "waiting" {
        notify(conn, &format!("c:{conversation}")).await?;
    }
    Ok(Some(id))
}

/// The page the visitor is on now (R-CHAT-7).
pub async fn set_page(conn: &mut PgConnection, conversation: Uuid, page: &str) -> sqlx::Result<()> {
    let changed = sqlx::query!(
        "UPDATE chat_conversations SET page = $2 WHERE id = $1 AND status <> 'closed' AND page <> $2",
        conversation,
        page
    )
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if changed > 0 {
        notify(conn, &format!("c:{conversation}")).await?;
    }
    Ok(())
}

/// Closes a conversation and queues its transcript to the info address and every chat
/// operator (R-CHAT-3). `false` if it was closed already.
pub async fn close(
    conn: &mut PgConnection,
    config: &Config,
    conversation: Uuid,
    actor: &Actor,
) -> anyhow::Result<bool> {
    let closed = sqlx::query!(
        "UPDATE chat_conversations SET status = 'closed', closed_at = now()
         WHERE id = $1 AND status <> 'closed'",
        conversation
    )
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if closed == 0 {
        return Ok(false);
    }
    audit::record(
        conn,
        Event::new(actor, "chat.close", ENTITY, Some(conversation.to_string())),
    )
    .await?;
    notify(conn, &format!("c:{conversation}")).await?;
    mail_transcript(conn, config, conversation).await?;
    Ok(true)
}

async fn mail_transcript(
    conn: &mut PgConnection,
    config: &Config,
    conversation: Uuid,
) -> anyhow::Result<()> {
    let Some(transcript) = transcript(conn, conversation).await? else {
        return Ok(());
    };
    let c = &transcript.conversation;
    let hhmm = format_description!("[hour]:[minute]");
    let visitor = if c.name.is_empty() {
        Tr(Lang::Sv).get("chat.visitor").to_string()
    } else {
        c.name.clone()
    };
    let operators = sqlx::query!(
        r#"SELECT email, coalesce(language, 'sv') AS "language!" FROM users
           WHERE chat_operator AND disabled_at IS NULL ORDER BY email"#
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut recipients = vec![(config.info_address.to_string(), Lang::Sv)];
    recipients.extend(
        operators
            .into_iter()
            .map(|o| (o.email, Lang::parse(&o.language).unwrap_or(Lang::Sv))),
    );
    for (recipient, lang) in recipients {
        let t = Tr(lang);
        let kind = ChatTranscript {
            name: c.name.clone(),
            company: c.company.clone(),
            email: c.email.clone(),
            phone: c.phone.clone(),
            page: c.page.clone(),
            started: c
                .created_at
                .format(format_description!(
                    "[year]-[month]-[day] [hour]:[minute] UTC"
                ))
                .unwrap_or_default(),
            lines: transcript
                .messages
                .iter()
                .map(|m| TranscriptLine {
                    at: m.created_at.format(hhmm).unwrap_or_default(),
                    who: if m.sender == "visitor" {
                        visitor.clone()
                    } else if m.operator.is_empty() {
                        t.get("chat.operator").to_string()
                    } else {
                        m.operator.clone()
                    },
                    text: m.body.clone(),
                })
                .collect(),
            link: config.absolute_url(&format!("/chat/history/{conversation}")),
        };
        let mail = Mail::compose(config, &recipient, lang, &kind)?;
        mail::enqueue(conn, &mail).await?;
    }
    Ok(())
}

pub async fn find(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<Option<Conversation>> {
    let row = sqlx::query!(
        "SELECT id, status, name, company, email, phone, page, language, created_at, closed_at
         FROM chat_conversations WHERE id = $1",
        id
    )
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|r| conversation_from_row!(r)))
}

/// The open (or waiting) conversation a visitor's token belongs to.
pub async fn find_live_by_token(
    conn: &mut PgConnection,
    token_hash: &[u8],
) -> sqlx::Result<Option<Conversation>> {
    let row = sqlx::query!(
        "SELECT id, status, name, company, email, phone, page, language, created_at, closed_at
         FROM chat_conversations WHERE token_hash = $1 AND status <> 'closed'",
        token_hash
    )
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|r| conversation_from_row!(r)))
}

/// Waiting and open conversations, oldest first.
pub async fn live(conn: &mut PgConnection) -> sqlx::Result<Vec<Conversation>> {
    let rows = sqlx::query!(
        "SELECT id, status, name, company, email, phone, page, language, created_at, closed_at
         FROM chat_conversations WHERE status <> 'closed' ORDER BY created_at LIMIT 500"
    )
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| conversation_from_row!(r))
        .collect())
}

/// How many conversations of this client are not closed.
pub async fn live_of_client(conn: &mut PgConnection, client_hash: &[u8]) -> sqlx::Result<i64> {
    sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM chat_conversations WHERE client_hash = $1 AND status <> 'closed'"#,
        client_hash
    )
    .fetch_one(conn)
    .await
}

/// How many conversations wait for their first answer.
pub async fn waiting(conn: &mut PgConnection) -> sqlx::Result<i64> {
    sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM chat_conversations WHERE status = 'waiting'"#
    )
    .fetch_one(conn)
    .await
}

pub async fn message(conn: &mut PgConnection, id: i64) -> sqlx::Result<Option<ChatMessage>> {
    let row = sqlx::query!(
        r#"SELECT m.id, m.conversation_id, m.sender, coalesce(u.name, '') AS "operator!", m.body, m.created_at
           FROM chat_messages m LEFT JOIN users u ON u.id = m.operator_id WHERE m.id = $1"#,
        id
    )
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|r| ChatMessage {
        id: r.id,
        conversation_id: r.conversation_id,
        sender: r.sender,
        operator: r.operator,
        body: r.body,
        created_at: r.created_at,
    }))
}

pub async fn messages(
    conn: &mut PgConnection,
    conversation: Uuid,
) -> sqlx::Result<Vec<ChatMessage>> {
    let rows = sqlx::query!(
        r#"SELECT m.id, m.conversation_id, m.sender, coalesce(u.name, '') AS "operator!", m.body, m.created_at
           FROM chat_messages m LEFT JOIN users u ON u.id = m.operator_id
           WHERE m.conversation_id = $1 ORDER BY m.id"#,
        conversation
    )
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| ChatMessage {
            id: r.id,
            conversation_id: r.conversation_id,
            sender: r.sender,
            operator: r.operator,
            body: r.body,
            created_at: r.created_at,
        })
        .collect())
}

pub async fn transcript(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<Option<Transcript>> {
    let Some(conversation) = find(conn, id).await? else {
        return Ok(None);
    };
    let messages = messages(conn, id).await?;
    Ok(Some(Transcript {
        conversation,
        messages,
    }))
}

/// Conversations, newest first, whose visitor details or messages contain `search`
/// (ignoring case); everything when it is empty. At most `limit`, before `before`.
pub async fn search(
    conn: &mut PgConnection,
    search: &str,
    before: Option<OffsetDateTime>,
    limit: i64,
) -> sqlx::Result<Vec<Conversation>> {
    let pattern = format!(
        "%{}%",
        search
            .trim()
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_")
    );
    let rows = sqlx::query!(
        "SELECT c.id, c.status, c.name, c.company, c.email, c.phone, c.page, c.language, c.created_at, c.closed_at
         FROM chat_conversations c
         WHERE ($2::timestamptz IS NULL OR c.created_at < $2)
           AND ($1 = '%%' OR c.name ILIKE $1 OR c.company ILIKE $1 OR c.email ILIKE $1 OR c.phone ILIKE $1
                OR EXISTS (SELECT 1 FROM chat_messages m WHERE m.conversation_id = c.id AND m.body ILIKE $1))
         ORDER BY c.created_at DESC LIMIT $3",
        pattern,
        before,
        limit
    )
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| conversation_from_row!(r))
        .collect())
}

/// Deletes a conversation and its messages (R-CHAT-6), audited.
pub async fn delete(conn: &mut PgConnection, id: Uuid, actor: &Actor) -> sqlx::Result<bool> {
    let deleted = sqlx::query!("DELETE FROM chat_conversations WHERE id = $1", id)
        .execute(&mut *conn)
        .await?
        .rows_affected()
        == 1;
    if deleted {
        audit::record(
            conn,
            Event::new(actor, "chat.delete", ENTITY, Some(id.to_string())),
        )
        .await?;
        notify(conn, &format!("c:{id}")).await?;
    }
    Ok(deleted)
}

pub async fn with_email(conn: &mut PgConnection, email: &Email) -> sqlx::Result<Vec<Uuid>> {
    sqlx::query_scalar!(
        "SELECT id FROM chat_conversations WHERE lower(email) = lower($1) ORDER BY created_at",
        email.as_str()
    )
    .fetch_all(conn)
    .await
}

pub async fn delete_with_email(conn: &mut PgConnection, email: &Email) -> sqlx::Result<u64> {
    Ok(sqlx::query!(
        "DELETE FROM chat_conversations WHERE lower(email) = lower($1)",
        email.as_str()
    )
    .execute(conn)
    .await?
    .rows_affected())
}

/// One batch of conversations closed before `before`, deleted; returns their ids.
pub async fn delete_closed_before(
    conn: &mut PgConnection,
    before: OffsetDateTime,
    limit: i64,
) -> sqlx::Result<Vec<Uuid>> {
    sqlx::query_scalar!(
        "DELETE FROM chat_conversations WHERE id IN (
             SELECT id FROM chat_conversations WHERE status = 'closed' AND closed_at < $1
             LIMIT $2 FOR UPDATE SKIP LOCKED)
         RETURNING id",
        before,
        limit
    )
    .fetch_all(conn)
    .await
}

/// Conversations with no message since `before`: the visitor has gone.
pub async fn idle_since(
    conn: &mut PgConnection,
    before: OffsetDateTime,
    limit: i64,
) -> sqlx::Result<Vec<Uuid>> {
    sqlx::query_scalar!(
        "SELECT id FROM chat_conversations WHERE status <> 'closed' AND last_activity_at < $1
         ORDER BY last_activity_at LIMIT $2",
        before,
        limit
    )
    .fetch_all(conn)
    .await
}

/// An operator console opened, is still open, or closed.
pub async fn present(conn: &mut PgConnection, connection: Uuid, user: Uuid) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO chat_presence (connection_id, user_id) VALUES ($1, $2)
         ON CONFLICT (connection_id) DO UPDATE SET seen_at = now()",
        connection,
        user
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn absent(conn: &mut PgConnection, connection: Uuid) -> sqlx::Result<()> {
    sqlx::query!(
        "DELETE FROM chat_presence WHERE connection_id = $1",
        connection
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Whether any operator has a console open (on any instance).
pub async fn operators_online(conn: &mut PgConnection) -> sqlx::Result<bool> {
    sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM chat_presence WHERE seen_at > now() - interval '2 minutes') AS "online!""#
    )
    .fetch_one(conn)
    .await
}
