//! Every kind of mail the application sends. Each is the data its feature supplies and one
//! template set under `templates/email/<kind>/`: `subject.txt`, `body.txt` (extending
//! `email/layout.txt`) and `body.html` (extending `email/layout.html`). Texts come from
//! the `mail.*` keys of the i18n catalogues, so one set serves every language. Besides the
//! kind's data as `m`, the templates see `t` (the recipient's language) and `company`.

use askama::Template;

use crate::web::Tr;

/// A kind of mail: what it is called and how it renders.
pub trait MailKind {
    /// Shown to administrators in the outbox.
    fn name(&self) -> &'static str;
    fn render(&self, t: Tr, company: &str) -> askama::Result<Rendered>;
}

/// A mail's subject and bodies in one language.
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// Declares a kind: its data struct and the three templates that render it.
macro_rules! kinds {
    ($(
        $(#[$doc:meta])*
        $kind:ident, named $name:expr, from $subject:tt, $text:tt, $html:tt {
            $($(#[$field_doc:meta])* $field:ident: $ty:ty,)*
        }
    )*) => {$(
        $(#[$doc])*
        pub struct $kind {
            $($(#[$field_doc])* pub $field: $ty,)*
        }

        const _: () = {
            // A subject may not need the kind's data.
            #[allow(dead_code)]
            #[derive(Template)]
            #[template(path = $subject)]
            struct Subject<'a> {
                t: Tr,
                company: &'a str,
                m: &'a $kind,
            }

            #[derive(Template)]
            #[template(path = $text)]
            struct Text<'a> {
                t: Tr,
                company: &'a str,
                m: &'a $kind,
            }

            #[derive(Template)]
            #[template(path = $html)]
            struct Html<'a> {
                t: Tr,
                company: &'a str,
                subject: &'a str,
                m: &'a $kind,
            }

            impl MailKind for $kind {
                fn name(&self) -> &'static str {
                    let name: fn(&$kind) -> &'static str = $name;
                    name(self)
                }

                fn render(&self, t: Tr, company: &str) -> askama::Result<Rendered> {
                    let subject = Subject { t, company, m: self }.render()?;
                    // A subject is one line, whatever the template's line breaks.
                    let subject = subject.split_whitespace().collect::<Vec<_>>().join(" ");
                    let text = Text { t, company, m: self }.render()?;
                    let html = Html { t, company, subject: &subject, m: self }.render()?;
                    Ok(Rendered { subject, text, html })
                }
            }
        };
    )*};
}

kinds! {
    /// A new staff account: the one-time link to choose a password.
    Invitation, named |_| "invitation",
    from "email/invitation/subject.txt", "email/invitation/body.txt", "email/invitation/body.html" {
        name: String,
        link: String,
        valid_days: u64,
    }

    /// The question to someone in quarantine: confirm and consent, or refuse (R-CUST-12).
    Consent,
    named |m| if m.reminder { "consent_reminder" } else { "consent_request" },
    from "email/consent/subject.txt", "email/consent/body.txt", "email/consent/body.html" {
        name: String,
        /// The company the person works for.
        employer: String,
        confirm_link: String,
        refuse_link: String,
        /// The last day to answer, as the person reads dates.
        deadline: String,
        /// The same question again, after no answer.
        reminder: bool,
        /// The exact consent text, as recorded when they confirm.
        consent_text: String,
    }

    /// How an earlier contact's data is handled and how to see, change or erase it
    /// (R-CUST-13).
    LegacyInformation, named |_| "legacy_information",
    from "email/legacy_information/subject.txt", "email/legacy_information/body.txt",
         "email/legacy_information/body.html" {
        name: String,
        /// Where to write to see, correct or erase one's data.
        info_address: String,
    }

    /// The audit log's head, kept outside the database by the info address: what
    /// `audit verify --head` checks against.
    AuditHead, named |_| "audit_head",
    from "email/audit_head/subject.txt", "email/audit_head/body.txt", "email/audit_head/body.html" {
        /// The newest sealed row.
        row: i64,
        hash: String,
        /// The day it was taken, as `2026-11-30`.
        day: String,
    }

    /// A confirmed person's address was changed by staff: its owner confirms it before
    /// any other mail goes there.
    ContactEmailChange, named |_| "contact_email_change",
    from "email/contact_email_change/subject.txt", "email/contact_email_change/body.txt",
         "email/contact_email_change/body.html" {
        name: String,
        link: String,
    }

    /// A staff member's new address: the link that makes it the account's address.
    UserEmailChange, named |_| "user_email_change",
    from "email/user_email_change/subject.txt", "email/user_email_change/body.txt",
         "email/user_email_change/body.html" {
        name: String,
        link: String,
        valid_hours: i64,
    }

    /// The link that confirms a newsletter subscription (double opt-in).
    NewsletterConfirm, named |_| "newsletter_confirm",
    from "email/newsletter_confirm/subject.txt", "email/newsletter_confirm/body.txt",
         "email/newsletter_confirm/body.html" {
        name: String,
        link: String,
    }

    /// A campaign, with the recipient's own unsubscribe link.
    Newsletter, named |_| "newsletter",
    from "email/newsletter/subject.txt", "email/newsletter/body.txt", "email/newsletter/body.html" {
        subject: String,
        /// Rendered from the campaign's Markdown, raw HTML left out.
        body_html: String,
        body_text: String,
        unsubscribe_link: String,
    }

    /// To a staff member's old address, once the new one is in use.
    UserEmailChanged, named |_| "user_email_changed",
    from "email/user_email_changed/subject.txt", "email/user_email_changed/body.txt",
         "email/user_email_changed/body.html" {
        name: String,
    }

    /// A register extract (GDPR Art. 15 and 20): the PDF and the JSON ride as attachments;
    /// when the person asked for it themselves, links to ask for a change or erasure.
    RegisterExtract, named |_| "register_extract",
    from "email/register_extract/subject.txt", "email/register_extract/body.txt",
         "email/register_extract/body.html" {
        rectify_link: Option<String>,
        erase_link: Option<String>,
        valid_days: u32,
    }

    /// The answer to an erasure request (GDPR Art. 17, 19): what was erased, what a law
    /// made us keep, and who received the data.
    ErasureDone, named |_| ERASURE_DONE,
    from "email/erasure_done/subject.txt", "email/erasure_done/body.txt",
         "email/erasure_done/body.html" {
        erased: Vec<String>,
        kept: Vec<String>,
        recipients: Vec<String>,
    }

    /// A request's answer is extended (GDPR Art. 12(3)): until when, and why.
    RequestExtended, named |_| "request_extended",
    from "email/request_extended/subject.txt", "email/request_extended/body.txt",
         "email/request_extended/body.html" {
        until: String,
        reason: String,
    }
    /// A message left through the contact form, or through the chat while no operator was
    /// online, to the info address (R-FORM-3).
    ContactMessage, named |_| "contact_message",
    from "email/contact_message/subject.txt", "email/contact_message/body.txt",
         "email/contact_message/body.html" {
        email: String,
        name: String,
        company: String,
        phone: String,
        message: String,
        from_chat: bool,
        /// The message in the inbox.
        link: String,
    }

    /// A closed chat: what the visitor left and the transcript, to the info address and
    /// the chat operators (R-CHAT-3).
    ChatTranscript, named |_| "chat_transcript",
    from "email/chat_transcript/subject.txt", "email/chat_transcript/body.txt",
         "email/chat_transcript/body.html" {
        name: String,
        company: String,
        email: String,
        phone: String,
        /// The page the visitor was on.
        page: String,
        /// When the chat began, as `2026-11-30 14:05 UTC`.
        started: String,
        lines: Vec<TranscriptLine>,
        /// The conversation in the chat history.
        link: String,
    }
}

/// One message of a chat transcript.
pub struct TranscriptLine {
    /// `14:05`.
    pub at: String,
    /// Who wrote it: the visitor's name, or an operator's.
    pub who: String,
    pub text: String,
}

const ERASURE_DONE: &str = "erasure_done";

/// Kinds whose recipient is forgotten once delivered: the answer to an erasure must not
/// keep the address it confirms is gone.
pub const FORGET_RECIPIENT: [&str; 1] = [ERASURE_DONE];
