//! A login halfway: the password was right, and the second factor's code is awaited.
//! The session holds who is logging in, but nobody is signed in until the code is right.

use tower_sessions::Session;
use uuid::Uuid;

use super::{auth_stamp, now_ms};
use crate::{
    error::AppError,
    state::AppState,
    users::{self, User},
};

const USER_ID: &str = "pending_user_id";
const STAMP: &str = "pending_stamp";
const AT: &str = "pending_at_ms";
const NEXT: &str = "pending_next";
/// Time enough to open the app and type a code.
const VALID_MS: i64 = 5 * 60 * 1000;

/// Remembers the user who gave the right password, with a new session id.
pub async fn begin(session: &Session, user: &User, next: &str) -> Result<(), AppError> {
    session.cycle_id().await?;
    session.insert(USER_ID, user.id).await?;
    session.insert(STAMP, auth_stamp(user)).await?;
    session.insert(AT, now_ms()).await?;
    session.insert(NEXT, next).await?;
    Ok(())
}

/// The user halfway through logging in, and where they were going; `None` when nobody
/// is, or the wait has run out, or the account changed meanwhile.
pub async fn user(state: &AppState, session: &Session) -> Result<Option<(User, String)>, AppError> {
    let Some(user_id) = session.get::<Uuid>(USER_ID).await? else {
        return Ok(None);
    };
    let age = now_ms() - session.get::<i64>(AT).await?.unwrap_or(0);
    let stamp = session.get::<String>(STAMP).await?.unwrap_or_default();
    let next = session.get::<String>(NEXT).await?.unwrap_or_default();
    let mut conn = state.pool.acquire().await?;
    match users::find(&mut conn, user_id).await? {
        Some(user)
            if (0..VALID_MS).contains(&age)
                && user.is_active()
                && user.second_factor_since.is_some()
                && stamp == auth_stamp(&user) =>
        {
            Ok(Some((user, next)))
        }
        _ => {
            end(session).await?;
            Ok(None)
        }
    }
}

pub async fn end(session: &Session) -> Result<(), AppError> {
    for key in [USER_ID, STAMP, AT, NEXT] {
        session.remove_value(key).await?;
    }
    Ok(())
}
