//! People at companies (R-CUST-2): their details, communication log, consent and
//! newsletter history, erasure with its suppression hash.

use sha2::{Digest, Sha256};
use sqlx::PgConnection;
use time::{Date, OffsetDateTime};
use uuid::Uuid;

use super::{Source, Status, companies::SearchTerms};
use crate::{
    audit::{self, Actor, Event, changed_fields},
    config::Config,
    domain::{Email, PersonName, Phone},
    keys::{Keys, Use},
    web::Lang,
};

#[derive(Clone, Debug)]
pub struct Contact {
    pub id: Uuid,
    pub company_id: Uuid,
    pub company_name: String,
    pub name: String,
    pub department: String,
    pub title: String,
    pub email: String,
    pub phone: String,
    pub language: Lang,
    pub source: Source,
    pub met_by: Option<Uuid>,
    pub met_by_name: Option<String>,
    pub status: Status,
    pub newsletter: bool,
    pub created_at: OffsetDateTime,
    pub confirmed_at: Option<OffsetDateTime>,
    pub legacy_informed_at: Option<OffsetDateTime>,
    pub last_communication_at: OffsetDateTime,
    /// Since when an address changed by staff waits for its owner to confirm it.
    pub email_pending_since: Option<OffsetDateTime>,
}

impl Contact {
    /// Whether mail may go to the address: not while a changed address waits for its
    /// owner to confirm it, except that confirmation itself.
    pub fn mailable(&self) -> bool {
        self.email_pending_since.is_none()
    }
}

#[derive(Clone, Debug)]
pub struct ContactFields {
    pub name: PersonName,
    pub department: String,
    pub title: String,
    pub email: Email,
    pub phone: Option<Phone>,
    pub language: Lang,
    pub source: Source,
    pub met_by: Option<Uuid>,
}

impl ContactFields {
    fn phone(&self) -> &str {
        self.phone.as_ref().map_or("", Phone::as_str)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ContactError {
    #[error("the e-mail address is already in the register")]
    EmailTaken,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl From<ContactError> for crate::error::AppError {
    fn from(e: ContactError) -> Self {
        crate::error::AppError::Unexpected(e.into())
    }
}

macro_rules! contact_from_row {
    ($r:expr) => {
        Contact {
            id: $r.id,
            company_id: $r.company_id,
            company_name: $r.company_name,
            name: $r.name,
            department: $r.department,
            title: $r.title,
            email: $r.email,
            phone: $r.phone,
            language: Lang::parse(&$r.language).unwrap_or(Lang::En),
            source: Source::parse(&$r.source).unwrap_or(Source::Import),
            met_by: $r.met_by,
            met_by_name: $r.met_by_name,
            status: Status::parse(&$r.status).unwrap_or(Status::Quarantine),
            newsletter: $r.newsletter,
            created_at: $r.created_at,
            confirmed_at: $r.confirmed_at,
            legacy_informed_at: $r.legacy_informed_at,
            last_communication_at: $r.last_communication_at,
            email_pending_since: $r.email_pending_since,
        }
    };
}

pub async fn find(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<Option<Contact>> {
    let row = sqlx::query!(
        r#"SELECT c.id, c.company_id, co.name AS company_name, c.name, c.department, c.title,
                  c.email, c.phone, c.language, c.source, c.met_by, u.name AS "met_by_name?",
                  c.status, c.newsletter, c.created_at, c.confirmed_at, c.legacy_informed_at,
                  c.last_communication_at, c.email_pending_since
           FROM contacts c
           JOIN companies co ON co.id = c.company_id
           LEFT JOIN users u ON u.id = c.met_by
           WHERE c.id = $1"#,
        id
    )
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|r| contact_from_row!(r)))
}

/// The hash kept of an erased address: keyed with the application key, so that the
/// database alone cannot tell whether an address is on the list.
fn email_hash(keys: &Keys, email: &str) -> Vec<u8> {
    keys.keyed_hash(Use::Suppression, email.trim().to_lowercase().as_bytes())
}

/// The hash that erasures made before the application key used: salted with a value
/// kept in the database. Still looked up, so that those erasures keep their effect.
async fn salted_email_hash(conn: &mut PgConnection, email: &str) -> sqlx::Result<Vec<u8>> {
    let salt = sqlx::query_scalar!("SELECT salt FROM installation")
        .fetch_one(&mut *conn)
        .await?;
    Ok(salted_hash(&salt, email))
}

fn salted_hash(salt: &[u8], email: &str) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update(salt);
    h.update(email.trim().to_lowercase().as_bytes());
    h.finalize().to_vec()
}

/// When the owner of this address asked to be erased, if they did.
pub async fn suppressed_since(
    conn: &mut PgConnection,
    keys: &Keys,
    email: &str,
) -> sqlx::Result<Option<OffsetDateTime>> {
    let hashes = [
        email_hash(keys, email),
        salted_email_hash(conn, email).await?,
    ];
    sqlx::query_scalar!(
        r#"SELECT max(erased_at) AS "erased_at!" FROM suppressed_emails WHERE email_hash = ANY($1)
           HAVING count(*) > 0"#,
        &hashes
    )
    .fetch_optional(conn)
    .await
}

/// Whether someone else in the register has this address, whatever its case. Asked before
/// writing, so that PostgreSQL never logs a unique violation naming the address; the
/// transaction keeps a lock on the address, so two writers of it take turns and the unique
/// index stays only the last guard.
pub async fn email_taken(
    conn: &mut PgConnection,
    email: &str,
    except: Option<Uuid>,
) -> sqlx::Result<bool> {
    sqlx::query!(
        "SELECT pg_advisory_xact_lock($1, hashtext(lower($2)))",
        EMAIL_LOCK,
        email
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM contacts WHERE lower(email) = lower($1)
                          AND id IS DISTINCT FROM $2) AS "taken!""#,
        email,
        except
    )
    .fetch_one(conn)
    .await
}

