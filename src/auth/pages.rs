use std::net::{IpAddr, SocketAddr};

use askama::Template;
use askama_web::WebTemplate;
use axum::{
    Form,
    extract::{ConnectInfo, Query, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use tower_sessions::Session;
use uuid::Uuid;

use super::{AUTH_STAMP, CurrentUser, auth_stamp, begin_session, pending, second_factor, throttle};
use crate::{
    audit::{self, Actor, Event},
    domain::NewPassword,
    error::{AppError, AppResult},
    state::AppState,
    users,
    web::{Lang, Layout, context::LANG_COOKIE, flash, local_path, see_other},
};

/// The login throttle refused the attempt.
fn throttled() -> AppError {
    crate::metrics::login_refused();
    AppError::TooManyRequests("login.throttled")
}

/// A failed attempt at either step, password or code: one audit row, and one more for
/// the whole lock-out when this attempt begins it (the refused attempts that follow
/// write nothing).
async fn record_failure(
    tx: &mut sqlx::PgConnection,
    user_id: Option<String>,
    attempt: &throttle::Attempt,
    config: &crate::config::Config,
) -> sqlx::Result<()> {
    crate::metrics::login_refused();
    audit::record(
        &mut *tx,
        Event::new(&Actor::Anonymous, "login.failure", "user", user_id.clone()),
    )
    .await?;
    if attempt.last_before_lockout {
        crate::metrics::lockout();
        audit::record(
            tx,
            Event::new(&Actor::Anonymous, "login.lockout", "user", user_id)
                .with_count(config.login_max_failures),
        )
        .await?;
    }
    Ok(())
}

#[derive(Template, WebTemplate)]
#[template(path = "auth/login.html")]
pub struct LoginPage {
    layout: Layout,
    email: String,
    next: String,
    failed: bool,
}

#[derive(Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

pub async fn login_form(layout: Layout, Query(q): Query<NextQuery>) -> Response {
    if layout.user.is_some() {
        return see_other(local_path(q.next.as_deref()).unwrap_or("/")).into_response();
    }
    LoginPage {
        layout,
        email: String::new(),
        next: q.next.unwrap_or_default(),
        failed: false,
    }
    .into_response()
}

#[derive(Deserialize)]
pub struct LoginForm {
    email: String,
    password: String,
    #[serde(default)]
    next: String,
}

/// The client's address: the connection's, or behind a trusted proxy the last address
/// the proxy added to X-Forwarded-For (earlier entries are the client's own claim).
pub fn client_address(peer: SocketAddr, headers: &HeaderMap, trust_proxy: bool) -> IpAddr {
    let forwarded = trust_proxy
        .then(|| headers.get_all("x-forwarded-for").iter().next_back())
        .flatten()
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.rsplit(',').next())
        .and_then(|ip| ip.trim().parse().ok());
    forwarded.unwrap_or(peer.ip())
}

pub async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    session: Session,
    layout: Layout,
    Form(form): Form<LoginForm>,
) -> AppResult<Response> {
    let address = client_address(peer, &headers, state.config.trust_proxy);
    let keys = throttle::ThrottleKeys::new(&state.config.keys, &form.email, address);
    // Short uses of the pool only: none is held while the password is checked.
    let mut conn = state.pool.acquire().await?;
    let Some(attempt) = throttle::attempt(&mut conn, &keys, &state.config).await? else {
        return Err(throttled());
    };
    let user = users::find_by_email(&mut conn, &form.email).await?;
    drop(conn);
    let hash = user.as_ref().and_then(|u| u.password_hash.as_deref());
    let verified = state.passwords.verify(hash, &form.password).await;
    if let Some(user) = &user
        && verified
        && user.is_active()
        && user.second_factor_since.is_some()
    {
        // Halfway: the attempt stays counted until the code is right.
        pending::begin(&session, user, &form.next).await?;
        return Ok(see_other("/login/code").into_response());
    }
    let mut tx = state.pool.begin().await?;
    match user {
        Some(user) if verified && user.is_active() => {
            throttle::succeeded(&mut tx, &keys).await?;
            signed_in(tx, &session, &user, false).await?;
            Ok(see_other(local_path(Some(&form.next)).unwrap_or("/")).into_response())
        }
        user => {
            let user_id = user.map(|u| u.id.to_string());
            record_failure(&mut tx, user_id, &attempt, &state.config).await?;
            tx.commit().await?;
            let page = LoginPage {
                layout,
                email: form.email,
                next: form.next,
                failed: true,
            };
            Ok((StatusCode::UNAUTHORIZED, page).into_response())
        }
    }
}

/// The last step of a login: recorded, and the session begun.
async fn signed_in(
    mut tx: sqlx::Transaction<'_, sqlx::Postgres>,
    session: &Session,
    user: &users::User,
    second_factor: bool,
) -> AppResult<()> {
    users::touch_last_login(&mut tx, user.id).await?;
    audit::record(
        &mut tx,
        Event::new(&Actor::User(user.id), "login.success", "session", None),
    )
    .await?;
    tx.commit().await?;
    begin_session(session, user, second_factor).await
}

#[derive(Template, WebTemplate)]
#[template(path = "auth/code.html")]
pub struct CodePage {
    layout: Layout,
    /// Where the code is posted.
    action: String,
    failed: bool,
}

impl CodePage {
    /// The page asking for a code, posted to `action`; `failed`: a wrong code was given,
    /// answered 401.
    pub fn respond(layout: Layout, action: String, failed: bool) -> Response {
        let status = if failed {
            StatusCode::UNAUTHORIZED
        } else {
            StatusCode::OK
        };
        (
            status,
            Self {
                layout,
                action,
                failed,
            },
        )
            .into_response()
    }
}

