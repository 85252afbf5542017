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
