//! Unit tests of the zone rules: confirmation, uncertainty, no_location, curfews, pass-through,
//! jumps and the shared layer. Time is always explicit.

use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use chrono_tz::Asia::Shanghai;
use serde_json::json;
use uuid::Uuid;

use super::tests_classify::{area, at, circle, square};
use super::*;
use crate::domain::schedule::Schedule;
use crate::domain::supervision::Period;
use crate::domain::zone_geometry::ZoneGeometry;
use crate::wire::Strap;

pub(super) fn id(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

/// 2026-03-02 (a Monday) at `h`:`m` in Shanghai, plus `day` days.
pub(super) fn local(day: i64, h: u32, m: u32) -> DateTime<Utc> {
    let t = Shanghai
        .with_ymd_and_hms(2026, 3, 2, h, m, 0)
        .single()
        .expect("a valid local time");
    t.with_timezone(&Utc) + Duration::days(day)
}

pub(super) fn zone(
    n: u128,
    kind: ZoneKind,
    g: &ZoneGeometry,
    sched: Schedule,
    confirm: u32,
) -> Arc<PreparedZone> {
    Arc::new(PreparedZone::prepare(id(n), kind, g, sched, 0.0, confirm))
}

pub(super) fn curfew() -> Schedule {
    let all = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
    Schedule::parse(&json!([{"days": all, "start": "22:00", "end": "06:00"}])).unwrap()
}

/// Everything about one test supervisee.
pub(super) struct World {
    pub zones: Vec<Arc<PreparedZone>>,
    pub layer: Option<ZoneLayer>,
    pub orders: Vec<Period>,
    pub leaves: Vec<Leave>,
    pub settings: Settings,
    pub state: EvalState,
    pub tz: chrono_tz::Tz,
}

impl World {
    pub fn new(zones: Vec<Arc<PreparedZone>>) -> World {
        World {
            zones,
            layer: None,
            orders: vec![Period {
                starts_at: local(-30, 0, 0),
                ends_at: local(60, 0, 0),
            }],
            leaves: vec![],
            settings: Settings::default(),
            state: EvalState::default(),
            tz: Shanghai,
        }
    }
    pub fn rules(&self) -> Rules<'_> {
        Rules {
            timezone: self.tz,
            zones: &self.zones,
            shared: self.layer.as_ref(),
            orders: &self.orders,
            leaves: &self.leaves,
            settings: &self.settings,
        }
    }
    /// Evaluates `input` received at `received`, keeping the new state.
    pub fn feed_at(&mut self, input: Input, received: DateTime<Utc>) -> Vec<RuleEvent> {
        let out = evaluate(&self.rules(), &self.state, &input, received);
        self.state = out.state;
        out.events
    }
    /// A fix `east`/`north` metres from the reference, received on time.
    pub fn fix(
        &mut self,
        seq: u64,
        ts: DateTime<Utc>,
        east: f64,
        north: f64,
        acc: f64,
    ) -> Vec<RuleEvent> {
        self.feed_at(fix(seq, ts, east, north, acc), ts)
    }
    pub fn tick(&mut self, now: DateTime<Utc>) -> Vec<RuleEvent> {
        let out = evaluate_tick(&self.rules(), &self.state, now);
        self.state = out.state;
        out.events
    }
}

pub(super) fn fix(seq: u64, ts: DateTime<Utc>, east: f64, north: f64, acc: f64) -> Input {
    let (lon, lat) = at(east, north);
    Input::Fix {
        seq,
        ts,
        lat,
        lon,
        acc_m: acc,
        bat: None,
        strap: None,
    }
}

/// `(kind, transition, zone)` of each event, for terse assertions.
pub(super) fn brief(ev: &[RuleEvent]) -> Vec<(EventKind, Transition, Option<Uuid>)> {
    ev.iter()
        .map(|e| (e.kind, e.transition, e.zone_id))
        .collect()
}

use EventKind::*;
use Transition::*;

fn school(confirm: u32) -> World {
    World::new(vec![zone(
        7,
        ZoneKind::Exclusion,
        &circle(0.0, 0.0, 100.0),
        Schedule::default(),
        confirm,
    )])
}

#[test]
fn a_violation_starts_after_two_confirming_fixes_by_default() {
    let mut w = school(2);
    let t = local(0, 10, 0);
    assert!(w.fix(1, t, 500.0, 0.0, 10.0).is_empty());
    assert!(w
        .fix(2, t + Duration::minutes(1), 0.0, 0.0, 10.0)
        .is_empty());
    let ev = w.fix(3, t + Duration::minutes(2), 10.0, 0.0, 10.0);
    assert_eq!(
        brief(&ev),
        vec![(ExclusionZoneEntered, Started, Some(id(7)))]
    );
    assert_eq!(ev[0].seq, Some(3));
    assert_eq!(ev[0].at, t + Duration::minutes(2));
    assert!(!ev[0].late);
}

