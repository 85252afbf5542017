//! Random single-purpose tokens for links and forms. Only their hash is stored, so a copy
//! of the database does not hold working links; lookups compare hashes.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use rand::RngCore;
use sha2::{Digest, Sha256};

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
