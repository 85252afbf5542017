//! Quarantine (R-CUST-12): a new person is asked by mail, in their language, to confirm
//! their address and consent to storage. Links are random, single-purpose, stored hashed,
//! valid for the quarantine period. Confirming moves the person into the register with a
//! consent record; refusing erases them at once.

use sqlx::PgConnection;
use time::{Duration, OffsetDateTime, macros::format_description};
use uuid::Uuid;

use super::{
    Status,
    contacts::{self, Contact, Erasure},
};
pub use crate::tokens::Purpose;
use crate::{
    audit::{self, Actor, Event},
    config::Config,
    mail::{self, Mail, kinds::Consent},
    tokens::{self, Peeked},
    web::{Lang, Tr},
};

/// The version of the consent text; a new wording gets a new version.
pub const CONSENT_VERSION: &str = "2026-11-29";

/// The exact consent text shown to a person, in their language.
pub fn consent_text(lang: Lang, company: &str) -> String {
    Tr(lang).with("consent.storage.text", "company", company)
}

fn deadline(contact: &Contact, config: &Config) -> OffsetDateTime {
    contact.created_at + Duration::days(config.quarantine_days.into())
}

/// Queues the request to confirm (or, as a reminder, the same again) with fresh links.
pub async fn send_request(
    conn: &mut PgConnection,
    config: &Config,
    contact: &Contact,
    reminder: bool,
) -> anyhow::Result<()> {
    let expires_at = deadline(contact, config);
    let confirm =
        tokens::issue(conn, Purpose::ConfirmStorage, contact.id, None, expires_at).await?;
    let refuse = tokens::issue(conn, Purpose::RefuseStorage, contact.id, None, expires_at).await?;
    let consent = Consent {
        name: contact.name.clone(),
        employer: contact.company_name.clone(),
        confirm_link: config.absolute_url(&format!("/consent/{confirm}")),
        refuse_link: config.absolute_url(&format!("/refuse/{refuse}")),
        deadline: expires_at
            .date()
            .format(format_description!("[day].[month].[year]"))
            .unwrap_or_default(),
        reminder,
        consent_text: consent_text(contact.language, &config.company_name),
    };
    let mail = Mail::compose(config, &contact.email, contact.language, &consent)?.about(contact.id);
    mail::enqueue(conn, &mail).await?;
    Ok(())
}

/// After the address changed: the old links stop working and the question goes to the
/// new address.
pub async fn restart(
    conn: &mut PgConnection,
    config: &Config,
    contact: &Contact,
) -> anyhow::Result<()> {
    tokens::void(
        conn,
        contact.id,
        &[Purpose::ConfirmStorage, Purpose::RefuseStorage],
    )
    .await?;
    send_request(conn, config, contact, false).await
}

/// What a link stands for. Reading it changes nothing.
pub enum LinkState {
    Valid(Box<Contact>),
    /// Used already; the person, if still in the register.
    Done(Option<Box<Contact>>),
    Expired,
    Unknown,
}

pub async fn link_state(
    conn: &mut PgConnection,
    token: &str,
    purpose: Purpose,
) -> sqlx::Result<LinkState> {
    let (link, used, expired) = match tokens::peek(conn, purpose, token).await? {
        Peeked::Valid(link) => (link, false, false),
        Peeked::Used(link) => (link, true, false),
        Peeked::Expired(link) => (link, false, true),
        Peeked::Unknown => return Ok(LinkState::Unknown),
    };
    let contact = contacts::find(conn, link.subject).await?.map(Box::new);
    Ok(match contact {
        _ if used => LinkState::Done(contact),
        // Confirmed through another (newer) link: nothing left to do.
        Some(c) if purpose == Purpose::ConfirmStorage && c.status != Status::Quarantine => {
            LinkState::Done(Some(c))
        }
        _ if expired => LinkState::Expired,
        Some(c) => LinkState::Valid(c),
        None => LinkState::Done(None),
    })
}

/// Moves the person into the register, with a consent record for storage and, if they
/// ticked it, for the newsletter.
pub async fn confirm(
    conn: &mut PgConnection,
    config: &Config,
    token: &str,
    newsletter: bool,
) -> sqlx::Result<Option<Uuid>> {
    let Some(link) = tokens::consume(conn, Purpose::ConfirmStorage, token).await? else {
        return Ok(None);
    };
    let (contact_id, hash) = (link.subject, link.hash);
    let Some(contact) = contacts::find(conn, contact_id).await? else {
        return Ok(None);
    };
    if contact.status != Status::Quarantine {
        return Ok(None);
    }
    sqlx::query!(
        "UPDATE contacts SET status = 'active', confirmed_at = now() WHERE id = $1",
        contact_id
    )
    .execute(&mut *conn)
    .await?;
    contacts::refresh_last_communication(conn, contact_id).await?;
    let text = consent_text(contact.language, &config.company_name);
    record_consent(conn, contact_id, "storage", contact.language, &text, &hash).await?;
    let mut fields = vec!["status", "confirmed_at", "consent"];
    if newsletter {
        let text = Tr(contact.language)
            .get("consent.newsletter.text")
            .to_string();
        record_consent(
            conn,
            contact_id,
            "newsletter",
            contact.language,
            &text,
            &hash,
        )
        .await?;
        sqlx::query!(
            "UPDATE contacts SET newsletter = true WHERE id = $1",
            contact_id
        )
        .execute(&mut *conn)
        .await?;
        sqlx::query!(
            "INSERT INTO newsletter_events (contact_id, subscribed, how) VALUES ($1, true, 'confirmation page')",
            contact_id
        )
        .execute(&mut *conn)
        .await?;
        fields.push("newsletter");
    }
    audit::record(
        conn,
        Event::new(
            &Actor::Subject(contact_id.to_string()),
            "contact.confirm",
            "contact",
            Some(contact_id.to_string()),
        )
        .with_fields(&fields),
    )
    .await?;
    Ok(Some(contact_id))
}

async fn record_consent(
    conn: &mut PgConnection,
    contact_id: Uuid,
    purpose: &str,
    lang: Lang,
    text: &str,
    link: &[u8],
) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO consents (id, contact_id, purpose, text_version, language, text, method, link_token_hash)
         VALUES ($1, $2, $3, $4, $5, $6, 'email_link', $7)",
        Uuid::new_v4(),
        contact_id,
        purpose,
        CONSENT_VERSION,
        lang.code(),
        text,
        link
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Erases the person at once. True if there was someone to erase.
pub async fn refuse(conn: &mut PgConnection, config: &Config, token: &str) -> sqlx::Result<bool> {
    let Some(link) = tokens::consume(conn, Purpose::RefuseStorage, token).await? else {
        return Ok(false);
    };
    let contact_id = link.subject;
    contacts::delete_contact(
        conn,
        contact_id,
        &Actor::Subject(contact_id.to_string()),
        Erasure::OnRequest(config),
    )
    .await
}
