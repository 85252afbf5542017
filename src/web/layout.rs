//! The context every page is rendered in: language, user, navigation, CSRF token, flash.

use axum::{extract::FromRequestParts, http::request::Parts};
use tower_sessions::Session;

use crate::{
    auth::CurrentUser,
    error::AppError,
    state::AppState,
    web::{
        Access, Lang, RequestContext, Tr,
        access::{Capabilities, Capability, Decision},
        flash::Flash,
    },
};

pub struct NavLink {
    pub href: &'static str,
    pub label: &'static str,
    pub current: bool,
}

/// The navigation, each entry shown only to those the route guard lets in.
const NAV: &[(&str, &str, Access)] = &[
    ("/", "nav.home", Access::SignedIn),
    ("/customers", "nav.customers", Access::CustomerRegister),
    ("/people", "nav.people", Access::CustomerRegister),
    ("/requests", "nav.requests", Access::CustomerRegister),
    ("/campaigns", "nav.campaigns", Access::CustomerRegister),
    ("/personnel", "nav.personnel", Access::Ceo),
    ("/users", "nav.users", Access::Admin),
    ("/audit", "nav.audit", Access::Admin),
    ("/mail", "nav.mail", Access::Admin),
    ("/breaches", "nav.breaches", Access::Admin),
    ("/inbox", "nav.inbox", Access::Mailbox),
    ("/chat/console", "nav.chat", Access::ChatOperator),
    ("/account", "nav.account", Access::SignedIn),
];

pub struct Layout {
    pub t: Tr,
    pub user: Option<CurrentUser>,
    capabilities: Option<Capabilities>,
    pub csrf_token: String,
    pub flash: Vec<Flash>,
    pub nav: Vec<NavLink>,
    pub company: String,
    /// The current path, to come back to after switching language.
    pub path: String,
    pub languages: &'static [Lang],
}

impl Layout {
    pub async fn build(
        state: &AppState,
        session: &Session,
        context: &RequestContext,
        path: String,
    ) -> Result<Self, AppError> {
        let user = context.user.clone();
        let capabilities = context.capabilities;
        let nav = if user.is_some() {
            NAV.iter()
                .filter(|(_, _, access)| access.decide(capabilities.as_ref()) == Decision::Allowed)
                .map(|(href, label, _)| NavLink {
                    href,
                    label,
                    current: if *href == "/" {
                        path == "/"
                    } else {
                        path.starts_with(href)
                    },
                })
                .collect()
        } else {
            Vec::new()
        };
        Ok(Self {
            t: Tr(context.lang),
            user,
            capabilities,
            csrf_token: context.csrf.token(&state.config),
            flash: crate::web::flash::take(session).await?,
            nav,
            company: state.config.company_name.clone(),
            path,
            languages: Lang::offered(context.user.is_some()),
        })
    }

    pub fn lang(&self) -> Lang {
        self.t.lang()
    }

    /// Whether the signed-in user has the capability: what a page shows asks here.
    pub fn can(&self, capability: Capability) -> bool {
        self.capabilities.is_some_and(|c| c.has(capability))
    }

    /// A page addressed to one person (a link in their mail): in their language, without
    /// the language switch.
    pub fn speaking(mut self, lang: Lang) -> Self {
        self.t = Tr(lang);
        self.languages = &[];
        self
    }
}

impl FromRequestParts<AppState> for Layout {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let session = Session::from_request_parts(parts, state)
            .await
            .map_err(|(_, m)| AppError::Unexpected(anyhow::anyhow!(m)))?;
        let context = parts
            .extensions
            .get::<RequestContext>()
            .cloned()
            .ok_or_else(|| AppError::Unexpected(anyhow::anyhow!("no request context")))?;
        Self::build(state, &session, &context, parts.uri.path().to_string()).await
    }
}

/// The signed-in user, for handlers behind a guard that requires one.
impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, AppError> {
        parts
            .extensions
            .get::<RequestContext>()
            .and_then(|c| c.user.clone())
            .ok_or(AppError::Forbidden("error.forbidden"))
    }
}