/// The class of the advisory locks on addresses (two-key locks: apart from the job locks).
const EMAIL_LOCK: i32 = 0x6d61_696c;

fn map_unique(e: sqlx::Error) -> ContactError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => ContactError::EmailTaken,
        _ => ContactError::Database(e),
    }
}

/// Adds a person. `last_contact_before` is, for a legacy contact, the day we last had
/// contact before they were imported: the five years run from it.
pub async fn create(
    conn: &mut PgConnection,
    company_id: Uuid,
    fields: &ContactFields,
    status: Status,
    last_contact_before: Option<Date>,
    actor: &Actor,
) -> Result<Uuid, ContactError> {
    if email_taken(conn, fields.email.as_str(), None).await? {
        return Err(ContactError::EmailTaken);
    }
    let id = Uuid::new_v4();
    sqlx::query!(
        "INSERT INTO contacts (id, company_id, name, department, title, email, phone, language,
                               source, met_by, status, last_contact_before_import,
                               last_communication_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12,
                 coalesce($12::date::timestamptz, now()))",
        id,
        company_id,
        fields.name.as_str(),
        fields.department,
        fields.title,
        fields.email.as_str(),
        fields.phone(),
        fields.language.code(),
        fields.source.as_str(),
        fields.met_by,
        status.as_str(),
        last_contact_before,
    )
    .execute(&mut *conn)
    .await
    .map_err(map_unique)?;
    audit::record(
        conn,
        Event::new(actor, "contact.create", "contact", Some(id.to_string())).with_fields(&[
            "company",
            "name",
            "department",
            "title",
            "email",
            "phone",
            "language",
            "source",
            "met_by",
            "status",
        ]),
    )
    .await?;
    Ok(id)
}

