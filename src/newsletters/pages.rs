//! Staff pages: campaigns (the administrator writes and sends them, employees see them),
//! who unsubscribed, and the newsletter buttons on a person's page.

use std::num::NonZeroU32;

use askama::Template;
use askama_web::WebTemplate;
use axum::{
    Form,
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use time::{OffsetDateTime, PrimitiveDateTime, macros::format_description};
use tower_sessions::Session;
use uuid::Uuid;

use super::{
    campaigns::{self, Campaign, CampaignFields},
    subscriptions::{self, Method, Unsubscribed, Withdrawal},
};
use crate::{
    audit::Actor,
    auth::CurrentUser,
    customers::{self, BusinessArea, CONTACT_LANGUAGES},
    error::{AppError, AppResult},
    mail::{self, Mail},
    state::AppState,
    web::{Lang, Layout, flash, form::Errors, see_other},
};

#[derive(Clone, Debug, Default)]
pub struct CampaignForm {
    subject: String,
    body: String,
    areas: Vec<String>,
    languages: Vec<String>,
    per_second: String,
}

impl CampaignForm {
    fn from_pairs(pairs: Vec<(String, String)>) -> Self {
        let mut form = Self {
            per_second: "10".into(),
            ..Self::default()
        };
        for (k, v) in pairs {
            match k.as_str() {
                "subject" => form.subject = v,
                "body" => form.body = v,
                "area" => form.areas.push(v),
                "language" => form.languages.push(v),
                "per_second" => form.per_second = v,
                _ => {}
            }
        }
        form
    }

    fn has_area(&self, id: &Uuid) -> bool {
        self.areas.iter().any(|a| *a == id.to_string())
    }

    fn has_language(&self, lang: &Lang) -> bool {
        self.languages.iter().any(|l| l == lang.code())
    }

    fn parse(&self, errors: &mut Errors) -> Option<CampaignFields> {
        let subject = campaigns::one_line(&self.subject);
        let subject = errors.check(
            "subject",
            match subject.chars().count() {
                0 => Err("field.required"),
                n if n > campaigns::MAX_SUBJECT => Err("field.too_long"),
                _ => Ok(subject),
            },
        );
        let body = errors.check(
            "body",
            match self.body.trim().chars().count() {
                0 => Err("field.required"),
                n if n > campaigns::MAX_BODY => Err("field.too_long"),
                _ => Ok(self.body.replace("\r\n", "\n")),
            },
        );
        let areas: Option<Vec<Uuid>> = self.areas.iter().map(|a| a.parse().ok()).collect();
        let areas = errors.check("area", areas.ok_or("field.choice.invalid"));
        let languages: Option<Vec<Lang>> = self
            .languages
            .iter()
            .map(|l| Lang::parse(l).filter(|l| CONTACT_LANGUAGES.contains(l)))
            .collect();
        let languages = errors.check("language", languages.ok_or("field.choice.invalid"));
        let per_second = errors.check(
            "per_second",
            match self.per_second.trim() {
                "" | "0" => Ok(None),
                n => n
                    .parse::<u32>()
                    .ok()
                    .filter(|n| *n <= 10_000)
                    .and_then(NonZeroU32::new)
                    .map(Some)
                    .ok_or("newsletter.campaign.rate.invalid"),
            },
        );
        Some(CampaignFields {
            subject: subject?,
            body: body?,
            business_area_ids: areas?,
            languages: languages?,
            per_second: per_second?,
        })
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "newsletters/campaigns.html")]
pub struct ListPage {
    layout: Layout,
    campaigns: Vec<Campaign>,
}

pub async fn list(State(state): State<AppState>, layout: Layout) -> AppResult<ListPage> {
    let mut conn = state.pool.acquire().await?;
    Ok(ListPage {
        campaigns: campaigns::list(&mut conn).await?,
        layout,
    })
}

#[derive(Template, WebTemplate)]
#[template(path = "newsletters/campaign_form.html")]
pub struct FormPage {
    layout: Layout,
    form: CampaignForm,
    areas: Vec<BusinessArea>,
    languages: [Lang; 3],
    errors: Errors,
}

async fn form_page(
    state: &AppState,
    layout: Layout,
    form: CampaignForm,
    errors: Errors,
) -> AppResult<FormPage> {
    let mut conn = state.pool.acquire().await?;
    Ok(FormPage {
        areas: customers::business_areas(&mut conn).await?,
        languages: CONTACT_LANGUAGES,
        layout,
        form,
        errors,
    })
}

pub async fn new_form(State(state): State<AppState>, layout: Layout) -> AppResult<FormPage> {
    form_page(
        &state,
        layout,
        CampaignForm::from_pairs(Vec::new()),
        Errors::default(),
    )
    .await
}

pub async fn create(
    State(state): State<AppState>,
    user: CurrentUser,
    layout: Layout,
    Form(pairs): Form<Vec<(String, String)>>,
) -> AppResult<Response> {
    let form = CampaignForm::from_pairs(pairs);
    let mut errors = Errors::default();
    let Some(fields) = form.parse(&mut errors).filter(|_| errors.is_empty()) else {
        let page = form_page(&state, layout, form, errors).await?;
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
    };
    let mut tx = state.pool.begin().await?;
    let id = campaigns::create(&mut tx, &fields, user.id).await?;
    tx.commit().await?;
    Ok(see_other(&format!("/campaigns/{id}")).into_response())
}

#[derive(Template, WebTemplate)]
#[template(path = "newsletters/campaign.html")]
pub struct ShowPage {
    layout: Layout,
    campaign: Campaign,
    html: String,
    text: String,
    audience: usize,
    area_names: Vec<String>,
    progress: Option<mail::Progress>,
}

async fn load(state: &AppState, id: &str) -> AppResult<Campaign> {
    let id: Uuid = id.parse().map_err(|_| AppError::NotFound)?;
    let mut conn = state.pool.acquire().await?;
    campaigns::find(&mut conn, id)
        .await?
        .ok_or(AppError::NotFound)
}

pub async fn show(
    State(state): State<AppState>,
    layout: Layout,
    Path(id): Path<String>,
) -> AppResult<ShowPage> {
    let campaign = load(&state, &id).await?;
    let mut conn = state.pool.acquire().await?;
    let (html, text) = campaigns::render(&campaign.body);
    let audience = campaigns::audience(&mut conn, &campaign).await?.len();
    let areas = customers::business_areas(&mut conn).await?;
    let area_names = areas
        .iter()
        .filter(|a| campaign.business_area_ids.contains(&a.id))
        .map(|a| a.name(layout.lang()).to_string())
        .collect();
    let progress = match campaign.batch_id {
        Some(batch) => mail::progress(&mut conn, batch).await?,
        None => None,
    };
    Ok(ShowPage {
        layout,
        campaign,
        html,
        text,
        audience,
        area_names,
        progress,
    })
}

/// The campaign as a subscriber would get it, to the administrator's own address.
pub async fn test_mail(
    State(state): State<AppState>,
    session: Session,
    user: CurrentUser,
    Path(id): Path<String>,
) -> AppResult<Response> {
    let campaign = load(&state, &id).await?;
    let (html, text) = campaigns::render(&campaign.body);
    let link = state.config.absolute_url("/unsubscribe/test");
    let lang = user.language.unwrap_or(Lang::Sv);
    let mail: Mail = campaigns::compose(
        &state.config,
        &campaign,
        &html,
        &text,
        &user.email,
        lang,
        &link,
    )?;
    let mut tx = state.pool.begin().await?;
    mail::enqueue(&mut tx, &mail).await?;
    tx.commit().await?;
    flash::success(&session, "newsletter.campaign.test_sent").await?;
    Ok(see_other(&format!("/campaigns/{}", campaign.id)).into_response())
}

#[derive(Deserialize)]
pub struct SendForm {
    #[serde(default)]
    send_at: String,
}

/// A time typed as `2026-12-01T09:30` (UTC).
fn parse_time(input: &str) -> Result<OffsetDateTime, &'static str> {
    let input = input.trim();
    let with_seconds = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    let without = format_description!("[year]-[month]-[day]T[hour]:[minute]");
    PrimitiveDateTime::parse(input, without)
        .or_else(|_| PrimitiveDateTime::parse(input, with_seconds))
        .map(PrimitiveDateTime::assume_utc)
        .map_err(|_| "field.datetime.invalid")
}

