//! Import and export of contacts as CSV: one header row naming columns of [`COLUMNS`]
//! (only `company_name`, `person_name` and `email` are required), UTF-8 with or without a
//! byte-order mark, separated by commas or semicolons.
//!
//! An import first checks every row — its values, addresses twice in the file, addresses
//! already in the register or erased — and if any row is wrong reports each with its line
//! number and reason and imports nothing. Then it writes [`BATCH`] rows per transaction,
//! each with its audit rows and mails, so that no request waits on a long import. Imported
//! people enter quarantine unless marked legacy.
//!
//! A cell that a spreadsheet would run as a formula is written with a leading `'`, and the
//! import takes that `'` away again: an exported file imports to the same values.

use std::collections::{HashMap, HashSet};

use sqlx::{Connection, PgConnection};
use time::{Date, Month, OffsetDateTime, macros::date};
use uuid::Uuid;

use super::{
    CONTACT_LANGUAGES, CompanyFields, ContactFields, Source, Status,
    companies::{self, BusinessArea},
    contacts::{self, ContactError},
    pages::multiline_text,
    quarantine, years_before,
};
use crate::{
    audit::Actor,
    config::Config,
    domain::{Email, PersonName, Phone, WebUrl, optional, short_text},
    spreadsheet::{self, escape, unescape},
    web::{Lang, Tr},
};

pub const COLUMNS: [&str; 14] = [
    "company_name",
    "company_address",
    "company_website",
    "company_email",
    "company_phone",
    "business_area",
    "person_name",
    "department",
    "title",
    "email",
    "phone",
    "language",
    "legacy",
    "last_contacted",
];

/// The columns a header must name; the others may be left out (then empty).
const REQUIRED: [&str; 3] = ["company_name", "person_name", "email"];

/// The export's column that the import passes over: an imported person's status follows
/// from `legacy`.
const STATUS_COLUMN: &str = "status";

/// Rows written per transaction.
pub const BATCH: usize = 250;

/// The day the quarantine rule began: a legacy contact was last met before it (R-CUST-13).
const QUARANTINE_RULE: Date = date!(2018 - 05 - 25);

/// One refused row: its line in the file and why, in words for the reader.
#[derive(Debug)]
pub struct RowError {
    pub line: u64,
    pub reason: String,
}

/// What an import did (or, in a dry run, would do). With errors, `people` is what was
/// written before the first error: nothing, unless an address was taken by someone else
/// between the check and the write.
#[derive(Debug, Default)]
pub struct ImportReport {
    pub people: usize,
    pub legacy: usize,
    /// Legacy people whose last contact is already longer ago than the inactivity period:
    /// the next inactivity sweep deletes them.
    pub overdue: usize,
    pub companies_created: usize,
    pub errors: Vec<RowError>,
}

pub struct ImportOptions<'a> {
    pub dry_run: bool,
    /// Import addresses whose owners once asked to be erased.
    pub confirm_erased: bool,
    pub actor: &'a Actor,
    /// The language of the error messages.
    pub lang: Lang,
}

struct Row {
    line: u64,
    company: CompanyFields,
    person: ContactFields,
    legacy: bool,
    /// For a legacy row: the day of the last contact, from which the five years run.
    last_contacted: Option<Date>,
}

/// Checks the file and, if every row is right and this is no dry run, imports it in
/// transactions of [`BATCH`] rows. `conn` must not be inside a transaction: the batches
/// commit one by one.
pub async fn import(
    conn: &mut PgConnection,
    config: &Config,
    data: &[u8],
    options: &ImportOptions<'_>,
) -> anyhow::Result<ImportReport> {
    let t = Tr(options.lang);
    let areas = companies::business_areas(conn).await?;
    let (rows, mut errors) = match parse(data, &areas, t) {
        Ok(parsed) => parsed,
        Err(errors) => {
            return Ok(ImportReport {
                errors,
                ..ImportReport::default()
            });
        }
    };
    errors.extend(check(conn, config, &rows, options).await?);
    if !errors.is_empty() {
        errors.sort_by_key(|e| e.line);
        return Ok(ImportReport {
            errors,
            ..ImportReport::default()
        });
    }
    if options.dry_run {
        let legacy = rows.iter().filter(|r| r.legacy).count();
        return Ok(ImportReport {
            people: rows.len(),
            legacy,
            overdue: overdue(&rows, config),
            ..ImportReport::default()
        });
    }
    write(conn, config, &rows, options).await
}

