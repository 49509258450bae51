//! The engine's inputs and outputs: what a supervisee's rules are, what arrives, what comes
//! out, and the small state carried from one evaluation to the next.
//!
//! Invariants: [`EvalState`] is plain data (serde, `Default` is "never seen anything"), holds
//! per-zone entries only for zones that are not at rest, and stays a few hundred bytes for a
//! typical person; [`RuleEvent`] spellings (`as_str`, serde) are stable API.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::zone::{PreparedZone, ZoneLayer};
use crate::domain::supervision::Period;
use crate::wire::Strap;

/// Everything about one supervisee, borrowed.
#[derive(Debug, Clone, Copy)]
pub struct Rules<'a> {
    /// The supervisee's time zone: schedules are read in it.
    pub timezone: chrono_tz::Tz,
    /// Personal zones.
    pub zones: &'a [Arc<PreparedZone>],
    /// The shared layer attached to this person, if any (it holds exactly their shared zones).
    pub shared: Option<&'a ZoneLayer>,
    /// Monitoring orders: nothing is evaluated outside all of them.
    pub orders: &'a [Period],
    /// Approved, not cancelled leave.
    pub leaves: &'a [Leave],
    pub settings: &'a Settings,
}

/// Approved leave: inclusion zones are suspended during `period`; `destination`, when given,
/// is enforced as an inclusion zone (schedule ignored) for that window.
#[derive(Debug, Clone)]
pub struct Leave {
    pub period: Period,
    pub destination: Option<Arc<PreparedZone>>,
}

/// Tunables, per person or agency.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// A fix implying a faster speed (beyond both accuracies) is a `location_jump`.
    pub max_speed_kmh: f64,
    /// A run of uncertain fixes this long raises `no_location`.
    pub no_location_after: Duration,
    /// `low_battery` starts below this percentage.
    pub low_battery_pct: u8,
    /// `low_battery` clears at `low_battery_pct + battery_hysteresis_pct` or more.
    pub battery_hysteresis_pct: u8,
    /// Confirming fixes for zones prepared without their own value (callers use it when
    /// preparing zones; the engine reads each zone's own `confirm_fixes`).
    pub default_confirm_fixes: u32,
    /// An event is marked `late` when its report was received more than this after its
    /// device time (a buffered upload).
    pub late_after: Duration,
    /// Pass-through is checked only between fixes at most this far apart; over longer gaps
    /// the straight line says little about the path.
    pub crossing_max_gap: Duration,
    /// [`super::evaluate_tick`] raises a curfew violation from the last known position only
    /// when no fix has arrived this long after the window opened.
    pub curfew_tick_after: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            max_speed_kmh: 300.0,
            no_location_after: Duration::minutes(10),
            low_battery_pct: 20,
            battery_hysteresis_pct: 5,
            default_confirm_fixes: 2,
            late_after: Duration::minutes(2),
            crossing_max_gap: Duration::minutes(3),
            curfew_tick_after: Duration::minutes(2),
        }
    }
}

/// One report from the device, already parsed at the edge.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    Fix {
        seq: u64,
        ts: DateTime<Utc>,
        lat: f64,
        lon: f64,
        acc_m: f64,
        bat: Option<u8>,
        strap: Option<Strap>,
    },
    Status {
        seq: u64,
        ts: DateTime<Utc>,
        bat: Option<u8>,
        strap: Option<Strap>,
    },
}

impl Input {
    pub fn seq(&self) -> u64 {
        match self {
            Input::Fix { seq, .. } | Input::Status { seq, .. } => *seq,
        }
    }
    pub fn ts(&self) -> DateTime<Utc> {
        match self {
            Input::Fix { ts, .. } | Input::Status { ts, .. } => *ts,
        }
    }
    pub(crate) fn device(&self) -> (Option<u8>, Option<Strap>) {
        match self {
            Input::Fix { bat, strap, .. } | Input::Status { bat, strap, .. } => (*bat, *strap),
        }
    }
}

