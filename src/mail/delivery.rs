//! The delivery worker. Each instance sends through a database session of its own, and a
//! claim on a mail names that session: while it lives, no other instance takes the mail;
//! when the instance dies, its session ends with it and the mail is free at once. Rows are
//! claimed with `FOR UPDATE SKIP LOCKED`, so any number of instances share the queue and
//! no mail is sent twice. Mails are claimed as they go to the mail server, as many at a
//! time as there are connections to it, and their outcomes recorded together: a mailing
//! costs the database a few statements per group, not per mail. A batch's pace lives in
//! its row, so it holds across instances.

use std::{
    collections::{HashMap, VecDeque},
    path::PathBuf,
    sync::Arc,
    time::Duration,
};

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
                Smtp::from_url(url.expose(), config.smtp_connections).context("SMTP_URL")?,
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

/// Senders per instance.
const LANES: usize = 2;
/// How many candidates one look at a mailing's queue finds, per connection to the mail
/// server.
const CANDIDATES_PER_CONNECTION: usize = 32;
/// While another instance holds claims, how often to look whether it still lives.
const LIVENESS_CHECK: Duration = Duration::from_secs(5);
/// When nothing is due, how often to look anyway (a missed notification).
const POLL: Duration = Duration::from_secs(30);
/// The channel on which deletions of stored mail are announced.
const DELETED: &str = "mail_outbox_deleted";

/// A mail taken for sending.
struct Claimed {
    id: Uuid,
    recipient: String,
    subject: String,
    body_text: String,
    body_html: String,
    headers: serde_json::Value,
    attempts: i32,
    has_attachments: bool,
}

/// An instance's senders, each with a database session of its own: while the mails of
/// one are with the mail server, the other records outcomes and claims the next. They
/// share the candidates they find, and the connections to the mail server.
struct Senders {
    lanes: Vec<Sender>,
    /// The instance, as `sent_by` records it.
    sent_by: String,
    candidates: tokio::sync::Mutex<VecDeque<Uuid>>,
}

impl Senders {
    async fn connect(pool: &PgPool, config: &Config) -> sqlx::Result<Self> {
        let mut lanes = Vec::with_capacity(LANES);
        for lane in 1..=LANES.min(config.smtp_connections.max(1)) {
            lanes.push(Sender::connect(pool, lane).await?);
        }
        let sessions: Vec<String> = lanes.iter().map(|l| l.session.to_string()).collect();
        Ok(Self {
            sent_by: format!(
                "process {} sessions {}",
                std::process::id(),
                sessions.join("+")
            ),
            lanes,
            candidates: tokio::sync::Mutex::new(VecDeque::new()),
        })
    }

    /// Sends what is due now, until nothing is; returns how many were sent. At most
    /// `SMTP_CONNECTIONS` mails are with the mail server at any time, shared out among
    /// the senders.
    async fn deliver_due(
        &mut self,
        transport: &Transport,
        config: &Config,
        stop: &CancellationToken,
    ) -> anyhow::Result<usize> {
        let lanes = self.lanes.len();
        let connections = config.smtp_connections.max(lanes);
        let candidates = &self.candidates;
        let sent_by = self.sent_by.as_str();
        let passes =
            futures::future::join_all(self.lanes.iter_mut().enumerate().map(|(n, lane)| {
                let group = (connections + n) / lanes;
                lane.deliver_due(transport, config, group, candidates, sent_by, stop)
            }))
            .await;
        passes.into_iter().sum()
    }

    async fn close(self) -> sqlx::Result<()> {
        for lane in self.lanes {
            lane.conn.close().await?;
        }
        Ok(())
    }
}

/// One of an instance's senders: the database session its claims are tied to.
struct Sender {
    conn: PgConnection,
    session: i32,
}

