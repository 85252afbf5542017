//! A staff member's new address takes effect only when the link mailed to it is opened,
//! by the account itself, signed in: whoever asks for the change (the administrator, or
//! the staff member), nobody can point an account at an address they read and take it
//! over. The old address is told once the change is made.

use sqlx::PgConnection;
use uuid::Uuid;

use super::{User, UserError, email_taken, find};
use crate::{
    audit::{self, Actor, Event},
    config::Config,
    domain::Email,
    mail::{
        self, Mail,
        kinds::{UserEmailChange, UserEmailChanged},
    },
    tokens::{self, Peeked, Purpose},
    web::Lang,
};

/// How long the link to the new address works.
const VALID_HOURS: i64 = 48;

/// Keeps `new` as the account's pending address and mails a link to it, replacing any
/// earlier pending change. The account's address stays as it is.
pub async fn request_email_change(
    conn: &mut PgConnection,
    config: &Config,
    user: &User,
    new: &Email,
    lang: Lang,
    actor: &Actor,
) -> Result<(), UserError> {
    if email_taken(conn, new, Some(user.id)).await? {
        return Err(UserError::EmailTaken);
    }
    tokens::void(conn, user.id, &[Purpose::UserEmailChange]).await?;
    let expires_at = time::OffsetDateTime::now_utc() + time::Duration::hours(VALID_HOURS);
    let token = tokens::issue(
        conn,
        Purpose::UserEmailChange,
        user.id,
        Some(new.as_str()),
        expires_at,
    )
    .await?;
    let lang = user.language.unwrap_or(lang);
    let change = UserEmailChange {
        name: user.name.clone(),
        link: config.absolute_url(&format!("/account/email/{token}")),
        valid_hours: VALID_HOURS,
    };
    mail::enqueue(conn, &Mail::compose(config, new.as_str(), lang, &change)?).await?;
    audit::record(
        conn,
        Event::new(
            actor,
            "user.email_change_requested",
            "user",
            Some(user.id.to_string()),
        )
        .with_fields(&["email"]),
    )
    .await?;
    Ok(())
}

pub enum EmailChangeState {
    Valid { user: User, new_email: Email },
    Used,
    Expired,
    Unknown,
}

/// What the link stands for, for the signed-in `user_id`: another account's link is
/// unknown to them. Reading it changes nothing.
pub async fn email_change_state(
    conn: &mut PgConnection,
    token: &str,
    user_id: Uuid,
) -> sqlx::Result<EmailChangeState> {
    let link = match tokens::peek(conn, Purpose::UserEmailChange, token).await? {
        Peeked::Valid(link) if link.subject == user_id => link,
        Peeked::Used(link) if link.subject == user_id => return Ok(EmailChangeState::Used),
        Peeked::Expired(link) if link.subject == user_id => {
            return Ok(EmailChangeState::Expired);
        }
        _ => return Ok(EmailChangeState::Unknown),
    };
    let new_email = link.payload.as_deref().and_then(|p| Email::parse(p).ok());
    Ok(match (find(conn, user_id).await?, new_email) {
        (Some(user), Some(new_email)) if user.is_active() => {
            EmailChangeState::Valid { user, new_email }
        }
        _ => EmailChangeState::Unknown,
    })
}

/// Uses the link up and gives the account its new address; every other open link of the
/// account is cancelled, and the old address is told. `false` if the link was not
/// valid (any more) for `user_id`.
pub async fn confirm_email_change(
    conn: &mut PgConnection,
    config: &Config,
    token: &str,
    user_id: Uuid,
) -> Result<bool, UserError> {
    let EmailChangeState::Valid { user, new_email } =
        email_change_state(conn, token, user_id).await?
    else {
        return Ok(false);
    };
    if tokens::consume(conn, Purpose::UserEmailChange, token)
        .await?
        .is_none()
    {
        return Ok(false);
    }
    super::set_email(conn, user.id, &new_email, &Actor::User(user.id)).await?;
    let lang = user.language.unwrap_or(Lang::Sv);
    let notice = UserEmailChanged {
        name: user.name.clone(),
    };
    mail::enqueue(conn, &Mail::compose(config, &user.email, lang, &notice)?).await?;
    Ok(true)
}
