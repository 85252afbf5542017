//! The CEO's pages: the list, the form, an employee's record and revealing a value.

use askama::Template;
use askama_web::WebTemplate;
use axum::{
    Form,
    extract::{Path, State},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use time::Date;
use tower_sessions::Session;
use uuid::Uuid;

use super::employees::{
    self, Employee, EmployeeFields, EmployeeRow, NOT_REQUIRED, OCCUPATIONAL_HEALTH_FIELDS,
    PAYROLL_COLUMNS, SaveError, Schedule, Secret,
};
use super::fresh::Fresh;
use crate::{
    audit::Actor,
    auth::CurrentUser,
    domain::{Email, Iban, PersonName, PersonalIdentityCode, optional, short_text},
    error::{AppError, AppResult},
    state::AppState,
    web::{Layout, flash, form::Errors, form::parse_day, see_other},
};

/// A recipient of the register's data (R-PERS-2): who, the text saying why, and the
/// fields' labels.
pub struct Recipient {
    pub name: &'static str,
    pub why: &'static str,
    pub receives: Vec<String>,
}

fn recipients() -> [Recipient; 2] {
    let labels = |fields: &[&str]| fields.iter().map(|f| format!("field.{f}")).collect();
    [
        Recipient {
            name: crate::registers::PAYROLL_BUREAU,
            why: "personnel.recipient.payroll",
            receives: labels(&PAYROLL_COLUMNS),
        },
        Recipient {
            name: crate::registers::OCCUPATIONAL_HEALTH,
            why: "personnel.recipient.occupational_health",
            receives: labels(&OCCUPATIONAL_HEALTH_FIELDS),
        },
    ]
}

#[derive(Template, WebTemplate)]
#[template(path = "personnel/index.html")]
pub struct ListPage {
    layout: Layout,
    rows: Vec<EmployeeRow>,
    recipients: [Recipient; 2],
}

pub async fn list(_: Fresh, State(state): State<AppState>, layout: Layout) -> AppResult<ListPage> {
    let mut conn = state.pool.acquire().await?;
    let rows = employees::list(&mut conn).await?;
    Ok(ListPage {
        layout,
        rows,
        recipients: recipients(),
    })
}

/// The form as typed. No `Debug`: it holds an identity code and a bank account.
#[derive(Clone, Default, Deserialize)]
pub struct EmployeeForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    identity_code: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    home_address: String,
    #[serde(default)]
    bank_account: String,
    #[serde(default)]
    salary: String,
    #[serde(default)]
    employment_start: String,
    #[serde(default)]
    employment_end: String,
    #[serde(default)]
    duties: String,
    #[serde(default)]
    education: String,
    #[serde(default)]
    experience: String,
    #[serde(default)]
    courses: String,
}

impl EmployeeForm {
    /// A row of the import, its cells by column name.
    pub(super) fn from_cells(cell: impl Fn(&str) -> String) -> Self {
        Self {
            name: cell("name"),
            identity_code: cell("identity_code"),
            email: cell("email"),
            home_address: cell("home_address"),
            bank_account: cell("bank_account"),
            salary: cell("salary"),
            employment_start: cell("employment_start"),
            employment_end: cell("employment_end"),
            duties: cell("duties"),
            education: cell("education"),
            experience: cell("experience"),
            courses: cell("courses"),
        }
    }

    /// The stored record, its sealed values left empty: typed anew they replace it.
    fn from_employee(e: &Employee) -> Self {
        Self {
            name: e.name.clone(),
            email: e.email.clone().unwrap_or_default(),
            home_address: e.home_address.clone().unwrap_or_default(),
            employment_start: e.employment_start.to_string(),
            employment_end: e.employment_end.map(|d| d.to_string()).unwrap_or_default(),
            duties: e.duties.clone(),
            education: e.education.clone().unwrap_or_default(),
            experience: e.experience.clone().unwrap_or_default(),
            courses: e.courses.clone().unwrap_or_default(),
            ..Self::default()
        }
    }

