//! The requests queue for staff: what data subjects asked for, by when it is due, who
//! handled it and what was done; requests that came by mail, phone or letter are logged
//! here; an erasure request is carried out from its page.

use askama::Template;
use askama_web::WebTemplate;
use axum::{
    Form,
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use time::{Date, OffsetDateTime};
use tower_sessions::Session;
use uuid::Uuid;

use super::{
    erasure, extract,
    requests::{self, KINDS, Request, STAFF_CHANNELS},
    send,
};
use crate::{
    audit::{self, Actor, Event},
    auth::CurrentUser,
    customers,
    domain::Email,
    error::{AppError, AppResult},
    mail::{self, Mail, kinds},
    state::AppState,
    web::{Lang, Layout, Tr, flash, form::Errors, form::parse_day, see_other},
};

const MAX_TEXT: usize = 4000;

fn today() -> Date {
    OffsetDateTime::now_utc().date()
}

#[derive(Default, Deserialize)]
pub struct NewRequestForm {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    channel: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    received_on: String,
    #[serde(default)]
    details: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "rights/requests.html")]
pub struct RequestsPage {
    layout: Layout,
    requests: Vec<Request>,
    today: Date,
    form: NewRequestForm,
    errors: Errors,
}

pub async fn list(State(state): State<AppState>, layout: Layout) -> AppResult<RequestsPage> {
    let mut conn = state.pool.acquire().await?;
    Ok(RequestsPage {
        layout,
        requests: requests::list(&mut conn).await?,
        today: today(),
        form: NewRequestForm {
            received_on: today().to_string(),
            ..NewRequestForm::default()
        },
        errors: Errors::default(),
    })
}

