//! The run plan: who the simulated supervisees are, which zones, orders and leave they are
//! given, which scenario each carries, what their tags do, and which alerts all that must cause.
//!
//! Pure and deterministic: [`build`] is a function of [`Settings`] (seed included) and the run's
//! start time; it reads no clock and does no I/O, and it never panics: invalid settings are a
//! [`PlanError`]. Provisioning turns the plan into records through the API; the device loops run
//! the [`DevicePlan`]s on the schedule of [`tick_time`]; the ledger gets [`Plan::expectations`]
//! once the ids are known, and the run watches the feeds until [`Plan::settle_until`].
//!
//! # Time of day
//! Devices stamp reports with the real time, so the run happens at whatever hour it is started.
//! To make every run see the same part of the supervisees' day, the movement model's UTC offset
//! is chosen so that local time at `start` is exactly [`Settings::local_start_s`] (default 07:30,
//! the morning commute). geoward needs an IANA zone: every supervisee gets `Etc/GMT∓N` (POSIX
//! signs: `Etc/GMT-8` is UTC+8) with that offset rounded *up* to a whole hour, so geoward's local
//! time at start lies in `[local_start, local_start + 1 h)`. Every home zone carries the curfew
//! `22:00–06:00` every day; a run whose span (up to `end + lag + 2 s + 2 min`, the latest
//! [`Plan::settle_until`]) would reach 21:00 or still be before 06:00 in geoward's local time is
//! refused (with the default 07:30 that allows the longest run, 12 h), so no curfew is ever in
//! force except the one-hour window the break-curfew scenario gives its supervisee's home.
//!
//! # Layout
//! | module | role |
//! |---|---|
//! | `settings` | [`Settings`] (defaults, validation, wire form) and [`PlanError`] |
//! | `clock` | the tick schedule ([`tick_time`]), the time-of-day mapping, weekly schedules |
//! | `zones` | zone shapes (the county's 64-gon, circles), signed distances, placements |
//! | `people` | drawing each supervisee, compliant or with a scenario, with retries |
//! | `scenarios` | scenario kinds, which fit the run, the device-side scenarios |
//! | `journeys` | the movement scenarios: victim's home, out of the county, curfew, border |
//! | `pace` | when scenarios happen: around the middle, or spread through the run (a demo) |
//! | `pass` | crossing a school between two sparse fixes |
//! | `check` | the plan's own validation ([`check`]), run at the end of [`build`] |
//!
//! # Timing
//! Device `i` ticks at [`tick_time`]`(settings, start, i, k)` for every `k` whose tick is before
//! [`Plan::end`]. The device loop may build a report up to [`Settings::lag`] after its tick (and
//! stamps and positions it then); geoward receives it within [`NETWORK_S`] of that. Every window
//! allows for both; see `scenarios` for how each scenario is timed.
//!
//! # Invariants (checked by [`check`], tested)
//! - a compliant person's true track, sampled at every tick of the run (and `lag` later), stays
//!   at least [`MARGIN_M`] beyond the largest accuracy of an honest fix from every exclusion zone
//!   they are given, and as far inside their inclusion zones in force; the straight segments
//!   between consecutive fixes keep [`MARGIN_M`] from every exclusion zone; so nothing may be
//!   raised for them;
//! - a scenario person's track breaks exactly the rule their scenario names, once, and keeps
//!   every other rule with the same margins; only the scenario's own zone, during its episode,
//!   is exempt (and the jurisdiction during approved leave, where the destination applies);
//! - each scenario's expectation window contains every `event_at` geoward may rightly give the
//!   alert, including confirmation fixes and up to [`Settings::lag`] of lateness of the device
//!   loop; nobody but the silent supervisee can lose contact before [`Plan::settle_until`].

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::ledger::{Expectation, Person as LedgerPerson, Scenario, Window};
use crate::movement::Person;
use crate::script::DevicePlan;

mod check;
mod clock;
mod journeys;
mod pace;
mod pass;
mod people;
mod scenarios;
mod settings;
mod zones;

pub use check::check;
pub use clock::tick_time;
pub use scenarios::Kind;
use settings::check_start;
pub use settings::{PlanError, Settings};

