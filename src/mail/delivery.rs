//! The delivery worker. Each instance sends through a database session of its own, and a
//! claim on a mail names that session: while it lives, no other instance takes the mail;
//! when the instance dies, its session ends with it and the mail is free at once. Rows are
//! claimed with `FOR UPDATE SKIP LOCKED`, so any number of instances share the queue and
//! no mail is sent twice. A batch's pace lives in its row, so it holds across instances.

use std::{path::PathBuf, sync::Arc, time::Duration};

use anyhow::Context;
use lettre::{
    Message,
    message::{
        MultiPart, SinglePart,
        header::{ContentType, HeaderName, HeaderValue},
    },
};
use sqlx::{Connection, PgConnection, PgPool, postgres::PgListener};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{Attachment, files, smtp::Smtp};
use crate::config::Config;

/// Where mail goes.
#[derive(Clone)]
pub enum Transport {
    Smtp(Arc<Smtp>),
    /// `.eml` files in this folder.
    Files(PathBuf),
}

impl Transport {
    pub fn from_config(config: &Config) -> anyhow::Result<Self> {
        match &config.smtp_url {
            Some(url) => Ok(Transport::Smtp(Arc::new(
                Smtp::from_url(url.expose()).context("SMTP_URL")?,
            ))),
            None => {
                let dir = config.outbox_dir();
                files::create_dir(&dir)
                    .with_context(|| format!("creating the outbox folder {}", dir.display()))?;
                Ok(Transport::Files(dir))
            }
        }
    }

    /// Sends the mail; an error says what happened, without addresses, and whether trying
    /// again may help (a server's permanent refusal will not).
    async fn send(&self, id: Uuid, message: Message) -> Result<(), (String, bool)> {
        match self {
            Transport::Smtp(smtp) => smtp
                .send(&message)
                .await
                .map_err(|(error, retryable)| (without_addresses(&error), retryable)),
            Transport::Files(dir) => files::write(dir, id, &message.formatted())
                .await
                .map_err(|e| (format!("writing the .eml file: {e}"), true)),
        }
    }

    /// Removes what the transport keeps of a mail that is no longer stored.
    async fn forget(&self, id: Uuid) -> std::io::Result<()> {
        match self {
            Transport::Smtp(_) => Ok(()),
            Transport::Files(dir) => files::remove(dir, id).await,
        }
    }
}

/// How many due mails one claim takes (mails of a paced batch are claimed one at a time).
const CLAIM: i64 = 20;
/// While another instance holds claims, how often to look whether it still lives.
const LIVENESS_CHECK: Duration = Duration::from_secs(5);
/// When nothing is due, how often to look anyway (a missed notification).
const POLL: Duration = Duration::from_secs(30);
/// The channel on which deletions of stored mail are announced.
const DELETED: &str = "mail_outbox_deleted";

/// A mail claimed for sending.
struct Claimed {
    id: Uuid,
    recipient: String,
    subject: String,
    body_text: String,
    body_html: String,
    headers: serde_json::Value,
    attempts: i32,
    batch_id: Option<Uuid>,
    handed_at: Option<time::OffsetDateTime>,
}

/// One instance's sender: the database session its claims are tied to.
struct Sender {
    conn: PgConnection,
    /// Recorded as `sent_by`.
    name: String,
}

