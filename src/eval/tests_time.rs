//! Unit tests of the time rules: curfew windows (openings, midnight, daylight saving, ticks),
//! leave, monitoring orders, late or out-of-order reports, battery; and the state's size and
//! the stable names. Time is always explicit.

use chrono::{Duration, TimeZone, Utc};
use uuid::Uuid;

use super::tests_classify::{area, circle, square};
use super::tests_rules::{brief, curfew, fix, id, local, zone, World};
use super::*;
use crate::domain::schedule::Schedule;
use crate::domain::supervision::Period;
use crate::wire::Strap;
use serde_json::json;
use EventKind::*;
use Transition::*;

const HOME: u128 = 1;

fn school_world() -> World {
    World::new(vec![zone(
        7,
        ZoneKind::Exclusion,
        &circle(0.0, 0.0, 100.0),
        Schedule::default(),
        2,
    )])
}

fn home(confirm: u32) -> World {
    World::new(vec![zone(
        HOME,
        ZoneKind::Inclusion,
        &circle(0.0, 0.0, 100.0),
        curfew(),
        confirm,
    )])
}

fn home_id() -> Option<Uuid> {
    Some(id(HOME))
}

#[test]
fn being_outside_home_when_the_curfew_window_opens_is_a_curfew_violation() {
    let mut w = home(2);
    assert!(w.fix(1, local(0, 21, 58), 1_000.0, 0.0, 10.0).is_empty());
    let ev = w.fix(2, local(0, 22, 1), 1_000.0, 0.0, 10.0);
    assert_eq!(brief(&ev), vec![(CurfewViolation, Started, home_id())]);
    assert_eq!(ev[0].at, local(0, 22, 1));
}

#[test]
fn with_one_confirming_fix_the_position_held_over_the_opening_decides_at_the_opening() {
    let mut w = home(1);
    w.fix(1, local(0, 21, 58), 1_000.0, 0.0, 10.0);
    let ev = w.fix(2, local(0, 22, 1), 0.0, 0.0, 10.0);
    assert_eq!(
        brief(&ev),
        vec![
            (CurfewViolation, Started, home_id()),
            (CurfewViolation, Cleared, home_id())
        ]
    );
    assert_eq!((ev[0].at, ev[0].seq), (local(0, 22, 0), Some(1)));
}

#[test]
fn coming_home_just_after_the_window_opens_raises_nothing_with_two_confirming_fixes() {
    let mut w = home(2);
    w.fix(1, local(0, 21, 58), 1_000.0, 0.0, 10.0);
    assert!(w.fix(2, local(0, 22, 1), 0.0, 0.0, 10.0).is_empty());
    assert!(w.state.zones.is_empty());
}

#[test]
fn leaving_home_during_the_curfew_window_is_a_curfew_violation() {
    let mut w = home(2);
    w.fix(1, local(0, 21, 50), 0.0, 0.0, 10.0);
    assert!(w.fix(2, local(0, 22, 30), 0.0, 0.0, 10.0).is_empty());
    assert!(w.fix(3, local(0, 23, 0), 800.0, 0.0, 10.0).is_empty());
    let ev = w.fix(4, local(0, 23, 1), 900.0, 0.0, 10.0);
    assert_eq!(brief(&ev), vec![(CurfewViolation, Started, home_id())]);
}

#[test]
fn being_out_before_the_window_raises_nothing_and_the_window_closing_clears_the_violation() {
    let mut w = home(2);
    assert!(w.fix(1, local(0, 21, 0), 1_000.0, 0.0, 10.0).is_empty());
    assert!(w.fix(2, local(0, 21, 1), 1_000.0, 0.0, 10.0).is_empty());
    assert!(
        w.fix(3, local(0, 22, 1), 1_000.0, 0.0, 10.0).is_empty(),
        "last fix too old to hold over the opening"
    );
    assert_eq!(w.fix(4, local(0, 22, 2), 1_000.0, 0.0, 10.0).len(), 1);
    // The window crossed midnight and closes at 06:00 the next day.
    assert!(w.fix(5, local(1, 5, 59), 1_000.0, 0.0, 10.0).is_empty());
    let ev = w.fix(6, local(1, 6, 1), 1_000.0, 0.0, 10.0);
    assert_eq!(brief(&ev), vec![(CurfewViolation, Cleared, home_id())]);
}

#[test]
fn a_curfew_window_follows_local_time_across_a_daylight_saving_change() {
    let mut w = home(2);
    w.tz = chrono_tz::America::New_York;
    w.orders = vec![Period {
        starts_at: local(-30, 0, 0),
        ends_at: local(60, 0, 0),
    }];
    // 2026-03-08: clocks spring forward at 02:00; the window closes at 06:00 EDT = 10:00Z.
    let z = |h, m| {
        Utc.with_ymd_and_hms(2026, 3, 8, h, m, 0)
            .single()
            .expect("valid")
    };
    w.fix(1, z(9, 30), 1_000.0, 0.0, 10.0);
    assert_eq!(
        brief(&w.fix(2, z(9, 31), 1_000.0, 0.0, 10.0)),
        vec![(CurfewViolation, Started, home_id())]
    );
    assert_eq!(
        brief(&w.fix(3, z(10, 30), 1_000.0, 0.0, 10.0)),
        vec![(CurfewViolation, Cleared, home_id())]
    );
}

