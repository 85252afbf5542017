//! Sending an extract: rendered as PDF and JSON, attached to a mail to the address on
//! record only, queued and audited in the caller's transaction. Staff never see it.

use axum::{
    extract::{Path, State},
    response::{IntoResponse, Response},
};
use sqlx::PgConnection;
use tower_sessions::Session;
use uuid::Uuid;

use super::{
    extract::{self, Extract},
    pdf,
};
use crate::{
    audit::{self, Actor, Event},
    auth::CurrentUser,
    config::Config,
    customers,
    domain::Email,
    error::{AppError, AppResult},
    mail::{self, Attachment, Mail, kinds::RegisterExtract},
    personnel,
    registers::RegisterId,
    state::AppState,
    web::{Layout, flash, see_other},
};

/// Links for the person to ask for a change or erasure, with how many days they work.
pub struct RequestLinks {
    pub rectify: String,
    pub erase: String,
    pub valid_days: u32,
}

/// Queues the extract to its subject's address, with the PDF and the JSON attached.
pub async fn queue(
    conn: &mut PgConnection,
    config: &Config,
    extract: &Extract,
    links: Option<RequestLinks>,
    contact_id: Option<Uuid>,
) -> anyhow::Result<()> {
    let pdf = pdf::render(extract)?;
    let json = extract.json()?;
    let (rectify_link, erase_link, valid_days) = match links {
        Some(l) => (Some(l.rectify), Some(l.erase), l.valid_days),
        None => (None, None, 0),
    };
    let kind = RegisterExtract {
        rectify_link,
        erase_link,
        valid_days,
    };
    let mut mail = Mail::compose(config, &extract.subject, extract.language, &kind)?;
    let day = crate::web::day(&extract.generated_at);
    mail.attachments = vec![
        Attachment {
            filename: format!("register-extract-{day}.pdf"),
            content_type: "application/pdf".into(),
            content: pdf,
        },
        Attachment {
            filename: format!("register-extract-{day}.json"),
            content_type: "application/json".into(),
            content: json,
        },
    ];
    // The copy kept until delivery goes with the person if they are erased.
    if let Some(id) = contact_id {
        mail = mail.about(id);
    }
    mail::enqueue(conn, &mail).await?;
    Ok(())
}

/// "Send extract" on an employee's page (R-PERS-6): the CEO sends the employee everything
/// the personnel register holds, secrets opened, to the e-mail address on record.
pub async fn employee(
    _: personnel::Fresh,
    State(state): State<AppState>,
    session: Session,
    user: CurrentUser,
    layout: Layout,
    Path(id): Path<String>,
) -> AppResult<Response> {
    let id: Uuid = id.parse().map_err(|_| AppError::NotFound)?;
    let mut tx = state.pool.begin().await?;
    let held = personnel::held_about(&mut tx, &state.config.keys, id)
        .await?
        .ok_or(AppError::NotFound)?;
    let back = see_other(&format!("/personnel/{id}")).into_response();
    let Some(email) = held.email.as_deref().and_then(|e| Email::parse(e).ok()) else {
        flash::error(&session, "extract.no_address").await?;
        return Ok(back);
    };
    let mut extract = Extract::new(&state.config, email.as_str(), layout.lang());
    extract
        .add(&state.config, RegisterId::Personnel, held)
        .map_err(anyhow::Error::from)?;
    queue(&mut tx, &state.config, &extract, None, None).await?;
    audit::record(
        &mut tx,
        Event::new(
            &Actor::User(user.id),
            "extract.send",
            personnel::ENTITY,
            Some(id.to_string()),
        ),
    )
    .await?;
    tx.commit().await?;
    flash::success(&session, "extract.sent").await?;
    Ok(back)
}

/// "Send extract" on a person's page (R-CUST-9): to the address on record, never shown.
pub async fn person(
    State(state): State<AppState>,
    session: Session,
    user: CurrentUser,
    Path(id): Path<String>,
) -> AppResult<Response> {
    let id = customers::parse_id(&id).ok_or(AppError::NotFound)?;
    let mut tx = state.pool.begin().await?;
    let contact = customers::find_contact(&mut tx, id)
        .await?
        .ok_or(AppError::NotFound)?;
    let back = see_other(&format!("/people/{id}")).into_response();
    if !contact.mailable() {
        flash::error(&session, "extract.address_pending").await?;
        return Ok(back);
    }
    let email = Email::parse(&contact.email)
        .map_err(|_| AppError::Unexpected(anyhow::anyhow!("a stored address does not parse")))?;
    let extract = extract::for_email(&mut tx, &state.config, &email, contact.language).await?;
    queue(&mut tx, &state.config, &extract, None, Some(id)).await?;
    audit::record(
        &mut tx,
        Event::new(
            &Actor::User(user.id),
            "extract.send",
            "contact",
            Some(id.to_string()),
        ),
    )
    .await?;
    tx.commit().await?;
    flash::success(&session, "extract.sent").await?;
    Ok(back)
}
