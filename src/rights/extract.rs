//! The register extract (GDPR Art. 15, portable as Art. 20 asks): one model of sections,
//! one per register that holds something about the person, each with the register's
//! purposes, recipients and retention. The JSON attachment is this model; the PDF is laid
//! out from the same model, so the two always say the same.
//!
//! A register joins by adding one section builder in [`for_email`].

use serde::Serialize;
use serde_json::value::RawValue;
use sqlx::PgConnection;
use time::OffsetDateTime;

use crate::{
    chat,
    config::Config,
    contact, customers,
    domain::Email,
    newsletters,
    registers::{self, Described, RegisterId},
    web::{Lang, Tr},
};

#[derive(Debug, Serialize)]
pub struct Extract {
    pub controller: String,
    pub controller_contact: String,
    #[serde(with = "time::serde::rfc3339")]
    pub generated_at: OffsetDateTime,
    /// The address the extract was asked for and is sent to.
    pub subject: String,
    pub language: Lang,
    pub sections: Vec<Section>,
}

/// What one register holds about the person, and why and how long.
#[derive(Debug, Serialize)]
pub struct Section {
    pub register: RegisterId,
    /// As the register wrote it, its fields in their order.
    pub held: Box<RawValue>,
    pub processing: Described,
}

impl Extract {
    pub fn new(config: &Config, subject: &str, language: Lang) -> Self {
        Self {
            controller: config.company_name.clone(),
            controller_contact: config.info_address.email.to_string(),
            generated_at: OffsetDateTime::now_utc(),
            subject: subject.to_string(),
            language,
            sections: Vec::new(),
        }
    }

    /// Adds what a register holds, described in the extract's language.
    pub fn add(
        &mut self,
        config: &Config,
        register: RegisterId,
        held: impl Serialize,
    ) -> serde_json::Result<()> {
        self.sections.push(Section {
            register,
            held: serde_json::value::to_raw_value(&held)?,
            processing: registers::of(register, config).describe(Tr(self.language)),
        });
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.sections.is_empty()
    }

    pub fn json(&self) -> serde_json::Result<Vec<u8>> {
        serde_json::to_vec_pretty(self)
    }
}

/// The customer register's part: the person, and what the newsletter sent them. Their
/// consents and subscription history are the person's own.
#[derive(Serialize)]
struct CustomerHeld {
    #[serde(flatten)]
    person: customers::Held,
    #[serde(with = "time::serde::rfc3339::option")]
    bouncing_since: Option<OffsetDateTime>,
    newsletter_campaigns: Vec<newsletters::campaigns::Delivered>,
}

/// Everything every register holds about the owner of `email`.
pub async fn for_email(
    conn: &mut PgConnection,
    config: &Config,
    email: &Email,
    language: Lang,
) -> anyhow::Result<Extract> {
    let mut extract = Extract::new(config, email.as_str(), language);
    if let Some(person) = customers::held_about(conn, email).await?
        && let Some(id) = customers::contact_with_email(conn, email).await?
    {
        let newsletter = newsletters::held_about(conn, id).await?;
        let held = CustomerHeld {
            person,
            bouncing_since: newsletter.bouncing_since,
            newsletter_campaigns: newsletter.campaigns,
        };
        extract.add(config, RegisterId::Customers, held)?;
    }
    let chats = chat::held_about(conn, email).await?;
    if !chats.is_empty() {
        extract.add(config, RegisterId::Chat, chats)?;
    }
    let messages = contact::held_about(conn, email).await?;
    if !messages.is_empty() {
        extract.add(config, RegisterId::Contact, messages)?;
    }
    Ok(extract)
}
