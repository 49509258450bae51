//! Devices (admin only): registration with a one-time token, listing, revocation.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::access::{audit, Audit};
use super::error::{ApiError, ApiResult};
use super::extract::{parse_cursor, parse_id, ApiJson, ApiQuery, ClientAddr, Principal};
use super::{page_limit, AppState, PageQuery};
use crate::credentials::{self, DEVICE_TOKEN_PREFIX};
use crate::store;

#[derive(Serialize, ToSchema)]
pub struct DeviceView {
    pub id: String,
    pub serial: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub revoked_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The supervisee wearing the device, if assigned.
    pub supervisee_id: Option<String>,
}

impl From<store::devices::Device> for DeviceView {
    fn from(d: store::devices::Device) -> Self {
        DeviceView {
            id: d.id.to_string(),
            serial: d.serial,
            created_at: d.created_at,
            revoked_at: d.revoked_at,
            supervisee_id: d.supervisee_id.map(|s| s.to_string()),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct RegisteredDevice {
    pub id: String,
    pub serial: String,
    /// The device's bearer token for `/v1/device/ws`. Shown once; only its hash is kept.
    pub token: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateDevice {
    pub serial: String,
}

#[derive(Serialize, ToSchema)]
pub struct DeviceList {
    pub items: Vec<DeviceView>,
    pub next: Option<String>,
}

pub async fn create(
    State(state): State<AppState>,
    principal: Principal,
    from: ClientAddr,
    ApiJson(req): ApiJson<CreateDevice>,
) -> ApiResult<(StatusCode, Json<RegisteredDevice>)> {
    let serial = req.serial.trim();
    if serial.is_empty()
        || serial.len() > 128
        || !serial
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c))
    {
        return Err(ApiError::invalid(
            "invalid_serial",
            "serial must have 1 to 128 characters of letters, digits and - _ . :",
        ));
    }
    let (token, token_hash) = credentials::new_token(DEVICE_TOKEN_PREFIX);
    let device = store::devices::create(&state.db, serial, &token_hash).await?;
    audit(
        &state,
        Some(&principal),
        &from,
        Audit {
            action: "device.create",
            target_type: "device",
            target_id: Some(device.id.to_string()),
            supervisee_id: None,
            detail: serde_json::json!({ "serial": device.serial }),
        },
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(RegisteredDevice {
            id: device.id.to_string(),
            serial: device.serial,
            token,
        }),
    ))
}

pub async fn list(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> ApiResult<Json<DeviceList>> {
    let limit = page_limit(query.limit)?;
    let after = parse_cursor(query.after.as_deref())?;
    let rows = store::devices::list(&state.db, after, limit + 1).await?;
    let (items, next) = super::paginate(rows, limit, |d| d.id.to_string());
    Ok(Json(DeviceList {
        items: items.into_iter().map(DeviceView::from).collect(),
        next,
    }))
}

pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<DeviceView>> {
    let device = store::devices::get(&state.db, parse_id(&id)?)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(Json(device.into()))
}

pub async fn revoke(
    State(state): State<AppState>,
    principal: Principal,
    from: ClientAddr,
    Path(id): Path<String>,
) -> ApiResult<Json<DeviceView>> {
    let id = parse_id(&id)?;
    if !store::devices::revoke(&state.db, id).await? {
        return Err(ApiError::NotFound);
    }
    state.ingest.registry().revoke(id).await;
    audit(
        &state,
        Some(&principal),
        &from,
        Audit {
            action: "device.revoke",
            target_type: "device",
            target_id: Some(id.to_string()),
            supervisee_id: None,
            detail: serde_json::json!({}),
        },
    )
    .await?;
    let device = store::devices::get(&state.db, id)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(Json(device.into()))
}