/// Sends now, or at the time given.
pub async fn send(
    State(state): State<AppState>,
    session: Session,
    user: CurrentUser,
    Path(id): Path<String>,
    Form(form): Form<SendForm>,
) -> AppResult<Response> {
    let campaign = load(&state, &id).await?;
    let actor = Actor::User(user.id);
    let back = see_other(&format!("/campaigns/{}", campaign.id)).into_response();
    let mut tx = state.pool.begin().await?;
    if !form.send_at.trim().is_empty() {
        let at = parse_time(&form.send_at).map_err(AppError::BadRequest)?;
        if at <= OffsetDateTime::now_utc() {
            return Err(AppError::BadRequest("newsletter.campaign.send_at.past"));
        }
        campaigns::schedule(&mut tx, campaign.id, Some(at), &actor).await?;
        tx.commit().await?;
        flash::success(&session, "newsletter.campaign.scheduled").await?;
        return Ok(back);
    }
    let started = campaigns::start(&mut tx, &state.config, campaign.id, &actor)
        .await
        .map_err(AppError::Unexpected)?;
    tx.commit().await?;
    let key = match started {
        Some(_) => "newsletter.campaign.started",
        None => "newsletter.campaign.already_started",
    };
    flash::success(&session, key).await?;
    Ok(back)
}

