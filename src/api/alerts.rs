//! Alerts for officers: list, read with events, acknowledge, resolve.
//!
//! Caseload-scoped like all location data: an alert of a supervisee outside the caller's
//! caseload is a 404, for reading and for acting. Every read and step is audited. A step is
//! stored as an alert event (who, when, note) and reaches every officer's feed.

use axum::extract::{Path, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::access::{audit, Audit, Purpose};
use super::error::{ApiError, ApiResult};
use super::extract::{text, ApiJson, ApiQuery, ClientAddr, Principal};
use super::AppState;
use crate::alerts::gauges;
use crate::alerts::view::{AlertEventView, AlertView};
use crate::metrics::PgOp;
use crate::store::alerts::{self as store, ListFilter, StepRefused};

pub const DEFAULT_LIMIT: i64 = 100;
pub const MAX_LIMIT: i64 = 1000;
/// Longest note on a step.
const MAX_NOTE: usize = 4000;

pub const KINDS: [&str; 9] = [
    "exclusion_zone_entered",
    "inclusion_zone_left",
    "curfew_violation",
    "exclusion_zone_crossed",
    "location_jump",
    "no_location",
    "strap_tamper",
    "low_battery",
    "lost_contact",
];
const STATUSES: [&str; 3] = ["open", "acknowledged", "resolved"];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertQuery {
    pub status: Option<String>,
    pub supervisee_id: Option<String>,
    pub kind: Option<String>,
    /// The `next` cursor of the previous page (alerts come newest first).
    pub after: Option<String>,
    pub limit: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct AlertList {
    pub alerts: Vec<AlertView>,
    /// Pass as `after` for the next page; null on the last page.
    pub next: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct AlertDetail {
    #[serde(flatten)]
    pub alert: AlertView,
    /// Every step of its life, oldest first.
    pub events: Vec<AlertEventView>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StepRequest {
    /// Required to resolve a critical alert.
    pub note: Option<String>,
}

fn bad_query(message: String) -> ApiError {
    ApiError::BadRequest {
        code: "invalid_query",
        message,
    }
}

fn parse_alert_id(raw: &str) -> Result<i64, ApiError> {
    raw.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or(ApiError::NotFound)
}

pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    from: ClientAddr,
    ApiQuery(q): ApiQuery<AlertQuery>,
) -> ApiResult<Json<AlertList>> {
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(bad_query(format!(
            "limit must be between 1 and {MAX_LIMIT}"
        )));
    }
    if let Some(status) = q.status.as_deref().filter(|s| !STATUSES.contains(s)) {
        return Err(bad_query(format!(
            "status {status:?}: expected one of {}",
            STATUSES.join(", ")
        )));
    }
    if let Some(kind) = q.kind.as_deref().filter(|k| !KINDS.contains(k)) {
        return Err(bad_query(format!(
            "kind {kind:?}: expected one of {}",
            KINDS.join(", ")
        )));
    }
    let supervisee_id = q
        .supervisee_id
        .as_deref()
        .map(|s| {
            s.parse::<Uuid>()
                .map_err(|_| bad_query("supervisee_id: not an id".into()))
        })
        .transpose()?;
    let before_id = q
        .after
        .as_deref()
        .map(|a| {
            a.parse::<i64>()
                .map_err(|_| bad_query("after: not a cursor returned by this API".into()))
        })
        .transpose()?;
    let rows = store::list(
        &state.db,
        &ListFilter {
            officer: principal.caseload_filter(Purpose::Location),
            status: q.status.as_deref(),
            supervisee_id,
            kind: q.kind.as_deref(),
            before_id,
            limit: limit + 1,
        },
    )
    .await?;
    let (rows, next) = super::paginate(rows, limit, |a| a.id.to_string());
    audit(
        &state,
        Some(&principal),
        &from,
        Audit {
            action: "alerts.list",
            target_type: "alert",
            target_id: None,
            supervisee_id,
            detail: serde_json::json!({
                "status": q.status, "kind": q.kind, "after": q.after, "returned": rows.len(),
                "alert_ids": rows.iter().map(|a| a.id).collect::<Vec<_>>(),
            }),
        },
    )
    .await?;
    Ok(Json(AlertList {
        alerts: rows.iter().map(AlertView::from).collect(),
        next,
    }))
}

pub async fn get(
    State(state): State<AppState>,
    principal: Principal,
    from: ClientAddr,
    Path(id): Path<String>,
) -> ApiResult<Json<AlertDetail>> {
    let id = parse_alert_id(&id)?;
    let alert = store::get(&state.db, id)
        .await?
        .filter(|a| principal.may_see(a.officer_id, Purpose::Location))
        .ok_or(ApiError::NotFound)?;
    let events = store::events_of(&state.db, id).await?;
    audit_alert(&state, &principal, &from, "alert.read", &alert, None).await?;
    Ok(Json(AlertDetail {
        alert: AlertView::from(&alert),
        events: events.iter().map(AlertEventView::from).collect(),
    }))
}

async fn audit_alert(
    state: &AppState,
    principal: &Principal,
    from: &ClientAddr,
    action: &'static str,
    alert: &store::Alert,
    note: Option<&str>,
) -> ApiResult<()> {
    audit(
        state,
        Some(principal),
        from,
        Audit {
            action,
            target_type: "alert",
            target_id: Some(alert.id.to_string()),
            supervisee_id: Some(alert.supervisee_id),
            detail: serde_json::json!({ "kind": alert.kind, "note": note }),
        },
    )
    .await
}

pub async fn acknowledge(
    state: State<AppState>,
    principal: Principal,
    from: ClientAddr,
    id: Path<String>,
    body: ApiJson<StepRequest>,
) -> ApiResult<Json<AlertView>> {
    step(state, principal, from, id, body, false).await
}

pub async fn resolve(
    state: State<AppState>,
    principal: Principal,
    from: ClientAddr,
    id: Path<String>,
    body: ApiJson<StepRequest>,
) -> ApiResult<Json<AlertView>> {
    step(state, principal, from, id, body, true).await
}

async fn step(
    State(state): State<AppState>,
    principal: Principal,
    from: ClientAddr,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<StepRequest>,
    resolve: bool,
) -> ApiResult<Json<AlertView>> {
    let id = parse_alert_id(&id)?;
    let note = body
        .note
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(|n| text("note", n, MAX_NOTE, "invalid_note"))
        .transpose()?;
    let attempt = store::step(
        &state.db,
        store::Step {
            alert_id: id,
            officer: principal.officer_id,
            resolve,
            note,
            now: state.clock.now(),
        },
        |alert| principal.may_see(alert.officer_id, Purpose::Location),
        |alert| resolve && alert.severity == "critical",
    );
    let outcome = state
        .metrics
        .store_calls
        .postgres(PgOp::AlertStep)
        .time(attempt)
        .await?;
    let (alert, change) = match outcome {
        Ok(done) => done,
        Err(StepRefused::NoteRequired) => {
            return Err(ApiError::invalid(
                "note_required",
                "resolving a critical alert needs a note saying what was done",
            ))
        }
        Err(StepRefused::NotFound) => return Err(ApiError::NotFound),
        Err(StepRefused::WrongStatus) => {
            return Err(ApiError::Conflict(if resolve {
                "the alert is already resolved".into()
            } else {
                "the alert is already acknowledged or resolved".into()
            }))
        }
    };
    let action = if resolve {
        "alert.resolve"
    } else {
        "alert.acknowledge"
    };
    audit_alert(&state, &principal, &from, action, &alert, note).await?;
    gauges::observe_step(&state.metrics, &alert, change.action);
    state.alerts.record_changes(std::slice::from_ref(&change));
    state.alerts.announce(&[change]).await;
    Ok(Json(AlertView::from(&alert)))
}
