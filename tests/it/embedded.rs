//! The embedded default: `gdpr-register` with no DATABASE_URL runs its own cluster.

use std::{
    os::unix::fs::PermissionsExt,
    path::Path,
    process::{Command, Stdio},
    time::Duration,
};

use gdpr_register::local_pg::{LocalPostgres, Options};

const OPTIONS: Options = Options {
    durable: false,
    max_connections: 20,
};

fn open_tempdir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits for a server started on `port` to answer: a first start makes a cluster (with
/// fsync, as for real data), which on two busy cores can take a while.
pub async fn wait_until_healthy(port: u16) -> bool {
    let client = reqwest::Client::new();
    for _ in 0..1200 {
        if let Ok(r) = client
            .get(format!("http://127.0.0.1:{port}/healthz"))
            .send()
            .await
            && r.status() == 200
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// `cargo run` with nothing configured: a private cluster, a served app, and on Ctrl-C
/// (SIGINT) the cluster stopped cleanly.
#[tokio::test]
async fn serve_with_nothing_configured_runs_and_then_stops_its_own_cluster() {
    let data = open_tempdir();
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_gdpr-register"))
        .env_remove("DATABASE_URL")
        .env_remove("SMTP_URL")
        .env("DATA_DIR", data.path())
        .env("LISTEN_ADDR", format!("127.0.0.1:{port}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let client = reqwest::Client::new();
    let healthy = wait_until_healthy(port).await;
    let login = client
        .get(format!("http://127.0.0.1:{port}/login"))
        .send()
        .await;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);

    assert!(healthy, "the app never answered: {log}");
    assert_eq!(login.unwrap().status(), 200);
    assert!(out.status.success(), "{log}");
    assert!(
        log.contains("user add --email"),
        "the first run says how to create an administrator: {log}"
    );
    assert!(
        log.contains(&format!("http://127.0.0.1:{port}/")),
        "it prints its URL: {log}"
    );
    let cluster = data.path().join("postgres");
    assert!(cluster.join("PG_VERSION").exists());
    assert!(
        !cluster.join("postmaster.pid").exists(),
        "the cluster was stopped: {log}"
    );
    assert!(data.path().join("outbox").is_dir());
}

#[test]
fn a_stale_pid_file_after_a_crash_is_recovered() {
    let data = open_tempdir();
    let pg = LocalPostgres::start(data.path(), OPTIONS).unwrap();
    assert!(pg.started_here);
    pg.stop().unwrap();
    // A crash leaves the pid file behind, naming a process that is not postgres.
    std::fs::write(
        pg.cluster_dir().join("postmaster.pid"),
        format!("{}\n{}\n", std::process::id(), pg.cluster_dir().display()),
    )
    .unwrap();

    let again = LocalPostgres::start(data.path(), OPTIONS).unwrap();

    assert!(again.started_here);
    assert_ne!(again.pid(), Some(std::process::id() as i32));
    again.stop().unwrap();
}

#[test]
fn a_running_cluster_is_reused_not_started_twice() {
    let data = open_tempdir();
    let first = LocalPostgres::start(data.path(), OPTIONS).unwrap();
    let second = LocalPostgres::start(data.path(), OPTIONS).unwrap();

    assert!(!second.started_here);
    assert_eq!(first.pid(), second.pid());
    first.stop().unwrap();
}

/// As root the cluster runs as `postgres`, which cannot enter a folder only root may
/// (a checkout under /root): the cluster is then kept where it can be reached.
#[test]
fn a_data_folder_the_postgres_user_cannot_enter_keeps_the_cluster_elsewhere() {
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!("skipped: only meaningful when run as root");
        return;
    }
    let closed = tempfile::tempdir().unwrap();
    std::fs::set_permissions(closed.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let data = closed.path().join("data");

    let pg = LocalPostgres::start(&data, OPTIONS).unwrap();

    let cluster = pg.cluster_dir().to_path_buf();
    assert!(
        cluster.starts_with("/var/lib/gdpr-register"),
        "{}",
        cluster.display()
    );
    assert!(cluster.join("PG_VERSION").exists());
    assert_eq!(std::fs::read_link(data.join("postgres")).unwrap(), cluster);
    pg.stop().unwrap();
    std::fs::remove_dir_all(cluster.parent().unwrap()).unwrap();
    assert!(!Path::new(&cluster).exists());
}
