//! Wiring: the database (a URL, or the embedded cluster), the router with its layers, and
//! the background tasks, with a clean shutdown.

use std::net::SocketAddr;

use anyhow::Context;
use axum::{
    Router,
    extract::{DefaultBodyLimit, Path, State},
    http::{StatusCode, header},
    middleware,
    response::{IntoResponse, Response},
};
use sqlx::{
    PgPool,
    migrate::Migrator,
    postgres::{PgConnectOptions, PgPoolOptions},
};
use tokio::{net::TcpListener, task::JoinSet};
use tokio_util::sync::CancellationToken;
use tower_sessions::{Expiry, SessionManagerLayer, cookie::SameSite};
use tower_sessions_sqlx_store::PostgresStore;

use crate::{
    audit, auth,
    config::Config,
    customers, dashboard,
    error::AppError,
    jobs, local_pg, mail, metrics, newsletters, personnel,
    state::AppState,
    users,
    web::{Section, access::RouteInfo, context, csrf, headers},
};

pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// The name of the application's database in the embedded cluster.
pub const DATABASE_NAME: &str = "gdpr_register";

/// A connected, migrated database, and the embedded cluster if one serves it.
pub struct Database {
    pub pool: PgPool,
    pub local: Option<local_pg::LocalPostgres>,
}

impl Database {
    pub async fn connect(config: &Config) -> anyhow::Result<Self> {
        let (options, local) = match &config.database {
            Some(options) => {
                let options = options.expose().clone();
                let pool = pool(options.clone(), 2).await?;
                ensure_migrated(&pool).await?;
                pool.close().await;
                (options, None)
            }
            None => {
                let data_dir = config.data_dir.clone();
                let local = tokio::task::spawn_blocking(move || {
                    local_pg::LocalPostgres::start(
                        &data_dir,
                        local_pg::Options {
                            durable: true,
                            max_connections: 100,
                        },
                    )
                })
                .await??;
                local_pg::create_database_if_missing(
                    local.connect_options("postgres"),
                    DATABASE_NAME,
                )
                .await
                .context("creating the application's database")?;
                // Migrations run as the owner; the application works as a role that
                // cannot alter, disable or bypass the audit log's triggers.
                let owner = pool(local.connect_options(DATABASE_NAME), 2).await?;
                MIGRATOR.run(&owner).await.context("running migrations")?;
                grant_app_role(&owner, APP_ROLE).await?;
                owner.close().await;
                let app = local.connect_options(DATABASE_NAME).username(APP_ROLE);
                (app, Some(local))
            }
        };
        Ok(Self {
            pool: pool(options, 20).await?,
            local,
        })
    }

    /// Updates the planner's statistics of these tables, as their owner (on the embedded
    /// default the application's own role may not).
    pub async fn analyze(&self, tables: &[&str]) -> anyhow::Result<()> {
        let owner = match &self.local {
            Some(local) => pool(local.connect_options(DATABASE_NAME), 1).await?,
            None => self.pool.clone(),
        };
        for table in tables {
            sqlx::query(&format!("ANALYZE {table}"))
                .execute(&owner)
                .await
                .with_context(|| format!("analysing {table}"))?;
        }
        Ok(())
    }

    /// Closes the pool and stops the embedded cluster if `always`, or if this process
    /// started it.
    pub async fn close(self, always: bool) {
        self.pool.close().await;
        if let Some(local) = self.local
            && (always || local.started_here)
        {
            match tokio::task::spawn_blocking(move || local.stop()).await {
                Ok(Ok(())) => tracing::info!("the private PostgreSQL cluster has stopped"),
                Ok(Err(e)) => tracing::error!(error = format!("{e:#}"), "stopping PostgreSQL"),
                Err(e) => tracing::error!(error = %e, "stopping PostgreSQL"),
            }
        }
    }
}

/// The role the application connects as on the embedded default.
pub const APP_ROLE: &str = "gdpr_app";

