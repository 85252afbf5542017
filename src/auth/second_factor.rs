//! A second factor for staff: TOTP (RFC 6238: six digits, 30-second steps, SHA-1, what
//! every authenticator app reads from a QR code) and ten single-use recovery codes.
//!
//! The secret is encrypted with the application key, bound to the account's id. A code is
//! accepted once: the step of the last accepted code is kept, and only a later step
//! passes. Recovery codes carry 50 random bits each and are kept as keyed hashes (HMAC with
//! the application key): with that much randomness a slow password hash adds nothing but
//! a wait, without the key a copy of the database cannot test a guess, and the hash finds
//! its row at once.

use base64::{Engine, engine::general_purpose::STANDARD};
use qrcode::{QrCode, render::svg};
use rand::{Rng, RngCore};
use sqlx::PgConnection;
use subtle::ConstantTimeEq;
use totp_rs::{Algorithm, TOTP};
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::{
    audit::{self, Actor, Event},
    config::Config,
    keys::{Keys, Use},
};

const DIGITS: usize = 6;
const STEP_SECONDS: u64 = 30;
const SECRET_BYTES: usize = 20;
const RECOVERY_CODES: usize = 10;
/// Crockford's base32 alphabet: no i, l, o or u to misread.
const RECOVERY_ALPHABET: &[u8] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// What the enrolment page shows: the secret as a QR code and as text.
pub struct Enrolment {
    /// Base32, as authenticator apps take it when typed.
    pub secret: String,
    /// An SVG image of the `otpauth://` address, as a data URI.
    pub qr: String,
}

fn totp(secret: Vec<u8>, config: &Config, account: &str) -> TOTP {
    // The otpauth address separates issuer and account with a colon.
    TOTP::new_unchecked(
        Algorithm::SHA1,
        DIGITS,
        1,
        STEP_SECONDS,
        secret,
        Some(config.company_name.replace(':', " ")),
        account.replace(':', " "),
    )
}

fn seal(keys: &Keys, user_id: Uuid, secret: &[u8]) -> Vec<u8> {
    keys.encrypt(Use::SecondFactor, user_id.as_bytes(), secret)
}

fn open(keys: &Keys, user_id: Uuid, sealed: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    keys.decrypt(Use::SecondFactor, user_id.as_bytes(), sealed)
}

/// Begins (or shows again) an enrolment: a secret kept unconfirmed until a first code
/// proves the app has it. `None` if the account already has a confirmed factor.
pub async fn begin(
    conn: &mut PgConnection,
    config: &Config,
    user_id: Uuid,
    account: &str,
) -> sqlx::Result<Option<Enrolment>> {
    let mut fresh = Zeroizing::new([0u8; SECRET_BYTES]);
    rand::rng().fill_bytes(fresh.as_mut_slice());
    // A reload shows the secret already scanned, not a new one.
    sqlx::query!(
        "INSERT INTO second_factors (user_id, secret) VALUES ($1, $2) ON CONFLICT (user_id) DO NOTHING",
        user_id,
        seal(&config.keys, user_id, fresh.as_slice()),
    )
    .execute(&mut *conn)
    .await?;
    let sealed = sqlx::query_scalar!(
        "SELECT secret FROM second_factors WHERE user_id = $1 AND confirmed_at IS NULL",
        user_id
    )
    .fetch_optional(&mut *conn)
    .await?;
    let Some(secret) = sealed.and_then(|s| open(&config.keys, user_id, &s)) else {
        return Ok(None);
    };
    let totp = totp(secret.to_vec(), config, account);
    let svg = QrCode::new(totp.get_url().as_bytes())
        .map(|qr| {
            qr.render::<svg::Color>()
                .min_dimensions(220, 220)
                .quiet_zone(true)
                .build()
        })
        .unwrap_or_default();
    Ok(Some(Enrolment {
        secret: totp.get_secret_base32(),
        qr: format!("data:image/svg+xml;base64,{}", STANDARD.encode(svg)),
    }))
}

/// The step whose code `code` is, within one step either side of now (clocks drift).
fn matching_step(totp: &TOTP, code: &str) -> Option<i64> {
    let now = time::OffsetDateTime::now_utc().unix_timestamp().max(0) as u64;
    let current = now / STEP_SECONDS;
    [current.saturating_sub(1), current, current + 1]
        .into_iter()
        .find(|step| {
            let expected = totp.generate(step * STEP_SECONDS);
            bool::from(expected.as_bytes().ct_eq(code.as_bytes()))
        })
        .map(|step| step as i64)
}

/// A code as typed: spaces and dashes dropped, letters in lower case.
fn normalise(code: &str) -> String {
    code.chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .flat_map(char::to_lowercase)
        .collect()
}

fn is_totp_code(code: &str) -> bool {
    code.len() == DIGITS && code.bytes().all(|b| b.is_ascii_digit())
}

fn recovery_hash(keys: &Keys, user_id: Uuid, code: &str) -> Vec<u8> {
    let data = [user_id.as_bytes().as_slice(), code.as_bytes()].concat();
    keys.keyed_hash(Use::RecoveryCode, &data)
}

