//! Languages and translated text. Each language is a file of `key = text` lines; a key
//! missing in Finnish falls back to English. Swedish and English are complete (a test
//! checks it).

use std::{collections::HashMap, fmt, sync::LazyLock};

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    Sv,
    En,
    Fi,
}

impl Lang {
    /// Languages a staff member can choose for the pages.
    pub const STAFF: [Lang; 2] = [Lang::Sv, Lang::En];
    /// Languages of the pages a data subject or visitor sees.
    pub const PUBLIC: [Lang; 3] = [Lang::Sv, Lang::Fi, Lang::En];

    /// The languages offered to someone signed in, or not.
    pub fn offered(signed_in: bool) -> &'static [Lang] {
        if signed_in {
            &Lang::STAFF
        } else {
            &Lang::PUBLIC
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Lang::Sv => "sv",
            Lang::En => "en",
            Lang::Fi => "fi",
        }
    }

    /// The language's own name for itself.
    pub fn native_name(self) -> &'static str {
        match self {
            Lang::Sv => "Svenska",
            Lang::En => "English",
            Lang::Fi => "Suomi",
        }
    }

    pub fn parse(code: &str) -> Option<Lang> {
        match code.trim().to_ascii_lowercase().as_str() {
            "sv" => Some(Lang::Sv),
            "en" => Some(Lang::En),
            "fi" => Some(Lang::Fi),
            _ => None,
        }
    }

    /// The best of `offered` for an `Accept-Language` header, by its q-values.
    pub fn from_accept_language(header: &str, offered: &[Lang]) -> Option<Lang> {
        let mut best: Option<(f32, Lang)> = None;
        for part in header.split(',') {
            let mut pieces = part.trim().split(';');
            let tag = pieces.next().unwrap_or("").trim();
            let q = pieces
                .find_map(|p| p.trim().strip_prefix("q="))
                .and_then(|q| q.parse::<f32>().ok())
                .unwrap_or(1.0);
            let primary = tag.split('-').next().unwrap_or("");
            // Norwegian and Danish readers understand Swedish better than English.
            let primary = match primary.to_ascii_lowercase().as_str() {
                "nb" | "nn" | "no" | "da" => "sv".to_string(),
                other => other.to_string(),
            };
            if let Some(lang) = Lang::parse(&primary).filter(|l| offered.contains(l))
                && q > 0.0
                && best.is_none_or(|(bq, _)| q > bq)
            {
                best = Some((q, lang));
            }
        }
        best.map(|(_, l)| l)
    }
}

impl fmt::Display for Lang {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

type Catalog = HashMap<&'static str, &'static str>;

fn parse_catalog(source: &'static str) -> Catalog {
    source
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once(" = "))
        .map(|(k, v)| (k.trim(), v.trim()))
        .collect()
}

static EN: LazyLock<Catalog> = LazyLock::new(|| parse_catalog(include_str!("en.txt")));
static SV: LazyLock<Catalog> = LazyLock::new(|| parse_catalog(include_str!("sv.txt")));
static FI: LazyLock<Catalog> = LazyLock::new(|| parse_catalog(include_str!("fi.txt")));

/// Translations for one language, handed to every template as `t`.
#[derive(Clone, Copy, Debug)]
pub struct Tr(pub Lang);

impl Tr {
    /// The text for `key`; an unknown key shows itself, so a slip is visible, not blank.
    pub fn get<'k>(&self, key: &'k str) -> &'k str {
        let catalog: &Catalog = match self.0 {
            Lang::Sv => &SV,
            Lang::En => &EN,
            Lang::Fi => &FI,
        };
        catalog
            .get(key)
            .or_else(|| EN.get(key))
            .copied()
            .unwrap_or_else(|| {
                tracing::warn!(key, "missing translation");
                key
            })
    }

    /// The text for `key`, if any language has it (for labels made from data).
    pub fn find(&self, key: &str) -> Option<&'static str> {
        let catalog: &Catalog = match self.0 {
            Lang::Sv => &SV,
            Lang::En => &EN,
            Lang::Fi => &FI,
        };
        catalog.get(key).or_else(|| EN.get(key)).copied()
    }

    /// The text for a key made of a prefix and a stored name (`status.` + `active`).
    pub fn named(&self, prefix: &str, name: impl fmt::Display) -> String {
        let key = format!("{prefix}{name}");
        self.get(&key).to_string()
    }

    /// The text for `key` with `{name}` replaced by `value`.
    pub fn with(&self, key: &str, name: &str, value: impl fmt::Display) -> String {
        self.get(key)
            .replace(&format!("{{{name}}}"), &value.to_string())
    }

    pub fn lang(&self) -> Lang {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swedish_and_english_have_the_same_keys() {
        let mut missing: Vec<_> = EN
            .keys()
            .filter(|k| !SV.contains_key(*k))
            .map(|k| format!("sv lacks {k}"))
            .collect();
        missing.extend(
            SV.keys()
                .filter(|k| !EN.contains_key(*k))
                .map(|k| format!("en lacks {k}")),
        );
        missing.extend(
            FI.keys()
                .filter(|k| !EN.contains_key(*k))
                .map(|k| format!("en lacks {k} (from fi)")),
        );
        assert!(missing.is_empty(), "{missing:#?}");
    }

    #[test]
    fn accept_language_picks_the_highest_offered() {
        let staff = &Lang::STAFF;
        assert_eq!(
            Lang::from_accept_language("en-GB,en;q=0.9", staff),
            Some(Lang::En)
        );
        assert_eq!(
            Lang::from_accept_language("fi, en;q=0.5, sv;q=0.8", staff),
            Some(Lang::Sv)
        );
        assert_eq!(Lang::from_accept_language("de-DE", staff), None);
        assert_eq!(Lang::from_accept_language("nb-NO", staff), Some(Lang::Sv));
        assert_eq!(Lang::from_accept_language("en;q=0", staff), None);
        assert_eq!(Lang::from_accept_language(";;;,,q=", staff), None);
    }
}
