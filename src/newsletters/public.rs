//! The public pages: subscribing (double opt-in) and unsubscribing, in Swedish, Finnish
//! and English. Opening a mailed link (GET) changes nothing — mail scanners open links
//! too — it shows one button.

use std::net::SocketAddr;

use askama::Template;
use askama_web::WebTemplate;
use axum::{
    Form,
    extract::{ConnectInfo, Path, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use uuid::Uuid;

use super::subscriptions::{self, LinkState, Withdrawal};
use crate::{
    audit::Actor,
    auth::{client_address, spend_throttled},
    customers::{self, BusinessArea},
    domain::{Email, PersonName, short_text},
    error::{AppError, AppResult},
    state::AppState,
    web::{Layout, form::Errors},
};

/// Subscription requests one address may make within the throttle period.
const PER_ADDRESS: i32 = 3;
/// Subscription requests one client may make within the throttle period.
const PER_CLIENT: i32 = 20;

#[derive(Clone, Debug, Default)]
pub struct SubscribeForm {
    email: String,
    name: String,
    company: String,
    areas: Vec<String>,
}

impl SubscribeForm {
    fn from_pairs(pairs: Vec<(String, String)>) -> Self {
        let mut form = Self::default();
        for (k, v) in pairs {
            match k.as_str() {
                "email" => form.email = v,
                "name" => form.name = v,
                "company" => form.company = v,
                "area" => form.areas.push(v),
                _ => {}
            }
        }
        form
    }

    fn has_area(&self, id: &Uuid) -> bool {
        self.areas.iter().any(|a| *a == id.to_string())
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "newsletters/subscribe.html")]
pub struct SubscribePage {
    layout: Layout,
    form: SubscribeForm,
    areas: Vec<BusinessArea>,
    errors: Errors,
    consent_text: String,
}

/// A message, and at most one button (a form posting back to the page's own address).
#[derive(Template, WebTemplate)]
#[template(path = "newsletters/message.html")]
pub struct MessagePage {
    layout: Layout,
    heading: &'static str,
    message: &'static str,
    /// The button's label; empty: no button.
    button: &'static str,
}

fn message(layout: Layout, heading: &'static str, message: &'static str) -> MessagePage {
    MessagePage {
        layout,
        heading,
        message,
        button: "",
    }
}

async fn subscribe_page(
    state: &AppState,
    layout: Layout,
    form: SubscribeForm,
    errors: Errors,
) -> AppResult<SubscribePage> {
    let mut conn = state.pool.acquire().await?;
    Ok(SubscribePage {
        consent_text: subscriptions::consent_text(layout.lang(), &state.config.company_name),
        areas: customers::business_areas(&mut conn).await?,
        layout,
        form,
        errors,
    })
}

pub async fn form(State(state): State<AppState>, layout: Layout) -> AppResult<SubscribePage> {
    subscribe_page(&state, layout, SubscribeForm::default(), Errors::default()).await
}

pub async fn submit(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    layout: Layout,
    Form(pairs): Form<Vec<(String, String)>>,
) -> AppResult<Response> {
    let form = SubscribeForm::from_pairs(pairs);
    let mut errors = Errors::default();
    let email = errors.check("email", Email::parse(&form.email));
    let name = errors.check("name", PersonName::parse(&form.name));
    let company = errors.check(
        "company",
        short_text(&form.company, 200).and_then(|c| {
            if c.is_empty() {
                Err("field.required")
            } else {
                Ok(c)
            }
        }),
    );
    let areas: Option<Vec<Uuid>> = form.areas.iter().map(|a| a.parse().ok()).collect();
    let areas = errors.check("area", areas.ok_or("field.choice.invalid"));
    let (Some(email), Some(name), Some(company), Some(areas)) = (email, name, company, areas)
    else {
        let page = subscribe_page(&state, layout, form, errors).await?;
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
    };
    let client = client_address(peer, &headers, state.config.trust_proxy);
    let (config, keys) = (&state.config, &state.config.keys);
    let mut tx = state.pool.begin().await?;
    let allowed = spend_throttled(
        &mut tx,
        keys,
        &format!("subscribe-client:{client}"),
        PER_CLIENT,
        config.login_lockout,
    )
    .await?
        && spend_throttled(
            &mut tx,
            keys,
            &format!("subscribe-address:{}", email.as_str().to_lowercase()),
            PER_ADDRESS,
            config.login_lockout,
        )
        .await?;
    if !allowed {
        // Counted all the same: a flood gets no further by waiting out one key.
        tx.commit().await?;
        return Err(AppError::TooManyRequests("newsletter.subscribe.throttled"));
    }
    subscriptions::request(
        &mut tx,
        config,
        &email,
        &name,
        &company,
        &areas,
        layout.lang(),
    )
    .await
    .map_err(AppError::Unexpected)?;
    tx.commit().await?;
    Ok(message(
        layout,
        "newsletter.subscribe.sent.heading",
        "newsletter.subscribe.sent",
    )
    .into_response())
}

fn settled(layout: Layout, link: LinkState) -> AppResult<MessagePage> {
    match link {
        LinkState::Done => Ok(message(
            layout,
            "newsletter.confirmed.heading",
            "newsletter.confirmed.already",
        )),
        LinkState::Expired => Err(AppError::Gone("newsletter.link.expired")),
        _ => Err(AppError::Missing("consent.link.unknown")),
    }
}

pub async fn confirm_form(
    State(state): State<AppState>,
    layout: Layout,
    Path(token): Path<String>,
) -> AppResult<MessagePage> {
    let mut conn = state.pool.acquire().await?;
    match subscriptions::link_state(&mut conn, &token).await? {
        LinkState::Valid(request) => {
            let layout = match crate::web::Lang::parse(&request.language) {
                Some(l) => layout.speaking(l),
                None => layout,
            };
            Ok(MessagePage {
                layout,
                heading: "newsletter.confirm.heading",
                message: "newsletter.confirm.intro",
                button: "newsletter.confirm.submit",
            })
        }
        other => settled(layout, other),
    }
}

pub async fn confirm(
    State(state): State<AppState>,
    layout: Layout,
    Path(token): Path<String>,
) -> AppResult<MessagePage> {
    let mut tx = state.pool.begin().await?;
    let confirmed = subscriptions::confirm(&mut tx, &state.config, &token)
        .await
        .map_err(|e| AppError::Unexpected(e.into()))?;
    tx.commit().await?;
    match confirmed {
        Some((_, lang)) => Ok(message(
            layout.speaking(lang),
            "newsletter.confirmed.heading",
            "newsletter.confirmed.done",
        )),
        None => {
            let mut conn = state.pool.acquire().await?;
            settled(layout, subscriptions::link_state(&mut conn, &token).await?)
        }
    }
}

async fn unsubscribe_target(
    state: &AppState,
    token: &str,
    layout: Layout,
) -> AppResult<(Uuid, Layout)> {
    let mut conn = state.pool.acquire().await?;
    let contact_id = subscriptions::unsubscribe_link(&mut conn, token)
        .await?
        .ok_or(AppError::Missing("newsletter.unsubscribe.unknown"))?;
    let layout = match customers::find_contact(&mut conn, contact_id).await? {
        Some(c) => layout.speaking(c.language),
        None => layout,
    };
    Ok((contact_id, layout))
}

/// The page behind the link in every newsletter: one button.
pub async fn unsubscribe_form(
    State(state): State<AppState>,
    layout: Layout,
    Path(token): Path<String>,
) -> AppResult<MessagePage> {
    let (_, layout) = unsubscribe_target(&state, &token, layout).await?;
    Ok(MessagePage {
        layout,
        heading: "newsletter.unsubscribe.heading",
        message: "newsletter.unsubscribe.intro",
        button: "newsletter.unsubscribe.submit",
    })
}

/// The button, and a mail program's one-click unsubscribe (RFC 8058): a POST with the
/// body `List-Unsubscribe=One-Click`, with no cookie, session or CSRF token — the
/// link's secret is what authorises it. Answers 200 however often it is sent.
pub async fn unsubscribe(
    State(state): State<AppState>,
    layout: Layout,
    Path(token): Path<String>,
    body: axum::body::Bytes,
) -> AppResult<MessagePage> {
    let (contact_id, layout) = unsubscribe_target(&state, &token, layout).await?;
    // Whatever the body's encoding: only the page's own button says where it came from.
    let from_page = body.windows(9).any(|w| w == b"from=page");
    let how = if from_page {
        Withdrawal::Link
    } else {
        Withdrawal::OneClick
    };
    let mut tx = state.pool.begin().await?;
    subscriptions::unsubscribe(
        &mut tx,
        contact_id,
        how,
        &Actor::Subject(contact_id.to_string()),
    )
    .await?;
    tx.commit().await?;
    Ok(message(
        layout,
        "newsletter.unsubscribed.heading",
        "newsletter.unsubscribed.done",
    ))
}
