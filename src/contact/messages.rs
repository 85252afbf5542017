//! Stored contact-form messages: parsing what a visitor typed, storing it with its mail to
//! the info address, the inbox's reads and changes.

use serde::Serialize;
use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{
    audit::{self, Actor, Event},
    config::Config,
    domain::{Email, Phone, optional, short_text},
    mail::{self, Mail, kinds::ContactMessage},
    web::{Lang, form::Errors},
};

/// The audit log's name for a message.
pub const ENTITY: &str = "contact_message";
/// The longest message taken, in characters.
pub const MAX_MESSAGE: usize = 10_000;

/// Where a message was left.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Form,
    /// The chat widget, while no operator was online.
    Chat,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Form => "form",
            Source::Chat => "chat",
        }
    }
}

/// A message as the inbox shows it and an extract lists it.
#[derive(Clone, Debug, Serialize)]
pub struct Message {
    pub id: Uuid,
    pub email: String,
    pub name: String,
    pub company: String,
    pub phone: String,
    pub message: String,
    pub source: String,
    pub language: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub handled_at: Option<OffsetDateTime>,
}

impl Message {
    pub fn from_chat(&self) -> bool {
        self.source == Source::Chat.as_str()
    }
}

/// A message as typed, parsed: e-mail and text required, the rest optional (R-FORM-1).
#[derive(Clone, Debug)]
pub struct NewMessage {
    pub email: Email,
    pub name: String,
    pub company: String,
    pub phone: Option<Phone>,
    pub message: String,
}

impl NewMessage {
    /// Parses the fields; the errors name each wrong field by its translation key.
    pub fn parse(
        email: &str,
        name: &str,
        company: &str,
        phone: &str,
        message: &str,
    ) -> Result<Self, Errors> {
        let mut errors = Errors::default();
        let email = errors.check("email", Email::parse(email));
        let name = errors.check("name", short_text(name, 200));
        let company = errors.check("company", short_text(company, 200));
        let phone = errors.check("phone", optional(phone, Phone::parse));
        let message = errors.check("message", message_text(message, MAX_MESSAGE));
        match (email, name, company, phone, message) {
            (Some(email), Some(name), Some(company), Some(phone), Some(message))
                if errors.is_empty() =>
            {
                Ok(Self {
                    email,
                    name,
                    company,
                    phone,
                    message,
                })
            }
            _ => Err(errors),
        }
    }
}

/// Free text of several lines: required, at most `max` characters, line breaks and tabs
/// but no other control characters; Windows line ends become plain ones.
pub fn message_text(input: &str, max: usize) -> Result<String, &'static str> {
    let value = input.replace("\r\n", "\n");
    let value = value.trim();
    if value.is_empty() {
        return Err("field.required");
    }
    if value.chars().count() > max {
        return Err("contact.message.too_long");
    }
    if value
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err("field.invalid_characters");
    }
    Ok(value.to_string())
}

/// Stores a message and queues its mail to the info address (R-FORM-3), in the caller's
/// transaction.
pub async fn submit(
    conn: &mut PgConnection,
    config: &Config,
    new: &NewMessage,
    source: Source,
    lang: Lang,
) -> anyhow::Result<Uuid> {
    let id = Uuid::new_v4();
    sqlx::query!(
        "INSERT INTO contact_messages (id, email, name, company, phone, message, source, language)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        id,
        new.email.as_str(),
        new.name,
        new.company,
        new.phone.as_ref().map_or("", Phone::as_str),
        new.message,
        source.as_str(),
        lang.code(),
    )
    .execute(&mut *conn)
    .await?;
    audit::record(
        conn,
        Event::new(
            &Actor::Anonymous,
            "contact_message.create",
            ENTITY,
            Some(id.to_string()),
        )
        .with_fields(&["email", "name", "company", "phone", "message"]),
    )
    .await?;
    let kind = ContactMessage {
        email: new.email.to_string(),
        name: new.name.clone(),
        company: new.company.clone(),
        phone: new.phone.as_ref().map_or("", Phone::as_str).to_string(),
        message: new.message.clone(),
        from_chat: source == Source::Chat,
        link: config.absolute_url(&format!("/inbox/{id}")),
    };
    let mail = Mail::compose(config, &config.info_address.to_string(), Lang::Sv, &kind)?;
    mail::enqueue(conn, &mail).await?;
    Ok(id)
}

