//! Monitoring orders and approved leave for one supervisee (caseload-scoped, audited).
//!
//! An order's period may not exceed `supervision.max_order_days` (default 92, the PRC
//! three-month rule); a renewal is a new order starting when the previous one ends. Orders of one
//! supervisee never overlap, nor do their (uncancelled) leaves.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::access::{audit, supervisee_in_reach, Audit, Purpose};
use super::error::{ApiError, ApiResult};
use super::extract::{self, parse_id, ApiJson, ClientAddr, Principal};
use super::zones::{geometry_limits, parse_datum};
use super::AppState;
use crate::domain::supervision::{OrderBasis, Period};
use crate::domain::zone_geometry::ZoneGeometry;
use crate::store;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOrder {
    /// One of the five legal grounds, e.g. `left_jurisdiction_without_approval`.
    pub basis: String,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    /// Who approved the order (head of the county judicial office).
    pub approved_by: String,
}

#[derive(Serialize, ToSchema)]
pub struct OrderView {
    pub id: String,
    pub supervisee_id: String,
    pub basis: String,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub approved_by: String,
    /// Whether the order is in force now.
    pub active: bool,
    pub created_by: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl OrderView {
    fn new(o: store::orders::Order, now: DateTime<Utc>) -> OrderView {
        OrderView {
            id: o.id.to_string(),
            supervisee_id: o.supervisee_id.to_string(),
            basis: o.basis,
            active: o.starts_at <= now && now < o.ends_at,
            starts_at: o.starts_at,
            ends_at: o.ends_at,
            approved_by: o.approved_by,
            created_by: o.created_by.map(|id| id.to_string()),
            created_at: o.created_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct OrderList {
    pub items: Vec<OrderView>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateLeave {
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    /// Where the supervisee may be during the leave: a zone geometry (enforced as an inclusion
    /// zone). Absent: inclusion zones are simply suspended.
    #[schema(value_type = Option<Object>)]
    pub destination: Option<serde_json::Value>,
    /// Datum of `destination` (default `wgs84`).
    pub datum: Option<String>,
    pub reason: String,
}

#[derive(Serialize, ToSchema)]
pub struct LeaveView {
    pub id: String,
    pub supervisee_id: String,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    /// The destination in WGS-84, if any.
    #[schema(value_type = Option<Object>)]
    pub destination: Option<serde_json::Value>,
    pub reason: String,
    /// `approved` or `cancelled`.
    pub status: String,
    pub cancelled_at: Option<DateTime<Utc>>,
    pub created_by: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl From<store::orders::Leave> for LeaveView {
    fn from(l: store::orders::Leave) -> Self {
        LeaveView {
            id: l.id.to_string(),
            supervisee_id: l.supervisee_id.to_string(),
            starts_at: l.starts_at,
            ends_at: l.ends_at,
            destination: l.destination,
            reason: l.reason,
            status: if l.cancelled_at.is_some() {
                "cancelled"
            } else {
                "approved"
            }
            .to_owned(),
            cancelled_at: l.cancelled_at,
            created_by: l.created_by.map(|id| id.to_string()),
            created_at: l.created_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct LeaveList {
    pub items: Vec<LeaveView>,
}

pub async fn create_order(
    State(state): State<AppState>,
    principal: Principal,
    from: ClientAddr,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<CreateOrder>,
) -> ApiResult<(StatusCode, Json<OrderView>)> {
    let id = supervisee_in_reach(&state, &principal, &id, Purpose::Location).await?;
    let basis = req
        .basis
        .parse::<OrderBasis>()
        .map_err(|m| ApiError::invalid("invalid_basis", m))?;
    let period = Period::new(
        req.starts_at,
        req.ends_at,
        state.config.supervision.max_order_days,
    )
    .map_err(|m| ApiError::invalid("invalid_period", m))?;
    let approved_by = extract::text("approved_by", &req.approved_by, 200, "invalid_text")?;
    let order = store::orders::create_order(
        &state.db,
        id,
        basis,
        period,
        approved_by,
        principal.officer_id,
    )
    .await?;
    state.rules_changed(id).await;
    audit(
        &state,
        Some(&principal),
        &from,
        Audit::supervisee(
            "supervisee.order_create",
            id,
            serde_json::json!({ "order_id": order.id, "basis": basis.as_str(), "starts_at": period.starts_at, "ends_at": period.ends_at }),
        ),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(OrderView::new(order, Utc::now()))))
}

pub async fn list_orders(
    State(state): State<AppState>,
    principal: Principal,
    from: ClientAddr,
    Path(id): Path<String>,
) -> ApiResult<Json<OrderList>> {
    let id = supervisee_in_reach(&state, &principal, &id, Purpose::Location).await?;
    let orders = store::orders::orders_of(&state.db, id).await?;
    audit(
        &state,
        Some(&principal),
        &from,
        Audit::supervisee(
            "supervisee.orders_read",
            id,
            serde_json::json!({ "orders": orders.len() }),
        ),
    )
    .await?;
    let now = Utc::now();
    Ok(Json(OrderList {
        items: orders.into_iter().map(|o| OrderView::new(o, now)).collect(),
    }))
}

pub async fn create_leave(
    State(state): State<AppState>,
    principal: Principal,
    from: ClientAddr,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<CreateLeave>,
) -> ApiResult<(StatusCode, Json<LeaveView>)> {
    let id = supervisee_in_reach(&state, &principal, &id, Purpose::Location).await?;
    let period = Period::new(
        req.starts_at,
        req.ends_at,
        state.config.supervision.max_leave_days,
    )
    .map_err(|m| ApiError::invalid("invalid_period", m))?;
    if period.ends_at <= Utc::now() {
        return Err(ApiError::invalid(
            "invalid_period",
            "the leave has already ended; leave is approved before or during the trip",
        ));
    }
    let reason = extract::text("reason", &req.reason, 1000, "invalid_text")?;
    let datum = parse_datum(req.datum.as_deref())?;
    let destination = match &req.destination {
        None | Some(serde_json::Value::Null) => None,
        Some(raw) => Some(
            ZoneGeometry::parse(raw, datum, &geometry_limits(&state))
                .map_err(|e| ApiError::invalid(e.code(), format!("destination: {e}")))?,
        ),
    };
    let leave = store::orders::create_leave(
        &state.db,
        id,
        store::orders::NewLeave {
            period,
            destination: destination.as_ref().map(ZoneGeometry::to_geojson),
            source_destination: req.destination.as_ref().filter(|d| !d.is_null()),
            source_datum: destination.as_ref().map(|_| datum.as_str()),
            reason,
            created_by: principal.officer_id,
        },
    )
    .await?;
    state.rules_changed(id).await;
    audit(
        &state,
        Some(&principal),
        &from,
        Audit::supervisee(
            "supervisee.leave_create",
            id,
            serde_json::json!({ "leave_id": leave.id, "starts_at": period.starts_at, "ends_at": period.ends_at }),
        ),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(leave.into())))
}

pub async fn list_leaves(
    State(state): State<AppState>,
    principal: Principal,
    from: ClientAddr,
    Path(id): Path<String>,
) -> ApiResult<Json<LeaveList>> {
    let id = supervisee_in_reach(&state, &principal, &id, Purpose::Location).await?;
    let leaves = store::orders::leaves_of(&state.db, id).await?;
    audit(
        &state,
        Some(&principal),
        &from,
        Audit::supervisee(
            "supervisee.leaves_read",
            id,
            serde_json::json!({ "leaves": leaves.len() }),
        ),
    )
    .await?;
    Ok(Json(LeaveList {
        items: leaves.into_iter().map(LeaveView::from).collect(),
    }))
}

pub async fn cancel_leave(
    State(state): State<AppState>,
    principal: Principal,
    from: ClientAddr,
    Path((id, leave_id)): Path<(String, String)>,
) -> ApiResult<Json<LeaveView>> {
    let id = supervisee_in_reach(&state, &principal, &id, Purpose::Location).await?;
    let leave_id = parse_id(&leave_id)?;
    let leave = store::orders::cancel_leave(&state.db, id, leave_id, principal.officer_id)
        .await?
        .ok_or(ApiError::NotFound)?;
    state.rules_changed(id).await;
    audit(
        &state,
        Some(&principal),
        &from,
        Audit::supervisee(
            "supervisee.leave_cancel",
            id,
            serde_json::json!({ "leave_id": leave_id }),
        ),
    )
    .await?;
    Ok(Json(leave.into()))
}