#[test]
fn the_tick_raises_a_curfew_violation_when_the_last_known_position_is_outside_and_no_fix_comes() {
    let mut w = home(2);
    w.fix(1, local(0, 21, 55), 1_000.0, 0.0, 10.0);
    assert!(w.tick(local(0, 21, 59)).is_empty());
    assert!(
        w.tick(local(0, 22, 1)).is_empty(),
        "the first fix after the opening gets a chance"
    );
    let ev = w.tick(local(0, 22, 2));
    assert_eq!(brief(&ev), vec![(CurfewViolation, Started, home_id())]);
    assert_eq!((ev[0].at, ev[0].seq), (local(0, 22, 0), Some(1)));
    assert!(w.tick(local(0, 22, 5)).is_empty());
    assert!(
        w.fix(2, local(0, 22, 6), 1_000.0, 0.0, 10.0).is_empty(),
        "one open condition"
    );
    w.fix(3, local(0, 22, 20), 0.0, 0.0, 10.0);
    let ev = w.fix(4, local(0, 22, 21), 0.0, 0.0, 10.0);
    assert_eq!(brief(&ev), vec![(CurfewViolation, Cleared, home_id())]);
}

#[test]
fn the_tick_clears_a_violation_whose_window_has_closed() {
    let mut w = home(1);
    w.fix(1, local(0, 23, 0), 1_000.0, 0.0, 10.0);
    assert_eq!(w.state.zones.len(), 1);
    let ev = w.tick(local(1, 6, 0));
    assert_eq!(brief(&ev), vec![(CurfewViolation, Cleared, home_id())]);
    assert_eq!(ev[0].at, local(1, 6, 0));
}

#[test]
fn approved_leave_suspends_inclusion_zones_and_enforces_its_destination() {
    let county = zone(
        1,
        ZoneKind::Inclusion,
        &area(&square(0.0, 0.0, 5_000.0), &[]),
        Schedule::default(),
        2,
    );
    let dest = zone(
        2,
        ZoneKind::Inclusion,
        &circle(60_000.0, 0.0, 3_000.0),
        Schedule::default(),
        2,
    );
    let mut w = World::new(vec![county]);
    w.leaves = vec![Leave {
        period: Period {
            starts_at: local(0, 8, 0),
            ends_at: local(0, 20, 0),
        },
        destination: Some(dest),
    }];
    let mut seq = 0;
    let mut at = |w: &mut World, h, m, east| {
        seq += 1;
        brief(&w.fix(seq, local(0, h, m), east, 0.0, 10.0))
    };
    assert!(at(&mut w, 9, 0, 60_000.0).is_empty());
    assert!(at(&mut w, 9, 1, 60_100.0).is_empty());
    assert!(at(&mut w, 11, 0, 70_000.0).is_empty());
    assert_eq!(
        at(&mut w, 11, 1, 70_100.0),
        vec![(InclusionZoneLeft, Started, Some(id(2)))]
    );
    // The leave ends with the person still away: the destination rule ends, the county's resumes.
    assert_eq!(
        at(&mut w, 20, 1, 70_100.0),
        vec![(InclusionZoneLeft, Cleared, Some(id(2)))]
    );
    assert_eq!(
        at(&mut w, 20, 2, 70_100.0),
        vec![(InclusionZoneLeft, Started, Some(id(1)))]
    );
}

#[test]
fn exclusion_zones_stay_in_force_during_leave() {
    let school = zone(
        7,
        ZoneKind::Exclusion,
        &circle(0.0, 0.0, 100.0),
        Schedule::default(),
        1,
    );
    let mut w = World::new(vec![school]);
    w.leaves = vec![Leave {
        period: Period {
            starts_at: local(0, 8, 0),
            ends_at: local(0, 20, 0),
        },
        destination: None,
    }];
    assert_eq!(
        brief(&w.fix(1, local(0, 9, 0), 0.0, 0.0, 10.0)),
        vec![(ExclusionZoneEntered, Started, Some(id(7)))]
    );
}

#[test]
fn without_an_active_monitoring_order_nothing_is_evaluated_and_open_conditions_clear() {
    let school = zone(
        7,
        ZoneKind::Exclusion,
        &circle(0.0, 0.0, 100.0),
        Schedule::default(),
        1,
    );
    let mut w = World::new(vec![school]);
    w.orders = vec![Period {
        starts_at: local(0, 8, 0),
        ends_at: local(0, 12, 0),
    }];
    assert!(w.fix(1, local(0, 7, 0), 0.0, 0.0, 10.0).is_empty());
    assert_eq!(w.fix(2, local(0, 9, 0), 0.0, 0.0, 10.0).len(), 1);
    let ev = w.fix(3, local(0, 12, 0), 0.0, 0.0, 10.0);
    assert_eq!(
        brief(&ev),
        vec![(ExclusionZoneEntered, Cleared, Some(id(7)))]
    );
    assert!(w.fix(4, local(0, 13, 0), 0.0, 0.0, 10.0).is_empty());
    assert_eq!(w.state.zones.len(), 0);
}