    /// `new`: the identity code is required; on a change an empty sealed field keeps
    /// what is stored.
    pub(super) fn parse(&self, new: bool) -> Result<EmployeeFields, Errors> {
        let mut errors = Errors::default();
        let name = errors.check("name", PersonName::parse(&self.name));
        let identity_code = errors.check(
            "identity_code",
            if new {
                PersonalIdentityCode::parse(&self.identity_code).map(Some)
            } else {
                optional(&self.identity_code, PersonalIdentityCode::parse)
            },
        );
        let email = errors.check("email", optional(&self.email, Email::parse));
        let home_address = errors.check("home_address", multiline(&self.home_address, 500));
        let bank_account = errors.check("bank_account", optional(&self.bank_account, Iban::parse));
        let salary = errors.check("salary", optional(&self.salary, |s| short_text(s, 500)));
        let start = errors.check("employment_start", parse_day(&self.employment_start));
        let end = errors.check("employment_end", optional(&self.employment_end, parse_day));
        if let (Some(start), Some(Some(end))) = (start, end)
            && end < start
        {
            errors.add("employment_end", "field.employment_end.before_start");
        }
        let duties = errors.check("duties", multiline(&self.duties, 2000));
        let education = errors.check("education", dated_list(&self.education));
        let experience = errors.check("experience", dated_list(&self.experience));
        let courses = errors.check("courses", dated_list(&self.courses));
        match (
            name,
            identity_code,
            email,
            home_address,
            bank_account,
            salary,
            start,
            end,
            duties,
            education,
            experience,
            courses,
        ) {
            (
                Some(name),
                Some(identity_code),
                Some(email),
                Some(home_address),
                Some(bank_account),
                Some(salary),
                Some(employment_start),
                Some(employment_end),
                Some(duties),
                Some(education),
                Some(experience),
                Some(courses),
            ) if errors.is_empty() => Ok(EmployeeFields {
                name,
                identity_code,
                email,
                home_address,
                bank_account,
                salary,
                employment_start,
                employment_end,
                duties,
                education,
                experience,
                courses,
            }),
            _ => Err(errors),
        }
    }
}

/// Text that may span lines (an address, duties).
fn multiline(input: &str, max: usize) -> Result<String, &'static str> {
    let value = input.trim().replace("\r\n", "\n");
    if value.chars().count() > max {
        return Err("field.too_long");
    }
    if value.chars().any(|c| c.is_control() && c != '\n') {
        return Err("field.invalid_characters");
    }
    Ok(value)
}

/// A list of `YYYY-MM-DD – text` lines (education, experience, courses), one entry a
/// line, kept in that form.
fn dated_list(input: &str) -> Result<String, &'static str> {
    let text = multiline(input, 4000)?;
    let mut lines = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let (day, rest) = line
            .split_at_checked(10)
            .ok_or("field.dated_list.invalid")?;
        let day = parse_day(day).map_err(|_| "field.dated_list.invalid")?;
        let what = rest.trim_start_matches([' ', '–', '-', ':']).trim();
        if what.is_empty() {
            return Err("field.dated_list.invalid");
        }
        lines.push(format!("{day} – {what}"));
    }
    Ok(lines.join("\n"))
}

#[derive(Template, WebTemplate)]
#[template(path = "personnel/form.html")]
pub struct FormPage {
    layout: Layout,
    /// The record changed, or `None` for a new one.
    employee: Option<(Uuid, String)>,
    form: EmployeeForm,
    errors: Errors,
}

impl FormPage {
    /// The dated lists' fields: (name, label, value).
    fn dated_lists(&self) -> [(&'static str, &'static str, &str); 3] {
        [
            ("education", "field.education", &self.form.education),
            ("experience", "field.experience", &self.form.experience),
            ("courses", "field.courses", &self.form.courses),
        ]
    }

    fn invalid(
        layout: Layout,
        employee: Option<(Uuid, String)>,
        form: EmployeeForm,
        errors: Errors,
    ) -> Response {
        let page = FormPage {
            layout,
            employee,
            form,
            errors,
        };
        (StatusCode::UNPROCESSABLE_ENTITY, page).into_response()
    }
}

pub async fn new_form(_: Fresh, layout: Layout) -> FormPage {
    FormPage {
        layout,
        employee: None,
        form: EmployeeForm::default(),
        errors: Errors::default(),
    }
}

fn duplicate() -> Errors {
    let mut errors = Errors::default();
    errors.add("identity_code", "field.identity_code.taken");
    errors
}

