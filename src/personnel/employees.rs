//! Employees' records: the queries, the encryption of the identity code, bank account and
//! salary data, and the retention schedule set when an employment ends.

use sqlx::PgConnection;
use time::{Date, Duration, Month};
use uuid::Uuid;

use crate::{
    audit::{self, Actor, Event},
    config::PersonnelRetention,
    domain::{Email, Iban, PersonName, PersonalIdentityCode},
    keys::{Keys, Use},
};

/// The entity name of personnel rows in the audit log; only the CEO sees them.
pub const ENTITY: &str = "employee";

/// The fields no law requires an employer to keep: they go on request, and after the
/// grace period once an employment ends (DOMAIN.md; R-PERS-5).
pub const NOT_REQUIRED: [&str; 5] = [
    "email",
    "home_address",
    "education",
    "experience",
    "courses",
];

/// A record as the CEO entered it.
pub struct EmployeeFields {
    pub name: PersonName,
    /// `None` on a change: keep the stored one.
    pub identity_code: Option<PersonalIdentityCode>,
    pub email: Option<Email>,
    pub home_address: String,
    /// `None` on a change: keep the stored one.
    pub bank_account: Option<Iban>,
    /// `None` on a change: keep the stored one.
    pub salary: Option<String>,
    pub employment_start: Date,
    pub employment_end: Option<Date>,
    pub duties: String,
    pub education: String,
    pub experience: String,
    pub courses: String,
}

/// A stored record, its secrets still sealed.
pub struct Employee {
    pub id: Uuid,
    pub name: String,
    identity_code: Option<Vec<u8>>,
    pub email: Option<String>,
    pub home_address: Option<String>,
    bank_account: Option<Vec<u8>>,
    salary: Option<Vec<u8>>,
    pub employment_start: Date,
    pub employment_end: Option<Date>,
    pub duties: String,
    pub education: Option<String>,
    pub experience: Option<String>,
    pub courses: Option<String>,
    pub schedule: Option<Schedule>,
}

/// The sealed fields, by the name their form field and audit rows use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Secret {
    IdentityCode,
    BankAccount,
    Salary,
}

impl Secret {
    pub fn parse(name: &str) -> Option<Self> {
        [Secret::IdentityCode, Secret::BankAccount, Secret::Salary]
            .into_iter()
            .find(|s| s.name() == name)
    }

    pub fn name(self) -> &'static str {
        match self {
            Secret::IdentityCode => "identity_code",
            Secret::BankAccount => "bank_account",
            Secret::Salary => "salary",
        }
    }

    /// Binds a ciphertext to its employee and field: moved elsewhere it does not open.
    fn context(self, id: Uuid) -> Vec<u8> {
        format!("employee:{id}:{}", self.name()).into_bytes()
    }
}

fn seal(keys: &Keys, id: Uuid, secret: Secret, value: &str) -> Vec<u8> {
    keys.encrypt(Use::Personnel, &secret.context(id), value.as_bytes())
}

fn identity_hash(keys: &Keys, code: &PersonalIdentityCode) -> Vec<u8> {
    keys.keyed_hash(Use::IdentityCode, code.expose().as_bytes())
}

impl Employee {
    fn sealed(&self, secret: Secret) -> Option<&[u8]> {
        match secret {
            Secret::IdentityCode => self.identity_code.as_deref(),
            Secret::BankAccount => self.bank_account.as_deref(),
            Secret::Salary => self.salary.as_deref(),
        }
    }

    /// The plain value, or `None` if there is none (or it was sealed under another key).
    /// Whether the value is still stored.
    pub fn holds(&self, secret: Secret) -> bool {
        self.sealed(secret).is_some()
    }

    pub fn open(&self, keys: &Keys, secret: Secret) -> Option<String> {
        let plain = keys.decrypt(
            Use::Personnel,
            &secret.context(self.id),
            self.sealed(secret)?,
        )?;
        String::from_utf8(plain.to_vec()).ok()
    }

