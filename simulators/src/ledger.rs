//! The ledger: which alerts each injected scenario must cause, and the verdict when they are
//! compared with what officers' feeds actually delivered.
//!
//! Pure: no I/O, no clock (every time is an argument), deterministic for a given input order.
//!
//! # Invariants
//! - Every scenario maps to a fixed list of [`Expectation`]s; `Compliant`, `ApprovedLeave` and
//!   `BorderJitter` map to none. Nothing outside that list is tolerated unless an expectation
//!   says so with [`Count::AtMost`] (no scenario does today; see [`Scenario::expected`]).
//! - An alert is identified by its `id`: the same alert seen on several feeds (its officer's and a
//!   supervisor's) or twice on one feed (a replay after reconnecting) counts once.
//! - An alert matches an expectation when supervisee, kind, zone, `late` (when the expectation
//!   fixes it) agree and `event_at` lies in the expectation's window (both ends included).
//! - A delivery to a feed that is neither the supervisee's officer nor a supervisor is
//!   `wrong_officer` and never satisfies an expectation.
//! - Each distinct alert lands in exactly one place: matched, `unexpected`, or (past an
//!   expectation's count) `duplicated`.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The alert kinds geoward raises (`docs/alerts.md`), by their wire names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    ExclusionZoneEntered,
    InclusionZoneLeft,
    CurfewViolation,
    ExclusionZoneCrossed,
    LocationJump,
    NoLocation,
    StrapTamper,
    LowBattery,
    LostContact,
}

impl AlertKind {
    /// The `kind` string on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::ExclusionZoneEntered => "exclusion_zone_entered",
            AlertKind::InclusionZoneLeft => "inclusion_zone_left",
            AlertKind::CurfewViolation => "curfew_violation",
            AlertKind::ExclusionZoneCrossed => "exclusion_zone_crossed",
            AlertKind::LocationJump => "location_jump",
            AlertKind::NoLocation => "no_location",
            AlertKind::StrapTamper => "strap_tamper",
            AlertKind::LowBattery => "low_battery",
            AlertKind::LostContact => "lost_contact",
        }
    }
}

/// A closed interval of time, `[from, to]`. Empty (contains nothing) when `from > to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

impl Window {
    pub fn new(from: DateTime<Utc>, to: DateTime<Utc>) -> Window {
        Window { from, to }
    }

    pub fn contains(&self, at: DateTime<Utc>) -> bool {
        self.from <= at && at <= self.to
    }
}

/// A supervisee and the officer whose caseload holds them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Person {
    pub supervisee_id: Uuid,
    pub officer_id: Uuid,
}

/// What is injected on one supervisee. Each `window` is the span of *device time* in which the
/// alert's `event_at` must fall; the scenario builder sets it from the path it plans, wide
/// enough for confirmation fixes (e.g. `[first fix inside, + (confirm_fixes + 1) × interval]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "scenario", rename_all = "snake_case")]
pub enum Scenario {
    /// No scenario: an ordinary day that must raise nothing.
    Compliant,
    /// Walks into a personal exclusion zone (a victim's home) and stays for several fixes.
    EnterExclusionZone { zone_id: Uuid, window: Window },
    /// Leaves the jurisdiction (an unscheduled inclusion zone) without leave.
    LeaveJurisdiction { zone_id: Uuid, window: Window },
    /// Is outside the home zone (a scheduled inclusion zone) while its curfew window is open.
    BreakCurfew { zone_id: Uuid, window: Window },
    /// Passes through a school zone between two sparse fixes, neither of them inside it (a fix
    /// inside would make it an entry, or nothing at all: see `docs/rules.md` §4).
    PassThroughSchoolZone { zone_id: Uuid, window: Window },
    /// The device stops reporting. `window` must hold `last report + lost_contact_after_s`.
    GoSilent { window: Window },
    /// The device reports its strap open.
    StrapTamper { window: Window },
    /// The battery falls below `alerts.low_battery_pct`.
    LowBattery { window: Window },
    /// One outlier fix no person could reach; the next fix agrees with the earlier ones.
    LocationJump { window: Window },
    /// Offline (buffering) for `window`, shorter than the lost-contact threshold; enters the
    /// exclusion zone `zone_id` during it, then uploads the buffer.
    OfflineThenBufferedUpload { zone_id: Uuid, window: Window },
    /// Travels out of the jurisdiction during approved leave (`window`); the destination zone,
    /// if any, must contain the whole route.
    ApprovedLeave {
        destination_zone_id: Option<Uuid>,
        window: Window,
    },
    /// Lingers at the border of `zone_id` with honest, straddling accuracy circles, for less
    /// than `alerts.no_location_after`.
    BorderJitter { zone_id: Uuid, window: Window },
}

