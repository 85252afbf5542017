//! The customer register's retention rules, each a periodic job in a file of its own.

mod inactivity;
mod quarantine;

use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;
use uuid::Uuid;

use super::contacts::{self, Erasure};
use crate::{audit::Actor, jobs::BATCH};

pub use inactivity::job as inactivity_sweep;
pub use quarantine::job as quarantine;

const JOB: Actor = Actor::System("jobs");

/// Who a retention rule deletes.
enum Due {
    /// Still unconfirmed when the quarantine period ended: added this long before.
    UnconfirmedSince(OffsetDateTime),
    /// No communication since.
    SilentSince(OffsetDateTime),
}

impl Due {
    fn rule(&self) -> &'static str {
        match self {
            Due::UnconfirmedSince(_) => "contact.quarantine_expired",
            Due::SilentSince(_) => "contact.inactivity_expired",
        }
    }

    /// The next batch, skipping anyone a staff member's edit has locked just now.
    async fn next_batch(&self, conn: &mut PgConnection) -> sqlx::Result<Vec<Uuid>> {
        match self {
            Due::UnconfirmedSince(added_before) => {
                sqlx::query_scalar!(
                    "SELECT id FROM contacts WHERE status = 'quarantine' AND created_at <= $1
                     ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED",
                    added_before,
                    BATCH
                )
                .fetch_all(conn)
                .await
            }
            Due::SilentSince(before) => {
                sqlx::query_scalar!(
                    "SELECT id FROM contacts WHERE status <> 'quarantine' AND last_communication_at < $1
                     ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED",
                    before,
                    BATCH
                )
                .fetch_all(conn)
                .await
            }
        }
    }

    /// Deletes everyone due, a batch per transaction, by a retention rule (no
    /// suppression: they did not ask). Says how many, in how many transactions.
    async fn delete(&self, pool: &PgPool) -> sqlx::Result<Deleted> {
        let mut deleted = Deleted::default();
        loop {
            let mut tx = pool.begin().await?;
            let ids = self.next_batch(&mut tx).await?;
            for id in &ids {
                contacts::delete_contact(&mut tx, *id, &JOB, Erasure::Retention(self.rule()))
                    .await?;
            }
            tx.commit().await?;
            if !ids.is_empty() {
                deleted.people += ids.len() as u64;
                deleted.transactions += 1;
            }
            if (ids.len() as i64) < BATCH {
                return Ok(deleted);
            }
        }
    }
}

#[derive(Default)]
struct Deleted {
    people: u64,
    transactions: u64,
}
