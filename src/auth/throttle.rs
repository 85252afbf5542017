//! Login throttling, per account and per client address. An attempt is counted before
//! its password (or code) is checked, in one atomic statement per key: of a burst of
//! simultaneous guesses, no more than the limit are checked. At the limit, every attempt
//! is refused, without a write, until the lock-out period has passed; a success gives its
//! count back. Keys are keyed hashes, so the table tells nothing without the
//! application key.

use std::net::IpAddr;

use sqlx::PgConnection;

use crate::{
    config::Config,
    keys::{Keys, Use},
};

pub struct ThrottleKeys {
    account: Vec<u8>,
    address: Vec<u8>,
}

impl ThrottleKeys {
    pub fn new(keys: &Keys, email: &str, ip: IpAddr) -> Self {
        Self::scoped(keys, "", email, ip)
    }

    /// Counters of their own for another kind of request (`scope`, e.g. `my-data:`), so
    /// that it does not use up the logins of the same address or client.
    pub fn scoped(keys: &Keys, scope: &str, email: &str, ip: IpAddr) -> Self {
        let hash = |s: String| keys.keyed_hash(Use::Throttle, s.as_bytes());
        Self {
            account: hash(format!("{scope}account:{}", email.trim().to_lowercase())),
            address: hash(format!("{scope}address:{ip}")),
        }
    }
}

/// An attempt that may be checked.
pub struct Attempt {
    /// The attempt reached the limit on one of the keys: if it fails, a lock-out begins.
    pub last_before_lockout: bool,
}

/// Counts an attempt on both keys, or refuses it (`None`) when either is locked out. Both
/// are counted in one transaction, the account first: simultaneous attempts on one
/// account take their turns whole, so exactly one of them is the last before a lock-out.
pub async fn attempt(
    conn: &mut PgConnection,
    keys: &ThrottleKeys,
    config: &Config,
) -> sqlx::Result<Option<Attempt>> {
    // A flood is refused by one read, without a transaction or a row lock.
    if is_locked(conn, keys, config).await? {
        return Ok(None);
    }
    let mut tx = sqlx::Connection::begin(conn).await?;
    let (max, window) = (config.login_max_failures as i32, config.login_lockout);
    let Some(account) = count(&mut tx, &keys.account, max, window).await? else {
        return Ok(None);
    };
    let Some(address) = count(&mut tx, &keys.address, max, window).await? else {
        // Rolled back: the account's count goes back with it.
        return Ok(None);
    };
    tx.commit().await?;
    let max = config.login_max_failures;
    Ok(Some(Attempt {
        last_before_lockout: account >= max || address >= max,
    }))
}

async fn is_locked(
    conn: &mut PgConnection,
    keys: &ThrottleKeys,
    config: &Config,
) -> sqlx::Result<bool> {
    sqlx::query_scalar!(
        r#"SELECT EXISTS (
               SELECT 1 FROM login_throttle
               WHERE key_hash = ANY($1) AND attempts >= $2
                 AND since >= now() - make_interval(secs => $3)) AS "locked!""#,
        &[keys.account.clone(), keys.address.clone()],
        config.login_max_failures as i32,
        config.login_lockout.as_secs_f64(),
    )
    .fetch_one(conn)
    .await
}

/// One more attempt on the key, unless it is locked out. A window that has passed
/// starts anew; the attempt that reaches the limit starts the lock-out period.
async fn count(
    conn: &mut PgConnection,
    key: &[u8],
    max: i32,
    window: std::time::Duration,
) -> sqlx::Result<Option<i64>> {
    let attempts = sqlx::query_scalar!(
        r#"INSERT INTO login_throttle AS t (key_hash, attempts, since) VALUES ($1, 1, now())
           ON CONFLICT (key_hash) DO UPDATE SET
               attempts = CASE WHEN t.since < now() - make_interval(secs => $3) THEN 1
                               ELSE t.attempts + 1 END,
               since = CASE WHEN t.since < now() - make_interval(secs => $3) THEN now()
                            WHEN t.attempts + 1 >= $2 THEN now()
                            ELSE t.since END
           WHERE t.since < now() - make_interval(secs => $3) OR t.attempts < $2
           RETURNING attempts"#,
        key,
        max,
        window.as_secs_f64(),
    )
    .fetch_optional(conn)
    .await?;
    Ok(attempts.map(i64::from))
}

/// Counts one use of a public action (a contact-form message, a new chat, a subscription
/// request) under `key`, a scope and a value (`contact:<client>`, `subscribe-address:…`):
/// false once `max` uses fell within `window`. The counters share the login's table and
/// clean-up.
pub async fn spend(
    conn: &mut PgConnection,
    keys: &Keys,
    key: &str,
    max: i32,
    window: std::time::Duration,
) -> sqlx::Result<bool> {
    let key = keys.keyed_hash(Use::Throttle, key.as_bytes());
    Ok(count(conn, &key, max, window).await?.is_some())
}

async fn give_back(conn: &mut PgConnection, key: &[u8]) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE login_throttle SET attempts = greatest(attempts - 1, 0) WHERE key_hash = $1",
        key
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// A successful login forgives the account's earlier failures, and gives the address
/// back the attempt it counted (its other failures stay).
pub async fn succeeded(conn: &mut PgConnection, keys: &ThrottleKeys) -> sqlx::Result<()> {
    sqlx::query!(
        "DELETE FROM login_throttle WHERE key_hash = $1",
        keys.account
    )
    .execute(&mut *conn)
    .await?;
    give_back(conn, &keys.address).await
}

/// Forgets counters whose window has passed.
pub async fn remove_expired(
    conn: &mut PgConnection,
    at: time::OffsetDateTime,
    config: &Config,
) -> sqlx::Result<u64> {
    let removed = sqlx::query!(
        "DELETE FROM login_throttle WHERE since < $1",
        at - config.login_lockout
    )
    .execute(conn)
    .await?;
    Ok(removed.rows_affected())
}
