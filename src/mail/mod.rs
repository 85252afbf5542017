//! Outgoing mail. A request never sends mail: [`enqueue`] stores it in the caller's
//! transaction, and the delivery worker sends it (SMTP, or `.eml` files when no SMTP server
//! is configured), retrying with backoff while the server is down.
//!
//! A feature says what to write by filling in one of the [`kinds`]; [`Mail::compose`]
//! renders it in the recipient's language through the shared layout.

pub mod delivery;
mod dkim;
mod files;
pub mod kinds;
mod pages;
mod retention_job;
mod smtp;

use std::{num::NonZeroU32, path::Path};

use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

pub use dkim::Dkim;
pub use kinds::MailKind;
pub use retention_job::job as retention_job;

use crate::{
    config::Config,
    web::{Access, Lang, Section, Tr},
};

pub fn sections() -> Vec<Section> {
    vec![
        Section::new(Access::Admin)
            .get("/mail", pages::outbox)
            .post("/mail/{id}/retry", pages::retry),
        Section::new(Access::CustomerRegister).get("/mail/batches/{id}", pages::progress),
    ]
}

/// A rendered mail, ready to queue.
#[derive(Debug)]
pub struct Mail {
    pub recipient: String,
    pub language: Lang,
    /// Which kind it is, e.g. `invitation`; shown to administrators.
    pub kind: &'static str,
    pub subject: String,
    pub text: String,
    pub html: String,
    /// Extra headers (List-Unsubscribe and the like).
    pub headers: Vec<(String, String)>,
    pub attachments: Vec<Attachment>,
    /// The person in the customer register it is about: their stored copies go with them.
    pub contact_id: Option<Uuid>,
    /// The mailing it belongs to, paced at the batch's rate.
    pub batch_id: Option<Uuid>,
}

/// A file sent with a mail.
#[derive(Debug, Clone)]
pub struct Attachment {
    pub filename: String,
    /// A MIME type, e.g. `application/pdf`.
    pub content_type: String,
    pub content: Vec<u8>,
}

impl Mail {
    /// Renders a kind of mail in the recipient's language.
    pub fn compose<K: MailKind>(
        config: &Config,
        recipient: &str,
        language: Lang,
        kind: &K,
    ) -> askama::Result<Self> {
        let rendered = kind.render(Tr(language), &config.company_name)?;
        Ok(Self {
            recipient: recipient.to_string(),
            language,
            kind: kind.name(),
            subject: rendered.subject,
            text: rendered.text,
            html: rendered.html,
            headers: Vec::new(),
            attachments: Vec::new(),
            contact_id: None,
            batch_id: None,
        })
    }

    /// The person in the customer register the mail is about.
    pub fn about(mut self, contact_id: Uuid) -> Self {
        self.contact_id = Some(contact_id);
        self
    }

    pub fn in_batch(mut self, batch_id: Uuid) -> Self {
        self.batch_id = Some(batch_id);
        self
    }
}

/// Stores the mail for delivery, in the caller's transaction: it leaves only if that
/// transaction commits.
pub async fn enqueue(conn: &mut PgConnection, mail: &Mail) -> sqlx::Result<Uuid> {
    let id = Uuid::new_v4();
    let headers = serde_json::to_value(&mail.headers).expect("headers serialise");
    sqlx::query!(
        "INSERT INTO mail_outbox (id, recipient, language, kind, subject, body_text, body_html, headers, contact_id, batch_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        id,
        mail.recipient,
        mail.language.code(),
        mail.kind,
        mail.subject,
        mail.text,
        mail.html,
        headers,
        mail.contact_id,
        mail.batch_id,
    )
    .execute(&mut *conn)
    .await?;
    if !mail.attachments.is_empty() {
        let (mut names, mut types, mut contents) = (Vec::new(), Vec::new(), Vec::new());
        for a in &mail.attachments {
            names.push(a.filename.clone());
            types.push(a.content_type.clone());
            contents.push(a.content.clone());
        }
        sqlx::query!(
            "INSERT INTO mail_attachments (mail_id, position, filename, content_type, content)
             SELECT $1, a.position::integer, a.filename, a.content_type, a.content
             FROM unnest($2::text[], $3::text[], $4::bytea[])
                  WITH ORDINALITY AS a(filename, content_type, content, position)",
            id,
            &names,
            &types,
            &contents,
        )
        .execute(conn)
        .await?;
    }
    Ok(id)
}