async fn pool(options: PgConnectOptions, size: u32) -> anyhow::Result<PgPool> {
    // Plan each query for its own values: a search with and without words, or a
    // quarantine view of 2% of the rows, each get the plan that fits.
    let options = options.options([("plan_cache_mode", "force_custom_plan")]);
    PgPoolOptions::new()
        .max_connections(size)
        .connect_with(options)
        .await
        .context("connecting to PostgreSQL")
}

/// Applies pending migrations. With nothing pending it changes nothing, so a role that
/// may not alter the schema (see the README) starts as well.
pub async fn ensure_migrated(pool: &PgPool) -> anyhow::Result<()> {
    let applied: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success")
            .fetch_all(pool)
            .await
            .unwrap_or_default();
    if MIGRATOR.iter().all(|m| applied.contains(&m.version)) {
        return Ok(());
    }
    MIGRATOR.run(pool).await.context(
        "running migrations (with an external DATABASE_URL, run `gdpr-register migrate` as the database's owner)",
    )
}

/// Makes `role` (if missing) and lets it read and write the tables, but not delete from
/// the audit log, nor own anything: a role that owns no table cannot alter or disable its
/// triggers, and only a superuser could switch them off for a session.
pub async fn grant_app_role(owner: &PgPool, role: &str) -> anyhow::Result<()> {
    let statements = [
        format!(
            "DO $$ BEGIN
                 IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{role}') THEN
                     CREATE ROLE {role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;
                 END IF;
             END $$"
        ),
        format!("GRANT USAGE ON SCHEMA public, tower_sessions TO {role}"),
        format!(
            "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public, tower_sessions TO {role}"
        ),
        format!("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {role}"),
        format!("REVOKE DELETE, TRUNCATE ON audit_log FROM {role}"),
        format!("REVOKE INSERT, UPDATE, DELETE ON _sqlx_migrations FROM {role}"),
    ];
    for statement in statements {
        sqlx::query(&statement)
            .execute(owner)
            .await
            .context("granting the application's database role")?;
    }
    Ok(())
}

/// Every periodic job, in the order `jobs run-once` runs them.
pub fn jobs() -> Vec<jobs::Job> {
    vec![
        jobs::session_cleanup::job(),
        mail::retention_job(),
        customers::quarantine_job(),
        customers::inactivity_sweep(),
        personnel::retention_job(),
        audit::head_job(),
        crate::backup::job(),
        crate::contact::retention_job(),
        crate::chat::retention_job(),
        newsletters::job(),
    ]
}

/// Every section of every feature: the router is built from these, and the role matrix
/// test walks them.
pub fn sections() -> Vec<Section> {
    let mut all = vec![
        Section::bare()
            .get("/healthz", healthz)
            .get("/static/{file}", static_file),
    ];
    all.extend(auth::sections());
    all.extend(dashboard::sections());
    all.extend(users::sections());
    all.extend(personnel::sections());
    all.extend(customers::sections());
    all.extend(audit::sections());
    all.extend(mail::sections());
    all.extend(metrics::sections());
    all.extend(crate::rights::sections());
    all.extend(crate::contact::sections());
    all.extend(crate::chat::sections());
    all.extend(newsletters::sections());
    all
}

pub fn route_table() -> Vec<RouteInfo> {
    sections()
        .iter()
        .flat_map(|s| s.routes().to_vec())
        .collect()
}

/// About 150,000 rows of contacts to import.
const MAX_UPLOAD_BYTES: usize = 32 * 1024 * 1024;

pub fn router(state: AppState) -> Router {
    let config = &state.config;
    let store = PostgresStore::new(state.pool.clone());
    let idle = time::Duration::try_from(config.session_idle).unwrap_or(time::Duration::HOUR);
    let sessions = SessionManagerLayer::new(store)
        .with_name(crate::web::cookies::SESSION)
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_secure(config.is_https())
        .with_expiry(Expiry::OnInactivity(idle));
    let (bare, pages): (Vec<_>, Vec<_>) = sections().into_iter().partition(Section::is_bare);
    let mut app = Router::new();
    for section in pages {
        app = app.merge(section.into_router());
    }
    let mut app = app
        .fallback(|| async { AppError::NotFound })
        // Uploads (the contact import) may be larger than forms, which the CSRF check
        // caps at 2 MiB before anything reads them.
        .layer(DefaultBodyLimit::max(MAX_UPLOAD_BYTES))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            csrf::middleware,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            context::middleware,
        ))
        .layer(sessions);
    for section in bare {
        app = app.merge(section.into_router());
    }
    // Applied to every route (and the fallback) after routing, so the layer sees the
    // matched route pattern; it replaces tower-http's trace layer, whose spans carry the
    // raw URI (a search query may be a person's name).
    let mut app = app.layer(middleware::from_fn(metrics::layer));
    for layer in headers::layers(config.is_https()) {
        app = app.layer(layer);
    }
    app.with_state(state)
}