    /// The value as shown until revealed: enough to tell which it is, not enough to use.
    pub fn masked(&self, keys: &Keys, secret: Secret) -> Option<String> {
        let plain = self.open(keys, secret)?;
        Some(match secret {
            Secret::IdentityCode => PersonalIdentityCode::parse(&plain).ok()?.masked(),
            Secret::BankAccount => Iban::parse(&plain).ok()?.masked(),
            Secret::Salary => "****".into(),
        })
    }

    /// The value revealed, in the form people read it.
    pub fn revealed(&self, keys: &Keys, secret: Secret) -> Option<String> {
        let plain = self.open(keys, secret)?;
        Some(match secret {
            Secret::BankAccount => Iban::parse(&plain).ok()?.grouped(),
            _ => plain,
        })
    }
}

/// The last day each group of an ended employment's data is kept (R-PERS-5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Schedule {
    /// Education, experience, courses, home address, private e-mail.
    pub private_until: Date,
    /// Identity code, bank account, salary data.
    pub payroll_until: Date,
    /// Name, dates, duties: the rest of the record.
    pub record_until: Date,
}

impl Schedule {
    pub fn after(end: Date, periods: &PersonnelRetention) -> Self {
        let year_end = |years: u32| {
            Date::from_calendar_date(end.year() + years as i32, Month::December, 31)
                .unwrap_or(Date::MAX)
        };
        Self {
            private_until: end
                .checked_add(Duration::days(periods.grace_days.into()))
                .unwrap_or(Date::MAX),
            payroll_until: year_end(periods.payroll_years),
            record_until: years_after(end, periods.record_years),
        }
    }
}

/// The same day `years` later; from 29 February, the last day of February (as the
/// Finnish act on computing time limits, 150/1930, counts).
fn years_after(day: Date, years: u32) -> Date {
    let year = day.year() + years as i32;
    Date::from_calendar_date(year, day.month(), day.day())
        .or_else(|_| Date::from_calendar_date(year, day.month(), day.day() - 1))
        .unwrap_or(Date::MAX)
}

/// Why a record was not saved.
#[derive(Debug, PartialEq, Eq)]
pub enum SaveError {
    /// Another employee has this identity code.
    DuplicateIdentityCode,
}

pub async fn create(
    conn: &mut PgConnection,
    keys: &Keys,
    periods: &PersonnelRetention,
    fields: &EmployeeFields,
    actor: &Actor,
) -> anyhow::Result<Result<Uuid, SaveError>> {
    let id = Uuid::new_v4();
    let code = fields.identity_code.as_ref();
    if let Some(code) = code
        && holder_of(conn, keys, code).await?.is_some()
    {
        return Ok(Err(SaveError::DuplicateIdentityCode));
    }
    let schedule = fields
        .employment_end
        .map(|end| Schedule::after(end, periods));
    let inserted = sqlx::query!(
        "INSERT INTO employees (id, name, identity_code, identity_code_hash, email, home_address,
             bank_account, salary, employment_start, employment_end, duties, education,
             experience, courses, private_until, payroll_until, record_until)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)",
        id,
        fields.name.as_str(),
        code.map(|c| seal(keys, id, Secret::IdentityCode, c.expose())),
        code.map(|c| identity_hash(keys, c)),
        fields.email.as_ref().map(Email::as_str),
        fields.home_address,
        fields
            .bank_account
            .as_ref()
            .map(|b| seal(keys, id, Secret::BankAccount, b.expose())),
        fields
            .salary
            .as_ref()
            .filter(|s| !s.is_empty())
            .map(|s| seal(keys, id, Secret::Salary, s)),
        fields.employment_start,
        fields.employment_end,
        fields.duties,
        fields.education,
        fields.experience,
        fields.courses,
        schedule.map(|s| s.private_until),
        schedule.map(|s| s.payroll_until),
        schedule.map(|s| s.record_until),
    )
    .execute(&mut *conn)
    .await;
    if let Err(sqlx::Error::Database(db)) = &inserted
        && db.is_unique_violation()
    {
        return Ok(Err(SaveError::DuplicateIdentityCode));
    }
    inserted?;
    let written = audit::changed_fields(&[
        ("name", true),
        ("identity_code", code.is_some()),
        ("email", fields.email.is_some()),
        ("home_address", !fields.home_address.is_empty()),
        ("bank_account", fields.bank_account.is_some()),
        (
            "salary",
            fields.salary.as_ref().is_some_and(|s| !s.is_empty()),
        ),
        ("employment_start", true),
        ("employment_end", fields.employment_end.is_some()),
        ("duties", !fields.duties.is_empty()),
        ("education", !fields.education.is_empty()),
        ("experience", !fields.experience.is_empty()),
        ("courses", !fields.courses.is_empty()),
    ]);
    audit::record(
        conn,
        Event::new(actor, "employee.create", ENTITY, Some(id.to_string())).with_fields(&written),
    )
    .await?;
    Ok(Ok(id))
}

