//! The four registers as the company describes them (R-ALL-1): controller, purposes, legal
//! bases, categories, recipients, transfers, retention and the responsible person. The
//! privacy notice, the record of processing and the register extract are generated from
//! here, and the retention periods are read from the same settings the retention jobs
//! enforce, so a notice never promises what the code does not do.
//!
//! Texts are i18n keys (`register.*`); a retention rule's `{n}` is the number it carries.

use serde::Serialize;

use crate::{config::Config, web::Tr};

/// The accounting bureau that runs the payroll, a contracted processor (R-PERS-2).
pub const PAYROLL_BUREAU: &str = "Jakobstads Bokföringsbyrå Ab (JBB)";
/// Occupational health care, contracted (R-PERS-2).
pub const OCCUPATIONAL_HEALTH: &str = "Jakobstads Arbetshälsovårdsförening r.f.";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RegisterId {
    Customers,
    Personnel,
    Chat,
    Contact,
}

impl RegisterId {
    pub const ALL: [RegisterId; 4] = [
        RegisterId::Customers,
        RegisterId::Personnel,
        RegisterId::Chat,
        RegisterId::Contact,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RegisterId::Customers => "customers",
            RegisterId::Personnel => "personnel",
            RegisterId::Chat => "chat",
            RegisterId::Contact => "contact",
        }
    }
}

/// A purpose and the legal basis it rests on (GDPR Art. 6(1)).
#[derive(Clone, Debug, Serialize)]
pub struct Purpose {
    pub purpose: &'static str,
    pub basis: &'static str,
}

/// Who receives the register's data, and why.
#[derive(Clone, Debug, Serialize)]
pub struct Recipient {
    /// A proper name, or an i18n key when `named` is false.
    pub name: &'static str,
    pub named: bool,
    pub why: &'static str,
}

