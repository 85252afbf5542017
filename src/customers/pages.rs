//! Staff pages for companies and business areas.

use askama::Template;
use askama_web::WebTemplate;
use axum::{
    Form,
    extract::{Multipart, Path, Query, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use tower_sessions::Session;
use uuid::Uuid;

use super::{
    BusinessArea, Company, CompanyFields, companies,
    contacts::{self, PeopleQuery, PersonRow},
    parse_id,
    transfer::{self, COLUMNS, ImportOptions, ImportReport},
};
use crate::{
    audit::Actor,
    auth::CurrentUser,
    domain::{Email, Phone, WebUrl, optional, short_text},
    error::{AppError, AppResult},
    state::AppState,
    web::{
        Layout,
        access::Capability,
        flash,
        form::{Errors, cursor, parse_cursor},
        see_other,
    },
};

const PAGE: i64 = 50;

#[derive(Debug, Default, Deserialize)]
pub struct ListParams {
    #[serde(default)]
    q: String,
    #[serde(default)]
    area: String,
    #[serde(default)]
    sort: String,
    after: Option<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "customers/list.html")]
pub struct ListPage {
    layout: Layout,
    params: ListParams,
    areas: Vec<BusinessArea>,
    rows: Vec<companies::CompanyRow>,
    next: Option<String>,
    is_admin: bool,
}

impl ListPage {
    fn area_name(&self, id: &Option<Uuid>) -> &str {
        id.and_then(|id| self.areas.iter().find(|a| a.id == id))
            .map_or("", |a| a.name(self.layout.lang()))
    }
}

pub async fn list(
    State(state): State<AppState>,
    layout: Layout,
    Query(params): Query<ListParams>,
) -> AppResult<ListPage> {
    let mut conn = state.pool.acquire().await?;
    let areas = companies::business_areas(&mut conn).await?;
    let area = parse_id(&params.area);
    let mut rows = companies::list(
        &mut conn,
        &companies::ListQuery {
            search: params.q.trim(),
            area,
            sort: companies::Sort::parse(&params.sort),
            after: parse_cursor(params.after.as_deref()),
            limit: PAGE + 1,
        },
    )
    .await?;
    let next = next_page(&mut rows, |r| cursor(&r.sort_key, r.id)).map(|after| {
        serde_urlencoded::to_string([
            ("q", params.q.as_str()),
            ("area", &params.area),
            ("sort", &params.sort),
            ("after", &after),
        ])
        .unwrap_or_default()
    });
    Ok(ListPage {
        is_admin: layout.can(Capability::Administration),
        layout,
        params,
        areas,
        rows,
        next,
    })
}

/// Trims the one extra row fetched and returns the cursor after the last shown.
pub fn next_page<T>(rows: &mut Vec<T>, cursor_of: impl Fn(&T) -> String) -> Option<String> {
    if rows.len() as i64 > PAGE {
        rows.truncate(PAGE as usize);
        rows.last().map(cursor_of)
    } else {
        None
    }
}

/// The company form as typed.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct CompanyForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    address: String,
    #[serde(default)]
    website: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    phone: String,
    #[serde(default)]
    business_area: String,
}

impl CompanyForm {
    fn from_company(c: &Company) -> Self {
        Self {
            name: c.name.clone(),
            address: c.address.clone(),
            website: c.website.clone(),
            email: c.email.clone(),
            phone: c.phone.clone(),
            business_area: c
                .business_area_id
                .map(|id| id.to_string())
                .unwrap_or_default(),
        }
    }

    fn parse(&self, areas: &[BusinessArea]) -> Result<CompanyFields, Errors> {
        let mut errors = Errors::default();
        let name = errors.check("name", required_text(&self.name, 200));
        let address = errors.check("address", multiline_text(&self.address, 500));
        let website = errors.check("website", optional(&self.website, WebUrl::parse));
        let email = errors.check("email", optional(&self.email, Email::parse));
        let phone = errors.check("phone", optional(&self.phone, Phone::parse));
        let business_area = if self.business_area.is_empty() {
            Some(None)
        } else {
            let found =
                parse_id(&self.business_area).filter(|id| areas.iter().any(|a| a.id == *id));
            errors.check(
                "business_area",
                found.map(Some).ok_or("field.choice.invalid"),
            )
        };
        match (name, address, website, email, phone, business_area) {
            (
                Some(name),
                Some(address),
                Some(website),
                Some(email),
                Some(phone),
                Some(business_area_id),
            ) if errors.is_empty() => Ok(CompanyFields {
                name,
                address,
                website,
                email,
                phone,
                business_area_id,
            }),
            _ => Err(errors),
        }
    }
}

pub fn required_text(input: &str, max: usize) -> Result<String, &'static str> {
    let value = short_text(input, max)?;
    if value.is_empty() {
        return Err("field.required");
    }
    Ok(value)
}

