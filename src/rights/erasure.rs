//! Erasure on request (GDPR Art. 17) across every register, in the caller's transaction:
//! each register erases what it holds of the address, the customer register leaves the
//! keyed hash on the suppression list (and in the backup erasure journal), and the
//! requests made under the address forget it.
//!
//! A register joins by adding its `erase_about` call in [`everywhere`].

use sqlx::PgConnection;

use super::requests;
use crate::{
    audit::Actor,
    chat,
    config::Config,
    contact,
    customers::{self, Erasure},
    domain::Email,
    error::AppError,
    registers::{self, RegisterId},
    web::Tr,
};

/// Erases the owner of `email` from every register; returns the registers that held
/// something.
pub async fn everywhere(
    conn: &mut PgConnection,
    config: &Config,
    email: &Email,
    actor: &Actor,
) -> Result<Vec<RegisterId>, AppError> {
    let mut erased = Vec::new();
    if let Some(id) = customers::contact_with_email(conn, email).await?
        && customers::delete_contact(conn, id, actor, Erasure::OnRequest(config)).await?
    {
        erased.push(RegisterId::Customers);
    }
    if chat::erase_about(conn, email).await? > 0 {
        erased.push(RegisterId::Chat);
    }
    if contact::erase_about(conn, email).await? > 0 {
        erased.push(RegisterId::Contact);
    }
    requests::forget(conn, email).await?;
    Ok(erased)
}

/// What the reply to the subject says: what was erased, what a law made us keep
/// (Art. 17(3)), and who received the data and is told (Art. 19).
pub struct Reply {
    pub erased: Vec<String>,
    pub kept: Vec<String>,
    pub recipients: Vec<String>,
}

/// What is always kept after an erasure, and why.
pub const KEPT: [&str; 3] = [
    "erasure.kept.suppression",
    "erasure.kept.audit",
    "erasure.kept.request",
];

pub fn reply(config: &Config, t: Tr, erased: &[RegisterId]) -> Reply {
    let described: Vec<_> = erased
        .iter()
        .map(|id| registers::of(*id, config).describe(t))
        .collect();
    Reply {
        erased: described
            .iter()
            .map(|d| format!("{}: {}", d.name, d.data.join("; ")))
            .collect(),
        kept: KEPT.iter().map(|k| t.get(k).to_string()).collect(),
        recipients: described
            .iter()
            .flat_map(|d| d.recipients.clone())
            .collect(),
    }
}
