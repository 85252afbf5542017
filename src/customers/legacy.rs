//! Contacts from before the quarantine rule (25.5.2018) skip quarantine and get an
//! information mailing instead, each at most once (R-CUST-13).

use std::num::NonZeroU32;

use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;
use uuid::Uuid;

use super::contacts;
use crate::{
    audit::{self, Actor, Event},
    config::Config,
    mail::{self, Mail, kinds::LegacyInformation},
};

pub struct LegacyRow {
    pub id: Uuid,
    pub name: String,
    pub company: String,
    pub informed_at: Option<OffsetDateTime>,
    /// False while a changed address waits for its owner: the mailing skips them.
    pub address_confirmed: bool,
}

pub async fn list(conn: &mut PgConnection) -> sqlx::Result<Vec<LegacyRow>> {
    sqlx::query_as!(
        LegacyRow,
        r#"SELECT c.id, c.name, co.name AS company, c.legacy_informed_at AS informed_at,
                  c.email_pending_since IS NULL AS "address_confirmed!"
           FROM contacts c JOIN companies co ON co.id = c.company_id
           WHERE c.status = 'legacy'
           ORDER BY c.legacy_informed_at IS NOT NULL, lower(c.name), c.id"#
    )
    .fetch_all(conn)
    .await
}

/// The mailing goes out at this pace, so that a mailing to everyone does not look like a
/// flood to the receiving servers.
const PER_SECOND: NonZeroU32 = NonZeroU32::new(10).expect("not zero");
/// People informed per transaction: a mailing to thousands never holds their rows long.
const CHUNK: i64 = 200;

/// Queues the mailing, as one paced batch, for every legacy contact not yet informed whose
/// address is confirmed (one waiting for its owner gets it once confirmed), a chunk per
/// transaction; returns how many.
pub async fn inform_all(pool: &PgPool, config: &Config, actor: &Actor) -> anyhow::Result<usize> {
    let mut batch = None;
    let mut informed = 0;
    loop {
        let mut tx = pool.begin().await?;
        let ids = sqlx::query_scalar!(
            "SELECT id FROM contacts
             WHERE status = 'legacy' AND legacy_informed_at IS NULL AND email_pending_since IS NULL
             ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
            CHUNK
        )
        .fetch_all(&mut *tx)
        .await?;
        if ids.is_empty() {
            return Ok(informed);
        }
        let batch_id = match batch {
            Some(id) => id,
            None => *batch
                .insert(mail::new_batch(&mut tx, "legacy_information", Some(PER_SECOND)).await?),
        };
        for id in &ids {
            inform(&mut tx, config, actor, *id, batch_id).await?;
        }
        tx.commit().await?;
        informed += ids.len();
    }
}

async fn inform(
    conn: &mut PgConnection,
    config: &Config,
    actor: &Actor,
    id: Uuid,
    batch_id: Uuid,
) -> anyhow::Result<()> {
    let Some(contact) = contacts::find(conn, id).await? else {
        return Ok(());
    };
    let information = LegacyInformation {
        name: contact.name.clone(),
        info_address: config.info_address.email.to_string(),
    };
    let mail = Mail::compose(config, &contact.email, contact.language, &information)?
        .about(contact.id)
        .in_batch(batch_id);
    mail::enqueue(conn, &mail).await?;
    sqlx::query!(
        "UPDATE contacts SET legacy_informed_at = now() WHERE id = $1",
        contact.id
    )
    .execute(&mut *conn)
    .await?;
    audit::record(
        conn,
        Event::new(
            actor,
            "contact.legacy_informed",
            "contact",
            Some(contact.id.to_string()),
        )
        .with_fields(&["legacy_informed_at"]),
    )
    .await?;
    Ok(())
}
