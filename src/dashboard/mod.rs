//! The start page after login: what the signed-in user's capabilities reach.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use time::OffsetDateTime;

use crate::{
    backup, customers,
    error::AppResult,
    rights,
    state::AppState,
    web::{Access, Layout, Section, access::Capability},
};

pub fn sections() -> Vec<Section> {
    vec![Section::new(Access::SignedIn).get("/", home)]
}

#[derive(Template, WebTemplate)]
#[template(path = "dashboard.html")]
pub struct HomePage {
    layout: Layout,
    /// Failed mails: for those who look after outgoing mail.
    failed_mails: i64,
    /// For the customer register: (in quarantine, due for deletion within 30 days).
    attention: Option<(i64, i64)>,
    /// Whether deletions due are shown (the register's responsible person).
    shows_due: bool,
    /// For the administrator, when no backup is newer than two days: the last one's day,
    /// or `None` inside if there has been none.
    backup_overdue: Option<Option<String>>,
    /// Data subjects' requests (overdue, due within a week), for those who handle them.
    requests: Option<(i64, i64)>,
    /// Open breaches the authority has not been told of (administrator).
    unreported_breaches: i64,
}

/// A backup older than this is worth a warning: the daily job has missed a day.
const BACKUP_WARNING_AGE: time::Duration = time::Duration::days(2);

async fn home(State(state): State<AppState>, layout: Layout) -> AppResult<HomePage> {
    let administers = layout.can(Capability::Administration);
    let mut conn = state.pool.acquire().await?;
    let failed_mails = if administers {
        sqlx::query_scalar!(r#"SELECT count(*) AS "n!" FROM mail_outbox WHERE status = 'failed'"#)
            .fetch_one(&mut *conn)
            .await?
    } else {
        0
    };
    let backup_overdue = if administers {
        let last = backup::last_made(&mut conn).await?;
        let overdue = last.is_none_or(|at| OffsetDateTime::now_utc() - at > BACKUP_WARNING_AGE);
        overdue.then(|| last.map(|at| crate::web::day(&at)))
    } else {
        None
    };
    let attention = if layout.can(Capability::CustomerRegister) {
        Some(customers::attention(&mut conn, &state.config).await?)
    } else {
        None
    };
    let unreported_breaches = if administers {
        rights::breaches::unreported(&mut conn).await?
    } else {
        0
    };
    let requests = if layout.can(Capability::CustomerRegister) {
        let today = OffsetDateTime::now_utc().date();
        Some(rights::requests::attention(&mut conn, today).await?)
    } else {
        None
    };
    Ok(HomePage {
        layout,
        failed_mails,
        attention,
        shows_due: administers,
        backup_overdue,
        requests,
        unreported_breaches,
    })
}
