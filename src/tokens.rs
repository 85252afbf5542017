//! Links mailed to someone, one service for every purpose: [`issue`] makes a random
//! token and keeps only its hash; [`peek`] says what a link stands for without changing
//! anything (a GET, which mail scanners make too); [`consume`] uses it up once, inside the
//! caller's transaction; [`void`] cancels the open links of a subject whose address
//! changed, so a link in a mail to the old address stops working.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

/// What a link does. The purpose is part of the lookup: a token made for one purpose
/// never works for another.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// A new staff member sets their password.
    Invitation,
    /// A person in quarantine confirms their address and consents to storage.
    ConfirmStorage,
    /// A person in quarantine refuses storage.
    RefuseStorage,
    /// A staff member's new address is confirmed by its owner.
    UserEmailChange,
    /// A person's address, changed by staff, is confirmed by its owner.
    ContactEmailChange,
    /// A data subject, sent their extract, asks for a correction.
    RequestRectification,
    /// A data subject, sent their extract, asks to be erased.
    RequestErasure,
    /// Someone who asked for the newsletter confirms the address (double opt-in).
    NewsletterSubscribe,
    /// A newsletter's recipient unsubscribes; the link works as often as it is used.
    NewsletterUnsubscribe,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Invitation => "invitation",
            Purpose::ConfirmStorage => "consent.confirm",
            Purpose::RefuseStorage => "consent.refuse",
            Purpose::UserEmailChange => "user.email_change",
            Purpose::ContactEmailChange => "contact.email_change",
            Purpose::RequestRectification => "rights.rectification",
            Purpose::RequestErasure => "rights.erasure",
            Purpose::NewsletterSubscribe => "newsletter.subscribe",
            Purpose::NewsletterUnsubscribe => "newsletter.unsubscribe",
        }
    }
}

/// A link as stored.
#[derive(Clone, Debug)]
pub struct Link {
    pub subject: Uuid,
    pub payload: Option<String>,
    /// The token's hash, to name the link in a record (a consent's source).
    pub hash: Vec<u8>,
}

/// What a link stands for, when it is opened.
#[derive(Debug)]
pub enum Peeked {
    Valid(Link),
    Used(Link),
    Expired(Link),
    Unknown,
}

/// Makes a link valid until `expires_at` and returns its token, to be mailed.
pub async fn issue(
    conn: &mut PgConnection,
    purpose: Purpose,
    subject: Uuid,
    payload: Option<&str>,
    expires_at: OffsetDateTime,
) -> sqlx::Result<String> {
    let token = random_token();
    sqlx::query!(
        "INSERT INTO link_tokens (token_hash, purpose, subject_id, payload, expires_at)
         VALUES ($1, $2, $3, $4, $5)",
        hash(&token),
        purpose.as_str(),
        subject,
        payload,
        expires_at,
    )
    .execute(conn)
    .await?;
    Ok(token)
}

/// Makes one link for each subject, all valid until `expires_at`, with one statement per
/// thousand; returns their tokens in the subjects' order.
pub async fn issue_many(
    conn: &mut PgConnection,
    purpose: Purpose,
    subjects: &[Uuid],
    expires_at: OffsetDateTime,
) -> sqlx::Result<Vec<String>> {
    let tokens: Vec<String> = subjects.iter().map(|_| random_token()).collect();
    for (subjects, tokens) in subjects.chunks(1000).zip(tokens.chunks(1000)) {
        let hashes: Vec<Vec<u8>> = tokens.iter().map(|t| hash(t)).collect();
        sqlx::query!(
            "INSERT INTO link_tokens (token_hash, purpose, subject_id, expires_at)
             SELECT h, $2, s, $4 FROM unnest($1::bytea[], $3::uuid[]) AS t(h, s)",
            &hashes,
            purpose.as_str(),
            subjects,
            expires_at,
        )
        .execute(&mut *conn)
        .await?;
    }
    Ok(tokens)
}

