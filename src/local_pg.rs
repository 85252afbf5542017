//! The embedded default: a private PostgreSQL cluster under the data folder, used when
//! `DATABASE_URL` is unset, and by the tests (with durability turned off).

use std::{
    fs,
    os::unix::{fs::MetadataExt, fs::PermissionsExt, process::CommandExt},
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use anyhow::{Context, bail};
use nix::unistd::{Gid, Uid, User};
use sha2::{Digest, Sha256};
use sqlx::postgres::PgConnectOptions;

/// The PostgreSQL server binaries could not be found on this machine.
#[derive(Debug, thiserror::Error)]
#[error(
    "no PostgreSQL server binaries found (tried pg_config --bindir, /usr/lib/postgresql/*/bin and PATH): install PostgreSQL or set DATABASE_URL"
)]
pub struct NotInstalled;

/// How the cluster is run.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Off only for throw-away clusters (tests): skips fsync for speed.
    pub durable: bool,
    pub max_connections: u32,
}

const PORT: u16 = 5432;
const SUPERUSER: &str = "postgres";
/// A Unix socket path may hold at most 107 bytes.
const MAX_SOCKET_PATH: usize = 100;

/// A running private cluster, reached only through a Unix socket.
#[derive(Debug)]
pub struct LocalPostgres {
    bin_dir: PathBuf,
    cluster_dir: PathBuf,
    socket_dir: PathBuf,
    run_as: Option<(Uid, Gid)>,
    /// False when the cluster was already running (left by a crashed run, or started
    /// by another command of this program).
    pub started_here: bool,
}

impl LocalPostgres {
    /// Finds the server binaries: `pg_config --bindir`, the highest
    /// `/usr/lib/postgresql/<n>/bin`, then `PATH`.
    pub fn find_binaries() -> Result<PathBuf, NotInstalled> {
        Self::find_binaries_in(
            "pg_config",
            Path::new("/usr/lib/postgresql"),
            std::env::var_os("PATH"),
        )
    }