pub async fn create(
    _: Fresh,
    State(state): State<AppState>,
    session: Session,
    user: CurrentUser,
    layout: Layout,
    Form(form): Form<EmployeeForm>,
) -> AppResult<Response> {
    let fields = match form.parse(true) {
        Ok(fields) => fields,
        Err(errors) => return Ok(FormPage::invalid(layout, None, form, errors)),
    };
    let config = &state.config;
    let mut tx = state.pool.begin().await?;
    let saved = employees::create(
        &mut tx,
        &config.keys,
        &config.personnel_retention,
        &fields,
        &Actor::User(user.id),
    )
    .await?;
    match saved {
        Ok(id) => {
            tx.commit().await?;
            flash::success(&session, "personnel.saved").await?;
            Ok(see_other(&format!("/personnel/{id}")).into_response())
        }
        Err(SaveError::DuplicateIdentityCode) => {
            Ok(FormPage::invalid(layout, None, form, duplicate()))
        }
    }
}

async fn load(state: &AppState, id: &str) -> AppResult<Employee> {
    let id: Uuid = id.parse().map_err(|_| AppError::NotFound)?;
    let mut conn = state.pool.acquire().await?;
    employees::find(&mut conn, id)
        .await?
        .ok_or(AppError::NotFound)
}

/// The record, its view written to the audit log first (with the field revealed, if any).
async fn view(
    state: &AppState,
    user: &CurrentUser,
    id: &str,
    reveal: Option<Secret>,
) -> AppResult<Employee> {
    let employee = load(state, id).await?;
    let mut conn = state.pool.acquire().await?;
    employees::record_view(&mut conn, employee.id, &Actor::User(user.id), reveal).await?;
    Ok(employee)
}

/// One sealed value as the page shows it.
pub struct Shown {
    pub field: &'static str,
    pub label: &'static str,
    pub value: Option<String>,
    pub revealed: bool,
}

/// One group of the retention schedule: what goes, and the first day it is gone.
pub struct Due {
    pub what: &'static str,
    pub on: Date,
}

/// What a deletion on request keeps: the law that requires it, and the first day it is
/// gone (`None` while the employment continues and needs it).
pub struct Kept {
    pub what: &'static str,
    pub why: &'static str,
    pub goes: Option<Date>,
}

/// What of `employee` a deletion on request keeps, and why.
fn kept(employee: &Employee) -> Vec<Kept> {
    let goes =
        |until: fn(&Schedule) -> Date| employee.schedule.as_ref().map(|s| next_day(until(s)));
    let payroll = [Secret::IdentityCode, Secret::BankAccount, Secret::Salary]
        .into_iter()
        .any(|s| employee.holds(s))
        .then(|| Kept {
            what: "personnel.kept.payroll",
            why: "personnel.kept.payroll.why",
            goes: goes(|s| s.payroll_until),
        });
    let record = Kept {
        what: "personnel.kept.record",
        why: "personnel.kept.record.why",
        goes: goes(|s| s.record_until),
    };
    payroll.into_iter().chain([record]).collect()
}

/// The schedule's days are the last kept.
fn next_day(d: Date) -> Date {
    d.next_day().unwrap_or(d)
}

#[derive(Template, WebTemplate)]
#[template(path = "personnel/show.html")]
pub struct ShowPage {
    layout: Layout,
    employee: Employee,
    secrets: Vec<Shown>,
    due: Vec<Due>,
    /// Just after a deletion on request: what it kept.
    kept: Vec<Kept>,
}

/// The record, with `reveal` shown in plain; the view (or reveal) is in the audit log,
/// committed before the page is sent.
async fn show_record(
    state: &AppState,
    layout: Layout,
    user: &CurrentUser,
    id: &str,
    reveal: Option<Secret>,
) -> AppResult<ShowPage> {
    let employee = view(state, user, id, reveal).await?;
    let keys = &state.config.keys;
    let secrets = [
        (Secret::IdentityCode, "field.identity_code"),
        (Secret::BankAccount, "field.bank_account"),
        (Secret::Salary, "field.salary"),
    ]
    .into_iter()
    .map(|(secret, label)| {
        let revealed = reveal == Some(secret);
        Shown {
            field: secret.name(),
            label,
            value: if revealed {
                employee.revealed(keys, secret)
            } else {
                employee.masked(keys, secret)
            },
            revealed,
        }
    })
    .collect();
    let due = employee
        .schedule
        .map(|s| {
            vec![
                Due {
                    what: "personnel.due.private",
                    on: next_day(s.private_until),
                },
                Due {
                    what: "personnel.due.payroll",
                    on: next_day(s.payroll_until),
                },
                Due {
                    what: "personnel.due.record",
                    on: next_day(s.record_until),
                },
            ]
        })
        .unwrap_or_default();
    Ok(ShowPage {
        layout,
        employee,
        secrets,
        due,
        kept: Vec::new(),
    })
}