fn known(list: &[&'static str], value: &str) -> Option<&'static str> {
    list.iter().copied().find(|k| *k == value)
}

fn text(errors: &mut Errors, field: &'static str, value: &str) -> String {
    if value.chars().count() > MAX_TEXT {
        errors.add(field, "my_data.details.too_long");
    }
    value.trim().to_string()
}

/// Logs a request that reached staff by mail, phone or letter.
pub async fn create(
    State(state): State<AppState>,
    session: Session,
    user: CurrentUser,
    layout: Layout,
    Form(form): Form<NewRequestForm>,
) -> AppResult<Response> {
    let mut errors = Errors::default();
    let kind = errors.check("kind", known(&KINDS, &form.kind).ok_or("field.required"));
    let channel = errors.check(
        "channel",
        known(&STAFF_CHANNELS, &form.channel).ok_or("field.required"),
    );
    let email = errors.check("email", Email::parse(&form.email));
    let received = errors.check("received_on", parse_day(&form.received_on));
    if received.is_some_and(|d| d > today()) {
        errors.add("received_on", "requests.received.future");
    }
    let details = text(&mut errors, "details", &form.details);
    let (Some(kind), Some(channel), Some(email), Some(received), true) =
        (kind, channel, email, received, errors.is_empty())
    else {
        let mut conn = state.pool.acquire().await?;
        let page = RequestsPage {
            layout,
            requests: requests::list(&mut conn).await?,
            today: today(),
            form,
            errors,
        };
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
    };
    let mut tx = state.pool.begin().await?;
    let id = requests::record(
        &mut tx,
        kind,
        channel,
        &email,
        &details,
        received,
        &Actor::User(user.id),
    )
    .await?;
    tx.commit().await?;
    flash::success(&session, "requests.logged").await?;
    Ok(see_other(&format!("/requests/{id}")).into_response())
}

#[derive(Template, WebTemplate)]
#[template(path = "rights/request.html")]
pub struct RequestPage {
    layout: Layout,
    request: Request,
    today: Date,
    latest_extension: Date,
    errors: Errors,
}

async fn load(state: &AppState, id: &str) -> AppResult<Request> {
    let id: Uuid = id.parse().map_err(|_| AppError::NotFound)?;
    let mut conn = state.pool.acquire().await?;
    requests::find(&mut conn, id)
        .await?
        .ok_or(AppError::NotFound)
}

/// An open request of the given kind and the address it is about; a closed one, or one
/// of another kind, is gone.
async fn load_open(state: &AppState, id: &str, kind: &str) -> AppResult<(Request, Email)> {
    let request = load(state, id).await?;
    let email = request
        .email
        .as_deref()
        .and_then(|e| Email::parse(e).ok())
        .filter(|_| request.kind == kind && request.is_open())
        .ok_or(AppError::Gone("requests.closed"))?;
    Ok((request, email))
}

fn page(layout: Layout, request: Request, errors: Errors) -> RequestPage {
    RequestPage {
        latest_extension: requests::latest_extension(request.received_on),
        layout,
        request,
        today: today(),
        errors,
    }
}

pub async fn show(
    State(state): State<AppState>,
    layout: Layout,
    Path(id): Path<String>,
) -> AppResult<RequestPage> {
    let request = load(&state, &id).await?;
    Ok(page(layout, request, Errors::default()))
}

#[derive(Deserialize)]
pub struct ExtendForm {
    #[serde(default)]
    until: String,
    #[serde(default)]
    reason: String,
}

/// The language to write to the subject in: the customer register's, else Swedish.
async fn language_of(
    conn: &mut sqlx::PgConnection,
    email: &Email,
) -> sqlx::Result<(Lang, Option<Uuid>)> {
    let Some(id) = customers::contact_with_email(conn, email).await? else {
        return Ok((Lang::Sv, None));
    };
    let contact = customers::find_contact(conn, id).await?;
    Ok((contact.map_or(Lang::Sv, |c| c.language), Some(id)))
}

/// Extends the deadline (Art. 12(3)) and tells the subject why.
pub async fn extend(
    State(state): State<AppState>,
    session: Session,
    user: CurrentUser,
    layout: Layout,
    Path(id): Path<String>,
    Form(form): Form<ExtendForm>,
) -> AppResult<Response> {
    let request = load(&state, &id).await?;
    let mut errors = Errors::default();
    let until = errors.check("until", parse_day(&form.until));
    let reason = text(&mut errors, "reason", &form.reason);
    if reason.is_empty() {
        errors.add("reason", "field.required");
    }
    let limit = requests::latest_extension(request.received_on);
    if until.is_some_and(|u| u <= request.due_on || u > limit) {
        errors.add("until", "requests.extend.range");
    }
    if !request.may_extend(today()) {
        errors.add("until", "requests.extend.not_allowed");
    }
    let (Some(until), true) = (until, errors.is_empty()) else {
        return Ok((
            StatusCode::UNPROCESSABLE_ENTITY,
            page(layout, request, errors),
        )
            .into_response());
    };
    let mut tx = state.pool.begin().await?;
    let actor = Actor::User(user.id);
    let Some(email) =
        requests::extend(&mut tx, request.id, until, &reason, today(), &actor).await?
    else {
        return Err(AppError::Gone("requests.extend.not_allowed"));
    };
    if let Ok(email) = Email::parse(&email) {
        let (lang, contact) = language_of(&mut tx, &email).await?;
        let notice = kinds::RequestExtended {
            until: until.to_string(),
            reason,
        };
        let mut mail = Mail::compose(&state.config, email.as_str(), lang, &notice)?;
        if let Some(contact) = contact {
            mail = mail.about(contact);
        }
        mail::enqueue(&mut tx, &mail).await?;
    }
    tx.commit().await?;
    flash::success(&session, "requests.extended").await?;
    Ok(see_other(&format!("/requests/{}", request.id)).into_response())
}

#[derive(Deserialize)]
pub struct CloseForm {
    #[serde(default)]
    state: String,
    #[serde(default)]
    outcome: String,
}

/// Records what was done and closes the request.
pub async fn close(
    State(state): State<AppState>,
    session: Session,
    user: CurrentUser,
    layout: Layout,
    Path(id): Path<String>,
    Form(form): Form<CloseForm>,
) -> AppResult<Response> {
    let request = load(&state, &id).await?;
    let mut errors = Errors::default();
    let closed_as = errors.check(
        "state",
        known(&["done", "refused"], &form.state).ok_or("field.required"),
    );
    let outcome = text(&mut errors, "outcome", &form.outcome);
    if outcome.is_empty() {
        errors.add("outcome", "field.required");
    }
    let (Some(closed_as), true) = (closed_as, errors.is_empty()) else {
        return Ok((
            StatusCode::UNPROCESSABLE_ENTITY,
            page(layout, request, errors),
        )
            .into_response());
    };
    let mut tx = state.pool.begin().await?;
    let actor = Actor::User(user.id);
    if !requests::close(
        &mut tx,
        request.id,
        closed_as,
        &outcome,
        &actor,
        Some(user.id),
    )
    .await?
    {
        return Err(AppError::Gone("requests.closed"));
    }
    tx.commit().await?;
    flash::success(&session, "requests.closed").await?;
    Ok(see_other(&format!("/requests/{}", request.id)).into_response())
}

/// Answers an access request (Art. 15): the extract goes to the address, as on record.
pub async fn send_extract(
    State(state): State<AppState>,
    session: Session,
    user: CurrentUser,
    Path(id): Path<String>,
) -> AppResult<Response> {
    let (request, email) = load_open(&state, &id, "access").await?;
    let back = see_other(&format!("/requests/{}", request.id)).into_response();
    let mut tx = state.pool.begin().await?;
    let contact = match customers::contact_with_email(&mut tx, &email).await? {
        Some(id) => customers::find_contact(&mut tx, id).await?,
        None => None,
    };
    if contact.as_ref().is_some_and(|c| !c.mailable()) {
        flash::error(&session, "extract.address_pending").await?;
        return Ok(back);
    }
    let on_record = contact.as_ref().and_then(|c| Email::parse(&c.email).ok());
    let email = on_record.as_ref().unwrap_or(&email);
    let lang = contact.as_ref().map_or(Lang::Sv, |c| c.language);
    let extract = extract::for_email(&mut tx, &state.config, email, lang).await?;
    let contact_id = contact.as_ref().map(|c| c.id);
    send::queue(&mut tx, &state.config, &extract, None, contact_id).await?;
    let actor = Actor::User(user.id);
    audit::record(
        &mut tx,
        Event::new(
            &actor,
            "extract.send",
            requests::ENTITY,
            Some(request.id.to_string()),
        ),
    )
    .await?;
    requests::close(
        &mut tx,
        request.id,
        "done",
        "extract sent",
        &actor,
        Some(user.id),
    )
    .await?;
    tx.commit().await?;
    flash::success(&session, "extract.sent").await?;
    Ok(back)
}

/// Carries out an erasure request (Art. 17) in every register, in one transaction with
/// its audit row and the reply to the subject.
pub async fn erase(
    State(state): State<AppState>,
    session: Session,
    user: CurrentUser,
    Path(id): Path<String>,
) -> AppResult<Response> {
    let (request, email) = load_open(&state, &id, "erasure").await?;
    let mut tx = state.pool.begin().await?;
    let actor = Actor::User(user.id);
    let (lang, _) = language_of(&mut tx, &email).await?;
    let erased = erasure::everywhere(&mut tx, &state.config, &email, &actor).await?;
    let reply = erasure::reply(&state.config, Tr(lang), &erased);
    let outcome: Vec<&str> = erased.iter().map(|r| r.as_str()).collect();
    let outcome = format!(
        "erased from: {}",
        if outcome.is_empty() {
            "none".into()
        } else {
            outcome.join(", ")
        }
    );
    let mail = Mail::compose(
        &state.config,
        email.as_str(),
        lang,
        &kinds::ErasureDone {
            erased: reply.erased,
            kept: reply.kept,
            recipients: reply.recipients,
        },
    )?;
    mail::enqueue(&mut tx, &mail).await?;
    audit::record(
        &mut tx,
        Event::new(
            &actor,
            "subject_request.erase",
            requests::ENTITY,
            Some(request.id.to_string()),
        )
        .with_count(erased.len() as i64),
    )
    .await?;
    requests::close(&mut tx, request.id, "done", &outcome, &actor, Some(user.id)).await?;
    tx.commit().await?;
    flash::success(&session, "requests.erased").await?;
    Ok(see_other(&format!("/requests/{}", request.id)).into_response())
}
