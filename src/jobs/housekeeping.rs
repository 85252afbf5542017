//! The stored copies of mails go once the retention period has passed.

use std::time::Duration;

use sqlx::PgPool;
use time::OffsetDateTime;

use super::{Job, JobFuture};
use crate::config::Config;

pub fn sent_mail_retention_job() -> Job {
    Job {
        name: "sent-mail-retention",
        every: Duration::from_secs(60 * 60),
        run: sent_mail_retention,
    }
}

fn sent_mail_retention<'c>(
    pool: &'c PgPool,
    at: OffsetDateTime,
    config: &'c Config,
) -> JobFuture<'c> {
    Box::pin(async move {
        let conn = &mut *pool.acquire().await?;
        let before = at - config.sent_mail_retention;
        let removed = sqlx::query!(
            "DELETE FROM mail_outbox WHERE status IN ('sent', 'failed') AND created_at < $1",
            before
        )
        .execute(&mut *conn)
        .await?
        .rows_affected();
        Ok(format!(
            "removed {removed} delivered or failed mails older than the retention period"
        ))
    })
}