/// Legacy rows whose last contact is longer ago than the inactivity period.
fn overdue(rows: &[Row], config: &Config) -> usize {
    let limit = years_before(OffsetDateTime::now_utc(), config.inactivity_years).date();
    rows.iter()
        .filter(|r| r.last_contacted.is_some_and(|d| d < limit))
        .count()
}

/// What the register says about the rows: addresses twice in the file, already in the
/// register, or of people who asked to be erased. Reads only.
async fn check(
    conn: &mut PgConnection,
    config: &Config,
    rows: &[Row],
    options: &ImportOptions<'_>,
) -> anyhow::Result<Vec<RowError>> {
    let t = Tr(options.lang);
    let addresses: Vec<String> = rows
        .iter()
        .map(|r| r.person.email.as_str().to_lowercase())
        .collect();
    let taken: HashSet<String> = sqlx::query_scalar!(
        r#"SELECT lower(email) AS "email!" FROM contacts WHERE lower(email) = ANY($1)"#,
        &addresses
    )
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .collect();
    let mut seen = HashSet::new();
    let mut errors = Vec::new();
    for (row, address) in rows.iter().zip(&addresses) {
        let reason = if !seen.insert(address) {
            t.get("import.duplicate_in_file").to_string()
        } else if taken.contains(address) {
            t.get("import.email_taken").to_string()
        } else if options.confirm_erased {
            continue;
        } else if let Some(at) =
            contacts::suppressed_since(conn, &config.keys, row.person.email.as_str()).await?
        {
            t.with("import.erased", "date", crate::web::day(&at))
        } else {
            continue;
        };
        errors.push(RowError {
            line: row.line,
            reason,
        });
    }
    Ok(errors)
}

/// Writes checked rows, [`BATCH`] per transaction.
async fn write(
    conn: &mut PgConnection,
    config: &Config,
    rows: &[Row],
    options: &ImportOptions<'_>,
) -> anyhow::Result<ImportReport> {
    let mut report = ImportReport {
        overdue: overdue(rows, config),
        ..ImportReport::default()
    };
    let mut company_ids: HashMap<String, Uuid> = HashMap::new();
    for batch in rows.chunks(BATCH) {
        let mut tx = conn.begin().await?;
        let mut created = Vec::new();
        for row in batch {
            let company_key = row.company.name.to_lowercase();
            let company_id = match company_ids.get(&company_key) {
                Some(id) => *id,
                None => {
                    let existing = sqlx::query_scalar!(
                        "SELECT id FROM companies WHERE lower(name) = $1 ORDER BY created_at LIMIT 1",
                        company_key
                    )
                    .fetch_optional(&mut *tx)
                    .await?;
                    let id = match existing {
                        Some(id) => id,
                        None => {
                            created.push(company_key.clone());
                            companies::create(&mut tx, &row.company, options.actor).await?
                        }
                    };
                    company_ids.insert(company_key, id);
                    id
                }
            };
            let status = if row.legacy {
                Status::Legacy
            } else {
                Status::Quarantine
            };
            match contacts::create(
                &mut tx,
                company_id,
                &row.person,
                status,
                row.last_contacted,
                options.actor,
            )
            .await
            {
                Ok(id) if !row.legacy => {
                    let contact = contacts::find(&mut tx, id)
                        .await?
                        .ok_or_else(|| anyhow::anyhow!("contact {id} gone while importing"))?;
                    quarantine::send_request(&mut tx, config, &contact, false).await?;
                }
                Ok(_) => {}
                // Added by someone else since the check: this batch is undone, and the
                // batches before it stay.
                Err(ContactError::EmailTaken) => {
                    report.errors.push(RowError {
                        line: row.line,
                        reason: Tr(options.lang).get("import.email_taken").into(),
                    });
                    return Ok(report);
                }
                Err(ContactError::Database(e)) => return Err(e.into()),
            }
        }
        tx.commit().await?;
        report.people += batch.len();
        report.legacy += batch.iter().filter(|r| r.legacy).count();
        report.companies_created += created.len();
    }
    Ok(report)
}

