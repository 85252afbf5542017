//! Mail as `.eml` files, when no SMTP server is configured: `<outbox id>.eml` in the
//! outbox folder, readable by the owner only. A file lives no longer than its outbox row:
//! a sweep removes the files whose row is gone (an erasure, the retention job).

use std::{
    io,
    os::unix::fs::DirBuilderExt,
    path::{Path, PathBuf},
};

use sqlx::PgConnection;
use uuid::Uuid;

/// Makes the folder, readable by the owner only.
pub fn create_dir(dir: &Path) -> io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

fn path(dir: &Path, id: Uuid) -> PathBuf {
    dir.join(format!("{id}.eml"))
}

pub async fn write(dir: &Path, id: Uuid, message: &[u8]) -> io::Result<()> {
    use tokio::io::AsyncWriteExt;
    let mut file = tokio::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path(dir, id))
        .await?;
    file.write_all(message).await?;
    file.sync_all().await
}

pub async fn remove(dir: &Path, id: Uuid) -> io::Result<()> {
    match tokio::fs::remove_file(path(dir, id)).await {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Removes every `<uuid>.eml` in the folder whose mail is no longer stored (files of
/// other names are left alone). Returns how many went.
pub async fn sweep(conn: &mut PgConnection, dir: &Path) -> anyhow::Result<usize> {
    let mut entries = match tokio::fs::read_dir(dir).await {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e.into()),
    };
    let mut ids = Vec::new();
    while let Some(entry) = entries.next_entry().await? {
        let name = entry.file_name();
        if let Some(id) = name
            .to_str()
            .and_then(|n| n.strip_suffix(".eml"))
            .and_then(|stem| Uuid::parse_str(stem).ok())
        {
            ids.push(id);
        }
    }
    if ids.is_empty() {
        return Ok(0);
    }
    let gone = sqlx::query_scalar!(
        r#"SELECT f.id AS "id!" FROM unnest($1::uuid[]) AS f(id)
           WHERE NOT EXISTS (SELECT 1 FROM mail_outbox o WHERE o.id = f.id)"#,
        &ids
    )
    .fetch_all(conn)
    .await?;
    for id in &gone {
        remove(dir, *id).await?;
    }
    Ok(gone.len())
}
