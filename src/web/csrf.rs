//! Every state-changing request carries a CSRF token: as the form field `csrf_token`
//! (the first field of an upload), or the header `X-CSRF-Token`. The token is derived
//! from a random value in a cookie of its own, keyed with the application key, so a
//! visitor gets one without a session row being written. A POST that comes without that
//! cookie is refused before its body is read.
//! The contact form may be posted from a frame on the company's site, where the browser
//! keeps our cookie back: a POST to [`ORIGIN_CHECKED`] without a valid token is taken
//! when its `Origin` header is this application or an allowed site (`CHAT_ORIGINS`).
//! Being the one place that reads every query and form, this also refuses a NUL byte in
//! them: PostgreSQL cannot store one, and it is never part of honest input.

use axum::{
    body::{Body, Bytes, to_bytes},
    extract::{Request, State},
    http::{HeaderMap, HeaderValue, Method, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use futures::StreamExt;
use subtle::ConstantTimeEq;

use crate::{
    config::Config,
    error::AppError,
    keys::Use,
    state::AppState,
    tokens,
    web::{RequestContext, context::cookie},
};

pub const FIELD: &str = "csrf_token";
const HEADER: &str = "x-csrf-token";
/// Forms are small; uploads go as multipart and are not buffered here.
const MAX_FORM_BYTES: usize = 2 * 1024 * 1024;
/// How far into an upload its first field, the token, must have ended.
const MAX_FIRST_PART_BYTES: usize = 16 * 1024;

/// The browser's CSRF cookie: its value, and whether it was made for this response.
#[derive(Clone, Debug)]
pub struct CsrfCookie {
    value: String,
    fresh: bool,
}

impl CsrfCookie {
    /// The cookie the request came with, or a new one.
    pub fn of_request(headers: &HeaderMap, config: &Config) -> Self {
        match cookie(headers, cookie_name(config)).filter(|v| tokens::looks_valid(v)) {
            Some(value) => Self {
                value,
                fresh: false,
            },
            None => Self {
                value: tokens::random_token(),
                fresh: true,
            },
        }
    }

    /// The token that forms carry.
    pub fn token(&self, config: &Config) -> String {
        URL_SAFE_NO_PAD.encode(config.keys.keyed_hash(Use::Csrf, self.value.as_bytes()))
    }

    /// Sets the cookie on the response, when it is new.
    pub fn set_on(&self, response: &mut Response, config: &Config) {
        if !self.fresh {
            return;
        }
        let secure = if config.is_https() { "; Secure" } else { "" };
        let cookie = format!(
            "{}={}; Path=/; HttpOnly; SameSite=Lax{secure}",
            cookie_name(config),
            self.value
        );
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
}

/// Over https the `__Host-` prefix keeps a sibling site from planting the cookie.
fn cookie_name(config: &Config) -> &'static str {
    if config.is_https() {
        crate::web::cookies::CSRF_HTTPS
    } else {
        crate::web::cookies::CSRF
    }
}

/// Public forms that work without our cookie, checked by their `Origin` instead.
pub const ORIGIN_CHECKED: &[&str] = &["/contact"];

/// Whether the request comes from a page of this application or of an allowed site.
fn origin_allowed(req: &Request, config: &Config) -> bool {
    ORIGIN_CHECKED.contains(&req.uri().path())
        && req
            .headers()
            .get(header::ORIGIN)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|origin| config.allows_origin(origin))
}

pub async fn middleware(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if req.uri().query().is_some_and(|q| has_nul(q.as_bytes())) {
        return AppError::BadRequest("error.bad_request").into_response();
    }
    if matches!(
        *req.method(),
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    ) || is_exempt(req.uri().path())
    {
        return next.run(req).await;
    }
    let by_origin = origin_allowed(&req, &state.config);
    let csrf = req
        .extensions()
        .get::<RequestContext>()
        .map(|c| c.csrf.clone())
        .filter(|c| !c.fresh);
    if csrf.is_none() && !by_origin {
        return AppError::Forbidden("error.csrf").into_response();
    }
    let (req, presented) = match presented_token(req).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let valid = csrf.is_some_and(|csrf| {
        let expected = csrf.token(&state.config);
        presented.is_some_and(|p| bool::from(expected.as_bytes().ct_eq(p.as_bytes())))
    });
    if !valid && !by_origin {
        return AppError::Forbidden("error.csrf").into_response();
    }
    next.run(req).await
}

/// Posts that must work without a cookie: a mail program's one-click unsubscribe
/// (RFC 8058) sends none. The link's own secret token authorises it, which a forged
/// cross-site request cannot know.
fn is_exempt(path: &str) -> bool {
    path.strip_prefix("/unsubscribe/")
        .is_some_and(tokens::looks_valid)
}

/// Finds the token without consuming the request: what was read of the body is put back.
async fn presented_token(req: Request) -> Result<(Request, Option<String>), Response> {
    if let Some(value) = req.headers().get(HEADER).and_then(|v| v.to_str().ok()) {
        let value = value.to_string();
        return Ok((req, Some(value)));
    }
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    if content_type.starts_with("application/x-www-form-urlencoded") {
        let (parts, body) = req.into_parts();
        let bytes = to_bytes(body, MAX_FORM_BYTES)
            .await
            .map_err(|_| AppError::BadRequest("error.too_large").into_response())?;
        if has_nul(&bytes) {
            return Err(AppError::BadRequest("error.bad_request").into_response());
        }
        let found = field(&bytes);
        return Ok((Request::from_parts(parts, Body::from(bytes)), found));
    }
    if content_type.starts_with("multipart/form-data")
        && let Some(boundary) = boundary(&content_type)
    {
        return first_part_token(req, &boundary).await;
    }
    Ok((req, None))
}

/// Reads an upload only as far as its first field, which must be the token; the rest
/// streams on to the handler untouched.
async fn first_part_token(
    req: Request,
    boundary: &str,
) -> Result<(Request, Option<String>), Response> {
    let (parts, body) = req.into_parts();
    let mut stream = body.into_data_stream();
    let mut head = Vec::new();
    let mut found = None;
    while head.len() < MAX_FIRST_PART_BYTES {
        match stream.next().await {
            Some(Ok(chunk)) => head.extend_from_slice(&chunk),
            Some(Err(_)) => return Err(AppError::BadRequest("error.bad_request").into_response()),
            None => {
                found = first_field(&head, boundary);
                break;
            }
        }
        if let Some(token) = first_field(&head, boundary) {
            found = Some(token);
            break;
        }
    }
    let rest =
        futures::stream::once(async move { Ok::<_, axum::Error>(Bytes::from(head)) }).chain(stream);
    Ok((Request::from_parts(parts, Body::from_stream(rest)), found))
}

fn boundary(content_type: &str) -> Option<String> {
    content_type
        .split(';')
        .filter_map(|p| p.trim().strip_prefix("boundary="))
        .map(|b| b.trim_matches('"').to_string())
        .find(|b| !b.is_empty())
}

/// The value of the first part if it is the `csrf_token` field and has ended.
fn first_field(body: &[u8], boundary: &str) -> Option<String> {
    let find =
        |haystack: &[u8], needle: &[u8]| haystack.windows(needle.len()).position(|w| w == needle);
    let rest = body.strip_prefix(format!("--{boundary}\r\n").as_bytes())?;
    let headers_end = find(rest, b"\r\n\r\n")?;
    let headers = std::str::from_utf8(&rest[..headers_end]).ok()?;
    let names_token = headers.lines().any(|line| {
        line.to_ascii_lowercase()
            .starts_with("content-disposition:")
            && line.contains(&format!("name=\"{FIELD}\""))
    });
    if !names_token {
        return None;
    }
    let rest = &rest[headers_end + 4..];
    let value_end = find(rest, format!("\r\n--{boundary}").as_bytes())?;
    String::from_utf8(rest[..value_end].to_vec()).ok()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_is_read_from_the_first_part_of_an_upload_only() {
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\nabc\r\n--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.csv\"\r\n\r\n\xff\xfe\r\n--XyZ--\r\n";
        assert_eq!(first_field(body, "XyZ").as_deref(), Some("abc"));
        let later = b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nx\r\n--XyZ\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\nabc\r\n--XyZ--\r\n";
        assert_eq!(first_field(later, "XyZ"), None);
        assert_eq!(
            boundary("multipart/form-data; boundary=\"a b\"").as_deref(),
            Some("a b")
        );
    }
}
