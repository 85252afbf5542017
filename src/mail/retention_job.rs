//! The stored copies of mails go once the retention period has passed.

use std::time::Duration;

use sqlx::PgPool;
use time::OffsetDateTime;

use crate::{
    config::Config,
    jobs::{Job, JobFuture},
};

pub fn job() -> Job {
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
        let removed = super::remove_before(conn, before, &config.outbox_dir()).await?;
        Ok(format!(
            "removed {} delivered or failed mails older than the retention period, {} .eml files",
            removed.mails, removed.files
        ))
    })
}
