//! The process's counters, and their rendering in Prometheus' text format.

use std::{
    collections::BTreeMap,
    fmt::Write,
    sync::{
        Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use sqlx::PgPool;
use time::OffsetDateTime;

/// Upper bounds of the latency buckets, in seconds: from a cached page to a large import.
const BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Default)]
struct RouteStats {
    by_status: BTreeMap<u16, u64>,
    /// Requests at or below each bound (not cumulative; summed when rendered).
    buckets: [u64; BUCKETS.len()],
    count: u64,
    seconds: f64,
}

struct JobRun {
    at: OffsetDateTime,
    ok: bool,
    took: Duration,
}

/// Keyed by (method, route pattern); the routes are a fixed set, so the map stays small.
static REQUESTS: Mutex<BTreeMap<(String, String), RouteStats>> = Mutex::new(BTreeMap::new());
static JOBS: Mutex<BTreeMap<&'static str, JobRun>> = Mutex::new(BTreeMap::new());
static LOGINS_REFUSED: AtomicU64 = AtomicU64::new(0);
static LOCKOUTS: AtomicU64 = AtomicU64::new(0);

pub(super) fn request(method: &str, route: &str, status: u16, latency: Duration) {
    let mut requests = REQUESTS.lock().unwrap_or_else(|e| e.into_inner());
    let stats = requests
        .entry((method.to_owned(), route.to_owned()))
        .or_default();
    *stats.by_status.entry(status).or_default() += 1;
    let seconds = latency.as_secs_f64();
    if let Some(i) = BUCKETS.iter().position(|&bound| seconds <= bound) {
        stats.buckets[i] += 1;
    }
    stats.count += 1;
    stats.seconds += seconds;
}

/// A login refused: a wrong password or code, or any attempt during a lock-out.
pub fn login_refused() {
    LOGINS_REFUSED.fetch_add(1, Ordering::Relaxed);
}

/// A lock-out began.
pub fn lockout() {
    LOCKOUTS.fetch_add(1, Ordering::Relaxed);
}

/// A job ran in this process (a run skipped because another instance held the job's
/// lock is not one).
pub fn job_ran(job: &'static str, ok: bool, took: Duration) {
    let run = JobRun {
        at: OffsetDateTime::now_utc(),
        ok,
        took,
    };
    JOBS.lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(job, run);
}

/// What the database knows, read in one statement.
struct Backlog {
    queued: i64,
    sending: i64,
    failed: i64,
    oldest_queued_seconds: f64,
    unsealed: i64,
}

async fn backlog(pool: &PgPool) -> sqlx::Result<Backlog> {
    sqlx::query_as!(
        Backlog,
        r#"SELECT
             count(*) FILTER (WHERE status = 'queued') AS "queued!",
             count(*) FILTER (WHERE status = 'sending') AS "sending!",
             count(*) FILTER (WHERE status = 'failed') AS "failed!",
             coalesce(extract(epoch FROM now() - min(created_at) FILTER (WHERE status = 'queued'))::float8, 0) AS "oldest_queued_seconds!",
             (SELECT count(*) FROM audit_log WHERE seq IS NULL) AS "unsealed!"
           FROM mail_outbox WHERE status <> 'sent'"#
    )
    .fetch_one(pool)
    .await
}

/// One metric's HELP and TYPE lines.
fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// Escapes a label value (route patterns and job names hold no quotes, but be exact).
fn label(value: &str) -> String {
    value
        .replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('\n', r"\n")
}

pub(super) async fn render(pool: &PgPool) -> String {
    let mut out = String::new();
    render_requests(&mut out);
    render_jobs(&mut out);
    family(
        &mut out,
        "gdpr_logins_refused_total",
        "counter",
        "Logins refused: a wrong password or code, or an attempt during a lock-out.",
    );
    let _ = writeln!(
        out,
        "gdpr_logins_refused_total {}",
        LOGINS_REFUSED.load(Ordering::Relaxed)
    );
    family(
        &mut out,
        "gdpr_login_lockouts_total",
        "counter",
        "Lock-outs begun after too many failed logins.",
    );
    let _ = writeln!(
        out,
        "gdpr_login_lockouts_total {}",
        LOCKOUTS.load(Ordering::Relaxed)
    );
    family(
        &mut out,
        "gdpr_db_pool_connections",
        "gauge",
        "Database connections of the pool, in use and idle.",
    );
    let idle = pool.num_idle() as u64;
    let in_use = u64::from(pool.size()).saturating_sub(idle);
    let _ = writeln!(out, "gdpr_db_pool_connections{{state=\"in_use\"}} {in_use}");
    let _ = writeln!(out, "gdpr_db_pool_connections{{state=\"idle\"}} {idle}");
    family(
        &mut out,
        "gdpr_db_pool_max_connections",
        "gauge",
        "The most connections the pool opens.",
    );
    let _ = writeln!(
        out,
        "gdpr_db_pool_max_connections {}",
        pool.options().get_max_connections()
    );
    let backlog = backlog(pool).await;
    family(
        &mut out,
        "gdpr_database_up",
        "gauge",
        "Whether the database answered this scrape.",
    );
    let _ = writeln!(out, "gdpr_database_up {}", u8::from(backlog.is_ok()));
    match backlog {
        Ok(b) => render_backlog(&mut out, &b),
        Err(e) => tracing::warn!(error = %e, "metrics: reading the outbox and audit log"),
    }
    out
}