macro_rules! message_from_row {
    ($r:expr) => {
        Message {
            id: $r.id,
            email: $r.email,
            name: $r.name,
            company: $r.company,
            phone: $r.phone,
            message: $r.message,
            source: $r.source,
            language: $r.language,
            created_at: $r.created_at,
            handled_at: $r.handled_at,
        }
    };
}

pub async fn find(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<Option<Message>> {
    let row = sqlx::query!(
        "SELECT id, email, name, company, phone, message, source, language, created_at, handled_at
         FROM contact_messages WHERE id = $1",
        id
    )
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|r| message_from_row!(r)))
}

/// One page of the inbox, newest first, after the keyset `(created_at, id)` if given.
pub async fn list(
    conn: &mut PgConnection,
    open_only: bool,
    after: Option<(OffsetDateTime, Uuid)>,
    limit: i64,
) -> sqlx::Result<Vec<Message>> {
    let (at, id) = after.unzip();
    let rows = sqlx::query!(
        "SELECT id, email, name, company, phone, message, source, language, created_at, handled_at
         FROM contact_messages
         WHERE (NOT $1 OR handled_at IS NULL)
           AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3))
         ORDER BY created_at DESC, id DESC LIMIT $4",
        open_only,
        at,
        id,
        limit
    )
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(|r| message_from_row!(r)).collect())
}

pub async fn mark_handled(conn: &mut PgConnection, id: Uuid, by: Uuid) -> sqlx::Result<bool> {
    let done = sqlx::query!(
        "UPDATE contact_messages SET handled_at = now(), handled_by = $2
         WHERE id = $1 AND handled_at IS NULL",
        id,
        by
    )
    .execute(&mut *conn)
    .await?
    .rows_affected()
        == 1;
    if done {
        audit::record(
            conn,
            Event::new(
                &Actor::User(by),
                "contact_message.handled",
                ENTITY,
                Some(id.to_string()),
            )
            .with_fields(&["handled_at"]),
        )
        .await?;
    }
    Ok(done)
}

pub async fn delete(conn: &mut PgConnection, id: Uuid, by: Uuid) -> sqlx::Result<bool> {
    let done = sqlx::query!("DELETE FROM contact_messages WHERE id = $1", id)
        .execute(&mut *conn)
        .await?
        .rows_affected()
        == 1;
    if done {
        audit::record(
            conn,
            Event::new(
                &Actor::User(by),
                "contact_message.delete",
                ENTITY,
                Some(id.to_string()),
            ),
        )
        .await?;
    }
    Ok(done)
}

pub async fn with_email(conn: &mut PgConnection, email: &Email) -> sqlx::Result<Vec<Message>> {
    let rows = sqlx::query!(
        "SELECT id, email, name, company, phone, message, source, language, created_at, handled_at
         FROM contact_messages WHERE lower(email) = lower($1) ORDER BY created_at",
        email.as_str()
    )
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(|r| message_from_row!(r)).collect())
}

pub async fn delete_with_email(conn: &mut PgConnection, email: &Email) -> sqlx::Result<u64> {
    Ok(sqlx::query!(
        "DELETE FROM contact_messages WHERE lower(email) = lower($1)",
        email.as_str()
    )
    .execute(conn)
    .await?
    .rows_affected())
}

/// Deletes one batch of messages left before `before`; returns their ids.
pub async fn delete_before(
    conn: &mut PgConnection,
    before: OffsetDateTime,
    limit: i64,
) -> sqlx::Result<Vec<Uuid>> {
    sqlx::query_scalar!(
        "DELETE FROM contact_messages WHERE id IN (
             SELECT id FROM contact_messages WHERE created_at < $1
             LIMIT $2 FOR UPDATE SKIP LOCKED)
         RETURNING id",
        before,
        limit
    )
    .fetch_all(conn)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_is_required_text_of_at_most_ten_thousand_characters() {
        assert_eq!(message_text("  hej\r\nda  ", 10).unwrap(), "hej\nda");
        assert_eq!(message_text(" \n ", 10), Err("field.required"));
        assert_eq!(
            message_text(&"å".repeat(11), 10),
            Err("contact.message.too_long")
        );
        assert!(message_text(&"å".repeat(10), 10).is_ok());
        assert_eq!(message_text("a\u{7}b", 10), Err("field.invalid_characters"));
    }
}
