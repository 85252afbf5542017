//! The invitation: a one-time link, mailed to a new user, to set their password.

use askama::Template;
use sqlx::PgConnection;
use uuid::Uuid;

use super::{User, find};
use crate::{
    audit::{self, Actor, Event},
    config::Config,
    mail::{self, Mail, MailBody},
    tokens,
    web::{Lang, Tr},
};

pub struct InvitationMail {
    t: Tr,
    name: String,
    link: String,
    company: String,
    valid_days: u64,
}

#[derive(Template)]
#[template(path = "email/invitation.txt")]
struct InvitationText<'a> {
    m: &'a InvitationMail,
}

#[derive(Template)]
#[template(path = "email/invitation.html")]
struct InvitationHtml<'a> {
    m: &'a InvitationMail,
}

impl MailBody for InvitationMail {
    fn kind(&self) -> &'static str {
        "invitation"
    }

    fn subject(&self) -> String {
        self.t
            .with("mail.invitation.subject", "company", &self.company)
    }
    fn text(&self) -> askama::Result<String> {
        InvitationText { m: self }.render()
    }
    fn html(&self) -> askama::Result<String> {
        InvitationHtml { m: self }.render()
    }
}

/// Replaces any open invitation of the user with a new one and queues its mail, in the
/// caller's transaction.
pub async fn send_invitation(
    conn: &mut PgConnection,
    config: &Config,
    user: &User,
    lang: Lang,
    actor: &Actor,
) -> anyhow::Result<()> {
    sqlx::query!(
        "DELETE FROM user_tokens WHERE user_id = $1 AND purpose = 'invitation'",
        user.id
    )
    .execute(&mut *conn)
    .await?;
    let token = tokens::random_token();
    let expires_at = time::OffsetDateTime::now_utc() + config.invitation_validity;
    sqlx::query!(
        "INSERT INTO user_tokens (token_hash, user_id, purpose, expires_at) VALUES ($1, $2, 'invitation', $3)",
        tokens::hash(&token),
        user.id,
        expires_at,
    )
    .execute(&mut *conn)
    .await?;
    let lang = user.language.unwrap_or(lang);
    let body = InvitationMail {
        t: Tr(lang),
        name: user.name.clone(),
        link: config.absolute_url(&format!("/invite/{token}")),
        company: config.company_name.clone(),
        valid_days: config.invitation_validity.as_secs() / 86_400,
    };
    mail::enqueue(conn, &Mail::compose(&user.email, lang, &body)?).await?;
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
    if !tokens::looks_valid(token) {
        return Ok(InvitationState::Unknown);
    }
    let row = sqlx::query!(
        "SELECT user_id, used_at IS NOT NULL AS \"used!\", expires_at < now() AS \"expired!\"
         FROM user_tokens WHERE token_hash = $1 AND purpose = 'invitation'",
        tokens::hash(token)
    )
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else {
        return Ok(InvitationState::Unknown);
    };
    if row.used {
        return Ok(InvitationState::Used);
    }
    if row.expired {
        return Ok(InvitationState::Expired);
    }
    Ok(match find(conn, row.user_id).await? {
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
    let user_id = sqlx::query_scalar!(
        "UPDATE user_tokens SET used_at = now()
         WHERE token_hash = $1 AND purpose = 'invitation' AND used_at IS NULL AND expires_at >= now()
         RETURNING user_id",
        tokens::hash(token)
    )
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(user_id) = user_id {
        super::set_password_hash(conn, user_id, password_hash, &Actor::User(user_id)).await?;
    }
    Ok(user_id)
}
