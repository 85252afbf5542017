//! DKIM signatures (RFC 6376) on every outgoing mail, when `DKIM_SELECTOR` and
//! `DKIM_KEY_FILE` are set, for the domain of the sender's address. The unsubscribe
//! headers of a newsletter are signed too, so that no one on the way can change them.

use std::{fmt, sync::Arc};

use lettre::message::{
    DkimCanonicalization, DkimCanonicalizationType, DkimConfig, DkimSigningAlgorithm,
    DkimSigningKey, Message, header::HeaderName,
};

/// Headers every signature covers (those a mail has).
const SIGNED: [&str; 6] = [
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "MIME-Version",
];
/// Signed as well when a mail carries them.
const LIST: [&str; 2] = ["List-Unsubscribe", "List-Unsubscribe-Post"];

/// A signer; cheap to clone.
#[derive(Clone)]
pub struct Dkim(Arc<Signers>);

struct Signers {
    plain: DkimConfig,
    list: DkimConfig,
}

impl fmt::Debug for Dkim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Dkim([key redacted])")
    }
}

impl Dkim {
    /// From a selector, the signing domain and an RSA private key in PEM (PKCS #1,
    /// `BEGIN RSA PRIVATE KEY`).
    pub fn new(selector: &str, domain: &str, pem: &str) -> Result<Self, String> {
        let valid_label = |s: &str| {
            !s.is_empty()
                && s.split('.').all(|l| {
                    !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                })
        };
        if !valid_label(selector) {
            return Err("the selector must be a DNS name such as `mail2026`".into());
        }
        let config = |headers: &[&'static str]| -> Result<DkimConfig, String> {
            let key = DkimSigningKey::new(pem, DkimSigningAlgorithm::Rsa).map_err(|_| {
                "the key file must hold an RSA private key in PEM, `BEGIN RSA PRIVATE KEY` \
                 (e.g. from `openssl genrsa -traditional 2048`)"
                    .to_string()
            })?;
            Ok(DkimConfig::new(
                selector.to_string(),
                domain.to_string(),
                key,
                headers
                    .iter()
                    .map(|h| HeaderName::new_from_ascii_str(h))
                    .collect(),
                DkimCanonicalization {
                    header: DkimCanonicalizationType::Relaxed,
                    body: DkimCanonicalizationType::Relaxed,
                },
            ))
        };
        let with_list: Vec<&'static str> = SIGNED.iter().chain(LIST.iter()).copied().collect();
        Ok(Self(Arc::new(Signers {
            plain: config(&SIGNED)?,
            list: config(&with_list)?,
        })))
    }

    /// Signs the mail; `list` if it carries the unsubscribe headers.
    pub fn sign(&self, message: &mut Message, list: bool) {
        message.sign(if list { &self.0.list } else { &self.0.plain });
    }
}