impl Sender {
    /// Connects sender `lane` (from 1) of this instance.
    async fn connect(pool: &PgPool, lane: usize) -> sqlx::Result<Self> {
        let options = pool
            .connect_options()
            .as_ref()
            .clone()
            .application_name(&format!("gdpr-register mail delivery {lane}"))
            .options([
                // A mail's state is written twice for every mail sent. Without waiting
                // for the disk each time, a mailing goes many times faster; what a crash
                // of the process leaves is still on record, and only a crash of the
                // database server itself could lose the last moment's outcomes.
                ("synchronous_commit", "off"),
                // The same few statements run thousands of times: planned once, unlike
                // the pool's queries (planned for each call's values).
                ("plan_cache_mode", "auto"),
                // A mailing of thousands queued at once leaves the table's statistics
                // behind for a while; a bitmap scan planned on them would read the whole
                // mailing to find the first few mails due.
                ("enable_bitmapscan", "off"),
            ]);
        let mut conn = PgConnection::connect_with(&options).await?;
        let session = sqlx::query_scalar!(r#"SELECT pg_backend_pid() AS "pid!""#)
            .fetch_one(&mut conn)
            .await?;
        Ok(Self { conn, session })
    }

    /// Sends what is due now until nothing is, `group` mails at a time, taking
    /// candidates from those the instance's senders share. Returns how many were sent.
    /// When `stop` is cancelled, it stops between groups.
    async fn deliver_due(
        &mut self,
        transport: &Transport,
        config: &Config,
        group: usize,
        candidates: &tokio::sync::Mutex<VecDeque<Uuid>>,
        sent_by: &str,
        stop: &CancellationToken,
    ) -> anyhow::Result<usize> {
        let mut sent = 0;
        while !stop.is_cancelled() {
            let offered: Vec<Uuid> = {
                let mut candidates = candidates.lock().await;
                if candidates.is_empty() {
                    let limit = config.smtp_connections * CANDIDATES_PER_CONNECTION;
                    candidates.extend(self.find_candidates(limit).await?);
                }
                let take = group.min(candidates.len());
                candidates.drain(..take).collect()
            };
            let due = self.claim(group, &offered).await?;
            if due.is_empty() {
                if offered.is_empty() {
                    break;
                }
                // Taken by another instance meanwhile: on to the next.
                continue;
            }
            sent += self.deliver(transport, config, due, sent_by).await?;
        }
        Ok(sent)
    }

    /// Notes which mails of the unpaced mailings are due, in order, without taking them:
    /// one read of a mailing's queue serves many claims. (Each claim reading it afresh
    /// would first pass over what earlier claims left behind, longer the further a
    /// mailing of thousands has come.)
    async fn find_candidates(&mut self, limit: usize) -> sqlx::Result<Vec<Uuid>> {
        sqlx::query_scalar!(
            r#"SELECT due.id AS "id!" FROM mail_batches b
               CROSS JOIN LATERAL (
                   SELECT m.id FROM mail_outbox m
                   WHERE m.batch_id = b.id AND m.status IN ('queued', 'sending')
                     AND mail_claimable(m.status, m.next_attempt_at, m.claimed_pid, m.claimed_at)
                   ORDER BY m.next_attempt_at
                   LIMIT $1) due
               WHERE b.per_second IS NULL AND NOT b.paused
               LIMIT $1"#,
            limit as i64,
        )
        .fetch_all(&mut self.conn)
        .await
    }

    /// Takes up to `limit` mails to send now, in one statement: first those of the paced
    /// mailing whose turn it is, then due mail of no mailing (a password reset must not
    /// wait behind a newsletter), then the `offered` candidates still due.
    ///
    /// A paced mailing gives as many mails as turns have come, and its next turn moves on
    /// by as many intervals in the same statement: however many instances ask, it gives
    /// out no more than its rate. The turns are counted from the last turn, not from when
    /// they were taken, so a sender that wakes a little late loses nothing; after a pause
    /// the next turn is now.
    async fn claim(&mut self, limit: usize, offered: &[Uuid]) -> sqlx::Result<Vec<Claimed>> {
        sqlx::query_as!(
            Claimed,
            r#"WITH turn AS (
                   UPDATE mail_batches b
                   SET next_send_at = greatest(
                           b.next_send_at + make_interval(secs => due.turns::float8 / b.per_second),
                           now())
                   FROM (
                       SELECT b.id,
                              least($1::int,
                                    floor(extract(EPOCH FROM now() - b.next_send_at) * b.per_second)::int + 1)
                                  AS turns
                       FROM mail_batches b
                       -- A lateral LIMIT 1: the queue is read by mailing through its index,
                       -- never as a whole.
                       CROSS JOIN LATERAL (
                           SELECT 1 FROM mail_outbox m
                           WHERE m.batch_id = b.id AND m.status IN ('queued', 'sending')
                             AND mail_claimable(m.status, m.next_attempt_at, m.claimed_pid, m.claimed_at)
                           LIMIT 1) AS any_due
                       WHERE b.per_second IS NOT NULL AND NOT b.paused AND b.next_send_at <= now()
                       ORDER BY b.next_send_at
                       LIMIT 1
                       FOR UPDATE OF b SKIP LOCKED) due
                   WHERE b.id = due.id
                   RETURNING b.id, due.turns)
               SELECT id AS "id!", recipient AS "recipient!", subject AS "subject!",
                      body_text AS "body_text!", body_html AS "body_html!", headers AS "headers!",
                      attempts AS "attempts!", has_attachments AS "has_attachments!"
               FROM mail_take(ARRAY(
                   (SELECT paced.id FROM (
                        SELECT m.id FROM mail_outbox m JOIN turn ON m.batch_id = turn.id
                        WHERE m.status IN ('queued', 'sending')
                          AND mail_claimable(m.status, m.next_attempt_at, m.claimed_pid, m.claimed_at)
                        ORDER BY m.next_attempt_at
                        LIMIT (SELECT turns FROM turn)
                        FOR UPDATE OF m SKIP LOCKED) paced)
                   UNION ALL
                   (SELECT single.id FROM (
                        SELECT m.id FROM mail_outbox m
                        WHERE m.batch_id IS NULL AND m.status IN ('queued', 'sending')
                          AND mail_claimable(m.status, m.next_attempt_at, m.claimed_pid, m.claimed_at)
                        ORDER BY m.next_attempt_at
                        LIMIT $1
                        FOR UPDATE SKIP LOCKED) single)
                   UNION ALL
                   (SELECT candidate.id FROM (
                        SELECT m.id FROM mail_outbox m
                        WHERE m.id = ANY($2) AND m.status IN ('queued', 'sending')
                          AND mail_claimable(m.status, m.next_attempt_at, m.claimed_pid, m.claimed_at)
                          AND NOT EXISTS (
                              SELECT 1 FROM mail_batches b
                              WHERE b.id = m.batch_id AND (b.per_second IS NOT NULL OR b.paused))
                        FOR UPDATE OF m SKIP LOCKED) candidate)
                   LIMIT $1))"#,
            limit as i32,
            offered,
        )
        .fetch_all(&mut self.conn)
        .await
    }

