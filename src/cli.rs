//! The command line: `serve` (the default), `migrate`, `user add`, `audit verify`,
//! `jobs run-once`, `backup`. Settings come from the environment (or the same-named options).

use std::{
    io::BufRead,
    net::SocketAddr,
    path::PathBuf,
    process::ExitCode,
    sync::{Arc, LazyLock},
    time::Duration,
};

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use lettre::message::Mailbox;
use sqlx::postgres::PgConnectOptions;
use time::{OffsetDateTime, format_description::well_known::Rfc3339};
use url::Url;

use crate::{
    audit::{self, Actor, Verification},
    auth::{self, Passwords},
    backup,
    config::{Config, PersonnelRetention, Secret, default_base_url, parse},
    customers,
    domain::{Email, NewPassword, PersonName},
    jobs,
    keys::Keys,
    local_pg, mail, personnel,
    startup::{self, Background, Database, Server},
    state::AppState,
    users::{self, Role, UserError, UserFields},
    web::{Lang, Tr},
};

#[derive(Parser)]
#[command(
    name = "gdpr-register",
    about = "The register a small company keeps of the people it holds data about.",
    long_about = "The register a small company keeps of the people it holds data about.\n\n\
        With no DATABASE_URL, a private PostgreSQL cluster is kept under DATA_DIR/postgres; \
        with no SMTP_URL, mail is written as .eml files to DATA_DIR/outbox."
)]
struct Cli {
    #[command(flatten)]
    settings: Settings,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Args)]