pub async fn update(
    conn: &mut PgConnection,
    contact: &Contact,
    fields: &ContactFields,
    actor: &Actor,
) -> Result<Vec<&'static str>, ContactError> {
    let changed = changed_fields(&[
        ("name", contact.name != fields.name.as_str()),
        ("department", contact.department != fields.department),
        ("title", contact.title != fields.title),
        ("email", contact.email != fields.email.as_str()),
        ("phone", contact.phone != fields.phone()),
        ("language", contact.language != fields.language),
        ("source", contact.source != fields.source),
        ("met_by", contact.met_by != fields.met_by),
    ]);
    if changed.is_empty() {
        return Ok(changed);
    }
    if changed.contains(&"email")
        && email_taken(conn, fields.email.as_str(), Some(contact.id)).await?
    {
        return Err(ContactError::EmailTaken);
    }
    sqlx::query!(
        "UPDATE contacts SET name = $2, department = $3, title = $4, email = $5, phone = $6,
             language = $7, source = $8, met_by = $9
         WHERE id = $1",
        contact.id,
        fields.name.as_str(),
        fields.department,
        fields.title,
        fields.email.as_str(),
        fields.phone(),
        fields.language.code(),
        fields.source.as_str(),
        fields.met_by,
    )
    .execute(&mut *conn)
    .await
    .map_err(map_unique)?;
    audit::record(
        conn,
        Event::new(
            actor,
            "contact.update",
            "contact",
            Some(contact.id.to_string()),
        )
        .with_fields(&changed),
    )
    .await?;
    Ok(changed)
}

/// Why a person is deleted: on their request (their address stays on the suppression
/// list as a keyed hash) or by a retention rule (it does not).
#[derive(Clone, Copy, Debug)]
pub enum Erasure<'a> {
    OnRequest(&'a Config),
    Retention(&'static str),
}

/// Deletes a person with everything held about them: consent records, communication log,
/// newsletter history, reminders and stored mails go with the row (ON DELETE CASCADE).
pub async fn delete_contact(
    conn: &mut PgConnection,
    id: Uuid,
    actor: &Actor,
    erasure: Erasure<'_>,
) -> sqlx::Result<bool> {
    let email = sqlx::query_scalar!("DELETE FROM contacts WHERE id = $1 RETURNING email", id)
        .fetch_optional(&mut *conn)
        .await?;
    let Some(email) = email else {
        return Ok(false);
    };
    crate::tokens::forget_subject(conn, id).await?;
    let action = match erasure {
        Erasure::OnRequest(config) => {
            let hash = email_hash(&config.keys, &email);
            sqlx::query!(
                "INSERT INTO suppressed_emails (email_hash) VALUES ($1)
                 ON CONFLICT (email_hash) DO UPDATE SET erased_at = now()",
                hash
            )
            .execute(&mut *conn)
            .await?;
            journal(config, &hash).await?;
            "contact.erase"
        }
        Erasure::Retention(rule) => rule,
    };
    audit::record(
        conn,
        Event::new(actor, action, "contact", Some(id.to_string())),
    )
    .await?;
    Ok(true)
}

/// Writes an erasure to the journal beside the backups, if `BACKUP_DIR` is set. Written
/// before the caller commits, so a committed erasure is never missing from it; an entry
/// whose transaction then fails is harmless, since that person asked to be erased.
/// The write and its fsync run on the blocking pool, not on the request's worker.
async fn journal(config: &Config, hash: &[u8]) -> sqlx::Result<()> {
    let Some(dir) = config.backup_dir.clone() else {
        return Ok(());
    };
    let hash = hash.to_vec();
    tokio::task::spawn_blocking(move || crate::backup::journal::append(&dir, &hash))
        .await
        .map_err(|e| sqlx::Error::Io(std::io::Error::other(e)))?
        .map_err(sqlx::Error::Io)
}

/// Deletes every person whose address is on the suppression list: after a restore, the
/// erasures made since the backup are applied again (the list was carried across), and
/// journaled, so that those carried from a replaced database are in the journal too.
/// Returns how many people were deleted.
pub async fn erase_suppressed(conn: &mut PgConnection, config: &Config) -> sqlx::Result<u64> {
    let keys = &config.keys;
    use futures::TryStreamExt;
    let suppressed: std::collections::HashSet<Vec<u8>> =
        sqlx::query_scalar!("SELECT email_hash FROM suppressed_emails")
            .fetch_all(&mut *conn)
            .await?
            .into_iter()
            .collect();
    if suppressed.is_empty() {
        return Ok(0);
    }
    let salt = sqlx::query_scalar!("SELECT salt FROM installation")
        .fetch_one(&mut *conn)
        .await?;
    let mut erased = Vec::new();
    let mut rows = sqlx::query!("SELECT id, email FROM contacts").fetch(&mut *conn);
    while let Some(r) = rows.try_next().await? {
        if suppressed.contains(&email_hash(keys, &r.email))
            || suppressed.contains(&salted_hash(&salt, &r.email))
        {
            erased.push((r.id, email_hash(keys, &r.email)));
        }
    }
    drop(rows);
    let actor = Actor::System("backup-restore");
    for (id, hash) in &erased {
        journal(config, hash).await?;
        delete_contact(
            conn,
            *id,
            &actor,
            Erasure::Retention("contact.erase_reapplied"),
        )
        .await?;
    }
    Ok(erased.len() as u64)
}

/// Recomputes the last communication: the latest of added (for a legacy contact: the last
/// contact before the import), confirmed and logged.
pub async fn refresh_last_communication(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE contacts c SET last_communication_at = greatest(
             coalesce(c.last_contact_before_import::timestamptz, c.created_at),
             c.confirmed_at,
             (SELECT max(happened_on)::timestamptz FROM communications m WHERE m.contact_id = c.id))
         WHERE c.id = $1",
        id
    )
    .execute(conn)
    .await?;
    Ok(())
}

