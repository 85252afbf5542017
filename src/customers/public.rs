//! The pages a person reaches from the quarantine mail and from the mail that confirms a
//! changed address. Opening a link (GET) never changes anything — mail scanners open
//! links — it shows one button; the POST does it.

use askama::Template;
use askama_web::WebTemplate;
use axum::{
    Form,
    extract::{Path, State},
};
use serde::Deserialize;

use super::{
    Contact,
    address::{self, AddressLink},
    contacts,
    quarantine::{self, LinkState, Purpose},
};
use crate::{
    error::{AppError, AppResult},
    state::AppState,
    web::{Layout, Tr},
};

#[derive(Template, WebTemplate)]
#[template(path = "consent/page.html")]
pub struct ConsentPage {
    layout: Layout,
    heading: &'static str,
    message: String,
    /// `confirm`, `refuse` or `address` shows that form; empty shows only the message.
    form: &'static str,
    consent_text: String,
}

impl ConsentPage {
    fn message(layout: Layout, heading: &'static str, message: &'static str) -> Self {
        let message = layout.t.get(message).to_string();
        Self {
            layout,
            heading,
            message,
            form: "",
            consent_text: String::new(),
        }
    }
}

async fn state_of(state: &AppState, token: &str, purpose: Purpose) -> AppResult<LinkState> {
    let mut conn = state.pool.acquire().await?;
    Ok(quarantine::link_state(&mut conn, token, purpose).await?)
}

fn addressed(layout: Layout, contact: &Contact) -> Layout {
    layout.speaking(contact.language)
}

/// The answer for a link that is used, expired or unknown.
fn settled(layout: Layout, link: LinkState, purpose: Purpose) -> AppResult<ConsentPage> {
    match (link, purpose) {
        (LinkState::Done(contact), Purpose::ConfirmStorage) => {
            let layout = match contact {
                Some(c) => addressed(layout, &c),
                None => layout,
            };
            Ok(ConsentPage::message(
                layout,
                "consent.confirmed.heading",
                "consent.confirmed.already",
            ))
        }
        (LinkState::Done(_), Purpose::RefuseStorage) => Ok(ConsentPage::message(
            layout,
            "consent.refused.heading",
            "consent.refused.already",
        )),
        (LinkState::Expired, _) => Err(AppError::Gone("consent.link.expired")),
        _ => Err(AppError::Missing("consent.link.unknown")),
    }
}

pub async fn confirm_form(
    State(state): State<AppState>,
    layout: Layout,
    Path(token): Path<String>,
) -> AppResult<ConsentPage> {
    match state_of(&state, &token, Purpose::ConfirmStorage).await? {
        LinkState::Valid(contact) => {
            let layout = addressed(layout, &contact);
            let t = layout.t;
            Ok(ConsentPage {
                heading: "consent.confirm.heading",
                message: t.with("consent.confirm.intro", "name", &contact.name),
                form: "confirm",
                consent_text: quarantine::consent_text(
                    contact.language,
                    &state.config.company_name,
                ),
                layout,
            })
        }
        other => settled(layout, other, Purpose::ConfirmStorage),
    }
}

#[derive(Deserialize)]
pub struct ConfirmForm {
    #[serde(default)]
    newsletter: Option<String>,
}

pub async fn confirm(
    State(state): State<AppState>,
    layout: Layout,
    Path(token): Path<String>,
    Form(form): Form<ConfirmForm>,
) -> AppResult<ConsentPage> {
    let mut tx = state.pool.begin().await?;
    let confirmed =
        quarantine::confirm(&mut tx, &state.config, &token, form.newsletter.is_some()).await?;
    tx.commit().await?;
    let link = state_of(&state, &token, Purpose::ConfirmStorage).await?;
    match (confirmed, link) {
        (Some(_), LinkState::Done(Some(contact))) => {
            let layout = addressed(layout, &contact);
            let key = if form.newsletter.is_some() {
                "consent.confirmed.with_newsletter"
            } else {
                "consent.confirmed.done"
            };
            Ok(ConsentPage::message(
                layout,
                "consent.confirmed.heading",
                key,
            ))
        }
        (_, link) => settled(layout, link, Purpose::ConfirmStorage),
    }
}

pub async fn refuse_form(
    State(state): State<AppState>,
    layout: Layout,
    Path(token): Path<String>,
) -> AppResult<ConsentPage> {
    match state_of(&state, &token, Purpose::RefuseStorage).await? {
        LinkState::Valid(contact) => {
            let layout = addressed(layout, &contact);
            let t: Tr = layout.t;
            Ok(ConsentPage {
                heading: "consent.refuse.heading",
                message: t.with("consent.refuse.intro", "name", &contact.name),
                form: "refuse",
                consent_text: String::new(),
                layout,
            })
        }
        other => settled(layout, other, Purpose::RefuseStorage),
    }
}

pub async fn refuse(
    State(state): State<AppState>,
    layout: Layout,
    Path(token): Path<String>,
) -> AppResult<ConsentPage> {
    let link = state_of(&state, &token, Purpose::RefuseStorage).await?;
    let LinkState::Valid(contact) = link else {
        return settled(layout, link, Purpose::RefuseStorage);
    };
    let mut tx = state.pool.begin().await?;
    quarantine::refuse(&mut tx, &state.config, &token).await?;
    tx.commit().await?;
    let layout = addressed(layout, &contact);
    Ok(ConsentPage::message(
        layout,
        "consent.refused.heading",
        "consent.refused.done",
    ))
}

/// The answer for an address link that is used, expired or unknown.
fn address_settled(layout: Layout, link: AddressLink) -> AppResult<ConsentPage> {
    match link {
        AddressLink::Done(contact) => {
            let layout = match contact {
                Some(c) => addressed(layout, &c),
                None => layout,
            };
            Ok(ConsentPage::message(
                layout,
                "address.confirmed.heading",
                "address.confirmed.already",
            ))
        }
        AddressLink::Expired => Err(AppError::Gone("address.link.expired")),
        _ => Err(AppError::Missing("consent.link.unknown")),
    }
}

pub async fn address_form(
    State(state): State<AppState>,
    layout: Layout,
    Path(token): Path<String>,
) -> AppResult<ConsentPage> {
    let mut conn = state.pool.acquire().await?;
    match address::link_state(&mut conn, &token).await? {
        AddressLink::Valid(contact) => {
            let layout = addressed(layout, &contact);
            Ok(ConsentPage {
                heading: "address.confirm.heading",
                message: layout
                    .t
                    .with("address.confirm.intro", "name", &contact.name),
                form: "address",
                consent_text: String::new(),
                layout,
            })
        }
        other => address_settled(layout, other),
    }
}

pub async fn address_confirm(
    State(state): State<AppState>,
    layout: Layout,
    Path(token): Path<String>,
) -> AppResult<ConsentPage> {
    let mut tx = state.pool.begin().await?;
    let confirmed = address::confirm(&mut tx, &token).await?;
    tx.commit().await?;
    let mut conn = state.pool.acquire().await?;
    let Some(id) = confirmed else {
        return address_settled(layout, address::link_state(&mut conn, &token).await?);
    };
    let layout = match contacts::find(&mut conn, id).await? {
        Some(c) => addressed(layout, &c),
        None => layout,
    };
    Ok(ConsentPage::message(
        layout,
        "address.confirmed.heading",
        "address.confirmed.done",
    ))
}
