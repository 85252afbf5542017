//! Login throttling: after too many failures for one account or from one address within
//! the lock-out period, every attempt is refused until the period has passed. Keys are
//! stored hashed, so the table holds no addresses.

use std::net::IpAddr;

use sha2::{Digest, Sha256};
use sqlx::PgConnection;

use crate::config::Config;

pub struct Keys {
    account: Vec<u8>,
    address: Vec<u8>,
}

impl Keys {
    pub fn new(email: &str, ip: IpAddr) -> Self {
        let digest = |s: String| Sha256::digest(s.as_bytes()).to_vec();
        Self {
            account: digest(format!("account:{}", email.trim().to_lowercase())),
            address: digest(format!("address:{ip}")),
        }
    }
}

pub async fn is_locked(
    conn: &mut PgConnection,
    keys: &Keys,
    config: &Config,
) -> sqlx::Result<bool> {
    let since = time::OffsetDateTime::now_utc() - config.login_lockout;
    let worst = sqlx::query_scalar!(
        r#"SELECT coalesce(max(n), 0) AS "n!" FROM (
             SELECT count(*) AS n FROM login_failures
             WHERE key_hash = ANY($1) AND at > $2
             GROUP BY key_hash) AS per_key"#,
        &[keys.account.clone(), keys.address.clone()],
        since
    )
    .fetch_one(conn)
    .await?;
    Ok(worst >= config.login_max_failures)
}

pub async fn record_failure(conn: &mut PgConnection, keys: &Keys) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO login_failures (key_hash) VALUES ($1), ($2)",
        keys.account,
        keys.address
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// A successful login forgives the account's earlier failures (not the address's).
pub async fn clear_account(conn: &mut PgConnection, keys: &Keys) -> sqlx::Result<()> {
    sqlx::query!(
        "DELETE FROM login_failures WHERE key_hash = $1",
        keys.account
    )
    .execute(conn)
    .await?;
    Ok(())
}
