//! `/my-data`: anyone asks for their data by giving an address. The answer is the same,
//! byte for byte and in about the same time, whether or not the address is known: the
//! look-up and the mail happen after the response. A known address receives its extract
//! with links (valid 7 days) to ask for a correction or for erasure.

use std::net::SocketAddr;

use askama::Template;
use askama_web::WebTemplate;
use axum::{
    Form,
    extract::{ConnectInfo, Path, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use time::{Date, OffsetDateTime};

use super::{extract, requests, send};
use crate::{
    audit::{self, Actor, Event},
    auth::{client_address, throttle},
    customers,
    domain::Email,
    error::{AppError, AppResult},
    state::AppState,
    tokens::{self, Peeked, Purpose},
    web::{Lang, Layout},
};

/// How long the links in the extract's mail work.
pub const LINK_DAYS: u32 = 7;
/// The longest correction a person may describe.
const MAX_DETAILS: usize = 4000;
const ACTOR: Actor = Actor::System("my-data");

#[derive(Template, WebTemplate)]
#[template(path = "rights/my_data.html")]
pub struct MyDataPage {
    layout: Layout,
    email: String,
    error: Option<&'static str>,
    sent: bool,
}

pub async fn form(layout: Layout) -> MyDataPage {
    MyDataPage {
        layout,
        email: String::new(),
        error: None,
        sent: false,
    }
}

#[derive(Deserialize)]
pub struct AskForm {
    #[serde(default)]
    email: String,
}

pub async fn ask(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    layout: Layout,
    Form(form): Form<AskForm>,
) -> AppResult<Response> {
    let email = match Email::parse(&form.email) {
        Ok(email) => email,
        Err(error) => {
            let page = MyDataPage {
                layout,
                email: form.email.chars().take(254).collect(),
                error: Some(error),
                sent: false,
            };
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
        }
    };
    let ip = client_address(peer, &headers, state.config.trust_proxy);
    let keys = throttle::ThrottleKeys::scoped(&state.config.keys, "my-data:", email.as_str(), ip);
    let mut conn = state.pool.acquire().await?;
    if throttle::attempt(&mut conn, &keys, &state.config)
        .await?
        .is_none()
    {
        return Err(AppError::TooManyRequests("my_data.throttled"));
    }
    drop(conn);
    let lang = layout.lang();
    tokio::spawn(answer(state, email, lang));
    Ok(MyDataPage {
        layout,
        email: String::new(),
        error: None,
        sent: true,
    }
    .into_response())
}

async fn answer(state: AppState, email: Email, lang: Lang) {
    if let Err(e) = send_if_known(&state, &email, lang).await {
        tracing::error!(
            error = format!("{e:#}"),
            "answering a request for one's data"
        );
    }
}

/// Sends the extract to a known address, and records the request as answered.
async fn send_if_known(state: &AppState, email: &Email, lang: Lang) -> anyhow::Result<()> {
    let mut tx = state.pool.begin().await?;
    let contact = match customers::contact_with_email(&mut tx, email).await? {
        Some(id) => customers::find_contact(&mut tx, id).await?,
        None => None,
    };
    // A changed address that its owner has not confirmed gets nothing.
    if contact.as_ref().is_some_and(|c| !c.mailable()) {
        return Ok(());
    }
    let lang = contact.as_ref().map_or(lang, |c| c.language);
    // The address as it is on record, whatever the case it was typed in.
    let on_record = contact.as_ref().and_then(|c| Email::parse(&c.email).ok());
    let email = on_record.as_ref().unwrap_or(email);
    let extract = extract::for_email(&mut tx, &state.config, email, lang).await?;
    if extract.is_empty() {
        return Ok(());
    }
    let today = OffsetDateTime::now_utc().date();
    let request =
        requests::record(&mut tx, "access", "self_service", email, "", today, &ACTOR).await?;
    let expires = OffsetDateTime::now_utc() + time::Duration::days(LINK_DAYS.into());
    let rectify = tokens::issue(
        &mut tx,
        Purpose::RequestRectification,
        request,
        None,
        expires,
    )
    .await?;
    let erase = tokens::issue(&mut tx, Purpose::RequestErasure, request, None, expires).await?;
    let config = &state.config;
    let links = send::RequestLinks {
        rectify: config.absolute_url(&format!("/my-data/rectify/{rectify}")),
        erase: config.absolute_url(&format!("/my-data/erase/{erase}")),
        valid_days: LINK_DAYS,
    };
    let contact_id = contact.as_ref().map(|c| c.id);
    send::queue(&mut tx, config, &extract, Some(links), contact_id).await?;
    audit::record(
        &mut tx,
        Event::new(
            &ACTOR,
            "extract.send",
            "contact",
            contact_id.map(|id| id.to_string()),
        ),
    )
    .await?;
    requests::close(&mut tx, request, "done", "extract sent", &ACTOR, None).await?;
    tx.commit().await?;
    Ok(())
}

#[derive(Template, WebTemplate)]
#[template(path = "rights/request_link.html")]
pub struct RequestLinkPage {
    layout: Layout,
    /// `rectification` or `erasure`.
    kind: &'static str,
    details: String,
    error: Option<&'static str>,
    /// Set once the request is recorded: its due date.
    due: Option<String>,
}

fn purpose_of(kind: &str) -> Option<(Purpose, &'static str)> {
    match kind {
        "rectify" => Some((Purpose::RequestRectification, "rectification")),
        "erase" => Some((Purpose::RequestErasure, "erasure")),
        _ => None,
    }
}

/// Opening a link shows its form and changes nothing (mail scanners open links too).
pub async fn link_form(
    State(state): State<AppState>,
    layout: Layout,
    Path((kind, token)): Path<(String, String)>,
) -> AppResult<RequestLinkPage> {
    let (purpose, kind) = purpose_of(&kind).ok_or(AppError::NotFound)?;
    let mut conn = state.pool.acquire().await?;
    match tokens::peek(&mut conn, purpose, &token).await? {
        Peeked::Valid(_) => Ok(RequestLinkPage {
            layout,
            kind,
            details: String::new(),
            error: None,
            due: None,
        }),
        Peeked::Used(_) => Err(AppError::Gone("my_data.link.used")),
        Peeked::Expired(_) => Err(AppError::Gone("my_data.link.expired")),
        Peeked::Unknown => Err(AppError::Missing("my_data.link.unknown")),
    }
}

#[derive(Deserialize)]
pub struct LinkForm {
    #[serde(default)]
    details: String,
}

/// Records the request the link was sent for, once.
pub async fn link_submit(
    State(state): State<AppState>,
    layout: Layout,
    Path((kind, token)): Path<(String, String)>,
    Form(form): Form<LinkForm>,
) -> AppResult<Response> {
    let (purpose, kind) = purpose_of(&kind).ok_or(AppError::NotFound)?;
    let details = form.details.trim();
    let error = match kind {
        "rectification" if details.is_empty() => Some("my_data.details.required"),
        _ if details.chars().count() > MAX_DETAILS => Some("my_data.details.too_long"),
        _ => None,
    };
    if let Some(error) = error {
        let page = RequestLinkPage {
            layout,
            kind,
            details: details.chars().take(MAX_DETAILS).collect(),
            error: Some(error),
            due: None,
        };
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
    }
    let mut tx = state.pool.begin().await?;
    let Some(link) = tokens::consume(&mut tx, purpose, &token).await? else {
        return match tokens::peek(&mut tx, purpose, &token).await? {
            Peeked::Unknown => Err(AppError::Missing("my_data.link.unknown")),
            Peeked::Expired(_) => Err(AppError::Gone("my_data.link.expired")),
            _ => Err(AppError::Gone("my_data.link.used")),
        };
    };
    let email = requests::find(&mut tx, link.subject)
        .await?
        .and_then(|r| r.email)
        .and_then(|e| Email::parse(&e).ok())
        .ok_or(AppError::Gone("my_data.link.used"))?;
    let today: Date = OffsetDateTime::now_utc().date();
    requests::record(
        &mut tx,
        kind,
        "self_service",
        &email,
        details,
        today,
        &ACTOR,
    )
    .await?;
    tx.commit().await?;
    Ok(RequestLinkPage {
        layout,
        kind,
        details: String::new(),
        error: None,
        due: Some(requests::due_on(today).to_string()),
    }
    .into_response())
}
