//! The audit log: append-only (the database refuses UPDATE, DELETE and TRUNCATE) and
//! hash-chained, so that an edit made by a superuser is found by `audit verify`.
//! [`record`] is its only writer, called inside the transaction of the change it records.
//! Rows hold who, what, which entity and which field names — never personal data values.

mod pages;

use sha2::{Digest, Sha256};
use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::web::{Access, Section};

pub fn sections() -> Vec<Section> {
    vec![Section::new(Access::Admin).get("/audit", pages::list)]
}

/// Who did it.
#[derive(Clone, Debug)]
pub enum Actor {
    User(Uuid),
    /// A periodic job or the command line, by name.
    System(&'static str),
    /// The data subject, through a link or public page: the id of their record.
    Subject(String),
    Anonymous,
}

impl Actor {
    fn kind(&self) -> &'static str {
        match self {
            Actor::User(_) => "user",
            Actor::System(_) => "system",
            Actor::Subject(_) => "subject",
            Actor::Anonymous => "anonymous",
        }
    }

    fn id(&self) -> Option<String> {
        match self {
            Actor::User(id) => Some(id.to_string()),
            Actor::System(name) => Some((*name).to_string()),
            Actor::Subject(id) => Some(id.clone()),
            Actor::Anonymous => None,
        }
    }
}

/// One recorded event.
pub struct Event<'a> {
    pub actor: &'a Actor,
    /// `entity.verb`, e.g. `user.create`, `login.failure`.
    pub action: &'a str,
    pub entity: &'a str,
    pub entity_id: Option<String>,
    /// Names of the fields written, never their values.
    pub fields: &'a [&'a str],
}

impl<'a> Event<'a> {
    pub fn new(
        actor: &'a Actor,
        action: &'a str,
        entity: &'a str,
        entity_id: Option<String>,
    ) -> Self {
        Self {
            actor,
            action,
            entity,
            entity_id,
            fields: &[],
        }
    }

    pub fn with_fields(self, fields: &'a [&'a str]) -> Self {
        Self { fields, ..self }
    }
}

/// The names of the fields whose flag says they changed, for [`Event::fields`].
pub fn changed_fields(candidates: &[(&'static str, bool)]) -> Vec<&'static str> {
    candidates
        .iter()
        .filter(|(_, changed)| *changed)
        .map(|(name, _)| *name)
        .collect()
}

/// Serialises writers, so each row chains to the one committed before it.
const CHAIN_LOCK: i64 = 0x0061_7564_6974; // "audit"
const GENESIS: [u8; 32] = [0; 32];

/// Takes the chain's lock for the rest of the transaction. A transaction that will
/// record several events while locking rows (a sweep, an import) takes it first, so it
/// never waits for the chain while holding a row another writer waits for.
pub async fn lock_chain(conn: &mut PgConnection) -> sqlx::Result<()> {
    sqlx::query!("SELECT pg_advisory_xact_lock($1)", CHAIN_LOCK)
        .execute(conn)
        .await?;
    Ok(())
}

/// Appends an event, in the caller's transaction.
pub async fn record(conn: &mut PgConnection, event: Event<'_>) -> sqlx::Result<()> {
    lock_chain(conn).await?;
    let prev_hash = sqlx::query_scalar!("SELECT hash FROM audit_log ORDER BY id DESC LIMIT 1")
        .fetch_optional(&mut *conn)
        .await?
        .unwrap_or_else(|| GENESIS.to_vec());
    let id = sqlx::query_scalar!(r#"SELECT nextval('audit_log_id_seq') AS "id!""#)
        .fetch_one(&mut *conn)
        .await?;
    let row = Row {
        id,
        at: now_in_microseconds(),
        actor_kind: event.actor.kind().to_string(),
        actor_id: event.actor.id(),
        action: event.action.to_string(),
        entity: event.entity.to_string(),
        entity_id: event.entity_id,
        fields: event.fields.iter().map(|f| f.to_string()).collect(),
        prev_hash,
    };
    let hash = row.hash();
    sqlx::query!(
        "INSERT INTO audit_log (id, at, actor_kind, actor_id, action, entity, entity_id, fields, prev_hash, hash)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        row.id,
        row.at,
        row.actor_kind,
        row.actor_id,
        row.action,
        row.entity,
        row.entity_id,
        &row.fields,
        row.prev_hash,
        hash,
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// PostgreSQL keeps microseconds: the hash covers exactly what is stored.
fn now_in_microseconds() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(now.nanosecond() / 1000 * 1000)
        .expect("a valid nanosecond")
}

struct Row {
    id: i64,
    at: OffsetDateTime,
    actor_kind: String,
    actor_id: Option<String>,
    action: String,
    entity: String,
    entity_id: Option<String>,
    fields: Vec<String>,
    prev_hash: Vec<u8>,
}

impl Row {
    /// SHA-256 over every column, each length-prefixed so no two rows serialise alike.
    fn hash(&self) -> Vec<u8> {
        let mut h = Sha256::new();
        let mut put = |bytes: &[u8]| {
            h.update((bytes.len() as u64).to_be_bytes());
            h.update(bytes);
        };
        put(&self.id.to_be_bytes());
        put(&(self.at.unix_timestamp_nanos() / 1000).to_be_bytes());
        put(self.actor_kind.as_bytes());
        put(self.actor_id.as_deref().unwrap_or("\0none").as_bytes());
        put(self.action.as_bytes());
        put(self.entity.as_bytes());
        put(self.entity_id.as_deref().unwrap_or("\0none").as_bytes());
        put(&(self.fields.len() as u64).to_be_bytes());
        for field in &self.fields {
            put(field.as_bytes());
        }
        put(&self.prev_hash);
        h.finalize().to_vec()
    }
}

/// The outcome of checking the whole chain.
#[derive(Debug, PartialEq, Eq)]
pub enum Verification {
    Intact { rows: u64 },
    Broken { row_id: i64, reason: &'static str },
}

/// Recomputes every row's hash and its link to the row before.
pub async fn verify(conn: &mut PgConnection) -> sqlx::Result<Verification> {
    use futures::TryStreamExt;
    let mut rows = sqlx::query!(
        "SELECT id, at, actor_kind, actor_id, action, entity, entity_id, fields, prev_hash, hash
         FROM audit_log ORDER BY id"
    )
    .fetch(&mut *conn);
    let mut expected_prev = GENESIS.to_vec();
    let mut count = 0;
    while let Some(r) = rows.try_next().await? {
        let stored_hash = r.hash;
        let row = Row {
            id: r.id,
            at: r.at,
            actor_kind: r.actor_kind,
            actor_id: r.actor_id,
            action: r.action,
            entity: r.entity,
            entity_id: r.entity_id,
            fields: r.fields,
            prev_hash: r.prev_hash,
        };
        if row.prev_hash != expected_prev {
            return Ok(Verification::Broken {
                row_id: row.id,
                reason: "does not link to the row before it (a row was removed or replaced)",
            });
        }
        if row.hash() != stored_hash {
            return Ok(Verification::Broken {
                row_id: row.id,
                reason: "its content does not match its hash (the row was edited)",
            });
        }
        expected_prev = stored_hash;
        count += 1;
    }
    Ok(Verification::Intact { rows: count })
}
