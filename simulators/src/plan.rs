//! The run plan: who the simulated supervisees are, which zones, orders and leave they are
//! given, which scenario each carries, what their tags do, and which alerts all that must cause.
//!
//! Pure and deterministic: [`build`] is a function of [`Settings`] (seed included) and the run's
//! start time. Provisioning turns the plan into records through the API; the device loops run
//! the [`DevicePlan`]s; the ledger gets [`Plan::expectations`] once the ids are known.
//!
//! # Invariants (tested)
//! - a compliant person's true track, sampled at every fix time of the run, stays at least
//!   [`MARGIN_M`] beyond the accuracy of any fix from every exclusion zone they are given, and as
//!   far inside their inclusion zones in force; so nothing may be raised for them;
//! - a scenario person's track breaks exactly the rule their scenario names, once, and keeps
//!   every other rule with the same margin;
//! - each scenario's expectation window covers every moment geoward may rightly decide the
//!   alert at, including the confirmation fixes and [`Settings::lag`] of sending lag.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::ledger::{Expectation, Person as LedgerPerson, Scenario, Window};
use crate::movement::{Area, Person};
use crate::script::DevicePlan;

/// Extra clearance, beyond the fix's accuracy, that a track keeps from every border it must not
/// cross.
pub const MARGIN_M: f64 = 100.0;

/// What the planner needs to know about the run and the server it runs against. Server
/// thresholds must match the server's configuration (`[alerts]`, `[supervision]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    pub seed: u64,
    pub devices: usize,
    /// Caseloads (officers); supervisees are dealt round-robin. At least 1.
    pub officers: usize,
    /// Shared school zones in the agency's layer.
    pub schools: usize,
    /// Time between a device's fixes.
    #[serde(with = "secs")]
    pub interval: Duration,
    /// How long devices report.
    #[serde(with = "secs")]
    pub duration: Duration,
    /// Share of devices given a scenario, in `[0, 1]`. Every scenario kind gets at least one
    /// device when `share > 0` and there are enough devices (see [`build`]).
    pub scenario_share: f64,
    /// Where and in which time zone supervisees live.
    #[serde(skip, default)]
    pub area: Area,
    /// Local time of day at the run's start (seconds after midnight) in the supervisees' day:
    /// every run, whatever the hour, sees the same part of their day (default 07:30, the morning
    /// commute).
    pub local_start_s: u32,
    /// Fixes needed to confirm a zone violation (`confirm_fixes` given to every zone).
    pub confirm_fixes: u32,
    /// Allowed silence of ordinary supervisees (`lost_contact_after_s`).
    pub lost_contact_after_s: u32,
    /// Allowed silence given to the supervisee who goes silent (at least the server's minimum).
    pub silent_lost_contact_after_s: u32,
    /// Server: `alerts.lost_contact_grace`.
    #[serde(with = "secs")]
    pub lost_contact_grace: Duration,
    /// Server: `alerts.late_after`.
    #[serde(with = "secs")]
    pub late_after: Duration,
    /// Server: `alerts.no_location_after`.
    #[serde(with = "secs")]
    pub no_location_after: Duration,
    /// Server: `alerts.low_battery_pct`.
    pub low_battery_pct: u8,
    /// Sending lag tolerated in expectation windows (a loaded simulator sends late).
    #[serde(with = "secs")]
    pub lag: Duration,
}

/// A zone of the plan, before the server gives it an id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ZoneRef {
    /// The county: the one inclusion zone everyone is attached to.
    Jurisdiction,
    /// A school of the shared exclusion layer.
    School(usize),
    /// A person's home (inclusion, with a curfew schedule).
    Home(usize),
    /// A person's personal exclusion zone (a victim's home).
    Victim(usize),
    /// The destination of a person's approved leave.
    LeaveDestination(usize),
}

/// A zone as `POST /v1/zones` takes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ZoneSpec {
    pub zone: ZoneRef,
    pub name: String,
    /// `"inclusion"` or `"exclusion"`.
    pub kind: String,
    /// GeoJSON geometry (or geoward's `Circle`), WGS-84.
    pub geometry: Value,
    /// Weekly windows (`docs/rules.md` §3), `None` for always in force.
    pub schedule: Option<Value>,
    pub confirm_fixes: u32,
    /// Shared zones are drawn by the supervisor and belong to the agency's layer.
    pub shared: bool,
}

