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

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::clock::{add_ms, etc_offset_h, floor_ms, ms, schedule_intervals, DayClock, Ticks};
use super::pass::PASS_KMH;
use super::scenarios::Kind;
use super::zones::{route_segments, Shape};
use super::{
    PersonPlan, Plan, Settings, ZoneRef, ZoneSpec, ACC_MAX_M, CELL_ACC_MAX_M, GPS_ACC_MAX_M,
    MARGIN_M, NETWORK_S, SWEEP_S,
};
use crate::geo::LatLon;
use crate::ledger::{Scenario, Window};
use crate::script::{Action, DeviceScript};

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

/// A zone ready for checking.
#[derive(Debug, Clone)]
struct Zone {
    shape: Shape,
    exclusion: bool,
    schedule: Option<Value>,
}

impl Zone {
    fn of(spec: &ZoneSpec) -> Result<Zone, String> {
        let shape = Shape::from_geometry(&spec.geometry)
            .ok_or_else(|| format!("zone {:?}: unreadable geometry", spec.zone))?;
        let exclusion = match spec.kind.as_str() {
            "exclusion" => true,
            "inclusion" => false,
            k => return Err(format!("zone {:?}: kind {k:?}", spec.zone)),
        };
        Ok(Zone {
            shape,
            exclusion,
            schedule: spec.schedule.clone(),
        })
    }
}

/// Half-open intervals, in milliseconds.
type Spans = Vec<(i64, i64)>;

fn contains(spans: &Spans, t: i64) -> bool {
    spans.iter().any(|(a, b)| *a <= t && t < *b)
}

