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

/// A Finnish personal identity code (henkilötunnus), `DDMMYYCZZZQ`: a real date, a century
/// sign of 2023 (`+`; `-`, `U`…`Y`; `A`…`F`), an individual number 002–999 (900–999 are
/// temporary codes) and the check character. Kept upper-case with its century sign: the
/// same digits with another sign are another person.
#[derive(Clone, PartialEq, Eq)]
pub struct PersonalIdentityCode(String);

impl PersonalIdentityCode {
    const CHECK: &'static [u8; 31] = b"0123456789ABCDEFHJKLMNPRSTUVWXY";

    /// The error is a translation key naming what is wrong.
    pub fn parse(input: &str) -> Result<Self, &'static str> {
        let value = input.trim().to_ascii_uppercase();
        if value.is_empty() {
            return Err("field.required");
        }
        let b = value.as_bytes();
        if b.len() != 11 || !value.is_ascii() {
            return Err("field.identity_code.length");
        }
        let digits = |range: std::ops::Range<usize>| {
            b[range.clone()]
                .iter()
                .all(u8::is_ascii_digit)
                .then(|| value[range].parse::<u32>().ok())
                .flatten()
        };
        let (Some(day), Some(month), Some(year), Some(individual)) =
            (digits(0..2), digits(2..4), digits(4..6), digits(7..10))
        else {
            return Err("field.identity_code.format");
        };
        let century = match b[6] {
            b'+' => 1800,
            b'-' | b'U'..=b'Y' => 1900,
            b'A'..=b'F' => 2000,
            _ => return Err("field.identity_code.century"),
        };
        let month = time::Month::try_from(month as u8).map_err(|_| "field.identity_code.date")?;
        time::Date::from_calendar_date((century + year) as i32, month, day as u8)
            .map_err(|_| "field.identity_code.date")?;
        if individual < 2 {
            return Err("field.identity_code.number");
        }
        let number = day * 10_000_000 + u32::from(month as u8) * 100_000 + year * 1000 + individual;
        if b[10] != Self::CHECK[(number % 31) as usize] {
            return Err("field.identity_code.check");
        }
        Ok(Self(value))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// `010190-***W`: the date and the check character, without the individual number.
    pub fn masked(&self) -> String {
        format!("{}***{}", &self.0[..7], &self.0[10..])
    }
}

impl fmt::Debug for PersonalIdentityCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PersonalIdentityCode({})", self.masked())
    }
}

/// An international bank account number (ISO 13616): a known country's length and a
/// mod-97 remainder of 1. Typed with or without spaces, kept compact.
#[derive(Clone, PartialEq, Eq)]
pub struct Iban(String);

impl Iban {
    /// Lengths by country, from the SWIFT IBAN registry (Europe and its neighbours).
    const LENGTHS: &'static [(&'static str, usize)] = &[
        ("AD", 24),
        ("AT", 20),
        ("AX", 18),
        ("BE", 16),
        ("BG", 22),
        ("CH", 21),
        ("CY", 28),
        ("CZ", 24),
        ("DE", 22),
        ("DK", 18),
        ("EE", 20),
        ("ES", 24),
        ("FI", 18),
        ("FO", 18),
        ("FR", 27),
        ("GB", 22),
        ("GI", 23),
        ("GL", 18),
        ("GR", 27),
        ("HR", 21),
        ("HU", 28),
        ("IE", 22),
        ("IS", 26),
        ("IT", 27),
        ("LI", 21),
        ("LT", 20),
        ("LU", 20),
        ("LV", 21),
        ("MC", 27),
        ("MT", 31),
        ("NL", 18),
        ("NO", 15),
        ("PL", 28),
        ("PT", 25),
        ("RO", 24),
        ("SE", 24),
        ("SI", 19),
        ("SK", 24),
        ("SM", 27),
        ("UA", 29),
        ("VA", 22),
    ];

    pub fn parse(input: &str) -> Result<Self, &'static str> {
        let value: String = input
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect::<String>()
            .to_ascii_uppercase();
        if value.is_empty() {
            return Err("field.required");
        }
        if !value.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err("field.iban.characters");
        }
        let length = Self::LENGTHS
            .iter()
            .find(|(country, _)| value.starts_with(country))
            .map(|(_, length)| *length)
            .ok_or("field.iban.country")?;
        if value.len() != length {
            return Err("field.iban.length");
        }
        if !value[2..4].bytes().all(|b| b.is_ascii_digit()) {
            return Err("field.iban.check");
        }
        let remainder = value[4..]
            .chars()
            .chain(value[..4].chars())
            .fold(0u32, |acc, c| {
                let n = c.to_digit(36).expect("alphanumeric");
                if n < 10 {
                    (acc * 10 + n) % 97
                } else {
                    (acc * 100 + n) % 97
                }
            });
        if remainder != 1 {
            return Err("field.iban.check");
        }
        Ok(Self(value))
    }

    /// Compact, as stored.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// In groups of four, as people read it.
    pub fn grouped(&self) -> String {
        group_in_fours(&self.0)
    }

    /// `FI55 **** **** **81`: the country, check digits and the last two, in one shape
    /// for every country, so the mask does not tell the length either.
    pub fn masked(&self) -> String {
        format!(
            "{} **** **** **{}",
            &self.0[..4],
            &self.0[self.0.len() - 2..]
        )
    }
}