/// The rows that parse, and why the others do not; errors for the whole file if it has
/// no usable header.
fn parse(
    data: &[u8],
    areas: &[BusinessArea],
    t: Tr,
) -> Result<(Vec<Row>, Vec<RowError>), Vec<RowError>> {
    let file_error = |reason: String| vec![RowError { line: 1, reason }];
    let data = data.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(data);
    let Ok(text) = std::str::from_utf8(data) else {
        return Err(file_error(t.get("import.not_utf8").into()));
    };
    if text.trim().is_empty() {
        return Err(file_error(t.get("import.empty_file").into()));
    }
    let mut reader = spreadsheet::reader(text);
    let headers: Vec<String> = match reader.headers() {
        Ok(h) => h.iter().map(|h| h.trim().to_lowercase()).collect(),
        Err(_) => return Err(file_error(t.get("import.no_header").into())),
    };
    let index = header_index(&headers, t).map_err(|reasons| {
        reasons
            .into_iter()
            .map(|reason| RowError { line: 1, reason })
            .collect::<Vec<_>>()
    })?;
    let today = OffsetDateTime::now_utc().date();
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    for record in reader.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                errors.push(RowError {
                    line,
                    reason: t.get("import.unreadable_row").into(),
                });
                continue;
            }
        };
        let line = record.position().map_or(0, |p| p.line());
        if record.iter().all(str::is_empty) {
            continue;
        }
        let cells = Cells {
            record: &record,
            index: &index,
        };
        match cells
            .no_formulas()
            .and_then(|()| parse_row(line, &cells, areas, today))
        {
            Ok(row) => rows.push(row),
            Err((column, reason)) => errors.push(RowError {
                line,
                reason: format!("{column}: {}", reason.text(t)),
            }),
        }
    }
    if rows.is_empty() && errors.is_empty() {
        errors.push(RowError {
            line: 2,
            reason: t.get("import.empty").into(),
        });
    }
    Ok((rows, errors))
}

/// Where each named column is; else what is missing, unknown or named twice.
fn header_index(headers: &[String], t: Tr) -> Result<HashMap<&'static str, usize>, Vec<String>> {
    let mut index = HashMap::new();
    let mut unknown = Vec::new();
    let mut errors = Vec::new();
    for (i, name) in headers.iter().enumerate() {
        match COLUMNS.iter().find(|c| **c == name.as_str()) {
            Some(column) => {
                if index.insert(*column, i).is_some() {
                    errors.push(t.with("import.duplicate_column", "column", column));
                }
            }
            None if name.is_empty() || name == STATUS_COLUMN => {}
            None => unknown.push(name.as_str()),
        }
    }
    let missing: Vec<&str> = REQUIRED
        .into_iter()
        .filter(|c| !index.contains_key(c))
        .collect();
    if !missing.is_empty() {
        errors.insert(
            0,
            t.with("import.missing_columns", "columns", missing.join(", ")),
        );
    }
    if !unknown.is_empty() {
        errors.push(
            t.with("import.unknown_columns", "columns", unknown.join(", "))
                .replace("{known}", &COLUMNS.join(", ")),
        );
    }
    if errors.is_empty() {
        Ok(index)
    } else {
        Err(errors)
    }
}

