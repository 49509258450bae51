//! Supervisees: creation, the caller's caseload, reassignment and device assignment.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::access::{audit, supervisee_in_reach, Audit, Purpose};
use super::error::{ApiError, ApiResult};
use super::extract::{self, parse_cursor, ApiJson, ApiQuery, ClientAddr, Principal};
use super::{page_limit, AppState, PageQuery};
use crate::domain::officer::Role;
use crate::domain::supervision::parse_timezone;
use crate::store;

#[derive(Serialize, ToSchema)]
pub struct SuperviseeView {
    pub id: String,
    pub name: String,
    pub officer_id: String,
    pub timezone: String,
    pub lost_contact_after_s: i32,
    /// The device currently worn, if any.
    pub device_id: Option<String>,
    /// Whether a monitoring order is active now.
    pub under_supervision: bool,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

impl From<store::supervisees::Supervisee> for SuperviseeView {
    fn from(s: store::supervisees::Supervisee) -> Self {
        SuperviseeView {
            id: s.id.to_string(),
            name: s.name,
            officer_id: s.officer_id.to_string(),
            timezone: s.timezone,
            lost_contact_after_s: s.lost_contact_after_s,
            device_id: s.device_id.map(|d| d.to_string()),
            under_supervision: s.under_supervision,
            created_at: s.created_at,
            updated_at: s.updated_at,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSupervisee {
    pub name: String,
    pub officer_id: String,
    /// IANA time zone of the supervisee's schedules, e.g. `Asia/Shanghai`.
    pub timezone: String,
    /// Allowed silence before lost contact, seconds (default from the configuration).
    pub lost_contact_after_s: Option<i64>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateSupervisee {
    pub name: Option<String>,
    /// Reassigns the supervisee to another officer's caseload.
    pub officer_id: Option<String>,
    pub timezone: Option<String>,
    pub lost_contact_after_s: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct SuperviseeList {
    pub items: Vec<SuperviseeView>,
    /// Pass as `after` for the next page; null on the last page.
    pub next: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignDevice {
    pub device_id: String,
}

fn check_lost_contact(state: &AppState, seconds: i64) -> ApiResult<i32> {
    let s = &state.config.supervision;
    let (min, max) = (
        i64::from(s.min_lost_contact_after_s),
        i64::from(s.max_lost_contact_after_s),
    );
    if !(min..=max).contains(&seconds) {
        return Err(ApiError::invalid(
            "invalid_lost_contact_after_s",
            format!("lost_contact_after_s must be between {min} and {max}"),
        ));
    }
    Ok(seconds as i32)
}

fn check_timezone(name: &str) -> ApiResult<&str> {
    parse_timezone(name).map_err(|m| ApiError::invalid("invalid_timezone", m))?;
    Ok(name)
}

/// The caseload officer: an active account holding the officer role.
async fn caseload_officer(state: &AppState, raw: &str) -> ApiResult<Uuid> {
    let invalid = || {
        ApiError::invalid(
            "invalid_officer",
            "officer_id must name an active account with the officer role",
        )
    };
    let id = Uuid::parse_str(raw).map_err(|_| invalid())?;
    match store::officers::get(&state.db, id).await? {
        Some(o) if o.active && o.roles.contains(Role::Officer) => Ok(id),
        _ => Err(invalid()),
    }
}

pub async fn create(
    State(state): State<AppState>,
    principal: Principal,
    from: ClientAddr,
    ApiJson(req): ApiJson<CreateSupervisee>,
) -> ApiResult<(StatusCode, Json<SuperviseeView>)> {
    let name = extract::name(&req.name)?;
    let timezone = check_timezone(&req.timezone)?;
    let lost_contact = check_lost_contact(
        &state,
        req.lost_contact_after_s.unwrap_or(i64::from(
            state.config.supervision.default_lost_contact_after_s,
        )),
    )?;
    let officer_id = caseload_officer(&state, &req.officer_id).await?;
    let id = store::supervisees::create(
        &state.db,
        store::supervisees::NewSupervisee {
            name,
            officer_id,
            timezone,
            lost_contact_after_s: lost_contact,
        },
    )
    .await?;
    state.rules_changed(id).await;
    audit(
        &state,
        Some(&principal),
        &from,
        Audit::supervisee(
            "supervisee.create",
            id,
            serde_json::json!({ "officer_id": officer_id }),
        ),
    )
    .await?;
    let created = store::supervisees::get(&state.db, id, chrono::Utc::now())
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok((StatusCode::CREATED, Json(created.into())))
}

pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    from: ClientAddr,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> ApiResult<Json<SuperviseeList>> {
    let limit = page_limit(query.limit)?;
    let after = parse_cursor(query.after.as_deref())?;
    let caseload = principal.caseload_filter(Purpose::Record);
    let rows =
        store::supervisees::list(&state.db, caseload, after, limit + 1, chrono::Utc::now()).await?;
    let (items, next) = super::paginate(rows, limit, |s| s.id.to_string());
    audit(
        &state,
        Some(&principal),
        &from,
        Audit {
            action: "supervisee.list",
            target_type: "supervisee",
            target_id: None,
            supervisee_id: None,
            detail: serde_json::json!({ "ids": items.iter().map(|s| s.id).collect::<Vec<_>>() }),
        },
    )
    .await?;
    Ok(Json(SuperviseeList {
        items: items.into_iter().map(SuperviseeView::from).collect(),
        next,
    }))
}

pub async fn get(
    State(state): State<AppState>,
    principal: Principal,
    from: ClientAddr,
    Path(id): Path<String>,
) -> ApiResult<Json<SuperviseeView>> {
    let id = supervisee_in_reach(&state, &principal, &id, Purpose::Record).await?;
    let supervisee = store::supervisees::get(&state.db, id, chrono::Utc::now())
        .await?
        .ok_or(ApiError::NotFound)?;
    audit(
        &state,
        Some(&principal),
        &from,
        Audit::supervisee("supervisee.read", id, serde_json::json!({})),
    )
    .await?;
    Ok(Json(supervisee.into()))
}

pub async fn update(
    State(state): State<AppState>,
    principal: Principal,
    from: ClientAddr,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<UpdateSupervisee>,
) -> ApiResult<Json<SuperviseeView>> {
    let id = supervisee_in_reach(&state, &principal, &id, Purpose::Record).await?;
    let name = req.name.as_deref().map(extract::name).transpose()?;
    let timezone = req.timezone.as_deref().map(check_timezone).transpose()?;
    let lost_contact = req
        .lost_contact_after_s
        .map(|s| check_lost_contact(&state, s))
        .transpose()?;
    let officer_id = match req.officer_id.as_deref() {
        Some(raw) => Some(caseload_officer(&state, raw).await?),
        None => None,
    };
    store::supervisees::update(
        &state.db,
        id,
        store::supervisees::SuperviseeChanges {
            name,
            officer_id,
            timezone,
            lost_contact_after_s: lost_contact,
        },
    )
    .await?;
    audit(
        &state,
        Some(&principal),
        &from,
        Audit::supervisee(
            "supervisee.update",
            id,
            serde_json::json!({
                "name": name, "officer_id": officer_id, "timezone": timezone,
                "lost_contact_after_s": lost_contact,
            }),
        ),
    )
    .await?;
    let updated = store::supervisees::get(&state.db, id, chrono::Utc::now())
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(Json(updated.into()))
}

pub async fn assign_device(
    State(state): State<AppState>,
    principal: Principal,
    from: ClientAddr,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<AssignDevice>,
) -> ApiResult<Json<SuperviseeView>> {
    let id = supervisee_in_reach(&state, &principal, &id, Purpose::Record).await?;
    let device_id = Uuid::parse_str(&req.device_id)
        .map_err(|_| ApiError::invalid("invalid_device", "device_id is not a device id"))?;
    let previous = store::supervisees::get(&state.db, id, chrono::Utc::now())
        .await?
        .and_then(|s| s.device_id);
    store::supervisees::assign_device(&state.db, id, device_id, principal.officer_id).await?;
    state.ingest.registry().changed(device_id).await;
    if let Some(previous) = previous.filter(|p| *p != device_id) {
        state.ingest.registry().changed(previous).await;
    }
    audit(
        &state,
        Some(&principal),
        &from,
        Audit::supervisee(
            "supervisee.device_assign",
            id,
            serde_json::json!({ "device_id": device_id }),
        ),
    )
    .await?;
    let updated = store::supervisees::get(&state.db, id, chrono::Utc::now())
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(Json(updated.into()))
}

pub async fn unassign_device(
    State(state): State<AppState>,
    principal: Principal,
    from: ClientAddr,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let id = supervisee_in_reach(&state, &principal, &id, Purpose::Record).await?;
    let worn = store::supervisees::get(&state.db, id, chrono::Utc::now())
        .await?
        .and_then(|s| s.device_id);
    if !store::supervisees::unassign_device(&state.db, id).await? {
        return Err(ApiError::NotFound);
    }
    if let Some(device) = worn {
        state.ingest.registry().changed(device).await;
    }
    audit(
        &state,
        Some(&principal),
        &from,
        Audit::supervisee("supervisee.device_unassign", id, serde_json::json!({})),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