/// Saves a change; the sealed fields left `None` stay as they were. A new end date sets
/// the retention schedule anew; removing it removes the schedule.
pub async fn update(
    conn: &mut PgConnection,
    keys: &Keys,
    periods: &PersonnelRetention,
    before: &Employee,
    fields: &EmployeeFields,
    actor: &Actor,
) -> anyhow::Result<Result<(), SaveError>> {
    let id = before.id;
    let code = fields.identity_code.as_ref();
    if let Some(code) = code
        && holder_of(conn, keys, code)
            .await?
            .is_some_and(|other| other != id)
    {
        return Ok(Err(SaveError::DuplicateIdentityCode));
    }
    let schedule = fields
        .employment_end
        .map(|end| Schedule::after(end, periods));
    let salary = fields.salary.as_ref().filter(|s| !s.is_empty());
    let updated = sqlx::query!(
        "UPDATE employees SET name = $2,
             identity_code = COALESCE($3, identity_code),
             identity_code_hash = COALESCE($4, identity_code_hash),
             email = $5, home_address = $6,
             bank_account = COALESCE($7, bank_account),
             salary = COALESCE($8, salary),
             employment_start = $9, employment_end = $10, duties = $11, education = $12,
             experience = $13, courses = $14,
             private_until = $15, payroll_until = $16, record_until = $17
         WHERE id = $1",
        id,
        fields.name.as_str(),
        code.map(|c| seal(keys, id, Secret::IdentityCode, c.expose())),
        code.map(|c| identity_hash(keys, c)),
        fields.email.as_ref().map(Email::as_str),
        fields.home_address,
        fields
            .bank_account
            .as_ref()
            .map(|b| seal(keys, id, Secret::BankAccount, b.expose())),
        salary.map(|s| seal(keys, id, Secret::Salary, s)),
        fields.employment_start,
        fields.employment_end,
        fields.duties,
        fields.education,
        fields.experience,
        fields.courses,
        schedule.map(|s| s.private_until),
        schedule.map(|s| s.payroll_until),
        schedule.map(|s| s.record_until),
    )
    .execute(&mut *conn)
    .await;
    if let Err(sqlx::Error::Database(db)) = &updated
        && db.is_unique_violation()
    {
        return Ok(Err(SaveError::DuplicateIdentityCode));
    }
    updated?;
    let text = |old: &Option<String>, new: &str| old.as_deref().unwrap_or("") != new;
    let changed = audit::changed_fields(&[
        ("name", before.name != fields.name.as_str()),
        (
            "identity_code",
            code.is_some_and(|c| {
                before.open(keys, Secret::IdentityCode).as_deref() != Some(c.expose())
            }),
        ),
        (
            "email",
            text(
                &before.email,
                fields.email.as_ref().map_or("", Email::as_str),
            ),
        ),
        (
            "home_address",
            text(&before.home_address, &fields.home_address),
        ),
        (
            "bank_account",
            fields.bank_account.as_ref().is_some_and(|b| {
                before.open(keys, Secret::BankAccount).as_deref() != Some(b.expose())
            }),
        ),
        (
            "salary",
            salary.is_some_and(|s| before.open(keys, Secret::Salary).as_ref() != Some(s)),
        ),
        (
            "employment_start",
            before.employment_start != fields.employment_start,
        ),
        (
            "employment_end",
            before.employment_end != fields.employment_end,
        ),
        ("duties", before.duties != fields.duties),
        ("education", text(&before.education, &fields.education)),
        ("experience", text(&before.experience, &fields.experience)),
        ("courses", text(&before.courses, &fields.courses)),
    ]);
    audit::record(
        conn,
        Event::new(actor, "employee.update", ENTITY, Some(id.to_string())).with_fields(&changed),
    )
    .await?;
    Ok(Ok(()))
}

