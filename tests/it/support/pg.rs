//! One private PostgreSQL cluster per test run, started with the same code as the embedded
//! default; each test gets a fresh database cloned from a migrated template.

use std::{
    os::unix::fs::PermissionsExt,
    process::{Command, Stdio},
    sync::OnceLock,
};

use gdpr_register::{local_pg, startup::MIGRATOR};
use sqlx::{Connection, PgConnection, PgPool, postgres::PgConnectOptions};

pub struct Cluster {
    pub pg: local_pg::LocalPostgres,
}

const TEMPLATE: &str = "it_template";

static CLUSTER: OnceLock<Cluster> = OnceLock::new();

pub fn cluster() -> &'static Cluster {
    CLUSTER.get_or_init(|| {
        // Migrations are async and this may be called inside a test's runtime: set up on a
        // thread of its own.
        std::thread::spawn(start_cluster)
            .join()
            .expect("starting the test cluster")
    })
}

fn start_cluster() -> Cluster {
    let root = tempfile::Builder::new()
        .prefix("gdpr-it-")
        .tempdir()
        .expect("a temporary folder")
        .keep();
    // The postgres user (when the tests run as root) must be able to enter it.
    std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755)).unwrap();
    let pg = local_pg::LocalPostgres::start(
        &root,
        local_pg::Options {
            durable: false,
            max_connections: 500,
        },
    )
    .expect("starting a private PostgreSQL for the tests");
    stop_when_tests_end(&pg, &root);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut conn = PgConnection::connect_with(&pg.connect_options("postgres"))
            .await
            .unwrap();
        sqlx::query(&format!("CREATE DATABASE {TEMPLATE}"))
            .execute(&mut conn)
            .await
            .unwrap();
        let pool = PgPool::connect_with(pg.connect_options(TEMPLATE))
            .await
            .unwrap();
        MIGRATOR.run(&pool).await.expect("migrating the template");
        pool.close().await;
    });
    Cluster { pg }
}

/// A watcher outside this process: when the test binary exits, it stops the cluster
/// (SIGINT: a fast, clean shutdown) and removes its folder.
fn stop_when_tests_end(pg: &local_pg::LocalPostgres, root: &std::path::Path) {
    let postmaster = pg.pid().expect("the postmaster's pid");
    let script = format!(
        "while kill -0 {me} 2>/dev/null; do sleep 0.5; done; \
         kill -INT {postmaster} 2>/dev/null; \
         while kill -0 {postmaster} 2>/dev/null; do sleep 0.2; done; \
         rm -rf '{root}'",
        me = std::process::id(),
        root = root.display()
    );
    use std::os::unix::process::CommandExt;
    // It must outlive this process, so it is never waited for.
    #[allow(clippy::zombie_processes)]
    Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .expect("starting the clean-up watcher");
}

/// A new, migrated, empty database for one test.
pub async fn fresh_database() -> PgConnectOptions {
    let cluster = cluster();
    let name = format!("it_{}", uuid::Uuid::new_v4().simple());
    let mut conn = PgConnection::connect_with(&cluster.pg.connect_options("postgres"))
        .await
        .unwrap();
    sqlx::query(&format!("CREATE DATABASE {name} TEMPLATE {TEMPLATE}"))
        .execute(&mut conn)
        .await
        .unwrap();
    cluster.pg.connect_options(&name)
}

/// The same database as a URL, for the command line.
pub fn database_url(options: &PgConnectOptions) -> String {
    let socket = cluster().pg.cluster_dir().display().to_string();
    format!(
        "postgres://postgres@localhost:5432/{}?host={socket}",
        options.get_database().expect("a database name")
    )
}