fn render_requests(out: &mut String) {
    let requests = REQUESTS.lock().unwrap_or_else(|e| e.into_inner());
    family(
        out,
        "gdpr_http_requests_total",
        "counter",
        "Requests answered, by method, route pattern and status.",
    );
    for ((method, route), stats) in requests.iter() {
        for (status, n) in &stats.by_status {
            let _ = writeln!(
                out,
                "gdpr_http_requests_total{{method=\"{method}\",route=\"{}\",status=\"{status}\"}} {n}",
                label(route)
            );
        }
    }
    family(
        out,
        "gdpr_http_request_duration_seconds",
        "histogram",
        "Time to answer a request, by method and route pattern.",
    );
    for ((method, route), stats) in requests.iter() {
        let labels = format!("method=\"{method}\",route=\"{}\"", label(route));
        let mut cumulative = 0;
        for (bound, n) in BUCKETS.iter().zip(stats.buckets) {
            cumulative += n;
            let _ = writeln!(
                out,
                "gdpr_http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {cumulative}"
            );
        }
        let _ = writeln!(
            out,
            "gdpr_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}\n\
             gdpr_http_request_duration_seconds_sum{{{labels}}} {}\n\
             gdpr_http_request_duration_seconds_count{{{labels}}} {}",
            stats.count, stats.seconds, stats.count
        );
    }
}

fn render_jobs(out: &mut String) {
    let jobs = JOBS.lock().unwrap_or_else(|e| e.into_inner());
    family(
        out,
        "gdpr_job_last_run_timestamp_seconds",
        "gauge",
        "When each job last ran in this process (Unix time).",
    );
    for (job, run) in jobs.iter() {
        let _ = writeln!(
            out,
            "gdpr_job_last_run_timestamp_seconds{{job=\"{}\"}} {}",
            label(job),
            run.at.unix_timestamp()
        );
    }
    family(
        out,
        "gdpr_job_last_run_success",
        "gauge",
        "Whether each job's last run succeeded (1) or failed (0).",
    );
    for (job, run) in jobs.iter() {
        let _ = writeln!(
            out,
            "gdpr_job_last_run_success{{job=\"{}\"}} {}",
            label(job),
            u8::from(run.ok)
        );
    }
    family(
        out,
        "gdpr_job_last_run_duration_seconds",
        "gauge",
        "How long each job's last run took.",
    );
    for (job, run) in jobs.iter() {
        let _ = writeln!(
            out,
            "gdpr_job_last_run_duration_seconds{{job=\"{}\"}} {}",
            label(job),
            run.took.as_secs_f64()
        );
    }
}

fn render_backlog(out: &mut String, b: &Backlog) {
    family(
        out,
        "gdpr_mail_outbox",
        "gauge",
        "Mails in the outbox, by status (sent mails are not counted).",
    );
    for (status, n) in [
        ("queued", b.queued),
        ("sending", b.sending),
        ("failed", b.failed),
    ] {
        let _ = writeln!(out, "gdpr_mail_outbox{{status=\"{status}\"}} {n}");
    }
    family(
        out,
        "gdpr_mail_oldest_queued_age_seconds",
        "gauge",
        "Age of the oldest queued mail (0 when none is queued).",
    );
    let _ = writeln!(
        out,
        "gdpr_mail_oldest_queued_age_seconds {}",
        b.oldest_queued_seconds
    );
    family(
        out,
        "gdpr_audit_unsealed_rows",
        "gauge",
        "Audit log rows waiting to be sealed into the hash chain.",
    );
    let _ = writeln!(out, "gdpr_audit_unsealed_rows {}", b.unsealed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_histogram_buckets_are_cumulative_and_end_with_every_request() {
        // A route of its own: the registry is shared by the whole test binary.
        let route = "/test/histogram/{id}";
        for ms in [3, 7, 7, 300, 20_000] {
            request("GET", route, 200, Duration::from_millis(ms));
        }
        request("GET", route, 404, Duration::from_millis(1));

        let mut out = String::new();
        render_requests(&mut out);

        let value = |needle: &str| -> f64 {
            out.lines()
                .filter(|l| l.contains(route))
                .find(|l| l.contains(needle))
                .and_then(|l| l.rsplit(' ').next())
                .unwrap_or_else(|| panic!("{needle} missing:\n{out}"))
                .parse()
                .unwrap()
        };
        assert_eq!(value("status=\"200\"}"), 5.0);
        assert_eq!(value("status=\"404\"}"), 1.0);
        assert_eq!(value("le=\"0.005\"}"), 2.0);
        assert_eq!(value("le=\"0.01\"}"), 4.0);
        assert_eq!(value("le=\"0.5\"}"), 5.0);
        assert_eq!(value("le=\"10\"}"), 5.0);
        assert_eq!(value("le=\"+Inf\"}"), 6.0);
        assert_eq!(value("_count{"), 6.0);
        assert!((value("_sum{") - 20.318).abs() < 1e-9);
    }
}