/// Extra clearance, beyond the fix's accuracy, that a track keeps from every border it must not
/// cross.
pub const MARGIN_M: f64 = 100.0;
/// The largest accuracy of an honest non-cell fix (Wi-Fi indoors; GPS outdoors is at most 15 m).
pub const ACC_MAX_M: f64 = 40.0;
/// The largest GPS accuracy (outdoors, so on every scenario excursion).
pub const GPS_ACC_MAX_M: f64 = 15.0;
/// The largest cell-tower accuracy.
pub const CELL_ACC_MAX_M: f64 = 1500.0;
/// Radius of the circle the jurisdiction's 64-gon is inscribed in.
pub const JURISDICTION_RADIUS_M: f64 = 20_000.0;
/// Vertices of the jurisdiction polygon.
pub const JURISDICTION_VERTICES: usize = 64;
/// Schools are drawn uniformly within this distance of the area's centre.
pub const SCHOOL_SPREAD_M: f64 = 15_000.0;
pub const SCHOOL_RADIUS_M: f64 = 100.0;
pub const HOME_RADIUS_M: f64 = 150.0;
pub const VICTIM_RADIUS_M: f64 = 200.0;
/// Longest run accepted.
pub const MAX_DURATION_S: i64 = 12 * 3600;
/// How long after the device loop builds a report geoward may record receiving it, beyond
/// [`Settings::lag`] (network and queueing).
pub const NETWORK_S: i64 = 1;
/// How long after its deadline a lost contact may take to reach a feed (sweep every second,
/// store, feed hub).
pub const SWEEP_S: i64 = 3;
/// How far past `end + lag + 2 s` the silent supervisee's lost contact may make the run wait.
pub const SETTLE_ALLOWANCE_S: i64 = 120;
/// geoward's `eval.crossing_max_gap` (default 3 min): pass-through is checked only between
/// fixes at most this far apart.
pub const CROSSING_MAX_GAP_S: i64 = 180;

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
    /// The destination of a person's approved leave (the plan gives it inline in
    /// [`LeaveSpec::destination`], not as a zone of its own).
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
    /// When `zone` may be approached closer than the planner's margins (the scenario's own
    /// episode): the validation exempts `zone`, and only it, during this span.
    pub episode: Option<Window>,
}

impl PlannedScenario {
    pub fn compliant() -> PlannedScenario {
        PlannedScenario {
            scenario: Scenario::Compliant,
            zone: None,
            episode: None,
        }
    }

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
    /// The seed their day was drawn from (`Person::generate`), for reproducing one person.
    pub seed: u64,
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
    /// The run's start, to the millisecond (what [`build`] was given, truncated).
    pub start: DateTime<Utc>,
    /// The movement model's UTC offset for this run, seconds east of UTC (local time at
    /// `start` is [`Settings::local_start_s`]).
    pub local_offset_s: i32,
    /// The IANA zone every supervisee is given (`Etc/GMT∓N`).
    pub timezone: String,
    /// Every zone to draw: the jurisdiction, the schools, and the personal zones.
    pub zones: Vec<ZoneSpec>,
    pub people: Vec<PersonPlan>,
    /// Monitoring orders for everyone: `[start, start + 30 d)`. Supervision begins with the run:
    /// geoward gives everyone under an order a lost-contact deadline, so an order that began
    /// during provisioning would count the wait for the start as silence.
    pub order_starts: DateTime<Utc>,
    pub order_ends: DateTime<Utc>,
    /// Scenario kinds that do not fit this run (too short for their thresholds, or no place
    /// found for the first person they were dealt to), by name, each once. Every person dealt
    /// a skipped kind stays compliant; a kind placed on anyone is never skipped.
    pub skipped: Vec<String>,
    /// By then every expected alert has reached its officer's feed: the latest window end, plus
    /// the lost-contact grace and sweep for lost contact, and at least `end + lag + 2 s`.
    pub settle_until: DateTime<Utc>,
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

    /// When the last device stops reporting: devices tick while [`tick_time`] is before this.
    pub fn end(&self) -> DateTime<Utc> {
        self.start + self.settings.duration
    }

    /// The scenario kind of each person, by index.
    pub fn kind_of(&self, index: usize) -> Option<Kind> {
        self.people
            .get(index)
            .map(|p| Kind::of(&p.scenario.scenario))
    }
}

/// Builds the plan of a run starting at `start` (truncated to the millisecond).
pub fn build(settings: &Settings, start: DateTime<Utc>) -> Result<Plan, PlanError> {
    settings.validate()?;
    check_start(start)?;
    let plan = people::build(settings, clock::floor_ms(start))?;
    check(&plan).map_err(PlanError::CheckFailed)?;
    Ok(plan)
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
