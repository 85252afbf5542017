//! Who gets the newsletter: subscribing by double opt-in or by phone through staff,
//! unsubscribing by link, one-click or staff, each with its consent record and history.

use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::{
    audit::{self, Actor, Event},
    config::Config,
    customers::{self, ContactError},
    domain::{Email, PersonName},
    mail::{self, Mail, kinds::NewsletterConfirm},
    tokens::{self, Peeked, Purpose},
    web::{Lang, Tr},
};

/// The version of the newsletter consent text; a new wording gets a new version.
pub const CONSENT_VERSION: &str = "2026-12-01";

/// How long a confirmation link works.
pub const CONFIRM_DAYS: i64 = 7;

/// How long an unsubscribe link in a newsletter works.
pub const UNSUBSCRIBE_DAYS: i64 = 2 * 365;

/// The exact consent text shown when subscribing, in the subscriber's language.
pub fn consent_text(lang: Lang, company: &str) -> String {
    Tr(lang).with("newsletter.consent.text", "company", company)
}

/// What someone typed on the subscription page, parsed; kept in the confirmation link
/// until they confirm, and nowhere else.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Request {
    pub email: String,
    pub name: String,
    pub company: String,
    pub areas: Vec<Uuid>,
    pub language: String,
}

/// Mails the confirmation link. Nothing about the address is written but the link: an
/// address already subscribed gets the same mail, and the page the same answer.
pub async fn request(
    conn: &mut PgConnection,
    config: &Config,
    email: &Email,
    name: &PersonName,
    company: &str,
    areas: &[Uuid],
    lang: Lang,
) -> anyhow::Result<()> {
    let existing = customers::find_by_email(conn, email.as_str()).await?;
    let subject = existing.as_ref().map_or_else(Uuid::new_v4, |c| c.id);
    let payload = serde_json::to_string(&Request {
        email: email.as_str().to_string(),
        name: name.as_str().to_string(),
        company: company.to_string(),
        areas: areas.to_vec(),
        language: lang.code().to_string(),
    })?;
    let expires_at = OffsetDateTime::now_utc() + Duration::days(CONFIRM_DAYS);
    let token = tokens::issue(
        conn,
        Purpose::NewsletterSubscribe,
        subject,
        Some(&payload),
        expires_at,
    )
    .await?;
    let kind = NewsletterConfirm {
        name: name.as_str().to_string(),
        link: config.absolute_url(&format!("/subscribe/{token}")),
    };
    let mut mail = Mail::compose(config, email.as_str(), lang, &kind)?;
    if let Some(contact) = existing {
        mail = mail.about(contact.id);
    }
    mail::enqueue(conn, &mail).await?;
    Ok(())
}

/// What a confirmation link stands for; reading it changes nothing.
pub enum LinkState {
    Valid(Request),
    /// Used already (what it carried is forgotten by then).
    Done,
    Expired,
    Unknown,
}

pub async fn link_state(conn: &mut PgConnection, token: &str) -> sqlx::Result<LinkState> {
    let parse = |link: &tokens::Link| {
        link.payload
            .as_deref()
            .and_then(|p| serde_json::from_str::<Request>(p).ok())
    };
    Ok(
        match tokens::peek(conn, Purpose::NewsletterSubscribe, token).await? {
            Peeked::Valid(link) => parse(&link).map_or(LinkState::Unknown, LinkState::Valid),
            Peeked::Used(_) => LinkState::Done,
            Peeked::Expired(_) => LinkState::Expired,
            Peeked::Unknown => LinkState::Unknown,
        },
    )
}

/// The confirmation: subscribes the address, adding its owner to the register (source
/// web) if they are not in it. `None` if the link was not valid (used, expired, unknown).
pub async fn confirm(
    conn: &mut PgConnection,
    config: &Config,
    token: &str,
) -> Result<Option<(Uuid, Lang)>, ContactError> {
    let Some(link) = tokens::consume(conn, Purpose::NewsletterSubscribe, token).await? else {
        return Ok(None);
    };
    let Some(request) = link
        .payload
        .as_deref()
        .and_then(|p| serde_json::from_str::<Request>(p).ok())
    else {
        return Ok(None);
    };
    // What was typed on the form is kept only until it is used.
    tokens::clear_payload(conn, &link.hash).await?;
    let (Ok(email), Ok(name), Some(lang)) = (
        Email::parse(&request.email),
        PersonName::parse(&request.name),
        Lang::parse(&request.language),
    ) else {
        return Ok(None);
    };
    let contact_id = match customers::find_by_email(conn, email.as_str()).await? {
        Some(contact) => contact.id,
        None => {
            customers::add_confirmed_from_web(
                conn,
                &email,
                &name,
                &request.company,
                lang,
                &Actor::Subject(link.subject.to_string()),
            )
            .await?
        }
    };
    let actor = Actor::Subject(contact_id.to_string());
    set_interests(conn, contact_id, &request.areas).await?;
    subscribe(
        conn,
        config,
        contact_id,
        lang,
        Method::EmailLink(&link.hash),
        &actor,
    )
    .await?;
    Ok(Some((contact_id, lang)))
}