struct Settings {
    /// PostgreSQL to use; unset: a private cluster under DATA_DIR/postgres
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true, value_parser = parse::database_url)]
    database_url: Option<Secret<PgConnectOptions>>,
    /// Folder for the private database cluster and the mail outbox
    #[arg(long, env = "DATA_DIR", global = true, default_value = "./data")]
    data_dir: PathBuf,
    /// Address and port the web server listens on
    #[arg(
        long,
        env = "LISTEN_ADDR",
        global = true,
        default_value = "127.0.0.1:8080"
    )]
    listen_addr: SocketAddr,
    /// Public address used in links in mails [default: from LISTEN_ADDR]
    #[arg(long, env = "BASE_URL", global = true, value_parser = parse::base_url)]
    base_url: Option<Url>,
    /// SMTP server, e.g. smtp://127.0.0.1:2525 or smtps://user:pass@host; unset: .eml files in DATA_DIR/outbox
    #[arg(long, env = "SMTP_URL", global = true, hide_env_values = true, value_parser = parse::smtp_url)]
    smtp_url: Option<Secret<Url>>,
    /// Sender of every mail
    #[arg(long, env = "MAIL_FROM", global = true, value_parser = parse::mailbox)]
    mail_from: Option<Mailbox>,
    /// The company's info address (receives chat and contact-form messages)
    #[arg(long, env = "INFO_ADDRESS", global = true, value_parser = parse::mailbox)]
    info_address: Option<Mailbox>,
    /// The company's name, as shown on pages and in mails
    #[arg(long, env = "COMPANY_NAME", global = true, value_parser = parse::company_name)]
    company_name: Option<String>,
    /// Minutes without activity after which a staff session ends
    #[arg(long, env = "SESSION_IDLE_MINUTES", global = true, default_value = "60", value_parser = parse::minutes)]
    session_idle_minutes: Duration,
    /// Minutes after login after which a staff session ends whatever the activity
    #[arg(long, env = "SESSION_MAX_MINUTES", global = true, default_value = "720", value_parser = parse::minutes)]
    session_max_minutes: Duration,
    /// Failed logins (per account or per address) before logins are refused for a while
    #[arg(long, env = "LOGIN_MAX_FAILURES", global = true, default_value = "5", value_parser = clap::value_parser!(i64).range(1..=1000))]
    login_max_failures: i64,
    /// Minutes for which logins are refused after too many failures
    #[arg(long, env = "LOGIN_LOCKOUT_MINUTES", global = true, default_value = "15", value_parser = parse::minutes)]
    login_lockout_minutes: Duration,
    /// Behind a reverse proxy (TLS terminated by nginx or the like): take the client's
    /// address from the last X-Forwarded-For entry, for login throttling
    #[arg(long, env = "TRUST_PROXY", global = true, default_value = "false", value_parser = clap::builder::BoolishValueParser::new())]
    trust_proxy: bool,
    /// A bearer token that lets other machines read /metrics (at least 24 characters);
    /// unset: only this machine (loopback) may
    #[arg(long, env = "METRICS_TOKEN", global = true, hide_env_values = true, value_parser = parse::metrics_token)]
    metrics_token: Option<Secret<String>>,
    /// Log lines as text, or as one JSON object per line (for a log collector)
    #[arg(
        long,
        env = "LOG_FORMAT",
        global = true,
        value_enum,
        default_value = "text"
    )]
    log_format: LogFormat,
    /// Delivery attempts before a mail is marked failed
    #[arg(long, env = "MAIL_MAX_ATTEMPTS", global = true, default_value = "10", value_parser = clap::value_parser!(i32).range(1..=100))]
    mail_max_attempts: i32,
    /// Mails sent at once, each over a connection of its own to the SMTP server
    #[arg(long, env = "SMTP_CONNECTIONS", global = true, default_value = "8", value_parser = clap::value_parser!(u16).range(1..=50))]
    smtp_connections: u16,
    /// Days a new contact may stay unconfirmed (in quarantine) before being deleted
    #[arg(long, env = "QUARANTINE_DAYS", global = true, default_value = "14", value_parser = clap::value_parser!(u32).range(1..=365))]
    quarantine_days: u32,
    /// Days after being added on which an unconfirmed contact is reminded
    #[arg(long, env = "QUARANTINE_REMINDER_DAYS", global = true, default_value = "3,7,12", value_parser = parse::day_list)]
    quarantine_reminder_days: parse::DayList,
    /// Years without communication after which a contact is deleted
    #[arg(long, env = "INACTIVITY_YEARS", global = true, default_value = "5", value_parser = clap::value_parser!(u32).range(1..=50))]
    inactivity_years: u32,
    /// Days after an employment ends until education, experience, courses, home address and private e-mail are deleted
    #[arg(long, env = "PERSONNEL_GRACE_DAYS", global = true, default_value = "30", value_parser = clap::value_parser!(u32).range(0..=3650))]
    personnel_grace_days: u32,
    /// Years after the end of the calendar year an employment ended until identity code, bank account and salary data are deleted
    #[arg(long, env = "PERSONNEL_PAYROLL_YEARS", global = true, default_value = "6", value_parser = clap::value_parser!(u32).range(6..=50))]
    personnel_payroll_years: u32,
    /// Years after an employment ends until the rest of the employee's record is deleted
    #[arg(long, env = "PERSONNEL_RECORD_YEARS", global = true, default_value = "10", value_parser = clap::value_parser!(u32).range(10..=50))]
    personnel_record_years: u32,
    /// Minutes without a personnel page after which the CEO enters a second-factor code again
    #[arg(long, env = "PERSONNEL_IDLE_MINUTES", global = true, default_value = "15", value_parser = parse::minutes)]
    personnel_idle_minutes: Duration,
    /// The application key, 64 hexadecimal digits; unset: DATA_DIR/app.key, made on the first run
    #[arg(long, env = "APP_KEY", global = true, hide_env_values = true, value_parser = parse::app_key)]
    app_key: Option<Keys>,
    /// Roles that must enrol a second factor before anything else opens, e.g. admin,ceo
    /// (the personnel register asks the CEO for one in any case)
    #[arg(long, env = "REQUIRE_SECOND_FACTOR", global = true, default_value = "none", value_parser = parse::role_list)]
    require_second_factor: parse::RoleList,
    /// Folder for the daily backup and the erasure journal; unset: neither
    #[arg(long, env = "BACKUP_DIR", global = true)]
    backup_dir: Option<PathBuf>,
    /// Daily backups kept in BACKUP_DIR (older ones are removed)
    #[arg(long, env = "BACKUP_KEEP", global = true, default_value = "14", value_parser = clap::value_parser!(u32).range(1..=1000))]
    backup_keep: u32,
    /// Days a contact-form message is kept before it is deleted
    #[arg(long, env = "CONTACT_RETENTION_DAYS", global = true, default_value = "180", value_parser = clap::value_parser!(u32).range(1..=3650))]
    contact_retention_days: u32,
    /// Days a chat conversation is kept after it ended; unset: until an operator deletes it
    #[arg(long, env = "CHAT_RETENTION_DAYS", global = true, value_parser = clap::value_parser!(u32).range(1..=3650))]
    chat_retention_days: Option<u32>,
    /// Other sites whose pages may carry the chat widget and the contact form,
    /// comma-separated origins, e.g. https://www.btb.fi
    #[arg(long, env = "CHAT_ORIGINS", global = true, default_value = "", value_parser = parse::origin_list)]
    chat_origins: parse::OriginList,
    /// DKIM selector: mail is signed for the domain of MAIL_FROM (with DKIM_KEY_FILE)
    #[arg(long, env = "DKIM_SELECTOR", global = true, requires = "dkim_key_file")]
    dkim_selector: Option<String>,
    /// DKIM private key: an RSA key in PEM, from `openssl genrsa -traditional 2048`
    /// (with DKIM_SELECTOR)
    #[arg(long, env = "DKIM_KEY_FILE", global = true, requires = "dkim_selector")]
    dkim_key_file: Option<PathBuf>,
}

