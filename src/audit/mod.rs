//! The audit log: append-only (the database refuses UPDATE, DELETE and TRUNCATE) and
//! hash-chained, so that an edit made by a superuser is found by `audit verify`.
//! [`record`] is its only writer, called inside the transaction of the change it records;
//! it takes no lock, and [`seal`] chains what has committed, a moment later.
//! Rows hold who, what, which entity and which field names — never personal data values.

mod head_job;
mod pages;

pub use head_job::job as head_job;

use sha2::{Digest, Sha256};
use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::web::{Access, Section};

pub fn sections() -> Vec<Section> {
    vec![
        Section::new(Access::Admin).get("/audit", pages::list),
        Section::new(Access::Ceo).get("/personnel/audit", pages::personnel),
    ]
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
    /// How many, for an event that stands for several.
    pub count: Option<i64>,
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
            count: None,
        }
    }

    pub fn with_fields(self, fields: &'a [&'a str]) -> Self {
        Self { fields, ..self }
    }

    pub fn with_count(self, count: i64) -> Self {
        Self {
            count: Some(count),
            ..self
        }
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

const GENESIS: [u8; 32] = [0; 32];
/// Only one sealer at a time, across every instance.
const SEAL_LOCK: i64 = 0x0061_7564_6974; // "audit"
/// Rows sealed in one transaction.
const SEAL_BATCH: i64 = 1000;

/// Appends an event, in the caller's transaction. It takes no lock: the row is chained
/// later, by [`seal`], once its transaction has committed.
pub async fn record(conn: &mut PgConnection, event: Event<'_>) -> sqlx::Result<()> {
    let fields: Vec<String> = event.fields.iter().map(|f| f.to_string()).collect();
    sqlx::query!(
        "INSERT INTO audit_log (id, at, actor_kind, actor_id, action, entity, entity_id, fields, count)
         VALUES (nextval('audit_log_id_seq'), $1, $2, $3, $4, $5, $6, $7, $8)",
        now_in_microseconds(),
        event.actor.kind(),
        event.actor.id(),
        event.action,
        event.entity,
        event.entity_id,
        &fields,
        event.count,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Chains the committed rows not yet sealed, in the order of their ids, after the head,
/// and returns how many it sealed. One sealer works at a time, across instances: another
/// waits for it, then finds what is left.
pub async fn seal(pool: &sqlx::PgPool) -> sqlx::Result<u64> {
    let mut sealed = 0;
    loop {
        let mut tx = pool.begin().await?;
        sqlx::query!("SELECT pg_advisory_xact_lock($1)", SEAL_LOCK)
            .execute(&mut *tx)
            .await?;
        let head = head(&mut tx).await?;
        let rows = sqlx::query!(
            "SELECT id, at, actor_kind, actor_id, action, entity, entity_id, fields, count
             FROM audit_log WHERE seq IS NULL ORDER BY id LIMIT $1",
            SEAL_BATCH
        )
        .fetch_all(&mut *tx)
        .await?;
        if rows.is_empty() {
            return Ok(sealed);
        }
        let (mut seq, mut prev) = head.map_or((0, GENESIS.to_vec()), |h| (h.seq, h.hash));
        let (mut ids, mut seqs, mut prevs, mut hashes) = (vec![], vec![], vec![], vec![]);
        for r in &rows {
            seq += 1;
            let row = Row {
                id: r.id,
                at: r.at,
                actor_kind: r.actor_kind.clone(),
                actor_id: r.actor_id.clone(),
                action: r.action.clone(),
                entity: r.entity.clone(),
                entity_id: r.entity_id.clone(),
                fields: r.fields.clone(),
                count: r.count,
                prev_hash: prev,
            };
            let hash = row.hash();
            ids.push(r.id);
            seqs.push(seq);
            prevs.push(row.prev_hash);
            hashes.push(hash.clone());
            prev = hash;
        }
        sqlx::query!(
            "UPDATE audit_log a SET seq = s.seq, prev_hash = s.prev_hash, hash = s.hash
             FROM UNNEST($1::bigint[], $2::bigint[], $3::bytea[], $4::bytea[])
                  AS s(id, seq, prev_hash, hash)
             WHERE a.id = s.id",
            &ids,
            &seqs,
            &prevs,
            &hashes,
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        sealed += rows.len() as u64;
    }
}

/// Seals now and then, until cancelled; once more on the way out.
pub async fn run_sealer(pool: sqlx::PgPool, stop: tokio_util::sync::CancellationToken) {
    const EVERY: std::time::Duration = std::time::Duration::from_secs(1);
    loop {
        if let Err(e) = seal(&pool).await {
            tracing::error!(error = %e, "sealing the audit log");
        }
        tokio::select! {
            () = stop.cancelled() => break,
            () = tokio::time::sleep(EVERY) => {}
        }
    }
    if let Err(e) = seal(&pool).await {
        tracing::error!(error = %e, "sealing the audit log");
    }
}

/// The newest sealed row: where the chain ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Head {
    pub seq: i64,
    pub hash: Vec<u8>,
}

pub async fn head(conn: &mut PgConnection) -> sqlx::Result<Option<Head>> {
    let row = sqlx::query!(
        r#"SELECT seq AS "seq!", hash AS "hash!" FROM audit_log
           WHERE seq IS NOT NULL ORDER BY seq DESC LIMIT 1"#
    )
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|r| Head {
        seq: r.seq,
        hash: r.hash,
    }))
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
    count: Option<i64>,
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
        // Rows from before counts existed hash as they always did.
        if let Some(count) = self.count {
            put(b"\0count");
            put(&count.to_be_bytes());
        }
        put(&self.prev_hash);
        h.finalize().to_vec()
    }
}

