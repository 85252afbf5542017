//! Password hashing with argon2id at OWASP's parameters (m=19 MiB, t=2, p=1): each hash
//! takes tens of milliseconds of CPU, so it runs on the blocking pool, a bounded number
//! at a time, never on the async workers.

use std::sync::{Arc, LazyLock};

use argon2::{
    Argon2,
    password_hash::{PasswordHasher, PasswordVerifier, phc::PasswordHash},
};
use tokio::sync::Semaphore;

#[derive(Clone)]
pub struct Passwords {
    permits: Arc<Semaphore>,
}

impl Default for Passwords {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self::sharing(Arc::new(Semaphore::new(cores)))
    }
}

impl Passwords {
    /// Hashes at most as many passwords at once as `permits` has.
    pub fn sharing(permits: Arc<Semaphore>) -> Self {
        Self { permits }
    }
}

/// Verified against when no account matches, so that a wrong address takes as long to
/// refuse as a wrong password.
static DECOY: LazyLock<String> = LazyLock::new(|| {
    let password = crate::tokens::random_token();
    Argon2::default()
        .hash_password(password.as_bytes())
        .expect("hashing a random password")
        .to_string()
});

impl Passwords {
    pub async fn hash(&self, password: &str) -> anyhow::Result<String> {
        let _permit = self.permits.acquire().await?;
        let password = password.to_string();
        tokio::task::spawn_blocking(move || {
            Argon2::default()
                .hash_password(password.as_bytes())
                .map(|h| h.to_string())
                .map_err(|e| anyhow::anyhow!("hashing a password: {e}"))
        })
        .await?
    }

    /// Whether `password` matches `hash`; with no hash, spends the same time and says no.
    pub async fn verify(&self, hash: Option<&str>, password: &str) -> bool {
        let Ok(_permit) = self.permits.acquire().await else {
            return false;
        };
        let (known, hash) = match hash {
            Some(h) => (true, h.to_string()),
            None => (false, DECOY.clone()),
        };
        let password = password.to_string();
        let matches = tokio::task::spawn_blocking(move || {
            PasswordHash::new(&hash).is_ok_and(|parsed| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok()
            })
        })
        .await
        .unwrap_or(false);
        known && matches
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_its_password_only() {
        let passwords = Passwords::default();
        let hash = passwords.hash("correct horse battery").await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(passwords.verify(Some(&hash), "correct horse battery").await);
        assert!(!passwords.verify(Some(&hash), "wrong horse battery").await);
        assert!(!passwords.verify(None, "correct horse battery").await);
        assert!(!passwords.verify(Some("not a hash"), "x").await);
    }
}