/// Text that may span lines (an address).
pub(super) fn multiline_text(input: &str, max: usize) -> Result<String, &'static str> {
    let value = input.trim().replace("\r\n", "\n");
    if value.chars().count() > max {
        return Err("field.too_long");
    }
    if value.chars().any(|c| c.is_control() && c != '\n') {
        return Err("field.invalid_characters");
    }
    Ok(value)
}

#[derive(Template, WebTemplate)]
#[template(path = "customers/form.html")]
pub struct FormPage {
    layout: Layout,
    company: Option<Company>,
    form: CompanyForm,
    errors: Errors,
    areas: Vec<BusinessArea>,
}

impl FormPage {
    /// The form again with what was typed and why it was refused (422).
    fn invalid(
        layout: Layout,
        company: Option<Company>,
        form: CompanyForm,
        errors: Errors,
        areas: Vec<BusinessArea>,
    ) -> Response {
        let page = FormPage {
            layout,
            company,
            form,
            errors,
            areas,
        };
        (StatusCode::UNPROCESSABLE_ENTITY, page).into_response()
    }

    async fn blank(state: &AppState, layout: Layout, company: Option<Company>) -> AppResult<Self> {
        let mut conn = state.pool.acquire().await?;
        Ok(FormPage {
            layout,
            form: company
                .as_ref()
                .map(CompanyForm::from_company)
                .unwrap_or_default(),
            company,
            errors: Errors::default(),
            areas: companies::business_areas(&mut conn).await?,
        })
    }
}

pub async fn new_form(State(state): State<AppState>, layout: Layout) -> AppResult<FormPage> {
    FormPage::blank(&state, layout, None).await
}

pub async fn create(
    State(state): State<AppState>,
    session: Session,
    user: CurrentUser,
    layout: Layout,
    Form(form): Form<CompanyForm>,
) -> AppResult<Response> {
    let mut tx = state.pool.begin().await?;
    let areas = companies::business_areas(&mut tx).await?;
    let fields = match form.parse(&areas) {
        Ok(fields) => fields,
        Err(errors) => {
            return Ok(FormPage::invalid(layout, None, form, errors, areas));
        }
    };
    let id = companies::create(&mut tx, &fields, &Actor::User(user.id)).await?;
    tx.commit().await?;
    flash::success(&session, "customers.created").await?;
    Ok(see_other(&format!("/customers/{id}")).into_response())
}

async fn load(state: &AppState, id: &str) -> AppResult<Company> {
    let id = parse_id(id).ok_or(AppError::NotFound)?;
    let mut conn = state.pool.acquire().await?;
    companies::find(&mut conn, id)
        .await?
        .ok_or(AppError::NotFound)
}

#[derive(Template, WebTemplate)]
#[template(path = "customers/show.html")]
pub struct ShowPage {
    layout: Layout,
    company: Company,
    area: String,
    people: Vec<PersonRow>,
}

pub async fn show(
    State(state): State<AppState>,
    layout: Layout,
    Path(id): Path<String>,
) -> AppResult<ShowPage> {
    let company = load(&state, &id).await?;
    let mut conn = state.pool.acquire().await?;
    let areas = companies::business_areas(&mut conn).await?;
    let area = company
        .business_area_id
        .and_then(|id| areas.iter().find(|a| a.id == id))
        .map(|a| a.name(layout.lang()).to_string())
        .unwrap_or_default();
    let mut people = Vec::new();
    for status in ["", "quarantine"] {
        people.extend(
            contacts::list(
                &mut conn,
                &PeopleQuery {
                    search: "",
                    status,
                    company: Some(company.id),
                    after: None,
                    limit: 1000,
                },
            )
            .await?,
        );
    }
    Ok(ShowPage {
        layout,
        company,
        area,
        people,
    })
}

pub async fn edit_form(
    State(state): State<AppState>,
    layout: Layout,
    Path(id): Path<String>,
) -> AppResult<FormPage> {
    let company = load(&state, &id).await?;
    FormPage::blank(&state, layout, Some(company)).await
}

pub async fn update(
    State(state): State<AppState>,
    session: Session,
    user: CurrentUser,
    layout: Layout,
    Path(id): Path<String>,
    Form(form): Form<CompanyForm>,
) -> AppResult<Response> {
    let company = load(&state, &id).await?;
    let mut tx = state.pool.begin().await?;
    let areas = companies::business_areas(&mut tx).await?;
    let fields = match form.parse(&areas) {
        Ok(fields) => fields,
        Err(errors) => {
            return Ok(FormPage::invalid(
                layout,
                Some(company),
                form,
                errors,
                areas,
            ));
        }
    };
    companies::update(&mut tx, &company, &fields, &Actor::User(user.id)).await?;
    tx.commit().await?;
    flash::success(&session, "customers.saved").await?;
    Ok(see_other(&format!("/customers/{}", company.id)).into_response())
}

#[derive(Template, WebTemplate)]
#[template(path = "customers/delete.html")]
pub struct DeletePage {
    layout: Layout,
    company: Company,
    people: i64,
}