impl Scenario {
    /// A stable snake_case name, for reports.
    pub fn name(&self) -> &'static str {
        match self {
            Scenario::Compliant => "compliant",
            Scenario::EnterExclusionZone { .. } => "enter_exclusion_zone",
            Scenario::LeaveJurisdiction { .. } => "leave_jurisdiction",
            Scenario::BreakCurfew { .. } => "break_curfew",
            Scenario::PassThroughSchoolZone { .. } => "pass_through_school_zone",
            Scenario::GoSilent { .. } => "go_silent",
            Scenario::StrapTamper { .. } => "strap_tamper",
            Scenario::LowBattery { .. } => "low_battery",
            Scenario::LocationJump { .. } => "location_jump",
            Scenario::OfflineThenBufferedUpload { .. } => "offline_then_buffered_upload",
            Scenario::ApprovedLeave { .. } => "approved_leave",
            Scenario::BorderJitter { .. } => "border_jitter",
        }
    }

    /// The alerts `who` must receive because of this scenario: exactly one per violating
    /// scenario, none for the three that must cause nothing.
    ///
    /// `late` is fixed only where it is the point (the buffered upload: `true`). Real-time
    /// scenarios leave it open, because the simulator itself may lag sending under load, and a
    /// fix geoward receives more than `late_after` after its device time is rightly late.
    ///
    /// No side effects are tolerated. The candidates, and why each is excluded by construction
    /// rather than allowed: `no_location` for border jitter (the jitter lasts less than
    /// `no_location_after`); `lost_contact` for the buffered upload (the gap is shorter than
    /// the threshold); `no_location` for going silent (it needs reports without a fix, silence
    /// has none); zone alerts for a location jump (a jumping fix changes no zone state);
    /// `inclusion_zone_left` on approved leave (the destination covers the route). A builder
    /// that cannot guarantee one of these may add a [`Count::AtMost`] expectation for it.
    pub fn expected(&self, who: &Person) -> Vec<Expectation> {
        use AlertKind as K;
        let (kind, zone_id, late, window) = match *self {
            Scenario::Compliant
            | Scenario::ApprovedLeave { .. }
            | Scenario::BorderJitter { .. } => return Vec::new(),
            Scenario::EnterExclusionZone { zone_id, window } => {
                (K::ExclusionZoneEntered, Some(zone_id), None, window)
            }
            Scenario::LeaveJurisdiction { zone_id, window } => {
                (K::InclusionZoneLeft, Some(zone_id), None, window)
            }
            Scenario::BreakCurfew { zone_id, window } => {
                (K::CurfewViolation, Some(zone_id), None, window)
            }
            Scenario::PassThroughSchoolZone { zone_id, window } => {
                (K::ExclusionZoneCrossed, Some(zone_id), None, window)
            }
            Scenario::GoSilent { window } => (K::LostContact, None, None, window),
            Scenario::StrapTamper { window } => (K::StrapTamper, None, None, window),
            Scenario::LowBattery { window } => (K::LowBattery, None, None, window),
            Scenario::LocationJump { window } => (K::LocationJump, None, None, window),
            Scenario::OfflineThenBufferedUpload { zone_id, window } => {
                (K::ExclusionZoneEntered, Some(zone_id), Some(true), window)
            }
        };
        vec![Expectation {
            supervisee_id: who.supervisee_id,
            officer_id: who.officer_id,
            kind,
            zone_id,
            late,
            window,
            count: Count::Exactly(1),
        }]
    }
}

