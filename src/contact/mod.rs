//! The website contact form (R-FORM-1 … R-FORM-5): a public form, in a frame of the
//! company's site or as a page of its own, whose messages are stored, mailed to the info
//! address through the outbox, read in the inbox by those with the mailbox capability,
//! and deleted after `CONTACT_RETENTION_DAYS`.

mod messages;
mod pages;
mod retention;

use std::{net::IpAddr, time::Duration};

use sqlx::PgConnection;

pub use messages::{Message, NewMessage, Source, message_text, submit};
pub use retention::job as retention_job;

use crate::{
    auth,
    config::Config,
    domain::Email,
    error::AppError,
    web::{Access, Section},
};

pub fn sections() -> Vec<Section> {
    vec![
        Section::new(Access::Anyone)
            .get("/contact", pages::form)
            .post("/contact", pages::send)
            .get("/contact/embed", pages::embedded_form)
            .get("/contact/thanks", pages::thanks),
        Section::new(Access::Mailbox)
            .get("/inbox", pages::inbox)
            .get("/inbox/{id}", pages::show)
            .post("/inbox/{id}/handled", pages::mark_handled)
            .get("/inbox/{id}/contact", pages::to_contact)
            .post("/inbox/{id}/delete", pages::delete),
    ]
}

/// Messages one client address may leave, and in what time.
const RATE_MAX: i32 = 5;
const RATE_WINDOW: Duration = Duration::from_secs(15 * 60);

/// Counts a message of this client address, or says it has sent its share for now.
pub async fn allowed(
    conn: &mut PgConnection,
    config: &Config,
    address: IpAddr,
) -> sqlx::Result<bool> {
    auth::spend_throttled(
        conn,
        &config.keys,
        &format!("contact:{address}"),
        RATE_MAX,
        RATE_WINDOW,
    )
    .await
}

/// Every stored message left with this address, for the data subject's extract.
pub async fn held_about(conn: &mut PgConnection, email: &Email) -> Result<Vec<Message>, AppError> {
    Ok(messages::with_email(conn, email).await?)
}

/// Deletes every message left with this address, in the caller's transaction (which
/// writes the audit row); returns how many.
pub async fn erase_about(conn: &mut PgConnection, email: &Email) -> Result<u64, AppError> {
    Ok(messages::delete_with_email(conn, email).await?)
}
