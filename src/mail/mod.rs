//! Outgoing mail. A request never sends mail: [`enqueue`] stores it in the caller's
//! transaction, and the delivery worker sends it (SMTP, or `.eml` files when no SMTP server
//! is configured), retrying with backoff while the server is down.
//!
//! A feature says what to write by filling in one of the [`kinds`]; [`Mail::compose`]
//! renders it in the recipient's language through the shared layout.

pub mod delivery;
mod files;
pub mod kinds;
mod pages;
mod retention_job;

use std::{num::NonZeroU32, path::Path};

use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

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