#[test]
fn a_zone_confirming_after_one_fix_starts_immediately() {
    let mut w = school(1);
    let ev = w.fix(1, local(0, 10, 0), 0.0, 0.0, 10.0);
    assert_eq!(
        brief(&ev),
        vec![(ExclusionZoneEntered, Started, Some(id(7)))]
    );
}

#[test]
fn a_violation_clears_after_as_many_confirming_fixes_the_other_way() {
    let mut w = school(2);
    let t = local(0, 10, 0);
    w.fix(1, t, 0.0, 0.0, 10.0);
    w.fix(2, t + Duration::minutes(1), 0.0, 0.0, 10.0);
    assert!(w
        .fix(3, t + Duration::minutes(2), 400.0, 0.0, 10.0)
        .is_empty());
    let ev = w.fix(4, t + Duration::minutes(3), 400.0, 0.0, 10.0);
    assert_eq!(
        brief(&ev),
        vec![(ExclusionZoneEntered, Cleared, Some(id(7)))]
    );
    assert!(w.state.zones.is_empty(), "a zone at rest keeps no entry");
}

#[test]
fn uncertain_fixes_never_change_state_nor_break_a_streak() {
    let mut w = school(2);
    let t = local(0, 10, 0);
    let m = Duration::minutes(1);
    assert!(w.fix(1, t, 0.0, 0.0, 10.0).is_empty());
    let before = w.state.zones.clone();
    assert!(
        w.fix(2, t + m, 100.0, 0.0, 30.0).is_empty(),
        "straddling the border"
    );
    assert_eq!(w.state.zones, before);
    let ev = w.fix(3, t + m * 2, 0.0, 0.0, 10.0);
    assert_eq!(
        brief(&ev),
        vec![(ExclusionZoneEntered, Started, Some(id(7)))]
    );
}

#[test]
fn a_contrary_fix_resets_the_streak() {
    let mut w = school(2);
    let t = local(0, 10, 0);
    let m = Duration::minutes(1);
    w.fix(1, t, 0.0, 0.0, 10.0);
    w.fix(2, t + m, 500.0, 0.0, 10.0);
    assert!(w.fix(3, t + m * 2, 0.0, 0.0, 10.0).is_empty());
    assert_eq!(w.fix(4, t + m * 3, 0.0, 0.0, 10.0).len(), 1);
}

#[test]
fn leaving_an_unscheduled_inclusion_zone_is_inclusion_zone_left() {
    let county = zone(
        1,
        ZoneKind::Inclusion,
        &area(&square(0.0, 0.0, 5_000.0), &[]),
        Schedule::default(),
        2,
    );
    let mut w = World::new(vec![county]);
    let t = local(0, 10, 0);
    w.fix(1, t, 0.0, 0.0, 10.0);
    w.fix(2, t + Duration::minutes(4), 6_000.0, 0.0, 10.0);
    let ev = w.fix(3, t + Duration::minutes(5), 6_500.0, 0.0, 10.0);
    assert_eq!(brief(&ev), vec![(InclusionZoneLeft, Started, Some(id(1)))]);
}

#[test]
fn a_long_run_of_only_uncertain_fixes_raises_no_location_and_a_certain_fix_clears_it() {
    let mut w = school(2);
    let t = local(0, 10, 0);
    for i in 0..10 {
        assert!(
            w.fix(i, t + Duration::minutes(i as i64), 50.0, 0.0, 400.0)
                .is_empty(),
            "minute {i}"
        );
    }
    let ev = w.fix(10, t + Duration::minutes(10), 50.0, 0.0, 400.0);
    assert_eq!(brief(&ev), vec![(NoLocation, Started, None)]);
    assert!(
        w.fix(11, t + Duration::minutes(11), 50.0, 0.0, 400.0)
            .is_empty(),
        "one open condition, not a stream"
    );
    let ev = w.fix(12, t + Duration::minutes(12), 900.0, 0.0, 10.0);
    assert_eq!(brief(&ev), vec![(NoLocation, Cleared, None)]);
}

#[test]
fn a_straight_path_through_an_exclusion_zone_between_sparse_fixes_is_a_pass_through() {
    let mut w = school(2);
    let t = local(0, 10, 0);
    w.fix(1, t, -600.0, 0.0, 10.0);
    let ev = w.fix(2, t + Duration::minutes(1), 600.0, 20.0, 10.0);
    assert_eq!(
        brief(&ev),
        vec![(ExclusionZoneCrossed, Started, Some(id(7)))]
    );
    assert_eq!(ev[0].seq, Some(2));
    assert!(w.state.zones.is_empty(), "a pass-through is instantaneous");
}

