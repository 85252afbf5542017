//! The application key: 32 random bytes kept outside the database (`APP_KEY`, or the file
//! `DATA_DIR/app.key` made on first run with mode 0600). Everything secret is derived
//! from it with HKDF, one key per purpose: the keyed hashes of suppressed addresses and of
//! throttle keys, the encryption of second-factor secrets and of employees' identity codes,
//! bank accounts and salary data. A copy of the database
//! alone therefore reveals none of them.

use std::{
    fmt,
    io::Write,
    path::{Path, PathBuf},
    sync::Arc,
};

use aes_gcm::{
    Aes256Gcm, Nonce,
    aead::{Aead, KeyInit, Payload},
};
use anyhow::Context;
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

pub const KEY_FILE: &str = "app.key";

/// What a derived key is for; each gets a key of its own.
#[derive(Clone, Copy, Debug)]
pub enum Use {
    /// Keyed hashes of erased addresses (the suppression list).
    Suppression,
    /// Keyed hashes of login-throttle keys (accounts and client addresses).
    Throttle,
    /// Encryption of second-factor (TOTP) secrets.
    SecondFactor,
    /// Keyed hashes of second-factor recovery codes.
    RecoveryCode,
    /// Signing of the CSRF cookie given to visitors without a session.
    Csrf,
    /// Encryption of an employee's identity code, bank account and salary data.
    Personnel,
    /// Keyed hashes of identity codes, to find a duplicate without the plain value.
    IdentityCode,
}

impl Use {
    fn label(self) -> &'static [u8] {
        match self {
            Use::Suppression => b"gdpr-register suppression v1",
            Use::Throttle => b"gdpr-register throttle v1",
            Use::SecondFactor => b"gdpr-register second-factor v1",
            Use::RecoveryCode => b"gdpr-register recovery-code v1",
            Use::Csrf => b"gdpr-register csrf v1",
            Use::Personnel => b"gdpr-register personnel v1",
            Use::IdentityCode => b"gdpr-register identity-code v1",
        }
    }
}

#[derive(Clone)]
pub struct Keys {
    master: Arc<Zeroizing<[u8; 32]>>,
}

impl fmt::Debug for Keys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Keys([redacted])")
    }
}

