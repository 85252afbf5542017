//! One-time messages shown on the next page (after a redirect).

use serde::{Deserialize, Serialize};
use tower_sessions::Session;

use crate::error::AppError;

const SESSION_KEY: &str = "flash";

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Flash {
    /// `success` or `error`: also the CSS class.
    pub kind: String,
    /// A translation key.
    pub message: String,
}

pub async fn success(session: &Session, message: &str) -> Result<(), AppError> {
    push(session, "success", message).await
}

pub async fn error(session: &Session, message: &str) -> Result<(), AppError> {
    push(session, "error", message).await
}

async fn push(session: &Session, kind: &str, message: &str) -> Result<(), AppError> {
    let mut all: Vec<Flash> = session.get(SESSION_KEY).await?.unwrap_or_default();
    all.push(Flash {
        kind: kind.into(),
        message: message.into(),
    });
    session.insert(SESSION_KEY, all).await?;
    Ok(())
}

/// The waiting messages, removed. A session with none is left unmodified (no write).
pub async fn take(session: &Session) -> Result<Vec<Flash>, AppError> {
    if session.get_value(SESSION_KEY).await?.is_none() {
        return Ok(Vec::new());
    }
    Ok(session.remove(SESSION_KEY).await?.unwrap_or_default())
}
