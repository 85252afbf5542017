//! Signing in and out, the session's user, the user's own account page and language.

mod pages;
pub mod password;
mod pending;
pub mod second_factor;
mod second_factor_pages;
pub mod throttle;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use time::OffsetDateTime;
use tower_sessions::Session;
use uuid::Uuid;

pub use crate::users::Role;
pub use pages::client_address;
pub(crate) use pages::{CodeForm, CodePage, check_code};
pub use password::Passwords;
pub use throttle::{remove_expired as remove_expired_throttles, spend as spend_throttled};

use crate::{
    error::AppError,
    state::AppState,
    users::{self, User},
    web::{Access, Lang, Section, access::ENROLMENT},
};

pub fn sections() -> Vec<Section> {
    vec![
        Section::new(Access::Anyone)
            .get("/login", pages::login_form)
            .post("/login", pages::login)
            .get("/login/code", pages::code_form)
            .post("/login/code", pages::login_code)
            .post("/lang", pages::switch_language),
        Section::new(Access::Enrolling)
            .post("/logout", pages::logout)
            .get(ENROLMENT, second_factor_pages::show)
            .post(ENROLMENT, second_factor_pages::confirm)
            .post("/account/second-factor/remove", second_factor_pages::remove),
        Section::new(Access::SignedIn)
            .get("/account", pages::account)
            .post("/account/password", pages::change_password),
    ]
}

/// The signed-in staff member.
#[derive(Clone, Debug)]
pub struct CurrentUser {
    pub id: Uuid,
    pub name: String,
    pub email: String,
    pub role: Role,
    pub chat_operator: bool,
    pub mailbox: bool,
    pub language: Option<Lang>,
    /// This session was opened with a second factor (or enrolled one).
    pub second_factor: bool,
}

impl CurrentUser {
    fn new(u: User, second_factor: bool) -> Self {
        Self {
            second_factor: second_factor && u.second_factor_since.is_some(),
            id: u.id,
            name: u.name,
            email: u.email,
            role: u.role,
            chat_operator: u.chat_operator,
            mailbox: u.mailbox,
            language: u.language,
        }
    }
}

const USER_ID: &str = "user_id";
/// Milliseconds since the epoch, so a short absolute time-out is kept to the moment.
const LOGIN_AT: &str = "login_at_ms";
/// When the session was last written: the idle time-out counts from the last write, so a
/// request writes again once a while has passed, not on every request.
const SEEN_AT: &str = "seen_at";
/// Derived from the password hash and the second factor: changing either ends every
/// other session.
const AUTH_STAMP: &str = "auth_stamp";
/// The session was opened with a second factor.
const SECOND_FACTOR: &str = "second_factor";
/// When a second-factor code was last entered in this session (milliseconds): what asks
/// for a fresh code counts from it.
const CODE_AT: &str = "code_at_ms";

/// Notes that a right code was just entered in this session.
pub async fn code_entered(session: &Session) -> Result<(), AppError> {
    session.insert(CODE_AT, now_ms()).await?;
    Ok(())
}

/// When a code was last entered in this session, in milliseconds since the epoch.
pub async fn code_entered_at(session: &Session) -> Result<Option<i64>, AppError> {
    Ok(session.get::<i64>(CODE_AT).await?)
}

fn auth_stamp(user: &User) -> String {
    let hash = user.password_hash.as_deref().unwrap_or("");
    let factor = user
        .second_factor_since
        .map(|t| t.unix_timestamp_nanos().to_string())
        .unwrap_or_default();
    hex::encode(&Sha256::digest(format!("{hash}|{factor}").as_bytes())[..16])
}

fn now_ms() -> i64 {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// Makes the session belong to `user`, with a new id (no fixation).
async fn begin_session(
    session: &Session,
    user: &User,
    second_factor: bool,
) -> Result<(), AppError> {
    session.cycle_id().await?;
    session.insert(USER_ID, user.id).await?;
    session.insert(AUTH_STAMP, auth_stamp(user)).await?;
    session.insert(SECOND_FACTOR, second_factor).await?;
    session.insert(LOGIN_AT, now_ms()).await?;
    if second_factor {
        code_entered(session).await?;
    }
    Ok(())
}

/// After the second factor was added or removed in this session: the session keeps
/// going, with its new state (other sessions end, their stamp no longer matching).
async fn restamp(session: &Session, user: &User, second_factor: bool) -> Result<(), AppError> {
    session.insert(AUTH_STAMP, auth_stamp(user)).await?;
    session.insert(SECOND_FACTOR, second_factor).await?;
    if second_factor {
        code_entered(session).await?;
    }
    Ok(())
}

/// The session's user, if the session is still valid: within the absolute time-out, the
/// account active, and the password unchanged since login. Otherwise the session ends.
pub async fn session_user(
    state: &AppState,
    session: &Session,
) -> Result<Option<CurrentUser>, AppError> {
    let Some(user_id) = session.get::<Uuid>(USER_ID).await? else {
        return Ok(None);
    };
    let login_at = session.get::<i64>(LOGIN_AT).await?.unwrap_or(0);
    let age = now_ms() - login_at;
    let within_limit = age >= 0 && (age as u128) < state.config.session_absolute.as_millis();
    let mut conn = state.pool.acquire().await?;
    let user = match users::find(&mut conn, user_id).await? {
        Some(user) if within_limit && user.is_active() => user,
        _ => {
            session.flush().await?;
            return Ok(None);
        }
    };
    let stamp = session.get::<String>(AUTH_STAMP).await?.unwrap_or_default();
    if !bool::from(stamp.as_bytes().ct_eq(auth_stamp(&user).as_bytes())) {
        session.flush().await?;
        return Ok(None);
    }
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let seen_at = session.get::<i64>(SEEN_AT).await?.unwrap_or(0);
    let refresh_every = (state.config.session_idle.as_secs() / 2).clamp(1, 60) as i64;
    if now - seen_at >= refresh_every {
        session.insert(SEEN_AT, now).await?;
    }
    let second_factor = session.get::<bool>(SECOND_FACTOR).await?.unwrap_or(false);
    Ok(Some(CurrentUser::new(user, second_factor)))
}