impl Settings {
    fn into_config(self) -> anyhow::Result<Config> {
        let keys = Keys::load_or_create(self.app_key, &self.data_dir)
            .map_err(|e| e.context("the application key"))?;
        let mut config = Config::with_defaults(self.data_dir, self.listen_addr);
        config.keys = keys;
        config.database = self.database_url;
        config.base_url = self
            .base_url
            .unwrap_or_else(|| default_base_url(self.listen_addr));
        config.smtp_url = self.smtp_url;
        if let Some(from) = self.mail_from {
            config.mail_from = from;
        }
        if let Some(info) = self.info_address {
            config.info_address = info;
        }
        if let Some(name) = self.company_name {
            config.company_name = name;
        }
        config.session_idle = self.session_idle_minutes;
        config.session_absolute = self.session_max_minutes;
        config.login_max_failures = self.login_max_failures;
        config.login_lockout = self.login_lockout_minutes;
        config.trust_proxy = self.trust_proxy;
        config.metrics_token = self.metrics_token;
        config.mail_max_attempts = self.mail_max_attempts;
        config.smtp_connections = usize::from(self.smtp_connections);
        config.quarantine_days = self.quarantine_days;
        config.reminder_days = self.quarantine_reminder_days.0;
        config.inactivity_years = self.inactivity_years;
        config.personnel_retention = PersonnelRetention {
            grace_days: self.personnel_grace_days,
            payroll_years: self.personnel_payroll_years,
            record_years: self.personnel_record_years,
        };
        config.personnel_idle = self.personnel_idle_minutes;
        config.require_second_factor = self.require_second_factor.0;
        config.backup_dir = self.backup_dir;
        config.backup_keep = self.backup_keep;
        config.contact_retention_days = self.contact_retention_days;
        config.chat_retention_days = self.chat_retention_days;
        config.chat_origins = self.chat_origins.0;
        if let (Some(selector), Some(file)) = (&self.dkim_selector, &self.dkim_key_file) {
            let pem = std::fs::read_to_string(file)
                .map_err(|e| anyhow::anyhow!("DKIM_KEY_FILE {}: {e}", file.display()))?;
            let domain = config.mail_from.email.domain().to_string();
            config.dkim = Some(
                crate::mail::Dkim::new(selector, &domain, &pem)
                    .map_err(|e| anyhow::anyhow!("DKIM: {e}"))?,
            );
        }
        Ok(config)
    }
}

#[derive(Subcommand)]
enum Command {
    /// Serve the web application (the default)
    Serve,
    /// Apply database migrations and exit
    Migrate,
    /// Manage staff accounts
    #[command(subcommand)]
    User(UserCommand),
    /// The audit log
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Periodic jobs
    #[command(subcommand)]
    Jobs(JobsCommand),
    /// Back up the whole database, restore it, or check that a backup restores
    #[command(subcommand)]
    Backup(BackupCommand),
    /// Import people into the customer register, or employees into the personnel register,
    /// from CSV
    #[command(subcommand)]
    Import(ImportCommand),
    /// Export the customer register as CSV to standard output
    #[command(subcommand)]
    Export(ExportCommand),
    /// Measure the register extract of one person with many log entries (nothing is kept)
    Bench {
        /// Logged communications of the person
        #[arg(long, default_value = "1000", value_parser = clap::value_parser!(u32).range(0..=1_000_000))]
        entries: u32,
        /// How many extracts to make
        #[arg(long, default_value = "20", value_parser = clap::value_parser!(u32).range(1..=10_000))]
        rounds: u32,
    },
    /// Fill the customer register with realistic demo data
    DemoData {
        /// How many people (at one company per twenty people)
        #[arg(long, default_value = "1000", value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
        people: u64,
    },
}

