//! The public JSON of an alert and of its events: the same shape in the HTTP API and on the
//! officers' feed. Field names are a public contract.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::store::alerts::{Alert, AlertEvent};

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AlertPosition {
    pub lat: f64,
    pub lon: f64,
    /// Accuracy radius, metres.
    pub acc: f64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AlertView {
    /// Opaque id (a decimal string).
    pub id: String,
    pub supervisee_id: Uuid,
    /// The officer whose caseload holds the supervisee now.
    pub officer_id: Uuid,
    /// `exclusion_zone_entered`, `inclusion_zone_left`, `curfew_violation`,
    /// `exclusion_zone_crossed`, `location_jump`, `no_location`, `strap_tamper`,
    /// `low_battery` or `lost_contact`.
    pub kind: String,
    /// `critical`, `serious` or `info`.
    pub severity: String,
    /// `open`, `acknowledged` or `resolved`.
    pub status: String,
    pub zone_id: Option<Uuid>,
    /// Device time of the report that decided it (lost contact: when contact was lost).
    pub event_at: DateTime<Utc>,
    pub opened_at: DateTime<Utc>,
    /// When the condition ended (null while it goes on).
    pub cleared_at: Option<DateTime<Utc>>,
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub acknowledged_by: Option<Uuid>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub resolved_by: Option<Uuid>,
    /// When it was escalated to supervisors for want of an acknowledgement.
    pub escalated_at: Option<DateTime<Utc>>,
    /// Decided by a report uploaded late (buffered by the device).
    pub late: bool,
    pub position: Option<AlertPosition>,
    pub device_id: Option<Uuid>,
    /// Sequence number of the deciding report.
    pub seq: Option<i64>,
}

impl From<&Alert> for AlertView {
    fn from(a: &Alert) -> AlertView {
        let position = match (a.lat, a.lon, a.acc) {
            (Some(lat), Some(lon), Some(acc)) => Some(AlertPosition {
                lat,
                lon,
                acc: f64::from(acc),
            }),
            _ => None,
        };
        AlertView {
            id: a.id.to_string(),
            supervisee_id: a.supervisee_id,
            officer_id: a.officer_id,
            kind: a.kind.clone(),
            severity: a.severity.clone(),
            status: a.status.clone(),
            zone_id: a.zone_id,
            event_at: a.event_at,
            opened_at: a.opened_at,
            cleared_at: a.cleared_at,
            acknowledged_at: a.acknowledged_at,
            acknowledged_by: a.acknowledged_by,
            resolved_at: a.resolved_at,
            resolved_by: a.resolved_by,
            escalated_at: a.escalated_at,
            late: a.late,
            position,
            device_id: a.device_id,
            seq: a.seq,
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AlertEventView {
    /// The feed cursor of this change.
    pub cursor: String,
    /// `opened`, `cleared`, `acknowledged`, `resolved`, `escalated` or `repeated`.
    pub action: String,
    pub at: DateTime<Utc>,
    /// The officer who acted (null for the system).
    pub officer_id: Option<Uuid>,
    pub note: Option<String>,
}

impl From<&AlertEvent> for AlertEventView {
    fn from(e: &AlertEvent) -> AlertEventView {
        AlertEventView {
            cursor: e.id.to_string(),
            action: e.action.clone(),
            at: e.at,
            officer_id: e.officer_id,
            note: e.note.clone(),
        }
    }
}

/// The feed frame for one change: `{"type":"alert","cursor","change","alert"}`.
pub fn feed_frame(cursor: i64, change: &str, alert: &Alert) -> String {
    serde_json::json!({
        "type": "alert",
        "cursor": cursor.to_string(),
        "change": change,
        "alert": AlertView::from(alert),
    })
    .to_string()
}
