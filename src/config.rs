//! Settings, read once from the environment (see `gdpr-register --help`).

use std::{fmt, net::SocketAddr, path::PathBuf, str::FromStr, time::Duration};

use lettre::message::Mailbox;
use sqlx::postgres::PgConnectOptions;
use url::Url;

use crate::{domain::Role, keys::Keys};

/// A value that must never reach a log: its `Debug` prints a placeholder.
#[derive(Clone)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    pub fn new(value: T) -> Self {
        Self(value)
    }
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Everything the application reads from its environment, already parsed.
#[derive(Clone, Debug)]
pub struct Config {
    /// `None`: start the embedded cluster under `data_dir`.
    pub database: Option<Secret<PgConnectOptions>>,
    pub data_dir: PathBuf,
    pub listen_addr: SocketAddr,
    pub base_url: Url,
    /// `None`: write mail as `.eml` files to `data_dir/outbox`.
    pub smtp_url: Option<Secret<Url>>,
    pub mail_from: Mailbox,
    pub info_address: Mailbox,
    pub company_name: String,
    pub session_idle: Duration,
    pub session_absolute: Duration,
    pub login_max_failures: i64,
    pub login_lockout: Duration,
    /// Behind a reverse proxy: the client's address is the last one in X-Forwarded-For.
    pub trust_proxy: bool,
    /// Lets `/metrics` answer a request from another machine that carries it as a
    /// bearer token; without it only loopback is answered.
    pub metrics_token: Option<Secret<String>>,
    pub mail_retry_base: Duration,
    pub mail_retry_max_delay: Duration,
    pub mail_max_attempts: i32,
    /// Mails sent at once, each over a connection of its own to the SMTP server.
    pub smtp_connections: usize,
    pub sent_mail_retention: Duration,
    pub invitation_validity: Duration,
    /// Days a new contact may stay unconfirmed before being deleted (R-CUST-12).
    pub quarantine_days: u32,
    /// Days after being added on which an unconfirmed contact is reminded.
    pub reminder_days: Vec<u32>,
    /// Years without communication after which a contact is deleted (R-CUST-7).
    pub inactivity_years: u32,
    /// How long after an employment ends its personnel data is kept (R-PERS-5).
    pub personnel_retention: PersonnelRetention,
    /// Time without a personnel request after which the CEO enters a code again (R-PERS-3).
    pub personnel_idle: Duration,
    /// The application key and what is derived from it (never in the database).
    pub keys: Keys,
    /// Roles that must have a second factor before anything opens. The personnel
    /// register asks for one whatever this says.
    pub require_second_factor: Vec<Role>,
    /// Where the daily backup and the erasure journal are written; `None`: neither.
    pub backup_dir: Option<PathBuf>,
    /// Daily backups kept in `backup_dir`.
    pub backup_keep: u32,
    /// Days a contact-form message is kept (R-FORM-5).
    pub contact_retention_days: u32,
    /// Days a chat conversation is kept after it ended; `None`: until deleted (R-CHAT-6).
    pub chat_retention_days: Option<u32>,
    /// Other sites (`https://www.btb.fi`) whose pages may carry the chat widget and the
    /// contact form; this application's own address always may.
    pub chat_origins: Vec<Url>,
    /// Signs outgoing mail (DKIM_SELECTOR, DKIM_KEY_FILE); `None`: unsigned.
    pub dkim: Option<crate::mail::Dkim>,
}

/// The periods after the end of an employment, each the law's minimum by default.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PersonnelRetention {
    /// Education, experience, courses, home address, private e-mail: not needed once the
    /// employment ends; kept this many days in case of a mistake.
    pub grace_days: u32,
    /// Identity code, bank account, salary data: payroll vouchers, counted from the end
    /// of the calendar year (Accounting Act 1336/1997 ch. 2 s. 10).
    pub payroll_years: u32,
    /// Name, dates, duties: an employment certificate may be asked for (Employment
    /// Contracts Act 55/2001 ch. 6 s. 7).
    pub record_years: u32,
}

impl Default for PersonnelRetention {
    fn default() -> Self {
        Self {
            grace_days: 30,
            payroll_years: 6,
            record_years: 10,
        }
    }
}

impl Config {
    pub fn outbox_dir(&self) -> PathBuf {
        self.data_dir.join("outbox")
    }

    /// Session cookies are marked Secure when the public address is https.
    pub fn is_https(&self) -> bool {
        self.base_url.scheme() == "https"
    }

    /// Whether a request's `Origin` is this application or a site allowed to carry the
    /// chat widget and the contact form.
    pub fn allows_origin(&self, origin: &str) -> bool {
        std::iter::once(&self.base_url)
            .chain(&self.chat_origins)
            .any(|allowed| allowed.origin().ascii_serialization() == origin)
    }