#[derive(Subcommand)]
enum ImportCommand {
    /// Columns: company_name, company_address, company_website, company_email, company_phone,
    /// business_area, person_name, department, title, email, phone, language, legacy,
    /// last_contacted (only company_name, person_name and email are required).
    /// Every bad row is reported with its line number, and then nothing is imported;
    /// otherwise the rows are written a few hundred per transaction.
    Contacts {
        file: PathBuf,
        /// Check the file only; import nothing
        #[arg(long)]
        dry_run: bool,
        /// Import also addresses whose owners once asked to be erased
        #[arg(long)]
        confirm_erased: bool,
    },
    /// Columns: name, identity_code, email, home_address, bank_account, salary,
    /// employment_start, employment_end, duties, education, experience, courses (name,
    /// identity_code and employment_start are required). All or nothing: every bad row is
    /// reported with its line number, and then nothing is imported.
    Personnel {
        file: PathBuf,
        /// Check the file only; import nothing
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Subcommand)]
enum BackupCommand {
    /// Write a consistent backup of the whole database to FILE (mode 0600), also while
    /// the server runs
    Create { file: PathBuf },
    /// Restore FILE into an empty data folder or database (stop the server first); newer
    /// migrations are applied, and erasures recorded in a replaced database or in the
    /// erasure journal beside FILE are applied again
    Restore {
        file: PathBuf,
        /// Replace a database that holds a register
        #[arg(long)]
        force: bool,
        /// The erasure journal to apply, instead of the erasures.journal beside FILE
        #[arg(long, value_name = "JOURNAL")]
        erasures: Option<PathBuf>,
        /// Restore a backup made with another application key (its encrypted fields
        /// will be unreadable)
        #[arg(long)]
        key_mismatch_ok: bool,
    },
    /// Restore FILE into a throwaway cluster and compare its rows with those recorded
    Verify { file: PathBuf },
}

#[derive(Subcommand)]
enum ExportCommand {
    /// Every person, with the import columns and `status`
    Contacts,
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a staff account. The password is read as one line from standard input,
    /// unless --invite sends an invitation mail with a link to set it.
    Add(AddUser),
    /// Give an account another e-mail address at once (every open link of it stops working)
    SetEmail {
        /// The account's present address
        #[arg(long, value_parser = parse_email)]
        email: Email,
        #[arg(long, value_parser = parse_email)]
        new_email: Email,
    },
    /// Disable an account: it can no longer log in, and its sessions end
    Disable {
        #[arg(long, value_parser = parse_email)]
        email: Email,
    },
    /// Remove an account's second factor (a lost phone); the owner logs in with the
    /// password and enrols anew
    ResetSecondFactor {
        #[arg(long, value_parser = parse_email)]
        email: Email,
    },
}

#[derive(Args)]
struct AddUser {
    #[arg(long, value_parser = parse_email)]
    email: Email,
    #[arg(long, value_parser = parse_name)]
    name: PersonName,
    #[arg(long, value_enum)]
    role: RoleArg,
    /// May answer website chats
    #[arg(long)]
    chat_operator: bool,
    /// May read the contact-form inbox
    #[arg(long)]
    mailbox: bool,
    /// Mail an invitation link instead of reading a password
    #[arg(long)]
    invite: bool,
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Check the hash chain: exit 0 with the row count if intact, 1 naming the first broken row
    Verify {
        /// A head hash mailed out earlier: the chain must still reach it (newest rows not removed)
        #[arg(long, value_parser = parse_head)]
        head: Option<HeadHash>,
    },
}