pub struct Communication {
    pub kind: String,
    pub happened_on: Date,
    pub note: String,
    pub user_name: Option<String>,
}

pub async fn log_communication(
    conn: &mut PgConnection,
    contact_id: Uuid,
    kind: &str,
    happened_on: Date,
    note: &str,
    user: Uuid,
) -> sqlx::Result<()> {
    let id = Uuid::new_v4();
    sqlx::query!(
        "INSERT INTO communications (id, contact_id, kind, happened_on, note, user_id)
         VALUES ($1, $2, $3, $4, $5, $6)",
        id,
        contact_id,
        kind,
        happened_on,
        note,
        user
    )
    .execute(&mut *conn)
    .await?;
    refresh_last_communication(conn, contact_id).await?;
    audit::record(
        conn,
        Event::new(
            &Actor::User(user),
            "communication.create",
            "contact",
            Some(contact_id.to_string()),
        )
        .with_fields(&["kind", "happened_on", "note"]),
    )
    .await
}

pub async fn communications(
    conn: &mut PgConnection,
    contact_id: Uuid,
) -> sqlx::Result<Vec<Communication>> {
    sqlx::query_as!(
        Communication,
        r#"SELECT m.kind, m.happened_on, m.note, u.name AS "user_name?"
           FROM communications m LEFT JOIN users u ON u.id = m.user_id
           WHERE m.contact_id = $1 ORDER BY m.happened_on DESC, m.created_at DESC"#,
        contact_id
    )
    .fetch_all(conn)
    .await
}

pub struct ConsentRecord {
    pub purpose: String,
    pub text_version: String,
    pub language: String,
    pub given_at: OffsetDateTime,
    pub method: String,
    pub withdrawn_at: Option<OffsetDateTime>,
}

pub async fn consents(
    conn: &mut PgConnection,
    contact_id: Uuid,
) -> sqlx::Result<Vec<ConsentRecord>> {
    sqlx::query_as!(
        ConsentRecord,
        "SELECT purpose, text_version, language, given_at, method, withdrawn_at
         FROM consents WHERE contact_id = $1 ORDER BY given_at",
        contact_id
    )
    .fetch_all(conn)
    .await
}

pub struct NewsletterEvent {
    pub subscribed: bool,
    pub at: OffsetDateTime,
    pub how: String,
}

pub async fn newsletter_history(
    conn: &mut PgConnection,
    contact_id: Uuid,
) -> sqlx::Result<Vec<NewsletterEvent>> {
    sqlx::query_as!(
        NewsletterEvent,
        "SELECT subscribed, at, how FROM newsletter_events WHERE contact_id = $1 ORDER BY at",
        contact_id
    )
    .fetch_all(conn)
    .await
}

/// One row of the people list.
pub struct PersonRow {
    pub id: Uuid,
    pub name: String,
    pub email: String,
    pub phone: String,
    pub company_id: Uuid,
    pub company_name: String,
    pub status: String,
    pub sort_key: String,
}

