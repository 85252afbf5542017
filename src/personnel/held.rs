//! What the personnel register holds about one employee, for their extract on request to
//! the CEO (R-PERS-6): every field, the sealed ones opened.

use serde::Serialize;
use sqlx::PgConnection;
use uuid::Uuid;

use super::employees::{self, Secret};
use crate::keys::Keys;

#[derive(Debug, Serialize)]
pub struct Held {
    pub name: String,
    pub email: Option<String>,
    pub home_address: Option<String>,
    pub identity_code: Option<String>,
    pub bank_account: Option<String>,
    pub salary: Option<String>,
    pub employment_start: String,
    pub employment_end: Option<String>,
    pub duties: String,
    pub education: Option<String>,
    pub experience: Option<String>,
    pub courses: Option<String>,
}

/// The employee's record with its secrets opened, or `None`.
pub async fn held_about(
    conn: &mut PgConnection,
    keys: &Keys,
    id: Uuid,
) -> sqlx::Result<Option<Held>> {
    let Some(e) = employees::find(conn, id).await? else {
        return Ok(None);
    };
    Ok(Some(Held {
        identity_code: e.revealed(keys, Secret::IdentityCode),
        bank_account: e.revealed(keys, Secret::BankAccount),
        salary: e.revealed(keys, Secret::Salary),
        name: e.name,
        email: e.email,
        home_address: e.home_address,
        employment_start: e.employment_start.to_string(),
        employment_end: e.employment_end.map(|d| d.to_string()),
        duties: e.duties,
        education: e.education,
        experience: e.experience,
        courses: e.courses,
    }))
}
