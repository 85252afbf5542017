//! Once a day the head of the chain (its newest row and hash) is written to the log and
//! mailed to the info address. Removing the newest rows leaves a chain that is whole in
//! itself; checked against a head kept outside (`audit verify --head`), it is not.

use std::time::Duration;

use sqlx::PgPool;
use time::OffsetDateTime;

use super::{Actor, Event, head, record, seal};
use crate::{
    config::Config,
    jobs::{Job, JobFuture},
    mail::{self, Mail, kinds::AuditHead},
    web::Lang,
};

pub fn job() -> Job {
    Job {
        name: "audit-head",
        every: Duration::from_secs(60 * 60),
        run,
    }
}

fn run<'c>(pool: &'c PgPool, at: OffsetDateTime, config: &'c Config) -> JobFuture<'c> {
    Box::pin(async move {
        seal(pool).await?;
        let mut tx = pool.begin().await?;
        let today = at.date().midnight().assume_utc();
        let sent_today = sqlx::query_scalar!(
            r#"SELECT EXISTS (SELECT 1 FROM audit_log WHERE action = 'audit.head' AND at >= $1) AS "sent!""#,
            today
        )
        .fetch_one(&mut *tx)
        .await?;
        let Some(head) = head(&mut tx).await? else {
            return Ok("the audit log is empty".into());
        };
        if sent_today {
            return Ok("today's head was sent already".into());
        }
        let hash = hex::encode(&head.hash);
        record(
            &mut tx,
            Event::new(
                &Actor::System("audit-head"),
                "audit.head",
                "audit_log",
                Some(format!("{}:{hash}", head.seq)),
            ),
        )
        .await?;
        // The company's staff speak Swedish: the info address gets Swedish.
        let head_mail = AuditHead {
            row: head.seq,
            hash,
            day: crate::web::day(&at),
        };
        let mail = Mail::compose(
            config,
            config.info_address.email.as_ref(),
            Lang::Sv,
            &head_mail,
        )?;
        mail::enqueue(&mut tx, &mail).await?;
        tx.commit().await?;
        Ok(format!("the head (row {}) was logged and mailed", head.seq))
    })
}
