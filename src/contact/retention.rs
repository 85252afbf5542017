//! `contact-retention`: deletes contact-form messages older than
//! `CONTACT_RETENTION_DAYS` (R-FORM-5), in batches, each with its audit rows.

use std::time::Duration;

use sqlx::PgPool;
use time::OffsetDateTime;

use super::messages::{self, ENTITY};
use crate::{
    audit::{self, Actor, Event},
    config::Config,
    jobs::{BATCH, Job, JobFuture},
};

const ACTOR: Actor = Actor::System("contact-retention");

pub fn job() -> Job {
    Job {
        name: "contact-retention",
        every: Duration::from_secs(60 * 60),
        run,
    }
}

/// A message left exactly `CONTACT_RETENTION_DAYS` days ago is kept; older ones go.
fn run<'c>(pool: &'c PgPool, at: OffsetDateTime, config: &'c Config) -> JobFuture<'c> {
    Box::pin(async move {
        let before = at - time::Duration::days(config.contact_retention_days.into());
        let mut deleted = 0;
        loop {
            let mut tx = pool.begin().await?;
            let ids = messages::delete_before(&mut tx, before, BATCH).await?;
            for id in &ids {
                let event = Event::new(
                    &ACTOR,
                    "contact_message.delete",
                    ENTITY,
                    Some(id.to_string()),
                );
                audit::record(&mut tx, event).await?;
            }
            tx.commit().await?;
            deleted += ids.len();
            if (ids.len() as i64) < BATCH {
                break;
            }
        }
        Ok(format!("deleted {deleted} contact-form messages"))
    })
}