/// Confirms an enrolment with a first code. Returns the recovery codes, to be shown
/// once, or `None` if the code is wrong (or nothing waits to be confirmed).
pub async fn confirm(
    conn: &mut PgConnection,
    config: &Config,
    user_id: Uuid,
    account: &str,
    code: &str,
) -> sqlx::Result<Option<Vec<String>>> {
    let code = normalise(code);
    let sealed = sqlx::query_scalar!(
        "SELECT secret FROM second_factors WHERE user_id = $1 AND confirmed_at IS NULL FOR UPDATE",
        user_id
    )
    .fetch_optional(&mut *conn)
    .await?;
    let Some(secret) = sealed.and_then(|s| open(&config.keys, user_id, &s)) else {
        return Ok(None);
    };
    let step = is_totp_code(&code)
        .then(|| matching_step(&totp(secret.to_vec(), config, account), &code))
        .flatten();
    let Some(step) = step else {
        return Ok(None);
    };
    sqlx::query!(
        "UPDATE second_factors SET confirmed_at = now(), last_step = $2 WHERE user_id = $1",
        user_id,
        step
    )
    .execute(&mut *conn)
    .await?;
    let codes: Vec<String> = (0..RECOVERY_CODES).map(|_| recovery_code()).collect();
    let hashes: Vec<Vec<u8>> = codes
        .iter()
        .map(|c| recovery_hash(&config.keys, user_id, &normalise(c)))
        .collect();
    sqlx::query!("DELETE FROM recovery_codes WHERE user_id = $1", user_id)
        .execute(&mut *conn)
        .await?;
    sqlx::query!(
        "INSERT INTO recovery_codes (user_id, code_hash) SELECT $1, unnest($2::bytea[])",
        user_id,
        &hashes
    )
    .execute(&mut *conn)
    .await?;
    audit::record(
        conn,
        Event::new(
            &Actor::User(user_id),
            "user.second_factor_added",
            "user",
            Some(user_id.to_string()),
        ),
    )
    .await?;
    Ok(Some(codes))
}

/// Ten characters, shown as two groups of five.
fn recovery_code() -> String {
    let mut rng = rand::rng();
    let chars: String = (0..10)
        .map(|_| RECOVERY_ALPHABET[rng.random_range(0..RECOVERY_ALPHABET.len())] as char)
        .collect();
    format!("{}-{}", &chars[..5], &chars[5..])
}

/// Whether `code` is the account's current code (not used before) or one of its unused
/// recovery codes; either is used up by passing.
pub async fn verify(
    conn: &mut PgConnection,
    config: &Config,
    user_id: Uuid,
    account: &str,
    code: &str,
) -> sqlx::Result<bool> {
    let code = normalise(code);
    if is_totp_code(&code) {
        let sealed = sqlx::query_scalar!(
            "SELECT secret FROM second_factors WHERE user_id = $1 AND confirmed_at IS NOT NULL",
            user_id
        )
        .fetch_optional(&mut *conn)
        .await?;
        let step = sealed
            .and_then(|s| open(&config.keys, user_id, &s))
            .and_then(|secret| matching_step(&totp(secret.to_vec(), config, account), &code));
        let Some(step) = step else {
            return Ok(false);
        };
        // Of two uses of one code, one passes.
        let used = sqlx::query!(
            "UPDATE second_factors SET last_step = $2
             WHERE user_id = $1 AND (last_step IS NULL OR last_step < $2)",
            user_id,
            step
        )
        .execute(conn)
        .await?;
        return Ok(used.rows_affected() == 1);
    }
    if code.len() != 10 {
        return Ok(false);
    }
    let used = sqlx::query!(
        "UPDATE recovery_codes SET used_at = now()
         WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL",
        user_id,
        recovery_hash(&config.keys, user_id, &code)
    )
    .execute(&mut *conn)
    .await?;
    if used.rows_affected() == 0 {
        return Ok(false);
    }
    audit::record(
        conn,
        Event::new(
            &Actor::User(user_id),
            "user.recovery_code_used",
            "user",
            Some(user_id.to_string()),
        ),
    )
    .await?;
    Ok(true)
}

/// Removes the account's second factor and recovery codes (audited); whether there was one.
pub async fn remove(conn: &mut PgConnection, user_id: Uuid, actor: &Actor) -> sqlx::Result<bool> {
    sqlx::query!("DELETE FROM recovery_codes WHERE user_id = $1", user_id)
        .execute(&mut *conn)
        .await?;
    let removed = sqlx::query!(
        "DELETE FROM second_factors WHERE user_id = $1 AND confirmed_at IS NOT NULL",
        user_id
    )
    .execute(&mut *conn)
    .await?;
    if removed.rows_affected() == 0 {
        return Ok(false);
    }
    audit::record(
        conn,
        Event::new(
            actor,
            "user.second_factor_removed",
            "user",
            Some(user_id.to_string()),
        ),
    )
    .await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_read_as_typed() {
        assert_eq!(normalise(" 123 456 "), "123456");
        assert!(is_totp_code(&normalise("123 456")));
        assert!(!is_totp_code("12345a"));
        assert_eq!(normalise("ABCDE-FGHJK"), "abcdefghjk");
    }

    #[test]
    fn recovery_codes_are_two_groups_of_five_from_the_alphabet() {
        let code = recovery_code();
        assert_eq!(code.len(), 11);
        assert_eq!(&code[5..6], "-");
        assert!(
            normalise(&code)
                .bytes()
                .all(|b| RECOVERY_ALPHABET.contains(&b))
        );
        assert_ne!(code, recovery_code());
    }
}