/// The second step of a login, for an account with a second factor.
pub async fn code_form(
    State(state): State<AppState>,
    session: Session,
    layout: Layout,
) -> AppResult<Response> {
    if pending::user(&state, &session).await?.is_none() {
        return Ok(see_other("/login").into_response());
    }
    Ok(CodePage::respond(layout, "/login/code".into(), false))
}

#[derive(Deserialize)]
pub struct CodeForm {
    #[serde(default)]
    pub code: String,
}

/// Checks a code typed for `user` under the login's throttle: the transaction to commit
/// with what the code opens (the throttle cleared in it), or `None` when the code is
/// wrong (the failure recorded and committed).
pub(crate) async fn check_code(
    state: &AppState,
    address: IpAddr,
    user_id: Uuid,
    email: &str,
    code: &str,
) -> AppResult<Option<sqlx::Transaction<'static, sqlx::Postgres>>> {
    let keys = throttle::ThrottleKeys::new(&state.config.keys, email, address);
    let mut conn = state.pool.acquire().await?;
    let Some(attempt) = throttle::attempt(&mut conn, &keys, &state.config).await? else {
        return Err(throttled());
    };
    drop(conn);
    let mut tx = state.pool.begin().await?;
    if second_factor::verify(&mut tx, &state.config, user_id, email, code).await? {
        throttle::succeeded(&mut tx, &keys).await?;
        return Ok(Some(tx));
    }
    record_failure(&mut tx, Some(user_id.to_string()), &attempt, &state.config).await?;
    tx.commit().await?;
    Ok(None)
}

/// A code from the app, or a recovery code. Wrong codes count towards the same throttle
/// as wrong passwords.
pub async fn login_code(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    session: Session,
    layout: Layout,
    Form(form): Form<CodeForm>,
) -> AppResult<Response> {
    let Some((user, next)) = pending::user(&state, &session).await? else {
        return Ok(see_other("/login").into_response());
    };
    let address = client_address(peer, &headers, state.config.trust_proxy);
    match check_code(&state, address, user.id, &user.email, &form.code).await? {
        Some(tx) => {
            pending::end(&session).await?;
            signed_in(tx, &session, &user, true).await?;
            Ok(see_other(local_path(Some(&next)).unwrap_or("/")).into_response())
        }
        None => Ok(CodePage::respond(layout, "/login/code".into(), true)),
    }
}

pub async fn logout(
    State(state): State<AppState>,
    session: Session,
    user: CurrentUser,
) -> AppResult<Response> {
    let mut tx = state.pool.begin().await?;
    audit::record(
        &mut tx,
        Event::new(&Actor::User(user.id), "logout", "session", None),
    )
    .await?;
    tx.commit().await?;
    session.flush().await?;
    Ok(see_other("/login").into_response())
}

#[derive(Template, WebTemplate)]
#[template(path = "auth/account.html")]
pub struct AccountPage {
    layout: Layout,
    error: Option<&'static str>,
}

pub async fn account(layout: Layout) -> AccountPage {
    AccountPage {
        layout,
        error: None,
    }
}

#[derive(Deserialize)]
pub struct PasswordForm {
    current: String,
    new: String,
    repeat: String,
}

pub async fn change_password(
    State(state): State<AppState>,
    session: Session,
    user: CurrentUser,
    layout: Layout,
    Form(form): Form<PasswordForm>,
) -> AppResult<Response> {
    let mut conn = state.pool.acquire().await?;
    let stored = users::find(&mut conn, user.id)
        .await?
        .ok_or(AppError::NotFound)?;
    drop(conn);
    let refuse = |error| {
        Ok((
            StatusCode::UNPROCESSABLE_ENTITY,
            AccountPage {
                layout,
                error: Some(error),
            },
        )
            .into_response())
    };
    if !state
        .passwords
        .verify(stored.password_hash.as_deref(), &form.current)
        .await
    {
        return refuse("account.password.wrong_current");
    }
    let new = match NewPassword::parse(&form.new) {
        Ok(p) => p,
        Err(reason) => return refuse(reason),
    };
    if form.new != form.repeat {
        return refuse("field.password.mismatch");
    }
    let hash = state.passwords.hash(new.expose()).await?;
    let mut tx = state.pool.begin().await?;
    users::set_password_hash(&mut tx, user.id, &hash, &Actor::User(user.id)).await?;
    tx.commit().await?;
    let updated = users::User {
        password_hash: Some(hash),
        ..stored
    };
    session.insert(AUTH_STAMP, auth_stamp(&updated)).await?;
    flash::success(&session, "account.password.changed").await?;
    Ok(see_other("/account").into_response())
}

#[derive(Deserialize)]
pub struct LanguageForm {
    lang: String,
    #[serde(default)]
    back: String,
}

/// Remembers the choice in a cookie, and for a signed-in user in their account.
pub async fn switch_language(
    State(state): State<AppState>,
    layout: Layout,
    Form(form): Form<LanguageForm>,
) -> AppResult<Response> {
    let lang = Lang::parse(&form.lang)
        .filter(|l| Lang::offered(layout.user.is_some()).contains(l))
        .ok_or(AppError::BadRequest("error.bad_request"))?;
    if let Some(user) = &layout.user {
        let mut tx = state.pool.begin().await?;
        users::set_language(&mut tx, user.id, lang).await?;
        tx.commit().await?;
    }
    let secure = if state.config.is_https() {
        "; Secure"
    } else {
        ""
    };
    let cookie = format!("{LANG_COOKIE}={lang}; Path=/; Max-Age=31536000; SameSite=Lax{secure}");
    let back = local_path(Some(&form.back)).unwrap_or("/");
    Ok(([(header::SET_COOKIE, cookie)], see_other(back)).into_response())
}