/// Stores many mails of one mailing (no attachments) in the caller's transaction, with
/// one statement per thousand; returns their ids in order.
pub async fn enqueue_many(conn: &mut PgConnection, mails: &[Mail]) -> sqlx::Result<Vec<Uuid>> {
    let mut ids = Vec::with_capacity(mails.len());
    for chunk in mails.chunks(1000) {
        let chunk_ids: Vec<Uuid> = chunk.iter().map(|_| Uuid::new_v4()).collect();
        let column = |f: fn(&Mail) -> String| chunk.iter().map(f).collect::<Vec<String>>();
        let headers: Vec<serde_json::Value> = chunk
            .iter()
            .map(|m| serde_json::to_value(&m.headers).expect("headers serialise"))
            .collect();
        let contacts: Vec<Option<Uuid>> = chunk.iter().map(|m| m.contact_id).collect();
        let batches: Vec<Option<Uuid>> = chunk.iter().map(|m| m.batch_id).collect();
        sqlx::query!(
            "INSERT INTO mail_outbox (id, recipient, language, kind, subject, body_text, body_html, headers, contact_id, batch_id)
             SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                                  $7::text[], $8::jsonb[], $9::uuid[], $10::uuid[])",
            &chunk_ids,
            &column(|m| m.recipient.clone()),
            &column(|m| m.language.code().to_string()),
            &column(|m| m.kind.to_string()),
            &column(|m| m.subject.clone()),
            &column(|m| m.text.clone()),
            &column(|m| m.html.clone()),
            &headers,
            &contacts as &[Option<Uuid>],
            &batches as &[Option<Uuid>],
        )
        .execute(&mut *conn)
        .await?;
        ids.extend(chunk_ids);
    }
    Ok(ids)
}

/// How far a mailing has come, for its progress bar.
#[derive(Debug, serde::Serialize)]
pub struct Progress {
    pub total: i64,
    pub sent: i64,
    pub failed: i64,
    /// Waiting or being sent.
    pub left: i64,
    pub paused: bool,
    /// Mails a second over the last ten seconds.
    pub per_second: f64,
    /// Seconds until the rest is sent at that rate; `None` while nothing moves.
    pub seconds_left: Option<i64>,
}

pub async fn progress(conn: &mut PgConnection, batch_id: Uuid) -> sqlx::Result<Option<Progress>> {
    let row = sqlx::query!(
        r#"SELECT b.paused,
                  count(o.id) AS "total!",
                  count(o.id) FILTER (WHERE o.status = 'sent') AS "sent!",
                  count(o.id) FILTER (WHERE o.status = 'failed') AS "failed!",
                  count(o.id) FILTER (WHERE o.status IN ('queued', 'sending')) AS "left!",
                  count(o.id) FILTER (WHERE o.sent_at > now() - interval '10 seconds') AS "recent!",
                  EXTRACT(EPOCH FROM least(interval '10 seconds', now() - min(o.sent_at)))::float8 AS window_seconds
           FROM mail_batches b LEFT JOIN mail_outbox o ON o.batch_id = b.id
           WHERE b.id = $1 GROUP BY b.id"#,
        batch_id
    )
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|r| {
        let window = r.window_seconds.unwrap_or(0.0).max(1.0);
        let per_second = r.recent as f64 / window;
        let seconds_left =
            (per_second > 0.0 && !r.paused).then(|| (r.left as f64 / per_second).ceil() as i64);
        Progress {
            total: r.total,
            sent: r.sent,
            failed: r.failed,
            left: r.left,
            paused: r.paused,
            per_second: (per_second * 10.0).round() / 10.0,
            seconds_left,
        }
    }))
}

/// The newest mailing of a kind, and its progress.
pub async fn latest_batch(
    conn: &mut PgConnection,
    kind: &str,
) -> sqlx::Result<Option<(Uuid, Progress)>> {
    let id = sqlx::query_scalar!(
        "SELECT id FROM mail_batches WHERE kind = $1 ORDER BY created_at DESC LIMIT 1",
        kind
    )
    .fetch_optional(&mut *conn)
    .await?;
    let Some(id) = id else {
        return Ok(None);
    };
    Ok(progress(conn, id).await?.map(|p| (id, p)))
}

