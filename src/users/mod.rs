//! Staff accounts: who they are, their role, their invitation to set a password.
//! The administrator manages them under `/users`; `gdpr-register user add` does the same
//! from the command line.

mod invitation;
mod pages;

use std::fmt;

use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

pub use invitation::{InvitationState, invitation_state, redeem_invitation, send_invitation};

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
        Section::new(Access::Anyone)
            .get("/invite/{token}", pages::invitation_form)
            .post("/invite/{token}", pages::accept_invitation),
    ]
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The marketing & sales director: the customer register, users, audit log.
    Admin,
    /// Other staff: the customer register.
    Employee,
    /// The personnel register.
    Ceo,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Admin, Role::Employee, Role::Ceo];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Employee => "employee",
            Role::Ceo => "ceo",
        }
    }

    pub fn parse(value: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == value)
    }

    /// The translation key of the role's name.
    pub fn label(self) -> &'static str {
        match self {
            Role::Admin => "role.admin",
            Role::Employee => "role.employee",
            Role::Ceo => "role.ceo",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
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
}

/// What the administrator (or the command line) gives to create or change an account.
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
}

impl From<UserError> for crate::error::AppError {
    fn from(e: UserError) -> Self {
        crate::error::AppError::Unexpected(e.into())
    }
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
        }
    };
}

pub async fn find(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<Option<User>> {
    let row = sqlx::query!("SELECT * FROM users WHERE id = $1", id)
        .fetch_optional(conn)
        .await?;
    Ok(row.map(|r| user_from_row!(r)))
}

pub async fn find_by_email(conn: &mut PgConnection, email: &str) -> sqlx::Result<Option<User>> {
    let row = sqlx::query!(
        "SELECT * FROM users WHERE lower(email) = lower($1)",
        email.trim()
    )
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|r| user_from_row!(r)))
}

pub async fn list(conn: &mut PgConnection) -> sqlx::Result<Vec<User>> {
    let rows = sqlx::query!("SELECT * FROM users ORDER BY disabled_at IS NOT NULL, lower(name)")
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

/// Changes an account; returns the names of the fields that changed (also audited).
pub async fn update(
    conn: &mut PgConnection,
    user: &User,
    fields: &UserFields,
    disabled: bool,
    actor: &Actor,
) -> Result<Vec<&'static str>, UserError> {
    let changed = audit::changed_fields(&[
        ("email", user.email != fields.email.as_str()),
        ("name", user.name != fields.name.as_str()),
        ("role", user.role != fields.role),
        ("chat_operator", user.chat_operator != fields.chat_operator),
        ("mailbox", user.mailbox != fields.mailbox),
        ("disabled", user.disabled_at.is_some() != disabled),
    ]);
    if changed.is_empty() {
        return Ok(changed);
    }
    sqlx::query!(
        "UPDATE users SET email = $2, name = $3, role = $4, chat_operator = $5, mailbox = $6,
             disabled_at = CASE WHEN $7 THEN coalesce(disabled_at, now()) ELSE NULL END
         WHERE id = $1",
        user.id,
        fields.email.as_str(),
        fields.name.as_str(),
        fields.role.as_str(),
        fields.chat_operator,
        fields.mailbox,
        disabled,
    )
    .execute(&mut *conn)
    .await
    .map_err(map_unique)?;
    if changed.contains(&"email") {
        // A link mailed to the old address must not work for the account any more.
        crate::tokens::void(conn, user.id, &[]).await?;
    }
    audit::record(
        conn,
        Event::new(actor, "user.update", "user", Some(user.id.to_string())).with_fields(&changed),
    )
    .await?;
    Ok(changed)
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
