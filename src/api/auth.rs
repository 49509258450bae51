//! Login, logout and "who am I".
//!
//! Login answers the same 401 for an unknown username and a wrong password, spends the same
//! argon2 time in both cases, and is throttled per username and per client address (see
//! [`crate::live::throttle`]). Throttling fails closed: without Redis, no login.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::access::{audit, Audit};
use super::error::{ApiError, ApiResult};
use super::extract::{ApiJson, ClientAddr, Principal};
use super::officers::OfficerView;
use super::AppState;
use crate::credentials::{self, OFFICER_TOKEN_PREFIX};
use crate::live::throttle::{LoginThrottle, Verdict};
use crate::store;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
}

#[derive(Serialize, ToSchema)]
pub struct LoginResponse {
    /// Bearer token for `Authorization: Bearer <token>`.
    pub token: String,
    pub expires_at: chrono::DateTime<chrono::Utc>,
    pub officer: OfficerView,
}

fn throttle(state: &AppState) -> LoginThrottle {
    let auth = &state.config.auth;
    LoginThrottle {
        max_per_user: auth.login_max_failures,
        max_per_address: auth.login_max_failures_per_address,
        window: auth.login_failure_window,
    }
}

pub async fn login(
    State(state): State<AppState>,
    from: ClientAddr,
    ApiJson(req): ApiJson<LoginRequest>,
) -> ApiResult<(StatusCode, Json<LoginResponse>)> {
    if req.username.len() > 256 || req.password.len() > 1024 {
        return Err(ApiError::BadCredentials);
    }
    let throttle = throttle(&state);
    if let Verdict::Throttled(retry) = throttle.check(&state.live, &req.username, &from.0).await? {
        state.metrics.logins.with_label_values(&["throttled"]).inc();
        return Err(ApiError::TooManyAttempts(retry));
    }
    let credentials = store::officers::credentials(&state.db, &req.username).await?;
    let (officer, stored) = match credentials {
        Some(c) if c.officer.active => (Some(c.officer), Some(c.password_hash)),
        _ => (None, None),
    };
    let ok = credentials::verify_password(req.password, stored)
        .await
        .map_err(|e| ApiError::Internal(Box::new(e)))?;
    let Some(officer) = officer.filter(|_| ok) else {
        throttle
            .record_failure(&state.live, &req.username, &from.0)
            .await?;
        state.metrics.logins.with_label_values(&["failed"]).inc();
        audit(
            &state,
            None,
            &from,
            Audit {
                action: "auth.login_failed",
                target_type: "officer",
                target_id: None,
                supervisee_id: None,
                detail: serde_json::json!({ "username": req.username }),
            },
        )
        .await?;
        return Err(ApiError::BadCredentials);
    };
    throttle
        .record_success(&state.live, &officer.username)
        .await?;
    let (token, token_hash) = credentials::new_token(OFFICER_TOKEN_PREFIX);
    let ttl = chrono::Duration::from_std(state.config.auth.session_ttl)
        .map_err(|e| ApiError::Internal(Box::new(e)))?;
    let expires_at = chrono::Utc::now() + ttl;
    store::officers::create_session(&state.db, officer.id, &token_hash, expires_at).await?;
    state.metrics.logins.with_label_values(&["succeeded"]).inc();
    let principal = Principal {
        officer_id: officer.id,
        username: officer.username.clone(),
        roles: officer.roles,
        token_hash,
    };
    audit(
        &state,
        Some(&principal),
        &from,
        Audit {
            action: "auth.login",
            target_type: "officer",
            target_id: Some(officer.id.to_string()),
            supervisee_id: None,
            detail: serde_json::json!({}),
        },
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(LoginResponse {
            token,
            expires_at,
            officer: OfficerView::from(officer),
        }),
    ))
}

pub async fn logout(
    State(state): State<AppState>,
    principal: Principal,
    from: ClientAddr,
) -> ApiResult<StatusCode> {
    store::officers::revoke_session(&state.db, &principal.token_hash).await?;
    audit(
        &state,
        Some(&principal),
        &from,
        Audit {
            action: "auth.logout",
            target_type: "officer",
            target_id: Some(principal.officer_id.to_string()),
            supervisee_id: None,
            detail: serde_json::json!({}),
        },
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn me(
    State(state): State<AppState>,
    principal: Principal,
) -> ApiResult<Json<OfficerView>> {
    let officer = store::officers::get(&state.db, principal.officer_id)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(Json(OfficerView::from(officer)))
}
