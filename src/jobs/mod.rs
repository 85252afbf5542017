//! Periodic jobs. Each has a name, an interval and a run function; a run holds a
//! transaction-scoped advisory lock on the job's name, so two instances never run the same
//! job at once, and each job is written so that running it twice changes nothing more.

mod housekeeping;

use std::{future::Future, pin::Pin, sync::Arc, time::Duration};

use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use crate::config::Config;

pub type JobFuture<'c> = Pin<Box<dyn Future<Output = anyhow::Result<String>> + Send + 'c>>;

/// A periodic job. `run` gets the transaction, the instant it should act as if it were,
/// and the configuration; it returns one line saying what it did.
pub struct Job {
    pub name: &'static str,
    pub every: Duration,
    pub run: for<'c> fn(&'c mut PgConnection, OffsetDateTime, &'c Config) -> JobFuture<'c>,
}

/// Every job, in the order `jobs run-once` runs them.
pub fn all() -> Vec<Job> {
    let mut all = housekeeping::jobs();
    all.extend(crate::customers::jobs());
    all
}

/// What one job did in a run.
#[derive(Debug)]
pub struct Report {
    pub job: &'static str,
    pub outcome: String,
    /// The job failed (and changed nothing: its transaction rolled back).
    pub failed: bool,
}

/// Runs one job in its own transaction, unless another instance is running it.
pub async fn run_job(
    pool: &PgPool,
    job: &Job,
    at: OffsetDateTime,
    config: &Config,
) -> anyhow::Result<Report> {
    let mut tx = pool.begin().await?;
    let key = format!("job:{}", job.name);
    let locked = sqlx::query_scalar!("SELECT pg_try_advisory_xact_lock(hashtext($1))", key)
        .fetch_one(&mut *tx)
        .await?
        .unwrap_or(false);
    if !locked {
        return Ok(Report {
            job: job.name,
            outcome: "skipped: running on another instance".into(),
            failed: false,
        });
    }
    let outcome = (job.run)(&mut tx, at, config).await?;
    tx.commit().await?;
    Ok(Report {
        job: job.name,
        outcome,
        failed: false,
    })
}

/// Runs every job once as if the clock read `at`; a job that fails does not keep the
/// others from running.
pub async fn run_once(pool: &PgPool, at: OffsetDateTime, config: &Config) -> Vec<Report> {
    let mut reports = Vec::new();
    for job in all() {
        let report = run_job(pool, &job, at, config)
            .await
            .unwrap_or_else(|e| Report {
                job: job.name,
                outcome: format!("failed: {e:#}"),
                failed: true,
            });
        reports.push(report);
    }
    reports
}

/// Runs each job at its interval until cancelled.
pub async fn run_scheduler(pool: PgPool, config: Arc<Config>, stop: CancellationToken) {
    let mut tasks = tokio::task::JoinSet::new();
    for job in all() {
        let (pool, config, stop) = (pool.clone(), config.clone(), stop.clone());
        tasks.spawn(async move {
            let mut interval = tokio::time::interval(job.every);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    () = stop.cancelled() => return,
                    _ = interval.tick() => {}
                }
                match run_job(&pool, &job, OffsetDateTime::now_utc(), &config).await {
                    Ok(report) => {
                        tracing::info!(job = report.job, outcome = %report.outcome, "job ran")
                    }
                    Err(e) => {
                        tracing::error!(job = job.name, error = format!("{e:#}"), "job failed")
                    }
                }
            }
        });
    }
    while tasks.join_next().await.is_some() {}
}
