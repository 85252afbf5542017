//! Staff accounts: who they are, their role, their invitation to set a password.
//! The administrator manages them under `/users`; `gdpr-register user add` does the same
//! from the command line.

mod email_change;
mod invitation;
mod pages;

use std::fmt;

use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

pub use email_change::{
    EmailChangeState, confirm_email_change, email_change_state, request_email_change,
};
pub use invitation::{InvitationState, invitation_state, redeem_invitation, send_invitation};

pub use crate::domain::Role;

use crate::{
    audit::{self, Actor, Event},
    domain::{Email, PersonName},
    web::{Access, Lang, Section},
};

pub fn sections() -> Vec<Section> {
    vec![
        Section::new(Access::Admin)
            .get("/users", pages::list)
            .get("/users/new", pages::new_form)
            .post("/users", pages::create)
            .get("/users/{id}", pages::edit_form)
            .post("/users/{id}", pages::update)
            .post("/users/{id}/invite", pages::reinvite),
        Section::new(Access::SignedIn)
            .post("/account/email", pages::request_own_email_change)
            .get("/account/email/{token}", pages::email_change_form)
            .post("/account/email/{token}", pages::confirm_email_change),
        Section::new(Access::Anyone)
            .get("/invite/{token}", pages::invitation_form)
            .post("/invite/{token}", pages::accept_invitation),
    ]
}

/// A staff account as stored.
#[derive(Clone)]
pub struct User {
    pub id: Uuid,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub chat_operator: bool,
    pub mailbox: bool,
    pub password_hash: Option<String>,
    pub language: Option<Lang>,
    pub created_at: OffsetDateTime,
    pub disabled_at: Option<OffsetDateTime>,
    pub last_login_at: Option<OffsetDateTime>,
    /// When the account's second factor was confirmed, if it has one.
    pub second_factor_since: Option<OffsetDateTime>,
}

impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("role", &self.role)
            .field("password_hash", &"[redacted]")
            .finish_non_exhaustive()
    }
}

impl User {
    pub fn is_active(&self) -> bool {
        self.disabled_at.is_none()
    }

    /// Whether the account's owner has set a password (else an invitation waits).
    pub fn has_signed_up(&self) -> bool {
        self.password_hash.is_some()
    }
}

/// What an account's name, role, flags and state are to become.
#[derive(Clone, Debug)]
pub struct AccountFields {
    pub name: PersonName,
    pub role: Role,
    pub chat_operator: bool,
    pub mailbox: bool,
    pub disabled: bool,
}

/// What the administrator (or the command line) gives to create an account.
#[derive(Clone, Debug)]
pub struct UserFields {
    pub email: Email,
    pub name: PersonName,
    pub role: Role,
    pub chat_operator: bool,
    pub mailbox: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("the e-mail address is already used by another account")]
    EmailTaken,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error("composing a mail")]
    Mail(#[from] askama::Error),
}

impl From<UserError> for crate::error::AppError {
    fn from(e: UserError) -> Self {
        crate::error::AppError::Unexpected(e.into())
    }
}

/// Whether another account has the address. Asked before writing, so that PostgreSQL's
/// log never holds an address (a unique violation's detail would); the unique index
/// stays the last guard against a race.
async fn email_taken(
    conn: &mut PgConnection,
    email: &Email,
    except: Option<Uuid>,
) -> sqlx::Result<bool> {
    sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM users WHERE lower(email) = lower($1) AND id IS DISTINCT FROM $2) AS "taken!""#,
        email.as_str(),
        except
    )
    .fetch_one(conn)
    .await
}

fn map_unique(e: sqlx::Error) -> UserError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => UserError::EmailTaken,
        _ => UserError::Database(e),
    }
}

macro_rules! user_from_row {
    ($r:expr) => {
        User {
            id: $r.id,
            email: $r.email,
            name: $r.name,
            role: Role::parse(&$r.role).unwrap_or(Role::Employee),
            chat_operator: $r.chat_operator,
            mailbox: $r.mailbox,
            password_hash: $r.password_hash,
            language: $r.language.as_deref().and_then(Lang::parse),
            created_at: $r.created_at,
            disabled_at: $r.disabled_at,
            last_login_at: $r.last_login_at,
            second_factor_since: $r.second_factor_since,
        }
    };
}

pub async fn find(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<Option<User>> {
    let row = sqlx::query!(
        r#"SELECT u.*, f.confirmed_at AS "second_factor_since?" FROM users u
           LEFT JOIN second_factors f ON f.user_id = u.id AND f.confirmed_at IS NOT NULL
           WHERE u.id = $1"#,
        id
    )
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|r| user_from_row!(r)))
}

pub async fn find_by_email(conn: &mut PgConnection, email: &str) -> sqlx::Result<Option<User>> {
    let row = sqlx::query!(
        r#"SELECT u.*, f.confirmed_at AS "second_factor_since?" FROM users u
           LEFT JOIN second_factors f ON f.user_id = u.id AND f.confirmed_at IS NOT NULL
           WHERE lower(u.email) = lower($1)"#,
        email.trim()
    )
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|r| user_from_row!(r)))
}

pub async fn list(conn: &mut PgConnection) -> sqlx::Result<Vec<User>> {
    let rows = sqlx::query!(
        r#"SELECT u.*, f.confirmed_at AS "second_factor_since?" FROM users u
           LEFT JOIN second_factors f ON f.user_id = u.id AND f.confirmed_at IS NOT NULL
           ORDER BY u.disabled_at IS NOT NULL, lower(u.name)"#
    )
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(|r| user_from_row!(r)).collect())
}