    /// Sends the claimed mails at once, each over a connection of its own, and records
    /// the outcomes. Returns how many were sent.
    async fn deliver(
        &mut self,
        transport: &Transport,
        config: &Config,
        mails: Vec<Claimed>,
        sent_by: &str,
    ) -> anyhow::Result<usize> {
        let mut attachments = self.attachments(&mails).await?;
        let outcomes = futures::future::join_all(mails.into_iter().map(|mail| {
            let headers: Vec<(String, String)> =
                serde_json::from_value(mail.headers).unwrap_or_default();
            let built = build_message(
                config,
                mail.id,
                &mail.recipient,
                &mail.subject,
                &headers,
                mail.body_text,
                mail.body_html,
                attachments.remove(&mail.id).unwrap_or_default(),
            );
            async move {
                let outcome = match built {
                    Ok(message) => transport.send(mail.id, message).await,
                    Err(e) => Err((e, false)),
                };
                (mail.id, mail.attempts, outcome)
            }
        }))
        .await;
        let mut sent = Vec::with_capacity(outcomes.len());
        for (id, attempts, outcome) in outcomes {
            match outcome {
                Ok(()) => sent.push(id),
                Err((error, retryable)) => {
                    self.record_failure(config, id, attempts, &error, retryable)
                        .await?;
                }
            }
        }
        // The bodies and attachments go once delivered: they hold personal data and
        // working links.
        let recorded = sqlx::query_scalar!(
            "WITH attachments AS (DELETE FROM mail_attachments WHERE mail_id = ANY($1))
             UPDATE mail_outbox
             SET status = 'sent', sent_at = now(), sent_by = $2, attempts = attempts + 1,
                 last_error = NULL, claimed_pid = NULL, claimed_at = NULL,
                 body_text = '', body_html = '',
                 recipient = CASE WHEN kind = ANY($3) THEN '' ELSE recipient END
             WHERE id = ANY($1)
             RETURNING id",
            &sent,
            sent_by,
            &super::kinds::FORGET_RECIPIENT as &[&str],
        )
        .fetch_all(&mut self.conn)
        .await?;
        for id in sent.iter().filter(|id| !recorded.contains(id)) {
            // Erased while it was being sent: no copy may outlive the row.
            transport.forget(*id).await?;
        }
        Ok(sent.len())
    }

