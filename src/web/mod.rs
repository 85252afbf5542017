//! What every page shares: who is asking and in which language, the permission check,
//! CSRF, security headers, flash messages and the layout around each page.

pub mod access;
pub mod context;
pub mod cookies;
pub mod csrf;
pub mod flash;
pub mod form;
pub mod headers;
pub mod i18n;
pub mod layout;

pub use access::{Access, Section};
pub use context::RequestContext;
pub use i18n::{Lang, Tr};
pub use layout::Layout;

use axum::response::Redirect;

/// After a successful POST: see the result with a GET (303).
pub fn see_other(path: &str) -> Redirect {
    Redirect::to(path)
}

/// A day as shown on pages and in lists: `2026-11-29`.
pub fn day<T: std::borrow::Borrow<time::OffsetDateTime>>(at: &T) -> String {
    at.borrow()
        .date()
        .format(time::macros::format_description!("[year]-[month]-[day]"))
        .unwrap_or_default()
}

/// A path to return to after a form, accepted only when it stays on this site: one
/// leading slash, and no backslash, whitespace or control character (browsers drop tabs
/// and newlines, which would turn `/\t/host` into `//host`).
pub fn local_path(candidate: Option<&str>) -> Option<&str> {
    candidate.filter(|p| {
        p.starts_with('/')
            && !p[1..].starts_with(['/', '\\'])
            && !p
                .chars()
                .any(|c| c == '\\' || c.is_whitespace() || c.is_control())
    })
}

#[cfg(test)]
mod tests {
    use super::local_path;

    #[test]
    fn only_local_paths_are_followed() {
        assert_eq!(local_path(Some("/users")), Some("/users"));
        for bad in [
            "//evil.example",
            "https://evil.example",
            "/\\evil.example",
            "users",
            "",
        ] {
            assert_eq!(local_path(Some(bad)), None, "{bad}");
        }
    }
}
