//! Outgoing mail. A request never sends mail: [`enqueue`] stores it in the caller's
//! transaction, and the delivery worker sends it (SMTP, or `.eml` files when no SMTP server
//! is configured), retrying with backoff while the server is down.

pub mod delivery;
mod pages;

use sqlx::PgConnection;
use uuid::Uuid;

use crate::web::{Access, Lang, Section};

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
    /// Which template made it, e.g. `invitation`; shown to administrators.
    pub kind: &'static str,
    pub subject: String,
    pub text: String,
    pub html: String,
    /// Extra headers (List-Unsubscribe and the like).
    pub headers: Vec<(String, String)>,
    /// The person in the customer register it is about: their stored copies go with them.
    pub contact_id: Option<Uuid>,
}

/// A mail's text and HTML bodies, rendered from the templates
/// `email/<kind>.txt` and `email/<kind>.html` with the same data.
pub trait MailBody {
    fn kind(&self) -> &'static str;
    fn subject(&self) -> String;
    fn text(&self) -> askama::Result<String>;
    fn html(&self) -> askama::Result<String>;
}

impl Mail {
    pub fn compose<B: MailBody>(recipient: &str, language: Lang, body: &B) -> askama::Result<Self> {
        Ok(Self {
            recipient: recipient.to_string(),
            language,
            kind: body.kind(),
            subject: body.subject(),
            text: body.text()?,
            html: body.html()?,
            headers: Vec::new(),
            contact_id: None,
        })
    }
}

/// Stores the mail for delivery, in the caller's transaction: it leaves only if that
/// transaction commits.
pub async fn enqueue(conn: &mut PgConnection, mail: &Mail) -> sqlx::Result<Uuid> {
    let id = Uuid::new_v4();
    let headers = serde_json::to_value(&mail.headers).expect("headers serialise");
    sqlx::query!(
        "INSERT INTO mail_outbox (id, recipient, language, kind, subject, body_text, body_html, headers, contact_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        id,
        mail.recipient,
        mail.language.code(),
        mail.kind,
        mail.subject,
        mail.text,
        mail.html,
        headers,
        mail.contact_id,
    )
    .execute(conn)
    .await?;
    Ok(id)
}