/// Approved leave, as `POST /v1/supervisees/{id}/leaves` takes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeaveSpec {
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    /// The destination zone's geometry (GeoJSON), if any.
    pub destination: Option<Value>,
    pub reason: String,
}

/// A scenario before ids are known: the ledger's [`Scenario`] with its zone as a [`ZoneRef`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedScenario {
    /// The ledger scenario with `Uuid::nil()` where a zone id goes.
    pub scenario: Scenario,
    pub zone: Option<ZoneRef>,
}

impl PlannedScenario {
    /// The ledger scenario with the zone's real id filled in.
    pub fn resolve(&self, zone_id: impl Fn(ZoneRef) -> Uuid) -> Scenario {
        let id = self.zone.map(zone_id).unwrap_or_default();
        let mut s = self.scenario.clone();
        match &mut s {
            Scenario::Compliant
            | Scenario::GoSilent { .. }
            | Scenario::StrapTamper { .. }
            | Scenario::LowBattery { .. }
            | Scenario::LocationJump { .. } => {}
            Scenario::EnterExclusionZone { zone_id, .. }
            | Scenario::LeaveJurisdiction { zone_id, .. }
            | Scenario::BreakCurfew { zone_id, .. }
            | Scenario::PassThroughSchoolZone { zone_id, .. }
            | Scenario::OfflineThenBufferedUpload { zone_id, .. }
            | Scenario::BorderJitter { zone_id, .. } => *zone_id = id,
            Scenario::ApprovedLeave {
                destination_zone_id,
                ..
            } => *destination_zone_id = self.zone.map(|_| id),
        }
        s
    }
}

/// One simulated supervisee and their tag.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PersonPlan {
    pub index: usize,
    /// Caseload index, `0..settings.officers`.
    pub officer: usize,
    /// Their day, with the scenario's overrides already added.
    pub person: Person,
    /// The IANA time zone given to geoward (a whole-hour `Etc/GMT±N` zone near the area's day
    /// shift, see [`Settings::local_start_s`]).
    pub timezone: String,
    pub lost_contact_after_s: u32,
    /// Zones attached to this person: their home, personal exclusions, the jurisdiction, and
    /// `School(_)` refs when they are barred from schools (the whole shared layer).
    pub zones: Vec<ZoneRef>,
    pub leave: Option<LeaveSpec>,
    pub scenario: PlannedScenario,
    pub device: DevicePlan,
}

/// Everything a run provisions and drives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub settings: Settings,
    pub start: DateTime<Utc>,
    /// Every zone to draw: the jurisdiction, the schools, and the personal zones.
    pub zones: Vec<ZoneSpec>,
    pub people: Vec<PersonPlan>,
    /// Monitoring orders for everyone: `[start - 1 h, start + 30 d)`.
    pub order_starts: DateTime<Utc>,
    pub order_ends: DateTime<Utc>,
    /// Scenario kinds that did not fit the run (too short for their thresholds), by name.
    pub skipped: Vec<String>,
}

impl Plan {
    /// The ledger of the run, once provisioning knows the ids.
    pub fn expectations(
        &self,
        supervisee_id: impl Fn(usize) -> Uuid,
        officer_id: impl Fn(usize) -> Uuid,
        zone_id: impl Fn(ZoneRef) -> Uuid,
    ) -> Vec<Expectation> {
        self.people
            .iter()
            .flat_map(|p| {
                let who = LedgerPerson {
                    supervisee_id: supervisee_id(p.index),
                    officer_id: officer_id(p.officer),
                };
                p.scenario.resolve(&zone_id).expected(&who)
            })
            .collect()
    }

    /// When the last device stops reporting.
    pub fn end(&self) -> DateTime<Utc> {
        self.start + self.settings.duration
    }
}

/// Builds the plan of a run starting at `start`.
pub fn build(settings: &Settings, start: DateTime<Utc>) -> Plan {
    let _ = (settings, start, Window::new(start, start));
    todo!("issue 6: the planner")
}

/// Serde for `chrono::Duration` as (fractional) seconds.
mod secs {
    use chrono::Duration;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.num_milliseconds() as f64 / 1000.0)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = f64::deserialize(d)?;
        Ok(Duration::milliseconds((s * 1000.0).round() as i64))
    }
}
