//! What an operator watches: `GET /metrics` in Prometheus' text format, and the request
//! layer that counts, times and logs every request under a request id.
//!
//! Counters live in this process (a restart starts them at zero, as Prometheus expects);
//! what the database knows (the outbox, unsealed audit rows) is read by one query at
//! scrape time. Requests are labelled by the matched route pattern, never the raw path,
//! so ids and search words never become labels.

mod registry;

use std::{net::SocketAddr, time::Instant};

use axum::{
    extract::{ConnectInfo, MatchedPath, Request, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use subtle::ConstantTimeEq;
use tracing::Instrument;

use crate::{auth::client_address, state::AppState, web::Section};

pub use registry::{job_ran, lockout, login_refused};

/// The header that carries a request's id, on the response and in every log line of it.
pub const REQUEST_ID: &str = "x-request-id";

pub fn sections() -> Vec<Section> {
    vec![Section::bare().get("/metrics", page)]
}

/// Counts, times and logs one request. The log line holds the route pattern and the
/// status, never the path or the query (a search may be a person's name).
pub async fn layer(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = uuid::Uuid::new_v4().simple().to_string();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("(unmatched)", |p| p.as_str())
        .to_owned();
    let method = req.method().clone();
    let span = tracing::info_span!("request", request_id = %id, method = %method, route = %route);
    let mut response = next.run(req).instrument(span.clone()).await;
    let latency = started.elapsed();
    let status = response.status().as_u16();
    registry::request(method.as_str(), &route, status, latency);
    span.in_scope(|| {
        tracing::info!(
            request_id = %id,
            route = %route,
            status,
            latency_ms = latency.as_secs_f64() * 1000.0,
            "request"
        )
    });
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    response
}

/// Open to the machine itself (a Prometheus beside it), or to anyone with the bearer
/// token. Behind a trusted proxy every request comes from loopback, so the address the
/// proxy forwarded decides too; the connection must be loopback as well, so a client that
/// reaches the port directly cannot forward itself a loopback address.
async fn page(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    let local = peer.ip().is_loopback()
        && client_address(peer, &headers, state.config.trust_proxy).is_loopback();
    if !local
        && !has_token(
            &headers,
            state.config.metrics_token.as_ref().map(|t| t.expose()),
        )
    {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            "metrics are served to loopback, or with METRICS_TOKEN as a bearer token\n",
        )
            .into_response();
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        registry::render(&state.pool).await,
    )
        .into_response()
}

fn has_token(headers: &HeaderMap, token: Option<&String>) -> bool {
    let Some(token) = token else { return false };
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|given| bool::from(given.as_bytes().ct_eq(token.as_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_bearer_token_is_accepted() {
        let token = "ab12".repeat(8);
        let with = |value: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::AUTHORIZATION, value.parse().unwrap());
            h
        };
        assert!(has_token(&with(&format!("Bearer {token}")), Some(&token)));
        assert!(!has_token(&with(&format!("Bearer {token}x")), Some(&token)));
        assert!(!has_token(&with(&format!("Basic {token}")), Some(&token)));
        assert!(!has_token(&with(&format!("Bearer {token}")), None));
        assert!(!has_token(&HeaderMap::new(), Some(&token)));
    }
}
