//! Companies and the business areas they are filed under (R-CUST-1).

use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use super::contacts::{self, Erasure};
use crate::{
    audit::{self, Actor, Event, changed_fields},
    config::Config,
    domain::{Email, Phone, WebUrl},
    web::Lang,
};

#[derive(Clone, Debug)]
pub struct BusinessArea {
    pub id: Uuid,
    pub name_sv: String,
    pub name_en: String,
}

impl BusinessArea {
    pub fn name(&self, lang: Lang) -> &str {
        match lang {
            Lang::Sv => &self.name_sv,
            _ => &self.name_en,
        }
    }
}

pub async fn business_areas(conn: &mut PgConnection) -> sqlx::Result<Vec<BusinessArea>> {
    sqlx::query_as!(
        BusinessArea,
        "SELECT id, name_sv, name_en FROM business_areas ORDER BY position, name_en"
    )
    .fetch_all(conn)
    .await
}

/// Adds an area (no id) or renames one.
pub async fn save_business_area(
    conn: &mut PgConnection,
    id: Option<Uuid>,
    name_sv: &str,
    name_en: &str,
    actor: &Actor,
) -> sqlx::Result<Option<Uuid>> {
    let id =
        match id {
            Some(id) => sqlx::query_scalar!(
                "UPDATE business_areas SET name_sv = $2, name_en = $3 WHERE id = $1 RETURNING id",
                id,
                name_sv,
                name_en
            )
            .fetch_optional(&mut *conn)
            .await?,
            None => {
                sqlx::query_scalar!(
                    "INSERT INTO business_areas (id, name_sv, name_en, position)
             SELECT $1, $2, $3, coalesce(max(position), 0) + 1 FROM business_areas
             RETURNING id",
                    Uuid::new_v4(),
                    name_sv,
                    name_en
                )
                .fetch_optional(&mut *conn)
                .await?
            }
        };
    if let Some(id) = id {
        audit::record(
            conn,
            Event::new(
                actor,
                "business_area.save",
                "business_area",
                Some(id.to_string()),
            )
            .with_fields(&["name_sv", "name_en"]),
        )
        .await?;
    }
    Ok(id)
}

#[derive(Clone, Debug)]
pub struct Company {
    pub id: Uuid,
    pub name: String,
    pub address: String,
    pub website: String,
    pub email: String,
    pub phone: String,
    pub business_area_id: Option<Uuid>,
    pub created_at: OffsetDateTime,
}

/// A company as the form gives it, parsed.
#[derive(Clone, Debug)]
pub struct CompanyFields {
    pub name: String,
    pub address: String,
    pub website: Option<WebUrl>,
    pub email: Option<Email>,
    pub phone: Option<Phone>,
    pub business_area_id: Option<Uuid>,
}

impl CompanyFields {
    fn website(&self) -> &str {
        self.website.as_ref().map_or("", WebUrl::as_str)
    }
    fn email(&self) -> &str {
        self.email.as_ref().map_or("", Email::as_str)
    }
    fn phone(&self) -> &str {
        self.phone.as_ref().map_or("", Phone::as_str)
    }
}

pub async fn find(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<Option<Company>> {
    sqlx::query_as!(
        Company,
        "SELECT id, name, address, website, email, phone, business_area_id, created_at
         FROM companies WHERE id = $1",
        id
    )
    .fetch_optional(conn)
    .await
}

pub async fn create(
    conn: &mut PgConnection,
    fields: &CompanyFields,
    actor: &Actor,
) -> sqlx::Result<Uuid> {
    let id = Uuid::new_v4();
    sqlx::query!(
        "INSERT INTO companies (id, name, address, website, email, phone, business_area_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        id,
        fields.name,
        fields.address,
        fields.website(),
        fields.email(),
        fields.phone(),
        fields.business_area_id,
    )
    .execute(&mut *conn)
    .await?;
    audit::record(
        conn,
        Event::new(actor, "company.create", "company", Some(id.to_string())).with_fields(&[
            "name",
            "address",
            "website",
            "email",
            "phone",
            "business_area",
        ]),
    )
    .await?;
    Ok(id)
}

pub async fn update(
    conn: &mut PgConnection,
    company: &Company,
    fields: &CompanyFields,
    actor: &Actor,
) -> sqlx::Result<Vec<&'static str>> {
    let changed = changed_fields(&[
        ("name", company.name != fields.name),
        ("address", company.address != fields.address),
        ("website", company.website != fields.website()),
        ("email", company.email != fields.email()),
        ("phone", company.phone != fields.phone()),
        (
            "business_area",
            company.business_area_id != fields.business_area_id,
        ),
    ]);
    if changed.is_empty() {
        return Ok(changed);
    }
    sqlx::query!(
        "UPDATE companies SET name = $2, address = $3, website = $4, email = $5, phone = $6,
             business_area_id = $7
         WHERE id = $1",
        company.id,
        fields.name,
        fields.address,
        fields.website(),
        fields.email(),
        fields.phone(),
        fields.business_area_id,
    )
    .execute(&mut *conn)
    .await?;
    audit::record(
        conn,
        Event::new(
            actor,
            "company.update",
            "company",
            Some(company.id.to_string()),
        )
        .with_fields(&changed),
    )
    .await?;
    Ok(changed)
}

