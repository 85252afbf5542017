//! The start page after login: what the signed-in role can reach.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;

use crate::{
    customers,
    error::AppResult,
    state::AppState,
    users::Role,
    web::{Access, Layout, Section, access::Decision},
};

pub fn sections() -> Vec<Section> {
    vec![Section::new(Access::SignedIn).get("/", home)]
}

#[derive(Template, WebTemplate)]
#[template(path = "dashboard.html")]
pub struct HomePage {
    layout: Layout,
    is_admin: bool,
    failed_mails: i64,
    /// For the customer register's roles: (in quarantine, due for deletion within 30 days).
    attention: Option<(i64, i64)>,
}

async fn home(State(state): State<AppState>, layout: Layout) -> AppResult<HomePage> {
    let is_admin = layout.user.as_ref().is_some_and(|u| u.role == Role::Admin);
    let keeps_customers =
        Access::CustomerRegister.decide(layout.user.as_ref()) == Decision::Allowed;
    let mut conn = state.pool.acquire().await?;
    let failed_mails = if is_admin {
        sqlx::query_scalar!(r#"SELECT count(*) AS "n!" FROM mail_outbox WHERE status = 'failed'"#)
            .fetch_one(&mut *conn)
            .await?
    } else {
        0
    };
    let attention = if keeps_customers {
        Some(customers::attention(&mut conn, &state.config).await?)
    } else {
        None
    };
    Ok(HomePage {
        layout,
        is_admin,
        failed_mails,
        attention,
    })
}
