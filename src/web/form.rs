//! Field errors of a submitted form, shown next to each field (by translation key).

use std::collections::BTreeMap;

#[derive(Debug, Default)]
pub struct Errors(BTreeMap<&'static str, &'static str>);

impl Errors {
    pub fn add(&mut self, field: &'static str, message: &'static str) {
        self.0.entry(field).or_insert(message);
    }

    /// Keeps the parsed value, or notes why it failed.
    pub fn check<T>(&mut self, field: &'static str, parsed: Result<T, &'static str>) -> Option<T> {
        match parsed {
            Ok(value) => Some(value),
            Err(message) => {
                self.add(field, message);
                None
            }
        }
    }

    pub fn get(&self, field: &str) -> Option<&'static str> {
        self.0.get(field).copied()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A keyset cursor for lists ordered by (text, id), carried in links as `name|id`.
pub fn parse_cursor(value: Option<&str>) -> Option<(String, uuid::Uuid)> {
    let (key, id) = value?.rsplit_once('|')?;
    Some((key.to_string(), id.parse().ok()?))
}

pub fn cursor(key: &str, id: uuid::Uuid) -> String {
    format!("{key}|{id}")
}

/// A day typed as `YYYY-MM-DD`, in the years a register can hold.
pub fn parse_day(input: &str) -> Result<time::Date, &'static str> {
    time::Date::parse(
        input.trim(),
        time::macros::format_description!("[year]-[month]-[day]"),
    )
    .ok()
    .filter(|d| (1900..=9999).contains(&d.year()))
    .ok_or("field.date.invalid")
}

#[cfg(test)]
mod tests {
    use super::parse_day;

    #[test]
    fn days_are_four_digit_years_that_exist() {
        assert!(parse_day("2026-11-29").is_ok());
        for bad in [
            "-9999-01-01",
            "0001-01-01",
            "2026-02-30",
            "29.11.2026",
            "",
            "2026-1-5x",
        ] {
            assert!(parse_day(bad).is_err(), "{bad}");
        }
    }
}