pub struct PeopleQuery<'a> {
    pub search: &'a str,
    /// `quarantine`, `legacy`, or empty for the register proper (active and legacy).
    pub status: &'a str,
    pub company: Option<Uuid>,
    pub after: Option<(String, Uuid)>,
    pub limit: i64,
}

pub async fn list(conn: &mut PgConnection, q: &PeopleQuery<'_>) -> sqlx::Result<Vec<PersonRow>> {
    let terms = SearchTerms::new(q.search);
    let (after_name, after_id) = match &q.after {
        Some((name, id)) => (Some(name.as_str()), Some(*id)),
        None => (None, None),
    };
    sqlx::query_as!(
        PersonRow,
        r#"SELECT c.id, c.name, c.email, c.phone, c.company_id, co.name AS company_name, c.status,
                  lower(c.name) AS "sort_key!"
           FROM contacts c JOIN companies co ON co.id = c.company_id
           WHERE ($1 = '' OR c.search LIKE search_text($1))
             AND c.search LIKE ALL (SELECT search_text(p) FROM unnest($7::text[]) AS p)
             AND CASE $2 WHEN '' THEN c.status <> 'quarantine' ELSE c.status = $2 END
             AND ($3::uuid IS NULL OR c.company_id = $3)
             AND ($4::text IS NULL OR (lower(c.name), c.id) > ($4, $5))
           ORDER BY lower(c.name), c.id
           LIMIT $6"#,
        terms.first,
        q.status,
        q.company,
        after_name,
        after_id,
        q.limit,
        &terms.rest,
    )
    .fetch_all(conn)
    .await
}

/// People whose last communication is so old that the sweep deletes them before `until`.
pub async fn due_for_deletion(
    conn: &mut PgConnection,
    from: OffsetDateTime,
    until: OffsetDateTime,
) -> sqlx::Result<Vec<(Uuid, String, String, OffsetDateTime)>> {
    let rows = sqlx::query!(
        "SELECT c.id, c.name, co.name AS company, c.last_communication_at
         FROM contacts c JOIN companies co ON co.id = c.company_id
         WHERE c.status <> 'quarantine' AND c.last_communication_at >= $1 AND c.last_communication_at < $2
         ORDER BY c.last_communication_at",
        from,
        until
    )
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| (r.id, r.name, r.company, r.last_communication_at))
        .collect())
}

/// The person with this address, whatever its case.
pub async fn find_by_email(conn: &mut PgConnection, email: &str) -> sqlx::Result<Option<Contact>> {
    let id = sqlx::query_scalar!(
        "SELECT id FROM contacts WHERE lower(email) = lower($1)",
        email
    )
    .fetch_optional(&mut *conn)
    .await?;
    match id {
        Some(id) => find(conn, id).await,
        None => Ok(None),
    }
}

/// Adds someone who confirmed their address themselves (a newsletter's double opt-in):
/// in the register at once, with the source web, at the company of that name (made if
/// there is none).
pub async fn add_confirmed_from_web(
    conn: &mut PgConnection,
    email: &Email,
    name: &PersonName,
    company: &str,
    language: Lang,
    actor: &Actor,
) -> Result<Uuid, ContactError> {
    let existing = sqlx::query_scalar!(
        "SELECT id FROM companies WHERE lower(name) = lower($1) ORDER BY created_at LIMIT 1",
        company
    )
    .fetch_optional(&mut *conn)
    .await?;
    let company_id = match existing {
        Some(id) => id,
        None => {
            let fields = super::CompanyFields {
                name: company.to_string(),
                address: String::new(),
                website: None,
                email: None,
                phone: None,
                business_area_id: None,
            };
            super::companies::create(conn, &fields, actor).await?
        }
    };
    let fields = ContactFields {
        name: name.clone(),
        department: String::new(),
        title: String::new(),
        email: email.clone(),
        phone: None,
        language,
        source: Source::Web,
        met_by: None,
    };
    let id = create(conn, company_id, &fields, Status::Active, None, actor).await?;
    sqlx::query!("UPDATE contacts SET confirmed_at = now() WHERE id = $1", id)
        .execute(&mut *conn)
        .await?;
    Ok(id)
}