    fn find_binaries_in(
        pg_config: &str,
        versions_root: &Path,
        path: Option<std::ffi::OsString>,
    ) -> Result<PathBuf, NotInstalled> {
        let has_server = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
        if let Ok(out) = Command::new(pg_config).arg("--bindir").output()
            && out.status.success()
        {
            let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
            if has_server(&dir) {
                return Ok(dir);
            }
        }
        let mut versions: Vec<(u32, PathBuf)> = fs::read_dir(versions_root)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let version = e.file_name().to_str()?.parse().ok()?;
                Some((version, e.path().join("bin")))
            })
            .filter(|(_, dir)| has_server(dir))
            .collect();
        versions.sort();
        if let Some((_, dir)) = versions.pop() {
            return Ok(dir);
        }
        path.into_iter()
            .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
            .find(|dir| has_server(dir))
            .ok_or(NotInstalled)
    }

    /// Creates (first time) or reuses the cluster for `data_dir` and makes sure it runs.
    pub fn start(data_dir: &Path, options: Options) -> anyhow::Result<Self> {
        let bin_dir = Self::find_binaries()?;
        fs::create_dir_all(data_dir)
            .with_context(|| format!("creating the data folder {}", data_dir.display()))?;
        let data_dir = fs::canonicalize(data_dir)?;
        let run_as = unprivileged_user()?;
        let cluster_dir = cluster_location(&data_dir, run_as)?;
        let socket_dir = socket_location(&cluster_dir);
        let pg = Self {
            bin_dir,
            cluster_dir,
            socket_dir,
            run_as,
            started_here: false,
        };
        if !pg.cluster_dir.join("PG_VERSION").exists() {
            pg.init(options)?;
        }
        pg.ensure_running(options)
    }

    fn init(&self, options: Options) -> anyhow::Result<()> {
        tracing::info!(cluster = %self.cluster_dir.display(), "creating a private PostgreSQL cluster");
        self.make_private_dir(&self.cluster_dir)?;
        let mut cmd = self.command("initdb");
        cmd.arg("-D").arg(&self.cluster_dir).args([
            "-U",
            SUPERUSER,
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
        ]);
        if !options.durable {
            cmd.arg("--no-sync");
        }
        run(cmd, "initdb")
    }

    fn ensure_running(mut self, options: Options) -> anyhow::Result<Self> {
        let pid_file = self.cluster_dir.join("postmaster.pid");
        if let Ok(contents) = fs::read_to_string(&pid_file) {
            let pid = contents.lines().next().unwrap_or("").trim();
            if is_postgres_process(pid) {
                tracing::info!(cluster = %self.cluster_dir.display(), "the private PostgreSQL cluster is already running");
                return Ok(self);
            }
            tracing::warn!(pid, "removing a stale postmaster.pid left by a crash");
            fs::remove_file(&pid_file).context("removing a stale postmaster.pid")?;
        }
        if self.socket_dir != self.cluster_dir {
            self.make_private_dir(&self.socket_dir)?;
        }
        // Terse errors and no failed statements in the server's log: the detail of a
        // unique violation would otherwise write the value (an address) into it.
        let mut server_options = format!(
            "-c listen_addresses='' -c port={PORT} -c unix_socket_directories='{}' -c unix_socket_permissions=0700 -c max_connections={} -c log_error_verbosity=terse -c log_min_error_statement=panic",
            self.socket_dir.display(),
            options.max_connections
        );
        if !options.durable {
            server_options
                .push_str(" -c fsync=off -c synchronous_commit=off -c full_page_writes=off");
        }
        let mut cmd = self.command("pg_ctl");
        cmd.arg("-D")
            .arg(&self.cluster_dir)
            .arg("-l")
            .arg(self.log_file())
            .args(["-w", "-t", "60", "-o", &server_options, "start"]);
        run(cmd, "pg_ctl start")
            .with_context(|| format!("the server log is {}", self.log_file().display()))?;
        self.started_here = true;
        Ok(self)
    }

    /// Stops the cluster with a fast shutdown (SIGINT), waiting for it to finish.
    pub fn stop(&self) -> anyhow::Result<()> {
        let mut cmd = self.command("pg_ctl");
        cmd.arg("-D")
            .arg(&self.cluster_dir)
            .args(["-m", "fast", "-w", "stop"]);
        run(cmd, "pg_ctl stop")
    }

    /// Connection options for one database of the cluster, as its superuser.
    pub fn connect_options(&self, database: &str) -> PgConnectOptions {
        PgConnectOptions::new()
            .socket(&self.socket_dir)
            .port(PORT)
            .username(SUPERUSER)
            .database(database)
    }

    /// The server's log file.
    pub fn log_file(&self) -> PathBuf {
        self.cluster_dir.join("server.log")
    }

    pub fn cluster_dir(&self) -> &Path {
        &self.cluster_dir
    }

    /// The postmaster's process id, read from its pid file.
    pub fn pid(&self) -> Option<i32> {
        fs::read_to_string(self.cluster_dir.join("postmaster.pid"))
            .ok()?
            .lines()
            .next()?
            .trim()
            .parse()
            .ok()
    }

    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(self.bin_dir.join(program));
        cmd.current_dir("/")
            .stdin(Stdio::null())
            .env_remove("PGDATA")
            .env("LC_ALL", "C.UTF-8");
        if let Some((uid, gid)) = self.run_as {
            cmd.uid(uid.as_raw()).gid(gid.as_raw());
        }
        cmd
    }

    fn make_private_dir(&self, dir: &Path) -> anyhow::Result<()> {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        if let Some((uid, gid)) = self.run_as {
            nix::unistd::chown(dir, Some(uid), Some(gid))
                .with_context(|| format!("handing {} to the postgres user", dir.display()))?;
        }
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
        Ok(())
    }
}

/// PostgreSQL refuses to run as root: then it runs as the `postgres` user.
fn unprivileged_user() -> anyhow::Result<Option<(Uid, Gid)>> {
    if !Uid::effective().is_root() {
        return Ok(None);
    }
    match User::from_name("postgres")? {
        Some(user) => Ok(Some((user.uid, user.gid))),
        None => bail!("running as root needs a 'postgres' system user to run PostgreSQL as"),
    }
}

