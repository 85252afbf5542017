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
/// The open chat's token, set by the widget (`static/chat.js`) on the page that shows it.
pub const CHAT: &str = "btb_chat";
pub const CHAT_MAX_AGE_SECONDS: u64 = 24 * 60 * 60;

/// How long a cookie lives: until the browser closes, or a number of days or minutes.
#[derive(Clone, Copy, Debug)]
pub enum Lifetime {
    BrowserSession,
    Minutes(u64),
    Hours(u64),
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
        Cookie {
            name: CHAT,
            purpose: "cookie.chat",
            lifetime: Lifetime::Hours(CHAT_MAX_AGE_SECONDS / 3_600),
            necessary: true,
        },
    ]
}

#[cfg(test)]
mod tests {
    /// The widget is plain JavaScript: it must set the cookie this list describes.
    #[test]
    fn the_chat_widget_sets_the_listed_cookie() {
        let widget = include_str!("../../static/chat.js");
        assert!(widget.contains(&format!("var COOKIE = \"{}\";", super::CHAT)));
        assert!(widget.contains(&format!("max-age={}", super::CHAT_MAX_AGE_SECONDS)));
    }
}
