//! The public form (a page of its own, and a variant for a frame on the company's site)
//! and the inbox.

use std::net::SocketAddr;

use askama::Template;
use askama_web::WebTemplate;
use axum::{
    Form,
    extract::{ConnectInfo, Path, Query, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use time::OffsetDateTime;
use tower_sessions::Session;
use uuid::Uuid;

use super::messages::{self, Message, NewMessage, Source};
use crate::{
    auth::{self, CurrentUser},
    customers,
    error::{AppError, AppResult},
    state::AppState,
    web::{Lang, Layout, access::Capability, flash, form::Errors, see_other},
};

/// Messages on one page of the inbox.
const PAGE: i64 = 50;

/// The form as typed.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct ContactForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    company: String,
    #[serde(default)]
    phone: String,
    #[serde(default)]
    message: String,
    /// Hidden from people; a robot that fills every field fills it.
    #[serde(default)]
    website: String,
    /// `1`: the form is in a frame on the company's site.
    #[serde(default)]
    embed: String,
    /// The language of the framed form.
    #[serde(default)]
    lang: String,
}

impl ContactForm {
    /// The one-line fields: name, label, input type, required, value.
    fn inputs(&self) -> [(&'static str, &'static str, &'static str, bool, &str); 4] {
        [
            ("email", "contact.email", "email", true, &self.email),
            ("name", "contact.name", "text", false, &self.name),
            ("company", "contact.company", "text", false, &self.company),
            ("phone", "contact.phone", "tel", false, &self.phone),
        ]
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "contact/page.html")]
pub struct ContactPage {
    layout: Layout,
    form: ContactForm,
    errors: Errors,
    sent: bool,
    limited: bool,
    max: usize,
}

#[derive(Template, WebTemplate)]
#[template(path = "contact/embed.html")]
pub struct EmbedPage {
    layout: Layout,
    form: ContactForm,
    errors: Errors,
    sent: bool,
    limited: bool,
    max: usize,
}

#[derive(Debug, Default, Deserialize)]
pub struct PageParams {
    #[serde(default)]
    lang: String,
    #[serde(default)]
    embed: String,
}

/// The language asked for by a framed form, else the visitor's.
fn public_layout(layout: Layout, lang: &str) -> Layout {
    match Lang::parse(lang).filter(|l| Lang::PUBLIC.contains(l)) {
        Some(lang) => layout.speaking(lang),
        None => layout,
    }
}

/// Renders the form, framed or not, with its status.
fn render(
    state: &AppState,
    layout: Layout,
    form: ContactForm,
    errors: Errors,
    status: StatusCode,
    sent: bool,
    limited: bool,
) -> AppResult<Response> {
    let max = messages::MAX_MESSAGE;
    if form.embed == "1" {
        let mut form = form;
        form.lang = layout.lang().code().into();
        let page = EmbedPage {
            layout,
            form,
            errors,
            sent,
            limited,
            max,
        };
        let mut response = (status, page.render()?).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        if let Ok(csp) = HeaderValue::from_str(&framed_csp(state)) {
            response
                .headers_mut()
                .insert(header::CONTENT_SECURITY_POLICY, csp);
        }
        return Ok(response);
    }
    let page = ContactPage {
        layout,
        form,
        errors,
        sent,
        limited,
        max,
    };
    Ok((status, page).into_response())
}

/// The usual policy, except that the allowed sites may frame the page.
fn framed_csp(state: &AppState) -> String {
    let mut ancestors = String::from("'self'");
    for origin in &state.config.chat_origins {
        ancestors.push(' ');
        ancestors.push_str(&origin.origin().ascii_serialization());
    }
    crate::web::headers::CSP.replace(
        "frame-ancestors 'none'",
        &format!("frame-ancestors {ancestors}"),
    )
}

pub async fn form(
    State(state): State<AppState>,
    layout: Layout,
    Query(params): Query<PageParams>,
) -> AppResult<Response> {
    let layout = public_layout(layout, &params.lang);
    render(
        &state,
        layout,
        ContactForm::default(),
        Errors::default(),
        StatusCode::OK,
        false,
        false,
    )
}

pub async fn embedded_form(
    State(state): State<AppState>,
    layout: Layout,
    Query(params): Query<PageParams>,
) -> AppResult<Response> {
    let layout = public_layout(layout, &params.lang);
    let form = ContactForm {
        embed: "1".into(),
        ..ContactForm::default()
    };
    render(
        &state,
        layout,
        form,
        Errors::default(),
        StatusCode::OK,
        false,
        false,
    )
}

pub async fn thanks(
    State(state): State<AppState>,
    layout: Layout,
    Query(params): Query<PageParams>,
) -> AppResult<Response> {
    let layout = public_layout(layout, &params.lang);
    let form = ContactForm {
        embed: if params.embed == "1" {
            "1".into()
        } else {
            String::new()
        },
        ..ContactForm::default()
    };
    render(
        &state,
        layout,
        form,
        Errors::default(),
        StatusCode::OK,
        true,
        false,
    )
}

/// Takes a message (R-FORM-1): stored and mailed, or the form again as typed (422), or,
/// past the client's limit, as typed with a note to wait (429).
pub async fn send(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    layout: Layout,
    Form(form): Form<ContactForm>,
) -> AppResult<Response> {
    let layout = public_layout(layout, &form.lang);
    let thanks = {
        let query = if form.embed == "1" {
            serde_urlencoded::to_string([("embed", "1"), ("lang", layout.lang().code())])
                .unwrap_or_default()
        } else {
            String::new()
        };
        format!("/contact/thanks?{query}")
    };
    // A robot is thanked like anyone, and nothing is kept.
    if !form.website.is_empty() {
        return Ok(see_other(&thanks).into_response());
    }
    let new = match NewMessage::parse(
        &form.email,
        &form.name,
        &form.company,
        &form.phone,
        &form.message,
    ) {
        Ok(new) => new,
        Err(errors) => {
            return render(
                &state,
                layout,
                form,
                errors,
                StatusCode::UNPROCESSABLE_ENTITY,
                false,
                false,
            );
        }
    };
    let address = auth::client_address(peer, &headers, state.config.trust_proxy);
    let mut tx = state.pool.begin().await?;
    if !super::allowed(&mut tx, &state.config, address).await? {
        drop(tx);
        return render(
            &state,
            layout,
            form,
            Errors::default(),
            StatusCode::TOO_MANY_REQUESTS,
            false,
            true,
        );
    }
    messages::submit(&mut tx, &state.config, &new, Source::Form, layout.lang()).await?;
    tx.commit().await?;
    Ok(see_other(&thanks).into_response())
}

#[derive(Debug, Default, Deserialize)]
pub struct InboxParams {
    #[serde(default)]
    all: String,
    after: Option<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "contact/inbox.html")]
pub struct InboxPage {
    layout: Layout,
    messages: Vec<Message>,
    all: bool,
    next: Option<String>,
    retention_days: u32,
}

fn parse_after(value: Option<&str>) -> Option<(OffsetDateTime, Uuid)> {
    let (at, id) = value?.split_once('|')?;
    let at = OffsetDateTime::from_unix_timestamp_nanos(at.parse().ok()?).ok()?;
    Some((at, id.parse().ok()?))
}

pub async fn inbox(
    State(state): State<AppState>,
    layout: Layout,
    Query(params): Query<InboxParams>,
) -> AppResult<InboxPage> {
    let all = params.all == "1";
    let mut conn = state.pool.acquire().await?;
    let mut messages = messages::list(
        &mut conn,
        !all,
        parse_after(params.after.as_deref()),
        PAGE + 1,
    )
    .await?;
    let next = if messages.len() as i64 > PAGE {
        messages.truncate(PAGE as usize);
        messages.last().map(|m| {
            let after = format!("{}|{}", m.created_at.unix_timestamp_nanos(), m.id);
            serde_urlencoded::to_string([("all", params.all.as_str()), ("after", &after)])
                .unwrap_or_default()
        })
    } else {
        None
    };
    Ok(InboxPage {
        retention_days: state.config.contact_retention_days,
        layout,
        messages,
        all,
        next,
    })
}

#[derive(Template, WebTemplate)]
#[template(path = "contact/show.html")]
pub struct ShowPage {
    layout: Layout,
    message: Message,
    can_add_contact: bool,
}

async fn load(state: &AppState, id: &str) -> AppResult<Message> {
    let id: Uuid = id.parse().map_err(|_| AppError::NotFound)?;
    let mut conn = state.pool.acquire().await?;
    messages::find(&mut conn, id)
        .await?
        .ok_or(AppError::NotFound)
}

pub async fn show(
    State(state): State<AppState>,
    layout: Layout,
    Path(id): Path<String>,
) -> AppResult<ShowPage> {
    let message = load(&state, &id).await?;
    Ok(ShowPage {
        can_add_contact: layout.can(Capability::CustomerRegister),
        layout,
        message,
    })
}

pub async fn mark_handled(
    State(state): State<AppState>,
    session: Session,
    user: CurrentUser,
    Path(id): Path<String>,
) -> AppResult<Response> {
    let message = load(&state, &id).await?;
    let mut tx = state.pool.begin().await?;
    messages::mark_handled(&mut tx, message.id, user.id).await?;
    tx.commit().await?;
    flash::success(&session, "inbox.handled_done").await?;
    Ok(see_other("/inbox").into_response())
}

pub async fn delete(
    State(state): State<AppState>,
    session: Session,
    user: CurrentUser,
    Path(id): Path<String>,
) -> AppResult<Response> {
    let id: Uuid = id.parse().map_err(|_| AppError::NotFound)?;
    let mut tx = state.pool.begin().await?;
    if !messages::delete(&mut tx, id, user.id).await? {
        return Err(AppError::NotFound);
    }
    tx.commit().await?;
    flash::success(&session, "inbox.deleted").await?;
    Ok(see_other("/inbox").into_response())
}

#[derive(Debug, Default, Deserialize)]
pub struct CompanySearch {
    q: Option<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "contact/to_contact.html")]