impl Sender {
    async fn connect(pool: &PgPool) -> sqlx::Result<Self> {
        let options = pool
            .connect_options()
            .as_ref()
            .clone()
            .application_name("gdpr-register mail delivery")
            // A mail's outcome is written twice for every mail sent. Without waiting for
            // the disk each time, a mailing goes many times faster; what a crash of the
            // process leaves is still on record, and only a crash of the database server
            // itself could lose the last moment's outcomes (and send those mails again).
            .options([("synchronous_commit", "off")]);
        let mut conn = PgConnection::connect_with(&options).await?;
        let session = sqlx::query_scalar!(r#"SELECT pg_backend_pid() AS "pid!""#)
            .fetch_one(&mut conn)
            .await?;
        let name = format!("process {} session {session}", std::process::id());
        Ok(Self { conn, name })
    }

    /// Sends what is due now until nothing is. Returns how many were sent. When `stop` is
    /// cancelled, what is still claimed goes back to the queue.
    async fn deliver_due(
        &mut self,
        transport: &Transport,
        config: &Config,
        stop: &CancellationToken,
    ) -> anyhow::Result<usize> {
        let mut sent = 0;
        loop {
            let mut due = self.claim().await?;
            due.extend(self.claim_paced().await?);
            if due.is_empty() {
                return Ok(sent);
            }
            for mail in due {
                if stop.is_cancelled() {
                    self.release().await?;
                    return Ok(sent);
                }
                if self.deliver(transport, config, mail).await? {
                    sent += 1;
                }
            }
        }
    }

    /// Claims due mail that belongs to no paced batch.
    async fn claim(&mut self) -> sqlx::Result<Vec<Claimed>> {
        sqlx::query_as!(
            Claimed,
            "UPDATE mail_outbox SET status = 'sending', claimed_pid = pg_backend_pid(), claimed_at = now()
             WHERE id IN (
                 SELECT o.id FROM mail_outbox o
                 WHERE o.status IN ('queued', 'sending')
                   AND ((o.status = 'queued' AND o.next_attempt_at <= now())
                        OR (o.status = 'sending'
                            AND mail_claimable(o.status, o.next_attempt_at, o.claimed_pid, o.claimed_at)))
                   AND (o.batch_id IS NULL OR o.batch_id <> ALL (ARRAY(
                           SELECT b.id FROM mail_batches b WHERE b.per_second IS NOT NULL OR b.paused)))
                 ORDER BY o.next_attempt_at
                 LIMIT $1
                 FOR UPDATE SKIP LOCKED)
             RETURNING id, recipient, subject, body_text, body_html, headers, attempts, batch_id, handed_at",
            CLAIM,
        )
        .fetch_all(&mut self.conn)
        .await
    }

    /// Claims one mail of the paced batch whose turn it is, and moves the batch's next turn
    /// on by one interval, in one statement: however many instances ask, a batch gives out
    /// no more than its rate. The turns are counted from the last turn, not from when it
    /// was taken, so a sender that wakes a little late loses nothing; after a pause the
    /// next turn is now.
    async fn claim_paced(&mut self) -> sqlx::Result<Option<Claimed>> {
        sqlx::query_as!(
            Claimed,
            "WITH turn AS (
                 UPDATE mail_batches
                 SET next_send_at = greatest(next_send_at + make_interval(secs => 1.0 / per_second), now())
                 WHERE id = (
                     -- Per batch, the first mail it could give (a lateral LIMIT 1, so the
                     -- queue is read by batch through its index, never as a whole).
                     SELECT b.id FROM mail_batches b
                     CROSS JOIN LATERAL (
                         SELECT 1 FROM mail_outbox o
                         WHERE o.batch_id = b.id AND o.status IN ('queued', 'sending')
                           AND mail_claimable(o.status, o.next_attempt_at, o.claimed_pid, o.claimed_at)
                         LIMIT 1) AS due
                     WHERE b.per_second IS NOT NULL AND NOT b.paused AND b.next_send_at <= now()
                     ORDER BY b.next_send_at
                     LIMIT 1
                     FOR UPDATE OF b SKIP LOCKED)
                 RETURNING id)
             UPDATE mail_outbox SET status = 'sending', claimed_pid = pg_backend_pid(), claimed_at = now()
             WHERE id = (
                 SELECT o.id FROM mail_outbox o JOIN turn ON o.batch_id = turn.id
                 WHERE o.status IN ('queued', 'sending') AND mail_claimable(o.status, o.next_attempt_at, o.claimed_pid, o.claimed_at)
                 ORDER BY o.next_attempt_at
                 LIMIT 1
                 FOR UPDATE OF o SKIP LOCKED)
             RETURNING id, recipient, subject, body_text, body_html, headers, attempts, batch_id, handed_at",
        )
        .fetch_optional(&mut self.conn)
        .await
    }

