//! The officer API's errors: opaque at the edge, full cause chain in the logs.
//!
//! Every error reply is JSON: `{"error": "<code>", "message": "<human text>"}`. Client
//! mistakes are 4xx with a code a program can branch on; failures of ours are 5xx whose message
//! says nothing internal, while the log line carries the whole chain.

use std::time::Duration;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use crate::live::LiveError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the request is malformed (bad JSON, wrong types, unknown fields).
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    /// 401: no valid credentials.
    #[error("authentication required")]
    Unauthenticated,
    /// 401 from login: wrong username or password (never says which).
    #[error("wrong username or password")]
    BadCredentials,
    /// 403: authenticated, but the role does not allow this route.
    #[error("your role does not allow this")]
    Forbidden,
    /// 404: no such thing, or not in the caller's caseload (indistinguishable on purpose).
    #[error("not found")]
    NotFound,
    /// 405
    #[error("method not allowed")]
    MethodNotAllowed,
    /// 409: the request conflicts with the current state.
    #[error("{0}")]
    Conflict(String),
    /// 413
    #[error("request body too large (limit {0} bytes)")]
    PayloadTooLarge(usize),
    /// 415
    #[error("expected a JSON body with Content-Type: application/json")]
    UnsupportedMediaType,
    /// 422: well-formed but invalid values; `code` names the rule broken.
    #[error("{message}")]
    Invalid { code: &'static str, message: String },
    /// 429
    #[error("too many failed logins; retry in {} s", .0.as_secs().max(1))]
    TooManyAttempts(Duration),
    /// 503: a store is unreachable; retrying later will work.
    #[error("service temporarily unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// 500: a bug or an unexpected failure.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// A stable code a program can branch on.
    pub error: String,
    /// A human-readable explanation.
    pub message: String,
}

impl ApiError {
    pub fn invalid(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::Invalid {
            code,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::BadRequest {
            code: "bad_request",
            message: message.into(),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthenticated | ApiError::BadCredentials => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden => StatusCode::FORBIDDEN,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::TooManyAttempts(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest { code, .. } | ApiError::Invalid { code, .. } => code,
            ApiError::Unauthenticated => "unauthenticated",
            ApiError::BadCredentials => "bad_credentials",
            ApiError::Forbidden => "forbidden",
            ApiError::NotFound => "not_found",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::Conflict(_) => "conflict",
            ApiError::PayloadTooLarge(_) => "payload_too_large",
            ApiError::UnsupportedMediaType => "unsupported_media_type",
            ApiError::TooManyAttempts(_) => "too_many_attempts",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Internal(_) => "internal",
        }
    }
}

/// The full cause chain of an error, for the log.
pub fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(error = %chain(&self), code = self.code(), "request failed");
        }
        let body = ErrorBody {
            error: self.code().to_owned(),
            message: self.to_string(),
        };
        let mut response = (status, Json(body)).into_response();
        match &self {
            ApiError::Unauthenticated => {
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            ApiError::TooManyAttempts(retry) => {
                if let Ok(value) = HeaderValue::from_str(&retry.as_secs().max(1).to_string()) {
                    response.headers_mut().insert(header::RETRY_AFTER, value);
                }
            }
            _ => {}
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Conflict(message) => ApiError::Conflict(message),
            StoreError::Unavailable(_) => ApiError::Unavailable(Box::new(err)),
            other => ApiError::Internal(Box::new(other)),
        }
    }
}

impl From<LiveError> for ApiError {
    fn from(err: LiveError) -> Self {
        ApiError::Unavailable(Box::new(err))
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
