//! Zones: drawing them (validated, converted to WGS-84), listing what the caller may see, and
//! attaching them to supervisees.
//!
//! Visibility: supervisors see every zone; an officer sees shared zones, zones they drew and
//! zones attached to someone in their caseload. Only supervisors create shared zones.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::access::{audit, supervisee_in_reach, Audit, Purpose};
use super::error::{ApiError, ApiResult};
use super::extract::{self, parse_cursor, parse_id, ApiJson, ApiQuery, ClientAddr, Principal};
use super::{page_limit, AppState, PageQuery};
use crate::domain::datum::Datum;
use crate::domain::officer::Role;
use crate::domain::schedule::Schedule;
use crate::domain::zone_geometry::{GeometryLimits, ZoneGeometry};
use crate::eval::Class;
use crate::store;

#[derive(Serialize, ToSchema)]
pub struct ZoneView {
    pub id: String,
    pub name: String,
    /// `inclusion` (must stay inside) or `exclusion` (must stay out).
    pub kind: String,
    /// The zone in WGS-84, as the rule engine uses it.
    #[schema(value_type = Object)]
    pub geometry: serde_json::Value,
    /// The zone as drawn, in `datum`.
    #[schema(value_type = Object)]
    pub source_geometry: serde_json::Value,
    /// The datum the zone was drawn in: `wgs84`, `gcj02` or `bd09`.
    pub datum: String,
    #[schema(value_type = Vec<Object>)]
    pub schedule: serde_json::Value,
    pub buffer_m: f64,
    pub confirm_fixes: i32,
    pub shared: bool,
    pub created_by: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

impl From<store::zones::Zone> for ZoneView {
    fn from(z: store::zones::Zone) -> Self {
        ZoneView {
            id: z.id.to_string(),
            name: z.name,
            kind: z.kind,
            geometry: z.geometry,
            source_geometry: z.source_geometry,
            datum: z.source_datum,
            schedule: z.schedule,
            buffer_m: z.buffer_m,
            confirm_fixes: z.confirm_fixes,
            shared: z.shared,
            created_by: z.created_by.map(|id| id.to_string()),
            created_at: z.created_at,
            updated_at: z.updated_at,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateZone {
    pub name: String,
    /// `inclusion` or `exclusion`.
    pub kind: String,
    /// GeoJSON Polygon or MultiPolygon, or `{"type":"Circle","coordinates":[lon,lat],"radius_m":R}`.
    #[schema(value_type = Object)]
    pub geometry: serde_json::Value,
    /// `wgs84` (default), `gcj02` (Amap, Tencent) or `bd09` (Baidu).
    pub datum: Option<String>,
    /// Weekly windows in the supervisee's time zone; absent or empty means always active.
    #[schema(value_type = Option<Vec<Object>>)]
    pub schedule: Option<serde_json::Value>,
    /// Widens an exclusion zone by this many metres.
    pub buffer_m: Option<f64>,
    /// Consecutive confirming fixes needed to start or end a violation.
    pub confirm_fixes: Option<i64>,
    /// Agency-wide zone (all schools of a city); supervisors only.
    pub shared: Option<bool>,
}

#[derive(Serialize, ToSchema)]
pub struct ZoneList {
    pub items: Vec<ZoneView>,
    pub next: Option<String>,
}

/// The geometry limits configured for zones.
pub fn geometry_limits(state: &AppState) -> GeometryLimits {
    let z = &state.config.zones;
    GeometryLimits {
        max_vertices: z.max_vertices,
        max_extent_m: z.max_extent_m,
        max_radius_m: z.max_radius_m,
    }
}

/// Parses a datum name from a request (absent: WGS-84).
pub fn parse_datum(raw: Option<&str>) -> ApiResult<Datum> {
    raw.map_or(Ok(Datum::Wgs84), |d| {
        d.parse::<Datum>()
            .map_err(|e| ApiError::invalid("unknown_datum", e.to_string()))
    })
}

pub async fn create(
    State(state): State<AppState>,
    principal: Principal,
    from: ClientAddr,
    ApiJson(req): ApiJson<CreateZone>,
) -> ApiResult<(StatusCode, Json<ZoneView>)> {
    let name = extract::name(&req.name)?;
    if req.kind != "inclusion" && req.kind != "exclusion" {
        return Err(ApiError::invalid(
            "invalid_kind",
            format!(
                "unknown kind {:?}: expected inclusion or exclusion",
                req.kind
            ),
        ));
    }
    let datum = parse_datum(req.datum.as_deref())?;
    let geometry = ZoneGeometry::parse(&req.geometry, datum, &geometry_limits(&state))
        .map_err(|e| ApiError::invalid(e.code(), format!("geometry: {e}")))?;
    let schedule = Schedule::parse(req.schedule.as_ref().unwrap_or(&serde_json::Value::Null))
        .map_err(|e| ApiError::invalid(e.code(), format!("schedule: {e}")))?;
    let buffer_m = req.buffer_m.unwrap_or(0.0);
    let max_buffer = state.config.zones.max_buffer_m;
    if !buffer_m.is_finite() || !(0.0..=max_buffer).contains(&buffer_m) {
        return Err(ApiError::invalid(
            "invalid_buffer",
            format!("buffer_m must be between 0 and {max_buffer}"),
        ));
    }
    if buffer_m > 0.0 && req.kind == "inclusion" {
        return Err(ApiError::invalid(
            "invalid_buffer",
            "buffer_m widens exclusion zones only; an inclusion zone takes 0",
        ));
    }
    let confirm_fixes = req
        .confirm_fixes
        .unwrap_or(i64::from(state.config.zones.default_confirm_fixes));
    if !(1..=100).contains(&confirm_fixes) {
        return Err(ApiError::invalid(
            "invalid_confirm_fixes",
            "confirm_fixes must be between 1 and 100",
        ));
    }
    let shared = req.shared.unwrap_or(false);
    if shared && !principal.roles.contains(Role::Supervisor) {
        return Err(ApiError::Forbidden);
    }
    let zone = store::zones::create(
        &state.db,
        store::zones::NewZone {
            name,
            kind: &req.kind,
            geometry: geometry.to_geojson(),
            source_geometry: &req.geometry,
            source_datum: datum.as_str(),
            schedule: schedule.to_json(),
            buffer_m,
            confirm_fixes: confirm_fixes as i32,
            shared,
            created_by: principal.officer_id,
        },
    )
    .await?;
    audit(
        &state,
        Some(&principal),
        &from,
        Audit {
            action: "zone.create",
            target_type: "zone",
            target_id: Some(zone.id.to_string()),
            supervisee_id: None,
            detail: serde_json::json!({ "name": zone.name, "kind": zone.kind, "shared": shared }),
        },
    )
    .await?;
    Ok((StatusCode::CREATED, Json(zone.into())))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClassifyRequest {
    pub lat: f64,
    pub lon: f64,
    /// Accuracy radius in metres (default 0: the point alone).
    pub acc: Option<f64>,
}

#[derive(Serialize, ToSchema)]
pub struct ClassifyResponse {
    /// `inside`, `outside` or `uncertain` (the accuracy circle straddles the border).
    pub class: String,
    /// Distance from the point to the zone's border (widened by `buffer_m`), metres.
    pub distance_m: f64,
}

/// `POST /v1/zones/{id}/classify`: where a point lies relative to a zone, with the rule
/// engine's own code, so an officer can check a zone they have drawn.
pub async fn classify(
    State(state): State<AppState>,
    principal: Principal,
    from: ClientAddr,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<ClassifyRequest>,
) -> ApiResult<Json<ClassifyResponse>> {
    let zone = store::zones::get_visible(&state.db, viewer(&principal), parse_id(&id)?)
        .await?
        .ok_or(ApiError::NotFound)?;
    if !(req.lat.is_finite() && (-90.0..=90.0).contains(&req.lat)) {
        return Err(ApiError::invalid(
            "invalid_fix",
            format!("lat {} out of range", req.lat),
        ));
    }
    if !(req.lon.is_finite() && (-180.0..=180.0).contains(&req.lon)) {
        return Err(ApiError::invalid(
            "invalid_fix",
            format!("lon {} out of range", req.lon),
        ));
    }
    let acc = req.acc.unwrap_or(0.0);
    if !(acc.is_finite() && (0.0..=100_000.0).contains(&acc)) {
        return Err(ApiError::invalid(
            "invalid_field",
            format!("acc {acc} must be between 0 and 100000 metres"),
        ));
    }
    let prepared = state.zones.get(zone).await?;
    let result = prepared.classify(req.lat, req.lon, acc);
    audit(
        &state,
        Some(&principal),
        &from,
        Audit {
            action: "zone.classify",
            target_type: "zone",
            target_id: Some(prepared.id().to_string()),
            supervisee_id: None,
            detail: serde_json::json!({}),
        },
    )
    .await?;
    let class = match result.class {
        Class::Inside => "inside",
        Class::Outside => "outside",
        Class::Uncertain => "uncertain",
    };
    Ok(Json(ClassifyResponse {
        class: class.to_owned(),
        distance_m: result.distance_m,
    }))
}

fn viewer(principal: &Principal) -> Option<uuid::Uuid> {
    principal.caseload_filter(Purpose::Location)
}

pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    from: ClientAddr,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> ApiResult<Json<ZoneList>> {
    let limit = page_limit(query.limit)?;
    let after = parse_cursor(query.after.as_deref())?;
    let rows = store::zones::list_visible(&state.db, viewer(&principal), after, limit + 1).await?;
    let (items, next) = super::paginate(rows, limit, |z| z.id.to_string());
    audit(
        &state,
        Some(&principal),
        &from,
        Audit {
            action: "zone.list",
            target_type: "zone",
            target_id: None,
            supervisee_id: None,
            detail: serde_json::json!({ "ids": items.iter().map(|z| z.id).collect::<Vec<_>>() }),
        },
    )
    .await?;
    Ok(Json(ZoneList {
        items: items.into_iter().map(ZoneView::from).collect(),
        next,
    }))
}

pub async fn get(
    State(state): State<AppState>,
    principal: Principal,
    from: ClientAddr,
    Path(id): Path<String>,
) -> ApiResult<Json<ZoneView>> {
    let zone = store::zones::get_visible(&state.db, viewer(&principal), parse_id(&id)?)
        .await?
        .ok_or(ApiError::NotFound)?;
    audit(
        &state,
        Some(&principal),
        &from,
        Audit {
            action: "zone.read",
            target_type: "zone",
            target_id: Some(zone.id.to_string()),
            supervisee_id: None,
            detail: serde_json::json!({}),
        },
    )
    .await?;
    Ok(Json(zone.into()))
}

pub async fn of_supervisee(
    State(state): State<AppState>,
    principal: Principal,
    from: ClientAddr,
    Path(id): Path<String>,
) -> ApiResult<Json<ZoneList>> {
    let id = supervisee_in_reach(&state, &principal, &id, Purpose::Location).await?;
    let zones = store::zones::of_supervisee(&state.db, id).await?;
    audit(
        &state,
        Some(&principal),
        &from,
        Audit::supervisee(
            "supervisee.zones_read",
            id,
            serde_json::json!({ "zones": zones.len() }),
        ),
    )
    .await?;
    Ok(Json(ZoneList {
        items: zones.into_iter().map(ZoneView::from).collect(),
        next: None,
    }))
}

pub async fn attach(
    State(state): State<AppState>,
    principal: Principal,
    from: ClientAddr,
    Path((id, zone_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let id = supervisee_in_reach(&state, &principal, &id, Purpose::Location).await?;
    let zone = store::zones::get_visible(&state.db, viewer(&principal), parse_id(&zone_id)?)
        .await?
        .ok_or(ApiError::NotFound)?;
    let created = store::zones::attach(&state.db, id, zone.id, principal.officer_id).await?;
    state.rules_changed(id).await;
    audit(
        &state,
        Some(&principal),
        &from,
        Audit::supervisee(
            "supervisee.zone_attach",
            id,
            serde_json::json!({ "zone_id": zone.id, "already_attached": !created }),
        ),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn detach(
    State(state): State<AppState>,
    principal: Principal,
    from: ClientAddr,
    Path((id, zone_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let id = supervisee_in_reach(&state, &principal, &id, Purpose::Location).await?;
    let zone_id = parse_id(&zone_id)?;
    if !store::zones::detach(&state.db, id, zone_id).await? {
        return Err(ApiError::NotFound);
    }
    state.rules_changed(id).await;
    audit(
        &state,
        Some(&principal),
        &from,
        Audit::supervisee(
            "supervisee.zone_detach",
            id,
            serde_json::json!({ "zone_id": zone_id }),
        ),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