/// `DATA_DIR/postgres`, unless the postgres user cannot enter the folders above it (a
/// checkout under /root): then a folder of its own under /var/lib, named after DATA_DIR.
fn cluster_location(data_dir: &Path, run_as: Option<(Uid, Gid)>) -> anyhow::Result<PathBuf> {
    let preferred = data_dir.join("postgres");
    let Some((uid, gid)) = run_as else {
        return Ok(preferred);
    };
    if data_dir.ancestors().all(|dir| can_enter(dir, uid, gid)) {
        return Ok(preferred);
    }
    let digest = hex::encode(&Sha256::digest(data_dir.as_os_str().as_encoded_bytes())[..8]);
    let base = PathBuf::from("/var/lib/gdpr-register");
    fs::create_dir_all(&base)?;
    fs::set_permissions(&base, fs::Permissions::from_mode(0o755))?;
    let elsewhere = base.join(digest).join("postgres");
    fs::create_dir_all(elsewhere.parent().expect("has a parent"))?;
    fs::set_permissions(
        elsewhere.parent().expect("has a parent"),
        fs::Permissions::from_mode(0o755),
    )?;
    tracing::info!(
        cluster = %elsewhere.display(),
        "the postgres user cannot enter {}; the private cluster is kept elsewhere",
        data_dir.display()
    );
    if fs::symlink_metadata(&preferred).is_err() {
        std::os::unix::fs::symlink(&elsewhere, &preferred).ok();
    }
    Ok(elsewhere)
}

fn can_enter(dir: &Path, uid: Uid, gid: Gid) -> bool {
    let Ok(meta) = fs::metadata(dir) else {
        return false;
    };
    let mode = meta.mode();
    if meta.uid() == uid.as_raw() {
        mode & 0o100 != 0
    } else if meta.gid() == gid.as_raw() {
        mode & 0o010 != 0
    } else {
        mode & 0o001 != 0
    }
}

/// The socket sits in the cluster folder unless that path is too long for a socket.
fn socket_location(cluster_dir: &Path) -> PathBuf {
    if cluster_dir.as_os_str().len() + ".s.PGSQL.5432".len() < MAX_SOCKET_PATH {
        return cluster_dir.to_path_buf();
    }
    let digest = hex::encode(&Sha256::digest(cluster_dir.as_os_str().as_encoded_bytes())[..8]);
    std::env::temp_dir().join(format!("gdpr-register-{digest}"))
}

fn is_postgres_process(pid: &str) -> bool {
    pid.parse::<u32>().is_ok()
        && fs::read_to_string(format!("/proc/{pid}/comm"))
            .map(|comm| comm.trim().starts_with("postgres"))
            .unwrap_or(false)
}

fn run(mut cmd: Command, what: &str) -> anyhow::Result<()> {
    let out = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .with_context(|| format!("running {what}"))?;
    if !out.status.success() {
        bail!(
            "{what} failed: {}{}",
            String::from_utf8_lossy(&out.stderr).trim(),
            String::from_utf8_lossy(&out.stdout).trim()
        );
    }
    Ok(())
}

/// Creates the database unless it exists.
pub async fn create_database_if_missing(
    server: PgConnectOptions,
    name: &str,
) -> anyhow::Result<()> {
    use sqlx::{Connection, PgConnection};
    let mut conn = PgConnection::connect_with(&server.database("postgres")).await?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(name)
            .fetch_one(&mut conn)
            .await?;
    if !exists {
        sqlx::query(&format!("CREATE DATABASE \"{name}\""))
            .execute(&mut conn)
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_binaries_anywhere_is_not_installed() {
        let empty = tempfile_dir();
        let found = LocalPostgres::find_binaries_in(
            "no-such-pg-config",
            &empty,
            Some(empty.as_os_str().to_owned()),
        );
        assert!(found.is_err());
        assert!(
            NotInstalled
                .to_string()
                .contains("install PostgreSQL or set DATABASE_URL")
        );
        fs::remove_dir_all(empty).ok();
    }

    #[test]
    fn the_highest_installed_version_is_chosen() {
        let root = tempfile_dir();
        for version in ["9", "15", "13", "notes"] {
            let bin = root.join(version).join("bin");
            fs::create_dir_all(&bin).unwrap();
            fs::write(bin.join("initdb"), "").unwrap();
            fs::write(bin.join("pg_ctl"), "").unwrap();
        }
        let found = LocalPostgres::find_binaries_in("no-such-pg-config", &root, None).unwrap();
        assert_eq!(found, root.join("15").join("bin"));
        fs::remove_dir_all(root).ok();
    }

    fn tempfile_dir() -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("gdpr-pgbin-{}", crate::tokens::random_token()));
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn long_cluster_paths_get_a_short_socket_folder() {
        let short = Path::new("/var/lib/x/postgres");
        assert_eq!(socket_location(short), short);
        let long = PathBuf::from(format!("/tmp/{}/postgres", "d".repeat(120)));
        assert!(socket_location(&long).as_os_str().len() < 60);
    }
}