#[derive(Subcommand)]
enum JobsCommand {
    /// Run every periodic job once and print what each did
    RunOnce {
        /// Act as if the clock read this instant (RFC 3339, e.g. 2027-01-15T09:00:00Z)
        #[arg(long, value_parser = parse_instant)]
        at: Option<OffsetDateTime>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
enum RoleArg {
    Admin,
    Employee,
    Ceo,
}

impl From<RoleArg> for Role {
    fn from(r: RoleArg) -> Self {
        match r {
            RoleArg::Admin => Role::Admin,
            RoleArg::Employee => Role::Employee,
            RoleArg::Ceo => Role::Ceo,
        }
    }
}

fn english(key: &str) -> String {
    Tr(Lang::En).get(key).to_string()
}

fn parse_email(value: &str) -> Result<Email, String> {
    Email::parse(value).map_err(english)
}

fn parse_name(value: &str) -> Result<PersonName, String> {
    PersonName::parse(value).map_err(english)
}

/// A head hash of the audit log, as `audit verify` prints it.
#[derive(Clone)]
struct HeadHash(Vec<u8>);

fn parse_head(value: &str) -> Result<HeadHash, String> {
    hex::decode(value.trim())
        .ok()
        .filter(|h| h.len() == 32)
        .map(HeadHash)
        .ok_or_else(|| {
            "must be a head hash as printed by `audit verify`: 64 hexadecimal digits".into()
        })
}

fn parse_instant(value: &str) -> Result<OffsetDateTime, String> {
    OffsetDateTime::parse(value, &Rfc3339)
        .map_err(|_| "must be an RFC 3339 instant, e.g. 2027-01-15T09:00:00Z".into())
}

/// A failure the user can fix (exit 2), or one that is not theirs (exit 1).
enum Failure {
    Usage(String),
    Other(anyhow::Error),
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        if e.downcast_ref::<local_pg::NotInstalled>().is_some()
            || e.downcast_ref::<backup::Refused>().is_some()
        {
            Failure::Usage(e.to_string())
        } else {
            Failure::Other(e)
        }
    }
}

impl From<sqlx::Error> for Failure {
    fn from(e: sqlx::Error) -> Self {
        Failure::Other(e.into())
    }
}

/// The version, and the newest migration this binary applies: a database at another
/// level belongs to another release.
static VERSION: LazyLock<String> = LazyLock::new(|| {
    let level = startup::MIGRATOR
        .iter()
        .map(|m| m.version)
        .max()
        .unwrap_or(0);
    format!("{} (migration level {level})", env!("CARGO_PKG_VERSION"))
});

pub fn main() -> ExitCode {
    let matches = Cli::command().version(VERSION.as_str()).get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    init_tracing(cli.settings.log_format);
    let command = cli.command.unwrap_or(Command::Serve);
    let config = match cli.settings.into_config() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: starting the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(command, config)) {
        Ok(code) => code,
        Err(Failure::Usage(message)) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
        Err(Failure::Other(e)) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_sessions=warn"))
        // Whatever RUST_LOG says: axum logs each client's address at trace level, and an
        // address is personal data. (sqlx logs statements, never their bound values.)
        .add_directive("axum::serve=debug".parse().expect("a valid directive"));
    let log = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => log.init(),
        LogFormat::Json => log.json().init(),
    }
}