    /// Puts this session's claims back in the queue.
    async fn release(&mut self) -> sqlx::Result<()> {
        sqlx::query!(
            "UPDATE mail_outbox SET status = 'queued', claimed_pid = NULL, claimed_at = NULL
             WHERE status = 'sending' AND claimed_pid = pg_backend_pid()"
        )
        .execute(&mut self.conn)
        .await?;
        Ok(())
    }

    /// Before a mail of a mailing goes to the mail server: whether it is still this
    /// session's to send (its person may have unsubscribed, its mailing been paused or
    /// cancelled since the claim), noting that it is handed over. A mail handed over by an
    /// instance that then died is not sent again, but marked failed: its recipient may
    /// have it already, and no one gets a mailing twice.
    async fn hand_over(&mut self, mail: &Claimed) -> sqlx::Result<bool> {
        if mail.handed_at.is_some() {
            sqlx::query!(
                "UPDATE mail_outbox
                 SET status = 'failed', claimed_pid = NULL, claimed_at = NULL,
                     last_error = 'the sending instance stopped while handing it to the mail server; not sent again'
                 WHERE id = $1",
                mail.id
            )
            .execute(&mut self.conn)
            .await?;
            return Ok(false);
        }
        let handed = sqlx::query!(
            "UPDATE mail_outbox SET handed_at = now()
             WHERE id = $1 AND status = 'sending' AND claimed_pid = pg_backend_pid()
               AND NOT EXISTS (SELECT 1 FROM mail_batches b WHERE b.id = batch_id AND b.paused)",
            mail.id
        )
        .execute(&mut self.conn)
        .await?
        .rows_affected();
        if handed == 0 {
            // Paused since the claim: back to the queue (gone, if stopped or cancelled).
            sqlx::query!(
                "UPDATE mail_outbox SET status = 'queued', claimed_pid = NULL, claimed_at = NULL
                 WHERE id = $1 AND status = 'sending' AND claimed_pid = pg_backend_pid()",
                mail.id
            )
            .execute(&mut self.conn)
            .await?;
        }
        Ok(handed == 1)
    }

    /// Sends one claimed mail and records the outcome. True if it was sent.
    async fn deliver(
        &mut self,
        transport: &Transport,
        config: &Config,
        mail: Claimed,
    ) -> anyhow::Result<bool> {
        if mail.batch_id.is_some() && !self.hand_over(&mail).await? {
            return Ok(false);
        }
        let attachments = sqlx::query_as!(
            Attachment,
            "SELECT filename, content_type, content FROM mail_attachments
             WHERE mail_id = $1 ORDER BY position",
            mail.id
        )
        .fetch_all(&mut self.conn)
        .await?;
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
            attachments,
        ) {
            Ok(message) => transport.send(mail.id, message).await,
            Err(e) => Err((e, false)),
        };
        match outcome {
            Ok(()) => {
                // The bodies and attachments go once delivered: they hold personal data
                // and working links.
                let recorded = sqlx::query!(
                    "WITH attachments AS (DELETE FROM mail_attachments WHERE mail_id = $1)
                     UPDATE mail_outbox
                     SET status = 'sent', sent_at = now(), sent_by = $2, attempts = attempts + 1,
                         last_error = NULL, claimed_pid = NULL, claimed_at = NULL,
                         body_text = '', body_html = '',
                         recipient = CASE WHEN kind = ANY($3) THEN '' ELSE recipient END
                     WHERE id = $1",
                    mail.id,
                    self.name,
                    &super::kinds::FORGET_RECIPIENT as &[&str],
                )
                .execute(&mut self.conn)
                .await?
                .rows_affected();
                if recorded == 0 {
                    // Erased while it was being sent: no copy may outlive the row.
                    transport.forget(mail.id).await?;
                }
                Ok(true)
            }
            Err((error, retryable)) => {
                if !retryable {
                    // A refused address: mailings pass it over until staff clear it.
                    sqlx::query!(
                        "INSERT INTO mail_bounces (contact_id)
                         SELECT contact_id FROM mail_outbox WHERE id = $1 AND contact_id IS NOT NULL
                         ON CONFLICT (contact_id) DO NOTHING",
                        mail.id
                    )
                    .execute(&mut self.conn)
                    .await?;
                }
                let attempts = mail.attempts + 1;
                let give_up = !retryable || attempts >= config.mail_max_attempts;
                let delay = retry_delay(config, attempts);
                tracing::warn!(mail = %mail.id, attempts, give_up, %error, "mail not delivered");
                sqlx::query!(
                    "UPDATE mail_outbox
                     SET attempts = $2, last_error = $3, claimed_pid = NULL, claimed_at = NULL,
                         handed_at = NULL, status = CASE WHEN $4 THEN 'failed' ELSE 'queued' END,
                         next_attempt_at = now() + make_interval(secs => $5)
                     WHERE id = $1",
                    mail.id,
                    attempts,
                    error,
                    give_up,
                    delay.as_secs_f64(),
                )
                .execute(&mut self.conn)
                .await?;
                Ok(false)
            }
        }
    }
}

