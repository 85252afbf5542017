//! Backups that are known to restore: `backup create` dumps the whole database while the
//! server runs, `backup restore` puts it back (and applies again the erasures made since),
//! `backup verify` restores it into a throwaway cluster and compares the rows; a daily
//! job keeps the last few in `BACKUP_DIR`.
//!
//! `pg_dump` and `pg_restore` run as the database's owner: on the embedded default the
//! cluster's superuser, since the application's own role may not restore.

mod file;
mod job;
pub(crate) mod journal;

use std::{
    collections::BTreeMap,
    ffi::OsString,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use anyhow::{Context, bail};
use sqlx::{
    Connection, PgConnection,
    postgres::{PgConnectOptions, PgSslMode},
};
use time::{OffsetDateTime, format_description::well_known::Rfc3339};

pub use file::Header;
pub use job::job;

use crate::{
    audit::{self, Actor, Event},
    config::Config,
    customers,
    local_pg::{self, LocalPostgres},
};
use file::{AuditHead, Backup};

/// A backup that cannot be made or used as asked, for a reason the operator can act on.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

/// The database a backup is verified in, in a throwaway cluster.
const VERIFY_DATABASE: &str = "verify";

/// The schemas the application's tables live in.
const SCHEMAS: [&str; 2] = ["public", "tower_sessions"];

/// A finished backup.
pub struct Created {
    pub header: Header,
    pub bytes: u64,
}

/// Writes a consistent backup of the whole database to `path`; `database` names the
/// application's database in the embedded cluster.
pub async fn create(config: &Config, database: &str, path: &Path) -> anyhow::Result<Created> {
    if path.exists() {
        return Err(Refused(format!(
            "{} exists already: give a new file name",
            path.display()
        ))
        .into());
    }
    let place = Place::open(config, database, false).await?;
    let result = create_from(&place, config, path).await;
    place.close().await;
    result
}

async fn create_from(place: &Place, config: &Config, path: &Path) -> anyhow::Result<Created> {
    let mut conn = PgConnection::connect_with(&place.options)
        .await
        .context("connecting to the database to back up")?;
    // pg_dump reads the snapshot the header is counted in, so the two agree exactly.
    sqlx::query("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut conn)
        .await?;
    let snapshot: String = sqlx::query_scalar("SELECT pg_export_snapshot()")
        .fetch_one(&mut conn)
        .await?;
    let head = audit::head(&mut conn).await?;
    let header = Header {
        format: file::FORMAT,
        created_at: OffsetDateTime::now_utc().format(&Rfc3339)?,
        migration: migration_level(&mut conn).await?,
        key_fingerprint: config.keys.fingerprint(),
        audit_head: head.map(|h| AuditHead {
            seq: h.seq,
            hash: hex::encode(h.hash),
        }),
        tables: row_counts(&mut conn).await?,
    };
    let mut cmd = place.tool("pg_dump")?;
    cmd.args(["--format=custom", "--snapshot"]).arg(&snapshot);
    let (path_owned, header_owned) = (path.to_path_buf(), header.clone());
    let bytes = tokio::task::spawn_blocking(move || {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting pg_dump")?;
        let dump = child.stdout.take().expect("piped");
        file::write(&path_owned, &header_owned, dump, || {
            let out = child.wait_with_output()?;
            if !out.status.success() {
                bail!(
                    "pg_dump failed: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                );
            }
            Ok(())
        })
    })
    .await??;
    sqlx::query("COMMIT").execute(&mut conn).await?;
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    audit::record(
        &mut conn,
        Event::new(
            &Actor::System("backup"),
            "backup.create",
            "backup",
            Some(name.into_owned()),
        )
        .with_count(header.rows()),
    )
    .await?;
    conn.close().await.ok();
    Ok(Created { header, bytes })
}

/// How a restore may go about its work.
#[derive(Clone, Debug, Default)]
pub struct RestoreOptions {
    /// Replace a database that holds a register.
    pub force: bool,
    /// Restore a backup made under another application key.
    pub key_mismatch_ok: bool,
    /// The erasure journal to read, instead of the one beside the backup.
    pub erasures: Option<PathBuf>,
}

/// A restored database, before it is migrated and its carried erasures are applied
/// again ([`apply_erasures`]).
pub struct Restored {
    pub header: Header,
    /// The erasure journal read, and how many of its entries are newer than the backup.
    pub journal: Option<(PathBuf, usize)>,
    /// `None`: the database was empty and no journal was found, so no later erasures
    /// were known to carry over.
    carried: Option<Erasures>,
}

/// Journal entries this much older than the backup's time are applied again too: an
/// erasure is journaled before its transaction commits, which may be after the backup's
/// snapshot was taken. Applying one the backup holds already deletes no one.
const JOURNAL_MARGIN: time::Duration = time::Duration::minutes(1);

/// Restores a backup into the configured database (or the embedded cluster of
/// `DATA_DIR`, database `database`), which must be empty unless `force`. A backup newer
/// than `newest_migration` is refused. The caller then migrates the database and calls
/// [`apply_erasures`].
pub async fn restore(
    config: &Config,
    database: &str,
    newest_migration: i64,
    path: &Path,
    options: RestoreOptions,
) -> anyhow::Result<Restored> {
    let path_owned = path.to_path_buf();
    let backup = tokio::task::spawn_blocking(move || Backup::open(&path_owned)).await??;
    let header = &backup.header;
    let ours = config.keys.fingerprint();
    if header.key_fingerprint != ours && !options.key_mismatch_ok {
        return Err(Refused(format!(
            "the backup was made with another application key (fingerprint {}; this \
             installation's key is {ours}): its encrypted fields (second-factor secrets) would \
             be unreadable and erased addresses would no longer be recognised. Restore with \
             the key it was made with (APP_KEY, or the app.key file in DATA_DIR), or give \
             --key-mismatch-ok to restore it anyway",
            header.key_fingerprint
        ))
        .into());
    }
    if header.migration > newest_migration {
        return Err(Refused(format!(
            "the backup is of a newer version of gdpr-register (migration {}, this one knows \
             up to {newest_migration}): restore it with that version or a later one",
            header.migration
        ))
        .into());
    }
    // Read before anything is dropped, so that a damaged journal leaves the database be.
    let journal = match journal::locate(path, options.erasures.as_deref()) {
        Some(at) => {
            let since = OffsetDateTime::parse(&header.created_at, &Rfc3339)? - JOURNAL_MARGIN;
            let newer: Vec<_> = journal::read(&at)?
                .into_iter()
                .filter(|e| e.at >= since)
                .collect();
            Some((at, newer))
        }
        None => None,
    };
    let place = Place::open(config, database, true).await?;
    let result = restore_into(&place, config, &backup, options).await;
    place.close().await;
    let carried = match (result?, &journal) {
        (None, None) => None,
        (carried, journal) => {
            let mut erasures = carried.unwrap_or_default();
            for entry in journal.iter().flat_map(|(_, newer)| newer) {
                erasures.suppress(entry.hash.clone(), entry.at);
            }
            Some(erasures)
        }
    };
    Ok(Restored {
        header: backup.header.clone(),
        journal: journal.map(|(at, newer)| (at, newer.len())),
        carried,
    })
}

async fn restore_into(
    place: &Place,
    config: &Config,
    backup: &Backup,
    options: RestoreOptions,
) -> anyhow::Result<Option<Erasures>> {
    if let Some(local) = &place.local
        && !local.started_here
    {
        return Err(Refused(format!(
            "the database of {} is in use: stop the server before restoring",
            config.data_dir.display()
        ))
        .into());
    }
    let mut conn = PgConnection::connect_with(&place.options)
        .await
        .context("connecting to the database to restore into")?;
    put_back_set_aside(&mut conn).await?;
    let carried = if holds_register(&mut conn).await? {
        if !options.force {
            return Err(Refused(
                "the database holds a register already: restore into an empty data folder or \
                 database, or give --force to replace it (the erasures it records are applied \
                 again to the restored register)"
                    .into(),
            )
            .into());
        }
        Some(Erasures::read(&mut conn).await?)
    } else {
        None
    };
    set_aside(&mut conn).await?;

    let mut cmd = place.tool("pg_restore")?;
    // Ownership and grants are those of this place: the owner restores, and the
    // application's role is granted afresh when the database is next connected.
    cmd.args(["--no-owner", "--no-acl", "--exit-on-error"]);
    let restored = pipe_dump(cmd, backup).await;
    // pg_restore may have lost its own connection: this one may be gone as well.
    let mut conn = PgConnection::connect_with(&place.options)
        .await
        .context("connecting to the database after restoring")?;
    match restored {
        Ok(()) => {
            let mut tx = conn.begin().await?;
            for schema in SCHEMAS {
                sqlx::query(&format!(
                    "DROP SCHEMA IF EXISTS {schema}{SET_ASIDE} CASCADE"
                ))
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(carried)
        }
        Err(error) => {
            put_back_set_aside(&mut conn).await?;
            Err(error.context("the restore failed, and the database is as it was before"))
        }
    }
}

/// What a schema is renamed to while a backup is restored in its place.
const SET_ASIDE: &str = "_before_restore";

/// Renames the register's schemas aside and creates an empty `public`, in one
/// transaction: a restore that fails, or is killed, puts them back.
async fn set_aside(conn: &mut PgConnection) -> sqlx::Result<()> {
    let mut tx = conn.begin().await?;
    for schema in SCHEMAS {
        if schema_exists(&mut tx, schema).await? {
            sqlx::query(&format!(
                "ALTER SCHEMA {schema} RENAME TO {schema}{SET_ASIDE}"
            ))
            .execute(&mut *tx)
            .await?;
        }
    }
    sqlx::query("CREATE SCHEMA public")
        .execute(&mut *tx)
        .await?;
    // Extensions (unaccent) stay in `public`: the restored register's functions name them
    // there, and the dump creates them only where they are missing.
    move_extensions(&mut tx, &format!("public{SET_ASIDE}"), "public").await?;
    tx.commit().await
}

/// Puts back the schemas an unfinished restore set aside (this one's, or an earlier one
/// that was killed), dropping what it had restored so far.
async fn put_back_set_aside(conn: &mut PgConnection) -> sqlx::Result<()> {
    let mut tx = conn.begin().await?;
    if schema_exists(&mut tx, &format!("public{SET_ASIDE}")).await? {
        move_extensions(&mut tx, "public", &format!("public{SET_ASIDE}")).await?;
    }
    for schema in SCHEMAS {
        if schema_exists(&mut tx, &format!("{schema}{SET_ASIDE}")).await? {
            sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                .execute(&mut *tx)
                .await?;
            sqlx::query(&format!(
                "ALTER SCHEMA {schema}{SET_ASIDE} RENAME TO {schema}"
            ))
            .execute(&mut *tx)
            .await?;
        }
    }
    tx.commit().await
}

async fn move_extensions(conn: &mut PgConnection, from: &str, to: &str) -> sqlx::Result<()> {
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT e.extname::text FROM pg_extension e
           JOIN pg_namespace n ON n.oid = e.extnamespace WHERE n.nspname = $1",
    )
    .bind(from)
    .fetch_all(&mut *conn)
    .await?;
    for name in names {
        sqlx::query(&format!(r#"ALTER EXTENSION "{name}" SET SCHEMA "{to}""#))
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

async fn schema_exists(conn: &mut PgConnection, name: &str) -> sqlx::Result<bool> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)")
        .bind(name)
        .fetch_one(conn)
        .await
}

/// Applies again, to a restored and migrated database, the erasures carried from the
/// database it replaced and from the erasure journal, and records the restore in the
/// audit log. Returns how many people were erased again (`None`: nothing was carried, the
/// database was empty and there was no journal).
pub async fn apply_erasures(
    conn: &mut PgConnection,
    config: &Config,
    restored: &Restored,
) -> anyhow::Result<Option<u64>> {
    let mut tx = conn.begin().await?;
    let erased = match &restored.carried {
        Some(erasures) => Some(erasures.apply(&mut tx, config).await?),
        None => None,
    };
    audit::record(
        &mut tx,
        Event::new(
            &Actor::System("backup"),
            "backup.restore",
            "backup",
            Some(restored.header.created_at.clone()),
        )
        .with_count(erased.unwrap_or(0) as i64),
    )
    .await?;
    tx.commit().await?;
    Ok(erased)
}

/// Whether the database holds anything of a register: a user, a person or an audit row.
async fn holds_register(conn: &mut PgConnection) -> sqlx::Result<bool> {
    let migrated: bool = sqlx::query_scalar("SELECT to_regclass('public.audit_log') IS NOT NULL")
        .fetch_one(&mut *conn)
        .await?;
    if !migrated {
        return Ok(false);
    }
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM audit_log) OR EXISTS (SELECT 1 FROM users)
             OR EXISTS (SELECT 1 FROM contacts)",
    )
    .fetch_one(conn)
    .await
}

/// The erasures carried across the restore, from the database being replaced and the
/// erasure journal: suppression hashes (keyed hashes of erased addresses, each with the
/// latest time it was erased) and the ids the replaced audit log names as erased.
#[derive(Default)]
struct Erasures {
    suppressed: BTreeMap<Vec<u8>, OffsetDateTime>,
    contact_ids: Vec<uuid::Uuid>,
}

impl Erasures {
    async fn read(conn: &mut PgConnection) -> sqlx::Result<Self> {
        let suppressed = sqlx::query!("SELECT email_hash, erased_at FROM suppressed_emails")
            .fetch_all(&mut *conn)
            .await?;
        let contact_ids = sqlx::query_scalar!(
            r#"SELECT entity_id AS "id!" FROM audit_log
               WHERE action = 'contact.erase' AND entity = 'contact' AND entity_id IS NOT NULL"#
        )
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .filter_map(|id| id.parse().ok())
        .collect();
        let mut erasures = Self {
            contact_ids,
            ..Self::default()
        };
        for r in suppressed {
            erasures.suppress(r.email_hash, r.erased_at);
        }
        Ok(erasures)
    }

    /// Adds a hash once, however often it was erased: one insert may not touch a row twice.
    fn suppress(&mut self, hash: Vec<u8>, at: OffsetDateTime) {
        let latest = self.suppressed.entry(hash).or_insert(at);
        *latest = (*latest).max(at);
    }

    /// Deletes again every person erased in the replaced database or the journal, by id
    /// and by address, and keeps their suppression hashes; returns how many people were
    /// deleted (each once: whoever is deleted by id is no longer there by address).
    async fn apply(&self, conn: &mut PgConnection, config: &Config) -> sqlx::Result<u64> {
        let (hashes, erased_at): (Vec<_>, Vec<_>) = self
            .suppressed
            .iter()
            .map(|(hash, at)| (hash.clone(), *at))
            .unzip();
        sqlx::query!(
            "INSERT INTO suppressed_emails (email_hash, erased_at)
             SELECT * FROM UNNEST($1::bytea[], $2::timestamptz[])
             ON CONFLICT (email_hash) DO UPDATE
                 SET erased_at = greatest(suppressed_emails.erased_at, excluded.erased_at)",
            &hashes,
            &erased_at
        )
        .execute(&mut *conn)
        .await?;
        let actor = Actor::System("backup-restore");
        let mut deleted = 0;
        for &id in &self.contact_ids {
            let erasure = customers::Erasure::Retention("contact.erase_reapplied");
            if customers::delete_contact(conn, id, &actor, erasure).await? {
                deleted += 1;
            }
        }
        Ok(deleted + customers::erase_suppressed(conn, config).await?)
    }
}

/// A backup restored into a throwaway cluster, its rows counted.
pub struct Verified {
    pub header: Header,
}

/// Restores a backup into a throwaway cluster and compares every table's rows with the
/// counts recorded when it was made.
pub async fn verify(path: &Path) -> anyhow::Result<Verified> {
    let path_owned = path.to_path_buf();
    let backup = tokio::task::spawn_blocking(move || Backup::open(&path_owned)).await??;
    let dir = std::env::temp_dir().join(format!(
        "gdpr-register-verify-{}",
        crate::tokens::random_token()
    ));
    std::fs::create_dir(&dir)?;
    // When run as root, the cluster runs as the postgres user, which must enter it.
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))?;
    let root = dir.clone();
    let local = tokio::task::spawn_blocking(move || {
        LocalPostgres::start(
            &root,
            local_pg::Options {
                durable: false,
                max_connections: 10,
            },
        )
    })
    .await;
    let result = match local {
        Ok(Ok(local)) => {
            let place = Place {
                options: local.connect_options(VERIFY_DATABASE),
                local: Some(local),
            };
            let result = verify_in(&place, &backup).await;
            place.close().await;
            result
        }
        Ok(Err(e)) => Err(e),
        Err(e) => Err(e.into()),
    };
    std::fs::remove_dir_all(&dir).ok();
    result?;
    Ok(Verified {
        header: backup.header,
    })
}

async fn verify_in(place: &Place, backup: &Backup) -> anyhow::Result<()> {
    local_pg::create_database_if_missing(place.options.clone(), VERIFY_DATABASE).await?;
    let mut cmd = place.tool("pg_restore")?;
    cmd.args(["--no-owner", "--no-acl", "--exit-on-error"]);
    pipe_dump(cmd, backup)
        .await
        .map_err(|e| Refused(format!("the backup does not restore: {e:#}")))?;
    let mut conn = PgConnection::connect_with(&place.options).await?;
    let found = row_counts(&mut conn).await?;
    conn.close().await.ok();
    let expected = &backup.header.tables;
    let differences: Vec<String> = expected
        .keys()
        .chain(found.keys())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .filter_map(|table| {
            let (want, got) = (expected.get(table), found.get(table));
            (want != got).then(|| {
                let show = |n: Option<&i64>| n.map_or("no table".into(), i64::to_string);
                format!("{table}: {} recorded, {} restored", show(want), show(got))
            })
        })
        .collect();
    if !differences.is_empty() {
        bail!(Refused(format!(
            "the restored rows differ from those recorded: {}",
            differences.join("; ")
        )));
    }
    Ok(())
}

/// Rows in each of the application's tables (`schema.table`).
pub async fn row_counts(conn: &mut PgConnection) -> sqlx::Result<BTreeMap<String, i64>> {
    let tables: Vec<(String, String)> = sqlx::query_as(
        "SELECT schemaname::text, tablename::text FROM pg_tables
         WHERE schemaname = ANY($1) ORDER BY 1, 2",
    )
    .bind(SCHEMAS)
    .fetch_all(&mut *conn)
    .await?;
    let mut counts = BTreeMap::new();
    for (schema, table) in tables {
        let n: i64 = sqlx::query_scalar(&format!(r#"SELECT count(*) FROM "{schema}"."{table}""#))
            .fetch_one(&mut *conn)
            .await?;
        counts.insert(format!("{schema}.{table}"), n);
    }
    Ok(counts)
}

/// When the newest backup was made, if one was.
pub async fn last_made(conn: &mut PgConnection) -> sqlx::Result<Option<OffsetDateTime>> {
    sqlx::query_scalar!(
        "SELECT at FROM audit_log WHERE action = 'backup.create' ORDER BY id DESC LIMIT 1"
    )
    .fetch_optional(conn)
    .await
}

/// The newest migration applied (0 for none); read without the query cache, since the
/// migrations table is sqlx's own.
async fn migration_level(conn: &mut PgConnection) -> sqlx::Result<i64> {
    let exists: bool =
        sqlx::query_scalar("SELECT to_regclass('public._sqlx_migrations') IS NOT NULL")
            .fetch_one(&mut *conn)
            .await?;
    if !exists {
        return Ok(0);
    }
    sqlx::query_scalar("SELECT coalesce(max(version), 0) FROM _sqlx_migrations WHERE success")
        .fetch_one(conn)
        .await
}

/// Where the database lives, reached as its owner: the embedded cluster of `DATA_DIR`
/// (as its superuser), or `DATABASE_URL`.
struct Place {
    options: PgConnectOptions,
    local: Option<LocalPostgres>,
}

impl Place {
    async fn open(config: &Config, database: &str, create_database: bool) -> anyhow::Result<Self> {
        if let Some(options) = &config.database {
            return Ok(Self {
                options: options.expose().clone(),
                local: None,
            });
        }
        let data_dir = config.data_dir.clone();
        let local = tokio::task::spawn_blocking(move || {
            LocalPostgres::start(
                &data_dir,
                local_pg::Options {
                    durable: true,
                    max_connections: 100,
                },
            )
        })
        .await??;
        let place = Self {
            options: local.connect_options(database),
            local: Some(local),
        };
        if create_database {
            local_pg::create_database_if_missing(place.options.clone(), database).await?;
        }
        Ok(place)
    }

    /// Stops the embedded cluster if this command started it.
    async fn close(self) {
        if let Some(local) = self.local
            && local.started_here
        {
            match tokio::task::spawn_blocking(move || local.stop()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::error!(error = format!("{e:#}"), "stopping PostgreSQL"),
                Err(e) => tracing::error!(error = %e, "stopping PostgreSQL"),
            }
        }
    }

    /// `pg_dump` or `pg_restore` from beside the server binaries, pointed at this place.
    /// A password, if the server asks for one, comes from `PGPASSWORD` or `~/.pgpass`.
    fn tool(&self, name: &str) -> anyhow::Result<Command> {
        let bin = LocalPostgres::find_binaries()?;
        let o = &self.options;
        let host: OsString = match o.get_socket() {
            Some(dir) => dir.clone().into(),
            None => o.get_host().into(),
        };
        let mut cmd = Command::new(bin.join(name));
        cmd.arg("--host")
            .arg(host)
            .arg(format!("--port={}", o.get_port()))
            .arg(format!("--username={}", o.get_username()))
            .arg(format!("--dbname={}", o.get_database().unwrap_or_default()))
            .arg("--no-password")
            .env("PGSSLMODE", ssl_mode(o.get_ssl_mode()))
            .stdin(Stdio::null());
        Ok(cmd)
    }
}

fn ssl_mode(mode: PgSslMode) -> &'static str {
    match mode {
        PgSslMode::Disable => "disable",
        PgSslMode::Allow => "allow",
        PgSslMode::Prefer => "prefer",
        PgSslMode::Require => "require",
        PgSslMode::VerifyCa => "verify-ca",
        PgSslMode::VerifyFull => "verify-full",
    }
}

/// Feeds the backup's dump to `pg_restore` on its standard input.
async fn pipe_dump(mut cmd: Command, backup: &Backup) -> anyhow::Result<()> {
    let mut dump = backup.dump()?;
    tokio::task::spawn_blocking(move || {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting pg_restore")?;
        let mut stdin = child.stdin.take().expect("piped");
        // A failing pg_restore closes its input early; its own message says why.
        let copied = std::io::copy(&mut dump, &mut stdin);
        drop(stdin);
        let out = child.wait_with_output()?;
        if !out.status.success() {
            bail!(
                "pg_restore failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        copied.context("feeding pg_restore")?;
        Ok(())
    })
    .await?
}
