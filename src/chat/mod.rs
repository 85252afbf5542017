//! The website chat (R-CHAT-1 … R-CHAT-7): a widget of our own (`static/chat.js`) that any
//! page of the company's site carries with one script tag, live over a WebSocket; the
//! operators' console; transcripts mailed when a chat closes; the history, searched and
//! deleted by operators and the administrator; fan-out across instances through
//! PostgreSQL's LISTEN/NOTIFY.

mod console;
pub mod hub;
mod pages;
mod retention;
mod store;
mod visitor;

use sqlx::PgConnection;

pub use hub::Hub;
pub use retention::job as retention_job;
pub use store::{ChatMessage, Conversation, Transcript};

use crate::{
    domain::Email,
    error::AppError,
    web::{Access, Section},
};

pub fn sections() -> Vec<Section> {
    vec![
        Section::new(Access::Anyone)
            .get("/chat", pages::page)
            .get("/chat/ws", pages::visitor_socket),
        Section::new(Access::ChatOperator)
            .get("/chat/console", pages::console_page)
            .get("/chat/console/ws", pages::console_socket)
            .get("/chat/history", pages::history)
            .get("/chat/history/{id}", pages::transcript)
            .post("/chat/history/{id}/delete", pages::delete),
    ]
}

/// Every conversation whose visitor gave this address, with its transcript.
pub async fn held_about(
    conn: &mut PgConnection,
    email: &Email,
) -> Result<Vec<Transcript>, AppError> {
    let mut held = Vec::new();
    for id in store::with_email(conn, email).await? {
        if let Some(transcript) = store::transcript(conn, id).await? {
            held.push(transcript);
        }
    }
    Ok(held)
}

/// Deletes every conversation whose visitor gave this address, in the caller's
/// transaction (which writes the audit row); returns how many.
pub async fn erase_about(conn: &mut PgConnection, email: &Email) -> Result<u64, AppError> {
    Ok(store::delete_with_email(conn, email).await?)
}
