//! A confirmed person's address changed by staff is confirmed by its owner before any
//! other mail goes to it: the new address gets a link, valid for the quarantine period;
//! opening it shows one button, the button confirms.

use sqlx::PgConnection;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use super::contacts::{self, Contact};
use crate::{
    audit::{self, Actor, Event},
    config::Config,
    mail::{self, Mail, kinds::ContactEmailChange},
    tokens::{self, Peeked, Purpose},
};

/// Marks the address as waiting (if it is not already), replaces any earlier link and
/// mails a new one to the address.
pub async fn request_confirmation(
    conn: &mut PgConnection,
    config: &Config,
    contact: &Contact,
    actor: &Actor,
) -> anyhow::Result<()> {
    sqlx::query!(
        "UPDATE contacts SET email_pending_since = coalesce(email_pending_since, now())
         WHERE id = $1",
        contact.id
    )
    .execute(&mut *conn)
    .await?;
    tokens::void(conn, contact.id, &[Purpose::ContactEmailChange]).await?;
    let expires_at = OffsetDateTime::now_utc() + Duration::days(config.quarantine_days.into());
    let token = tokens::issue(
        conn,
        Purpose::ContactEmailChange,
        contact.id,
        None,
        expires_at,
    )
    .await?;
    let change = ContactEmailChange {
        name: contact.name.clone(),
        link: config.absolute_url(&format!("/address/{token}")),
    };
    let mail = Mail::compose(config, &contact.email, contact.language, &change)?.about(contact.id);
    mail::enqueue(conn, &mail).await?;
    audit::record(
        conn,
        Event::new(
            actor,
            "contact.email_confirmation_sent",
            "contact",
            Some(contact.id.to_string()),
        )
        .with_fields(&["email_pending_since"]),
    )
    .await?;
    Ok(())
}

/// What an address link stands for. Reading it changes nothing.
pub enum AddressLink {
    /// The person whose address waits for this link.
    Valid(Box<Contact>),
    /// Used already, or the address confirmed otherwise: nothing left to do.
    Done(Option<Box<Contact>>),
    Expired,
    Unknown,
}

pub async fn link_state(conn: &mut PgConnection, token: &str) -> sqlx::Result<AddressLink> {
    let (link, used, expired) = match tokens::peek(conn, Purpose::ContactEmailChange, token).await?
    {
        Peeked::Valid(link) => (link, false, false),
        Peeked::Used(link) => (link, true, false),
        Peeked::Expired(link) => (link, false, true),
        Peeked::Unknown => return Ok(AddressLink::Unknown),
    };
    let contact = contacts::find(conn, link.subject).await?.map(Box::new);
    Ok(match contact {
        _ if used => AddressLink::Done(contact),
        Some(c) if c.mailable() => AddressLink::Done(Some(c)),
        _ if expired => AddressLink::Expired,
        Some(c) => AddressLink::Valid(c),
        None => AddressLink::Done(None),
    })
}

/// The owner confirms the address: mail may go to it again. The person, if the link
/// was valid.
pub async fn confirm(conn: &mut PgConnection, token: &str) -> sqlx::Result<Option<Uuid>> {
    let Some(link) = tokens::consume(conn, Purpose::ContactEmailChange, token).await? else {
        return Ok(None);
    };
    let confirmed = sqlx::query_scalar!(
        "UPDATE contacts SET email_pending_since = NULL
         WHERE id = $1 AND email_pending_since IS NOT NULL RETURNING id",
        link.subject
    )
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(id) = confirmed {
        audit::record(
            conn,
            Event::new(
                &Actor::Subject(id.to_string()),
                "contact.email_confirm",
                "contact",
                Some(id.to_string()),
            )
            .with_fields(&["email_pending_since"]),
        )
        .await?;
    }
    Ok(confirmed)
}
