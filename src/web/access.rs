//! Who may open which route. A request's [`Capabilities`] are worked out once, from the
//! user's role, the chat-operator and mailbox flags and the session's second factor; the
//! route guard, the navigation and the pages all ask them. Every route is registered in a
//! [`Section`] with one [`Access`] level, and each level beyond signing in stands for one
//! [`Capability`].

use axum::{
    Router,
    extract::Request,
    handler::Handler,
    http::Method,
    middleware::{self, Next},
    response::{IntoResponse, Redirect, Response},
    routing::{MethodRouter, get, post},
};

use crate::{
    auth::{CurrentUser, Role},
    error::AppError,
    state::AppState,
    web::RequestContext,
};

/// Where a user is sent who needs a second factor for what they asked for.
pub const ENROLMENT: &str = "/account/second-factor";

/// What a signed-in staff member may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Capability {
    /// Companies and people: add, change, erase (R-CUST-4).
    CustomerRegister,
    /// What the register's responsible person does: users, the audit log, outgoing mail,
    /// deletions due, mailings, imports, business areas.
    Administration,
    /// Answers website chats, sees and deletes their history (R-CHAT-5, R-CHAT-6): the
    /// chat-operator flag, and the administrator.
    ChatOperator,
    /// Reads the contact-form inbox (R-FORM-4).
    Mailbox,
    /// The personnel register (R-PERS-3): the CEO, with a confirmed second factor.
    Personnel,
}

impl Capability {
    const fn bit(self) -> u8 {
        1 << self as u8
    }
}

/// The capabilities of one request's user.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Capabilities {
    granted: u8,
    /// What a confirmed second factor would add.
    with_second_factor: u8,
    /// The role must enrol a second factor before anything opens (REQUIRE_SECOND_FACTOR).
    must_enrol: bool,
}

impl Capabilities {
    /// What the CEO's capability guards opens only with a second factor, whatever the
    /// settings say.
    const ALWAYS_WITH_SECOND_FACTOR: u8 = Capability::Personnel.bit();

    /// What a role and its flags grant, a second factor assumed.
    fn of_role(role: Role, chat_operator: bool, mailbox: bool) -> u8 {
        let by_role = match role {
            Role::Admin => {
                Capability::CustomerRegister.bit()
                    | Capability::Administration.bit()
                    | Capability::ChatOperator.bit()
            }
            Role::Employee => Capability::CustomerRegister.bit(),
            Role::Ceo => Capability::Personnel.bit(),
        };
        let flag = |on: bool, c: Capability| if on { c.bit() } else { 0 };
        by_role | flag(chat_operator, Capability::ChatOperator) | flag(mailbox, Capability::Mailbox)
    }

    /// The user's capabilities in this session; `required` are the roles that must have
    /// a second factor for everything.
    pub fn of(user: &CurrentUser, required: &[Role]) -> Self {
        let all = Self::of_role(user.role, user.chat_operator, user.mailbox);
        if user.second_factor {
            Self {
                granted: all,
                ..Self::default()
            }
        } else if required.contains(&user.role) {
            Self {
                granted: 0,
                with_second_factor: all,
                must_enrol: true,
            }
        } else {
            Self {
                granted: all & !Self::ALWAYS_WITH_SECOND_FACTOR,
                with_second_factor: all & Self::ALWAYS_WITH_SECOND_FACTOR,
                must_enrol: false,
            }
        }
    }

    pub fn has(&self, capability: Capability) -> bool {
        self.granted & capability.bit() != 0
    }

    /// Whether a role carries a capability at all (with a second factor where needed).
    pub fn role_grants(role: Role, capability: Capability) -> bool {
        Self::of_role(role, false, false) & capability.bit() != 0
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Anyone, signed in or not.
    Anyone,
    /// Any signed-in staff member, also one who must first enrol a second factor: to
    /// enrol, or to log out.
    Enrolling,
    /// Any signed-in staff member with the second factor their role requires.
    SignedIn,
    /// [`Capability::CustomerRegister`].
    CustomerRegister,
    /// [`Capability::Administration`].
    Admin,
    /// [`Capability::Personnel`].
    Ceo,
    /// [`Capability::ChatOperator`].
    ChatOperator,
    /// [`Capability::Mailbox`].
    Mailbox,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Allowed,
    NeedsLogin,
    /// Allowed once the user has enrolled (or confirmed) a second factor.
    NeedsSecondFactor,
    Forbidden,
    /// Answered as an unknown path (404): the route does not show that it exists.
    Hidden,
}

impl Access {
    pub fn capability(self) -> Option<Capability> {
        match self {
            Access::Anyone | Access::Enrolling | Access::SignedIn => None,
            Access::CustomerRegister => Some(Capability::CustomerRegister),
            Access::Admin => Some(Capability::Administration),
            Access::Ceo => Some(Capability::Personnel),
            Access::ChatOperator => Some(Capability::ChatOperator),
            Access::Mailbox => Some(Capability::Mailbox),
        }
    }