async fn run(command: Command, config: Config) -> Result<ExitCode, Failure> {
    // Read a password before anything else, so a bad one costs no start-up.
    let password = match &command {
        Command::User(UserCommand::Add(add)) if !add.invite => Some(read_password()?),
        _ => None,
    };
    // A backup reaches the database as its owner, and a restore needs it unmigrated.
    if let Command::Backup(backup) = command {
        return run_backup(backup, &config).await;
    }
    let is_serve = matches!(command, Command::Serve);
    // Listening from the start: a stop asked for while the cluster or the server is
    // still starting is then a clean stop too, not the default end of the process.
    let stop = if is_serve {
        Some(stop_signal().map_err(|e| anyhow::anyhow!("listening for SIGINT and SIGTERM: {e}"))?)
    } else {
        None
    };
    let db = Database::connect(&config).await?;
    let result = match command {
        Command::Serve => serve(&db, config, stop.expect("listening when serving")).await,
        Command::Migrate => {
            println!("migrations applied");
            Ok(ExitCode::SUCCESS)
        }
        Command::User(UserCommand::Add(add)) => add_user(&db, &config, add, password).await,
        Command::User(UserCommand::SetEmail { email, new_email }) => {
            change_user(&db, &email, UserChange::SetEmail(new_email)).await
        }
        Command::User(UserCommand::Disable { email }) => {
            change_user(&db, &email, UserChange::Disable).await
        }
        Command::User(UserCommand::ResetSecondFactor { email }) => {
            change_user(&db, &email, UserChange::ResetSecondFactor).await
        }
        Command::Audit(AuditCommand::Verify { head }) => {
            verify_audit(&db, head.as_ref().map(|h| h.0.as_slice())).await
        }
        Command::Import(ImportCommand::Contacts {
            file,
            dry_run,
            confirm_erased,
        }) => import_contacts(&db, &config, &file, dry_run, confirm_erased).await,
        Command::Import(ImportCommand::Personnel { file, dry_run }) => {
            import_personnel(&db, &config, &file, dry_run).await
        }
        Command::Export(ExportCommand::Contacts) => {
            let mut conn = db.pool.acquire().await?;
            let stdout = std::io::stdout().lock();
            let count =
                customers::transfer::export(&mut conn, std::io::BufWriter::new(stdout)).await?;
            eprintln!("exported {count} people");
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench { entries, rounds } => {
            let mut times =
                crate::rights::bench_extract(&db.pool, &config, entries, rounds).await?;
            times.sort();
            let ms = |d: std::time::Duration| d.as_secs_f64() * 1000.0;
            println!(
                "extract (model + PDF + JSON) of a person with {entries} log entries, {rounds} rounds: \
                 min {:.1} ms, median {:.1} ms, max {:.1} ms",
                ms(times[0]),
                ms(times[times.len() / 2]),
                ms(times[times.len() - 1])
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::DemoData { people } => {
            let started = std::time::Instant::now();
            let (companies, people) = customers::demo::generate(&db.pool, people as usize).await?;
            // Fresh statistics, so the first pages get good plans.
            db.analyze(&["companies", "contacts"]).await?;
            println!(
                "added {people} people at {companies} companies in {:.1} s",
                started.elapsed().as_secs_f64()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Jobs(JobsCommand::RunOnce { at }) => {
            let at = at.unwrap_or_else(OffsetDateTime::now_utc);
            let reports = jobs::run_once(&db.pool, &startup::jobs(), at, &config).await;
            for r in &reports {
                println!("{}: {}", r.job, r.outcome);
            }
            Ok(if reports.iter().any(|r| r.failed) {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            })
        }
        Command::Backup(_) => unreachable!("handled before connecting"),
    };
    // The server stops the embedded cluster it ran on, even one it found running after a
    // crash; other commands stop it only if they started it.
    db.close(is_serve).await;
    result
}

async fn run_backup(command: BackupCommand, config: &Config) -> Result<ExitCode, Failure> {
    let started = std::time::Instant::now();
    let took = || format!("{:.1} s", started.elapsed().as_secs_f64());
    match command {
        BackupCommand::Create { file } => {
            let created = backup::create(config, startup::DATABASE_NAME, &file).await?;
            let h = &created.header;
            println!(
                "wrote {}: {} rows in {} tables, {} bytes, in {}",
                file.display(),
                h.rows(),
                h.tables.len(),
                created.bytes,
                took()
            );
            println!(
                "migration {}, key fingerprint {}",
                h.migration, h.key_fingerprint
            );
            if let Some(head) = &h.audit_head {
                println!("audit head: row {} {}", head.seq, head.hash);
            }
        }
        BackupCommand::Restore {
            file,
            force,
            erasures,
            key_mismatch_ok,
        } => {
            let options = backup::RestoreOptions {
                force,
                key_mismatch_ok,
                erasures,
            };
            let newest = startup::MIGRATOR.iter().map(|m| m.version).max();
            let restored = backup::restore(
                config,
                startup::DATABASE_NAME,
                newest.unwrap_or(0),
                &file,
                options,
            )
            .await?;
            // Connecting applies the newer migrations and, on the embedded default, grants
            // the application's role its rights on the restored tables.
            let db = Database::connect(config).await?;
            let erased = match db.pool.acquire().await {
                Ok(mut conn) => backup::apply_erasures(&mut conn, config, &restored).await,
                Err(e) => Err(e.into()),
            };
            db.close(false).await;
            let erased = erased?;
            let h = &restored.header;
            let migrations = startup::MIGRATOR
                .iter()
                .filter(|m| m.version > h.migration && !m.migration_type.is_down_migration())
                .count();
            println!(
                "restored the backup of {}: {} rows in {} tables, in {}",
                h.created_at,
                h.rows(),
                h.tables.len(),
                took()
            );
            println!("{migrations} newer migrations applied");
            if let Some((journal, newer)) = &restored.journal {
                println!(
                    "erasure journal {}: {newer} erasures since the backup",
                    journal.display()
                );
            }
            match erased {
                Some(n) => println!(
                    "erasures applied again: {n} (people erased in the replaced database or \
                     the erasure journal)"
                ),
                None => println!(
                    "restored into an empty database without an erasure journal: erasures made \
                     after this backup were not known here (see the README on backups)"
                ),
            }
        }
        BackupCommand::Verify { file } => {
            let verified = backup::verify(&file).await?;
            let h = &verified.header;
            println!(
                "{} restores: {} rows in {} tables, as recorded on {}, checked in {}",
                file.display(),
                h.rows(),
                h.tables.len(),
                h.created_at,
                took()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn read_password() -> Result<NewPassword, Failure> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| Failure::Usage(format!("reading the password from standard input: {e}")))?;
    let password = line.trim_end_matches(['\n', '\r']);
    NewPassword::parse(password).map_err(|key| {
        Failure::Usage(format!(
            "{} (the password is read as one line from standard input)",
            english(key)
        ))
    })
}

async fn add_user(
    db: &Database,
    config: &Config,
    add: AddUser,
    password: Option<NewPassword>,
) -> Result<ExitCode, Failure> {
    let invite = add.invite;
    let fields = UserFields {
        email: add.email,
        name: add.name,
        role: add.role.into(),
        chat_operator: add.chat_operator,
        mailbox: add.mailbox,
    };
    let actor = Actor::System("command-line");
    let hash = match &password {
        Some(p) => Some(Passwords::default().hash(p.expose()).await?),
        None => None,
    };
    let mut tx = db.pool.begin().await?;
    let id = match users::create(&mut tx, &fields, &actor).await {
        Ok(id) => id,
        Err(UserError::EmailTaken) => {
            return Err(Failure::Usage(format!(
                "{} already has an account",
                fields.email
            )));
        }
        Err(e) => return Err(Failure::Other(e.into())),
    };
    if let Some(hash) = &hash {
        users::set_password_hash(&mut tx, id, hash, &actor).await?;
    }
    if invite {
        let user = users::find(&mut tx, id).await?.expect("just created");
        users::send_invitation(&mut tx, config, &user, Lang::Sv, &actor).await?;
    }
    tx.commit().await?;
    println!("created {} ({}) as {}", fields.email, id, fields.role);
    if invite {
        let transport = mail::delivery::Transport::from_config(config)?;
        match mail::delivery::deliver_due(&db.pool, &transport, config).await {
            Ok(n) if n > 0 => match &config.smtp_url {
                Some(_) => println!("the invitation has been sent"),
                None => println!(
                    "the invitation was written to {} (no SMTP_URL is set)",
                    config.outbox_dir().display()
                ),
            },
            _ => println!("the invitation is queued and is sent once the mail server answers"),
        }
    }
    Ok(ExitCode::SUCCESS)
}

enum UserChange {
    SetEmail(Email),
    Disable,
    ResetSecondFactor,
}

/// The account changes made on the server, for what the administrator may not do (a
/// CEO's account) or cannot (a lost second factor).
async fn change_user(
    db: &Database,
    email: &Email,
    change: UserChange,
) -> Result<ExitCode, Failure> {
    let actor = Actor::System("command-line");
    let mut tx = db.pool.begin().await?;
    let user = users::find_by_email(&mut tx, email.as_str())
        .await?
        .ok_or_else(|| Failure::Usage(format!("{email} has no account")))?;
    let done = match change {
        UserChange::SetEmail(new_email) => {
            match users::set_email(&mut tx, user.id, &new_email, &actor).await {
                Ok(()) => format!("{email} is now {new_email}"),
                Err(UserError::EmailTaken) => {
                    return Err(Failure::Usage(format!(
                        "{new_email} already has an account"
                    )));
                }
                Err(e) => return Err(Failure::Other(e.into())),
            }
        }
        UserChange::Disable => {
            if users::disable(&mut tx, user.id, &actor).await? {
                format!("{email} is disabled")
            } else {
                format!("{email} was already disabled")
            }
        }
        UserChange::ResetSecondFactor => {
            if auth::second_factor::remove(&mut tx, user.id, &actor).await? {
                format!(
                    "{email} has no second factor now; it logs in with its password and enrols anew"
                )
            } else {
                format!("{email} had no second factor")
            }
        }
    };
    tx.commit().await?;
    println!("{done}");
    Ok(ExitCode::SUCCESS)
}

async fn import_contacts(
    db: &Database,
    config: &Config,
    file: &std::path::Path,
    dry_run: bool,
    confirm_erased: bool,
) -> Result<ExitCode, Failure> {
    let data = std::fs::read(file)
        .map_err(|e| Failure::Usage(format!("cannot read {}: {e}", file.display())))?;
    let mut conn = db.pool.acquire().await?;
    let options = customers::transfer::ImportOptions {
        dry_run,
        confirm_erased,
        actor: &Actor::System("command-line"),
        lang: Lang::En,
    };
    let report = customers::transfer::import(&mut conn, config, &data, &options).await?;
    let overdue = if report.overdue > 0 {
        format!(
            "; {} legacy people had no contact for {} years and go at the next inactivity sweep",
            report.overdue, config.inactivity_years
        )
    } else {
        String::new()
    };
    if !report.errors.is_empty() {
        for e in &report.errors {
            eprintln!("line {}: {}", e.line, e.reason);
        }
        return Err(Failure::Usage(if report.people == 0 {
            format!(
                "nothing was imported: {} rows need correcting",
                report.errors.len()
            )
        } else {
            format!(
                "the import stopped: {} people before that line were imported; \
                 the rest were not (run it again without the rows already in the register)",
                report.people
            )
        }));
    }
    if dry_run {
        println!(
            "the file is fine: {} people would be imported ({} legacy){overdue}",
            report.people, report.legacy
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "imported {} people ({} legacy, the rest in quarantine), {} new companies{overdue}",
        report.people, report.legacy, report.companies_created
    );
    Ok(ExitCode::SUCCESS)
}

async fn import_personnel(
    db: &Database,
    config: &Config,
    file: &std::path::Path,
    dry_run: bool,
) -> Result<ExitCode, Failure> {
    let data = std::fs::read(file)
        .map_err(|e| Failure::Usage(format!("cannot read {}: {e}", file.display())))?;
    let mut conn = db.pool.acquire().await?;
    let report = personnel::import::import(&mut conn, config, &data, dry_run).await?;
    if !report.errors.is_empty() {
        for e in &report.errors {
            eprintln!("line {}: {}", e.line, e.reason);
        }
        return Err(Failure::Usage(format!(
            "nothing was imported: the file has {} mistakes",
            report.errors.len()
        )));
    }
    if dry_run {
        println!(
            "the file is fine: {} employees would be imported",
            report.employees
        );
    } else {
        println!("imported {} employees", report.employees);
    }
    Ok(ExitCode::SUCCESS)
}

async fn verify_audit(db: &Database, expected_head: Option<&[u8]>) -> Result<ExitCode, Failure> {
    let mut conn = db.pool.acquire().await?;
    match audit::verify(&mut conn, expected_head).await? {
        Verification::Intact {
            rows,
            unsealed,
            head,
        } => {
            println!("audit log intact: {rows} rows");
            if let Some(head) = head {
                println!("head: row {} {}", head.seq, hex::encode(head.hash));
            }
            if unsealed > 0 {
                println!("{unsealed} newer rows wait to be sealed into the chain");
            }
            Ok(ExitCode::SUCCESS)
        }
        Verification::Broken { row_id, reason } => {
            println!("audit log broken at row {row_id}: {reason}");
            Ok(ExitCode::FAILURE)
        }
        Verification::HeadMissing { rows } => {
            println!(
                "audit log broken: its {rows} rows do not reach the head given (newer rows were removed)"
            );
            Ok(ExitCode::FAILURE)
        }
    }
}

async fn serve(
    db: &Database,
    config: Config,
    stop: impl std::future::Future<Output = ()>,
) -> Result<ExitCode, Failure> {
    let config = Arc::new(config);
    let listener = tokio::net::TcpListener::bind(config.listen_addr)
        .await
        .map_err(|e| Failure::Usage(format!("cannot listen on {}: {e}", config.listen_addr)))?;
    let state = AppState {
        pool: db.pool.clone(),
        config: config.clone(),
        passwords: Passwords::default(),
    };
    let server = Server::start(
        state,
        listener,
        Background {
            mail: true,
            scheduler: true,
        },
    )
    .await?;
    let mut conn = db.pool.acquire().await?;
    if users::count(&mut conn).await? == 0 {
        tracing::warn!(
            "no staff accounts yet; create the first administrator with \
             `cargo run -- user add --email you@example.com --name \"Your Name\" --role admin` \
             and type a password of at least 12 characters (or add --invite to get a link by mail)"
        );
    }
    drop(conn);
    if config.smtp_url.is_none() {
        tracing::info!(outbox = %config.outbox_dir().display(), "no SMTP_URL: mail is written as .eml files");
    }
    tracing::info!(
        "serving on {} — open it in a browser and log in with your staff account (Ctrl-C stops)",
        config.base_url
    );
    stop.await;
    tracing::info!("stopping");
    server.stop().await;
    Ok(ExitCode::SUCCESS)
}

/// Resolves at the first SIGINT or SIGTERM received once this has been called.
fn stop_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
    })
}