/// The kinds of rule events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    InclusionZoneLeft,
    ExclusionZoneEntered,
    CurfewViolation,
    ExclusionZoneCrossed,
    LocationJump,
    NoLocation,
    StrapTamper,
    LowBattery,
}

impl EventKind {
    pub const ALL: [EventKind; 8] = [
        EventKind::InclusionZoneLeft,
        EventKind::ExclusionZoneEntered,
        EventKind::CurfewViolation,
        EventKind::ExclusionZoneCrossed,
        EventKind::LocationJump,
        EventKind::NoLocation,
        EventKind::StrapTamper,
        EventKind::LowBattery,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::InclusionZoneLeft => "inclusion_zone_left",
            EventKind::ExclusionZoneEntered => "exclusion_zone_entered",
            EventKind::CurfewViolation => "curfew_violation",
            EventKind::ExclusionZoneCrossed => "exclusion_zone_crossed",
            EventKind::LocationJump => "location_jump",
            EventKind::NoLocation => "no_location",
            EventKind::StrapTamper => "strap_tamper",
            EventKind::LowBattery => "low_battery",
        }
    }

    /// Instantaneous kinds are emitted as `started` only; the alert layer closes them at once.
    pub fn is_instantaneous(self) -> bool {
        matches!(
            self,
            EventKind::ExclusionZoneCrossed | EventKind::LocationJump
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transition {
    Started,
    Cleared,
}

/// The fix position an event refers to.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct EventPosition {
    pub lat: f64,
    pub lon: f64,
    pub acc: f64,
}

/// One rule event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleEvent {
    pub kind: EventKind,
    pub transition: Transition,
    pub zone_id: Option<Uuid>,
    /// The report that decided it (`None` when a tick decided it without one).
    pub seq: Option<u64>,
    /// Device time of the report that decided it; for a curfew decided by the position held
    /// over a window's opening, the opening; for a tick without a report, the tick's time.
    pub at: DateTime<Utc>,
    pub position: Option<EventPosition>,
    /// Decided by a report received more than `late_after` after its device time.
    pub late: bool,
}

/// What one evaluation produced.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub state: EvalState,
    pub events: Vec<RuleEvent>,
}

/// A fix remembered in the state.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct KnownFix {
    pub seq: u64,
    pub ts: DateTime<Utc>,
    pub lat: f64,
    pub lon: f64,
    /// Accuracy radius, metres.
    pub acc: f32,
}

impl KnownFix {
    pub(crate) fn position(&self) -> EventPosition {
        EventPosition {
            lat: self.lat,
            lon: self.lon,
            acc: f64::from(self.acc),
        }
    }
}

/// One zone that is not at rest: violating, or part-way through a confirming streak.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ZoneState {
    pub id: Uuid,
    /// The violation is open.
    #[serde(rename = "v")]
    pub violating: bool,
    /// Consecutive confirming fixes towards the other state.
    #[serde(rename = "n")]
    pub streak: u32,
    /// The kind of the violation (kept so `cleared` pairs with `started` even if the zone
    /// changes or disappears).
    #[serde(rename = "k")]
    pub kind: EventKind,
    /// For scheduled zones, the opening of the window this entry belongs to.
    #[serde(rename = "w", default, skip_serializing_if = "Option::is_none")]
    pub window: Option<DateTime<Utc>>,
}

/// The per-supervisee state between evaluations. `Default` means nothing seen yet.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EvalState {
    /// Newest evaluated report `(seq, ts)`: anything not newer is late and changes nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub newest: Option<(u64, DateTime<Utc>)>,
    /// Newest accepted (not jumping) fix: the reference for speed, paths and curfew openings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last: Option<KnownFix>,
    /// A fix rejected as a jump; a following fix consistent with it is accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jumped: Option<KnownFix>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub zones: Vec<ZoneState>,
    /// Device time of the first fix of the current run of uncertain fixes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uncertain_since: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub no_location: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub strap_open: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub low_battery: bool,
}