/// The outcome of checking the chain.
#[derive(Debug, PartialEq, Eq)]
pub enum Verification {
    /// Every sealed row is intact; `unsealed` rows wait for the sealer.
    Intact {
        rows: u64,
        unsealed: u64,
        head: Option<Head>,
    },
    Broken {
        row_id: i64,
        reason: &'static str,
    },
    /// The chain is intact but does not reach the head given (newest rows removed).
    HeadMissing {
        rows: u64,
    },
}

/// Recomputes every sealed row's hash and its link to the row before. With `expected_head`
/// (a head hash mailed out earlier), the chain must also contain that row.
pub async fn verify(
    conn: &mut PgConnection,
    expected_head: Option<&[u8]>,
) -> sqlx::Result<Verification> {
    use futures::TryStreamExt;
    let unsealed =
        sqlx::query_scalar!(r#"SELECT count(*) AS "n!" FROM audit_log WHERE seq IS NULL"#)
            .fetch_one(&mut *conn)
            .await? as u64;
    let mut rows = sqlx::query!(
        r#"SELECT id, at, actor_kind, actor_id, action, entity, entity_id, fields, count,
                  seq AS "seq!", prev_hash AS "prev_hash!", hash AS "hash!"
           FROM audit_log WHERE seq IS NOT NULL ORDER BY seq"#
    )
    .fetch(&mut *conn);
    let mut expected_prev = GENESIS.to_vec();
    let mut head = None;
    let mut head_found = expected_head.is_none();
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
            count: r.count,
            prev_hash: r.prev_hash,
        };
        if row.prev_hash != expected_prev || r.seq != count as i64 + 1 {
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
        head_found |= expected_head == Some(stored_hash.as_slice());
        head = Some(Head {
            seq: r.seq,
            hash: stored_hash.clone(),
        });
        expected_prev = stored_hash;
        count += 1;
    }
    if !head_found {
        return Ok(Verification::HeadMissing { rows: count });
    }
    Ok(Verification::Intact {
        rows: count,
        unsealed,
        head,
    })
}