/// Sends what is due now, until nothing is due. Returns how many were sent.
pub async fn deliver_due(
    pool: &PgPool,
    transport: &Transport,
    config: &Config,
) -> anyhow::Result<usize> {
    let mut sender = Sender::connect(pool).await?;
    let sent = sender
        .deliver_due(transport, config, &CancellationToken::new())
        .await?;
    sender.conn.close().await?;
    Ok(sent)
}

/// Exponential backoff from the base delay, capped.
fn retry_delay(config: &Config, attempts: i32) -> Duration {
    let factor = 2u32.saturating_pow(attempts.saturating_sub(1).clamp(0, 20) as u32);
    config
        .mail_retry_base
        .saturating_mul(factor)
        .min(config.mail_retry_max_delay)
}

/// An error text without e-mail addresses: a server that refuses a recipient usually
/// names it, and neither the log nor the outbox may hold it.
fn without_addresses(text: &str) -> String {
    let part = |c: char| !c.is_whitespace() && !"<>()[]\"',;:".contains(c);
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('@') {
        let start = rest[..at]
            .char_indices()
            .rev()
            .find(|(_, c)| !part(*c))
            .map_or(0, |(i, c)| i + c.len_utf8());
        let end = rest[at + 1..]
            .find(|c: char| !part(c))
            .map_or(rest.len(), |i| at + 1 + i);
        out.push_str(&rest[..start]);
        out.push_str("[address]");
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

#[allow(clippy::too_many_arguments)]
fn build_message(
    config: &Config,
    id: Uuid,
    recipient: &str,
    subject: &str,
    headers: &[(String, String)],
    text: String,
    html: String,
    attachments: Vec<Attachment>,
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
    let list = headers.iter().any(|(name, _)| name == "List-Unsubscribe");
    let bodies = MultiPart::alternative_plain_html(text, html);
    let result = if attachments.is_empty() {
        builder.multipart(bodies)
    } else {
        let mut mixed = MultiPart::mixed().multipart(bodies);
        for (n, a) in attachments.into_iter().enumerate() {
            // Named by position: a file name may hold personal data.
            let kind = ContentType::parse(&a.content_type)
                .map_err(|_| format!("attachment {} has no valid content type", n + 1))?;
            let part: SinglePart =
                lettre::message::Attachment::new(a.filename).body(a.content, kind);
            mixed = mixed.singlepart(part);
        }
        builder.multipart(mixed)
    };
    let mut message = result.map_err(|e| without_addresses(&e.to_string()))?;
    if let Some(dkim) = &config.dkim {
        dkim.sign(&mut message, list);
    }
    Ok(message)
}

/// Runs until cancelled: delivers what is due, then sleeps until woken by a NOTIFY from
/// the outbox, the next mail falls due, or a poll interval passes. With `.eml` files, it
/// also removes the files of mail deleted from the outbox, as soon as the deletion commits.
pub async fn run_worker(pool: PgPool, config: Arc<Config>, stop: CancellationToken) {
    let transport = match Transport::from_config(&config) {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "mail delivery cannot start");
            return;
        }
    };
    let mut listener = match PgListener::connect_with(&pool).await {
        Ok(mut l) => l
            .listen_all(["mail_outbox", DELETED])
            .await
            .map(|()| l)
            .ok(),
        Err(_) => None,
    };
    // Files of mail deleted while no instance was running.
    sweep(&pool, &transport).await;
    let mut sender = None;
    loop {
        if sender.is_none() {
            sender = Sender::connect(&pool)
                .await
                .inspect_err(|e| tracing::error!(error = %e, "mail delivery cannot connect"))
                .ok();
        }
        if let Some(s) = sender.as_mut()
            && let Err(e) = s.deliver_due(&transport, &config, &stop).await
        {
            tracing::error!(error = format!("{e:#}"), "mail delivery pass failed");
            // A new session next time: the claims of this one lapse with it.
            sender = None;
        }
        let wait = next_due_in(&pool).await.unwrap_or(POLL).min(POLL);
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
            notified = async {
                match listener.as_mut() {
                    Some(l) => l.recv().await,
                    None => std::future::pending().await,
                }
            } => match notified {
                Ok(n) if n.channel() == DELETED => sweep(&pool, &transport).await,
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_secs(1)).await,
            }
        }
    }
}