pub struct ToContactPage {
    layout: Layout,
    message: Message,
    q: String,
    /// Each company with the link to its new-person form, filled in from the message.
    companies: Vec<(String, String)>,
    new_company: String,
}

/// Turning a message into a person in the customer register: choose their company, then
/// the register's own form (filled in from the message) adds them to quarantine and
/// sends the consent mail.
pub async fn to_contact(
    State(state): State<AppState>,
    layout: Layout,
    Path(id): Path<String>,
    Query(search): Query<CompanySearch>,
) -> AppResult<Response> {
    if !layout.can(Capability::CustomerRegister) {
        return Err(AppError::Forbidden("error.forbidden"));
    }
    let message = load(&state, &id).await?;
    let q = search.q.unwrap_or_else(|| message.company.clone());
    let mut conn = state.pool.acquire().await?;
    let found = customers::find_companies(&mut conn, q.trim()).await?;
    let prefill = serde_urlencoded::to_string([
        ("name", message.name.as_str()),
        ("email", &message.email),
        ("phone", &message.phone),
        ("language", &message.language),
    ])
    .unwrap_or_default();
    let companies = found
        .into_iter()
        .map(|(id, name)| (name, format!("/customers/{id}/people/new?{prefill}")))
        .collect();
    Ok(ToContactPage {
        layout,
        q,
        companies,
        new_company: "/customers/new".into(),
        message,
    }
    .into_response())
}
