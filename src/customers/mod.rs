//! The customer register (R-CUST-1 … R-CUST-13): companies and their people, quarantine
//! and consent, the communication log, erasure and retention.

mod address;
mod companies;
mod contacts;
pub mod demo;
mod held;
mod jobs;
mod legacy;
mod pages;
mod people_pages;
mod public;
pub mod quarantine;
pub mod transfer;

use std::fmt;

use time::OffsetDateTime;
use uuid::Uuid;

pub use companies::business_areas;
pub use companies::{BusinessArea, Company, CompanyFields};
pub use contacts::{
    Contact, ContactError, ContactFields, Erasure, add_confirmed_from_web, delete_contact,
    erase_suppressed, find as find_contact, find_by_email, suppressed_since,
};
pub use held::{Held, contact_with_email, held_about};
pub use jobs::{inactivity_sweep, quarantine as quarantine_job};

use crate::web::{Access, Lang, Section};

pub fn sections() -> Vec<Section> {
    vec![
        Section::new(Access::CustomerRegister)
            .get("/customers", pages::list)
            .get("/customers/new", pages::new_form)
            .post("/customers", pages::create)
            .get("/customers/{id}", pages::show)
            .get("/customers/{id}/edit", pages::edit_form)
            .post("/customers/{id}", pages::update)
            .get("/customers/{id}/delete", pages::confirm_delete)
            .post("/customers/{id}/delete", pages::delete)
            .get("/customers/{id}/people/new", people_pages::new_form)
            .post("/customers/{id}/people", people_pages::create)
            .get("/people", people_pages::list)
            .get("/people/{id}", people_pages::show)
            .get("/people/{id}/edit", people_pages::edit_form)
            .post("/people/{id}", people_pages::update)
            .get("/people/{id}/delete", people_pages::confirm_delete)
            .post("/people/{id}/delete", people_pages::delete)
            .post(
                "/people/{id}/communications",
                people_pages::log_communication,
            )
            .post(
                "/people/{id}/address-confirmation",
                people_pages::resend_address_confirmation,
            ),
        Section::new(Access::Admin)
            .get("/people/due", people_pages::due)
            .get("/people/legacy", people_pages::legacy)
            .post("/people/legacy/inform", people_pages::inform_legacy)
            .get("/business-areas", pages::business_areas)
            .post("/business-areas", pages::save_business_area)
            .get("/import", pages::import_form)
            .post("/import", pages::import_upload),
        Section::new(Access::Anyone)
            .get("/consent/{token}", public::confirm_form)
            .post("/consent/{token}", public::confirm)
            .get("/refuse/{token}", public::refuse_form)
            .post("/refuse/{token}", public::refuse)
            .get("/address/{token}", public::address_form)
            .post("/address/{token}", public::address_confirm),
    ]
}

/// Where a person stands in the register.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Added, not yet confirmed by the person (R-CUST-12).
    Quarantine,
    /// Confirmed.
    Active,
    /// In the register since before 25.5.2018 (R-CUST-13).
    Legacy,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Quarantine => "quarantine",
            Status::Active => "active",
            Status::Legacy => "legacy",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        [Status::Quarantine, Status::Active, Status::Legacy]
            .into_iter()
            .find(|s| s.as_str() == value)
    }

    pub fn label(self) -> &'static str {
        match self {
            Status::Quarantine => "status.quarantine",
            Status::Active => "status.active",
            Status::Legacy => "status.legacy",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How we met the person (R-CUST-11).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Fair,
    Phone,
    Email,
    Web,
    Import,
}

impl Source {
    pub const CHOSEN_BY_STAFF: [Source; 4] =
        [Source::Fair, Source::Phone, Source::Email, Source::Web];

    pub fn as_str(self) -> &'static str {
        match self {
            Source::Fair => "fair",
            Source::Phone => "phone",
            Source::Email => "email",
            Source::Web => "web",
            Source::Import => "import",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        [
            Source::Fair,
            Source::Phone,
            Source::Email,
            Source::Web,
            Source::Import,
        ]
        .into_iter()
        .find(|s| s.as_str() == value)
    }

    pub fn label(self) -> &'static str {
        match self {
            Source::Fair => "source.fair",
            Source::Phone => "source.phone",
            Source::Email => "source.email",
            Source::Web => "source.web",
            Source::Import => "source.import",
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Kinds of logged communication.
pub const COMMUNICATION_KINDS: [&str; 5] = ["call", "meeting", "email", "fair", "other"];

/// Languages a person can get mail in.
pub const CONTACT_LANGUAGES: [Lang; 3] = [Lang::Sv, Lang::Fi, Lang::En];

/// The same instant `years` calendar years earlier (29 February becomes 28 February).
pub fn years_before(at: OffsetDateTime, years: u32) -> OffsetDateTime {
    shift_years(at, -(years as i32))
}

/// The same instant `years` calendar years later.
pub fn years_after(at: OffsetDateTime, years: u32) -> OffsetDateTime {
    shift_years(at, years as i32)
}

fn shift_years(at: OffsetDateTime, years: i32) -> OffsetDateTime {
    let year = at.year() + years;
    at.replace_year(year)
        .or_else(|_| at.replace_day(28).and_then(|d| d.replace_year(year)))
        .unwrap_or(at)
}

/// What needs attention, for the start page: people waiting in quarantine, and people
/// the five-year sweep deletes within 30 days. Both read small index ranges.
pub async fn attention(
    conn: &mut sqlx::PgConnection,
    config: &crate::config::Config,
) -> sqlx::Result<(i64, i64)> {
    let now = OffsetDateTime::now_utc();
    let row = sqlx::query!(
        r#"SELECT (SELECT count(*) FROM contacts WHERE status = 'quarantine') AS "quarantine!",
                  (SELECT count(*) FROM contacts
                   WHERE status <> 'quarantine' AND last_communication_at >= $1 AND last_communication_at < $2) AS "due!""#,
        years_before(now, config.inactivity_years),
        years_before(now + time::Duration::days(30), config.inactivity_years),
    )
    .fetch_one(conn)
    .await?;
    Ok((row.quarantine, row.due))
}

/// Up to 20 companies whose name, e-mail or phone matches `search`: where a person from
/// elsewhere (a contact-form message) may be added.
pub async fn find_companies(
    conn: &mut sqlx::PgConnection,
    search: &str,
) -> sqlx::Result<Vec<(Uuid, String)>> {
    let rows = companies::list(
        conn,
        &companies::ListQuery {
            search,
            area: None,
            sort: companies::Sort::Name,
            after: None,
            limit: 20,
        },
    )
    .await?;
    Ok(rows.into_iter().map(|r| (r.id, r.name)).collect())
}

pub fn parse_id(value: &str) -> Option<Uuid> {
    value.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn years_before_keeps_the_calendar_date() {
        assert_eq!(
            years_before(datetime!(2030-06-15 10:00 UTC), 5),
            datetime!(2025-06-15 10:00 UTC)
        );
        assert_eq!(
            years_before(datetime!(2028-02-29 00:00 UTC), 5),
            datetime!(2023-02-28 00:00 UTC)
        );
        assert_eq!(
            years_after(datetime!(2025-06-15 10:00 UTC), 5),
            datetime!(2030-06-15 10:00 UTC)
        );
    }
}
