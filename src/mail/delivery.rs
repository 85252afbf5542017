//! The delivery worker. Rows are taken with `FOR UPDATE SKIP LOCKED`, so any number of
//! running instances share the queue and no mail is sent twice.

use std::time::Duration;

use anyhow::Context;
use lettre::{
    AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
    message::{
        MultiPart,
        header::{HeaderName, HeaderValue},
    },
};
use sqlx::{PgPool, postgres::PgListener};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::config::Config;

/// Where mail goes.
#[derive(Clone)]
pub enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Files(AsyncFileTransport<Tokio1Executor>),
}

impl Transport {
    pub fn from_config(config: &Config) -> anyhow::Result<Self> {
        match &config.smtp_url {
            Some(url) => {
                let transport =
                    AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose().as_str())
                        .context("SMTP_URL")?
                        .timeout(Some(Duration::from_secs(20)))
                        .build();
                Ok(Transport::Smtp(transport))
            }
            None => {
                let dir = config.outbox_dir();
                std::fs::create_dir_all(&dir)
                    .with_context(|| format!("creating the outbox folder {}", dir.display()))?;
                Ok(Transport::Files(AsyncFileTransport::new(dir)))
            }
        }
    }

    async fn send(&self, message: Message) -> Result<(), String> {
        match self {
            Transport::Smtp(t) => t.send(message).await.map(drop).map_err(|e| e.to_string()),
            Transport::Files(t) => t.send(message).await.map(drop).map_err(|e| e.to_string()),
        }
    }
}

/// How many due mails one pass takes.
const BATCH: i64 = 20;
/// How long a claim lasts: longer than any send of a batch can take.
const CLAIM_SECONDS: f64 = 600.0;

/// Sends what is due now, in batches, until nothing is due. Returns how many were sent.
pub async fn deliver_due(
    pool: &PgPool,
    transport: &Transport,
    config: &Config,
) -> anyhow::Result<usize> {
    let mut sent = 0;
    loop {
        let (done, more) = deliver_batch(pool, transport, config).await?;
        sent += done;
        if !more {
            return Ok(sent);
        }
    }
}

/// Claims a batch in a short transaction, then sends each mail and records its outcome on
/// its own: no row is locked during an SMTP conversation, and a mail once recorded as
/// sent is never taken again.
async fn deliver_batch(
    pool: &PgPool,
    transport: &Transport,
    config: &Config,
) -> anyhow::Result<(usize, bool)> {
    let due = sqlx::query!(
        "UPDATE mail_outbox SET status = 'sending', claimed_until = now() + make_interval(secs => $2)
         WHERE id IN (
             SELECT id FROM mail_outbox
             WHERE (status = 'queued' AND next_attempt_at <= now())
                OR (status = 'sending' AND claimed_until < now())
             ORDER BY next_attempt_at
             LIMIT $1
             FOR UPDATE SKIP LOCKED)
         RETURNING id, recipient, subject, body_text, body_html, headers, attempts",
        BATCH,
        CLAIM_SECONDS,
    )
    .fetch_all(pool)
    .await?;
    let full = due.len() as i64 == BATCH;
    let mut sent = 0;
    for mail in due {
        let headers: Vec<(String, String)> =
            serde_json::from_value(mail.headers).unwrap_or_default();
        let outcome = match build_message(
            config,
            mail.id,
            &mail.recipient,
            &mail.subject,
            &headers,
            mail.body_text,
            mail.body_html,
        ) {
            Ok(message) => transport.send(message).await.map_err(|e| (e, true)),
            Err(e) => Err((e, false)),
        };
        match outcome {
            Ok(()) => {
                sent += 1;
                // The bodies go once delivered: they hold working links.
                sqlx::query!(
                    "UPDATE mail_outbox
                     SET status = 'sent', sent_at = now(), attempts = attempts + 1, last_error = NULL,
                         claimed_until = NULL, body_text = '', body_html = ''
                     WHERE id = $1",
                    mail.id
                )
                .execute(pool)
                .await?;
            }
            Err((error, retryable)) => {
                let attempts = mail.attempts + 1;
                let give_up = !retryable || attempts >= config.mail_max_attempts;
                let delay = retry_delay(config, attempts);
                tracing::warn!(mail = %mail.id, attempts, give_up, %error, "mail not delivered");
                sqlx::query!(
                    "UPDATE mail_outbox
                     SET attempts = $2, last_error = $3, claimed_until = NULL,
                         status = CASE WHEN $4 THEN 'failed' ELSE 'queued' END,
                         next_attempt_at = now() + make_interval(secs => $5)
                     WHERE id = $1",
                    mail.id,
                    attempts,
                    error,
                    give_up,
                    delay.as_secs_f64(),
                )
                .execute(pool)
                .await?;
            }
        }
    }
    Ok((sent, full))
}

/// Exponential backoff from the base delay, capped.
fn retry_delay(config: &Config, attempts: i32) -> Duration {
    let factor = 2u32.saturating_pow(attempts.saturating_sub(1).clamp(0, 20) as u32);
    config
        .mail_retry_base
        .saturating_mul(factor)
        .min(config.mail_retry_max_delay)
}

fn build_message(
    config: &Config,
    id: Uuid,
    recipient: &str,
    subject: &str,
    headers: &[(String, String)],
    text: String,
    html: String,
) -> Result<Message, String> {
    let to = recipient
        .parse()
        .map_err(|_| "the recipient's address is not valid".to_string())?;
    let host = config.base_url.host_str().unwrap_or("localhost");
    let mut builder = Message::builder()
        .from(config.mail_from.clone())
        .to(to)
        .subject(subject)
        .message_id(Some(format!("<{id}@{host}>")));
    for (name, value) in headers {
        let name = HeaderName::new_from_ascii(name.clone()).map_err(|e| e.to_string())?;
        builder = builder.raw_header(HeaderValue::new(name, value.clone()));
    }
    builder
        .multipart(MultiPart::alternative_plain_html(text, html))
        .map_err(|e| e.to_string())
}

/// Runs until cancelled: delivers what is due, then sleeps until woken by a NOTIFY from
/// the outbox, the next retry falls due, or a poll interval passes.
pub async fn run_worker(pool: PgPool, config: std::sync::Arc<Config>, stop: CancellationToken) {
    let transport = match Transport::from_config(&config) {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "mail delivery cannot start");
            return;
        }
    };
    let mut listener = match PgListener::connect_with(&pool).await {
        Ok(mut l) => l.listen("mail_outbox").await.map(|()| l).ok(),
        Err(_) => None,
    };
    const POLL: Duration = Duration::from_secs(30);
    loop {
        if let Err(e) = deliver_due(&pool, &transport, &config).await {
            tracing::error!(error = format!("{e:#}"), "mail delivery pass failed");
        }
        let wait = next_due_in(&pool).await.unwrap_or(POLL).min(POLL);
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
            notified = async {
                match listener.as_mut() {
                    Some(l) => l.recv().await.map(drop),
                    None => std::future::pending().await,
                }
            } => {
                if notified.is_err() {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }
}

async fn next_due_in(pool: &PgPool) -> Option<Duration> {
    let seconds = sqlx::query_scalar!(
        "SELECT EXTRACT(EPOCH FROM (min(coalesce(claimed_until, next_attempt_at)) - now()))::float8
         FROM mail_outbox WHERE status IN ('queued', 'sending')"
    )
    .fetch_one(pool)
    .await
    .ok()??;
    Some(Duration::from_secs_f64(seconds.max(0.0)))
}
