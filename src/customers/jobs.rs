//! The customer register's retention rules, as periodic jobs.

use std::time::Duration as StdDuration;

use sqlx::PgConnection;
use time::{Duration, OffsetDateTime};

use super::{
    contacts::{self, Erasure},
    quarantine, years_before,
};
use crate::{
    audit::Actor,
    config::Config,
    jobs::{Job, JobFuture},
};

pub fn jobs() -> Vec<Job> {
    vec![
        Job {
            name: "quarantine",
            every: StdDuration::from_secs(15 * 60),
            run: quarantine_job,
        },
        Job {
            name: "inactivity-sweep",
            every: StdDuration::from_secs(6 * 60 * 60),
            run: inactivity_sweep,
        },
    ]
}

const JOB: Actor = Actor::System("jobs");

/// Deletes people by a retention rule (no suppression: they did not ask).
async fn delete_all(
    conn: &mut PgConnection,
    ids: &[uuid::Uuid],
    rule: &'static str,
) -> sqlx::Result<()> {
    for id in ids {
        contacts::delete_contact(conn, *id, &JOB, Erasure::Retention(rule)).await?;
    }
    Ok(())
}

/// Reminds the unconfirmed on the reminder days (one mail per run, however many days were
/// missed) and deletes those still unconfirmed when the quarantine period ends (R-CUST-12).
fn quarantine_job<'c>(
    conn: &'c mut PgConnection,
    at: OffsetDateTime,
    config: &'c Config,
) -> JobFuture<'c> {
    Box::pin(async move {
        let period = Duration::days(config.quarantine_days.into());
        let expired = sqlx::query_scalar!(
            "SELECT id FROM contacts WHERE status = 'quarantine' AND created_at + make_interval(days => $2) <= $1",
            at,
            config.quarantine_days as i32
        )
        .fetch_all(&mut *conn)
        .await?;
        delete_all(conn, &expired, "contact.quarantine_expired").await?;
        let first_day = config.reminder_days.first().copied().unwrap_or(u32::MAX);
        let candidates = sqlx::query!(
            r#"SELECT c.id, c.created_at,
                      coalesce((SELECT max(day) FROM quarantine_reminders r WHERE r.contact_id = c.id), 0) AS "last_day!"
               FROM contacts c
               WHERE c.status = 'quarantine' AND c.created_at + make_interval(days => $2) <= $1"#,
            at,
            first_day.min(i32::MAX as u32) as i32
        )
        .fetch_all(&mut *conn)
        .await?;
        let mut reminded = 0;
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
            let Some(contact) = contacts::find(conn, c.id).await? else {
                continue;
            };
            quarantine::send_request(conn, config, &contact, true).await?;
            sqlx::query!(
                "INSERT INTO quarantine_reminders (contact_id, day) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                c.id,
                day as i32
            )
            .execute(&mut *conn)
            .await?;
            reminded += 1;
        }
        Ok(format!(
            "sent {reminded} reminders, deleted {} unconfirmed contacts",
            expired.len()
        ))
    })
}

/// Deletes people with no communication for the inactivity period (R-CUST-7).
fn inactivity_sweep<'c>(
    conn: &'c mut PgConnection,
    at: OffsetDateTime,
    config: &'c Config,
) -> JobFuture<'c> {
    Box::pin(async move {
        let before = years_before(at, config.inactivity_years);
        let due = sqlx::query_scalar!(
            "SELECT id FROM contacts WHERE status <> 'quarantine' AND last_communication_at < $1",
            before
        )
        .fetch_all(&mut *conn)
        .await?;
        delete_all(conn, &due, "contact.inactivity_expired").await?;
        Ok(format!(
            "deleted {} contacts with no communication for {} years",
            due.len(),
            config.inactivity_years
        ))
    })
}
