//! Input parsed once into types that can only hold valid values.

use std::fmt;

/// An e-mail address as typed (trimmed), known to be deliverable in form.
/// Compared without regard to case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    /// Parses a typed address; the error is a translation key saying what is wrong.
    pub fn parse(input: &str) -> Result<Self, &'static str> {
        let value = input.trim();
        if value.is_empty() {
            return Err("field.required");
        }
        if value.chars().count() > 254 {
            return Err("field.email.too_long");
        }
        let Some((local, domain)) = value.rsplit_once('@') else {
            return Err("field.email.invalid");
        };
        let valid = !local.is_empty()
            && local.len() <= 64
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !value
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || "<>()[],;:\"\\".contains(c))
            && domain
                .split('.')
                .all(|label| !label.is_empty() && !label.starts_with('-') && !label.ends_with('-'))
            && value.parse::<lettre::Address>().is_ok();
        if valid {
            Ok(Self(value.to_string()))
        } else {
            Err("field.email.invalid")
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A person's name: 1 to 200 characters of any script, trimmed; no control characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PersonName(String);

impl PersonName {
    pub fn parse(input: &str) -> Result<Self, &'static str> {
        let value = input.trim();
        if value.is_empty() {
            return Err("field.required");
        }
        if value.chars().count() > 200 {
            return Err("field.too_long");
        }
        if value.chars().any(char::is_control) {
            return Err("field.invalid_characters");
        }
        Ok(Self(value.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A telephone number as typed: digits with the usual separators, 5 to 15 digits
/// (E.164's maximum), optionally starting with `+`. Spaces are collapsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Phone(String);

impl Phone {
    pub fn parse(input: &str) -> Result<Self, &'static str> {
        let value = input.split_whitespace().collect::<Vec<_>>().join(" ");
        if value.is_empty() {
            return Err("field.required");
        }
        let digits = value.chars().filter(char::is_ascii_digit).count();
        let allowed = value
            .chars()
            .enumerate()
            .all(|(i, c)| c.is_ascii_digit() || " -()/.".contains(c) || (c == '+' && i == 0));
        if !allowed || !(5..=15).contains(&digits) {
            return Err("field.phone.invalid");
        }
        Ok(Self(value))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A website: http or https with a host that has a dot; `btb.fi` becomes `https://btb.fi/`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebUrl(String);

impl WebUrl {
    pub fn parse(input: &str) -> Result<Self, &'static str> {
        let value = input.trim();
        if value.is_empty() {
            return Err("field.required");
        }
        let with_scheme = if value.contains("://") {
            value.to_string()
        } else {
            format!("https://{value}")
        };
        match url::Url::parse(&with_scheme) {
            Ok(url)
                if matches!(url.scheme(), "http" | "https")
                    && url.host_str().is_some_and(|h| h.contains('.'))
                    && value.len() <= 500 =>
            {
                Ok(Self(url.to_string()))
            }
            _ => Err("field.url.invalid"),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Free text of one line (a title, a department): trimmed, at most `max` characters.
pub fn short_text(input: &str, max: usize) -> Result<String, &'static str> {
    let value = input.trim();
    if value.chars().count() > max {
        return Err("field.too_long");
    }
    if value.chars().any(char::is_control) {
        return Err("field.invalid_characters");
    }
    Ok(value.to_string())
}

/// A field that may be left empty, else must parse.
pub fn optional<T>(
    input: &str,
    parse: impl Fn(&str) -> Result<T, &'static str>,
) -> Result<Option<T>, &'static str> {
    if input.trim().is_empty() {
        Ok(None)
    } else {
        parse(input).map(Some)
    }
}

/// A new password: at least 12 characters (and at most 1024, so hashing stays cheap).
pub struct NewPassword(String);

impl NewPassword {
    pub const MIN_CHARS: usize = 12;

    pub fn parse(input: &str) -> Result<Self, &'static str> {
        let chars = input.chars().count();
        if chars < Self::MIN_CHARS {
            return Err("field.password.too_short");
        }
        if input.len() > 1024 {
            return Err("field.too_long");
        }
        Ok(Self(input.to_string()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// What a staff account is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The marketing & sales director: the customer register, users, audit log.
    Admin,
    /// Other staff: the customer register.
    Employee,
    /// The personnel register.
    Ceo,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Admin, Role::Employee, Role::Ceo];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Employee => "employee",
            Role::Ceo => "ceo",
        }
    }

    pub fn parse(value: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == value)
    }

    /// The translation key of the role's name.
    pub fn label(self) -> &'static str {
        match self {
            Role::Admin => "role.admin",
            Role::Employee => "role.employee",
            Role::Ceo => "role.ceo",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_parsed_or_refused_with_a_reason() {
        for good in [
            "anna@btb.fi",
            "  Åsa.Öberg@exämple.se ",
            "a+b@x.co",
            "ł.ż@poczta.pl",
        ] {
            assert!(Email::parse(good).is_ok(), "{good}");
        }
        for (bad, reason) in [
            ("", "field.required"),
            ("anna", "field.email.invalid"),
            ("anna@", "field.email.invalid"),
            ("@btb.fi", "field.email.invalid"),
            ("anna@btb", "field.email.invalid"),
            ("an na@btb.fi", "field.email.invalid"),
            ("<script>@btb.fi", "field.email.invalid"),
            ("anna@.btb.fi", "field.email.invalid"),
            ("anna@btb..fi", "field.email.invalid"),
            ("anna@-btb.fi", "field.email.invalid"),
        ] {
            assert_eq!(Email::parse(bad), Err(reason), "{bad}");
        }
        assert_eq!(
            Email::parse(&format!("{}@x.fi", "a".repeat(300))),
            Err("field.email.too_long")
        );
    }

    #[test]
    fn names_keep_any_script_but_not_control_characters() {
        assert_eq!(
            PersonName::parse(" Łukasz Żółć ").unwrap().as_str(),
            "Łukasz Żółć"
        );
        assert_eq!(
            PersonName::parse("山田 太郎").unwrap().as_str(),
            "山田 太郎"
        );
        assert_eq!(PersonName::parse("   "), Err("field.required"));
        assert_eq!(
            PersonName::parse("a\u{0}b"),
            Err("field.invalid_characters")
        );
    }

    #[test]
    fn phones_are_digits_with_separators() {
        for good in [
            "+358 6 781 6500",
            "06-781 6500",
            "(040) 123 4567",
            "+44 20 7946 0958",
        ] {
            assert!(Phone::parse(good).is_ok(), "{good}");
        }
        assert_eq!(
            Phone::parse(" 040   123  4567 ").unwrap().as_str(),
            "040 123 4567"
        );
        for bad in [
            "call me",
            "123",
            "+358 40 123 4567 8901 234",
            "040+123",
            "<script>",
        ] {
            assert_eq!(Phone::parse(bad), Err("field.phone.invalid"), "{bad}");
        }
    }

    #[test]
    fn websites_get_a_scheme_and_refuse_other_schemes() {
        assert_eq!(WebUrl::parse("btb.fi").unwrap().as_str(), "https://btb.fi/");
        assert_eq!(
            WebUrl::parse("http://www.abb.com/fi").unwrap().as_str(),
            "http://www.abb.com/fi"
        );
        for bad in [
            "javascript:alert(1)",
            "ftp://x.fi",
            "localhost",
            "https://",
            "not a url",
        ] {
            assert_eq!(WebUrl::parse(bad), Err("field.url.invalid"), "{bad}");
        }
    }

    #[test]
    fn passwords_need_twelve_characters() {
        assert!(NewPassword::parse("elva tecken").is_err());
        assert!(NewPassword::parse("tolv tecken!").is_ok());
        assert!(NewPassword::parse("åäöåäöåäöåäö").is_ok());
    }
}
