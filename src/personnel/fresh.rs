//! R-PERS-3: after `PERSONNEL_IDLE_MINUTES` without a personnel request, the CEO enters a
//! second-factor code again before the register opens, then goes back where they were.

use std::net::SocketAddr;

use axum::{
    Form,
    extract::{ConnectInfo, FromRequestParts, Query, State},
    http::{HeaderMap, Method, request::Parts},
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use time::OffsetDateTime;
use tower_sessions::Session;

use crate::{
    auth::{self, CodeForm, CodePage, CurrentUser, check_code, client_address},
    error::{AppError, AppResult},
    state::AppState,
    web::{Layout, local_path, see_other},
};

/// When a personnel page was last opened with a code fresh enough (milliseconds).
const USED_AT: &str = "personnel_used_at_ms";
pub const CODE_PAGE: &str = "/personnel/code";

fn now_ms() -> i64 {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// Taken by every personnel page but the code page: the request goes on only while the
/// last code or personnel request is within the idle time, and counts as one.
pub struct Fresh;

impl FromRequestParts<AppState> for Fresh {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let session = Session::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let last = async {
            let used = session.get::<i64>(USED_AT).await?;
            let code = auth::code_entered_at(&session).await?;
            Ok::<_, AppError>(used.max(code))
        }
        .await
        .map_err(IntoResponse::into_response)?;
        let now = now_ms();
        let idle = state.config.personnel_idle.as_millis();
        if last.is_some_and(|at| now >= at && ((now - at) as u128) < idle) {
            session
                .insert(USED_AT, now)
                .await
                .map_err(|e| AppError::from(e).into_response())?;
            return Ok(Fresh);
        }
        // A form's values are not kept: after a POST the CEO is sent back to the register.
        let back = match parts.method {
            Method::GET => parts
                .uri
                .path_and_query()
                .map_or("/personnel", |p| p.as_str()),
            _ => "/personnel",
        };
        Err(see_other(&code_action(back)).into_response())
    }
}

fn code_action(next: &str) -> String {
    let query = serde_urlencoded::to_string([("next", next)]).unwrap_or_default();
    format!("{CODE_PAGE}?{query}")
}

#[derive(Deserialize)]
pub struct NextQuery {
    #[serde(default)]
    next: String,
}

impl NextQuery {
    /// Where to go once the code is right: a personnel page, or the register.
    fn target(&self) -> &str {
        local_path(Some(&self.next))
            .filter(|p| p.starts_with("/personnel"))
            .unwrap_or("/personnel")
    }
}

pub async fn code_form(layout: Layout, Query(q): Query<NextQuery>) -> Response {
    CodePage::respond(layout, code_action(q.target()), false)
}

/// The login's code check and throttle; a right code opens the register for another
/// idle period.
#[allow(clippy::too_many_arguments)] // each extractor is an argument
pub async fn code(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    session: Session,
    user: CurrentUser,
    layout: Layout,
    Query(q): Query<NextQuery>,
    Form(form): Form<CodeForm>,
) -> AppResult<Response> {
    let address = client_address(peer, &headers, state.config.trust_proxy);
    match check_code(&state, address, user.id, &user.email, &form.code).await? {
        Some(tx) => {
            tx.commit().await?;
            auth::code_entered(&session).await?;
            Ok(see_other(q.target()).into_response())
        }
        None => Ok(CodePage::respond(layout, code_action(q.target()), true)),
    }
}
