//! Clean-up that keeps no data longer than needed: expired sessions, old login failures
//! and used or expired links, and the stored copies of mails once delivered.

use std::time::Duration;

use sqlx::PgConnection;
use time::OffsetDateTime;

use super::{Job, JobFuture};
use crate::config::Config;

pub fn jobs() -> Vec<Job> {
    vec![
        Job {
            name: "session-cleanup",
            every: Duration::from_secs(15 * 60),
            run: session_cleanup,
        },
        Job {
            name: "sent-mail-retention",
            every: Duration::from_secs(60 * 60),
            run: sent_mail_retention,
        },
    ]
}

fn session_cleanup<'c>(
    conn: &'c mut PgConnection,
    at: OffsetDateTime,
    config: &'c Config,
) -> JobFuture<'c> {
    Box::pin(async move {
        let sessions = sqlx::query!(
            "DELETE FROM tower_sessions.session WHERE expiry_date < $1",
            at
        )
        .execute(&mut *conn)
        .await?
        .rows_affected();
        let failures = crate::auth::remove_expired_throttles(conn, at, config).await?;
        let links = crate::tokens::remove_expired(conn, at).await?;
        Ok(format!(
            "removed {sessions} expired sessions, {failures} passed login throttles, {links} expired links"
        ))
    })
}

fn sent_mail_retention<'c>(
    conn: &'c mut PgConnection,
    at: OffsetDateTime,
    config: &'c Config,
) -> JobFuture<'c> {
    Box::pin(async move {
        let before = at - config.sent_mail_retention;
        let removed = crate::mail::remove_before(conn, before, &config.outbox_dir()).await?;
        Ok(format!(
            "removed {} delivered or failed mails older than the retention period, {} .eml files",
            removed.mails, removed.files
        ))
    })
}
