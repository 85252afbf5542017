//! What the customer register holds about one person, for their register extract (GDPR
//! Art. 15 and 20): every field, consent, logged communication, newsletter event and kept
//! copy of a mail sent to them.

use serde::Serialize;
use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::domain::Email;

#[derive(Debug, Serialize)]
pub struct Held {
    pub name: String,
    pub department: String,
    pub title: String,
    pub email: String,
    pub phone: String,
    pub language: String,
    pub status: String,
    pub source: String,
    pub met_by: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub added_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub confirmed_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub last_communication_at: OffsetDateTime,
    pub newsletter: bool,
    pub company: HeldCompany,
    pub consents: Vec<HeldConsent>,
    pub communications: Vec<HeldCommunication>,
    pub newsletter_history: Vec<HeldNewsletterEvent>,
    pub mails: Vec<HeldMail>,
}

#[derive(Debug, Serialize)]
pub struct HeldCompany {
    pub name: String,
    pub address: String,
    pub website: String,
    pub email: String,
    pub phone: String,
    pub business_area: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct HeldConsent {
    pub purpose: String,
    pub text: String,
    pub text_version: String,
    pub language: String,
    #[serde(with = "time::serde::rfc3339")]
    pub given_at: OffsetDateTime,
    pub method: String,
    #[serde(with = "time::serde::rfc3339::option")]
    pub withdrawn_at: Option<OffsetDateTime>,
}

#[derive(Debug, Serialize)]
pub struct HeldCommunication {
    pub kind: String,
    pub happened_on: String,
    pub note: String,
    pub by: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct HeldNewsletterEvent {
    pub subscribed: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub how: String,
}

#[derive(Debug, Serialize)]
pub struct HeldMail {
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub kind: String,
    pub subject: String,
}

/// The person with this address, if the register holds one.
pub async fn contact_with_email(
    conn: &mut PgConnection,
    email: &Email,
) -> sqlx::Result<Option<Uuid>> {
    sqlx::query_scalar!(
        "SELECT id FROM contacts WHERE lower(email) = lower($1)",
        email.as_str()
    )
    .fetch_optional(conn)
    .await
}

/// Everything the register holds about the person with this address, or `None`.
pub async fn held_about(conn: &mut PgConnection, email: &Email) -> sqlx::Result<Option<Held>> {
    let Some(id) = contact_with_email(conn, email).await? else {
        return Ok(None);
    };
    let Some(p) = sqlx::query!(
        r#"SELECT c.name, c.department, c.title, c.email, c.phone, c.language, c.status,
                  c.source, u.name AS "met_by?", c.created_at, c.confirmed_at,
                  c.last_communication_at, c.newsletter,
                  co.name AS company_name, co.address, co.website, co.email AS company_email,
                  co.phone AS company_phone, b.name_en AS "business_area?"
           FROM contacts c
           JOIN companies co ON co.id = c.company_id
           LEFT JOIN business_areas b ON b.id = co.business_area_id
           LEFT JOIN users u ON u.id = c.met_by
           WHERE c.id = $1"#,
        id
    )
    .fetch_optional(&mut *conn)
    .await?
    else {
        return Ok(None);
    };
    let consents = sqlx::query_as!(
        HeldConsent,
        "SELECT purpose, text, text_version, language, given_at, method, withdrawn_at
         FROM consents WHERE contact_id = $1 ORDER BY given_at",
        id
    )
    .fetch_all(&mut *conn)
    .await?;
    let communications = sqlx::query!(
        r#"SELECT m.kind, m.happened_on, m.note, u.name AS "by?"
           FROM communications m LEFT JOIN users u ON u.id = m.user_id
           WHERE m.contact_id = $1 ORDER BY m.happened_on DESC, m.created_at DESC"#,
        id
    )
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .map(|m| HeldCommunication {
        kind: m.kind,
        happened_on: m.happened_on.to_string(),
        note: m.note,
        by: m.by,
    })
    .collect();
    let newsletter_history = sqlx::query_as!(
        HeldNewsletterEvent,
        "SELECT subscribed, at, how FROM newsletter_events WHERE contact_id = $1 ORDER BY at",
        id
    )
    .fetch_all(&mut *conn)
    .await?;
    let mails = sqlx::query_as!(
        HeldMail,
        r#"SELECT created_at AS at, kind, subject FROM mail_outbox
           WHERE contact_id = $1 ORDER BY created_at"#,
        id
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(Some(Held {
        name: p.name,
        department: p.department,
        title: p.title,
        email: p.email,
        phone: p.phone,
        language: p.language,
        status: p.status,
        source: p.source,
        met_by: p.met_by,
        added_at: p.created_at,
        confirmed_at: p.confirmed_at,
        last_communication_at: p.last_communication_at,
        newsletter: p.newsletter,
        company: HeldCompany {
            name: p.company_name,
            address: p.address,
            website: p.website,
            email: p.company_email,
            phone: p.company_phone,
            business_area: p.business_area,
        },
        consents,
        communications,
        newsletter_history,
        mails,
    }))
}