/// Why a cell was refused: a translation key, or the day before which a date must lie.
#[derive(Clone, Copy)]
enum Reason {
    Key(&'static str),
    Before(Date),
}

impl Reason {
    fn text(self, t: Tr) -> String {
        match self {
            Reason::Key(key) => t.get(key).into(),
            Reason::Before(day) => t.with(
                "import.legacy_date_late",
                "date",
                format!("{}.{}.{}", day.day(), u8::from(day.month()), day.year()),
            ),
        }
    }
}

type CellError = (&'static str, Reason);

/// A column's parse result, its error naming the column.
fn field<T>(column: &'static str, result: Result<T, &'static str>) -> Result<T, CellError> {
    result.map_err(|key| (column, Reason::Key(key)))
}

/// One record's cells by column name; a column the header leaves out reads as empty.
struct Cells<'r> {
    record: &'r csv::StringRecord,
    index: &'r HashMap<&'static str, usize>,
}

impl<'r> Cells<'r> {
    fn get(&self, column: &str) -> &'r str {
        self.index
            .get(column)
            .and_then(|i| self.record.get(*i))
            .map_or("", unescape)
    }

    /// A cell starting with `=` is a formula where a value belongs (a spreadsheet saved
    /// its formulas, or someone hopes the next one runs them): refused. A value that
    /// really starts with `=` is written `'=`.
    fn no_formulas(&self) -> Result<(), CellError> {
        for column in COLUMNS {
            if let Some(cell) = self.index.get(column).and_then(|i| self.record.get(*i))
                && cell.starts_with('=')
            {
                return Err((column, Reason::Key("import.formula")));
            }
        }
        Ok(())
    }
}

/// A day written `2014-03-01` or `1.3.2014`.
fn parse_date(input: &str) -> Result<Date, &'static str> {
    let numbers = |parts: Vec<&str>| -> Option<(i32, u8, u8)> {
        let [y, m, d] = parts[..] else { return None };
        let all_digits = [y, m, d]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
        (all_digits && y.len() == 4 && m.len() <= 2 && d.len() <= 2)
            .then(|| Some((y.parse().ok()?, m.parse().ok()?, d.parse().ok()?)))
            .flatten()
    };
    let parsed = if input.contains('-') {
        numbers(input.split('-').collect())
    } else {
        numbers(input.split('.').rev().collect())
    };
    let (year, month, day) = parsed.ok_or("import.date_format")?;
    Month::try_from(month)
        .ok()
        .and_then(|m| Date::from_calendar_date(year, m, day).ok())
        .filter(|d| d.year() >= 1900)
        .ok_or("import.date_impossible")
}

fn parse_row(
    line: u64,
    cells: &Cells<'_>,
    areas: &[BusinessArea],
    today: Date,
) -> Result<Row, CellError> {
    let get = |column: &str| cells.get(column);
    let company_name = field("company_name", short_text(get("company_name"), 200))?;
    if company_name.is_empty() {
        return Err(("company_name", Reason::Key("field.required")));
    }
    let area_name = get("business_area").to_lowercase();
    let business_area_id = if area_name.is_empty() {
        None
    } else {
        let area = areas.iter().find(|a| {
            a.name_en.to_lowercase() == area_name || a.name_sv.to_lowercase() == area_name
        });
        Some(field(
            "business_area",
            area.map(|a| a.id).ok_or("field.choice.invalid"),
        )?)
    };
    let company = CompanyFields {
        name: company_name,
        address: field(
            "company_address",
            multiline_text(get("company_address"), 500),
        )?,
        website: field(
            "company_website",
            optional(get("company_website"), WebUrl::parse),
        )?,
        email: field(
            "company_email",
            optional(get("company_email"), Email::parse),
        )?,
        phone: field(
            "company_phone",
            optional(get("company_phone"), Phone::parse),
        )?,
        business_area_id,
    };
    let language = match get("language").to_lowercase().as_str() {
        "" => Lang::En,
        code => field(
            "language",
            Lang::parse(code)
                .filter(|l| CONTACT_LANGUAGES.contains(l))
                .ok_or("field.choice.invalid"),
        )?,
    };
    let person = ContactFields {
        name: field("person_name", PersonName::parse(get("person_name")))?,
        department: field("department", short_text(get("department"), 200))?,
        title: field("title", short_text(get("title"), 200))?,
        email: field("email", Email::parse(get("email")))?,
        phone: field("phone", optional(get("phone"), Phone::parse))?,
        language,
        source: Source::Import,
        met_by: None,
    };
    let legacy = match get("legacy").to_lowercase().as_str() {
        "" | "no" | "false" | "0" | "nej" | "ei" => false,
        "yes" | "true" | "1" | "ja" | "kyllä" => true,
        _ => return Err(("legacy", Reason::Key("import.legacy_invalid"))),
    };
    let last_contacted = field(
        "last_contacted",
        optional(get("last_contacted"), parse_date),
    )?;
    let last_contacted = match last_contacted {
        Some(day) if day > today => {
            return Err(("last_contacted", Reason::Key("field.date.future")));
        }
        Some(day) if legacy && day >= QUARANTINE_RULE => {
            return Err(("last_contacted", Reason::Before(QUARANTINE_RULE)));
        }
        None if legacy => return Err(("last_contacted", Reason::Key("import.legacy_needs_date"))),
        // Everyone else gets the confirmation mail now: that is their last communication.
        _ if !legacy => None,
        day => day,
    };
    Ok(Row {
        line,
        company,
        person,
        legacy,
        last_contacted,
    })
}

