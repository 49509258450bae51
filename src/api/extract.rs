//! Request extractors that turn every malformed input into a JSON error (never axum's plain
//! text), and the caller's identity once the access gate has established it.

use std::net::SocketAddr;

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use super::error::ApiError;
use crate::domain::officer::Roles;

/// A JSON body; rejections become JSON errors (400 malformed, 413 too large, 415 not JSON).
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(ApiJson(value)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

fn json_rejection(rejection: JsonRejection) -> ApiError {
    match rejection {
        JsonRejection::MissingJsonContentType(_) => ApiError::UnsupportedMediaType,
        JsonRejection::JsonSyntaxError(err) => ApiError::BadRequest {
            code: "malformed_json",
            message: format!(
                "the body is not valid JSON: {}",
                inner_text(&err.body_text())
            ),
        },
        JsonRejection::JsonDataError(err) => ApiError::BadRequest {
            code: "invalid_body",
            message: inner_text(&err.body_text()),
        },
        other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge(0),
        other => ApiError::bad_request(other.body_text()),
    }
}

/// axum prefixes serde's message with its own sentence; keep serde's part, which names the field.
fn inner_text(text: &str) -> String {
    text.split_once(": ")
        .map(|(_, rest)| rest.to_owned())
        .unwrap_or_else(|| text.to_owned())
}

/// Query parameters; rejections become 400 `invalid_query`.
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(ApiQuery(value)),
            Err(rejection) => Err(query_rejection(rejection)),
        }
    }
}

fn query_rejection(rejection: QueryRejection) -> ApiError {
    ApiError::BadRequest {
        code: "invalid_query",
        message: inner_text(&rejection.body_text()),
    }
}

/// The authenticated officer making the request (set by the access gate).
#[derive(Debug, Clone)]
pub struct Principal {
    pub officer_id: Uuid,
    pub username: String,
    pub roles: Roles,
    /// SHA-256 of the bearer token used, so logout can revoke exactly this session.
    pub token_hash: Vec<u8>,
}

impl<S: Send + Sync> FromRequestParts<S> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Principal>()
            .cloned()
            .ok_or(ApiError::Unauthenticated)
    }
}

/// Where the request came from, for the audit log and login throttling.
#[derive(Debug, Clone)]
pub struct ClientAddr(pub String);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let addr = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip().to_string())
            .unwrap_or_else(|| "unknown".to_owned());
        Ok(ClientAddr(addr))
    }
}

/// A required free-text field, trimmed, of 1 to `max` characters; otherwise 422 with `code`.
pub fn text<'a>(
    field: &str,
    value: &'a str,
    max: usize,
    code: &'static str,
) -> Result<&'a str, ApiError> {
    let value = value.trim();
    if value.is_empty() || value.chars().count() > max {
        return Err(ApiError::invalid(
            code,
            format!("{field} must have 1 to {max} characters"),
        ));
    }
    Ok(value)
}

/// A display name (officer, supervisee, zone): 1 to 200 characters.
pub fn name(value: &str) -> Result<&str, ApiError> {
    text("name", value, 200, "invalid_name")
}

/// Parses an id from a path; anything that is not an id is simply not found.
pub fn parse_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::NotFound)
}

/// Parses an optional opaque pagination cursor (an id).
pub fn parse_cursor(raw: Option<&str>) -> Result<Option<Uuid>, ApiError> {
    raw.map(|c| {
        Uuid::parse_str(c).map_err(|_| ApiError::BadRequest {
            code: "invalid_query",
            message: "after: not a cursor returned by this API".into(),
        })
    })
    .transpose()
}
