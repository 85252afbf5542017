//! The SMTP client: lettre's connections, opened on sockets with `TCP_NODELAY` and kept
//! for the next mail. lettre writes a message's body and its closing `.` separately;
//! without `TCP_NODELAY` the kernel holds the `.` until the server's delayed
//! acknowledgement, some 40 ms per mail, and its own pool offers no way to set it.

use std::{
    sync::Mutex,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use lettre::{
    Message,
    transport::smtp::{
        authentication::{Credentials, DEFAULT_MECHANISMS},
        client::{AsyncSmtpConnection, TlsParameters},
        extension::ClientId,
    },
};
use percent_encoding::percent_decode_str;
use tokio::net::TcpStream;
use url::Url;

/// How long connecting to the server may take.
const TIMEOUT: Duration = Duration::from_secs(20);
/// A connection unused this long is closed rather than reused.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// A connection unused for less than this is taken to be open still, without the round
/// trip of a NOOP: no server drops a client that quickly. Should one have, the mail fails
/// before anything is sent and is tried again later.
const FRESH: Duration = Duration::from_secs(1);

enum Tls {
    None,
    /// STARTTLS if the server offers it (`?tls=opportunistic`).
    Opportunistic(TlsParameters),
    /// STARTTLS or fail (`?tls=required`).
    Required(TlsParameters),
    /// TLS from the start (`smtps://`).
    Wrapper(TlsParameters),
}

pub struct Smtp {
    host: String,
    port: u16,
    tls: Tls,
    hello: ClientId,
    credentials: Option<Credentials>,
    /// Connections kept open between mails, at most `keep`.
    idle: Mutex<Vec<(AsyncSmtpConnection, Instant)>>,
    keep: usize,
}

impl Smtp {
    /// Reads `SMTP_URL` as lettre's `from_url` does: `smtp://` (port 25, or 587 with
    /// `?tls=required|opportunistic`) or `smtps://` (465), user and password
    /// percent-encoded, and the path as the name given in EHLO. Keeps up to `keep`
    /// connections open between mails.
    pub fn from_url(url: &Url, keep: usize) -> anyhow::Result<Self> {
        let host = url.host_str().context("no host")?.to_owned();
        let tls_param = url.query_pairs().find(|(k, _)| k == "tls").map(|(_, v)| v);
        let params = || TlsParameters::new(host.clone());
        let (port, tls) = match (url.scheme(), tls_param.as_deref()) {
            ("smtp", None) => (25, Tls::None),
            ("smtp", Some("required")) => (587, Tls::Required(params()?)),
            ("smtp", Some("opportunistic")) => (587, Tls::Opportunistic(params()?)),
            ("smtps", _) => (465, Tls::Wrapper(params()?)),
            (scheme, tls) => bail!("unknown scheme {scheme} or tls={tls:?}"),
        };
        let hello = match url.path().trim_matches('/') {
            "" => ClientId::default(),
            name => ClientId::Domain(name.to_owned()),
        };
        let decode = |s: &str| percent_decode_str(s).decode_utf8().map(|s| s.into_owned());
        let credentials = match url.password() {
            Some(password) => Some(Credentials::new(
                decode(url.username()).context("user name")?,
                decode(password).context("password")?,
            )),
            None => None,
        };
        Ok(Self {
            port: url.port().unwrap_or(port),
            host,
            tls,
            hello,
            credentials,
            idle: Mutex::new(Vec::new()),
            keep,
        })
    }

    /// Sends the mail over a kept connection if one still answers, else a new one. An
    /// error says what happened and whether trying again may help.
    pub async fn send(&self, message: &Message) -> Result<(), (String, bool)> {
        let mut conn = self.connection().await?;
        let sent = conn.send(message.envelope(), &message.formatted()).await;
        // lettre breaks off a connection on any error; a sound one serves the next mail.
        if !conn.has_broken() {
            let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
            if idle.len() < self.keep {
                idle.push((conn, Instant::now()));
            }
        }
        sent.map(drop)
            .map_err(|e| (e.to_string(), !e.is_permanent()))
    }

    async fn connection(&self) -> Result<AsyncSmtpConnection, (String, bool)> {
        loop {
            let kept = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
            match kept {
                Some((mut conn, since)) => {
                    let idle = since.elapsed();
                    if idle < FRESH || (idle < IDLE_TIMEOUT && conn.test_connected().await) {
                        return Ok(conn);
                    }
                    conn.abort().await;
                }
                None => return self.connect().await,
            }
        }
    }

    async fn connect(&self) -> Result<AsyncSmtpConnection, (String, bool)> {
        let failed = |e: lettre::transport::smtp::Error| (e.to_string(), !e.is_permanent());
        let mut conn = match &self.tls {
            // lettre opens the TLS itself before the greeting (without `TCP_NODELAY`).
            Tls::Wrapper(params) => AsyncSmtpConnection::connect_tokio1(
                (self.host.as_str(), self.port),
                Some(TIMEOUT),
                &self.hello,
                Some(params.clone()),
                None,
            )
            .await
            .map_err(failed)?,
            _ => {
                let tcp = tokio::time::timeout(
                    TIMEOUT,
                    TcpStream::connect((self.host.as_str(), self.port)),
                )
                .await
                .map_err(|_| ("connecting to the mail server timed out".to_string(), true))?
                .and_then(|tcp| tcp.set_nodelay(true).map(|()| tcp))
                .map_err(|e| (format!("connecting to the mail server: {e}"), true))?;
                AsyncSmtpConnection::connect_with_transport(Box::new(tcp), &self.hello)
                    .await
                    .map_err(failed)?
            }
        };
        match &self.tls {
            Tls::Opportunistic(params) if conn.can_starttls() => {
                conn.starttls(params.clone(), &self.hello)
                    .await
                    .map_err(failed)?;
            }
            Tls::Required(params) => {
                conn.starttls(params.clone(), &self.hello)
                    .await
                    .map_err(failed)?;
            }
            _ => {}
        }
        if let Some(credentials) = &self.credentials {
            conn.auth(DEFAULT_MECHANISMS, credentials)
                .await
                .map_err(failed)?;
        }
        Ok(conn)
    }
}