async fn control(
    state: &AppState,
    session: &Session,
    user: &CurrentUser,
    id: &str,
    what: &str,
) -> AppResult<Response> {
    let campaign = load(state, id).await?;
    let actor = Actor::User(user.id);
    let mut tx = state.pool.begin().await?;
    let key = match what {
        "pause" => {
            campaigns::pause(&mut tx, &campaign, true, &actor).await?;
            "newsletter.campaign.paused"
        }
        "resume" => {
            campaigns::pause(&mut tx, &campaign, false, &actor).await?;
            "newsletter.campaign.resumed"
        }
        "unschedule" => {
            campaigns::schedule(&mut tx, campaign.id, None, &actor).await?;
            "newsletter.campaign.unscheduled"
        }
        _ => {
            campaigns::cancel(&mut tx, &campaign, &actor).await?;
            "newsletter.campaign.cancelled"
        }
    };
    tx.commit().await?;
    flash::success(session, key).await?;
    Ok(see_other(&format!("/campaigns/{}", campaign.id)).into_response())
}

pub async fn pause(
    State(state): State<AppState>,
    session: Session,
    user: CurrentUser,
    Path(id): Path<String>,
) -> AppResult<Response> {
    control(&state, &session, &user, &id, "pause").await
}

pub async fn resume(
    State(state): State<AppState>,
    session: Session,
    user: CurrentUser,
    Path(id): Path<String>,
) -> AppResult<Response> {
    control(&state, &session, &user, &id, "resume").await
}

pub async fn unschedule(
    State(state): State<AppState>,
    session: Session,
    user: CurrentUser,
    Path(id): Path<String>,
) -> AppResult<Response> {
    control(&state, &session, &user, &id, "unschedule").await
}

pub async fn cancel(
    State(state): State<AppState>,
    session: Session,
    user: CurrentUser,
    Path(id): Path<String>,
) -> AppResult<Response> {
    control(&state, &session, &user, &id, "cancel").await
}

#[derive(Template, WebTemplate)]
#[template(path = "newsletters/unsubscribed.html")]
pub struct UnsubscribedPage {
    layout: Layout,
    rows: Vec<Unsubscribed>,
}