fn minus(spans: &Spans, cut: (i64, i64)) -> Spans {
    let mut out = Vec::new();
    for &(a, b) in spans {
        if cut.1 <= a || b <= cut.0 {
            out.push((a, b));
            continue;
        }
        if a < cut.0 {
            out.push((a, cut.0));
        }
        if cut.1 < b {
            out.push((cut.1, b));
        }
    }
    out
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

    /// The track and tag of `p` against their zones (`personal`: their home and victim's home).
    pub fn person(&self, p: &PersonPlan, personal: &[ZoneSpec]) -> Vec<String> {
        let kind = Kind::of(&p.scenario.scenario);
        let who = format!("supervisee {} ({})", p.index, kind.name());
        let mut errs = Vec::new();
        if p.officer >= self.s.officers {
            errs.push(format!("{who}: officer {} out of range", p.officer));
        }
        let Some(offset_h) = etc_offset_h(&p.timezone) else {
            errs.push(format!(
                "{who}: time zone {:?} is not Etc/GMT±N",
                p.timezone
            ));
            return errs;
        };
        self.device(p, kind, &who, &mut errs);

        let ticks = Ticks::of(&self.s, self.start, p.index);
        let (i, lag) = (ticks.interval_ms(), self.s.lag.num_milliseconds().max(0));
        let span_to = ms(self.end) + lag;
        let quiet: Spans = p
            .device
            .quiet
            .iter()
            .map(|w| (ms(w.from), ms(w.to)))
            .collect();
        // Longest time between two fixes that may both be sent.
        let gap = i + lag + quiet.iter().map(|(a, b)| b - a + i).max().unwrap_or(0);
        let excursions = p.person.excursions();
        // A little faster than the fastest leg (passes run at 40 km/h), for rounding.
        let v = if excursions.is_empty() {
            p.person.mode().speed_mps()
        } else {
            p.person.mode().speed_mps().max(PASS_KMH / 3.6)
        } * 1.01
            + 0.1;
        let route = route_segments(&p.person);
        let legs: Vec<(LatLon, LatLon)> = excursions
            .iter()
            .flat_map(|e| {
                [
                    (e.depart_from, e.arrive_at),
                    (e.arrive_at, e.leave_from),
                    (e.leave_from, e.rejoin_at),
                ]
            })
            .collect();
        let exc_spans: Spans = excursions
            .iter()
            .map(|e| (ms(e.depart) - gap, ms(e.rejoin) + gap + 1))
            .collect();
        let near_thr = 1.6 * GPS_ACC_MAX_M + 1.0 + v * lag as f64 / 1000.0;
        let drift = v * gap as f64 / 1000.0;
        let cells = p.person.poor_fix_share() > 0.0;

        // Every zone in force at some time of the run, with its spans in force.
        let mut zones: Vec<(ZoneRef, Zone, Spans)> = Vec::new();
        let leave = p.leave.as_ref().map(|l| (ms(l.starts_at), ms(l.ends_at)));
        for r in &p.zones {
            let zone = match personal.iter().find(|z| z.zone == *r) {
                Some(spec) => Zone::of(spec),
                None => self
                    .shared
                    .get(r)
                    .cloned()
                    .ok_or_else(|| format!("zone {r:?} not drawn")),
            };
            let zone = match zone {
                Ok(z) => z,
                Err(e) => {
                    errs.push(format!("{who}: {e}"));
                    continue;
                }
            };
            let mut spans: Spans = if zone.schedule.is_none() {
                vec![(ms(self.start), span_to + 1)]
            } else {
                let to = super::clock::from_ms(span_to);
                match schedule_intervals(zone.schedule.as_ref(), offset_h, self.start, to) {
                    Ok(v) => v.into_iter().map(|(a, b)| (ms(a), ms(b))).collect(),
                    Err(e) => {
                        errs.push(format!("{who}: zone {r:?}: {e}"));
                        continue;
                    }
                }
            };
            if let (false, Some(cut)) = (zone.exclusion, leave) {
                spans = minus(&spans, cut);
            }
            zones.push((*r, zone, spans));
        }
        if let Some(l) = &p.leave {
            match l.destination.as_ref().and_then(Shape::from_geometry) {
                Some(shape) => zones.push((
                    ZoneRef::LeaveDestination(p.index),
                    Zone {
                        shape,
                        exclusion: false,
                        schedule: None,
                    },
                    vec![(ms(l.starts_at), ms(l.ends_at))],
                )),
                None if l.destination.is_some() => {
                    errs.push(format!("{who}: unreadable leave destination"));
                }
                None => {}
            }
        }

        // The fast path: a zone every piece of the track keeps clear of, by the requirement,
        // the uncertainty band and the drift between two fixes, needs no sampling.
        let mut sampled = Vec::new();
        for (r, zone, spans) in zones {
            if spans.is_empty() {
                continue;
            }
            let exempt = if p.scenario.zone == Some(r) {
                p.scenario.episode.map(|w| (ms(w.from), ms(w.to) + 1))
            } else {
                None
            };
            let need = if zone.exclusion {
                ACC_MAX_M + MARGIN_M
            } else if cells && r == ZoneRef::Jurisdiction {
                CELL_ACC_MAX_M + MARGIN_M
            } else {
                ACC_MAX_M + MARGIN_M
            };
            let static_need = need.max(near_thr) + drift;
            let far = |segs: &[(LatLon, LatLon)]| {
                segs.iter().all(|(a, b)| {
                    if zone.exclusion {
                        zone.shape.segment_clearance(*a, *b) >= static_need
                    } else {
                        [a, b].iter().all(|q| {
                            zone.shape.bounds(**q).1 <= -static_need
                                || zone.shape.signed_distance(**q) <= -static_need
                        })
                    }
                })
            };
            let route_far = far(&route);
            if !(route_far && far(&legs)) {
                sampled.push((r, zone, spans, exempt, need, route_far));
            }
        }
        let no_loc = self.s.no_location_after.num_milliseconds();
        let share = p.person.poor_fix_share();
        let m = ((no_loc - lag).max(0) + i - 1) / i + 1;
        let risk = ticks.count() as f64 * share.powi(m.min(i64::from(i32::MAX)) as i32);
        let simulate_cells = cells && risk > 1e-9;
        if sampled.is_empty() && !simulate_cells {
            return errs;
        }

        // The fixes geoward may evaluate: every tick before silence, not surely quiet.
        let silent = p.device.silent_from.map(ms);
        let jump_k = p.device.jump_at.and_then(|t| ticks.first_at_or_after(t));
        let evaluated: Vec<(u64, i64)> = (0..ticks.count())
            .map(|k| (k, ticks.at_ms(k)))
            .filter(|&(_, t)| {
                silent.map_or(true, |s| t < s)
                    && !quiet.iter().any(|(a, b)| *a <= t && t + lag <= *b)
            })
            .collect();
        let offs: Vec<i64> = if lag == 0 {
            vec![0]
        } else {
            vec![0, lag / 2, lag]
        };
        let mut cache: Vec<Option<Vec<LatLon>>> = vec![None; evaluated.len()];
        let mut pos = |idx: usize| -> Vec<LatLon> {
            cache[idx]
                .get_or_insert_with(|| {
                    offs.iter()
                        .map(|o| {
                            let t = super::clock::from_ms(evaluated[idx].1 + o);
                            p.person.position_at(t).point()
                        })
                        .collect()
                })
                .clone()
        };
        let mut near = vec![false; evaluated.len()];

        for (r, zone, spans, exempt, need, route_far) in &sampled {
            // Samples far from every requirement need no successor for a while: the true
            // position moves at most `v` m/s; a segment between fixes strays at most half its
            // length from its ends.
            let req = need.max(MARGIN_M + drift / 2.0);
            let in_force = |t: i64| t <= span_to && contains(spans, t);
            let exempt_at = |t: i64| exempt.is_some_and(|(a, b)| a <= t && t < b);
            // The next time requirements may tighten: the exemption ends, a span opens.
            let tightens = |t: i64| {
                let mut b = exempt.map_or(i64::MAX, |(_, e)| if t < e { e } else { i64::MAX });
                for (a, _) in spans.iter() {
                    if *a > t {
                        b = b.min(*a);
                    }
                }
                b
            };
            let mut resume = i64::MIN;
            for idx in 0..evaluated.len() {
                let t_k = evaluated[idx].1;
                if (*route_far && !contains(&exc_spans, t_k)) || t_k + lag < resume {
                    continue;
                }
                let mut slack = f64::INFINITY;
                let mut failed = false;
                if offs.iter().any(|o| in_force(t_k + o)) {
                    let here = pos(idx);
                    for (o, q) in offs.iter().zip(&here) {
                        let t = t_k + o;
                        if !in_force(t) {
                            continue;
                        }
                        let (lo, hi) = zone.shape.bounds(*q);
                        let decided =
                            hi - lo < 1e-9 || lo > near_thr + req || hi < -(near_thr + req);
                        let (lo, hi) = if decided && lo.is_finite() {
                            (lo, hi)
                        } else {
                            let d = zone.shape.signed_distance(*q);
                            (d, d)
                        };
                        let abs_lo = if lo > 0.0 {
                            lo
                        } else if hi < 0.0 {
                            -hi
                        } else {
                            0.0
                        };
                        if abs_lo <= near_thr {
                            near[idx] = true;
                        }
                        if exempt_at(t) {
                            slack = slack.min(abs_lo - near_thr);
                            continue;
                        }
                        let good = if zone.exclusion { lo } else { -hi };
                        slack = slack.min((abs_lo - near_thr).min(good - req));
                        if good < *need {
                            failed = true;
                            errs.push(format!(
                                "{who}: at {} within {need} m of the border of {r:?} ({:.1} m)",
                                super::clock::from_ms(t),
                                zone.shape.signed_distance(*q)
                            ));
                            break;
                        }
                    }
                    let chord = !failed && zone.exclusion && idx > 0 && in_force(t_k);
                    let t_prev = if idx > 0 { evaluated[idx - 1].1 } else { t_k };
                    if chord && !exempt.is_some_and(|(a, b)| a < t_k + lag + 1 && t_prev < b) {
                        let prev = pos(idx - 1);
                        let ends = [
                            (prev[0], here[0]),
                            (prev[prev.len() - 1], here[here.len() - 1]),
                        ];
                        for (a, b) in ends {
                            let c = zone.shape.segment_clearance(a, b);
                            if c < MARGIN_M {
                                failed = true;
                                errs.push(format!(
                                    "{who}: the path between fixes at {} and {} passes {c:.1} m from {r:?}",
                                    super::clock::from_ms(t_prev),
                                    super::clock::from_ms(t_k)
                                ));
                                break;
                            }
                        }
                    }
                }
                if failed {
                    break;
                }
                let ahead = if slack > 0.0 {
                    (slack / v * 1000.0).min(1e15) as i64
                } else {
                    0
                };
                resume = t_k.saturating_add(ahead).min(tightens(t_k));
            }
        }

        // Cell fixes, from the tag's own noise, when a long run of them is not negligible.
        let mut cell = vec![false; evaluated.len()];
        if simulate_cells {
            let mut script = DeviceScript::new(p.person.clone(), p.device.clone());
            let at: HashMap<i64, usize> = evaluated
                .iter()
                .enumerate()
                .map(|(idx, (_, t))| (*t, idx))
                .collect();
            for k in 0..ticks.count() {
                let t = ticks.at(k);
                for a in script.tick(t) {
                    if let Action::Send(r) | Action::Buffer(r) = a {
                        let is_cell = r
                            .position
                            .is_some_and(|q| q.src == crate::movement::FixSource::Cell);
                        if let (true, Some(idx)) = (is_cell, at.get(&ms(t))) {
                            cell[*idx] = true;
                        }
                    }
                }
            }
        }
        // No run of possibly uncertain fixes lasts long enough for no_location.
        let mut since: Option<i64> = None;
        for (idx, (k, t)) in evaluated.iter().enumerate() {
            if Some(*k) == jump_k {
                continue;
            }
            if near[idx] || cell[idx] {
                let first = *since.get_or_insert(*t);
                if t + lag - first >= no_loc {
                    errs.push(format!(
                        "{who}: fixes may be uncertain from {} to {}, long enough for no_location",
                        super::clock::from_ms(first),
                        super::clock::from_ms(*t)
                    ));
                    break;
                }
            } else {
                since = None;
            }
        }
        errs
    }

    /// The tag carries exactly its scenario's events.
    fn device(&self, p: &PersonPlan, kind: Kind, who: &str, errs: &mut Vec<String>) {
        let d = &p.device;
        let low = self.s.low_battery_pct;
        let mut bad = |what: &str| errs.push(format!("{who}: {what}"));
        if kind == Kind::LowBattery {
            if d.battery_start_pct < low.saturating_add(10)
                || d.battery_drop_at.is_none()
                || d.battery_low_pct >= low
            {
                bad("battery does not start at low + 10 and fall below low");
            }
        } else if d.battery_start_pct < low
            || (d.battery_drop_at.is_some() && d.battery_low_pct < low)
        {
            bad("battery below the low-battery threshold");
        }
        if d.battery_start_pct > 100 {
            bad("battery above 100%");
        }
        let pairs = [
            (d.strap_open_at.is_some(), Kind::StrapTamper, "strap"),
            (d.jump_at.is_some(), Kind::LocationJump, "jump"),
            (d.silent_from.is_some(), Kind::GoSilent, "silence"),
            (
                d.offline.is_some(),
                Kind::OfflineThenBufferedUpload,
                "offline window",
            ),
            (p.leave.is_some(), Kind::ApprovedLeave, "leave"),
        ];
        for (has, k, what) in pairs {
            if has != (kind == k) {
                bad(&format!("{what} does not match the scenario"));
            }
        }
        if !d.quiet.is_empty() && kind != Kind::PassThroughSchoolZone {
            bad("quiet windows without a pass");
        }
        if let Some(z) = p.scenario.zone {
            if !p.zones.contains(&z) {
                bad("the scenario's zone is not attached");
            }
        }
        let barred = p.zones.iter().any(|z| matches!(z, ZoneRef::School(_)));
        if barred && !matches!(kind, Kind::Compliant | Kind::PassThroughSchoolZone) {
            bad("barred from schools with a scenario");
        }
    }

    /// Gaps in what geoward receives stay under the lost-contact threshold until
    /// `settle_until` (the silent person: until they fall silent).
    pub fn contact(&self, p: &PersonPlan, settle_until: DateTime<Utc>) -> Vec<String> {
        let ticks = Ticks::of(&self.s, self.start, p.index);
        let lag = self.s.lag.num_milliseconds().max(0);
        let net = NETWORK_S * 1000;
        let allowed = i64::from(p.lost_contact_after_s) * 1000
            + self.s.lost_contact_grace.num_milliseconds()
            - 1000;
        let overlaps = |w: &Window, t: i64| ms(w.from) <= t + lag && t <= ms(w.to);
        let mut last: Option<i64> = None;
        let mut errs = Vec::new();
        let who = format!("supervisee {}", p.index);
        let mut first_hi = None;
        for k in 0..ticks.count() {
            let t = ticks.at_ms(k);
            if p.device.silent_from.is_some_and(|s| t + lag >= ms(s)) {
                break;
            }
            if p.device.quiet.iter().any(|w| overlaps(w, t))
                || p.device.offline.as_ref().is_some_and(|w| overlaps(w, t))
            {
                continue;
            }
            let hi = t + lag + net;
            first_hi.get_or_insert(hi);
            if let Some(lo) = last {
                if hi - lo >= allowed {
                    errs.push(format!(
                        "{who}: nothing received between {} and {}: lost contact",
                        super::clock::from_ms(lo),
                        super::clock::from_ms(hi)
                    ));
                    return errs;
                }
            }
            last = Some(t);
        }
        if first_hi.is_some_and(|hi| hi - ms(self.start) >= allowed) {
            errs.push(format!(
                "{who}: first report too late for the lost-contact threshold"
            ));
        }
        match (last, p.device.silent_from) {
            (None, _) => errs.push(format!("{who}: never reports")),
            (Some(lo), None) if ms(settle_until) - lo >= allowed => errs.push(format!(
                "{who}: loses contact at {} before the run settles",
                add_ms(super::clock::from_ms(lo), allowed)
            )),
            _ => {}
        }
        errs
    }
}