pub async fn confirm_delete(
    State(state): State<AppState>,
    layout: Layout,
    Path(id): Path<String>,
) -> AppResult<DeletePage> {
    let company = load(&state, &id).await?;
    let mut conn = state.pool.acquire().await?;
    let people = companies::people_count(&mut conn, company.id).await?;
    Ok(DeletePage {
        layout,
        company,
        people,
    })
}

#[derive(Deserialize)]
pub struct DeleteForm {
    /// The number of people the confirmation page named: deleting more needs a new look.
    people: i64,
}

pub async fn delete(
    State(state): State<AppState>,
    session: Session,
    user: CurrentUser,
    Path(id): Path<String>,
    Form(form): Form<DeleteForm>,
) -> AppResult<Response> {
    let company = load(&state, &id).await?;
    let mut tx = state.pool.begin().await?;
    let deleted = companies::delete(
        &mut tx,
        company.id,
        form.people,
        &Actor::User(user.id),
        &state.config,
    )
    .await?;
    if deleted.is_none() {
        flash::error(&session, "customers.delete.changed").await?;
        return Ok(see_other(&format!("/customers/{}/delete", company.id)).into_response());
    }
    tx.commit().await?;
    flash::success(&session, "customers.deleted").await?;
    Ok(see_other("/customers").into_response())
}

#[derive(Template, WebTemplate)]
#[template(path = "customers/business_areas.html")]
pub struct AreasPage {
    layout: Layout,
    areas: Vec<BusinessArea>,
    error: Option<&'static str>,
}

pub async fn business_areas(State(state): State<AppState>, layout: Layout) -> AppResult<AreasPage> {
    let mut conn = state.pool.acquire().await?;
    Ok(AreasPage {
        layout,
        areas: companies::business_areas(&mut conn).await?,
        error: None,
    })
}

#[derive(Deserialize)]
pub struct AreaForm {
    #[serde(default)]
    id: String,
    #[serde(default)]
    name_sv: String,
    #[serde(default)]
    name_en: String,
}

pub async fn save_business_area(
    State(state): State<AppState>,
    session: Session,
    user: CurrentUser,
    layout: Layout,
    Form(form): Form<AreaForm>,
) -> AppResult<Response> {
    let mut tx = state.pool.begin().await?;
    let names = (
        required_text(&form.name_sv, 100),
        required_text(&form.name_en, 100),
    );
    let (Ok(name_sv), Ok(name_en)) = names else {
        let areas = companies::business_areas(&mut tx).await?;
        return Ok((
            StatusCode::UNPROCESSABLE_ENTITY,
            AreasPage {
                layout,
                areas,
                error: Some("business_areas.names_required"),
            },
        )
            .into_response());
    };
    let id = if form.id.is_empty() {
        None
    } else {
        Some(parse_id(&form.id).ok_or(AppError::NotFound)?)
    };
    companies::save_business_area(&mut tx, id, &name_sv, &name_en, &Actor::User(user.id))
        .await?
        .ok_or(AppError::NotFound)?;
    tx.commit().await?;
    flash::success(&session, "business_areas.saved").await?;
    Ok(see_other("/business-areas").into_response())
}

#[derive(Template, WebTemplate)]
#[template(path = "customers/import.html")]
pub struct ImportPage {
    layout: Layout,
    columns: [&'static str; COLUMNS.len()],
    report: Option<ImportReport>,
    dry_run: bool,
}

pub async fn import_form(layout: Layout) -> ImportPage {
    ImportPage {
        layout,
        columns: COLUMNS,
        report: None,
        dry_run: false,
    }
}

/// The administrator's import (R-CUST-13 legacy contacts, or new ones into quarantine).
pub async fn import_upload(
    State(state): State<AppState>,
    user: CurrentUser,
    layout: Layout,
    mut multipart: Multipart,
) -> AppResult<Response> {
    let (mut data, mut dry_run, mut confirm_erased) = (None, false, false);
    while let Some(field) = multipart
        .next_field()
        .await
        .map_err(|_| AppError::BadRequest("import.unreadable_upload"))?
    {
        match field.name() {
            Some("file") => {
                data = Some(
                    field
                        .bytes()
                        .await
                        .map_err(|_| AppError::BadRequest("import.unreadable_upload"))?,
                )
            }
            Some("dry_run") => dry_run = true,
            Some("confirm_erased") => confirm_erased = true,
            _ => {}
        }
    }
    let data = data.ok_or(AppError::BadRequest("import.unreadable_upload"))?;
    let mut conn = state.pool.acquire().await?;
    let options = ImportOptions {
        dry_run,
        confirm_erased,
        actor: &Actor::User(user.id),
        lang: layout.lang(),
    };
    let report = transfer::import(&mut conn, &state.config, &data, &options).await?;
    let status = if report.errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    Ok((
        status,
        ImportPage {
            layout,
            columns: COLUMNS,
            report: Some(report),
            dry_run,
        },
    )
        .into_response())
}