/// How long one kind of data is kept: the rule's text and the number in it.
#[derive(Clone, Debug, Serialize)]
pub struct Retention {
    pub rule: &'static str,
    pub n: Option<u32>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Register {
    pub id: RegisterId,
    pub name: &'static str,
    /// The person responsible for the register (R-RESP-1).
    pub responsible: &'static str,
    pub purposes: Vec<Purpose>,
    pub data: Vec<&'static str>,
    pub subjects: Vec<&'static str>,
    pub recipients: Vec<Recipient>,
    /// Transfers outside the EU/EEA.
    pub transfers: &'static str,
    pub retention: Vec<Retention>,
    /// Who may see the data inside the company.
    pub access: &'static str,
    pub security: &'static str,
}

fn purpose(purpose: &'static str, basis: &'static str) -> Purpose {
    Purpose { purpose, basis }
}

fn kept(rule: &'static str, n: impl Into<Option<u32>>) -> Retention {
    Retention { rule, n: n.into() }
}

fn mail_host() -> Recipient {
    Recipient {
        name: "register.recipient.mail_host",
        named: false,
        why: "register.recipient.mail_host.why",
    }
}

/// Days of a duration, rounded down.
fn days(d: std::time::Duration) -> u32 {
    u32::try_from(d.as_secs() / 86_400).unwrap_or(u32::MAX)
}

/// Every register, with the retention the running configuration enforces.
pub fn all(config: &Config) -> Vec<Register> {
    RegisterId::ALL.iter().map(|id| of(*id, config)).collect()
}

pub fn of(id: RegisterId, config: &Config) -> Register {
    match id {
        RegisterId::Customers => Register {
            id,
            name: "register.customers",
            responsible: "register.responsible.admin",
            purposes: vec![
                purpose(
                    "register.customers.purpose.communicate",
                    "register.basis.legitimate_interest",
                ),
                purpose(
                    "register.customers.purpose.prospects",
                    "register.basis.legitimate_interest",
                ),
                purpose(
                    "register.customers.purpose.newsletter",
                    "register.basis.consent",
                ),
            ],
            data: vec![
                "register.data.contact",
                "register.data.company",
                "register.data.consents",
                "register.data.communications",
                "register.data.newsletter",
            ],
            subjects: vec!["register.subjects.customers"],
            recipients: vec![mail_host()],
            transfers: "register.transfers.none",
            retention: vec![
                kept("register.retention.quarantine", config.quarantine_days),
                kept("register.retention.inactivity", config.inactivity_years),
                kept("register.retention.mail", days(config.sent_mail_retention)),
                kept("register.retention.on_request", None),
            ],
            access: "register.access.customers",
            security: "register.security.common",
        },
        RegisterId::Personnel => {
            let r = config.personnel_retention;
            Register {
                id,
                name: "register.personnel",
                responsible: "register.responsible.ceo",
                purposes: vec![
                    purpose(
                        "register.personnel.purpose.contract",
                        "register.basis.contract",
                    ),
                    purpose(
                        "register.personnel.purpose.payroll",
                        "register.basis.legal_obligation",
                    ),
                    purpose(
                        "register.personnel.purpose.health",
                        "register.basis.legal_obligation",
                    ),
                ],
                data: vec![
                    "register.data.employee",
                    "register.data.identity_code",
                    "register.data.background",
                ],
                subjects: vec!["register.subjects.personnel"],
                recipients: vec![
                    Recipient {
                        name: PAYROLL_BUREAU,
                        named: true,
                        why: "register.recipient.payroll",
                    },
                    Recipient {
                        name: OCCUPATIONAL_HEALTH,
                        named: true,
                        why: "register.recipient.occupational_health",
                    },
                ],
                transfers: "register.transfers.none",
                retention: vec![
                    kept("register.retention.personnel_grace", r.grace_days),
                    kept("register.retention.personnel_payroll", r.payroll_years),
                    kept("register.retention.personnel_record", r.record_years),
                ],
                access: "register.access.personnel",
                security: "register.security.personnel",
            }
        }
        RegisterId::Chat => Register {
            id,
            name: "register.chat",
            responsible: "register.responsible.admin",
            purposes: vec![purpose(
                "register.chat.purpose",
                "register.basis.legitimate_interest",
            )],
            data: vec!["register.data.visitor", "register.data.messages"],
            subjects: vec!["register.subjects.visitors"],
            recipients: vec![Recipient {
                name: "register.recipient.info",
                named: false,
                why: "register.recipient.info.why",
            }],
            transfers: "register.transfers.none",
            retention: vec![match config.chat_retention_days {
                Some(n) => kept("register.retention.chat_days", n),
                None => kept("register.retention.chat_until_deleted", None),
            }],
            access: "register.access.chat",
            security: "register.security.common",
        },
        RegisterId::Contact => Register {
            id,
            name: "register.contact",
            responsible: "register.responsible.admin",
            purposes: vec![purpose(
                "register.contact.purpose",
                "register.basis.legitimate_interest",
            )],
            data: vec!["register.data.visitor", "register.data.messages"],
            subjects: vec!["register.subjects.visitors"],
            recipients: vec![Recipient {
                name: "register.recipient.info",
                named: false,
                why: "register.recipient.info.why",
            }],
            transfers: "register.transfers.none",
            retention: vec![kept(
                "register.retention.contact_days",
                config.contact_retention_days,
            )],
            access: "register.access.contact",
            security: "register.security.common",
        },
    }
}

/// A register in one language, as the notices and the extract show it.
#[derive(Clone, Debug, Serialize)]
pub struct Described {
    pub id: RegisterId,
    pub name: String,
    pub responsible: String,
    /// (purpose, legal basis)
    pub purposes: Vec<(String, String)>,
    pub data: Vec<String>,
    pub subjects: Vec<String>,
    pub recipients: Vec<String>,
    pub transfers: String,
    pub retention: Vec<String>,
    pub access: String,
    pub security: String,
}

impl Register {
    pub fn describe(&self, t: Tr) -> Described {
        let all = |keys: &[&'static str]| keys.iter().map(|k| t.get(k).to_string()).collect();
        Described {
            id: self.id,
            name: t.get(self.name).to_string(),
            responsible: t.get(self.responsible).to_string(),
            purposes: self
                .purposes
                .iter()
                .map(|p| (t.get(p.purpose).to_string(), t.get(p.basis).to_string()))
                .collect(),
            data: all(&self.data),
            subjects: all(&self.subjects),
            recipients: self
                .recipients
                .iter()
                .map(|r| {
                    let name = if r.named { r.name } else { t.get(r.name) };
                    format!("{name}: {}", t.get(r.why))
                })
                .collect(),
            transfers: t.get(self.transfers).to_string(),
            retention: self
                .retention
                .iter()
                .map(|r| match r.n {
                    Some(n) => t.with(r.rule, "n", n),
                    None => t.get(r.rule).to_string(),
                })
                .collect(),
            access: t.get(self.access).to_string(),
            security: t.get(self.security).to_string(),
        }
    }
}

/// Every register described in one language.
pub fn described(config: &Config, t: Tr) -> Vec<Described> {
    all(config).iter().map(|r| r.describe(t)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retention_follows_the_settings() {
        let mut config = Config::with_defaults("d".into(), "127.0.0.1:1".parse().unwrap());
        config.inactivity_years = 7;
        config.chat_retention_days = Some(90);
        let customers = of(RegisterId::Customers, &config);
        assert!(
            customers
                .retention
                .iter()
                .any(|r| r.rule == "register.retention.inactivity" && r.n == Some(7))
        );
        let chat = of(RegisterId::Chat, &config);
        assert_eq!(chat.retention[0].n, Some(90));
    }
}
