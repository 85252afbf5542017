//! The breach log (GDPR Art. 33(5)), kept by the administrator: what happened, when it was
//! discovered, which registers and how many people, consequences, measures, and whether
//! and when the authority (within 72 hours of discovery) and the people were told.

use askama::Template;
use askama_web::WebTemplate;
use axum::{
    Form,
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use sqlx::PgConnection;
use time::{Duration, OffsetDateTime, PrimitiveDateTime};
use tower_sessions::Session;
use uuid::Uuid;

use crate::{
    audit::{self, Actor, Event},
    auth::CurrentUser,
    error::{AppError, AppResult},
    registers::RegisterId,
    state::AppState,
    web::{Layout, flash, form::Errors, see_other},
};

/// The authority must be told within this time of discovery (Art. 33(1)).
pub const DEADLINE: Duration = Duration::hours(72);
const ENTITY: &str = "breach";
const MAX_TEXT: usize = 8000;

pub struct Breach {
    pub id: Uuid,
    pub what: String,
    pub discovered_at: OffsetDateTime,
    pub registers: Vec<String>,
    pub people: Option<i32>,
    pub consequences: String,
    pub measures: String,
    pub authority_told_at: Option<OffsetDateTime>,
    pub authority_not_needed: Option<String>,
    pub people_told_at: Option<OffsetDateTime>,
    pub closed_at: Option<OffsetDateTime>,
}

impl Breach {
    pub fn deadline(&self) -> OffsetDateTime {
        self.discovered_at + DEADLINE
    }

    /// Still owes the authority a notification or the reason it needs none.
    pub fn unreported(&self) -> bool {
        self.authority_told_at.is_none() && self.authority_not_needed.is_none()
    }

    /// Whole minutes left to tell the authority (negative: late).
    pub fn minutes_left(&self) -> i64 {
        (self.deadline() - OffsetDateTime::now_utc()).whole_minutes()
    }

    /// The clock as text: `41 h 5 min`.
    pub fn clock(&self) -> String {
        let m = self.minutes_left().abs();
        format!("{} h {} min", m / 60, m % 60)
    }
}

pub async fn list_all(conn: &mut PgConnection) -> sqlx::Result<Vec<Breach>> {
    sqlx::query_as!(
        Breach,
        "SELECT id, what, discovered_at, registers, people, consequences, measures,
                authority_told_at, authority_not_needed, people_told_at, closed_at
         FROM breaches ORDER BY discovered_at DESC"
    )
    .fetch_all(conn)
    .await
}

async fn find(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<Option<Breach>> {
    sqlx::query_as!(
        Breach,
        "SELECT id, what, discovered_at, registers, people, consequences, measures,
                authority_told_at, authority_not_needed, people_told_at, closed_at
         FROM breaches WHERE id = $1",
        id
    )
    .fetch_optional(conn)
    .await
}

/// Open breaches the authority has not been told of, for the start page.
pub async fn unreported(conn: &mut PgConnection) -> sqlx::Result<i64> {
    sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM breaches
           WHERE closed_at IS NULL AND authority_told_at IS NULL AND authority_not_needed IS NULL"#
    )
    .fetch_one(conn)
    .await
}

/// The form as typed; moments as `YYYY-MM-DDTHH:MM` (UTC), as a datetime-local field sends.
#[derive(Default, Deserialize)]
pub struct BreachForm {
    #[serde(default)]
    what: String,
    #[serde(default)]
    discovered_at: String,
    /// One checkbox per register (`register_customers`, …).
    register_customers: Option<String>,
    register_personnel: Option<String>,
    register_chat: Option<String>,
    register_contact: Option<String>,
    #[serde(default)]
    people: String,
    #[serde(default)]
    consequences: String,
    #[serde(default)]
    measures: String,
    #[serde(default)]
    authority_told_at: String,
    #[serde(default)]
    authority_not_needed: String,
    #[serde(default)]
    people_told_at: String,
    #[serde(default)]
    closed: Option<String>,
}

impl BreachForm {
    fn of(b: &Breach) -> Self {
        let at = |t: Option<OffsetDateTime>| t.map(moment_value).unwrap_or_default();
        Self {
            what: b.what.clone(),
            discovered_at: moment_value(b.discovered_at),
            register_customers: has(b, RegisterId::Customers),
            register_personnel: has(b, RegisterId::Personnel),
            register_chat: has(b, RegisterId::Chat),
            register_contact: has(b, RegisterId::Contact),
            people: b.people.map(|n| n.to_string()).unwrap_or_default(),
            consequences: b.consequences.clone(),
            measures: b.measures.clone(),
            authority_told_at: at(b.authority_told_at),
            authority_not_needed: b.authority_not_needed.clone().unwrap_or_default(),
            people_told_at: at(b.people_told_at),
            closed: b.closed_at.map(|_| "on".into()),
        }
    }

    /// The registers ticked.
    pub fn registers(&self) -> Vec<RegisterId> {
        [
            (RegisterId::Customers, &self.register_customers),
            (RegisterId::Personnel, &self.register_personnel),
            (RegisterId::Chat, &self.register_chat),
            (RegisterId::Contact, &self.register_contact),
        ]
        .into_iter()
        .filter(|(_, on)| on.is_some())
        .map(|(r, _)| r)
        .collect()
    }

    pub fn has(&self, register: &RegisterId) -> bool {
        self.registers().contains(register)
    }
}

fn has(b: &Breach, register: RegisterId) -> Option<String> {
    b.registers
        .iter()
        .any(|r| r == register.as_str())
        .then(|| "on".into())
}

/// A moment as shown: `2026-11-30 11:46 UTC`.
pub fn moment_text<T: std::borrow::Borrow<OffsetDateTime>>(at: T) -> String {
    at.borrow()
        .format(time::macros::format_description!(
            "[year]-[month]-[day] [hour]:[minute] UTC"
        ))
        .unwrap_or_default()
}

fn moment_value(at: OffsetDateTime) -> String {
    at.format(time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]"
    ))
    .unwrap_or_default()
}

