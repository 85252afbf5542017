//! Every state-changing request carries the session's CSRF token: as the form field
//! `csrf_token`, the header `X-CSRF-Token`, or (for file uploads) the query parameter.
//! Being the one place that reads every query and form, this also refuses a NUL byte in
//! them: PostgreSQL cannot store one, and it is never part of honest input.

use axum::{
    body::{Body, to_bytes},
    extract::Request,
    http::{Method, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use subtle::ConstantTimeEq;
use tower_sessions::Session;

use crate::{error::AppError, tokens};

const SESSION_KEY: &str = "csrf";
pub const FIELD: &str = "csrf_token";
const HEADER: &str = "x-csrf-token";
/// Forms are small; uploads go as multipart and are not buffered here.
const MAX_FORM_BYTES: usize = 2 * 1024 * 1024;

/// The session's token, made on first use.
pub async fn token(session: &Session) -> Result<String, AppError> {
    if let Some(token) = session.get::<String>(SESSION_KEY).await? {
        return Ok(token);
    }
    let token = tokens::random_token();
    session.insert(SESSION_KEY, &token).await?;
    Ok(token)
}

pub async fn middleware(session: Session, req: Request, next: Next) -> Response {
    if req.uri().query().is_some_and(|q| has_nul(q.as_bytes())) {
        return AppError::BadRequest("error.bad_request").into_response();
    }
    if matches!(
        *req.method(),
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    ) {
        return next.run(req).await;
    }
    let expected = match session.get::<String>(SESSION_KEY).await {
        Ok(token) => token,
        Err(e) => return AppError::from(e).into_response(),
    };
    let (req, presented) = match presented_token(req).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let valid = match (expected, presented) {
        (Some(expected), Some(presented)) => {
            bool::from(expected.as_bytes().ct_eq(presented.as_bytes()))
        }
        _ => false,
    };
    if !valid {
        return AppError::Forbidden("error.csrf").into_response();
    }
    next.run(req).await
}

/// Finds the token without consuming the request: a urlencoded body is read and put back.
async fn presented_token(req: Request) -> Result<(Request, Option<String>), Response> {
    if let Some(value) = req.headers().get(HEADER).and_then(|v| v.to_str().ok()) {
        let value = value.to_string();
        return Ok((req, Some(value)));
    }
    let from_query = req.uri().query().and_then(|q| field(q.as_bytes()));
    let is_form = req.headers().get(header::CONTENT_TYPE).is_some_and(|v| {
        v.as_bytes()
            .starts_with(b"application/x-www-form-urlencoded")
    });
    if !is_form {
        return Ok((req, from_query));
    }
    let (parts, body) = req.into_parts();
    let bytes = to_bytes(body, MAX_FORM_BYTES)
        .await
        .map_err(|_| AppError::BadRequest("error.too_large").into_response())?;
    if has_nul(&bytes) {
        return Err(AppError::BadRequest("error.bad_request").into_response());
    }
    let found = field(&bytes).or(from_query);
    Ok((Request::from_parts(parts, Body::from(bytes)), found))
}

/// A NUL byte, raw or percent-encoded, in urlencoded text.
fn has_nul(urlencoded: &[u8]) -> bool {
    urlencoded.contains(&0) || urlencoded.windows(3).any(|w| w == b"%00")
}

fn field(urlencoded: &[u8]) -> Option<String> {
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(urlencoded)
        .ok()?
        .into_iter()
        .find(|(k, _)| k == FIELD)
        .map(|(_, v)| v)
}