    /// The attachments of the claimed mails, by mail.
    async fn attachments(
        &mut self,
        mails: &[Claimed],
    ) -> sqlx::Result<HashMap<Uuid, Vec<Attachment>>> {
        let ids: Vec<Uuid> = mails
            .iter()
            .filter(|m| m.has_attachments)
            .map(|m| m.id)
            .collect();
        let mut by_mail: HashMap<Uuid, Vec<Attachment>> = HashMap::new();
        if ids.is_empty() {
            return Ok(by_mail);
        }
        let rows = sqlx::query!(
            "SELECT mail_id, filename, content_type, content FROM mail_attachments
             WHERE mail_id = ANY($1) ORDER BY mail_id, position",
            &ids
        )
        .fetch_all(&mut self.conn)
        .await?;
        for row in rows {
            by_mail.entry(row.mail_id).or_default().push(Attachment {
                filename: row.filename,
                content_type: row.content_type,
                content: row.content,
            });
        }
        Ok(by_mail)
    }

    /// A mail not delivered: tried again later, or failed for good.
    async fn record_failure(
        &mut self,
        config: &Config,
        id: Uuid,
        attempts: i32,
        error: &str,
        retryable: bool,
    ) -> sqlx::Result<()> {
        if !retryable {
            // A refused address: mailings pass it over until staff clear it.
            sqlx::query!(
                "INSERT INTO mail_bounces (contact_id)
                 SELECT contact_id FROM mail_outbox WHERE id = $1 AND contact_id IS NOT NULL
                 ON CONFLICT (contact_id) DO NOTHING",
                id
            )
            .execute(&mut self.conn)
            .await?;
        }
        let attempts = attempts + 1;
        let give_up = !retryable || attempts >= config.mail_max_attempts;
        let delay = retry_delay(config, attempts);
        tracing::warn!(mail = %id, attempts, give_up, %error, "mail not delivered");
        sqlx::query!(
            "UPDATE mail_outbox
             SET attempts = $2, last_error = $3, claimed_pid = NULL, claimed_at = NULL,
                 handed_at = NULL, status = CASE WHEN $4 THEN 'failed' ELSE 'queued' END,
                 next_attempt_at = now() + make_interval(secs => $5)
             WHERE id = $1",
            id,
            attempts,
            error,
            give_up,
            delay.as_secs_f64(),
        )
        .execute(&mut self.conn)
        .await?;
        Ok(())
    }
}

/// Sends what is due now, until nothing is due. Returns how many were sent.
pub async fn deliver_due(
    pool: &PgPool,
    transport: &Transport,
    config: &Config,
) -> anyhow::Result<usize> {
    let mut senders = Senders::connect(pool, config).await?;
    let sent = senders
        .deliver_due(transport, config, &CancellationToken::new())
        .await?;
    senders.close().await?;
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
    let mut senders = None;
    loop {
        if senders.is_none() {
            senders = Senders::connect(&pool, &config)
                .await
                .inspect_err(|e| tracing::error!(error = %e, "mail delivery cannot connect"))
                .ok();
        }
        if let Some(s) = senders.as_mut()
            && let Err(e) = s.deliver_due(&transport, &config, &stop).await
        {
            tracing::error!(error = format!("{e:#}"), "mail delivery pass failed");
            // New sessions next time: the claims of these lapse with them.
            senders = None;
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
             (SELECT m.next_attempt_at FROM mail_outbox m
              WHERE m.batch_id IS NULL AND m.status = 'queued'
              ORDER BY m.next_attempt_at LIMIT 1),
             (SELECT min(CASE WHEN b.per_second IS NULL THEN first.at
                              ELSE greatest(b.next_send_at, first.at) END)
              FROM mail_batches b
              CROSS JOIN LATERAL (SELECT m.next_attempt_at AS at FROM mail_outbox m
                                  WHERE m.batch_id = b.id AND m.status = 'queued'
                                  ORDER BY m.next_attempt_at LIMIT 1) first
              WHERE NOT b.paused),
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