/// Whether an employee in the register has this identity code.
pub async fn identity_code_taken(
    conn: &mut PgConnection,
    keys: &Keys,
    code: &PersonalIdentityCode,
) -> sqlx::Result<bool> {
    Ok(holder_of(conn, keys, code).await?.is_some())
}

/// Who holds this identity code, found by its keyed hash.
async fn holder_of(
    conn: &mut PgConnection,
    keys: &Keys,
    code: &PersonalIdentityCode,
) -> sqlx::Result<Option<Uuid>> {
    sqlx::query_scalar!(
        "SELECT id FROM employees WHERE identity_code_hash = $1",
        identity_hash(keys, code)
    )
    .fetch_optional(conn)
    .await
}

pub async fn find(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<Option<Employee>> {
    let row = sqlx::query!(
        "SELECT id, name, identity_code, email, home_address, bank_account, salary,
                employment_start, employment_end, duties, education, experience, courses,
                private_until, payroll_until, record_until
         FROM employees WHERE id = $1",
        id
    )
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|r| Employee {
        id: r.id,
        name: r.name,
        identity_code: r.identity_code,
        email: r.email,
        home_address: r.home_address,
        bank_account: r.bank_account,
        salary: r.salary,
        employment_start: r.employment_start,
        employment_end: r.employment_end,
        duties: r.duties,
        education: r.education,
        experience: r.experience,
        courses: r.courses,
        schedule: match (r.private_until, r.payroll_until, r.record_until) {
            (Some(private_until), Some(payroll_until), Some(record_until)) => Some(Schedule {
                private_until,
                payroll_until,
                record_until,
            }),
            _ => None,
        },
    }))
}

/// Writes the read log's row: the record was looked at (`employee.view`), or with
/// `revealed`, that field was shown in plain (`employee.reveal`).
pub async fn record_view(
    conn: &mut PgConnection,
    id: Uuid,
    actor: &Actor,
    revealed: Option<Secret>,
) -> sqlx::Result<()> {
    let event = Event::new(actor, "employee.view", ENTITY, Some(id.to_string()));
    match revealed {
        None => audit::record(conn, event).await,
        Some(secret) => {
            let fields = [secret.name()];
            audit::record(
                conn,
                Event {
                    action: "employee.reveal",
                    ..event.with_fields(&fields)
                },
            )
            .await
        }
    }
}

/// A deletion on request (R-PERS-5): clears the fields no law requires, audited with
/// those that held something; returns them.
pub async fn erase_on_request(
    conn: &mut PgConnection,
    employee: &Employee,
    actor: &Actor,
) -> sqlx::Result<Vec<&'static str>> {
    let held = [
        employee.email.is_some(),
        employee.home_address.is_some(),
        employee.education.is_some(),
        employee.experience.is_some(),
        employee.courses.is_some(),
    ];
    let cleared: Vec<&'static str> = NOT_REQUIRED
        .into_iter()
        .zip(held)
        .filter_map(|(field, held)| held.then_some(field))
        .collect();
    sqlx::query!(
        "UPDATE employees SET email = NULL, home_address = NULL, education = NULL,
             experience = NULL, courses = NULL
         WHERE id = $1",
        employee.id
    )
    .execute(&mut *conn)
    .await?;
    let event = Event::new(
        actor,
        "employee.erase_request",
        ENTITY,
        Some(employee.id.to_string()),
    );
    audit::record(conn, event.with_fields(&cleared)).await?;
    Ok(cleared)
}

