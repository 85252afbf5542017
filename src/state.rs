//! What every handler and job is given: the pool, the settings, the password hasher and
//! the keys. At the bottom of the module tree, so features never import the wiring.

use std::sync::Arc;

use sqlx::PgPool;

use crate::{auth::Passwords, config::Config};

#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub config: Arc<Config>,
    pub passwords: Passwords,
}