pub async fn show(
    _: Fresh,
    State(state): State<AppState>,
    user: CurrentUser,
    layout: Layout,
    Path(id): Path<String>,
) -> AppResult<ShowPage> {
    show_record(&state, layout, &user, &id, None).await
}

#[derive(Deserialize)]
pub struct RevealForm {
    #[serde(default)]
    field: String,
}

pub async fn reveal(
    _: Fresh,
    State(state): State<AppState>,
    user: CurrentUser,
    layout: Layout,
    Path(id): Path<String>,
    Form(form): Form<RevealForm>,
) -> AppResult<ShowPage> {
    let secret = Secret::parse(&form.field).ok_or(AppError::BadRequest("error.bad_request"))?;
    show_record(&state, layout, &user, &id, Some(secret)).await
}

#[derive(Template, WebTemplate)]
#[template(path = "personnel/erase.html")]
pub struct ErasePage {
    layout: Layout,
    employee: Employee,
    /// The labels of what goes.
    deleted: [String; 5],
    kept: Vec<Kept>,
}

/// Asks before a deletion on request, saying what goes and what stays.
pub async fn erase_form(
    _: Fresh,
    State(state): State<AppState>,
    user: CurrentUser,
    layout: Layout,
    Path(id): Path<String>,
) -> AppResult<ErasePage> {
    let employee = view(&state, &user, &id, None).await?;
    Ok(ErasePage {
        layout,
        kept: kept(&employee),
        employee,
        deleted: NOT_REQUIRED.map(|field| match field {
            "email" => "field.private_email".to_string(),
            field => format!("field.{field}"),
        }),
    })
}

/// A deletion on request (R-PERS-5): the record shown again, with what was kept and why.
pub async fn erase(
    _: Fresh,
    State(state): State<AppState>,
    user: CurrentUser,
    layout: Layout,
    Path(id): Path<String>,
) -> AppResult<ShowPage> {
    let employee = load(&state, &id).await?;
    let mut tx = state.pool.begin().await?;
    employees::erase_on_request(&mut tx, &employee, &Actor::User(user.id)).await?;
    tx.commit().await?;
    let mut page = show_record(&state, layout, &user, &id, None).await?;
    page.kept = kept(&page.employee);
    Ok(page)
}

pub async fn edit_form(
    _: Fresh,
    State(state): State<AppState>,
    user: CurrentUser,
    layout: Layout,
    Path(id): Path<String>,
) -> AppResult<FormPage> {
    let employee = view(&state, &user, &id, None).await?;
    Ok(FormPage {
        layout,
        form: EmployeeForm::from_employee(&employee),
        employee: Some((employee.id, employee.name)),
        errors: Errors::default(),
    })
}

pub async fn update(
    _: Fresh,
    State(state): State<AppState>,
    session: Session,
    user: CurrentUser,
    layout: Layout,
    Path(id): Path<String>,
    Form(form): Form<EmployeeForm>,
) -> AppResult<Response> {
    let before = load(&state, &id).await?;
    let heading = Some((before.id, before.name.clone()));
    let fields = match form.parse(false) {
        Ok(fields) => fields,
        Err(errors) => return Ok(FormPage::invalid(layout, heading, form, errors)),
    };
    let config = &state.config;
    let mut tx = state.pool.begin().await?;
    let saved = employees::update(
        &mut tx,
        &config.keys,
        &config.personnel_retention,
        &before,
        &fields,
        &Actor::User(user.id),
    )
    .await?;
    match saved {
        Ok(()) => {
            tx.commit().await?;
            flash::success(&session, "personnel.saved").await?;
            Ok(see_other(&format!("/personnel/{}", before.id)).into_response())
        }
        Err(SaveError::DuplicateIdentityCode) => {
            Ok(FormPage::invalid(layout, heading, form, duplicate()))
        }
    }
}

/// The payroll export for the accounting bureau, as a download; each employee in it is in
/// the audit log as disclosed.
pub async fn payroll_export(
    _: Fresh,
    State(state): State<AppState>,
    user: CurrentUser,
) -> AppResult<Response> {
    let mut csv = Vec::new();
    let mut tx = state.pool.begin().await?;
    employees::payroll_export(&mut tx, &state.config.keys, &Actor::User(user.id), &mut csv).await?;
    tx.commit().await?;
    let name = format!(
        "attachment; filename=\"payroll-{}.csv\"",
        time::OffsetDateTime::now_utc().date()
    );
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (header::CONTENT_DISPOSITION, name),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
        csv,
    )
        .into_response())
}
