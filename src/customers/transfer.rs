//! Import and export of contacts as CSV: one header row with the columns in [`COLUMNS`],
//! UTF-8 with or without a byte-order mark, separated by commas or semicolons. An import
//! is one transaction: every bad row is reported with its line number and reason, and then
//! nothing is imported. Imported people enter quarantine unless marked legacy.

use std::collections::{HashMap, HashSet};

use sqlx::PgConnection;
use uuid::Uuid;

use super::{
    CONTACT_LANGUAGES, CompanyFields, ContactFields, Source, Status,
    companies::{self, BusinessArea},
    contacts::{self, ContactError},
    quarantine,
};
use crate::{
    audit::Actor,
    config::Config,
    domain::{Email, PersonName, Phone, WebUrl, optional, short_text},
    web::{Lang, Tr},
};

pub const COLUMNS: [&str; 13] = [
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
];

/// One refused row: its line in the file and why, in words for the reader.
#[derive(Debug)]
pub struct RowError {
    pub line: u64,
    pub reason: String,
}

#[derive(Debug, Default)]
pub struct ImportReport {
    pub people: usize,
    pub legacy: usize,
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
}

/// Imports inside the caller's transaction; on errors or a dry run the caller rolls back.
pub async fn import(
    conn: &mut PgConnection,
    config: &Config,
    data: &[u8],
    options: &ImportOptions<'_>,
) -> anyhow::Result<ImportReport> {
    let t = Tr(options.lang);
    let mut report = ImportReport::default();
    let areas = companies::business_areas(conn).await?;
    let rows = match parse(data, &areas, t) {
        Ok(rows) => rows,
        Err(errors) => {
            report.errors = errors;
            return Ok(report);
        }
    };
    let mut seen = HashSet::new();
    let mut company_ids: HashMap<String, Uuid> = HashMap::new();
    for row in rows {
        let error = |reason: String| RowError {
            line: row.line,
            reason,
        };
        let email_key = row.person.email.as_str().to_lowercase();
        if !seen.insert(email_key) {
            report
                .errors
                .push(error(t.get("import.duplicate_in_file").into()));
            continue;
        }
        if !options.confirm_erased
            && let Some(at) =
                contacts::suppressed_since(conn, &config.keys, row.person.email.as_str()).await?
        {
            report
                .errors
                .push(error(t.with("import.erased", "date", crate::web::day(&at))));
            continue;
        }
        let taken = sqlx::query_scalar!(
            r#"SELECT EXISTS (SELECT 1 FROM contacts WHERE lower(email) = lower($1)) AS "taken!""#,
            row.person.email.as_str()
        )
        .fetch_one(&mut *conn)
        .await?;
        if taken {
            report
                .errors
                .push(error(t.get("import.email_taken").into()));
            continue;
        }
        let company_key = row.company.name.to_lowercase();
        let company_id = match company_ids.get(&company_key) {
            Some(id) => *id,
            None => {
                let existing = sqlx::query_scalar!(
                    "SELECT id FROM companies WHERE lower(name) = $1 ORDER BY created_at LIMIT 1",
                    company_key
                )
                .fetch_optional(&mut *conn)
                .await?;
                let id = match existing {
                    Some(id) => id,
                    None => {
                        report.companies_created += 1;
                        companies::create(conn, &row.company, options.actor).await?
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
        match contacts::create(conn, company_id, &row.person, status, options.actor).await {
            Ok(id) => {
                report.people += 1;
                if row.legacy {
                    report.legacy += 1;
                } else if let Some(contact) = contacts::find(conn, id).await? {
                    quarantine::send_request(conn, config, &contact, false).await?;
                }
            }
            Err(ContactError::EmailTaken) => report
                .errors
                .push(error(t.get("import.email_taken").into())),
            Err(ContactError::Database(e)) => return Err(e.into()),
        }
    }
    Ok(report)
}

fn parse(data: &[u8], areas: &[BusinessArea], t: Tr) -> Result<Vec<Row>, Vec<RowError>> {
    let data = data.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(data);
    let Ok(text) = std::str::from_utf8(data) else {
        return Err(vec![RowError {
            line: 1,
            reason: t.get("import.not_utf8").into(),
        }]);
    };
    let header_line = text.lines().next().unwrap_or("");
    let delimiter = if header_line.matches(';').count() > header_line.matches(',').count() {
        b';'
    } else {
        b','
    };
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers: Vec<String> = match reader.headers() {
        Ok(h) => h.iter().map(|h| h.trim().to_lowercase()).collect(),
        Err(_) => {
            return Err(vec![RowError {
                line: 1,
                reason: t.get("import.no_header").into(),
            }]);
        }
    };
    let missing: Vec<&str> = COLUMNS
        .iter()
        .copied()
        .filter(|c| !headers.iter().any(|h| h == c))
        .collect();
    if !missing.is_empty() {
        return Err(vec![RowError {
            line: 1,
            reason: t.with("import.missing_columns", "columns", missing.join(", ")),
        }]);
    }
    let index: HashMap<&str, usize> = COLUMNS
        .iter()
        .map(|c| {
            (
                *c,
                headers.iter().position(|h| h == c).expect("checked above"),
            )
        })
        .collect();
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
        match parse_row(&cells, areas) {
            Ok((company, person, legacy)) => rows.push(Row {
                line,
                company,
                person,
                legacy,
            }),
            Err((column, key)) => errors.push(RowError {
                line,
                reason: format!("{column}: {}", t.get(key)),
            }),
        }
    }
    if rows.is_empty() && errors.is_empty() {
        errors.push(RowError {
            line: 2,
            reason: t.get("import.empty").into(),
        });
    }
    if errors.is_empty() {
        Ok(rows)
    } else {
        Err(errors)
    }
}

type Parsed = (CompanyFields, ContactFields, bool);

/// A column's parse result, its error naming the column.
fn field<T>(
    column: &'static str,
    result: Result<T, &'static str>,
) -> Result<T, (&'static str, &'static str)> {
    result.map_err(|key| (column, key))
}

/// One record's cells by column name.
struct Cells<'r> {
    record: &'r csv::StringRecord,
    index: &'r HashMap<&'static str, usize>,
}

impl<'r> Cells<'r> {
    fn get(&self, column: &str) -> &'r str {
        self.record.get(self.index[column]).unwrap_or("")
    }
}

fn parse_row(
    cells: &Cells<'_>,
    areas: &[BusinessArea],
) -> Result<Parsed, (&'static str, &'static str)> {
    let get = |column: &str| cells.get(column);
    let company_name = field("company_name", short_text(get("company_name"), 200))?;
    if company_name.is_empty() {
        return Err(("company_name", "field.required"));
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
        address: field("company_address", short_text(get("company_address"), 500))?,
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
        _ => return Err(("legacy", "import.legacy_invalid")),
    };
    Ok((company, person, legacy))
}

/// Writes every person as CSV: the import columns plus `status`.
pub async fn export(conn: &mut PgConnection, out: impl std::io::Write) -> anyhow::Result<usize> {
    use futures::TryStreamExt;
    let mut writer = csv::Writer::from_writer(out);
    let mut header: Vec<&str> = COLUMNS.to_vec();
    header.push("status");
    writer.write_record(&header)?;
    let mut rows = sqlx::query!(
        r#"SELECT co.name AS company_name, co.address, co.website, co.email AS company_email,
                  co.phone AS company_phone, a.name_en AS "area?", c.name, c.department, c.title,
                  c.email, c.phone, c.language, c.status
           FROM contacts c
           JOIN companies co ON co.id = c.company_id
           LEFT JOIN business_areas a ON a.id = co.business_area_id
           ORDER BY lower(co.name), lower(c.name), c.id"#
    )
    .fetch(conn);
    let mut count = 0;
    while let Some(r) = rows.try_next().await? {
        let legacy = if r.status == "legacy" { "yes" } else { "no" };
        writer.write_record([
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
            &r.status,
        ])?;
        count += 1;
    }
    writer.flush()?;
    Ok(count)
}