fn parse_moment(input: &str) -> Result<OffsetDateTime, &'static str> {
    let input = input.trim();
    let format = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]");
    PrimitiveDateTime::parse(input, format)
        .ok()
        .filter(|t| (1900..=9999).contains(&t.year()))
        .map(PrimitiveDateTime::assume_utc)
        .ok_or("breaches.moment.invalid")
}

fn optional_moment(
    errors: &mut Errors,
    field: &'static str,
    input: &str,
) -> Option<OffsetDateTime> {
    if input.trim().is_empty() {
        return None;
    }
    errors.check(field, parse_moment(input))
}

/// A breach as checked from the form.
struct Fields {
    what: String,
    discovered_at: OffsetDateTime,
    registers: Vec<String>,
    people: Option<i32>,
    consequences: String,
    measures: String,
    authority_told_at: Option<OffsetDateTime>,
    authority_not_needed: Option<String>,
    people_told_at: Option<OffsetDateTime>,
    closed: bool,
}

fn parse(form: &BreachForm) -> Result<Fields, Errors> {
    let mut errors = Errors::default();
    let long = |errors: &mut Errors, field: &'static str, value: &str| {
        if value.chars().count() > MAX_TEXT {
            errors.add(field, "breaches.too_long");
        }
        value.trim().to_string()
    };
    let what = long(&mut errors, "what", &form.what);
    if what.is_empty() {
        errors.add("what", "field.required");
    }
    let discovered_at = errors.check("discovered_at", parse_moment(&form.discovered_at));
    if discovered_at.is_some_and(|t| t > OffsetDateTime::now_utc() + Duration::minutes(5)) {
        errors.add("discovered_at", "breaches.moment.future");
    }
    let people = match form.people.trim() {
        "" => None,
        n => errors.check(
            "people",
            n.parse::<i32>()
                .ok()
                .filter(|n| *n >= 0)
                .ok_or("breaches.people.invalid"),
        ),
    };
    let consequences = long(&mut errors, "consequences", &form.consequences);
    let measures = long(&mut errors, "measures", &form.measures);
    let authority_told_at =
        optional_moment(&mut errors, "authority_told_at", &form.authority_told_at);
    let not_needed = long(
        &mut errors,
        "authority_not_needed",
        &form.authority_not_needed,
    );
    let people_told_at = optional_moment(&mut errors, "people_told_at", &form.people_told_at);
    match (discovered_at, errors.is_empty()) {
        (Some(discovered_at), true) => Ok(Fields {
            what,
            discovered_at,
            registers: form
                .registers()
                .iter()
                .map(|r| r.as_str().to_string())
                .collect(),
            people,
            consequences,
            measures,
            authority_told_at,
            authority_not_needed: (!not_needed.is_empty()).then_some(not_needed),
            people_told_at,
            closed: form.closed.is_some(),
        }),
        _ => Err(errors),
    }
}

const FIELDS: [&str; 10] = [
    "what",
    "discovered_at",
    "registers",
    "people",
    "consequences",
    "measures",
    "authority_told_at",
    "authority_not_needed",
    "people_told_at",
    "closed_at",
];

