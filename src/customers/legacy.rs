//! Contacts from before the quarantine rule (25.5.2018) skip quarantine and get an
//! information mailing instead, each at most once (R-CUST-13).

use askama::Template;
use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use super::contacts;
use crate::{
    audit::{self, Actor, Event},
    config::Config,
    mail::{self, Mail, MailBody},
    web::Tr,
};

pub struct LegacyRow {
    pub id: Uuid,
    pub name: String,
    pub company: String,
    pub informed_at: Option<OffsetDateTime>,
    /// False while a changed address waits for its owner: the mailing skips them.
    pub address_confirmed: bool,
}

pub async fn list(conn: &mut PgConnection) -> sqlx::Result<Vec<LegacyRow>> {
    sqlx::query_as!(
        LegacyRow,
        r#"SELECT c.id, c.name, co.name AS company, c.legacy_informed_at AS informed_at,
                  c.email_pending_since IS NULL AS "address_confirmed!"
           FROM contacts c JOIN companies co ON co.id = c.company_id
           WHERE c.status = 'legacy'
           ORDER BY c.legacy_informed_at IS NOT NULL, lower(c.name), c.id"#
    )
    .fetch_all(conn)
    .await
}

pub struct InformationMail {
    t: Tr,
    name: String,
    company: String,
    info_address: String,
}

#[derive(Template)]
#[template(path = "email/legacy_information.txt")]
struct InformationText<'a> {
    m: &'a InformationMail,
}

#[derive(Template)]
#[template(path = "email/legacy_information.html")]
struct InformationHtml<'a> {
    m: &'a InformationMail,
}

impl MailBody for InformationMail {
    fn kind(&self) -> &'static str {
        "legacy_information"
    }
    fn subject(&self) -> String {
        self.t.with("mail.legacy.subject", "company", &self.company)
    }
    fn text(&self) -> askama::Result<String> {
        InformationText { m: self }.render()
    }
    fn html(&self) -> askama::Result<String> {
        InformationHtml { m: self }.render()
    }
}

/// Queues the mailing for every legacy contact not yet informed whose address is
/// confirmed (one waiting for its owner gets it once confirmed); returns how many.
pub async fn inform_all(
    conn: &mut PgConnection,
    config: &Config,
    actor: &Actor,
) -> anyhow::Result<usize> {
    let ids = sqlx::query_scalar!(
        "SELECT id FROM contacts
         WHERE status = 'legacy' AND legacy_informed_at IS NULL AND email_pending_since IS NULL
         FOR UPDATE"
    )
    .fetch_all(&mut *conn)
    .await?;
    for id in &ids {
        let Some(contact) = contacts::find(conn, *id).await? else {
            continue;
        };
        let body = InformationMail {
            t: Tr(contact.language),
            name: contact.name.clone(),
            company: config.company_name.clone(),
            info_address: config.info_address.email.to_string(),
        };
        let mut mail = Mail::compose(&contact.email, contact.language, &body)?;
        mail.contact_id = Some(contact.id);
        mail::enqueue(conn, &mail).await?;
        sqlx::query!(
            "UPDATE contacts SET legacy_informed_at = now() WHERE id = $1",
            contact.id
        )
        .execute(&mut *conn)
        .await?;
        audit::record(
            conn,
            Event::new(
                actor,
                "contact.legacy_informed",
                "contact",
                Some(contact.id.to_string()),
            )
            .with_fields(&["legacy_informed_at"]),
        )
        .await?;
    }
    Ok(ids.len())
}
