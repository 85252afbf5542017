//! Periodic jobs. Each has a name, an interval and a run function, in a file of its own;
//! the list is assembled at start-up (`startup::jobs`). A run holds an advisory lock on
//! the job's name for as long as it runs, so two instances never run the same job at
//! once; a job commits in batches of a few hundred rows, so none holds up the requests,
//! and each is written so that running it twice changes nothing more.

pub mod session_cleanup;

use std::{future::Future, pin::Pin, sync::Arc, time::Duration};

use sqlx::PgPool;
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use crate::config::Config;

pub type JobFuture<'c> = Pin<Box<dyn Future<Output = anyhow::Result<String>> + Send + 'c>>;

/// A periodic job. `run` gets the pool (it makes its own transactions, a batch each), the
/// instant it should act as if it were, and the configuration; it returns one line saying
/// what it did.
pub struct Job {
    pub name: &'static str,
    pub every: Duration,
    pub run: for<'c> fn(&'c PgPool, OffsetDateTime, &'c Config) -> JobFuture<'c>,
}

/// Rows one transaction of a job takes at most.
pub const BATCH: i64 = 300;

/// What one job did in a run.
#[derive(Debug)]
pub struct Report {
    pub job: &'static str,
    pub outcome: String,
    /// The job failed (its current batch rolled back; earlier batches stay).
    pub failed: bool,
}

/// Runs one job, unless another instance is running it. The lock is held by a connection
/// of its own for the whole run, and goes with that connection if the process dies.
pub async fn run_job(
    pool: &PgPool,
    job: &Job,
    at: OffsetDateTime,
    config: &Config,
) -> anyhow::Result<Report> {
    let mut lock = pool.acquire().await?;
    let key = format!("job:{}", job.name);
    let locked = sqlx::query_scalar!("SELECT pg_try_advisory_lock(hashtext($1))", key)
        .fetch_one(&mut *lock)
        .await?
        .unwrap_or(false);
    if !locked {
        return Ok(Report {
            job: job.name,
            outcome: "skipped: running on another instance".into(),
            failed: false,
        });
    }
    let started = std::time::Instant::now();
    let outcome = (job.run)(pool, at, config).await;
    crate::metrics::job_ran(job.name, outcome.is_ok(), started.elapsed());
    sqlx::query_scalar!("SELECT pg_advisory_unlock(hashtext($1))", key)
        .fetch_one(&mut *lock)
        .await?;
    Ok(Report {
        job: job.name,
        outcome: outcome?,
        failed: false,
    })
}

/// Runs every job once as if the clock read `at`; a job that fails does not keep the
/// others from running. What it wrote before it failed stays: each batch is whole.
pub async fn run_once(
    pool: &PgPool,
    jobs: &[Job],
    at: OffsetDateTime,
    config: &Config,
) -> Vec<Report> {
    let mut reports = Vec::new();
    for job in jobs {
        let report = run_job(pool, job, at, config)
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
pub async fn run_scheduler(
    pool: PgPool,
    config: Arc<Config>,
    jobs: Vec<Job>,
    stop: CancellationToken,
) {
    let mut tasks = tokio::task::JoinSet::new();
    for job in jobs {
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