/// How many distinct alerts an expectation wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Count {
    /// Exactly n: fewer is missing, more is duplicated.
    Exactly(u32),
    /// A tolerated side effect: up to n is fine (none too), more is duplicated.
    AtMost(u32),
}

/// One line of the ledger: an alert that must (or may) be raised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Expectation {
    pub supervisee_id: Uuid,
    /// The officer whose feed must carry it (supervisors' feeds carry it too).
    pub officer_id: Uuid,
    pub kind: AlertKind,
    pub zone_id: Option<Uuid>,
    /// `None`: either.
    pub late: Option<bool>,
    /// `event_at` must fall in it.
    pub window: Window,
    pub count: Count,
}

impl Expectation {
    /// Whether `r` is an alert this line asks for (ignoring who received it).
    pub fn matches(&self, r: &Received) -> bool {
        r.supervisee_id == self.supervisee_id
            && r.kind == self.kind.as_str()
            && r.zone_id == self.zone_id
            && self.late.map_or(true, |late| late == r.late)
            && self.window.contains(r.event_at)
    }

    fn wanted(&self) -> u32 {
        match self.count {
            Count::Exactly(n) => n,
            Count::AtMost(_) => 0,
        }
    }

    fn allowed(&self) -> u32 {
        match self.count {
            Count::Exactly(n) | Count::AtMost(n) => n,
        }
    }
}

/// The feed a frame arrived on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Feed {
    pub officer_id: Uuid,
    /// Supervisors receive every change; their feed is never the wrong officer.
    pub supervisor: bool,
}

/// An `opened` alert as one feed received it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Received {
    /// The alert's id (opaque string).
    pub alert_id: String,
    pub cursor: String,
    pub supervisee_id: Uuid,
    /// The officer geoward says holds the supervisee.
    pub officer_id: Uuid,
    /// The wire name; unknown kinds are kept (and will be unexpected).
    pub kind: String,
    pub zone_id: Option<Uuid>,
    pub event_at: DateTime<Utc>,
    pub late: bool,
    pub feed: Feed,
    /// When the simulator read the frame (for latency).
    pub received_at: DateTime<Utc>,
}

impl Received {
    /// Parses an officer-feed frame. `None` for anything but a well-formed
    /// `{"type":"alert","change":"opened",…}` frame (cleared, acknowledged, ready, positions…).
    pub fn from_feed_frame(
        frame: &serde_json::Value,
        feed: Feed,
        received_at: DateTime<Utc>,
    ) -> Option<Received> {
        if frame.get("type")?.as_str()? != "alert" || frame.get("change")?.as_str()? != "opened" {
            return None;
        }
        let alert = frame.get("alert")?;
        let field = |name: &str| alert.get(name);
        let uuid = |name: &str| field(name)?.as_str()?.parse::<Uuid>().ok();
        let zone_id = match field("zone_id") {
            None | Some(serde_json::Value::Null) => None,
            Some(_) => Some(uuid("zone_id")?),
        };
        Some(Received {
            alert_id: field("id")?.as_str()?.to_owned(),
            cursor: frame.get("cursor")?.as_str()?.to_owned(),
            supervisee_id: uuid("supervisee_id")?,
            officer_id: uuid("officer_id")?,
            kind: field("kind")?.as_str()?.to_owned(),
            zone_id,
            event_at: DateTime::parse_from_rfc3339(field("event_at")?.as_str()?)
                .ok()?
                .with_timezone(&Utc),
            late: field("late")?.as_bool()?,
            feed,
            received_at,
        })
    }
}

/// The counts of the run report (field names from the report JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Summary {
    /// Alerts that must arrive (sum of `Exactly` counts).
    pub alerts_expected: usize,
    /// Distinct alerts received on any feed.
    pub alerts_received: usize,
    /// Alerts owed but not received (an `Exactly(2)` with one received is one missing).
    pub alerts_missing: usize,
    pub alerts_unexpected: usize,
    /// Alerts beyond what their expectation allows.
    pub alerts_duplicated: usize,
    /// Deliveries to a feed that must not have them.
    pub alerts_wrong_officer: usize,
}

