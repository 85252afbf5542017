//! Keeps no sign-in data longer than needed: expired sessions, login counters whose
//! window has passed, and links past their expiry.

use std::time::Duration;

use sqlx::PgPool;
use time::OffsetDateTime;

use super::{Job, JobFuture};
use crate::{auth, config::Config, tokens};

pub fn job() -> Job {
    Job {
        name: "session-cleanup",
        every: Duration::from_secs(15 * 60),
        run,
    }
}

fn run<'c>(pool: &'c PgPool, at: OffsetDateTime, config: &'c Config) -> JobFuture<'c> {
    Box::pin(async move {
        let mut conn = pool.acquire().await?;
        let sessions = sqlx::query!(
            "DELETE FROM tower_sessions.session WHERE expiry_date < $1",
            at
        )
        .execute(&mut *conn)
        .await?
        .rows_affected();
        let throttles = auth::remove_expired_throttles(&mut conn, at, config).await?;
        let links = tokens::remove_expired(&mut conn, at).await?;
        Ok(format!(
            "removed {sessions} expired sessions, {throttles} passed login throttles, {links} expired links"
        ))
    })
}
