//! Per request: who is signed in and which language the page speaks. On the way out,
//! every bare error response becomes a page in that language.

use askama::Template;
use axum::{
    extract::{Request, State},
    http::{HeaderMap, StatusCode, header},
    middleware::Next,
    response::{Html, IntoResponse, Response},
};
use tower_sessions::Session;

use crate::{
    auth::{self, CurrentUser},
    error::ErrorPage,
    state::AppState,
    web::{Lang, Layout, access::Capabilities, csrf::CsrfCookie},
};

/// Put in the request's extensions by [`middleware`] for everything after it.
#[derive(Clone, Debug)]
pub struct RequestContext {
    pub user: Option<CurrentUser>,
    /// What the user may do; `None` when nobody is signed in.
    pub capabilities: Option<Capabilities>,
    pub lang: Lang,
    pub csrf: CsrfCookie,
}

pub const LANG_COOKIE: &str = crate::web::cookies::LANG;

pub async fn middleware(
    State(state): State<AppState>,
    session: Session,
    mut req: Request,
    next: Next,
) -> Response {
    let user = match auth::session_user(&state, &session).await {
        Ok(user) => user,
        Err(e) => return e.into_response(),
    };
    let lang = choose_language(user.as_ref(), req.headers());
    let csrf = CsrfCookie::of_request(req.headers(), &state.config);
    let capabilities = user
        .as_ref()
        .map(|u| Capabilities::of(u, &state.config.require_second_factor));
    let context = RequestContext {
        user,
        capabilities,
        lang,
        csrf,
    };
    req.extensions_mut().insert(context.clone());
    let path = req.uri().path().to_string();
    let response = next.run(req).await;
    let mut response = match error_page_of(&response) {
        Some(page) => render_error(&state, &session, &context, path, response.status(), page)
            .await
            .unwrap_or_else(|()| response.status().into_response()),
        None => response,
    };
    context.csrf.set_on(&mut response, &state.config);
    response
}

/// The user's own setting, else the language cookie, else the browser's wish, else Swedish.
fn choose_language(user: Option<&CurrentUser>, headers: &HeaderMap) -> Lang {
    let offered = Lang::offered(user.is_some());
    user.and_then(|u| u.language)
        .or_else(|| cookie(headers, LANG_COOKIE).and_then(|v| Lang::parse(&v)))
        .filter(|l| offered.contains(l))
        .or_else(|| {
            headers
                .get(header::ACCEPT_LANGUAGE)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| Lang::from_accept_language(v, offered))
        })
        .unwrap_or(Lang::Sv)
}

/// The value of one cookie of the request.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// Our own errors carry an [`ErrorPage`]; the framework's rejections (a malformed form,
/// a wrong method) arrive as plain text, and get the page of their status.
fn error_page_of(response: &Response) -> Option<ErrorPage> {
    if let Some(page) = response.extensions().get::<ErrorPage>() {
        return Some(*page);
    }
    let status = response.status();
    let is_plain = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_none_or(|v| v.as_bytes().starts_with(b"text/plain"));
    (status.as_u16() >= 400 && is_plain).then(|| ErrorPage::for_status(status))
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorTemplate {
    layout: Layout,
    status: u16,
    message: &'static str,
}

async fn render_error(
    state: &AppState,
    session: &Session,
    context: &RequestContext,
    path: String,
    status: StatusCode,
    page: ErrorPage,
) -> Result<Response, ()> {
    let layout = Layout::build(state, session, context, path)
        .await
        .map_err(|_| ())?;
    let html = ErrorTemplate {
        layout,
        status: status.as_u16(),
        message: page.message,
    }
    .render()
    .map_err(|e| tracing::error!(error = %e, "rendering the error page"))?;
    Ok((status, Html(html)).into_response())
}
