//! The test harness: a private PostgreSQL, a real SMTP listener, and the application
//! served on a random port, driven over HTTP like a browser would.

pub mod browser;
pub mod pg;
pub mod smtp;

use std::{path::PathBuf, sync::Arc, time::Duration};

use gdpr_register::{
    audit::Actor,
    auth::Passwords,
    config::{Config, Secret},
    domain::{Email, PersonName},
    jobs,
    keys::Keys,
    startup::{self, Background, Server},
    state::AppState,
    users::{self, Role, UserFields},
};
use reqwest::{StatusCode, redirect};
use sqlx::{PgPool, postgres::PgConnectOptions};
use time::OffsetDateTime;

pub use smtp::SmtpSink;

pub const PASSWORD: &str = "correct horse battery staple";

pub struct TestApp {
    pub base: String,
    pub pool: PgPool,
    pub db: PgConnectOptions,
    pub config: Arc<Config>,
    pub smtp: SmtpSink,
    pub client: reqwest::Client,
    pub data_dir: tempfile::TempDir,
    /// Kept for the test's lifetime (or until [`TestApp::stop_server`]); its tasks end
    /// with the test's runtime.
    server: Option<Server>,
}

/// What a test may change before the app starts.
pub fn test_config(data_dir: PathBuf, smtp_url: Option<&str>) -> Config {
    // The key file in the data folder: the command line, given the same folder, uses it.
    let keys = Keys::load_or_create(None, &data_dir).unwrap();
    let mut config = Config::with_defaults(data_dir, "127.0.0.1:0".parse().unwrap());
    config.keys = keys;
    config.smtp_url = smtp_url.map(|u| Secret::new(u.parse().unwrap()));
    config.mail_retry_base = Duration::from_millis(100);
    config.mail_retry_max_delay = Duration::from_millis(400);
    config
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    pub async fn spawn_with(adjust: impl FnOnce(&mut Config)) -> Self {
        Self::spawn_setup(Setup::default(), adjust).await
    }

    pub async fn spawn_setup(setup: Setup, adjust: impl FnOnce(&mut Config)) -> Self {
        let smtp = SmtpSink::start().await;
        let data_dir = tempfile::tempdir().unwrap();
        let mut config = test_config(data_dir.path().to_path_buf(), Some(&smtp.url()));
        adjust(&mut config);
        let db = pg::fresh_database().await;
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(setup.pool_size)
            .connect_with(db.clone())
            .await
            .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        if config.base_url.port() == Some(0) {
            config.base_url = format!("http://{addr}/").parse().unwrap();
        }
        let config = Arc::new(config);
        let server = start_server_with(&pool, &config, listener, setup).await;
        Self {
            base: format!("http://{addr}"),
            pool,
            db,
            config,
            smtp,
            client: new_client(),
            data_dir,
            server: Some(server),
        }
    }

    /// Another browser: no cookies shared with `client`.
    pub fn new_browser(&self) -> reqwest::Client {
        new_client()
    }

    /// Stops the server and its background tasks, as an operator does before a restore;
    /// the database stays up.
    pub async fn stop_server(&mut self) {
        if let Some(server) = self.server.take() {
            server.stop().await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.get_as(&self.client, path).await
    }

    pub async fn get_as(&self, client: &reqwest::Client, path: &str) -> reqwest::Response {
        client.get(self.url(path)).send().await.unwrap()
    }

    /// The CSRF token of the browser's session (any page carries it).
    pub async fn csrf_token(&self, client: &reqwest::Client) -> String {
        let page = self
            .get_as(client, "/no-such-page")
            .await
            .text()
            .await
            .unwrap();
        meta_csrf(&page).expect("a csrf-token meta tag")
    }

    /// Posts a form the way the browser would: with the session's CSRF token.
    pub async fn post_form(&self, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        self.post_form_as(&self.client, path, fields).await
    }

    pub async fn post_form_as(
        &self,
        client: &reqwest::Client,
        path: &str,
        fields: &[(&str, &str)],
    ) -> reqwest::Response {
        let token = self.csrf_token(client).await;
        let mut form: Vec<(&str, &str)> = fields.to_vec();
        form.push(("csrf_token", &token));
        client
            .post(self.url(path))
            .form(&form)
            .send()
            .await
            .unwrap()
    }

    /// Creates an account with [`PASSWORD`] directly in the database.
    pub async fn create_user(&self, email: &str, role: Role) -> uuid::Uuid {
        self.create_user_with(email, role, |_| {}).await
    }

    /// Creates an account with [`PASSWORD`], with flags set by `adjust`.
    pub async fn create_user_with(
        &self,
        email: &str,
        role: Role,
        adjust: impl FnOnce(&mut UserFields),
    ) -> uuid::Uuid {
        let mut fields = UserFields {
            email: Email::parse(email).unwrap(),
            name: PersonName::parse(&format!("Test {}", role.as_str())).unwrap(),
            role,
            chat_operator: false,
            mailbox: false,
        };
        adjust(&mut fields);
        let hash = Passwords::default().hash(PASSWORD).await.unwrap();
        let mut tx = self.pool.begin().await.unwrap();
        let actor = Actor::System("test");
        let id = users::create(&mut tx, &fields, &actor).await.unwrap();
        users::set_password_hash(&mut tx, id, &hash, &actor)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        id
    }

    pub async fn login_as(&self, client: &reqwest::Client, email: &str) -> reqwest::Response {
        self.post_form_as(
            client,
            "/login",
            &[("email", email), ("password", PASSWORD)],
        )
        .await
    }

    /// A signed-in browser for a new user of the role.
    pub async fn signed_in(&self, role: Role) -> reqwest::Client {
        self.signed_in_with(role, |_| {}).await
    }

    /// A signed-in browser for a new user of the role, with flags set by `adjust`.
    pub async fn signed_in_with(
        &self,
        role: Role,
        adjust: impl FnOnce(&mut UserFields),
    ) -> reqwest::Client {
        let email = format!(
            "{}-{}@btb.test",
            role.as_str(),
            uuid::Uuid::new_v4().simple()
        );
        self.create_user_with(&email, role, adjust).await;
        let client = self.new_browser();
        let response = self.login_as(&client, &email).await;
        assert_eq!(
            response.status(),
            StatusCode::SEE_OTHER,
            "logging in as {role}"
        );
        client
    }

    /// Enrols a second factor for the signed-in browser's account, as its owner would:
    /// the secret read off the page, the first code computed from it.
    pub async fn enrol_second_factor(&self, client: &reqwest::Client) -> SecondFactor {
        let page = self
            .get_as(client, "/account/second-factor")
            .await
            .text()
            .await
            .unwrap();
        let secret = texts(&page, "code#totp-secret")
            .pop()
            .expect("the secret as text");
        let code = totp_code(&secret, 0);
        let r = self
            .post_form_as(client, "/account/second-factor", &[("code", &code)])
            .await;
        assert_eq!(r.status(), StatusCode::OK, "confirming the second factor");
        let recovery_codes = texts(&r.text().await.unwrap(), "#recovery-codes code");
        assert_eq!(recovery_codes.len(), 10);
        SecondFactor {
            secret,
            recovery_codes,
        }
    }

    /// The path of the first link to `prefix` in the `n`th mail received (from 0), waiting
    /// for it to arrive.
    pub async fn mailed_link(&self, n: usize, prefix: &str) -> String {
        let mail = self.smtp.wait_for(n + 1).await.remove(n);
        let link = mail.link(&format!("{}{prefix}", self.base));
        link[self.base.len()..].to_string()
    }

    /// The command line, on this app's database, mail server and data folder.
    pub fn cli(&self) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_gdpr-register"));
        cmd.env("DATABASE_URL", pg::database_url(&self.db))
            .env("SMTP_URL", self.smtp.url())
            .env("DATA_DIR", self.data_dir.path())
            .stdin(std::process::Stdio::null());
        cmd
    }

    /// Imports people from CSV text with the command line, as an administrator would.
    pub async fn import_csv(&self, csv: &str) {
        let path = self
            .data_dir
            .path()
            .join(format!("{}.csv", uuid::Uuid::new_v4().simple()));
        std::fs::write(&path, csv).unwrap();
        let out = self
            .cli()
            .args(["import", "contacts"])
            .arg(&path)
            .output()
            .await
            .unwrap();
        assert!(
            out.status.success(),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub async fn run_jobs_at(&self, at: OffsetDateTime) -> Vec<jobs::Report> {
        let reports = jobs::run_once(&self.pool, &startup::jobs(), at, &self.config).await;
        assert!(reports.iter().all(|r| !r.failed), "{reports:?}");
        reports
    }

    /// Waits until no mail is queued (at most 20 seconds).
    pub async fn outbox_drained(&self) {
        for _ in 0..200 {
            let queued: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM mail_outbox WHERE status IN ('queued', 'sending')",
            )
            .fetch_one(&self.pool)
            .await
            .unwrap();
            if queued == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("mail is still queued");
    }
}

/// An enrolled second factor, as its owner holds it.
pub struct SecondFactor {
    pub secret: String,
    pub recovery_codes: Vec<String>,
}

/// The code an authenticator app shows for the base32 `secret`, `steps` 30-second steps
/// from now. A code is accepted once, so each use in a test takes the next step.
pub fn totp_code(secret: &str, steps: i64) -> String {
    let bytes = totp_rs::Secret::Encoded(secret.to_string())
        .to_bytes()
        .unwrap();
    let totp = totp_rs::TOTP::new_unchecked(
        totp_rs::Algorithm::SHA1,
        6,
        1,
        30,
        bytes,
        None,
        String::new(),
    );
    let at = OffsetDateTime::now_utc().unix_timestamp() + steps * 30;
    totp.generate(at as u64)
}

pub async fn pool(db: &PgConnectOptions) -> PgPool {
    sqlx::postgres::PgPoolOptions::new()
        .max_connections(8)
        .connect_with(db.clone())
        .await
        .unwrap()
}

/// What a test may choose about the instance: the size of its pool, and its password
/// hasher (whose permits a test can hold to keep logins waiting).
pub struct Setup {
    pub pool_size: u32,
    pub passwords: Passwords,
    /// Whether the instance delivers mail (else another does, or none).
    pub sends_mail: bool,
}

impl Default for Setup {
    fn default() -> Self {
        Self {
            pool_size: 8,
            passwords: Passwords::default(),
            sends_mail: true,
        }
    }
}

/// Starts one more instance of the application on the same database.
pub async fn start_server(
    pool: &PgPool,
    config: &Arc<Config>,
    listener: tokio::net::TcpListener,
) -> Server {
    start_server_with(pool, config, listener, Setup::default()).await
}

async fn start_server_with(
    pool: &PgPool,
    config: &Arc<Config>,
    listener: tokio::net::TcpListener,
    setup: Setup,
) -> Server {
    let state = AppState {
        pool: pool.clone(),
        config: config.clone(),
        passwords: setup.passwords,
    };
    Server::start(
        state,
        listener,
        Background {
            mail: setup.sends_mail,
            scheduler: false,
        },
    )
    .await
    .unwrap()
}

pub fn new_client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(redirect::Policy::none())
        .build()
        .unwrap()
}

pub fn meta_csrf(page: &str) -> Option<String> {
    let doc = scraper::Html::parse_document(page);
    let selector = scraper::Selector::parse(r#"meta[name="csrf-token"]"#).unwrap();
    doc.select(&selector)
        .next()
        .and_then(|m| m.value().attr("content"))
        .map(str::to_string)
}

/// The texts of the elements matching a CSS selector.
pub fn texts(page: &str, selector: &str) -> Vec<String> {
    let doc = scraper::Html::parse_document(page);
    let selector = scraper::Selector::parse(selector).unwrap();
    doc.select(&selector)
        .map(|e| e.text().collect::<String>().trim().to_string())
        .collect()
}

pub fn location(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}