/// What occupational health care is told of each employee (R-PERS-2): who they are and
/// what work they do. Health data stays with occupational health, never here.
pub const OCCUPATIONAL_HEALTH_FIELDS: [&str; 5] = [
    "name",
    "identity_code",
    "duties",
    "employment_start",
    "employment_end",
];

/// Who receives the payroll export (R-PERS-2): a contracted processor.
const PAYROLL_RECIPIENT: &str = "employee.disclose.payroll_bureau";

/// The columns payroll needs, and no more.
pub const PAYROLL_COLUMNS: [&str; 6] = [
    "name",
    "identity_code",
    "bank_account",
    "salary",
    "employment_start",
    "employment_end",
];

/// Writes the payroll export (CSV) of everyone whose payroll data is still kept, each
/// disclosure in the audit log; returns how many.
pub async fn payroll_export(
    conn: &mut PgConnection,
    keys: &Keys,
    actor: &Actor,
    out: impl std::io::Write,
) -> anyhow::Result<usize> {
    let ids = sqlx::query_scalar!(
        "SELECT id FROM employees
         WHERE identity_code IS NOT NULL OR bank_account IS NOT NULL OR salary IS NOT NULL
         ORDER BY lower(name), id"
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut writer = csv::Writer::from_writer(out);
    writer.write_record(PAYROLL_COLUMNS)?;
    for id in &ids {
        let Some(e) = find(conn, *id).await? else {
            continue;
        };
        let open = |secret| e.open(keys, secret).unwrap_or_default();
        let cells = [
            e.name.clone(),
            open(Secret::IdentityCode),
            open(Secret::BankAccount),
            open(Secret::Salary),
            e.employment_start.to_string(),
            e.employment_end.map(|d| d.to_string()).unwrap_or_default(),
        ];
        writer.write_record(
            cells
                .iter()
                .map(|c| crate::spreadsheet::escape(c).into_owned()),
        )?;
        let event = Event::new(actor, PAYROLL_RECIPIENT, ENTITY, Some(id.to_string()));
        audit::record(conn, event.with_fields(&PAYROLL_COLUMNS)).await?;
    }
    writer.flush()?;
    Ok(ids.len())
}

/// One line of the list.
pub struct EmployeeRow {
    pub id: Uuid,
    pub name: String,
    pub employment_start: Date,
    pub employment_end: Option<Date>,
}

pub async fn list(conn: &mut PgConnection) -> sqlx::Result<Vec<EmployeeRow>> {
    sqlx::query_as!(
        EmployeeRow,
        "SELECT id, name, employment_start, employment_end FROM employees
         ORDER BY employment_end IS NOT NULL, lower(name), id"
    )
    .fetch_all(conn)
    .await
}

#[cfg(test)]
mod tests {
    use time::macros::date;

    use super::*;

    #[test]
    fn the_schedule_counts_payroll_from_the_end_of_the_calendar_year() {
        let periods = PersonnelRetention::default();
        for end in [date!(2026 - 01 - 01), date!(2026 - 12 - 31)] {
            let s = Schedule::after(end, &periods);
            assert_eq!(s.payroll_until, date!(2032 - 12 - 31), "{end}");
        }
        let s = Schedule::after(date!(2026 - 12 - 31), &periods);
        assert_eq!(s.private_until, date!(2027 - 01 - 30));
        assert_eq!(s.record_until, date!(2036 - 12 - 31));
    }

    #[test]
    fn ten_years_from_29_february_end_on_the_last_day_of_february() {
        let s = Schedule::after(date!(2028 - 02 - 29), &PersonnelRetention::default());
        assert_eq!(s.record_until, date!(2038 - 02 - 28));
        assert_eq!(s.private_until, date!(2028 - 03 - 30));
        assert_eq!(years_after(date!(2028 - 02 - 29), 4), date!(2032 - 02 - 29));
    }
}