/// Removes the `.eml` files of mail no longer stored.
async fn sweep(pool: &PgPool, transport: &Transport) {
    let Transport::Files(dir) = transport else {
        return;
    };
    let swept = async {
        let mut conn = pool.acquire().await?;
        files::sweep(&mut conn, dir).await
    };
    if let Err(e) = swept.await {
        tracing::error!(
            error = format!("{e:#}"),
            "removing .eml files of deleted mail"
        );
    }
}

/// How long until something may be sent: the next retry, the next turn of a paced batch,
/// or, while another instance holds claims, the next look at whether it still lives.
async fn next_due_in(pool: &PgPool) -> Option<Duration> {
    // Each part reads an index in order and stops at its first row: the queue may hold a
    // mailing of many thousands.
    let seconds = sqlx::query_scalar!(
        "SELECT EXTRACT(EPOCH FROM (least(
             (SELECT o.next_attempt_at FROM mail_outbox o
              WHERE o.status = 'queued'
                AND (o.batch_id IS NULL OR o.batch_id <> ALL (ARRAY(
                        SELECT b.id FROM mail_batches b WHERE b.per_second IS NOT NULL OR b.paused)))
              ORDER BY o.next_attempt_at LIMIT 1),
             (SELECT min(greatest(b.next_send_at, first.at)) FROM mail_batches b
              CROSS JOIN LATERAL (SELECT o.next_attempt_at AS at FROM mail_outbox o
                                  WHERE o.batch_id = b.id AND o.status = 'queued'
                                  ORDER BY o.next_attempt_at LIMIT 1) first
              WHERE b.per_second IS NOT NULL AND NOT b.paused),
             (SELECT now() + make_interval(secs => $1)
              WHERE EXISTS (SELECT 1 FROM mail_outbox WHERE status = 'sending'))
         ) - now()))::float8",
        LIVENESS_CHECK.as_secs_f64(),
    )
    .fetch_one(pool)
    .await
    .ok()??;
    Some(Duration::from_secs_f64(seconds.max(0.0)))
}

#[cfg(test)]
mod tests {
    use super::without_addresses;

    #[test]
    fn addresses_are_taken_out_of_error_texts() {
        for (error, expected) in [
            (
                "permanent error (550): 5.1.1 <Åsa.Öberg@kund.test>: Recipient address rejected",
                "permanent error (550): 5.1.1 <[address]>: Recipient address rejected",
            ),
            (
                "550 user asa@kund.test unknown, asa@kund.test",
                "550 user [address] unknown, [address]",
            ),
            ("connection refused", "connection refused"),
            ("@", "[address]"),
        ] {
            assert_eq!(without_addresses(error), expected, "{error}");
        }
    }
}
