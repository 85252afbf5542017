//! Reminds the unconfirmed on the reminder days (one mail per run, however many days were
//! missed) and deletes those still unconfirmed when the quarantine period ends (R-CUST-12).

use std::time::Duration as StdDuration;

use sqlx::PgPool;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use super::Due;
use crate::{
    config::Config,
    customers::{contacts, quarantine},
    jobs::{BATCH, Job, JobFuture},
};

pub fn job() -> Job {
    Job {
        name: "quarantine",
        every: StdDuration::from_secs(15 * 60),
        run,
    }
}

fn run<'c>(pool: &'c PgPool, at: OffsetDateTime, config: &'c Config) -> JobFuture<'c> {
    Box::pin(async move {
        let period = Duration::days(config.quarantine_days.into());
        let deleted = Due::UnconfirmedSince(at - period).delete(pool).await?;
        let reminded = remind(pool, at, config).await?;
        Ok(format!(
            "sent {reminded} reminders, deleted {} unconfirmed contacts in {} transactions",
            deleted.people, deleted.transactions
        ))
    })
}

/// Walks those past the first reminder day in batches, in the order of their ids.
async fn remind(pool: &PgPool, at: OffsetDateTime, config: &Config) -> anyhow::Result<u64> {
    let period = Duration::days(config.quarantine_days.into());
    let first_day = config.reminder_days.first().copied().unwrap_or(u32::MAX);
    let mut reminded = 0;
    let mut after = Uuid::nil();
    loop {
        let mut tx = pool.begin().await?;
        let candidates = sqlx::query!(
            r#"SELECT c.id, c.created_at,
                      coalesce((SELECT max(day) FROM quarantine_reminders r WHERE r.contact_id = c.id), 0) AS "last_day!"
               FROM contacts c
               WHERE c.status = 'quarantine' AND c.created_at + make_interval(days => $2) <= $1
                 AND c.id > $3
               ORDER BY c.id LIMIT $4"#,
            at,
            first_day.min(i32::MAX as u32) as i32,
            after,
            BATCH
        )
        .fetch_all(&mut *tx)
        .await?;
        let Some(last) = candidates.last() else {
            return Ok(reminded);
        };
        after = last.id;
        let full = candidates.len() as i64 == BATCH;
        for c in candidates {
            if c.created_at + period <= at {
                continue;
            }
            let due = config
                .reminder_days
                .iter()
                .copied()
                .filter(|d| {
                    c.created_at + Duration::days((*d).into()) <= at && *d as i32 > c.last_day
                })
                .max();
            let Some(day) = due else { continue };
            let Some(contact) = contacts::find(&mut tx, c.id).await? else {
                continue;
            };
            quarantine::send_request(&mut tx, config, &contact, true).await?;
            sqlx::query!(
                "INSERT INTO quarantine_reminders (contact_id, day) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                c.id,
                day as i32
            )
            .execute(&mut *tx)
            .await?;
            reminded += 1;
        }
        tx.commit().await?;
        if !full {
            return Ok(reminded);
        }
    }
}
