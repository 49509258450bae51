//! The plan's own validation: every person's true track against every zone they are given, the
//! gaps in what geoward receives from them, and the consistency of the plan as a whole.
//!
//! What is checked, per person (a list of problems comes back; empty means sound):
//! - at every tick `t_k` of the run and at `t_k + lag / 2`, `t_k + lag` (the device loop may
//!   build a report that late), for every attached zone in force then (schedules in geoward's
//!   local time; inclusion zones suspended during approved leave, the destination in force
//!   then): outside exclusion zones by at least [`ACC_MAX_M`] + [`MARGIN_M`], inside inclusion
//!   zones by as much, or by [`CELL_ACC_MAX_M`] + [`MARGIN_M`] inside the jurisdiction for a
//!   person with cell fixes; the straight segments between consecutive fixes keep [`MARGIN_M`]
//!   from every exclusion zone. The scenario's own zone is exempt during its episode;
//! - no run of possibly uncertain fixes (within 1.6 × 15 m + lag drift of a border in force, or
//!   a cell fix) lasts `no_location_after`; cell fixes are simulated with the device's own noise
//!   seed whenever such a run is not astronomically unlikely (below 1e-9 per person);
//! - no gap between receptions (nor from the last one to `settle_until`) reaches the person's
//!   `lost_contact_after_s` + grace, except the silent person's final silence;
//! - the tag's plan carries exactly the scenario's device events.
//!
//! A fast path skips sampling a zone when every straight piece of the track (route legs and
//! excursion legs) keeps the required distance plus the drift of one interval and lag, which
//! bounds every sample and every segment between fixes.
//!
//! # Layout
//! | module | role |
//! |---|---|
//! | `zone` | a zone ready for checking, and the half-open spans it is in force |
//! | `track` | [`Checker::person`]: the track against every zone, and uncertain fixes |
//! | `tag` | the tag's events against the scenario, and gaps in what geoward receives |
//!
//! [`ACC_MAX_M`]: super::ACC_MAX_M
//! [`CELL_ACC_MAX_M`]: super::CELL_ACC_MAX_M
//! [`MARGIN_M`]: super::MARGIN_M

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::clock::{floor_ms, DayClock};
use super::{Plan, Settings, ZoneRef, ZoneSpec, SWEEP_S};
use crate::ledger::{Scenario, Window};

mod tag;
mod track;
mod zone;

use zone::Zone;

/// Validates a plan; every problem found, or `Ok`.
pub fn check(plan: &Plan) -> Result<(), Vec<String>> {
    let mut errs = Vec::new();
    let s = &plan.settings;
    if let Err(e) = s.validate().and_then(|_| super::check_start(plan.start)) {
        return Err(vec![e.to_string()]);
    }
    let start = plan.start;
    if floor_ms(start) != start {
        errs.push("start is not a whole millisecond".into());
    }
    let end = plan.end();
    let clock = DayClock::new(s.local_start_s, start);
    if plan.timezone != clock.timezone || plan.local_offset_s != clock.movement_offset_s {
        errs.push(format!(
            "time zone {} does not match the start",
            plan.timezone
        ));
    }
    if plan.order_starts != start || plan.order_ends != start + chrono::Duration::days(30) {
        errs.push("monitoring orders are not [start, start + 30 d)".into());
    }
    if plan.settle_until < end + s.lag + chrono::Duration::seconds(2) {
        errs.push("settle_until is before end + lag + 2 s".into());
    }
    let mut by_ref: HashMap<ZoneRef, &ZoneSpec> = HashMap::new();
    for z in &plan.zones {
        if by_ref.insert(z.zone, z).is_some() {
            errs.push(format!("zone {:?} drawn twice", z.zone));
        }
    }
    let shared: Vec<ZoneSpec> = plan.zones.iter().filter(|z| z.shared).cloned().collect();
    let checker = Checker::new(s, start, &shared)?;
    if plan.people.len() != s.devices {
        errs.push(format!(
            "{} people for {} devices",
            plan.people.len(),
            s.devices
        ));
    }
    for (i, p) in plan.people.iter().enumerate() {
        if p.index != i || p.timezone != plan.timezone {
            errs.push(format!("supervisee {i}: index or time zone inconsistent"));
        }
        let personal: Vec<ZoneSpec> = [ZoneRef::Home(i), ZoneRef::Victim(i)]
            .iter()
            .filter_map(|r| by_ref.get(r).map(|z| (*z).clone()))
            .collect();
        if personal.len() != 2 {
            errs.push(format!("supervisee {i}: home or victim's home not drawn"));
        }
        errs.extend(checker.person(p, &personal));
        errs.extend(checker.contact(p, plan.settle_until));
        if let Some(w) = window_of(&p.scenario.scenario) {
            // Approved leave expects nothing: its window is the leave's period.
            let leave = matches!(p.scenario.scenario, Scenario::ApprovedLeave { .. });
            if w.from > w.to || (!leave && (w.from < start || w.to > plan.settle_until)) {
                errs.push(format!("supervisee {i}: window {w:?} outside the run"));
            }
            if let Scenario::GoSilent { window } = p.scenario.scenario {
                let arrives = window.to + s.lost_contact_grace + chrono::Duration::seconds(SWEEP_S);
                if arrives > plan.settle_until {
                    errs.push(format!(
                        "supervisee {i}: lost contact may arrive after settle_until"
                    ));
                }
            }
        }
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(errs)
    }
}

/// The expectation window of a scenario, if it has one.
pub(crate) fn window_of(s: &Scenario) -> Option<Window> {
    match *s {
        Scenario::Compliant => None,
        Scenario::EnterExclusionZone { window, .. }
        | Scenario::LeaveJurisdiction { window, .. }
        | Scenario::BreakCurfew { window, .. }
        | Scenario::PassThroughSchoolZone { window, .. }
        | Scenario::GoSilent { window }
        | Scenario::StrapTamper { window }
        | Scenario::LowBattery { window }
        | Scenario::LocationJump { window }
        | Scenario::OfflineThenBufferedUpload { window, .. }
        | Scenario::ApprovedLeave { window, .. }
        | Scenario::BorderJitter { window, .. } => Some(window),
    }
}

/// The per-person checks, with the shared zones parsed once.
pub(crate) struct Checker {
    s: Settings,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    shared: HashMap<ZoneRef, Zone>,
}

impl Checker {
    pub fn new(
        s: &Settings,
        start: DateTime<Utc>,
        shared: &[ZoneSpec],
    ) -> Result<Checker, Vec<String>> {
        let mut map = HashMap::new();
        for spec in shared {
            map.insert(spec.zone, Zone::of(spec).map_err(|e| vec![e])?);
        }
        Ok(Checker {
            s: s.clone(),
            start,
            end: start + s.duration,
            shared: map,
        })
    }
}