async fn healthz(State(state): State<AppState>) -> Response {
    match sqlx::query("SELECT 1").execute(&state.pool).await {
        Ok(_) => (StatusCode::OK, "ok").into_response(),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "database unavailable").into_response(),
    }
}

/// Style sheets and scripts are compiled in: the binary needs no files beside it.
async fn static_file(Path(file): Path<String>) -> Result<Response, AppError> {
    let (body, kind) = match file.as_str() {
        "app.css" => (include_str!("../static/app.css"), "text/css; charset=utf-8"),
        "clock.js" => (
            include_str!("../static/clock.js"),
            "text/javascript; charset=utf-8",
        ),
        "chat.js" => (
            include_str!("../static/chat.js"),
            "text/javascript; charset=utf-8",
        ),
        "chat.css" => (
            include_str!("../static/chat.css"),
            "text/css; charset=utf-8",
        ),
        "console.js" => (
            include_str!("../static/console.js"),
            "text/javascript; charset=utf-8",
        ),
        "progress.js" => (
            include_str!("../static/progress.js"),
            "text/javascript; charset=utf-8",
        ),
        _ => return Err(AppError::NotFound),
    };
    Ok((
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response())
}

/// Which background tasks run beside the web server.
#[derive(Clone, Copy, Debug)]
pub struct Background {
    pub mail: bool,
    pub scheduler: bool,
}

/// A running server and its background tasks.
pub struct Server {
    pub addr: SocketAddr,
    stop: CancellationToken,
    tasks: JoinSet<()>,
}

impl Server {
    pub async fn start(
        state: AppState,
        listener: TcpListener,
        background: Background,
    ) -> anyhow::Result<Self> {
        let addr = listener.local_addr()?;
        let stop = CancellationToken::new();
        let mut tasks = JoinSet::new();
        // The chat's sockets on this instance, and the listener that feeds them changes
        // made on any instance; connected before the first request is taken.
        let hub = crate::chat::Hub::default();
        let listener_conn = crate::chat::hub::listen(&state.pool).await?;
        tasks.spawn(crate::chat::hub::run(
            state.pool.clone(),
            hub.clone(),
            listener_conn,
            stop.clone(),
        ));
        let app = router(state.clone())
            .layer(axum::Extension(hub))
            .into_make_service_with_connect_info::<SocketAddr>();
        let shutdown = stop.clone().cancelled_owned();
        tasks.spawn(async move {
            if let Err(e) = axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
            {
                tracing::error!(error = %e, "the web server stopped");
            }
        });
        if background.mail {
            tasks.spawn(mail::delivery::run_worker(
                state.pool.clone(),
                state.config.clone(),
                stop.clone(),
            ));
        }
        tasks.spawn(audit::run_sealer(state.pool.clone(), stop.clone()));
        if background.scheduler {
            tasks.spawn(jobs::run_scheduler(
                state.pool.clone(),
                state.config.clone(),
                jobs(),
                stop.clone(),
            ));
        }
        Ok(Self { addr, stop, tasks })
    }

    /// Stops accepting requests, lets running ones finish, stops the background tasks.
    pub async fn stop(mut self) {
        self.stop.cancel();
        while self.tasks.join_next().await.is_some() {}
    }
}