/// Who unsubscribed, and when (R-CUST-8).
pub async fn unsubscribed(
    State(state): State<AppState>,
    layout: Layout,
) -> AppResult<UnsubscribedPage> {
    let mut conn = state.pool.acquire().await?;
    Ok(UnsubscribedPage {
        rows: subscriptions::unsubscribed(&mut conn).await?,
        layout,
    })
}

async fn person(state: &AppState, id: &str) -> AppResult<customers::Contact> {
    let id: Uuid = id.parse().map_err(|_| AppError::NotFound)?;
    let mut conn = state.pool.acquire().await?;
    customers::find_contact(&mut conn, id)
        .await?
        .ok_or(AppError::NotFound)
}

#[derive(Deserialize)]
pub struct PhoneForm {
    #[serde(default)]
    agreed: Option<String>,
}

/// Staff record an opt-in the person gave by phone, naming who took it.
pub async fn phone_opt_in(
    State(state): State<AppState>,
    session: Session,
    user: CurrentUser,
    Path(id): Path<String>,
    Form(form): Form<PhoneForm>,
) -> AppResult<Response> {
    let contact = person(&state, &id).await?;
    let back = see_other(&format!("/people/{}", contact.id)).into_response();
    if form.agreed.is_none() {
        flash::error(&session, "newsletter.phone.not_agreed").await?;
        return Ok(back);
    }
    let mut tx = state.pool.begin().await?;
    subscriptions::subscribe(
        &mut tx,
        &state.config,
        contact.id,
        contact.language,
        Method::Phone(user.id),
        &Actor::User(user.id),
    )
    .await?;
    tx.commit().await?;
    flash::success(&session, "newsletter.phone.recorded").await?;
    Ok(back)
}

/// Staff unsubscribe someone who asked by phone or mail.
pub async fn staff_unsubscribe(
    State(state): State<AppState>,
    session: Session,
    user: CurrentUser,
    Path(id): Path<String>,
) -> AppResult<Response> {
    let contact = person(&state, &id).await?;
    let mut tx = state.pool.begin().await?;
    subscriptions::unsubscribe(
        &mut tx,
        contact.id,
        Withdrawal::Staff(user.id),
        &Actor::User(user.id),
    )
    .await?;
    tx.commit().await?;
    flash::success(&session, "newsletter.staff.unsubscribed").await?;
    Ok(see_other(&format!("/people/{}", contact.id)).into_response())
}

/// Staff say a bouncing address works again.
pub async fn clear_bounce(
    State(state): State<AppState>,
    session: Session,
    user: CurrentUser,
    Path(id): Path<String>,
) -> AppResult<Response> {
    let contact = person(&state, &id).await?;
    let mut tx = state.pool.begin().await?;
    if mail::clear_bounce(&mut tx, contact.id).await? {
        crate::audit::record(
            &mut tx,
            crate::audit::Event::new(
                &Actor::User(user.id),
                "contact.bounce_cleared",
                "contact",
                Some(contact.id.to_string()),
            ),
        )
        .await?;
    }
    tx.commit().await?;
    flash::success(&session, "newsletter.bounce.cleared").await?;
    Ok(see_other(&format!("/people/{}", contact.id)).into_response())
}

#[derive(Template, WebTemplate)]
#[template(path = "newsletters/person.html")]
pub struct PersonPage {
    layout: Layout,
    contact: customers::Contact,
    record: super::NewsletterRecord,
}

/// A person's whole newsletter history: consents, events, campaigns, bouncing.
pub async fn person_history(
    State(state): State<AppState>,
    layout: Layout,
    Path(id): Path<String>,
) -> AppResult<PersonPage> {
    let contact = person(&state, &id).await?;
    let mut conn = state.pool.acquire().await?;
    let record = super::held_about(&mut conn, contact.id).await?;
    Ok(PersonPage {
        layout,
        contact,
        record,
    })
}
