//! One error type for handlers. A 4xx or 5xx leaves here as a bare response marked with
//! [`ErrorPage`]; the request-context middleware turns it into a page in the user's
//! language, with the navigation the user is allowed to see.

use axum::{
    http::StatusCode,
    response::{IntoResponse, Response},
};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("not found")]
    NotFound,
    /// Not found, with a message of its own (an unknown link).
    #[error("not found")]
    Missing(&'static str),
    /// A link that existed but has expired or was used up.
    #[error("gone")]
    Gone(&'static str),
    #[error("forbidden")]
    Forbidden(&'static str),
    #[error("bad request")]
    BadRequest(&'static str),
    #[error("too many requests")]
    TooManyRequests(&'static str),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<sqlx::Error> for AppError {
    fn from(e: sqlx::Error) -> Self {
        AppError::Unexpected(anyhow::Error::new(e).context("database"))
    }
}

impl From<askama::Error> for AppError {
    fn from(e: askama::Error) -> Self {
        AppError::Unexpected(anyhow::Error::new(e).context("rendering a template"))
    }
}

impl From<tower_sessions::session::Error> for AppError {
    fn from(e: tower_sessions::session::Error) -> Self {
        AppError::Unexpected(anyhow::Error::new(e).context("session store"))
    }
}

/// Marks a response whose body the context middleware renders as an error page.
#[derive(Clone, Copy, Debug)]
pub struct ErrorPage {
    /// The translation key of the message shown.
    pub message: &'static str,
}

impl ErrorPage {
    /// The default message for a status, for errors that carry none of their own.
    pub fn for_status(status: StatusCode) -> Self {
        let message = match status.as_u16() {
            400 => "error.bad_request",
            401 | 403 => "error.forbidden",
            404 | 405 => "error.not_found",
            410 => "error.gone",
            413 => "error.too_large",
            415 | 422 => "error.unprocessable",
            429 => "error.too_many",
            _ => "error.unexpected",
        };
        Self { message }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, message) = match self {
            AppError::NotFound => (StatusCode::NOT_FOUND, "error.not_found"),
            AppError::Missing(m) => (StatusCode::NOT_FOUND, m),
            AppError::Gone(m) => (StatusCode::GONE, m),
            AppError::Forbidden(m) => (StatusCode::FORBIDDEN, m),
            AppError::BadRequest(m) => (StatusCode::BAD_REQUEST, m),
            AppError::TooManyRequests(m) => (StatusCode::TOO_MANY_REQUESTS, m),
            AppError::Unexpected(e) => {
                tracing::error!(error = format!("{e:#}"), "unexpected error");
                (StatusCode::INTERNAL_SERVER_ERROR, "error.unexpected")
            }
        };
        let mut response = status.into_response();
        response.extensions_mut().insert(ErrorPage { message });
        response
    }
}

pub type AppResult<T> = Result<T, AppError>;