    /// `capabilities` is `None` for a visitor who is not signed in.
    pub fn decide(self, capabilities: Option<&Capabilities>) -> Decision {
        let decision = self.decide_openly(capabilities);
        // The personnel register is at least as closed as the file behind a VPN it
        // replaces (R-PERS-3): to anyone who could not open it, it is not there — a
        // visitor is not even sent to log in. Only the CEO is sent to enrol.
        let owner = capabilities
            .is_some_and(|c| (c.granted | c.with_second_factor) & Capability::Personnel.bit() != 0);
        match decision {
            Decision::Allowed => Decision::Allowed,
            Decision::NeedsSecondFactor if owner => decision,
            _ if self == Access::Ceo => Decision::Hidden,
            _ => decision,
        }
    }

    fn decide_openly(self, capabilities: Option<&Capabilities>) -> Decision {
        let Some(caps) = capabilities else {
            return match self {
                Access::Anyone => Decision::Allowed,
                _ => Decision::NeedsLogin,
            };
        };
        match (self, self.capability()) {
            (Access::Anyone | Access::Enrolling, _) => Decision::Allowed,
            (_, _) if caps.must_enrol => Decision::NeedsSecondFactor,
            (_, None) => Decision::Allowed,
            (_, Some(c)) if caps.has(c) => Decision::Allowed,
            (_, Some(c)) if caps.with_second_factor & c.bit() != 0 => Decision::NeedsSecondFactor,
            (_, Some(_)) => Decision::Forbidden,
        }
    }
}

/// One registered route, as the role matrix test walks them.
#[derive(Clone, Debug)]
pub struct RouteInfo {
    pub method: Method,
    pub path: &'static str,
    pub access: Access,
}

/// Routes that share one access level, guarded in one place.
pub struct Section {
    access: Access,
    bare: bool,
    router: Router<AppState>,
    routes: Vec<RouteInfo>,
}

impl Section {
    pub fn new(access: Access) -> Self {
        Self {
            access,
            bare: false,
            router: Router::new(),
            routes: Vec::new(),
        }
    }

    /// Routes open to anyone that need no session, language or CSRF check (health, static
    /// files): served outside those layers.
    pub fn bare() -> Self {
        Self {
            bare: true,
            ..Self::new(Access::Anyone)
        }
    }

    pub fn is_bare(&self) -> bool {
        self.bare
    }

    pub fn get<H, T>(self, path: &'static str, handler: H) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        self.add(Method::GET, path, get(handler))
    }

    pub fn post<H, T>(self, path: &'static str, handler: H) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        self.add(Method::POST, path, post(handler))
    }

    fn add(mut self, method: Method, path: &'static str, route: MethodRouter<AppState>) -> Self {
        self.router = self.router.route(path, route);
        self.routes.push(RouteInfo {
            method,
            path,
            access: self.access,
        });
        self
    }

    pub fn routes(&self) -> &[RouteInfo] {
        &self.routes
    }

    pub fn into_router(self) -> Router<AppState> {
        let access = self.access;
        if access == Access::Anyone {
            return self.router;
        }
        self.router
            .route_layer(middleware::from_fn(move |req: Request, next: Next| {
                guard(access, req, next)
            }))
    }
}

async fn guard(access: Access, req: Request, next: Next) -> Response {
    let capabilities = req
        .extensions()
        .get::<RequestContext>()
        .and_then(|c| c.capabilities.as_ref());
    match access.decide(capabilities) {
        Decision::Allowed => next.run(req).await,
        Decision::NeedsLogin => {
            let back = req
                .uri()
                .path_and_query()
                .map(|p| p.as_str())
                .unwrap_or("/");
            let query = serde_urlencoded::to_string([("next", back)]).unwrap_or_default();
            Redirect::to(&format!("/login?{query}")).into_response()
        }
        Decision::NeedsSecondFactor => Redirect::to(ENROLMENT).into_response(),
        Decision::Forbidden => AppError::Forbidden("error.forbidden").into_response(),
        Decision::Hidden => AppError::NotFound.into_response(),
    }
}
