//! Staff pages for people: the register, quarantine, communication log, erasure, the
//! five-year list and the information mailing to legacy contacts.

use askama::Template;
use askama_web::WebTemplate;
use axum::{
    Form,
    extract::{Path, Query, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use time::{Duration, OffsetDateTime};
use tower_sessions::Session;
use uuid::Uuid;

use super::{
    COMMUNICATION_KINDS, CONTACT_LANGUAGES, Company, Contact, ContactFields, Source, Status,
    address, companies,
    contacts::{
        self, ConsentRecord, ContactError, Erasure, NewsletterEvent, PeopleQuery, PersonRow,
    },
    legacy,
    pages::next_page,
    parse_id, quarantine, years_after, years_before,
};
use crate::{
    audit::Actor,
    auth::CurrentUser,
    domain::{Email, PersonName, Phone, optional, short_text},
    error::{AppError, AppResult},
    state::AppState,
    users::{self, User},
    web::{
        Lang, Layout,
        access::{Capabilities, Capability},
        day, flash,
        form::{Errors, cursor, parse_cursor, parse_day},
        see_other,
    },
};

#[derive(Debug, Default, Deserialize)]
pub struct ListParams {
    #[serde(default)]
    q: String,
    #[serde(default)]
    status: String,
    after: Option<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "people/list.html")]
pub struct ListPage {
    layout: Layout,
    params: ListParams,
    rows: Vec<PersonRow>,
    next: Option<String>,
    is_admin: bool,
}

pub async fn list(
    State(state): State<AppState>,
    layout: Layout,
    Query(mut params): Query<ListParams>,
) -> AppResult<ListPage> {
    if !matches!(
        params.status.as_str(),
        "" | "quarantine" | "legacy" | "active"
    ) {
        params.status.clear();
    }
    let mut conn = state.pool.acquire().await?;
    let mut rows = contacts::list(
        &mut conn,
        &PeopleQuery {
            search: params.q.trim(),
            status: &params.status,
            company: None,
            after: parse_cursor(params.after.as_deref()),
            limit: 51,
        },
    )
    .await?;
    let next = next_page(&mut rows, |r| cursor(&r.sort_key, r.id)).map(|after| {
        serde_urlencoded::to_string([
            ("q", params.q.as_str()),
            ("status", &params.status),
            ("after", &after),
        ])
        .unwrap_or_default()
    });
    Ok(ListPage {
        is_admin: layout.can(Capability::Administration),
        layout,
        params,
        rows,
        next,
    })
}

/// The person form as typed.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct ContactForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    department: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    phone: String,
    #[serde(default)]
    language: String,
    #[serde(default)]
    source: String,
    #[serde(default)]
    met_by: String,
    /// Ticked to add someone who once asked to be erased.
    #[serde(default)]
    confirm_erased: Option<String>,
}

impl ContactForm {
    fn from_contact(c: &Contact) -> Self {
        Self {
            name: c.name.clone(),
            department: c.department.clone(),
            title: c.title.clone(),
            email: c.email.clone(),
            phone: c.phone.clone(),
            language: c.language.code().into(),
            source: c.source.as_str().into(),
            met_by: c.met_by.map(|id| id.to_string()).unwrap_or_default(),
            confirm_erased: None,
        }
    }