pub async fn people_count(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<i64> {
    sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM contacts WHERE company_id = $1"#,
        id
    )
    .fetch_one(conn)
    .await
}

/// Deletes the company and every person at it, each as an erasure — if it still has the
/// number of people the confirmation named (else `None`, and nothing is deleted).
pub async fn delete(
    conn: &mut PgConnection,
    id: Uuid,
    expected_people: i64,
    actor: &Actor,
    config: &Config,
) -> sqlx::Result<Option<usize>> {
    // Locked, no one can add a person to it meanwhile.
    sqlx::query!("SELECT id FROM companies WHERE id = $1 FOR UPDATE", id)
        .fetch_optional(&mut *conn)
        .await?;
    let people = sqlx::query_scalar!("SELECT id FROM contacts WHERE company_id = $1", id)
        .fetch_all(&mut *conn)
        .await?;
    if people.len() as i64 != expected_people {
        return Ok(None);
    }
    for person in &people {
        contacts::delete_contact(conn, *person, actor, Erasure::OnRequest(config)).await?;
    }
    sqlx::query!("DELETE FROM companies WHERE id = $1", id)
        .execute(&mut *conn)
        .await?;
    audit::record(
        conn,
        Event::new(actor, "company.delete", "company", Some(id.to_string())),
    )
    .await?;
    Ok(Some(people.len()))
}

/// One row of the company list.
pub struct CompanyRow {
    pub id: Uuid,
    pub name: String,
    pub email: String,
    pub phone: String,
    pub area: Option<Uuid>,
    pub people: i64,
    pub sort_key: String,
}

/// Search words as LIKE patterns over the unaccented, lower-case search column: the
/// longest word goes first, where the trigram index can take it; the rest filter.
pub struct SearchTerms {
    pub first: String,
    pub rest: Vec<String>,
}

impl SearchTerms {
    pub fn new(query: &str) -> Self {
        let mut patterns: Vec<String> = query
            .split_whitespace()
            .map(|word| {
                let mut escaped = String::from("%");
                for c in word.to_lowercase().chars() {
                    if matches!(c, '%' | '_' | '\\') {
                        escaped.push('\\');
                    }
                    escaped.push(c);
                }
                escaped.push('%');
                escaped
            })
            .collect();
        patterns.sort_by_key(|p| std::cmp::Reverse(p.chars().count()));
        let first = if patterns.is_empty() {
            String::new()
        } else {
            patterns.remove(0)
        };
        Self {
            first,
            rest: patterns,
        }
    }
}

/// How the company list is ordered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sort {
    Name,
    Newest,
}

impl Sort {
    pub fn parse(value: &str) -> Self {
        if value == "newest" {
            Sort::Newest
        } else {
            Sort::Name
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Sort::Name => "name",
            Sort::Newest => "newest",
        }
    }
}

pub struct ListQuery<'a> {
    pub search: &'a str,
    pub area: Option<Uuid>,
    pub sort: Sort,
    /// Keyset: after this (sort key, id).
    pub after: Option<(String, Uuid)>,
    pub limit: i64,
}

pub async fn list(conn: &mut PgConnection, q: &ListQuery<'_>) -> sqlx::Result<Vec<CompanyRow>> {
    let terms = SearchTerms::new(q.search);
    let (after_key, after_id) = match &q.after {
        Some((key, id)) => (Some(key.as_str()), Some(*id)),
        None => (None, None),
    };
    // One ascending key for either order (newest first: the inverted time as fixed-width
    // digits), so one keyset condition serves both.
    sqlx::query_as!(
        CompanyRow,
        r#"SELECT s.id, s.name, s.email, s.phone, s.area,
                  (SELECT count(*) FROM contacts p WHERE p.company_id = s.id) AS "people!",
                  s.sort_key AS "sort_key!"
           FROM (SELECT c.id, c.name, c.email, c.phone, c.business_area_id AS area,
                        CASE WHEN $7 = 'newest'
                             THEN lpad(((9999999999 - extract(epoch FROM c.created_at)) * 1000000)::bigint::text, 17, '0')
                             ELSE lower(c.name) END AS sort_key
                 FROM companies c
                 WHERE ($1 = '' OR c.search LIKE search_text($1))
                   AND c.search LIKE ALL (SELECT search_text(p) FROM unnest($6::text[]) AS p)
                   AND ($2::uuid IS NULL OR c.business_area_id = $2)) AS s
           WHERE ($3::text IS NULL OR (s.sort_key, s.id) > ($3, $4))
           ORDER BY s.sort_key, s.id
           LIMIT $5"#,
        terms.first,
        q.area,
        after_key,
        after_id,
        q.limit,
        &terms.rest,
        q.sort.as_str(),
    )
    .fetch_all(conn)
    .await
}

#[cfg(test)]
mod tests {
    use super::SearchTerms;

    #[test]
    fn the_longest_word_leads_and_wildcards_are_literal() {
        let terms = SearchTerms::new("  ab  Öberg 50%_x ");
        assert_eq!(terms.first, "%50\\%\\_x%");
        assert_eq!(terms.rest, ["%öberg%", "%ab%"]);
        let none = SearchTerms::new("   ");
        assert_eq!(none.first, "");
        assert!(none.rest.is_empty());
    }
}
