//! Newsletters (R-CUST-3, R-CUST-8): subscribing by double opt-in (or by phone, through
//! staff), unsubscribing by link, one-click (RFC 8058) or staff, campaigns by business
//! area and language sent as one paced mailing, bounces.

pub mod campaigns;
mod pages;
mod public;
pub mod subscriptions;

use std::time::Duration;

use serde::Serialize;
use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{
    config::Config,
    error::AppError,
    jobs::{Job, JobFuture},
    mail,
    web::{Access, Section},
};

pub fn sections() -> Vec<Section> {
    vec![
        Section::new(Access::Anyone)
            .get("/subscribe", public::form)
            .post("/subscribe", public::submit)
            .get("/subscribe/{token}", public::confirm_form)
            .post("/subscribe/{token}", public::confirm)
            .get("/unsubscribe/{token}", public::unsubscribe_form)
            .post("/unsubscribe/{token}", public::unsubscribe),
        Section::new(Access::CustomerRegister)
            .get("/campaigns", pages::list)
            .get("/campaigns/{id}", pages::show)
            .get("/people/{id}/newsletter", pages::person_history)
            .post("/people/{id}/newsletter/phone", pages::phone_opt_in)
            .post(
                "/people/{id}/newsletter/unsubscribe",
                pages::staff_unsubscribe,
            )
            .post("/people/{id}/newsletter/bounce", pages::clear_bounce),
        Section::new(Access::Admin)
            .get("/campaigns/new", pages::new_form)
            .post("/campaigns/new", pages::create)
            .post("/campaigns/{id}/test", pages::test_mail)
            .post("/campaigns/{id}/send", pages::send)
            .post("/campaigns/{id}/pause", pages::pause)
            .post("/campaigns/{id}/resume", pages::resume)
            .post("/campaigns/{id}/unschedule", pages::unschedule)
            .post("/campaigns/{id}/cancel", pages::cancel)
            .get("/newsletter/unsubscribed", pages::unsubscribed),
    ]
}

/// Starts the campaigns whose set time has come.
pub fn job() -> Job {
    Job {
        name: "newsletter-schedule",
        every: Duration::from_secs(60),
        run,
    }
}

fn run<'c>(pool: &'c PgPool, at: OffsetDateTime, config: &'c Config) -> JobFuture<'c> {
    Box::pin(async move {
        let started = campaigns::start_due(pool, config, at).await?;
        Ok(format!("{started} campaigns started"))
    })
}

/// Everything the newsletter holds about one person, for a register extract.
#[derive(Debug, Serialize)]
pub struct NewsletterRecord {
    pub subscribed: bool,
    /// Since when mail to the address is refused by its server; campaigns skip it.
    #[serde(with = "time::serde::rfc3339::option")]
    pub bouncing_since: Option<OffsetDateTime>,
    pub consents: Vec<Consent>,
    /// Subscribing and unsubscribing, oldest first.
    pub history: Vec<HistoryEntry>,
    pub campaigns: Vec<campaigns::Delivered>,
}

#[derive(Debug, Serialize)]
pub struct Consent {
    pub text: String,
    pub text_version: String,
    pub language: String,
    /// `form` (the web form, confirmed by mail), `email_link`, or `staff` (by phone).
    pub method: String,
    pub recorded_by: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub given_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub withdrawn_at: Option<OffsetDateTime>,
}

#[derive(Debug, Serialize)]
pub struct HistoryEntry {
    pub subscribed: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// `web`, `phone`, `confirmation page`, `link`, `one-click` or `staff`.
    pub how: String,
    pub recorded_by: Option<String>,
}

/// What the newsletter holds about the person (`contacts.id`).
pub async fn held_about(
    conn: &mut PgConnection,
    contact_id: Uuid,
) -> Result<NewsletterRecord, AppError> {
    let subscribed =
        sqlx::query_scalar!("SELECT newsletter FROM contacts WHERE id = $1", contact_id)
            .fetch_optional(&mut *conn)
            .await?
            .ok_or(AppError::NotFound)?;
    let consents = sqlx::query_as!(
        Consent,
        r#"SELECT c.text, c.text_version, c.language, c.method, u.name AS "recorded_by?",
                  c.given_at, c.withdrawn_at
           FROM consents c LEFT JOIN users u ON u.id = c.recorded_by
           WHERE c.contact_id = $1 AND c.purpose = 'newsletter' ORDER BY c.given_at"#,
        contact_id
    )
    .fetch_all(&mut *conn)
    .await?;
    let history = sqlx::query_as!(
        HistoryEntry,
        r#"SELECT e.subscribed, e.at, e.how, u.name AS "recorded_by?"
           FROM newsletter_events e LEFT JOIN users u ON u.id = e.recorded_by
           WHERE e.contact_id = $1 ORDER BY e.at, e.id"#,
        contact_id
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(NewsletterRecord {
        subscribed,
        bouncing_since: mail::bouncing_since(conn, contact_id).await?,
        consents,
        history,
        campaigns: campaigns::delivered_to(conn, contact_id).await?,
    })
}