/// Writes every person as CSV: the import columns plus `status`. `last_contacted` is the
/// day of the last communication.
pub async fn export(conn: &mut PgConnection, out: impl std::io::Write) -> anyhow::Result<usize> {
    use futures::TryStreamExt;
    let mut writer = csv::Writer::from_writer(out);
    let mut header: Vec<&str> = COLUMNS.to_vec();
    header.push(STATUS_COLUMN);
    writer.write_record(&header)?;
    let mut rows = sqlx::query!(
        r#"SELECT co.name AS company_name, co.address, co.website, co.email AS company_email,
                  co.phone AS company_phone, a.name_en AS "area?", c.name, c.department, c.title,
                  c.email, c.phone, c.language, c.status,
                  c.last_communication_at::date::text AS "last_contacted!"
           FROM contacts c
           JOIN companies co ON co.id = c.company_id
           LEFT JOIN business_areas a ON a.id = co.business_area_id
           ORDER BY lower(co.name), lower(c.name), c.id"#
    )
    .fetch(conn);
    let mut count = 0;
    while let Some(r) = rows.try_next().await? {
        let legacy = if r.status == "legacy" { "yes" } else { "no" };
        writer.write_record(
            [
                r.company_name.as_str(),
                &r.address,
                &r.website,
                &r.company_email,
                &r.company_phone,
                r.area.as_deref().unwrap_or(""),
                &r.name,
                &r.department,
                &r.title,
                &r.email,
                &r.phone,
                &r.language,
                legacy,
                &r.last_contacted,
                &r.status,
            ]
            .map(escape)
            .iter()
            .map(|c| c.as_bytes()),
        )?;
        count += 1;
    }
    writer.flush()?;
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_iso_or_finnish_and_must_exist() {
        assert_eq!(parse_date("2014-03-01"), Ok(date!(2014 - 03 - 01)));
        assert_eq!(parse_date("1.3.2014"), Ok(date!(2014 - 03 - 01)));
        assert_eq!(parse_date("01.03.2014"), Ok(date!(2014 - 03 - 01)));
        for impossible in [
            "31.02.2014",
            "2014-02-30",
            "2014-13-01",
            "0.1.2014",
            "1.1.0999",
        ] {
            assert_eq!(
                parse_date(impossible),
                Err("import.date_impossible"),
                "{impossible}"
            );
        }
        for unreadable in [
            "1/3/2014",
            "2014-3",
            "14-03-01",
            "March 2014",
            "2014-03-01x",
            "1.3.14",
        ] {
            assert_eq!(
                parse_date(unreadable),
                Err("import.date_format"),
                "{unreadable}"
            );
        }
    }
}
