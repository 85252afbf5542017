//! Deletes people with no communication for the inactivity period (R-CUST-7).

use std::time::Duration;

use sqlx::PgPool;
use time::OffsetDateTime;

use super::Due;
use crate::{
    config::Config,
    customers::years_before,
    jobs::{Job, JobFuture},
};

pub fn job() -> Job {
    Job {
        name: "inactivity-sweep",
        every: Duration::from_secs(6 * 60 * 60),
        run,
    }
}

fn run<'c>(pool: &'c PgPool, at: OffsetDateTime, config: &'c Config) -> JobFuture<'c> {
    Box::pin(async move {
        let before = years_before(at, config.inactivity_years);
        let deleted = Due::SilentSince(before).delete(pool).await?;
        Ok(format!(
            "deleted {} contacts with no communication for {} years, in {} transactions",
            deleted.people, config.inactivity_years, deleted.transactions
        ))
    })
}