    fn parse(&self, staff: &[User], editing: Option<&Contact>) -> Result<ContactFields, Errors> {
        let mut errors = Errors::default();
        let name = errors.check("name", PersonName::parse(&self.name));
        let department = errors.check("department", short_text(&self.department, 200));
        let title = errors.check("title", short_text(&self.title, 200));
        let email = errors.check("email", Email::parse(&self.email));
        let phone = errors.check("phone", optional(&self.phone, Phone::parse));
        let language = errors.check(
            "language",
            Lang::parse(&self.language)
                .filter(|l| CONTACT_LANGUAGES.contains(l))
                .ok_or("field.choice.invalid"),
        );
        // An imported person keeps "import"; staff choose how they met someone.
        let source = Source::parse(&self.source).filter(|s| {
            Source::CHOSEN_BY_STAFF.contains(s) || editing.is_some_and(|c| c.source == *s)
        });
        let source = errors.check("source", source.ok_or("field.choice.invalid"));
        let met_by = if self.met_by.is_empty() {
            Some(None)
        } else {
            let found = parse_id(&self.met_by).filter(|id| staff.iter().any(|u| u.id == *id));
            errors.check("met_by", found.map(Some).ok_or("field.choice.invalid"))
        };
        match (
            name, department, title, email, phone, language, source, met_by,
        ) {
            (
                Some(name),
                Some(department),
                Some(title),
                Some(email),
                Some(phone),
                Some(language),
                Some(source),
                Some(met_by),
            ) if errors.is_empty() => Ok(ContactFields {
                name,
                department,
                title,
                email,
                phone,
                language,
                source,
                met_by,
            }),
            _ => Err(errors),
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "people/form.html")]
pub struct FormPage {
    layout: Layout,
    company: Company,
    contact: Option<Contact>,
    form: ContactForm,
    errors: Errors,
    staff: Vec<User>,
    /// When the address's owner asked to be erased, if they did: adding needs a tick.
    erased_on: Option<String>,
    languages: [Lang; 3],
    sources: Vec<Source>,
}

impl FormPage {
    async fn new(
        state: &AppState,
        layout: Layout,
        company: Company,
        contact: Option<Contact>,
        form: ContactForm,
    ) -> AppResult<Self> {
        let mut conn = state.pool.acquire().await?;
        let staff = staff(&mut conn).await?;
        let mut sources = Source::CHOSEN_BY_STAFF.to_vec();
        if let Some(c) = &contact
            && !sources.contains(&c.source)
        {
            sources.push(c.source);
        }
        Ok(Self {
            layout,
            company,
            contact,
            form,
            errors: Errors::default(),
            staff,
            erased_on: None,
            languages: CONTACT_LANGUAGES,
            sources,
        })
    }