/// What went wrong. Empty everywhere means the run passed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Verdict {
    /// Expectations not (fully) satisfied.
    pub missing: Vec<Expectation>,
    /// Alerts no expectation asks for (first delivery of each).
    pub unexpected: Vec<Received>,
    /// Expectations with more alerts than they allow, with all of those alerts.
    pub duplicated: Vec<(Expectation, Vec<Received>)>,
    /// Deliveries to a feed that is neither the supervisee's officer's nor a supervisor's.
    pub wrong_officer: Vec<Received>,
    summary: Summary,
}

impl Verdict {
    pub fn passed(&self) -> bool {
        self.missing.is_empty()
            && self.unexpected.is_empty()
            && self.duplicated.is_empty()
            && self.wrong_officer.is_empty()
    }

    pub fn summary(&self) -> Summary {
        self.summary
    }
}

/// Compares the ledger with every `opened` delivery of the run.
///
/// `received` must hold only alerts of this run's supervisees (a supervisor's feed also carries
/// other people's); any alert of someone without an expectation is unexpected. The supervisee's
/// officer is the one in their expectations, else the alert's `officer_id`.
pub fn verify(expected: &[Expectation], received: &[Received]) -> Verdict {
    let mut owner: HashMap<Uuid, Uuid> = HashMap::new();
    for e in expected {
        owner.entry(e.supervisee_id).or_insert(e.officer_id);
    }

    let mut verdict = Verdict::default();
    let mut all_ids: HashSet<&str> = HashSet::new();
    let mut wrong_seen: HashSet<(&str, Uuid)> = HashSet::new();
    // Distinct alerts on legitimate feeds, first delivery kept, in order of first appearance.
    let mut index: HashMap<&str, usize> = HashMap::new();
    let mut alerts: Vec<&Received> = Vec::new();
    for r in received {
        all_ids.insert(&r.alert_id);
        let officer = owner.get(&r.supervisee_id).copied().unwrap_or(r.officer_id);
        if !r.feed.supervisor && r.feed.officer_id != officer {
            if wrong_seen.insert((&r.alert_id, r.feed.officer_id)) {
                verdict.wrong_officer.push(r.clone());
            }
            continue;
        }
        match index.get(r.alert_id.as_str()) {
            Some(&i) if alerts[i].received_at <= r.received_at => {}
            Some(&i) => alerts[i] = r,
            None => {
                index.insert(&r.alert_id, alerts.len());
                alerts.push(r);
            }
        }
    }

    // Each alert goes to the first matching expectation with room, else the first matching one.
    let mut assigned: Vec<Vec<&Received>> = vec![Vec::new(); expected.len()];
    for r in alerts {
        let mut candidates = expected.iter().enumerate().filter(|(_, e)| e.matches(r));
        let Some((first, _)) = candidates.clone().next() else {
            verdict.unexpected.push(r.clone());
            continue;
        };
        let slot = candidates
            .find(|(i, e)| (assigned[*i].len() as u64) < u64::from(e.allowed()))
            .map_or(first, |(i, _)| i);
        assigned[slot].push(r);
    }

    let mut summary = Summary {
        alerts_received: all_ids.len(),
        alerts_unexpected: verdict.unexpected.len(),
        alerts_wrong_officer: verdict.wrong_officer.len(),
        ..Summary::default()
    };
    for (e, got) in expected.iter().zip(assigned) {
        let (wanted, allowed, n) = (e.wanted() as usize, e.allowed() as usize, got.len());
        summary.alerts_expected += wanted;
        if n < wanted {
            summary.alerts_missing += wanted - n;
            verdict.missing.push(e.clone());
        }
        if n > allowed {
            summary.alerts_duplicated += n - allowed;
            verdict
                .duplicated
                .push((e.clone(), got.into_iter().cloned().collect()));
        }
    }
    verdict.summary = summary;
    verdict
}

#[cfg(test)]
#[path = "ledger_tests.rs"]
mod tests;