async fn save(
    conn: &mut PgConnection,
    id: Uuid,
    f: &Fields,
    user: Uuid,
    new: bool,
) -> sqlx::Result<bool> {
    let saved = sqlx::query!(
        "INSERT INTO breaches (id, what, discovered_at, registers, people, consequences, measures,
                               authority_told_at, authority_not_needed, people_told_at, closed_at, recorded_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, CASE WHEN $11 THEN now() END, $12)
         ON CONFLICT (id) DO UPDATE SET
             what = $2, discovered_at = $3, registers = $4, people = $5, consequences = $6,
             measures = $7, authority_told_at = $8, authority_not_needed = $9, people_told_at = $10,
             closed_at = CASE WHEN $11 THEN coalesce(breaches.closed_at, now()) END
         WHERE NOT $13",
        id,
        f.what,
        f.discovered_at,
        &f.registers,
        f.people,
        f.consequences,
        f.measures,
        f.authority_told_at,
        f.authority_not_needed,
        f.people_told_at,
        f.closed,
        user,
        new,
    )
    .execute(&mut *conn)
    .await?
    .rows_affected()
        == 1;
    if saved {
        let action = if new {
            "breach.create"
        } else {
            "breach.update"
        };
        audit::record(
            conn,
            Event::new(&Actor::User(user), action, ENTITY, Some(id.to_string()))
                .with_fields(&FIELDS),
        )
        .await?;
    }
    Ok(saved)
}

#[derive(Template, WebTemplate)]
#[template(path = "rights/breaches.html")]
pub struct BreachesPage {
    layout: Layout,
    breaches: Vec<Breach>,
    form: BreachForm,
    errors: Errors,
    /// The breach being edited, if any.
    editing: Option<Breach>,
    registers: [RegisterId; 4],
}

fn page(
    layout: Layout,
    breaches: Vec<Breach>,
    form: BreachForm,
    errors: Errors,
    editing: Option<Breach>,
) -> BreachesPage {
    BreachesPage {
        layout,
        breaches,
        form,
        errors,
        editing,
        registers: RegisterId::ALL,
    }
}

pub async fn list(State(state): State<AppState>, layout: Layout) -> AppResult<BreachesPage> {
    let mut conn = state.pool.acquire().await?;
    let form = BreachForm {
        discovered_at: moment_value(OffsetDateTime::now_utc()),
        ..BreachForm::default()
    };
    Ok(page(
        layout,
        list_all(&mut conn).await?,
        form,
        Errors::default(),
        None,
    ))
}

pub async fn create(
    State(state): State<AppState>,
    session: Session,
    user: CurrentUser,
    layout: Layout,
    Form(form): Form<BreachForm>,
) -> AppResult<Response> {
    let mut conn = state.pool.acquire().await?;
    let fields = match parse(&form) {
        Ok(fields) => fields,
        Err(errors) => {
            let breaches = list_all(&mut conn).await?;
            let page = page(layout, breaches, form, errors, None);
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
        }
    };
    let id = Uuid::new_v4();
    let mut tx = state.pool.begin().await?;
    save(&mut tx, id, &fields, user.id, true).await?;
    tx.commit().await?;
    flash::success(&session, "breaches.saved").await?;
    Ok(see_other(&format!("/breaches/{id}")).into_response())
}

pub async fn show(
    State(state): State<AppState>,
    layout: Layout,
    Path(id): Path<String>,
) -> AppResult<BreachesPage> {
    let id: Uuid = id.parse().map_err(|_| AppError::NotFound)?;
    let mut conn = state.pool.acquire().await?;
    let breach = find(&mut conn, id).await?.ok_or(AppError::NotFound)?;
    Ok(page(
        layout,
        Vec::new(),
        BreachForm::of(&breach),
        Errors::default(),
        Some(breach),
    ))
}

pub async fn update(
    State(state): State<AppState>,
    session: Session,
    user: CurrentUser,
    layout: Layout,
    Path(id): Path<String>,
    Form(form): Form<BreachForm>,
) -> AppResult<Response> {
    let id: Uuid = id.parse().map_err(|_| AppError::NotFound)?;
    let mut tx = state.pool.begin().await?;
    let breach = find(&mut tx, id).await?.ok_or(AppError::NotFound)?;
    let fields = match parse(&form) {
        Ok(fields) => fields,
        Err(errors) => {
            let page = page(layout, Vec::new(), form, errors, Some(breach));
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
        }
    };
    save(&mut tx, id, &fields, user.id, false).await?;
    tx.commit().await?;
    flash::success(&session, "breaches.saved").await?;
    Ok(see_other(&format!("/breaches/{id}")).into_response())
}