    fn invalid(self) -> Response {
        (StatusCode::UNPROCESSABLE_ENTITY, self).into_response()
    }
}

async fn staff(conn: &mut sqlx::PgConnection) -> AppResult<Vec<User>> {
    Ok(users::list(conn)
        .await?
        .into_iter()
        .filter(|u| {
            u.is_active() && Capabilities::role_grants(u.role, Capability::CustomerRegister)
        })
        .collect())
}

async fn load_company(state: &AppState, id: &str) -> AppResult<Company> {
    let id = parse_id(id).ok_or(AppError::NotFound)?;
    let mut conn = state.pool.acquire().await?;
    companies::find(&mut conn, id)
        .await?
        .ok_or(AppError::NotFound)
}

/// What a new person's form may start with: details someone left on the website.
#[derive(Debug, Default, Deserialize)]
pub struct Prefill {
    #[serde(default)]
    name: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    phone: String,
    #[serde(default)]
    language: String,
}

pub async fn new_form(
    State(state): State<AppState>,
    layout: Layout,
    user: CurrentUser,
    Path(id): Path<String>,
    Query(prefill): Query<Prefill>,
) -> AppResult<FormPage> {
    let company = load_company(&state, &id).await?;
    let from_website = !prefill.email.is_empty();
    let language = Lang::parse(&prefill.language)
        .filter(|l| CONTACT_LANGUAGES.contains(l))
        .unwrap_or(Lang::En);
    let form = ContactForm {
        name: prefill.name,
        email: prefill.email,
        phone: prefill.phone,
        language: language.code().into(),
        source: if from_website {
            Source::Web.as_str().into()
        } else {
            String::new()
        },
        met_by: user.id.to_string(),
        ..ContactForm::default()
    };
    FormPage::new(&state, layout, company, None, form).await
}

/// Adds a person in quarantine and, in the same transaction, queues the mail that asks
/// them to confirm (R-CUST-11, R-CUST-12).
pub async fn create(
    State(state): State<AppState>,
    session: Session,
    user: CurrentUser,
    layout: Layout,
    Path(id): Path<String>,
    Form(form): Form<ContactForm>,
) -> AppResult<Response> {
    let company = load_company(&state, &id).await?;
    let mut page = FormPage::new(&state, layout, company, None, form.clone()).await?;
    let fields = match form.parse(&page.staff, None) {
        Ok(fields) => fields,
        Err(errors) => {
            page.errors = errors;
            return Ok(page.invalid());
        }
    };
    let mut tx = state.pool.begin().await?;
    if erased_unconfirmed(&mut tx, &state.config.keys, &fields, &form, &mut page).await? {
        return Ok(page.invalid());
    }
    let actor = Actor::User(user.id);
    let id = match contacts::create(
        &mut tx,
        page.company.id,
        &fields,
        Status::Quarantine,
        None,
        &actor,
    )
    .await
    {
        Ok(id) => id,
        Err(ContactError::EmailTaken) => {
            page.errors.add("email", "people.email_taken");
            return Ok(page.invalid());
        }
        Err(e) => return Err(e.into()),
    };
    let contact = contacts::find(&mut tx, id)
        .await?
        .ok_or(AppError::NotFound)?;
    quarantine::send_request(&mut tx, &state.config, &contact, false).await?;
    tx.commit().await?;
    flash::success(&session, "people.created").await?;
    Ok(see_other(&format!("/people/{id}")).into_response())
}

/// Whether the address belongs to someone who asked to be erased and the form has not
/// confirmed adding them again; then the page says so.
async fn erased_unconfirmed(
    conn: &mut sqlx::PgConnection,
    keys: &crate::keys::Keys,
    fields: &ContactFields,
    form: &ContactForm,
    page: &mut FormPage,
) -> AppResult<bool> {
    if let Some(erased_at) = contacts::suppressed_since(conn, keys, fields.email.as_str()).await?
        && form.confirm_erased.is_none()
    {
        page.erased_on = Some(day(&erased_at));
        page.errors.add("email", "people.erased_warning");
        return Ok(true);
    }
    Ok(false)
}

async fn load(state: &AppState, id: &str) -> AppResult<Contact> {
    let id = parse_id(id).ok_or(AppError::NotFound)?;
    let mut conn = state.pool.acquire().await?;
    contacts::find(&mut conn, id)
        .await?
        .ok_or(AppError::NotFound)
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct CommunicationForm {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    happened_on: String,
    #[serde(default)]
    note: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "people/show.html")]
pub struct ShowPage {
    layout: Layout,
    contact: Contact,
    communications: Vec<contacts::Communication>,
    consents: Vec<ConsentRecord>,
    newsletter: Vec<NewsletterEvent>,
    form: CommunicationForm,
    errors: Errors,
    kinds: [&'static str; 5],
    deleted_on: String,
    /// Where the newest consent request to a person in quarantine stands.
    consent_mail: Option<crate::mail::Delivery>,
}

impl ShowPage {
    async fn new(
        state: &AppState,
        layout: Layout,
        contact: Contact,
        form: CommunicationForm,
    ) -> AppResult<Self> {
        let mut conn = state.pool.acquire().await?;
        let deleted_on = match contact.status {
            Status::Quarantine => {
                contact.created_at + Duration::days(state.config.quarantine_days.into())
            }
            _ => years_after(contact.last_communication_at, state.config.inactivity_years),
        };
        Ok(Self {
            communications: contacts::communications(&mut conn, contact.id).await?,
            consents: contacts::consents(&mut conn, contact.id).await?,
            newsletter: contacts::newsletter_history(&mut conn, contact.id).await?,
            consent_mail: match contact.status {
                Status::Quarantine => {
                    crate::mail::last_delivery(
                        &mut conn,
                        contact.id,
                        &["consent_request", "consent_reminder"],
                    )
                    .await?
                }
                _ => None,
            },
            layout,
            contact,
            form,
            errors: Errors::default(),
            kinds: COMMUNICATION_KINDS,
            deleted_on: day(&deleted_on),
        })
    }
}

pub async fn show(
    State(state): State<AppState>,
    layout: Layout,
    Path(id): Path<String>,
) -> AppResult<ShowPage> {
    let contact = load(&state, &id).await?;
    let today = OffsetDateTime::now_utc().date();
    let form = CommunicationForm {
        kind: "call".into(),
        happened_on: today.to_string(),
        note: String::new(),
    };
    ShowPage::new(&state, layout, contact, form).await
}

/// Logging a communication keeps the person from the five-year sweep (R-CUST-7).
pub async fn log_communication(
    State(state): State<AppState>,
    session: Session,
    user: CurrentUser,
    layout: Layout,
    Path(id): Path<String>,
    Form(form): Form<CommunicationForm>,
) -> AppResult<Response> {
    let contact = load(&state, &id).await?;
    let mut errors = Errors::default();
    let kind = errors.check(
        "kind",
        COMMUNICATION_KINDS
            .iter()
            .find(|k| **k == form.kind)
            .ok_or("field.choice.invalid"),
    );
    let today = OffsetDateTime::now_utc().date();
    let happened_on = errors.check(
        "happened_on",
        parse_day(&form.happened_on).and_then(|d| {
            if d > today {
                Err("field.date.future")
            } else {
                Ok(d)
            }
        }),
    );
    let note = errors.check(
        "note",
        short_text(&form.note.replace(['\r', '\n'], " "), 1000),
    );
    let (Some(kind), Some(happened_on), Some(note)) = (kind, happened_on, note) else {
        let mut page = ShowPage::new(&state, layout, contact, form).await?;
        page.errors = errors;
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
    };
    let mut tx = state.pool.begin().await?;
    contacts::log_communication(&mut tx, contact.id, kind, happened_on, &note, user.id).await?;
    tx.commit().await?;
    flash::success(&session, "people.communication_logged").await?;
    Ok(see_other(&format!("/people/{}", contact.id)).into_response())
}

pub async fn edit_form(
    State(state): State<AppState>,
    layout: Layout,
    Path(id): Path<String>,
) -> AppResult<FormPage> {
    let contact = load(&state, &id).await?;
    let company = load_company(&state, &contact.company_id.to_string()).await?;
    let form = ContactForm::from_contact(&contact);
    FormPage::new(&state, layout, company, Some(contact), form).await
}

pub async fn update(
    State(state): State<AppState>,
    session: Session,
    user: CurrentUser,
    layout: Layout,
    Path(id): Path<String>,
    Form(form): Form<ContactForm>,
) -> AppResult<Response> {
    let contact = load(&state, &id).await?;
    let company = load_company(&state, &contact.company_id.to_string()).await?;
    let mut page =
        FormPage::new(&state, layout, company, Some(contact.clone()), form.clone()).await?;
    let fields = match form.parse(&page.staff, Some(&contact)) {
        Ok(fields) => fields,
        Err(errors) => {
            page.errors = errors;
            return Ok(page.invalid());
        }
    };
    let mut tx = state.pool.begin().await?;
    let new_address = !contact.email.eq_ignore_ascii_case(fields.email.as_str());
    if new_address
        && erased_unconfirmed(&mut tx, &state.config.keys, &fields, &form, &mut page).await?
    {
        return Ok(page.invalid());
    }
    let actor = Actor::User(user.id);
    let mut saved = "people.saved";
    match contacts::update(&mut tx, &contact, &fields, &actor).await {
        Ok(_) if new_address => {
            let updated = contacts::find(&mut tx, contact.id)
                .await?
                .ok_or(AppError::NotFound)?;
            if contact.status == Status::Quarantine {
                // The links went to the old address: only the new one may confirm.
                quarantine::restart(&mut tx, &state.config, &updated).await?;
            } else {
                // No mail goes to an address its owner has not confirmed.
                address::request_confirmation(&mut tx, &state.config, &updated, &actor).await?;
                saved = "people.saved_address_pending";
            }
        }
        Ok(_) => {}
        Err(ContactError::EmailTaken) => {
            page.errors.add("email", "people.email_taken");
            return Ok(page.invalid());
        }
        Err(e) => return Err(e.into()),
    }
    tx.commit().await?;
    flash::success(&session, saved).await?;
    Ok(see_other(&format!("/people/{}", contact.id)).into_response())
}

/// Mails a new link to an address that waits for its owner's confirmation.
pub async fn resend_address_confirmation(
    State(state): State<AppState>,
    session: Session,
    user: CurrentUser,
    Path(id): Path<String>,
) -> AppResult<Response> {
    let contact = load(&state, &id).await?;
    if contact.mailable() {
        flash::success(&session, "people.address_already_confirmed").await?;
    } else {
        let mut tx = state.pool.begin().await?;
        address::request_confirmation(&mut tx, &state.config, &contact, &Actor::User(user.id))
            .await?;
        tx.commit().await?;
        flash::success(&session, "people.address_confirmation_sent").await?;
    }
    Ok(see_other(&format!("/people/{}", contact.id)).into_response())
}

#[derive(Template, WebTemplate)]
#[template(path = "people/delete.html")]
pub struct DeletePage {
    layout: Layout,
    contact: Contact,
}

pub async fn confirm_delete(
    State(state): State<AppState>,
    layout: Layout,
    Path(id): Path<String>,
) -> AppResult<DeletePage> {
    let contact = load(&state, &id).await?;
    Ok(DeletePage { layout, contact })
}

/// Erasure on the person's request (R-CUST-10): everything about them goes; a salted hash
/// of the address stays so they are not added again unawares.
pub async fn delete(
    State(state): State<AppState>,
    session: Session,
    user: CurrentUser,
    Path(id): Path<String>,
) -> AppResult<Response> {
    let contact = load(&state, &id).await?;
    let mut tx = state.pool.begin().await?;
    contacts::delete_contact(
        &mut tx,
        contact.id,
        &Actor::User(user.id),
        Erasure::OnRequest(&state.config),
    )
    .await?;
    tx.commit().await?;
    flash::success(&session, "people.deleted").await?;
    Ok(see_other(&format!("/customers/{}", contact.company_id)).into_response())
}

pub struct DueRow {
    pub id: Uuid,
    pub name: String,
    pub company: String,
    pub last: String,
    pub deleted_on: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "people/due.html")]
pub struct DuePage {
    layout: Layout,
    rows: Vec<DueRow>,
    years: u32,
}

/// Who the five-year sweep deletes in the next 30 days (R-CUST-7).
pub async fn due(State(state): State<AppState>, layout: Layout) -> AppResult<DuePage> {
    let now = OffsetDateTime::now_utc();
    let years = state.config.inactivity_years;
    let mut conn = state.pool.acquire().await?;
    let rows = contacts::due_for_deletion(
        &mut conn,
        years_before(now, years),
        years_before(now + Duration::days(30), years),
    )
    .await?
    .into_iter()
    .map(|(id, name, company, last)| DueRow {
        id,
        name,
        company,
        last: day(&last),
        deleted_on: day(&years_after(last, years)),
    })
    .collect();
    Ok(DuePage {
        layout,
        rows,
        years,
    })
}

#[derive(Template, WebTemplate)]
#[template(path = "people/legacy.html")]
pub struct LegacyPage {
    layout: Layout,
    rows: Vec<legacy::LegacyRow>,
    uninformed: usize,
    /// The latest information mailing and how far it has come.
    mailing: Option<(uuid::Uuid, crate::mail::Progress)>,
}

pub async fn legacy(State(state): State<AppState>, layout: Layout) -> AppResult<LegacyPage> {
    let mut conn = state.pool.acquire().await?;
    let rows = legacy::list(&mut conn).await?;
    let uninformed = rows
        .iter()
        .filter(|r| r.informed_at.is_none() && r.address_confirmed)
        .count();
    Ok(LegacyPage {
        mailing: crate::mail::latest_batch(&mut conn, "legacy_information").await?,
        layout,
        rows,
        uninformed,
    })
}

/// Sends the information mailing to every legacy contact not yet informed (R-CUST-13).
pub async fn inform_legacy(
    State(state): State<AppState>,
    session: Session,
    user: CurrentUser,
) -> AppResult<Response> {
    let sent = legacy::inform_all(&state.pool, &state.config, &Actor::User(user.id)).await?;
    let message = if sent == 0 {
        "legacy.none_to_inform"
    } else {
        "legacy.informed"
    };
    flash::success(&session, message).await?;
    Ok(see_other("/people/legacy").into_response())
}