    /// An absolute URL for a path of this application, as used in mails.
    pub fn absolute_url(&self, path: &str) -> String {
        let base = self.base_url.as_str().trim_end_matches('/');
        format!("{base}{path}")
    }

    /// Defaults for everything, with the given data folder and listen address.
    pub fn with_defaults(data_dir: PathBuf, listen_addr: SocketAddr) -> Self {
        Self {
            database: None,
            base_url: default_base_url(listen_addr),
            data_dir,
            listen_addr,
            smtp_url: None,
            mail_from: "BTB Transformers Ab <no-reply@btb.fi>"
                .parse()
                .expect("valid default"),
            info_address: "info@btb.fi".parse().expect("valid default"),
            company_name: "BTB Transformers Ab".into(),
            session_idle: Duration::from_secs(60 * 60),
            session_absolute: Duration::from_secs(12 * 60 * 60),
            login_max_failures: 5,
            login_lockout: Duration::from_secs(15 * 60),
            trust_proxy: false,
            metrics_token: None,
            mail_retry_base: Duration::from_secs(30),
            mail_retry_max_delay: Duration::from_secs(60 * 60),
            mail_max_attempts: 10,
            smtp_connections: 8,
            sent_mail_retention: Duration::from_secs(30 * 24 * 60 * 60),
            invitation_validity: Duration::from_secs(7 * 24 * 60 * 60),
            quarantine_days: 14,
            reminder_days: vec![3, 7, 12],
            inactivity_years: 5,
            personnel_retention: PersonnelRetention::default(),
            personnel_idle: Duration::from_secs(15 * 60),
            keys: Keys::random(),
            require_second_factor: Vec::new(),
            backup_dir: None,
            backup_keep: 14,
            contact_retention_days: 180,
            chat_retention_days: None,
            chat_origins: Vec::new(),
            dkim: None,
        }
    }
}

pub fn default_base_url(listen_addr: SocketAddr) -> Url {
    let host = if listen_addr.ip().is_unspecified() {
        "localhost".to_string()
    } else {
        listen_addr.ip().to_string()
    };
    Url::parse(&format!("http://{host}:{}/", listen_addr.port())).expect("a valid URL")
}

/// Parsers used by the command line for environment values; each error names the problem.
pub mod parse {
    use super::*;

    pub fn database_url(value: &str) -> Result<Secret<PgConnectOptions>, String> {
        if !(value.starts_with("postgres://") || value.starts_with("postgresql://")) {
            return Err("must start with postgres:// or postgresql://".into());
        }
        PgConnectOptions::from_str(value)
            .map(Secret::new)
            .map_err(|_| "is not a valid PostgreSQL connection URL".into())
    }

