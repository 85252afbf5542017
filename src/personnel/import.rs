//! `gdpr-register import personnel FILE.csv`: the spreadsheet the register replaces, all
//! or nothing. Every row is checked as the form checks it (identity codes and IBANs
//! included), and against the register and the rest of the file; if any row is wrong,
//! each is listed with its line and nothing is written.

use std::collections::{HashMap, HashSet};

use sqlx::PgConnection;

use super::{
    employees::{self, SaveError},
    pages::EmployeeForm,
};
use crate::{
    audit::Actor,
    config::Config,
    domain::PersonalIdentityCode,
    web::{Lang, Tr},
};

/// The form's fields are the file's columns.
pub const COLUMNS: [&str; 12] = [
    "name",
    "identity_code",
    "email",
    "home_address",
    "bank_account",
    "salary",
    "employment_start",
    "employment_end",
    "duties",
    "education",
    "experience",
    "courses",
];
const REQUIRED: [&str; 3] = ["name", "identity_code", "employment_start"];

/// One wrong row (line 1 is the header).
#[derive(Debug)]
pub struct RowError {
    pub line: u64,
    pub reason: String,
}

#[derive(Debug, Default)]
pub struct ImportReport {
    /// Imported, or with `dry_run` that would be.
    pub employees: usize,
    pub errors: Vec<RowError>,
}

/// Reads the file (UTF-8, with or without a byte-order mark; commas or semicolons; a
/// header naming its columns in any order) and imports it in one transaction.
pub async fn import(
    conn: &mut PgConnection,
    config: &Config,
    data: &[u8],
    dry_run: bool,
) -> anyhow::Result<ImportReport> {
    let t = Tr(Lang::En);
    let data = data.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(data);
    let fail = |line, reason: String| {
        Ok(ImportReport {
            employees: 0,
            errors: vec![RowError { line, reason }],
        })
    };
    let Ok(text) = std::str::from_utf8(data) else {
        return fail(1, "the file is not UTF-8 text".into());
    };
    let mut reader = crate::spreadsheet::reader(text);
    let headers: Vec<String> = match reader.headers() {
        Ok(h) => h.iter().map(str::to_lowercase).collect(),
        Err(_) => return fail(1, "the header row cannot be read".into()),
    };
    let mut index = HashMap::new();
    for (i, name) in headers.iter().enumerate() {
        match COLUMNS.iter().find(|c| *c == name) {
            Some(column) if index.insert(*column, i).is_none() => {}
            Some(column) => return fail(1, format!("the column {column} is named twice")),
            None => {
                return fail(
                    1,
                    format!(
                        "unknown column {name:?}; the columns are {}",
                        COLUMNS.join(", ")
                    ),
                );
            }
        }
    }
    if let Some(missing) = REQUIRED.iter().find(|c| !index.contains_key(*c)) {
        return fail(1, format!("the header must name the column {missing}"));
    }

    let keys = &config.keys;
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    let mut codes_in_file = HashSet::new();
    for record in reader.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                errors.push(RowError {
                    line,
                    reason: "the row cannot be read".into(),
                });
                continue;
            }
        };
        let line = record.position().map_or(0, |p| p.line());
        if record.iter().all(str::is_empty) {
            continue;
        }
        let cell = |column: &str| {
            index
                .get(column)
                .and_then(|i| record.get(*i))
                .unwrap_or("")
                .to_string()
        };
        if let Some(column) = COLUMNS.iter().find(|c| cell(c).starts_with('=')) {
            errors.push(RowError {
                line,
                reason: format!("{column}: a formula where a value belongs"),
            });
            continue;
        }
        let form = EmployeeForm::from_cells(cell);
        match form.parse(true) {
            Err(wrong) => errors.extend(COLUMNS.iter().filter_map(|column| {
                wrong.get(column).map(|key| RowError {
                    line,
                    reason: format!("{column}: {}", t.get(key)),
                })
            })),
            Ok(fields) => {
                let code = fields
                    .identity_code
                    .as_ref()
                    .map(PersonalIdentityCode::expose)
                    .unwrap_or_default()
                    .to_string();
                let duplicate = if !codes_in_file.insert(code) {
                    Some("identity_code: the same identity code is on an earlier line")
                } else if let Some(code) = &fields.identity_code
                    && employees::identity_code_taken(conn, keys, code).await?
                {
                    Some("identity_code: this identity code is already in the register")
                } else {
                    None
                };
                match duplicate {
                    Some(reason) => errors.push(RowError {
                        line,
                        reason: reason.into(),
                    }),
                    None => rows.push(fields),
                }
            }
        }
    }
    if !errors.is_empty() || dry_run {
        return Ok(ImportReport {
            employees: if errors.is_empty() { rows.len() } else { 0 },
            errors,
        });
    }
    let actor = Actor::System("command-line");
    let mut tx = sqlx::Connection::begin(conn).await?;
    for fields in &rows {
        let saved =
            employees::create(&mut tx, keys, &config.personnel_retention, fields, &actor).await?;
        if let Err(SaveError::DuplicateIdentityCode) = saved {
            // Added by hand while the file was read: nothing of the file is written.
            return fail(
                0,
                "an identity code of the file was added meanwhile; nothing was imported".into(),
            );
        }
    }
    tx.commit().await?;
    Ok(ImportReport {
        employees: rows.len(),
        errors,
    })
}
