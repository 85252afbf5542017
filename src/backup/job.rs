//! The daily backup: with `BACKUP_DIR` set, once a day a backup is written there and only
//! the newest `BACKUP_KEEP` are kept.

use std::{fs, os::unix::fs::PermissionsExt, path::Path, time::Duration};

use anyhow::Context;
use sqlx::PgPool;
use time::{OffsetDateTime, macros::format_description};

use crate::{
    config::Config,
    jobs::{Job, JobFuture},
};

pub fn job() -> Job {
    Job {
        name: "backup",
        every: Duration::from_secs(60 * 60),
        run,
    }
}

const PREFIX: &str = "gdpr-register-";
const SUFFIX: &str = ".backup";

/// The backup works as the database's owner; the application's pool only names the
/// database.
fn run<'c>(pool: &'c PgPool, at: OffsetDateTime, config: &'c Config) -> JobFuture<'c> {
    Box::pin(async move {
        let Some(dir) = &config.backup_dir else {
            return Ok("off (BACKUP_DIR is not set)".into());
        };
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
        let day = at.format(format_description!("[year][month][day]"))?;
        let existing = backups(dir)?;
        if existing
            .iter()
            .any(|name| name[PREFIX.len()..].starts_with(&day))
        {
            return Ok("today's backup exists already".into());
        }
        let name = format!(
            "{PREFIX}{}{SUFFIX}",
            at.format(format_description!(
                "[year][month][day]T[hour][minute][second]Z"
            ))?
        );
        let database: String = sqlx::query_scalar("SELECT current_database()::text")
            .fetch_one(pool)
            .await?;
        let created = super::create(config, &database, &dir.join(&name)).await?;
        let mut removed = 0;
        let mut all = backups(dir)?;
        all.sort_unstable_by(|a, b| b.cmp(a));
        for old in all.iter().skip(config.backup_keep as usize) {
            fs::remove_file(dir.join(old)).with_context(|| format!("removing {old}"))?;
            removed += 1;
        }
        Ok(format!(
            "wrote {name} ({} rows, {} bytes); removed {removed} older",
            created.header.rows(),
            created.bytes
        ))
    })
}

/// The names of the backups this job wrote; their names sort by time. The erasure journal
/// beside them is not one, so it is never removed.
fn backups(dir: &Path) -> anyhow::Result<Vec<String>> {
    Ok(fs::read_dir(dir)?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with(PREFIX) && n.ends_with(SUFFIX))
        .collect())
}