#[test]
fn a_report_older_than_the_newest_evaluated_one_changes_nothing() {
    let school = zone(
        7,
        ZoneKind::Exclusion,
        &circle(0.0, 0.0, 100.0),
        Schedule::default(),
        1,
    );
    let mut w = World::new(vec![school]);
    w.fix(5, local(0, 10, 5), 500.0, 0.0, 10.0);
    let before = w.state.clone();
    assert!(w.fix(4, local(0, 10, 4), 0.0, 0.0, 10.0).is_empty());
    assert!(
        w.fix(5, local(0, 10, 5), 0.0, 0.0, 10.0).is_empty(),
        "a duplicate"
    );
    assert_eq!(w.state, before);
}

#[test]
fn a_violation_that_began_and_ended_inside_an_uploaded_gap_is_reported_marked_late() {
    let school = zone(
        7,
        ZoneKind::Exclusion,
        &circle(0.0, 0.0, 100.0),
        Schedule::default(),
        2,
    );
    let mut w = World::new(vec![school]);
    w.fix(1, local(0, 10, 0), 500.0, 0.0, 10.0);
    let upload = local(0, 10, 40);
    let mut events = Vec::new();
    for (i, east) in [500.0, 0.0, 10.0, 20.0, 500.0, 510.0].iter().enumerate() {
        let ts = local(0, 10, 10 + i as u32);
        events.extend(w.feed_at(fix(2 + i as u64, ts, *east, 0.0, 10.0), upload));
    }
    assert_eq!(
        brief(&events),
        vec![
            (ExclusionZoneEntered, Started, Some(id(7))),
            (ExclusionZoneEntered, Cleared, Some(id(7)))
        ]
    );
    assert!(events.iter().all(|e| e.late));
    assert_eq!(
        (events[0].at, events[1].at),
        (local(0, 10, 12), local(0, 10, 15))
    );
}

#[test]
fn a_late_report_of_an_opened_strap_is_reported_without_changing_the_current_state() {
    let mut w = World::new(vec![]);
    let t = local(0, 10, 0);
    w.feed_at(
        Input::Status {
            seq: 10,
            ts: t,
            bat: None,
            strap: Some(Strap::Closed),
        },
        t,
    );
    let old = Input::Status {
        seq: 9,
        ts: t - Duration::minutes(5),
        bat: None,
        strap: Some(Strap::Open),
    };
    let ev = w.feed_at(old, t);
    assert_eq!(
        brief(&ev),
        vec![(StrapTamper, Started, None), (StrapTamper, Cleared, None)]
    );
    assert!(ev.iter().all(|e| e.late));
    assert!(!w.state.strap_open);
}

#[test]
fn low_battery_starts_below_the_threshold_and_clears_only_above_the_hysteresis() {
    let mut w = World::new(vec![]);
    let t = local(0, 10, 0);
    let mut feed = |seq: u64, bat: u8| {
        let ts = t + Duration::minutes(seq as i64);
        brief(&w.feed_at(
            Input::Status {
                seq,
                ts,
                bat: Some(bat),
                strap: None,
            },
            ts,
        ))
    };
    assert!(feed(1, 20).is_empty());
    assert_eq!(feed(2, 19), vec![(LowBattery, Started, None)]);
    assert!(feed(3, 21).is_empty());
    assert!(feed(4, 24).is_empty());
    assert_eq!(feed(5, 25), vec![(LowBattery, Cleared, None)]);
}

#[test]
fn the_state_is_small_and_round_trips_through_json() {
    let mut w = school_world();
    let t = local(0, 10, 0);
    w.fix(1, t, 0.0, 0.0, 10.0);
    w.fix(2, t + Duration::minutes(1), 0.0, 0.0, 10.0);
    let text = serde_json::to_string(&w.state).unwrap();
    assert!(text.len() < 400, "{} bytes: {text}", text.len());
    let back: EvalState = serde_json::from_str(&text).unwrap();
    assert_eq!(back, w.state);
    assert_eq!(serde_json::to_string(&EvalState::default()).unwrap(), "{}");
}

#[test]
fn event_kinds_and_classes_have_stable_snake_case_names() {
    for k in EventKind::ALL {
        assert_eq!(serde_json::to_value(k).unwrap(), json!(k.as_str()));
    }
    assert_eq!(
        serde_json::to_value(Class::Uncertain).unwrap(),
        json!("uncertain")
    );
    assert_eq!(
        serde_json::to_value(Transition::Cleared).unwrap(),
        json!("cleared")
    );
}