/// Where the newest mail of these kinds to a person stands.
pub struct Delivery {
    /// `queued`, `sending`, `sent` or `failed`.
    pub status: String,
    pub created_at: OffsetDateTime,
    pub sent_at: Option<OffsetDateTime>,
}

pub async fn last_delivery(
    conn: &mut PgConnection,
    contact_id: Uuid,
    kinds: &[&str],
) -> sqlx::Result<Option<Delivery>> {
    sqlx::query_as!(
        Delivery,
        "SELECT status, created_at, sent_at FROM mail_outbox
         WHERE contact_id = $1 AND kind = ANY($2) ORDER BY created_at DESC LIMIT 1",
        contact_id,
        kinds as &[&str]
    )
    .fetch_optional(conn)
    .await
}

/// Pauses or resumes a mailing. Mails already on their way to the mail server go on.
pub async fn pause_batch(
    conn: &mut PgConnection,
    batch_id: Uuid,
    paused: bool,
) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE mail_batches SET paused = $2 WHERE id = $1",
        batch_id,
        paused
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Takes back what of a mailing has not been handed to the mail server (all of it, or
/// only what goes to one person); returns how many.
pub async fn withdraw(
    conn: &mut PgConnection,
    batch_ids: &[Uuid],
    contact_id: Option<Uuid>,
) -> sqlx::Result<u64> {
    let withdrawn = sqlx::query!(
        "DELETE FROM mail_outbox
         WHERE batch_id = ANY($1) AND ($2::uuid IS NULL OR contact_id = $2)
           AND status IN ('queued', 'sending') AND handed_at IS NULL",
        batch_ids,
        contact_id
    )
    .execute(conn)
    .await?;
    Ok(withdrawn.rows_affected())
}

/// Since when the person's address is refused by its mail server, if it is.
pub async fn bouncing_since(
    conn: &mut PgConnection,
    contact_id: Uuid,
) -> sqlx::Result<Option<OffsetDateTime>> {
    sqlx::query_scalar!(
        "SELECT since FROM mail_bounces WHERE contact_id = $1",
        contact_id
    )
    .fetch_optional(conn)
    .await
}

/// Staff say the address works again. True if it was marked.
pub async fn clear_bounce(conn: &mut PgConnection, contact_id: Uuid) -> sqlx::Result<bool> {
    let cleared = sqlx::query!("DELETE FROM mail_bounces WHERE contact_id = $1", contact_id)
        .execute(conn)
        .await?;
    Ok(cleared.rows_affected() > 0)
}

/// Starts a mailing: its mails leave at most `per_second` a second (`None`: as fast as
/// the mail server takes them), counted over every running instance.
pub async fn new_batch(
    conn: &mut PgConnection,
    kind: &str,
    per_second: Option<NonZeroU32>,
) -> sqlx::Result<Uuid> {
    let id = Uuid::new_v4();
    let rate = per_second.map(|r| i32::try_from(r.get()).unwrap_or(i32::MAX));
    sqlx::query!(
        "INSERT INTO mail_batches (id, kind, per_second) VALUES ($1, $2, $3)",
        id,
        kind,
        rate
    )
    .execute(conn)
    .await?;
    Ok(id)
}

/// What the retention rule removed.
pub struct Removed {
    pub mails: u64,
    pub files: usize,
}

/// Removes delivered and failed mail created before `before`, the batches left empty, and
/// the `.eml` copies of mail no longer stored (those of erased people too).
pub async fn remove_before(
    conn: &mut PgConnection,
    before: OffsetDateTime,
    outbox_dir: &Path,
) -> anyhow::Result<Removed> {
    let mails = sqlx::query!(
        "DELETE FROM mail_outbox WHERE status IN ('sent', 'failed') AND created_at < $1",
        before
    )
    .execute(&mut *conn)
    .await?
    .rows_affected();
    sqlx::query!(
        "DELETE FROM mail_batches b WHERE created_at < $1
         AND NOT EXISTS (SELECT 1 FROM mail_outbox o WHERE o.batch_id = b.id)",
        before
    )
    .execute(&mut *conn)
    .await?;
    // Inside the job's transaction the rows above are already gone, so their files go
    // too; should the transaction roll back, only copies of mail due for deletion are lost.
    let files = files::sweep(conn, outbox_dir).await?;
    Ok(Removed { mails, files })
}
