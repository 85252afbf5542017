//! Every cookie the software sets, in one list: the code that sets a cookie takes its name
//! and lifetime from here, and the cookie notice (R-COOK-1, R-COOK-2) is generated from it.

use crate::config::Config;

/// The staff session (tower-sessions).
pub const SESSION: &str = "gdpr_session";
/// The CSRF cookie; over https the `__Host-` prefix keeps a sibling site from planting it.
pub const CSRF: &str = "csrf";
pub const CSRF_HTTPS: &str = "__Host-csrf";
/// The language chosen with the switch in the header.
pub const LANG: &str = "lang";
/// How long the language choice is remembered, renewed on each choice.
pub const LANG_MAX_AGE_SECONDS: u64 = 365 * 24 * 60 * 60;

/// How long a cookie lives: until the browser closes, or a number of days or minutes.
#[derive(Clone, Copy, Debug)]
pub enum Lifetime {
    BrowserSession,
    Minutes(u64),
    Days(u64),
}

#[derive(Clone, Debug)]
pub struct Cookie {
    pub name: &'static str,
    /// i18n key of what it is for.
    pub purpose: &'static str,
    pub lifetime: Lifetime,
    /// Strictly necessary: needs no consent (Act 917/2014 s. 205).
    pub necessary: bool,
}

/// Every cookie, as the running configuration sets it.
pub fn all(config: &Config) -> Vec<Cookie> {
    vec![
        Cookie {
            name: SESSION,
            purpose: "cookie.session",
            lifetime: Lifetime::Minutes(config.session_idle.as_secs() / 60),
            necessary: true,
        },
        Cookie {
            name: if config.is_https() { CSRF_HTTPS } else { CSRF },
            purpose: "cookie.csrf",
            lifetime: Lifetime::BrowserSession,
            necessary: true,
        },
        Cookie {
            name: LANG,
            purpose: "cookie.lang",
            lifetime: Lifetime::Days(LANG_MAX_AGE_SECONDS / 86_400),
            necessary: true,
        },
    ]
}
