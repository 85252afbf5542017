//! *My account → Second factor*: enrolling, the recovery codes shown once, removing.

use askama::Template;
use askama_web::WebTemplate;
use axum::{
    Form,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use tower_sessions::Session;

use super::{
    CurrentUser, restamp,
    second_factor::{self, Enrolment},
};
use crate::{
    audit::Actor,
    error::{AppError, AppResult},
    state::AppState,
    users::{self, User},
    web::{Layout, day, flash, see_other},
};

#[derive(Template, WebTemplate)]
#[template(path = "auth/second_factor.html")]
pub struct SecondFactorPage {
    layout: Layout,
    /// Not enrolled yet: the secret to scan or type.
    enrolment: Option<Enrolment>,
    /// Enrolled: since which day.
    since: Option<String>,
    /// Just confirmed: the recovery codes, shown this once.
    recovery_codes: Vec<String>,
    error: Option<&'static str>,
}

async fn stored(state: &AppState, user: &CurrentUser) -> AppResult<User> {
    let mut conn = state.pool.acquire().await?;
    users::find(&mut conn, user.id)
        .await?
        .ok_or(AppError::NotFound)
}

/// The page for the account as it stands: enrolled, or enrolling.
async fn page(
    state: &AppState,
    user: &User,
    layout: Layout,
    error: Option<&'static str>,
) -> AppResult<SecondFactorPage> {
    let enrolment = match user.second_factor_since {
        Some(_) => None,
        None => {
            let mut conn = state.pool.acquire().await?;
            second_factor::begin(&mut conn, &state.config, user.id, &user.email).await?
        }
    };
    Ok(SecondFactorPage {
        layout,
        enrolment,
        since: user.second_factor_since.as_ref().map(day),
        recovery_codes: Vec::new(),
        error,
    })
}

pub async fn show(
    State(state): State<AppState>,
    user: CurrentUser,
    layout: Layout,
) -> AppResult<SecondFactorPage> {
    let user = stored(&state, &user).await?;
    page(&state, &user, layout, None).await
}

#[derive(Deserialize)]
pub struct ConfirmForm {
    #[serde(default)]
    code: String,
}

/// The first code confirms the enrolment; the recovery codes are shown this once.
pub async fn confirm(
    State(state): State<AppState>,
    session: Session,
    user: CurrentUser,
    layout: Layout,
    Form(form): Form<ConfirmForm>,
) -> AppResult<Response> {
    let mut tx = state.pool.begin().await?;
    let codes =
        second_factor::confirm(&mut tx, &state.config, user.id, &user.email, &form.code).await?;
    let Some(recovery_codes) = codes else {
        drop(tx);
        let user = stored(&state, &user).await?;
        let page = page(&state, &user, layout, Some("second_factor.wrong_code")).await?;
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
    };
    let enrolled = users::find(&mut tx, user.id)
        .await?
        .ok_or(AppError::NotFound)?;
    tx.commit().await?;
    restamp(&session, &enrolled, true).await?;
    Ok(SecondFactorPage {
        layout,
        enrolment: None,
        since: enrolled.second_factor_since.as_ref().map(day),
        recovery_codes,
        error: None,
    }
    .into_response())
}

#[derive(Deserialize)]
pub struct RemoveForm {
    #[serde(default)]
    password: String,
    #[serde(default)]
    code: String,
}

/// Removing needs the password and a code (or a recovery code).
pub async fn remove(
    State(state): State<AppState>,
    session: Session,
    user: CurrentUser,
    layout: Layout,
    Form(form): Form<RemoveForm>,
) -> AppResult<Response> {
    let stored = stored(&state, &user).await?;
    if stored.second_factor_since.is_none() {
        return Ok(see_other(super::ENROLMENT).into_response());
    }
    let password_ok = state
        .passwords
        .verify(stored.password_hash.as_deref(), &form.password)
        .await;
    let mut tx = state.pool.begin().await?;
    let code_ok = password_ok
        && second_factor::verify(&mut tx, &state.config, user.id, &user.email, &form.code).await?;
    if !code_ok {
        drop(tx);
        let page = page(
            &state,
            &stored,
            layout,
            Some("second_factor.remove.refused"),
        )
        .await?;
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
    }
    second_factor::remove(&mut tx, user.id, &Actor::User(user.id)).await?;
    let removed = users::find(&mut tx, user.id)
        .await?
        .ok_or(AppError::NotFound)?;
    tx.commit().await?;
    restamp(&session, &removed, false).await?;
    flash::success(&session, "second_factor.removed").await?;
    Ok(see_other("/account").into_response())
}