async fn set_interests(
    conn: &mut PgConnection,
    contact_id: Uuid,
    areas: &[Uuid],
) -> sqlx::Result<()> {
    sqlx::query!(
        "DELETE FROM newsletter_interests WHERE contact_id = $1",
        contact_id
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query!(
        "INSERT INTO newsletter_interests (contact_id, business_area_id)
         SELECT $1, a.id FROM business_areas a WHERE a.id = ANY($2)
         ON CONFLICT DO NOTHING",
        contact_id,
        areas
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// How consent was given.
pub enum Method<'a> {
    /// The web form, confirmed by the link mailed (its token's hash).
    EmailLink(&'a [u8]),
    /// By phone, recorded by this staff member.
    Phone(Uuid),
}

/// Subscribes the person with a consent record and a history entry. Already subscribed:
/// nothing changes. True if it changed something.
pub async fn subscribe(
    conn: &mut PgConnection,
    config: &Config,
    contact_id: Uuid,
    lang: Lang,
    method: Method<'_>,
    actor: &Actor,
) -> sqlx::Result<bool> {
    let changed = sqlx::query!(
        "UPDATE contacts SET newsletter = true WHERE id = $1 AND NOT newsletter",
        contact_id
    )
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if changed == 0 {
        return Ok(false);
    }
    let (how, link, by) = match method {
        Method::EmailLink(hash) => ("form", Some(hash), None),
        Method::Phone(user) => ("staff", None, Some(user)),
    };
    sqlx::query!(
        "INSERT INTO consents (id, contact_id, purpose, text_version, language, text, method, link_token_hash, recorded_by)
         VALUES ($1, $2, 'newsletter', $3, $4, $5, $6, $7, $8)",
        Uuid::new_v4(),
        contact_id,
        CONSENT_VERSION,
        lang.code(),
        consent_text(lang, &config.company_name),
        how,
        link,
        by,
    )
    .execute(&mut *conn)
    .await?;
    let event = if by.is_some() { "phone" } else { "web" };
    sqlx::query!(
        "INSERT INTO newsletter_events (contact_id, subscribed, how, recorded_by) VALUES ($1, true, $2, $3)",
        contact_id,
        event,
        by
    )
    .execute(&mut *conn)
    .await?;
    audit::record(
        conn,
        Event::new(
            actor,
            "newsletter.subscribe",
            "contact",
            Some(contact_id.to_string()),
        )
        .with_fields(&["newsletter", "consent"]),
    )
    .await?;
    Ok(true)
}

/// How someone unsubscribed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Withdrawal {
    /// The page behind the link in a newsletter.
    Link,
    /// A mail program's one-click unsubscribe (RFC 8058).
    OneClick,
    /// Staff, told by phone or mail.
    Staff(Uuid),
}

/// Unsubscribes the person: the consent record gets its withdrawal time, the history an
/// entry, and nothing more of a mailing under way reaches them. Already unsubscribed:
/// nothing changes. True if it changed something.
pub async fn unsubscribe(
    conn: &mut PgConnection,
    contact_id: Uuid,
    how: Withdrawal,
    actor: &Actor,
) -> sqlx::Result<bool> {
    let changed = sqlx::query!(
        "UPDATE contacts SET newsletter = false WHERE id = $1 AND newsletter",
        contact_id
    )
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if changed == 0 {
        return Ok(false);
    }
    sqlx::query!(
        "UPDATE consents SET withdrawn_at = now()
         WHERE contact_id = $1 AND purpose = 'newsletter' AND withdrawn_at IS NULL",
        contact_id
    )
    .execute(&mut *conn)
    .await?;
    let (event, by) = match how {
        Withdrawal::Link => ("link", None),
        Withdrawal::OneClick => ("one-click", None),
        Withdrawal::Staff(user) => ("staff", Some(user)),
    };
    sqlx::query!(
        "INSERT INTO newsletter_events (contact_id, subscribed, how, recorded_by) VALUES ($1, false, $2, $3)",
        contact_id,
        event,
        by
    )
    .execute(&mut *conn)
    .await?;
    super::campaigns::stop_for(conn, contact_id).await?;
    audit::record(
        conn,
        Event::new(
            actor,
            "newsletter.unsubscribe",
            "contact",
            Some(contact_id.to_string()),
        )
        .with_fields(&["newsletter", "consent"]),
    )
    .await?;
    Ok(true)
}

/// The person an unsubscribe link names, if the link is ours (an expired one still
/// unsubscribes: leaving must never be harder than joining).
pub async fn unsubscribe_link(conn: &mut PgConnection, token: &str) -> sqlx::Result<Option<Uuid>> {
    Ok(
        match tokens::peek(conn, Purpose::NewsletterUnsubscribe, token).await? {
            Peeked::Valid(l) | Peeked::Used(l) | Peeked::Expired(l) => Some(l.subject),
            Peeked::Unknown => None,
        },
    )
}

/// Links for each recipient of a campaign.
pub async fn unsubscribe_links(
    conn: &mut PgConnection,
    config: &Config,
    contacts: &[Uuid],
) -> sqlx::Result<Vec<String>> {
    let expires_at = OffsetDateTime::now_utc() + Duration::days(UNSUBSCRIBE_DAYS);
    let tokens =
        tokens::issue_many(conn, Purpose::NewsletterUnsubscribe, contacts, expires_at).await?;
    Ok(tokens
        .into_iter()
        .map(|t| config.absolute_url(&format!("/unsubscribe/{t}")))
        .collect())
}

/// Who unsubscribed, newest first: what the administrator sees (R-CUST-8).
pub struct Unsubscribed {
    pub contact_id: Option<Uuid>,
    pub name: String,
    pub email: String,
    pub at: OffsetDateTime,
    pub how: String,
    pub by: Option<String>,
}

pub async fn unsubscribed(conn: &mut PgConnection) -> sqlx::Result<Vec<Unsubscribed>> {
    sqlx::query_as!(
        Unsubscribed,
        r#"SELECT c.id AS "contact_id?", c.name, c.email, e.at, e.how, u.name AS "by?"
           FROM newsletter_events e
           JOIN contacts c ON c.id = e.contact_id
           LEFT JOIN users u ON u.id = e.recorded_by
           WHERE NOT e.subscribed
           ORDER BY e.at DESC LIMIT 500"#
    )
    .fetch_all(conn)
    .await
}