pub async fn count(conn: &mut PgConnection) -> sqlx::Result<i64> {
    sqlx::query_scalar!(r#"SELECT count(*) AS "n!" FROM users"#)
        .fetch_one(conn)
        .await
}

/// Creates an account without a password, recorded in the audit log.
pub async fn create(
    conn: &mut PgConnection,
    fields: &UserFields,
    actor: &Actor,
) -> Result<Uuid, UserError> {
    if email_taken(conn, &fields.email, None).await? {
        return Err(UserError::EmailTaken);
    }
    let id = Uuid::new_v4();
    sqlx::query!(
        "INSERT INTO users (id, email, name, role, chat_operator, mailbox) VALUES ($1, $2, $3, $4, $5, $6)",
        id,
        fields.email.as_str(),
        fields.name.as_str(),
        fields.role.as_str(),
        fields.chat_operator,
        fields.mailbox,
    )
    .execute(&mut *conn)
    .await
    .map_err(map_unique)?;
    audit::record(
        conn,
        Event::new(actor, "user.create", "user", Some(id.to_string())).with_fields(&[
            "email",
            "name",
            "role",
            "chat_operator",
            "mailbox",
        ]),
    )
    .await?;
    Ok(id)
}

/// Changes an account's name, role, flags and state; returns the names of the fields
/// that changed (also audited). The address changes apart: see [`set_email`] and
/// [`request_email_change`].
pub async fn update(
    conn: &mut PgConnection,
    user: &User,
    fields: &AccountFields,
    actor: &Actor,
) -> sqlx::Result<Vec<&'static str>> {
    let changed = audit::changed_fields(&[
        ("name", user.name != fields.name.as_str()),
        ("role", user.role != fields.role),
        ("chat_operator", user.chat_operator != fields.chat_operator),
        ("mailbox", user.mailbox != fields.mailbox),
        ("disabled", user.disabled_at.is_some() != fields.disabled),
    ]);
    if changed.is_empty() {
        return Ok(changed);
    }
    sqlx::query!(
        "UPDATE users SET name = $2, role = $3, chat_operator = $4, mailbox = $5,
             disabled_at = CASE WHEN $6 THEN coalesce(disabled_at, now()) ELSE NULL END
         WHERE id = $1",
        user.id,
        fields.name.as_str(),
        fields.role.as_str(),
        fields.chat_operator,
        fields.mailbox,
        fields.disabled,
    )
    .execute(&mut *conn)
    .await?;
    audit::record(
        conn,
        Event::new(actor, "user.update", "user", Some(user.id.to_string())).with_fields(&changed),
    )
    .await?;
    Ok(changed)
}

/// Disables an account (audited): it can no longer log in, and its sessions end.
/// Whether it was active.
pub async fn disable(conn: &mut PgConnection, user_id: Uuid, actor: &Actor) -> sqlx::Result<bool> {
    let disabled = sqlx::query!(
        "UPDATE users SET disabled_at = now() WHERE id = $1 AND disabled_at IS NULL",
        user_id
    )
    .execute(&mut *conn)
    .await?;
    if disabled.rows_affected() == 0 {
        return Ok(false);
    }
    audit::record(
        conn,
        Event::new(actor, "user.update", "user", Some(user_id.to_string()))
            .with_fields(&["disabled"]),
    )
    .await?;
    Ok(true)
}

/// Gives the account another address at once (audited), cancelling every open link of
/// the account. For an account whose owner has not signed up yet (a typo in the
/// invitation), and for the command line on the server; otherwise the new address is
/// confirmed through a link first ([`request_email_change`]).
pub async fn set_email(
    conn: &mut PgConnection,
    user_id: Uuid,
    email: &Email,
    actor: &Actor,
) -> Result<(), UserError> {
    if email_taken(conn, email, Some(user_id)).await? {
        return Err(UserError::EmailTaken);
    }
    sqlx::query!(
        "UPDATE users SET email = $2 WHERE id = $1",
        user_id,
        email.as_str()
    )
    .execute(&mut *conn)
    .await
    .map_err(map_unique)?;
    // A link mailed to the old address must not work for the account any more.
    crate::tokens::void(conn, user_id, &[]).await?;
    audit::record(
        conn,
        Event::new(actor, "user.update", "user", Some(user_id.to_string())).with_fields(&["email"]),
    )
    .await?;
    Ok(())
}

/// Stores a new password hash (audited).
pub async fn set_password_hash(
    conn: &mut PgConnection,
    user_id: Uuid,
    hash: &str,
    actor: &Actor,
) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE users SET password_hash = $2 WHERE id = $1",
        user_id,
        hash
    )
    .execute(&mut *conn)
    .await?;
    audit::record(
        conn,
        Event::new(
            actor,
            "user.password_set",
            "user",
            Some(user_id.to_string()),
        )
        .with_fields(&["password_hash"]),
    )
    .await
}

pub async fn set_language(conn: &mut PgConnection, user_id: Uuid, lang: Lang) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE users SET language = $2 WHERE id = $1",
        user_id,
        lang.code()
    )
    .execute(&mut *conn)
    .await?;
    audit::record(
        conn,
        Event::new(
            &Actor::User(user_id),
            "user.update",
            "user",
            Some(user_id.to_string()),
        )
        .with_fields(&["language"]),
    )
    .await
}

pub async fn touch_last_login(conn: &mut PgConnection, user_id: Uuid) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE users SET last_login_at = now() WHERE id = $1",
        user_id
    )
    .execute(conn)
    .await?;
    Ok(())
}
