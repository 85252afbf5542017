//! `/privacy`, `/cookies` and the administrator's record of processing (GDPR Art. 13, 30):
//! rendered from the register definitions and the cookie list, never written by hand.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;

use crate::{
    error::AppResult,
    registers::{self, Described},
    state::AppState,
    web::{
        Layout,
        cookies::{self, Lifetime},
    },
};

#[derive(Template, WebTemplate)]
#[template(path = "rights/privacy.html")]
pub struct PrivacyPage {
    layout: Layout,
    registers: Vec<Described>,
    contact: String,
}

pub async fn privacy(State(state): State<AppState>, layout: Layout) -> PrivacyPage {
    PrivacyPage {
        registers: registers::described(&state.config, layout.t),
        contact: state.config.info_address.email.to_string(),
        layout,
    }
}

pub struct CookieRow {
    name: &'static str,
    purpose: &'static str,
    lifetime: String,
    necessary: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "rights/cookies.html")]
pub struct CookiesPage {
    layout: Layout,
    cookies: Vec<CookieRow>,
}

pub async fn cookies(State(state): State<AppState>, layout: Layout) -> CookiesPage {
    let t = layout.t;
    let cookies = cookies::all(&state.config)
        .into_iter()
        .map(|c| CookieRow {
            name: c.name,
            purpose: c.purpose,
            lifetime: match c.lifetime {
                Lifetime::BrowserSession => t.get("cookies.lifetime.browser").to_string(),
                Lifetime::Minutes(n) => t.with("cookies.lifetime.minutes", "n", n),
                Lifetime::Hours(n) => t.with("cookies.lifetime.hours", "n", n),
                Lifetime::Days(n) => t.with("cookies.lifetime.days", "n", n),
            },
            necessary: c.necessary,
        })
        .collect();
    CookiesPage { layout, cookies }
}

#[derive(Template, WebTemplate)]
#[template(path = "rights/record.html")]
pub struct RecordPage {
    layout: Layout,
    registers: Vec<Described>,
    contact: String,
    day: String,
    breaches: Vec<super::breaches::Breach>,
}

/// The record of processing activities (Art. 30, R-ALL-1), laid out to be printed.
pub async fn record(State(state): State<AppState>, layout: Layout) -> AppResult<RecordPage> {
    let mut conn = state.pool.acquire().await?;
    Ok(RecordPage {
        breaches: super::breaches::list_all(&mut conn).await?,
        registers: registers::described(&state.config, layout.t),
        contact: state.config.info_address.email.to_string(),
        day: crate::web::day(&time::OffsetDateTime::now_utc()),
        layout,
    })
}