fn group_in_fours(text: &str) -> String {
    let mut out = String::new();
    for (i, c) in text.chars().enumerate() {
        if i > 0 && i % 4 == 0 {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

impl fmt::Debug for Iban {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Iban({})", self.masked())
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

    #[test]
    fn identity_codes_take_every_century_sign_and_refuse_with_a_reason() {
        for good in [
            "131052-308T",
            "010594Y9032",
            " 131052-308t ",
            "010594Y9021",
            "010594X9032",
            "010594W9032",
            "010594V9032",
            "010594U9032",
            "010594+9032",
            "010510A998E",
            "010510F998E",
            "290200A002C",
            "311299-9008",
        ] {
            assert!(PersonalIdentityCode::parse(good).is_ok(), "{good}");
        }
        for (bad, reason) in [
            ("", "field.required"),
            ("131052-308", "field.identity_code.length"),
            ("131052-308TT", "field.identity_code.length"),
            ("13105Ä-308T", "field.identity_code.length"),
            ("1310x2-308T", "field.identity_code.format"),
            ("131052-3O8T", "field.identity_code.format"),
            ("131052G308T", "field.identity_code.century"),
            ("131052Z308T", "field.identity_code.century"),
            ("310204A002P", "field.identity_code.date"),
            ("290201A002P", "field.identity_code.date"),
            ("290200-002P", "field.identity_code.date"),
            ("001052-308T", "field.identity_code.date"),
            ("131352-308T", "field.identity_code.date"),
            ("131052-001T", "field.identity_code.number"),
            ("131052-000T", "field.identity_code.number"),
            ("131052-308U", "field.identity_code.check"),
            ("010594Y9031", "field.identity_code.check"),
        ] {
            assert_eq!(
                PersonalIdentityCode::parse(bad).map(|c| c.masked()),
                Err(reason),
                "{bad}"
            );
        }
    }

    #[test]
    fn identity_codes_are_masked_to_their_date_and_check_character() {
        let code = PersonalIdentityCode::parse("131052-308t").unwrap();
        assert_eq!(code.expose(), "131052-308T");
        assert_eq!(code.masked(), "131052-***T");
        assert!(!format!("{code:?}").contains("308"));
    }

    #[test]
    fn ibans_follow_mod_97_and_each_countrys_length() {
        for good in [
            "FI21 1234 5600 0007 85",
            "fi2112345600000785",
            "AX21 1234 5600 0007 85",
            "SE45 5000 0000 0583 9825 7466",
            "DE89 3704 0044 0532 0130 00",
            "NO93 8601 1117 947",
            "MT84 MALT 0110 0001 2345 MTLC AST0 01S",
        ] {
            assert!(Iban::parse(good).is_ok(), "{good}");
        }
        for (bad, reason) in [
            ("", "field.required"),
            ("FI21 1234 5600 0007 8", "field.iban.length"),
            ("FI21 1234 5600 0007 855", "field.iban.length"),
            ("FI22 1234 5600 0007 85", "field.iban.check"),
            ("FI21 1234 5600 0007 86", "field.iban.check"),
            ("FIXX 1234 5600 0007 85", "field.iban.check"),
            ("ZZ21 1234 5600 0007 85", "field.iban.country"),
            ("1234", "field.iban.country"),
            ("FI21-1234-5600-0007-85", "field.iban.characters"),
        ] {
            assert_eq!(Iban::parse(bad).map(|i| i.masked()), Err(reason), "{bad}");
        }
    }

    #[test]
    fn ibans_are_kept_compact_and_shown_in_groups_of_four() {
        let iban = Iban::parse(" fi21 1234 5600 0007 85").unwrap();
        assert_eq!(iban.expose(), "FI2112345600000785");
        assert_eq!(iban.grouped(), "FI21 1234 5600 0007 85");
        assert_eq!(iban.masked(), "FI21 **** **** **85");
    }
}