/// What the link stands for; changes nothing.
pub async fn peek(conn: &mut PgConnection, purpose: Purpose, token: &str) -> sqlx::Result<Peeked> {
    if !looks_valid(token) {
        return Ok(Peeked::Unknown);
    }
    let row = sqlx::query!(
        r#"SELECT token_hash, subject_id, payload, used_at IS NOT NULL AS "used!",
                  expires_at < now() AS "expired!"
           FROM link_tokens WHERE token_hash = $1 AND purpose = $2"#,
        hash(token),
        purpose.as_str(),
    )
    .fetch_optional(conn)
    .await?;
    Ok(match row {
        None => Peeked::Unknown,
        Some(r) => {
            let link = Link {
                subject: r.subject_id,
                payload: r.payload,
                hash: r.token_hash,
            };
            if r.used {
                Peeked::Used(link)
            } else if r.expired {
                Peeked::Expired(link)
            } else {
                Peeked::Valid(link)
            }
        }
    })
}

/// Uses the link up, if it is valid: of two simultaneous uses, one gets it.
pub async fn consume(
    conn: &mut PgConnection,
    purpose: Purpose,
    token: &str,
) -> sqlx::Result<Option<Link>> {
    if !looks_valid(token) {
        return Ok(None);
    }
    let row = sqlx::query!(
        "UPDATE link_tokens SET used_at = now()
         WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at >= now()
         RETURNING token_hash, subject_id, payload",
        hash(token),
        purpose.as_str(),
    )
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|r| Link {
        subject: r.subject_id,
        payload: r.payload,
        hash: r.token_hash,
    }))
}

/// Forgets what a used link carried, once it has served (it may be personal data).
pub async fn clear_payload(conn: &mut PgConnection, hash: &[u8]) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE link_tokens SET payload = NULL WHERE token_hash = $1",
        hash
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Cancels the subject's open links of these purposes (all, if none are named).
pub async fn void(
    conn: &mut PgConnection,
    subject: Uuid,
    purposes: &[Purpose],
) -> sqlx::Result<u64> {
    let purposes: Vec<&str> = purposes.iter().map(|p| p.as_str()).collect();
    let voided = sqlx::query!(
        "DELETE FROM link_tokens
         WHERE subject_id = $1 AND used_at IS NULL AND (cardinality($2::text[]) = 0 OR purpose = ANY($2))",
        subject,
        &purposes as &[&str],
    )
    .execute(conn)
    .await?;
    Ok(voided.rows_affected())
}

/// After an erasure: the subject's open links go, and its used ones point at nobody (the
/// nil id), so that opening one again still says "already done" without naming anyone.
pub async fn forget_subject(conn: &mut PgConnection, subject: Uuid) -> sqlx::Result<()> {
    void(conn, subject, &[]).await?;
    sqlx::query!(
        "UPDATE link_tokens SET subject_id = $2, payload = NULL WHERE subject_id = $1",
        subject,
        Uuid::nil()
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Forgets links expired before `at`. A used link stays until then, so that opening it
/// again says "already done" rather than "unknown".
pub async fn remove_expired(conn: &mut PgConnection, at: OffsetDateTime) -> sqlx::Result<u64> {
    let removed = sqlx::query!("DELETE FROM link_tokens WHERE expires_at < $1", at)
        .execute(conn)
        .await?;
    Ok(removed.rows_affected())
}

/// 256 random bits, URL-safe.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The stored form of a token: its SHA-256.
pub fn hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// Whether a string could be one of our tokens at all (cheap refusal of junk).
pub fn looks_valid(token: &str) -> bool {
    token.len() == 43
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_unique_and_recognisable() {
        let a = random_token();
        assert!(looks_valid(&a));
        assert_ne!(a, random_token());
        assert!(!looks_valid("../../etc/passwd"));
        assert!(!looks_valid(""));
        assert_eq!(hash(&a), hash(&a));
    }
}
