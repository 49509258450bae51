//! Operations endpoints: liveness, readiness, metrics and the API description.

use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use super::error::ApiError;
use super::AppState;
use crate::store;

#[derive(Serialize, ToSchema)]
pub struct Health {
    pub status: &'static str,
}

#[derive(Serialize, ToSchema)]
pub struct Readiness {
    /// `ready` or `not_ready`.
    pub status: &'static str,
    /// `ok` or what went wrong.
    pub postgres: String,
    pub redis: String,
}

pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

const READY_TIMEOUT: Duration = Duration::from_secs(2);

pub async fn readyz(State(state): State<AppState>) -> Response {
    let postgres = async {
        match tokio::time::timeout(READY_TIMEOUT, store::ping(&state.db)).await {
            Ok(Ok(())) => "ok".to_owned(),
            Ok(Err(err)) => err.to_string(),
            Err(_) => "timed out".to_owned(),
        }
    };
    let redis = async {
        match state.live.ping().await {
            Ok(()) => "ok".to_owned(),
            Err(err) => err.to_string(),
        }
    };
    let (postgres, redis) = tokio::join!(postgres, redis);
    let ready = postgres == "ok" && redis == "ok";
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = Readiness {
        status: if ready { "ready" } else { "not_ready" },
        postgres,
        redis,
    };
    (status, Json(body)).into_response()
}

pub async fn metrics(State(state): State<AppState>) -> Response {
    match state.metrics.render() {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(err) => ApiError::Internal(Box::new(err)).into_response(),
    }
}

pub async fn openapi(State(state): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        state.openapi.as_str().to_owned(),
    )
        .into_response()
}
