//! Tests of the schedule: parsing and its errors, the JSON round trip, the wall-clock view, and
//! the real-time view across midnight and daylight-saving changes.

use super::*;
use chrono::NaiveDate;
use chrono_tz::{America::New_York, Asia::Shanghai};

fn sched(v: Value) -> Schedule {
    match Schedule::parse(&v) {
        Ok(s) => s,
        Err(e) => panic!("rejected {v}: {e}"),
    }
}

fn err(v: Value) -> ScheduleError {
    match Schedule::parse(&v) {
        Ok(s) => panic!("accepted {v}: {s:?}"),
        Err(e) => e,
    }
}

fn utc(s: &str) -> DateTime<Utc> {
    match DateTime::parse_from_rfc3339(s) {
        Ok(t) => t.with_timezone(&Utc),
        Err(e) => panic!("bad test instant {s}: {e}"),
    }
}

fn local(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> NaiveDateTime {
    NaiveDate::from_ymd_opt(y, mo, d)
        .and_then(|d| d.and_hms_opt(h, mi, 0))
        .unwrap_or_else(|| panic!("bad test date"))
}

#[test]
fn null_and_an_empty_list_mean_always_in_force() {
    for v in [Value::Null, json!([])] {
        let s = sched(v);
        assert!(s.is_always());
        assert!(s.active_at(utc("2026-01-05T00:00:00Z"), Shanghai));
        assert!(s.is_active_at(local(2026, 1, 5, 3, 0)));
        assert_eq!(
            s.last_opening_at_or_before(utc("2026-01-05T00:00:00Z"), Shanghai),
            None
        );
    }
}

#[test]
fn a_schedule_round_trips_through_json_with_days_in_week_order() {
    let v = json!([
        {"days": ["sun", "mon", "mon"], "start": "22:00", "end": "06:00"},
        {"days": ["sat"], "start": "00:00", "end": "24:00"},
    ]);
    let s = sched(v);
    let out = s.to_json();
    assert_eq!(out[0]["days"], json!(["mon", "sun"]));
    assert_eq!(out[1]["end"], "24:00");
    assert_eq!(sched(out), s);
}

#[test]
fn bad_windows_are_rejected_with_their_index_and_value() {
    let e = err(json!([{"days": ["mon"], "start": "08:00", "end": "09:00"},
                       {"days": ["mnday"], "start": "08:00", "end": "09:00"}]));
    assert_eq!(e.code(), "unknown_day");
    assert!(e.to_string().contains("window 1") && e.to_string().contains("mnday"));
    let e = err(json!([{"days": ["mon"], "start": "8:00", "end": "09:00"}]));
    assert_eq!(e.code(), "invalid_time");
    assert!(e.to_string().contains("\"8:00\""), "{e}");
    assert_eq!(
        err(json!([{"days": ["mon"], "start": "24:00", "end": "09:00"}])).code(),
        "invalid_time"
    );
    assert_eq!(
        err(json!([{"days": ["mon"], "start": "08:60", "end": "09:00"}])).code(),
        "invalid_time"
    );
    assert_eq!(
        err(json!([{"days": ["mon"], "start": "22:00", "end": "22:00"}])).code(),
        "empty_window"
    );
    assert_eq!(
        err(json!([{"days": [], "start": "08:00", "end": "09:00"}])).code(),
        "empty_window"
    );
    assert_eq!(
        err(json!([{"days": ["Mon"], "start": "08:00", "end": "09:00"}])).code(),
        "unknown_day"
    );
    assert_eq!(
        err(json!([{"days": ["mon"], "start": "08:00", "end": "09:00", "x": 1}])).code(),
        "invalid_schedule"
    );
    assert_eq!(
        err(json!([{"days": "mon", "start": "08:00", "end": "09:00"}])).code(),
        "invalid_schedule"
    );
    assert_eq!(err(json!({"days": ["mon"]})).code(), "invalid_schedule");
    assert_eq!(
        err(json!([{"days": ["mon"], "start": 800, "end": "09:00"}])).code(),
        "invalid_schedule"
    );
    let many: Vec<Value> = (0..=MAX_WINDOWS)
        .map(|_| json!({"days": ["mon"], "start": "08:00", "end": "09:00"}))
        .collect();
    assert_eq!(err(Value::Array(many)).code(), "too_many_windows");
}

#[test]
fn a_window_crossing_midnight_covers_the_next_morning_by_wall_clock() {
    // 2026-01-05 is a Monday.
    let s = sched(json!([{"days": ["mon"], "start": "22:00", "end": "06:00"}]));
    assert!(!s.is_active_at(local(2026, 1, 5, 21, 59)));
    assert!(s.is_active_at(local(2026, 1, 5, 22, 0)));
    assert!(s.is_active_at(local(2026, 1, 6, 5, 59)));
    assert!(!s.is_active_at(local(2026, 1, 6, 6, 0)));
    assert!(!s.is_active_at(local(2026, 1, 6, 23, 0)));
    assert!(!s.is_active_at(local(2026, 1, 5, 3, 0)));
}

#[test]
fn a_shanghai_curfew_from_22_to_06_opens_at_22_local() {
    let s = sched(json!([{"days": ["mon"], "start": "22:00", "end": "06:00"}]));
    assert!(!s.active_at(utc("2026-01-05T13:59:00Z"), Shanghai));
    assert!(s.active_at(utc("2026-01-05T14:00:00Z"), Shanghai));
    assert!(s.active_at(utc("2026-01-05T21:59:00Z"), Shanghai));
    assert!(!s.active_at(utc("2026-01-05T22:00:00Z"), Shanghai));
    assert!(!s.active_at(utc("2026-01-06T14:00:00Z"), Shanghai));
    assert_eq!(
        s.last_opening_at_or_before(utc("2026-01-05T19:00:00Z"), Shanghai),
        Some(utc("2026-01-05T14:00:00Z"))
    );
    assert_eq!(
        s.last_opening_at_or_before(utc("2026-01-05T23:00:00Z"), Shanghai),
        None
    );
}

#[test]
fn touching_windows_open_once_at_the_first() {
    let s = sched(json!([
        {"days": ["mon"], "start": "22:00", "end": "24:00"},
        {"days": ["tue"], "start": "00:00", "end": "06:00"},
    ]));
    assert_eq!(
        s.last_opening_at_or_before(utc("2026-01-05T19:00:00Z"), Shanghai),
        Some(utc("2026-01-05T14:00:00Z"))
    );
}

#[test]
fn a_schedule_open_all_week_reports_no_opening() {
    let all = json!(["mon", "tue", "wed", "thu", "fri", "sat", "sun"]);
    let s = sched(json!([{"days": all, "start": "00:00", "end": "24:00"}]));
    assert!(s.active_at(utc("2026-03-08T07:30:00Z"), New_York));
    assert_eq!(
        s.last_opening_at_or_before(utc("2026-03-08T07:30:00Z"), New_York),
        None
    );
}

#[test]
fn a_start_in_the_spring_forward_gap_opens_when_the_gap_ends() {
    // New York, 2026-03-08: 02:00 EST jumps to 03:00 EDT (07:00 UTC).
    let s = sched(json!([{"days": ["sun"], "start": "02:30", "end": "04:00"}]));
    assert!(!s.active_at(utc("2026-03-08T06:59:59Z"), New_York));
    assert!(s.active_at(utc("2026-03-08T07:00:00Z"), New_York));
    assert!(!s.active_at(utc("2026-03-08T08:00:00Z"), New_York));
    assert_eq!(
        s.last_opening_at_or_before(utc("2026-03-08T07:30:00Z"), New_York),
        Some(utc("2026-03-08T07:00:00Z"))
    );
}

#[test]
fn an_overnight_window_across_spring_forward_lasts_seven_real_hours() {
    // Sat 22:00 EST (03:00 UTC) to Sun 06:00 EDT (10:00 UTC).
    let s = sched(json!([{"days": ["sat"], "start": "22:00", "end": "06:00"}]));
    assert!(!s.active_at(utc("2026-03-08T02:59:00Z"), New_York));
    assert!(s.active_at(utc("2026-03-08T09:59:00Z"), New_York));
    assert!(!s.active_at(utc("2026-03-08T10:00:00Z"), New_York));
    assert_eq!(
        s.last_opening_at_or_before(utc("2026-03-08T09:59:00Z"), New_York),
        Some(utc("2026-03-08T03:00:00Z"))
    );
}

#[test]
fn an_ambiguous_fall_back_start_uses_the_earlier_instant() {
    // New York, 2026-11-01: 02:00 EDT falls back to 01:00 EST (06:00 UTC).
    let s = sched(json!([{"days": ["sun"], "start": "01:30", "end": "03:00"}]));
    assert!(!s.active_at(utc("2026-11-01T05:29:00Z"), New_York));
    assert!(s.active_at(utc("2026-11-01T05:30:00Z"), New_York));
    assert!(s.active_at(utc("2026-11-01T06:45:00Z"), New_York));
    assert!(!s.active_at(utc("2026-11-01T08:00:00Z"), New_York));
    assert_eq!(
        s.last_opening_at_or_before(utc("2026-11-01T06:45:00Z"), New_York),
        Some(utc("2026-11-01T05:30:00Z"))
    );
}

#[test]
fn a_window_inside_the_repeated_hour_is_in_force_only_once() {
    let s = sched(json!([{"days": ["sun"], "start": "01:00", "end": "01:30"}]));
    assert!(s.active_at(utc("2026-11-01T05:15:00Z"), New_York)); // 01:15 EDT
    assert!(!s.active_at(utc("2026-11-01T06:15:00Z"), New_York)); // 01:15 EST
                                                                  // The wall-clock view, having no zone, sees 01:15 as inside.
    assert!(s.is_active_at(local(2026, 11, 1, 1, 15)));
}

#[test]
fn extreme_instants_do_not_panic() {
    let s = sched(json!([{"days": ["mon", "sun"], "start": "22:00", "end": "06:00"}]));
    for t in [DateTime::<Utc>::MIN_UTC, DateTime::<Utc>::MAX_UTC] {
        let _ = s.active_at(t, New_York);
        let _ = s.last_opening_at_or_before(t, Shanghai);
    }
}