impl Keys {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self {
            master: Arc::new(Zeroizing::new(bytes)),
        }
    }

    /// A fresh random key (tests, and the first run).
    pub fn random() -> Self {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        Self::from_bytes(bytes)
    }

    /// Reads a key written as 64 hexadecimal digits.
    pub fn parse(text: &str) -> Result<Self, String> {
        let bytes = hex::decode(text.trim())
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .ok_or("must be 64 hexadecimal digits (32 bytes), e.g. from `openssl rand -hex 32`")?;
        Ok(Self::from_bytes(bytes))
    }

    /// The key of `APP_KEY` if given, else the key file in the data folder, made on the
    /// first run (readable by its owner only).
    pub fn load_or_create(given: Option<Keys>, data_dir: &Path) -> anyhow::Result<Self> {
        if let Some(keys) = given {
            return Ok(keys);
        }
        let path = data_dir.join(KEY_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => Self::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Self::create_file(&path),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    /// Writes a new key beside the file, then links it into place: of two programs
    /// starting at once, one key wins and both use it.
    fn create_file(path: &PathBuf) -> anyhow::Result<Self> {
        use std::os::unix::fs::OpenOptionsExt;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("creating the folder {}", dir.display()))?;
        }
        let keys = Self::random();
        let draft = path.with_extension(format!("{}.new", crate::tokens::random_token()));
        let written = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&draft)
            .and_then(|mut file| {
                let text = Zeroizing::new(hex::encode(keys.master.as_slice()));
                file.write_all(text.as_bytes())?;
                file.sync_all()
            })
            .and_then(|()| std::fs::hard_link(&draft, path));
        std::fs::remove_file(&draft).ok();
        match written {
            Ok(()) => {
                tracing::warn!(
                    file = %path.display(),
                    "a new application key was made: back it up apart from the database"
                );
                Ok(keys)
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Self::load_or_create(None, path.parent().unwrap_or(Path::new(".")))
            }
            Err(e) => Err(e).with_context(|| format!("creating the key file {}", path.display())),
        }
    }

    fn derive(&self, purpose: Use) -> Zeroizing<[u8; 32]> {
        let mut out = Zeroizing::new([0u8; 32]);
        Hkdf::<Sha256>::new(None, self.master.as_slice())
            .expand(purpose.label(), out.as_mut_slice())
            .expect("32 bytes is a valid HKDF output length");
        out
    }

    /// HMAC-SHA-256 of `data` under the key for `purpose`.
    pub fn keyed_hash(&self, purpose: Use, data: &[u8]) -> Vec<u8> {
        let key = self.derive(purpose);
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key.as_slice())
            .expect("HMAC takes any key length");
        mac.update(data);
        mac.finalize().into_bytes().to_vec()
    }

    /// AES-256-GCM with a random nonce, stored in front of the ciphertext. `context` binds
    /// the value to its place (say, the account's id): moved elsewhere it does not decrypt.
    pub fn encrypt(&self, purpose: Use, context: &[u8], plaintext: &[u8]) -> Vec<u8> {
        let key = self.derive(purpose);
        let cipher = Aes256Gcm::new_from_slice(key.as_slice()).expect("a 32-byte key");
        let mut nonce = [0u8; 12];
        rand::rng().fill_bytes(&mut nonce);
        let sealed = cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: context,
                },
            )
            .expect("encryption of a short value");
        [nonce.as_slice(), &sealed].concat()
    }

    /// The plaintext of [`Keys::encrypt`]'s output, or `None` if it was made with another
    /// key or context, or changed.
    pub fn decrypt(
        &self,
        purpose: Use,
        context: &[u8],
        sealed: &[u8],
    ) -> Option<Zeroizing<Vec<u8>>> {
        if sealed.len() < 12 {
            return None;
        }
        let key = self.derive(purpose);
        let cipher = Aes256Gcm::new_from_slice(key.as_slice()).expect("a 32-byte key");
        let (nonce, ciphertext) = sealed.split_at(12);
        cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: context,
                },
            )
            .ok()
            .map(Zeroizing::new)
    }

    /// Names the key without revealing it (for backups and the operator).
    pub fn fingerprint(&self) -> String {
        let digest = Sha256::digest(self.keyed_hash(Use::Suppression, b"fingerprint"));
        hex::encode(&digest[..8])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_keys_differ_per_use_and_per_master_key() {
        let a = Keys::random();
        let b = Keys::random();
        assert_ne!(
            a.keyed_hash(Use::Suppression, b"x"),
            a.keyed_hash(Use::Throttle, b"x")
        );
        assert_ne!(
            a.keyed_hash(Use::Suppression, b"x"),
            b.keyed_hash(Use::Suppression, b"x")
        );
        assert_eq!(
            a.keyed_hash(Use::Suppression, b"x"),
            a.keyed_hash(Use::Suppression, b"x")
        );
    }

    #[test]
    fn encryption_round_trips_only_with_the_same_key_and_context() {
        let keys = Keys::random();
        let sealed = keys.encrypt(Use::SecondFactor, b"user-1", b"secret");
        assert_eq!(
            keys.decrypt(Use::SecondFactor, b"user-1", &sealed)
                .unwrap()
                .as_slice(),
            b"secret"
        );
        assert!(
            keys.decrypt(Use::SecondFactor, b"user-2", &sealed)
                .is_none()
        );
        assert!(
            Keys::random()
                .decrypt(Use::SecondFactor, b"user-1", &sealed)
                .is_none()
        );
        assert!(
            keys.decrypt(Use::SecondFactor, b"user-1", &sealed[..5])
                .is_none()
        );
    }

    #[test]
    fn a_key_is_64_hex_digits() {
        assert!(Keys::parse(&"ab".repeat(32)).is_ok());
        assert!(Keys::parse("abc").is_err());
        assert!(Keys::parse(&"zz".repeat(32)).is_err());
    }

    #[test]
    fn the_key_file_is_made_once_readable_by_its_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let first = Keys::load_or_create(None, dir.path()).unwrap();
        let mode = std::fs::metadata(dir.path().join(KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let again = Keys::load_or_create(None, dir.path()).unwrap();
        assert_eq!(first.fingerprint(), again.fingerprint());
    }
}
