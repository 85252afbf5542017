//! `personnel-retention`: deletes what the schedule of an ended employment says is due
//! (R-PERS-5), in batches, each with its audit rows. Running it again deletes nothing more.

use std::time::Duration;

use sqlx::{PgConnection, PgPool};
use time::{Date, OffsetDateTime};
use uuid::Uuid;

use super::employees::{ENTITY, NOT_REQUIRED};
use crate::{
    audit::{self, Actor, Event},
    config::Config,
    jobs::{BATCH, Job, JobFuture},
};

const ACTOR: Actor = Actor::System("personnel-retention");

pub fn job() -> Job {
    Job {
        name: "personnel-retention",
        every: Duration::from_secs(6 * 60 * 60),
        run,
    }
}

/// What falls due, in the order it does.
#[derive(Clone, Copy)]
enum Group {
    /// Education, experience, courses, home address, private e-mail.
    Private,
    /// Identity code, bank account, salary data.
    Payroll,
    /// The rest: the whole record.
    Record,
}

impl Group {
    fn audit(self) -> (&'static str, &'static [&'static str]) {
        match self {
            Group::Private => ("employee.retention", &NOT_REQUIRED),
            Group::Payroll => (
                "employee.retention",
                &["identity_code", "bank_account", "salary"],
            ),
            Group::Record => ("employee.delete", &[]),
        }
    }

    /// Deletes one batch of what is due on `today`; returns whose.
    async fn batch(self, conn: &mut PgConnection, today: Date) -> sqlx::Result<Vec<Uuid>> {
        match self {
            Group::Private => {
                sqlx::query_scalar!(
                    "UPDATE employees SET email = NULL, home_address = NULL, education = NULL,
                         experience = NULL, courses = NULL
                     WHERE id IN (SELECT id FROM employees
                                  WHERE private_until < $1
                                    AND (email IS NOT NULL OR home_address IS NOT NULL
                                         OR education IS NOT NULL OR experience IS NOT NULL
                                         OR courses IS NOT NULL)
                                  LIMIT $2 FOR UPDATE SKIP LOCKED)
                     RETURNING id",
                    today,
                    BATCH
                )
                .fetch_all(conn)
                .await
            }
            Group::Payroll => {
                sqlx::query_scalar!(
                    "UPDATE employees SET identity_code = NULL, identity_code_hash = NULL,
                         bank_account = NULL, salary = NULL
                     WHERE id IN (SELECT id FROM employees
                                  WHERE payroll_until < $1
                                    AND (identity_code IS NOT NULL OR bank_account IS NOT NULL
                                         OR salary IS NOT NULL)
                                  LIMIT $2 FOR UPDATE SKIP LOCKED)
                     RETURNING id",
                    today,
                    BATCH
                )
                .fetch_all(conn)
                .await
            }
            Group::Record => {
                sqlx::query_scalar!(
                    "DELETE FROM employees
                     WHERE id IN (SELECT id FROM employees WHERE record_until < $1
                                  LIMIT $2 FOR UPDATE SKIP LOCKED)
                     RETURNING id",
                    today,
                    BATCH
                )
                .fetch_all(conn)
                .await
            }
        }
    }
}

/// The schedule's days are the last kept: what is due goes on the day after.
fn run<'c>(pool: &'c PgPool, at: OffsetDateTime, _config: &'c Config) -> JobFuture<'c> {
    Box::pin(async move {
        let today = at.date();
        let mut done = [0; 3];
        for (group, count) in [Group::Private, Group::Payroll, Group::Record]
            .into_iter()
            .zip(&mut done)
        {
            let (action, fields) = group.audit();
            loop {
                let mut tx = pool.begin().await?;
                let ids = group.batch(&mut tx, today).await?;
                for id in &ids {
                    let event = Event::new(&ACTOR, action, ENTITY, Some(id.to_string()));
                    audit::record(&mut tx, event.with_fields(fields)).await?;
                }
                tx.commit().await?;
                *count += ids.len();
                if (ids.len() as i64) < BATCH {
                    break;
                }
            }
        }
        let [private, payroll, records] = done;
        Ok(format!(
            "cleared private data of {private}, payroll data of {payroll} former employees; deleted {records} records"
        ))
    })
}
