//! The officer API: JSON over HTTP for officers, supervisors, admins and their tools.
//!
//! Requests pass, outermost first: panic catcher → request log → metrics → request timeout → concurrency
//! limit → body limit → the route's access gate ([`access::gate`]) → the handler. Every route
//! is declared once in [`routes::table`], with its access rule; the router and the OpenAPI
//! document are both built from that table. Errors are JSON ([`error::ApiError`]).

pub mod access;
pub mod alerts;
pub mod audit;
pub mod auth;
pub mod devices;
pub mod error;
pub mod extract;
pub mod feed;
pub mod officers;
pub mod openapi;
pub mod ops;
pub mod orders;
pub mod routes;
pub mod supervisees;
pub mod track;
pub mod zones;

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde::Deserialize;
use sqlx::PgPool;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::{DefaultMakeSpan, DefaultOnResponse, TraceLayer};
use tracing::Level;

use crate::config::Config;
use crate::ingest::Ingest;
use crate::live::devices::LiveState;
use crate::live::Live;
use crate::metrics::Metrics;
use crate::zone_cache::ZoneCache;
use error::ApiError;

/// What every handler may reach.
#[derive(Clone)]
pub struct AppState {
    pub db: PgPool,
    pub live: Live,
    pub live_state: LiveState,
    pub ingest: Ingest,
    pub config: Arc<Config>,
    pub metrics: Arc<Metrics>,
    /// Zones prepared for the rule engine.
    pub zones: Arc<ZoneCache>,
    /// The OpenAPI document, rendered once.
    pub openapi: Arc<String>,
    /// The node's clock for alert timing.
    pub clock: crate::clock::Clock,
    /// The alert side: rules cache, feed hub, engine state.
    pub alerts: Arc<crate::alerts::Context>,
}

impl AppState {
    /// A supervisee's zones, orders, leave or record changed: every node re-reads their rules.
    pub async fn rules_changed(&self, supervisee: uuid::Uuid) {
        self.alerts.rules.forget(supervisee);
        crate::alerts::bus::rules_changed(&self.live, supervisee).await;
    }
}

/// `?limit=&after=` for listings.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    pub limit: Option<i64>,
    pub after: Option<String>,
}

/// Default and largest page sizes.
pub const DEFAULT_PAGE: i64 = 100;
pub const MAX_PAGE: i64 = 1000;

pub fn page_limit(limit: Option<i64>) -> Result<i64, ApiError> {
    match limit {
        None => Ok(DEFAULT_PAGE),
        Some(n) if (1..=MAX_PAGE).contains(&n) => Ok(n),
        Some(_) => Err(ApiError::BadRequest {
            code: "invalid_query",
            message: format!("limit must be between 1 and {MAX_PAGE}"),
        }),
    }
}

/// Splits `limit + 1` fetched rows into a page and the cursor of the next page.
pub fn paginate<T>(
    mut rows: Vec<T>,
    limit: i64,
    cursor: impl Fn(&T) -> String,
) -> (Vec<T>, Option<String>) {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    if rows.len() > limit {
        rows.truncate(limit);
        let next = rows.last().map(&cursor);
        (rows, next)
    } else {
        (rows, None)
    }
}

/// Builds the whole HTTP application.
pub fn router(state: AppState) -> Router {
    let mut router = Router::new();
    for route in routes::table() {
        let gate = middleware::from_fn_with_state((state.clone(), route.spec.access), access::gate);
        router = router.route(route.spec.path, route.handler.route_layer(gate));
    }
    // The officer console's static page and assets (public; its data comes through the API).
    router = router.merge(crate::console::router());
    let http = &state.config.http;
    router
        .fallback(|| async { ApiError::NotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(http.max_body_bytes))
        .layer(GlobalConcurrencyLimitLayer::new(
            http.max_concurrent_requests,
        ))
        .layer(middleware::from_fn_with_state(state.clone(), deadline))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            record_metrics,
        ))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(DefaultMakeSpan::new().level(Level::INFO))
                .on_response(DefaultOnResponse::new().level(Level::INFO)),
        )
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::Internal("handler panicked".into()).into_response()
        }))
        .with_state(state)
}

/// Bounds a request's time; an overrun is a JSON 503.
async fn deadline(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let limit = state.config.http.request_timeout;
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(response) => response,
        Err(_) => ApiError::Unavailable(format!("request took longer than {limit:?}").into())
            .into_response(),
    }
}

async fn record_metrics(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = req.method().as_str().to_owned();
    let started = Instant::now();
    let response = next.run(req).await;
    let status = format!("{}xx", response.status().as_u16() / 100);
    state
        .metrics
        .http_requests
        .with_label_values(&[&route, &method, &status])
        .inc();
    state
        .metrics
        .http_duration
        .with_label_values(&[&route])
        .observe(started.elapsed().as_secs_f64());
    response
}