    /// Long enough not to be guessed, and sendable in a header.
    pub fn metrics_token(value: &str) -> Result<Secret<String>, String> {
        if value.len() < 24 || !value.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(
                "must be at least 24 characters without spaces, e.g. from `openssl rand -hex 32`"
                    .into(),
            );
        }
        Ok(Secret::new(value.to_owned()))
    }

    pub fn smtp_url(value: &str) -> Result<Secret<Url>, String> {
        let url = Url::parse(value).map_err(|e| format!("is not a URL ({e})"))?;
        match url.scheme() {
            "smtp" | "smtps" if url.host_str().is_some() => Ok(Secret::new(url)),
            "smtp" | "smtps" => Err("needs a host, e.g. smtp://127.0.0.1:2525".into()),
            _ => Err("must start with smtp:// or smtps://".into()),
        }
    }

    pub fn base_url(value: &str) -> Result<Url, String> {
        let url = Url::parse(value).map_err(|e| format!("is not an absolute URL ({e})"))?;
        match url.scheme() {
            "http" | "https" if url.host_str().is_some() => Ok(url),
            _ => Err("must be an http:// or https:// URL with a host".into()),
        }
    }

    pub fn mailbox(value: &str) -> Result<Mailbox, String> {
        value
            .parse()
            .map_err(|_| "is not an e-mail address (e.g. Name <info@example.com>)".into())
    }

    pub fn minutes(value: &str) -> Result<Duration, String> {
        match value.parse::<u64>() {
            Ok(m) if m > 0 && m <= 60 * 24 * 366 => Ok(Duration::from_secs(m * 60)),
            _ => Err("must be a whole number of minutes, at least 1".into()),
        }
    }

    /// A list of days as one setting.
    #[derive(Clone, Debug)]
    pub struct DayList(pub Vec<u32>);

    /// Reminder days: whole days, ascending, e.g. `3,7,12`.
    pub fn day_list(value: &str) -> Result<DayList, String> {
        let days: Result<Vec<u32>, _> = value
            .split(',')
            .filter(|d| !d.trim().is_empty())
            .map(|d| d.trim().parse::<u32>())
            .collect();
        match days {
            Ok(days) if days.windows(2).all(|w| w[0] < w[1]) && days.iter().all(|d| *d >= 1) => {
                Ok(DayList(days))
            }
            _ => Err("must be whole days in ascending order, e.g. 3,7,12".into()),
        }
    }

    pub fn app_key(value: &str) -> Result<Keys, String> {
        Keys::parse(value)
    }

    /// Roles, comma-separated (`admin,ceo`), or `none`.
    #[derive(Clone, Debug)]
    pub struct RoleList(pub Vec<Role>);

    pub fn role_list(value: &str) -> Result<RoleList, String> {
        let mut roles = Vec::new();
        if value.trim() == "none" {
            return Ok(RoleList(roles));
        }
        for name in value.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let role = Role::parse(name).ok_or_else(|| {
                format!(
                    "{name:?} is not a role: give admin, employee and ceo, comma-separated, or none"
                )
            })?;
            if !roles.contains(&role) {
                roles.push(role);
            }
        }
        Ok(RoleList(roles))
    }

    /// Origins, comma-separated: scheme, host and port only (`https://www.btb.fi`).
    #[derive(Clone, Debug)]
    pub struct OriginList(pub Vec<Url>);

    pub fn origin_list(value: &str) -> Result<OriginList, String> {
        let mut origins = Vec::new();
        for item in value.split(',').map(str::trim).filter(|o| !o.is_empty()) {
            let url = Url::parse(item).map_err(|_| format!("{item:?} is not an origin"))?;
            let bare = matches!(url.scheme(), "http" | "https")
                && url.host_str().is_some()
                && url.path() == "/"
                && !item.ends_with('/')
                && url.query().is_none()
                && url.username().is_empty();
            if !bare {
                return Err(format!(
                    "{item:?} is not an origin: give scheme and host (and port), e.g. https://www.btb.fi"
                ));
            }
            origins.push(url);
        }
        Ok(OriginList(origins))
    }

    pub fn company_name(value: &str) -> Result<String, String> {
        let name = value.trim();
        if name.is_empty() || name.chars().count() > 200 {
            return Err("must be 1 to 200 characters".into());
        }
        Ok(name.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_not_printed_by_debug() {
        let mut config = Config::with_defaults("data".into(), "127.0.0.1:8080".parse().unwrap());
        config.smtp_url = Some(parse::smtp_url("smtp://user:hunter2@mail.example:25").unwrap());
        config.database = Some(parse::database_url("postgres://u:hunter2@db/x").unwrap());
        assert!(!format!("{config:?}").contains("hunter2"));
    }

    #[test]
    fn bad_values_are_refused_with_a_reason() {
        assert!(parse::smtp_url("http://x").unwrap_err().contains("smtp://"));
        assert!(
            parse::database_url("mysql://x")
                .unwrap_err()
                .contains("postgres://")
        );
        assert!(parse::base_url("/relative").is_err());
        assert!(parse::minutes("0").is_err());
        assert!(parse::mailbox("not an address").is_err());
        assert!(parse::day_list("7,3").is_err());
        assert!(parse::day_list("0,3").is_err());
        assert_eq!(parse::day_list("3, 7,12").unwrap().0, [3, 7, 12]);
        assert_eq!(
            parse::role_list("admin, ceo,admin").unwrap().0,
            [Role::Admin, Role::Ceo]
        );
        assert!(parse::role_list("none").unwrap().0.is_empty());
        assert!(parse::role_list("admin,boss").unwrap_err().contains("boss"));
        assert!(parse::role_list("none,admin").is_err());
        assert!(parse::metrics_token("short").is_err());
        assert!(parse::metrics_token("a token with spaces in it, long enough").is_err());
        assert!(parse::metrics_token(&"ab12".repeat(8)).is_ok());
        assert!(parse::origin_list("https://www.btb.fi, http://localhost:3000").is_ok());
        for bad in [
            "www.btb.fi",
            "https://www.btb.fi/",
            "https://www.btb.fi/chat",
            "ftp://x",
        ] {
            assert!(parse::origin_list(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn base_url_defaults_to_the_listen_address() {
        assert_eq!(
            default_base_url("0.0.0.0:9000".parse().unwrap()).as_str(),
            "http://localhost:9000/"
        );
    }
}
