use askama::Template;
use askama_web::WebTemplate;
use axum::{
    extract::{Path, State},
    response::{IntoResponse, Response},
};
use time::format_description::well_known::Rfc3339;
use tower_sessions::Session;
use uuid::Uuid;

use crate::{
    audit::{self, Actor, Event},
    auth::CurrentUser,
    error::{AppError, AppResult},
    state::AppState,
    web::{Layout, flash, see_other},
};

pub struct Row {
    pub id: Uuid,
    pub created_at: String,
    pub recipient: String,
    pub kind: String,
    pub status: String,
    pub attempts: i32,
    pub last_error: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "mail/outbox.html")]
pub struct OutboxPage {
    layout: Layout,
    queued: i64,
    sent: i64,
    failed: i64,
    rows: Vec<Row>,
}

/// What is waiting or has failed; delivered mail is counted, not listed.
pub async fn outbox(State(state): State<AppState>, layout: Layout) -> AppResult<OutboxPage> {
    let mut conn = state.pool.acquire().await?;
    let counts = sqlx::query!(
        r#"SELECT count(*) FILTER (WHERE status IN ('queued', 'sending')) AS "queued!",
                  count(*) FILTER (WHERE status = 'sent') AS "sent!",
                  count(*) FILTER (WHERE status = 'failed') AS "failed!"
           FROM mail_outbox"#
    )
    .fetch_one(&mut *conn)
    .await?;
    let rows = sqlx::query!(
        "SELECT id, created_at, recipient, kind, status, attempts, last_error
         FROM mail_outbox WHERE status <> 'sent'
         ORDER BY status = 'failed' DESC, created_at DESC LIMIT 200"
    )
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .map(|r| Row {
        id: r.id,
        created_at: r.created_at.format(&Rfc3339).unwrap_or_default(),
        recipient: r.recipient,
        kind: r.kind,
        status: r.status,
        attempts: r.attempts,
        last_error: r.last_error.unwrap_or_default(),
    })
    .collect();
    Ok(OutboxPage {
        layout,
        queued: counts.queued,
        sent: counts.sent,
        failed: counts.failed,
        rows,
    })
}

/// Puts a failed mail back in the queue, to be sent at once.
pub async fn retry(
    State(state): State<AppState>,
    session: Session,
    admin: CurrentUser,
    Path(id): Path<String>,
) -> AppResult<Response> {
    let id: Uuid = id.parse().map_err(|_| AppError::NotFound)?;
    let mut tx = state.pool.begin().await?;
    let updated = sqlx::query!(
        "UPDATE mail_outbox SET status = 'queued', attempts = 0, next_attempt_at = now()
         WHERE id = $1 AND status = 'failed'",
        id
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if updated == 0 {
        return Err(AppError::NotFound);
    }
    audit::record(
        &mut tx,
        Event::new(
            &Actor::User(admin.id),
            "mail.retry",
            "mail",
            Some(id.to_string()),
        )
        .with_fields(&["status"]),
    )
    .await?;
    tx.commit().await?;
    flash::success(&session, "mail.requeued").await?;
    Ok(see_other("/mail").into_response())
}

/// A mailing's progress as JSON, polled by its progress bar.
pub async fn progress(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> AppResult<axum::Json<super::Progress>> {
    let id: Uuid = id.parse().map_err(|_| AppError::NotFound)?;
    let mut conn = state.pool.acquire().await?;
    super::progress(&mut conn, id)
        .await?
        .map(axum::Json)
        .ok_or(AppError::NotFound)
}
