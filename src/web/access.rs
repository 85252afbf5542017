//! Who may open which route. Every route is registered in a [`Section`] with one
//! [`Access`] level; the guard and the navigation both ask [`Access::decide`], the single
//! place where roles are weighed.

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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Anyone, signed in or not.
    Anyone,
    /// Any signed-in staff member.
    SignedIn,
    /// The customer register: employees and the administrator.
    CustomerRegister,
    /// The administrator only.
    Admin,
    /// The CEO only (the personnel register).
    Ceo,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Allowed,
    NeedsLogin,
    Forbidden,
}

impl Access {
    pub fn decide(self, user: Option<&CurrentUser>) -> Decision {
        let Some(user) = user else {
            return match self {
                Access::Anyone => Decision::Allowed,
                _ => Decision::NeedsLogin,
            };
        };
        let allowed = match self {
            Access::Anyone | Access::SignedIn => true,
            Access::CustomerRegister => matches!(user.role, Role::Admin | Role::Employee),
            Access::Admin => user.role == Role::Admin,
            Access::Ceo => user.role == Role::Ceo,
        };
        if allowed {
            Decision::Allowed
        } else {
            Decision::Forbidden
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
    let user = req
        .extensions()
        .get::<RequestContext>()
        .and_then(|c| c.user.as_ref());
    match access.decide(user) {
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
        Decision::Forbidden => AppError::Forbidden("error.forbidden").into_response(),
    }
}