#[test]
fn a_path_passing_beside_an_exclusion_zone_or_across_a_long_gap_is_not_a_pass_through() {
    let mut w = school(2);
    let t = local(0, 10, 0);
    w.fix(1, t, -600.0, 150.0, 10.0);
    assert!(w
        .fix(2, t + Duration::minutes(1), 600.0, 150.0, 10.0)
        .is_empty());
    assert!(
        w.fix(3, t + Duration::minutes(30), -600.0, 0.0, 10.0)
            .is_empty(),
        "a gap says nothing about the path"
    );
}

#[test]
fn a_fix_implying_an_impossible_speed_is_a_location_jump_that_changes_no_zone_state() {
    let mut w = school(1);
    let t = local(0, 10, 0);
    w.fix(1, t, 5_000.0, 0.0, 10.0);
    // 5 km in 10 s is 1,800 km/h, and it lands in the school.
    let ev = w.fix(2, t + Duration::seconds(10), 0.0, 0.0, 10.0);
    assert_eq!(brief(&ev), vec![(LocationJump, Started, None)]);
    assert!(w.state.zones.is_empty());
    assert_eq!(w.state.last.map(|l| l.seq), Some(1));
    // Back where it was: fine, and no stream of jumps.
    assert!(w
        .fix(3, t + Duration::seconds(70), 5_010.0, 0.0, 10.0)
        .is_empty());
}

#[test]
fn a_fix_agreeing_with_a_rejected_jump_is_accepted_so_one_bad_reference_cannot_stick() {
    let mut w = school(1);
    let t = local(0, 10, 0);
    w.fix(1, t, 5_000.0, 0.0, 10.0);
    assert_eq!(
        w.fix(2, t + Duration::seconds(10), 300.0, 300.0, 10.0)
            .len(),
        1
    );
    assert!(w
        .fix(3, t + Duration::seconds(40), 310.0, 300.0, 10.0)
        .is_empty());
    assert_eq!(w.state.last.map(|l| l.seq), Some(3));
}

#[test]
fn a_shared_layer_exclusion_zone_is_enforced_like_a_personal_one() {
    let mut w = World::new(vec![]);
    let schools: Vec<_> = (0..100)
        .map(|i| {
            zone(
                100 + i,
                ZoneKind::Exclusion,
                &circle(1_000.0 * i as f64, 0.0, 80.0),
                Schedule::default(),
                2,
            )
        })
        .collect();
    w.layer = Some(ZoneLayer::new(schools));
    let t = local(0, 10, 0);
    w.fix(1, t, 42_000.0, 0.0, 10.0);
    let ev = w.fix(2, t + Duration::minutes(1), 42_010.0, 0.0, 10.0);
    assert_eq!(
        brief(&ev),
        vec![(ExclusionZoneEntered, Started, Some(id(142)))]
    );
    w.fix(3, t + Duration::minutes(2), 42_500.0, 0.0, 10.0);
    let ev = w.fix(4, t + Duration::minutes(3), 42_500.0, 0.0, 10.0);
    assert_eq!(
        brief(&ev),
        vec![(ExclusionZoneEntered, Cleared, Some(id(142)))]
    );
}

#[test]
fn a_removed_zone_clears_its_open_violation() {
    let mut w = school(1);
    let t = local(0, 10, 0);
    w.fix(1, t, 0.0, 0.0, 10.0);
    w.zones.clear();
    let ev = w.fix(2, t + Duration::minutes(1), 0.0, 0.0, 10.0);
    assert_eq!(
        brief(&ev),
        vec![(ExclusionZoneEntered, Cleared, Some(id(7)))]
    );
}

#[test]
fn strap_open_starts_tamper_and_closed_clears_it() {
    let mut w = World::new(vec![]);
    let t = local(0, 10, 0);
    let status = |seq, ts, strap| Input::Status {
        seq,
        ts,
        bat: None,
        strap: Some(strap),
    };
    assert_eq!(
        brief(&w.feed_at(status(1, t, Strap::Open), t)),
        vec![(StrapTamper, Started, None)]
    );
    assert!(w
        .feed_at(
            status(2, t + Duration::minutes(1), Strap::Open),
            t + Duration::minutes(1)
        )
        .is_empty());
    let ev = w.feed_at(
        status(3, t + Duration::minutes(2), Strap::Closed),
        t + Duration::minutes(2),
    );
    assert_eq!(brief(&ev), vec![(StrapTamper, Cleared, None)]);
}
