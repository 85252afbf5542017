//! The invitation: a one-time link, mailed to a new user, to set their password.

use sqlx::PgConnection;
use uuid::Uuid;

use super::{User, find};
use crate::{
    audit::{self, Actor, Event},
    config::Config,
    mail::{self, Mail, kinds::Invitation},
    tokens::{self, Peeked, Purpose},
    web::Lang,
};

/// Replaces any open invitation of the user with a new one and queues its mail, in the
/// caller's transaction.
pub async fn send_invitation(
    conn: &mut PgConnection,
    config: &Config,
    user: &User,
    lang: Lang,
    actor: &Actor,
) -> anyhow::Result<()> {
    tokens::void(conn, user.id, &[Purpose::Invitation]).await?;
    let expires_at = time::OffsetDateTime::now_utc() + config.invitation_validity;
    let token = tokens::issue(conn, Purpose::Invitation, user.id, None, expires_at).await?;
    let lang = user.language.unwrap_or(lang);
    let invitation = Invitation {
        name: user.name.clone(),
        link: config.absolute_url(&format!("/invite/{token}")),
        valid_days: config.invitation_validity.as_secs() / 86_400,
    };
    mail::enqueue(
        conn,
        &Mail::compose(config, &user.email, lang, &invitation)?,
    )
    .await?;
    audit::record(
        conn,
        Event::new(actor, "user.invite", "user", Some(user.id.to_string())),
    )
    .await?;
    Ok(())
}

pub enum InvitationState {
    Valid(User),
    Used,
    Expired,
    Unknown,
}

/// What a link's token stands for; reading it changes nothing.
pub async fn invitation_state(
    conn: &mut PgConnection,
    token: &str,
) -> sqlx::Result<InvitationState> {
    let link = match tokens::peek(conn, Purpose::Invitation, token).await? {
        Peeked::Valid(link) => link,
        Peeked::Used(_) => return Ok(InvitationState::Used),
        Peeked::Expired(_) => return Ok(InvitationState::Expired),
        Peeked::Unknown => return Ok(InvitationState::Unknown),
    };
    Ok(match find(conn, link.subject).await? {
        Some(user) if user.is_active() => InvitationState::Valid(user),
        _ => InvitationState::Unknown,
    })
}

/// Uses the invitation up and sets the password, once: a second use finds it used.
pub async fn redeem_invitation(
    conn: &mut PgConnection,
    token: &str,
    password_hash: &str,
) -> sqlx::Result<Option<Uuid>> {
    let Some(link) = tokens::consume(conn, Purpose::Invitation, token).await? else {
        return Ok(None);
    };
    super::set_password_hash(
        conn,
        link.subject,
        password_hash,
        &Actor::User(link.subject),
    )
    .await?;
    Ok(Some(link.subject))
}
