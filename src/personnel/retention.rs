//! `personnel-retention`: deletes what the schedule of an ended employment says is due
//! (R-PERS-5), in batches, each with its audit rows. Running it again deletes nothing more.

use std::time::Duration;

use sqlx::PgPool;
use time::OffsetDateTime;

use super::employees::ENTITY;
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

/// The groups, in the order they fall due.
const PRIVATE: &[&str] = &[
    "email",
    "home_address",
    "education",
    "experience",
    "courses",
];
const PAYROLL: &[&str] = &["identity_code", "bank_account", "salary"];

fn run<'c>(pool: &'c PgPool, at: OffsetDateTime, _config: &'c Config) -> JobFuture<'c> {
    Box::pin(async move {
        let today = at.date();
        let (mut private, mut payroll, mut records) = (0, 0, 0);
        loop {
            let mut tx = pool.begin().await?;
            let ids = sqlx::query_scalar!(
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
            .fetch_all(&mut *tx)
            .await?;
            for id in &ids {
                let event = Event::new(&ACTOR, "employee.retention", ENTITY, Some(id.to_string()));
                audit::record(&mut tx, event.with_fields(PRIVATE)).await?;
            }
            tx.commit().await?;
            private += ids.len();
            if (ids.len() as i64) < BATCH {
                break;
            }
        }
        loop {
            let mut tx = pool.begin().await?;
            let ids = sqlx::query_scalar!(
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
            .fetch_all(&mut *tx)
            .await?;
            for id in &ids {
                let event = Event::new(&ACTOR, "employee.retention", ENTITY, Some(id.to_string()));
                audit::record(&mut tx, event.with_fields(PAYROLL)).await?;
            }
            tx.commit().await?;
            payroll += ids.len();
            if (ids.len() as i64) < BATCH {
                break;
            }
        }
        loop {
            let mut tx = pool.begin().await?;
            let ids = sqlx::query_scalar!(
                "DELETE FROM employees
                 WHERE id IN (SELECT id FROM employees WHERE record_until < $1
                              LIMIT $2 FOR UPDATE SKIP LOCKED)
                 RETURNING id",
                today,
                BATCH
            )
            .fetch_all(&mut *tx)
            .await?;
            for id in &ids {
                let event = Event::new(&ACTOR, "employee.delete", ENTITY, Some(id.to_string()));
                audit::record(&mut tx, event).await?;
            }
            tx.commit().await?;
            records += ids.len();
            if (ids.len() as i64) < BATCH {
                break;
            }
        }
        Ok(format!(
            "cleared private data of {private}, payroll data of {payroll} former employees; deleted {records} records"
        ))
    })
}
