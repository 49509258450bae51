//! Tests of the planner: the time-of-day mapping, settings validation, every scenario kind
//! placed in CI-sized and default-server runs, determinism, and — the strongest check — every
//! device of a plan replayed through its real script (at several sending lags) into a small
//! model of geoward's rules (`docs/rules.md`, `docs/alerts.md`), which must raise exactly the
//! expected alerts, each inside its window, and nothing else.

use std::collections::HashMap;

use chrono::{DateTime, Duration, TimeZone, Timelike, Utc};
use proptest::prelude::*;
use rand::{rngs::StdRng, Rng, SeedableRng};

use super::clock::{schedule_intervals, DayClock, Ticks};
use super::zones::Shape;
use super::*;
use crate::geo::{self, LatLon};
use crate::ledger::AlertKind;
use crate::script::{Action, DeviceScript, Report};
use crate::{ledger, movement};

fn at(h: u32, m: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 3, h, m, s).unwrap()
}

fn start() -> DateTime<Utc> {
    at(15, 6, 38)
}

/// The CI-sized run of the brief.
fn ci() -> Settings {
    Settings {
        devices: 300,
        interval: Duration::seconds(1),
        duration: Duration::seconds(60),
        scenario_share: 0.2,
        confirm_fixes: 2,
        silent_lost_contact_after_s: 5,
        lost_contact_grace: Duration::seconds(2),
        late_after: Duration::seconds(10),
        no_location_after: Duration::minutes(10),
        lag: Duration::seconds(3),
        lost_contact_after_s: 600,
        ..Settings::default()
    }
}

/// A run against a server with default settings.
fn default_server() -> Settings {
    Settings {
        devices: 2000,
        interval: Duration::seconds(10),
        duration: Duration::minutes(10),
        scenario_share: 0.05,
        silent_lost_contact_after_s: 60,
        lost_contact_grace: Duration::seconds(60),
        late_after: Duration::seconds(120),
        lag: Duration::seconds(5),
        ..Settings::default()
    }
}

/// The CI-sized plan, built once for all tests.
fn ci_plan() -> &'static Plan {
    static PLAN: std::sync::OnceLock<Plan> = std::sync::OnceLock::new();
    PLAN.get_or_init(|| build(&ci(), start()).expect("the CI-sized plan builds"))
}

/// The default-server plan, built once for all tests.
fn default_plan() -> &'static Plan {
    static PLAN: std::sync::OnceLock<Plan> = std::sync::OnceLock::new();
    PLAN.get_or_init(|| build(&default_server(), start()).expect("the default-server plan builds"))
}

fn kinds(plan: &Plan) -> Vec<Kind> {
    let mut k: Vec<Kind> = plan
        .people
        .iter()
        .map(|p| Kind::of(&p.scenario.scenario))
        .filter(|k| *k != Kind::Compliant)
        .collect();
    k.sort_by_key(|k| k.name());
    k.dedup();
    k
}

fn zone_map(plan: &Plan) -> HashMap<ZoneRef, &ZoneSpec> {
    plan.zones.iter().map(|z| (z.zone, z)).collect()
}

fn shape(z: &ZoneSpec) -> Shape {
    Shape::from_geometry(&z.geometry).expect("readable geometry")
}

// ----------------------------------------------------------------------------------------
// A small model of geoward's rules, fed by the real device scripts.
// ----------------------------------------------------------------------------------------

/// An alert the model raised: kind, zone, `event_at`, late.
#[derive(Debug, Clone, PartialEq)]
struct Raised {
    kind: AlertKind,
    zone: Option<ZoneRef>,
    at: DateTime<Utc>,
    late: bool,
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Class {
    Inside,
    Outside,
    Uncertain,
}

fn classify(shape: &Shape, p: LatLon, acc: f64) -> Class {
    let (lo, hi) = shape.bounds(p);
    if hi < -acc {
        return Class::Inside;
    }
    if lo > acc {
        return Class::Outside;
    }
    let s = shape.signed_distance(p);
    if s < -acc {
        Class::Inside
    } else if s > acc {
        Class::Outside
    } else {
        Class::Uncertain
    }
}

/// What a device's reports look like to geoward: each with its receipt time, in order. The
/// device loop is modelled as `device.rs` runs it: it wakes for a scheduled tick up to `lag`
/// late (lag mode 0: never, 1: always the whole lag, 2: uniformly, 3: now and then the whole
/// lag), builds the report then, and when two or more ticks are due skips to the latest.
fn replay(plan: &Plan, p: &PersonPlan, lag_mode: u8) -> Vec<(Report, DateTime<Utc>)> {
    let s = &plan.settings;
    let ticks = Ticks::of(s, plan.start, p.index);
    let (lag, interval) = (s.lag.num_milliseconds(), s.interval.num_milliseconds());
    let mut rng = StdRng::seed_from_u64(p.index as u64 ^ 0xabc);
    let mut script = DeviceScript::new(p.person.clone(), p.device.clone());
    let mut buffer: Vec<Report> = Vec::new();
    let mut out = Vec::new();
    let mut last_build = plan.start;
    let mut next = ticks.at_ms(0);
    let end = plan.end().timestamp_millis();
    while next < end {
        let delay = match lag_mode {
            0 => 0,
            1 => lag,
            2 => rng.gen_range(0..=lag),
            _ if rng.gen_bool(0.1) => lag,
            _ => rng.gen_range(0..=lag / 10),
        };
        let build = DateTime::from_timestamp_millis(next + delay)
            .unwrap()
            .max(last_build);
        last_build = build;
        // Received within the second after building (here: 300 ms).
        let received = build + Duration::milliseconds(300);
        for a in script.tick(build) {
            match a {
                Action::Send(r) => out.push((r, received)),
                Action::Buffer(r) => buffer.push(r),
                Action::Flush => out.extend(buffer.drain(..).map(|r| (r, received))),
                Action::GoSilent => {}
            }
        }
        // `device::tick_after`: the next tick, or the latest due one when behind.
        let now = build.timestamp_millis();
        let n = next + interval;
        next = if n + interval > now {
            n
        } else {
            n + interval * ((now - n) / interval)
        };
    }
    out
}

#[derive(Default, Clone, Copy)]
struct ZoneState {
    violating: bool,
    streak: u32,
    window: Option<DateTime<Utc>>,
}

/// geoward's rules as `docs/rules.md` states them, for one supervisee.
fn model(plan: &Plan, p: &PersonPlan, reports: &[(Report, DateTime<Utc>)]) -> Vec<Raised> {
    let s = &plan.settings;
    let zones = zone_map(plan);
    let offset_h = super::clock::etc_offset_h(&p.timezone).unwrap();
    let confirm = s.confirm();
    let mut attached: Vec<(ZoneRef, Shape, bool, Option<serde_json::Value>)> = p
        .zones
        .iter()
        .map(|r| {
            let z = zones[r];
            (*r, shape(z), z.kind == "exclusion", z.schedule.clone())
        })
        .collect();
    let leave = p.leave.as_ref().map(|l| (l.starts_at, l.ends_at));
    if let Some(d) = p.leave.as_ref().and_then(|l| l.destination.as_ref()) {
        attached.push((
            ZoneRef::LeaveDestination(p.index),
            Shape::from_geometry(d).unwrap(),
            false,
            None,
        ));
    }
    let far = plan.settle_until + Duration::days(1);
    // Open windows of each scheduled zone: (open, close).
    let windows: Vec<Vec<(DateTime<Utc>, DateTime<Utc>)>> = attached
        .iter()
        .map(|(_, _, _, sch)| {
            schedule_intervals(sch.as_ref(), offset_h, plan.start - Duration::days(1), far).unwrap()
        })
        .collect();
    let mut state = vec![ZoneState::default(); attached.len()];
    let mut out = Vec::new();
    let mut last: Option<(DateTime<Utc>, LatLon, f64)> = None;
    let mut pending_jump: Option<(DateTime<Utc>, LatLon, f64)> = None;
    let (mut strap, mut low) = (false, false);
    let mut uncertain_since: Option<DateTime<Utc>> = None;
    let mut no_location = false;
    let mut newest: Option<(DateTime<Utc>, u64)> = None;
    let max_mps = 300.0 / 3.6;
    for (r, received) in reports {
        // Newer by (ts, seq): a late loop may build two reports in the same millisecond.
        if newest.is_some_and(|n| (r.ts, r.seq) <= n) {
            continue;
        }
        newest = Some((r.ts, r.seq));
        let late = *received - r.ts > s.late_after;
        let raise = |kind, zone, at| Raised {
            kind,
            zone,
            at,
            late,
        };
        if r.strap_open && !strap {
            out.push(raise(AlertKind::StrapTamper, None, r.ts));
        }
        strap = r.strap_open;
        if r.bat < s.low_battery_pct && !low {
            out.push(raise(AlertKind::LowBattery, None, r.ts));
            low = true;
        }
        let Some(pos) = r.position else {
            continue;
        };
        let fix = ((pos.lat, pos.lon), pos.acc_m);
        let jumps = |from: &(DateTime<Utc>, LatLon, f64)| {
            let dt = (r.ts - from.0).num_milliseconds() as f64 / 1000.0;
            geo::distance_m(from.1, fix.0) - from.2 - fix.1 > max_mps * dt.max(1e-3)
        };
        if let Some(l) = last {
            if jumps(&l) && !pending_jump.is_some_and(|j| !jumps(&j)) {
                out.push(raise(AlertKind::LocationJump, None, r.ts));
                pending_jump = Some((r.ts, fix.0, fix.1));
                continue;
            }
        }
        pending_jump = None;
        let in_leave = leave.is_some_and(|(a, b)| a <= r.ts && r.ts < b);
        let mut uncertain = false;
        for (zi, (zref, shape, exclusion, sched)) in attached.iter().enumerate() {
            let dest = matches!(zref, ZoneRef::LeaveDestination(_));
            let open = windows[zi]
                .iter()
                .filter(|(o, c)| *o <= r.ts && r.ts < *c)
                .map(|(o, _)| *o)
                .next();
            let scheduled = sched
                .as_ref()
                .is_some_and(|v| v.as_array().is_some_and(|a| !a.is_empty()));
            let in_force = if dest {
                in_leave
            } else if !exclusion && in_leave {
                false
            } else {
                !scheduled || open.is_some()
            };
            let st = &mut state[zi];
            if !in_force {
                *st = ZoneState::default();
                continue;
            }
            let class = classify(shape, fix.0, fix.1);
            uncertain |= class == Class::Uncertain;
            let kind = if *exclusion {
                AlertKind::ExclusionZoneEntered
            } else if scheduled && !dest {
                AlertKind::CurfewViolation
            } else {
                AlertKind::InclusionZoneLeft
            };
            let bad = |c: Class| {
                if *exclusion {
                    c == Class::Inside
                } else {
                    c == Class::Outside
                }
            };
            let good = |c: Class| c != Class::Uncertain && !bad(c);
            if scheduled && st.window != open {
                *st = ZoneState {
                    window: open,
                    ..ZoneState::default()
                };
                // The position held over the opening counts once, at the opening.
                if let (Some(o), Some(l)) = (open, last) {
                    if l.0 < o && o - l.0 <= s.no_location_after {
                        let c = classify(shape, l.1, l.2);
                        if bad(c) {
                            st.streak += 1;
                            if st.streak >= confirm {
                                st.violating = true;
                                st.streak = 0;
                                out.push(raise(kind, Some(*zref), o));
                            }
                        }
                    }
                }
            }
            let was_violating = st.violating;
            if bad(class) && !st.violating {
                st.streak += 1;
                if st.streak >= confirm {
                    st.violating = true;
                    st.streak = 0;
                    out.push(raise(kind, Some(*zref), r.ts));
                }
            } else if good(class) && !st.violating {
                st.streak = 0;
            } else if good(class) && st.violating {
                st.streak += 1;
                if st.streak >= confirm {
                    *st = ZoneState {
                        window: st.window,
                        ..ZoneState::default()
                    };
                }
            } else if bad(class) {
                st.streak = 0;
            }
            // Pass-through between the previous accepted fix and this one.
            if let (true, Some(l)) = (*exclusion, last) {
                if !was_violating
                    && !st.violating
                    && class != Class::Inside
                    && classify(shape, l.1, l.2) != Class::Inside
                    && r.ts - l.0 <= Duration::seconds(CROSSING_MAX_GAP_S)
                    && -shape.segment_clearance(l.1, fix.0) > l.2.max(fix.1)
                {
                    out.push(raise(AlertKind::ExclusionZoneCrossed, Some(*zref), r.ts));
                }
            }
        }
        if uncertain {
            let since = *uncertain_since.get_or_insert(r.ts);
            if !no_location && r.ts - since >= s.no_location_after {
                no_location = true;
                out.push(raise(AlertKind::NoLocation, None, r.ts));
            }
        } else {
            uncertain_since = None;
            no_location = false;
        }
        last = Some((r.ts, fix.0, fix.1));
    }
    // Lost contact: deadlines move with every receipt.
    let after = Duration::seconds(i64::from(p.lost_contact_after_s));
    let mut receipts: Vec<DateTime<Utc>> = reports.iter().map(|(_, r)| *r).collect();
    receipts.sort();
    let mut prev = plan.start;
    for r in receipts.iter().chain(std::iter::once(&plan.settle_until)) {
        if *r > prev + after + s.lost_contact_grace {
            out.push(Raised {
                kind: AlertKind::LostContact,
                zone: None,
                at: prev + after,
                late: false,
            });
            break;
        }
        prev = prev.max(*r);
    }
    out
}

/// Replays everyone at three sending lags (none, the most, random) and compares the model's
/// alerts with the plan's expectations.
fn assert_plan_raises_exactly_what_it_expects(plan: &Plan) {
    let zone_id = |r: ZoneRef| {
        let (d, k) = match r {
            ZoneRef::Jurisdiction => (1, 0),
            ZoneRef::School(k) => (2, k),
            ZoneRef::Home(k) => (3, k),
            ZoneRef::Victim(k) => (4, k),
            ZoneRef::LeaveDestination(k) => (5, k),
        };
        uuid::Uuid::from_u128(d << 64 | k as u128)
    };
    let mut refs: HashMap<uuid::Uuid, ZoneRef> = HashMap::new();
    for z in &plan.zones {
        refs.insert(zone_id(z.zone), z.zone);
    }
    for p in &plan.people {
        let who = crate::ledger::Person {
            supervisee_id: uuid::Uuid::from_u128(p.index as u128),
            officer_id: uuid::Uuid::nil(),
        };
        let expected = p.scenario.resolve(zone_id).expected(&who);
        for lag_mode in 0..4 {
            let raised = model(plan, p, &replay(plan, p, lag_mode));
            let ctx = format!(
                "supervisee {} ({}), lag mode {lag_mode}: raised {raised:?}, expected {expected:?}",
                p.index,
                Kind::of(&p.scenario.scenario).name()
            );
            assert_eq!(raised.len(), expected.len(), "{ctx}");
            for (r, e) in raised.iter().zip(&expected) {
                assert_eq!(r.kind, e.kind, "{ctx}");
                assert_eq!(r.zone, e.zone_id.map(|id| refs[&id]), "{ctx}");
                assert!(e.window.contains(r.at), "{ctx}");
                assert!(e.late.map_or(true, |l| l == r.late), "{ctx}");
                if e.kind != AlertKind::LostContact {
                    assert!(r.at <= plan.end() + plan.settings.lag, "{ctx}");
                }
            }
        }
    }
}

// ----------------------------------------------------------------------------------------
// Time of day.
// ----------------------------------------------------------------------------------------

#[test]
fn a_start_at_15_06_38_utc_is_07_30_for_the_movement_model_and_08_06_38_for_geoward() {
    let c = DayClock::new(7 * 3600 + 30 * 60, start());
    assert_eq!(c.movement_offset_s, -(7 * 3600 + 36 * 60 + 38));
    assert_eq!(c.geoward_offset_h, -7);
    assert_eq!(c.timezone, "Etc/GMT+7");
    assert_eq!(c.local(start()).time().to_string(), "08:06:38");
    let movement_local = start().with_timezone(&c.movement_offset());
    assert_eq!(movement_local.time().to_string(), "07:30:00");
}

#[test]
fn the_geoward_zone_rounds_the_offset_up_to_the_next_whole_hour_with_posix_signs() {
    let ls = 7 * 3600 + 30 * 60;
    let cases = [
        (at(23, 30, 0), 8 * 3600, 8, "Etc/GMT-8"),
        (at(7, 30, 0), 0, 0, "Etc/GMT"),
        (at(1, 0, 0), 6 * 3600 + 1800, 7, "Etc/GMT-7"),
        (at(17, 29, 59), -(9 * 3600 + 59 * 60 + 59), -9, "Etc/GMT+9"),
        (at(21, 30, 0), 10 * 3600, 10, "Etc/GMT-10"),
        (
            at(17, 30, 0) + Duration::milliseconds(999),
            14 * 3600,
            14,
            "Etc/GMT-14",
        ),
    ];
    for (t, off, h, zone) in cases {
        let c = DayClock::new(ls, t);
        assert_eq!((c.movement_offset_s, c.geoward_offset_h), (off, h), "{t}");
        assert_eq!(c.timezone, zone, "{t}");
        assert_eq!(super::clock::etc_offset_h(zone), Some(h));
        let local = c.local(t).time().num_seconds_from_midnight();
        assert!(
            (ls..ls + 3600).contains(&local),
            "{t}: geoward local {local}"
        );
    }
}

#[test]
fn the_plan_carries_the_offset_and_zone_and_every_person_moves_on_that_clock() {
    let s = Settings {
        devices: 12,
        ..ci()
    };
    let plan = &build(&s, start()).unwrap();
    assert_eq!(plan.local_offset_s, -(7 * 3600 + 36 * 60 + 38));
    assert_eq!(plan.timezone, "Etc/GMT+7");
    for p in &plan.people {
        assert_eq!(p.timezone, "Etc/GMT+7");
        assert_eq!(p.person.utc_offset().local_minus_utc(), plan.local_offset_s);
    }
    let json = serde_json::to_value(&plan.settings).unwrap();
    let back: Settings = serde_json::from_value(json).unwrap();
    assert_eq!(back, plan.settings, "settings, area included, round-trip");
}

#[test]
fn every_home_has_the_22_to_06_curfew_which_is_never_in_force_during_a_run() {
    let plan = ci_plan();
    let offset = super::clock::etc_offset_h(&plan.timezone).unwrap();
    for z in plan
        .zones
        .iter()
        .filter(|z| matches!(z.zone, ZoneRef::Home(_)))
    {
        let i = match z.zone {
            ZoneRef::Home(i) => i,
            _ => unreachable!(),
        };
        let open =
            schedule_intervals(z.schedule.as_ref(), offset, plan.start, plan.settle_until).unwrap();
        if plan.kind_of(i) == Some(Kind::BreakCurfew) {
            assert_eq!(open.len(), 1);
        } else {
            assert_eq!(z.schedule, Some(super::clock::curfew_schedule()));
            assert!(open.is_empty(), "{:?} in force", z.zone);
        }
    }
}

#[test]
fn a_run_reaching_geowards_night_is_refused_and_twelve_hours_from_07_30_is_not() {
    let long = Settings {
        devices: 11,
        duration: Duration::hours(12),
        interval: Duration::seconds(60),
        ..Settings::default()
    };
    // 07:30 for the movement model, at most 08:30 for geoward: 12 h end before 21:00.
    for t in [start(), at(23, 59, 59), at(7, 30, 0)] {
        assert!(build(&long, t).is_ok(), "{t}");
    }
    let evening = Settings {
        local_start_s: 18 * 3600,
        duration: Duration::hours(3),
        ..long.clone()
    };
    let e = build(&evening, start()).unwrap_err();
    assert!(e.to_string().contains("night"), "{e}");
    let small_hours = Settings {
        local_start_s: 3 * 3600,
        duration: Duration::minutes(5),
        ..long
    };
    assert!(build(&small_hours, start()).is_err());
}

#[test]
fn ticks_spread_device_phases_evenly_over_one_interval_to_the_millisecond() {
    let s = Settings {
        devices: 3,
        interval: Duration::seconds(10),
        ..ci()
    };
    let t0 = start() + Duration::nanoseconds(123_456_789);
    let base = start() + Duration::milliseconds(123);
    assert_eq!(tick_time(&s, t0, 0, 0), base);
    assert_eq!(tick_time(&s, t0, 1, 0), base + Duration::milliseconds(3333));
    assert_eq!(
        tick_time(&s, t0, 2, 5),
        base + Duration::milliseconds(6666 + 50_000)
    );
    let ticks = Ticks::of(&s, t0, 2);
    // 60 s run, phase 6.666 s: ticks at 6.666, 16.666, … 56.666.
    assert_eq!(ticks.count(), 6);
    assert_eq!(ticks.first_at_or_after(base), Some(0));
    assert_eq!(ticks.first_after(ticks.at(2)), Some(3));
    assert_eq!(ticks.first_at_or_after(base + Duration::seconds(57)), None);
    // Never panics, even far out.
    let _ = tick_time(&s, t0, usize::MAX, u64::MAX);
}

// ----------------------------------------------------------------------------------------
// Settings.
// ----------------------------------------------------------------------------------------

#[test]
fn invalid_settings_are_refused_with_a_clear_message() {
    let base = ci();
    let cases: Vec<(Settings, &str)> = vec![
        (
            Settings {
                interval: Duration::zero(),
                ..base.clone()
            },
            "interval",
        ),
        (
            Settings {
                interval: Duration::seconds(-1),
                ..base.clone()
            },
            "interval",
        ),
        (
            Settings {
                interval: Duration::microseconds(1_000_500),
                ..base.clone()
            },
            "interval",
        ),
        (
            Settings {
                duration: Duration::zero(),
                ..base.clone()
            },
            "duration",
        ),
        (
            Settings {
                duration: Duration::hours(13),
                ..base.clone()
            },
            "duration",
        ),
        (
            Settings {
                devices: 0,
                ..base.clone()
            },
            "devices",
        ),
        (
            Settings {
                officers: 0,
                ..base.clone()
            },
            "officers",
        ),
        (
            Settings {
                scenario_share: -0.1,
                ..base.clone()
            },
            "scenario_share",
        ),
        (
            Settings {
                scenario_share: 1.5,
                ..base.clone()
            },
            "scenario_share",
        ),
        (
            Settings {
                scenario_share: f64::NAN,
                ..base.clone()
            },
            "scenario_share",
        ),
        (
            Settings {
                scenario_share: f64::INFINITY,
                ..base.clone()
            },
            "scenario_share",
        ),
        (
            Settings {
                lag: Duration::seconds(-1),
                ..base.clone()
            },
            "lag",
        ),
        (
            Settings {
                no_location_after: Duration::seconds(4),
                ..base.clone()
            },
            "no_location_after",
        ),
        (
            Settings {
                low_battery_pct: 95,
                ..base.clone()
            },
            "low_battery_pct",
        ),
        (
            Settings {
                local_start_s: 86_400,
                ..base.clone()
            },
            "local_start_s",
        ),
        (
            Settings {
                lost_contact_after_s: 0,
                ..base.clone()
            },
            "lost_contact_after_s",
        ),
        (
            Settings {
                area: movement::Area {
                    centre: (f64::NAN, 1.0),
                    ..base.area
                },
                ..base.clone()
            },
            "centre",
        ),
        (
            Settings {
                area: movement::Area {
                    poor_fix_share: 2.0,
                    ..base.area
                },
                ..base.clone()
            },
            "poor_fix_share",
        ),
    ];
    for (s, word) in cases {
        match build(&s, start()) {
            Err(PlanError::InvalidSettings(m)) => assert!(m.contains(word), "{word}: {m}"),
            other => panic!("{word}: {other:?}"),
        }
    }
}

#[test]
fn a_start_out_of_range_or_a_threshold_that_loses_everyone_is_refused() {
    let far = DateTime::<Utc>::MAX_UTC;
    assert!(matches!(
        build(&ci(), far),
        Err(PlanError::InvalidSettings(_))
    ));
    assert!(matches!(
        build(&ci(), DateTime::<Utc>::MIN_UTC),
        Err(PlanError::InvalidSettings(_))
    ));
    let _ = tick_time(&ci(), far, 7, u64::MAX);
    let short = Settings {
        lost_contact_after_s: 1,
        lost_contact_grace: Duration::zero(),
        ..ci()
    };
    let e = build(&short, start()).unwrap_err();
    assert!(e.to_string().contains("lost_contact_after_s"), "{e}");
}

#[test]
fn default_settings_are_geowards_defaults() {
    let s = Settings::default();
    assert_eq!(
        (
            s.confirm_fixes,
            s.lost_contact_after_s,
            s.silent_lost_contact_after_s,
            s.low_battery_pct
        ),
        (2, 600, 60, 20)
    );
    assert_eq!(s.lost_contact_grace, Duration::seconds(60));
    assert_eq!(s.late_after, Duration::seconds(120));
    assert_eq!(s.no_location_after, Duration::seconds(600));
    assert_eq!(
        (s.lag, s.interval, s.duration),
        (
            Duration::seconds(5),
            Duration::seconds(10),
            Duration::seconds(300)
        )
    );
    assert_eq!(
        (s.local_start_s, s.officers, s.schools, s.devices, s.seed),
        (27_000, 4, 40, 1000, 1)
    );
    assert!(s.validate().is_ok() && Settings::ci().validate().is_ok());
}

// ----------------------------------------------------------------------------------------
// Whole plans.
// ----------------------------------------------------------------------------------------

#[test]
fn a_ci_sized_run_places_every_scenario_kind_and_raises_exactly_what_it_expects() {
    let plan = ci_plan();
    assert!(plan.skipped.is_empty(), "skipped {:?}", plan.skipped);
    assert_eq!(kinds(plan).len(), 11);
    assert_eq!(plan.people.len(), 300);
    let n = plan
        .people
        .iter()
        .filter(|p| p.scenario.scenario != ledger::Scenario::Compliant)
        .count();
    assert_eq!(n, 60, "a fifth of 300");
    assert_eq!(plan.settle_until, plan.end() + Duration::seconds(5));
    assert_plan_raises_exactly_what_it_expects(plan);
}

#[test]
fn a_default_server_run_places_every_scenario_kind_and_raises_exactly_what_it_expects() {
    let plan = default_plan();
    assert!(plan.skipped.is_empty(), "skipped {:?}", plan.skipped);
    assert_eq!(kinds(plan).len(), 11);
    // Only the scenario people: replaying 2000 people is slow in debug builds.
    let mut small = plan.clone();
    small
        .people
        .retain(|p| p.scenario.scenario != ledger::Scenario::Compliant || p.index % 50 == 0);
    assert_plan_raises_exactly_what_it_expects(&small);
}

#[test]
fn the_same_settings_and_start_give_the_same_plan() {
    let s = Settings {
        devices: 60,
        ..ci()
    };
    let a = serde_json::to_string(&build(&s, start()).unwrap()).unwrap();
    let b = serde_json::to_string(&build(&s, start()).unwrap()).unwrap();
    assert_eq!(a, b);
    let other =
        serde_json::to_string(&build(&Settings { seed: 2, ..s }, start()).unwrap()).unwrap();
    assert_ne!(a, other);
}

#[test]
fn every_compliant_person_keeps_clear_of_every_zone() {
    let plan = ci_plan();
    let zones = zone_map(plan);
    let lag = plan.settings.lag;
    for p in plan
        .people
        .iter()
        .filter(|p| p.scenario.scenario == ledger::Scenario::Compliant)
    {
        assert!(p.person.excursions().is_empty());
        assert_eq!(
            p.device,
            DevicePlan::ordinary(p.device.noise_seed, p.device.battery_start_pct)
        );
        let ticks = Ticks::of(&plan.settings, plan.start, p.index);
        let shapes: Vec<(ZoneRef, &ZoneSpec, Shape)> = p
            .zones
            .iter()
            .map(|r| (*r, zones[r], shape(zones[r])))
            .collect();
        for k in 0..ticks.count() {
            for t in [ticks.at(k), ticks.at(k) + lag] {
                let q = p.person.position_at(t).point();
                for (r, z, sh) in &shapes {
                    let (_, hi) = sh.bounds(q);
                    let d = if hi <= -(CELL_ACC_MAX_M + MARGIN_M) {
                        hi
                    } else {
                        sh.signed_distance(q)
                    };
                    match (z.kind.as_str(), r) {
                        ("exclusion", _) => {
                            assert!(d >= ACC_MAX_M + MARGIN_M, "{} {r:?} {d}", p.index)
                        }
                        (_, ZoneRef::Jurisdiction) => {
                            assert!(-d >= CELL_ACC_MAX_M + MARGIN_M, "{} {d}", p.index)
                        }
                        _ => {} // the home's curfew is not in force
                    }
                }
            }
        }
    }
}

#[test]
fn every_fourth_compliant_person_is_barred_from_schools_when_a_clear_route_exists() {
    let plan = ci_plan();
    let compliant: Vec<&PersonPlan> = plan
        .people
        .iter()
        .filter(|p| p.scenario.scenario == ledger::Scenario::Compliant)
        .collect();
    let zones = zone_map(plan);
    let mut barred = 0;
    for (n, p) in compliant.iter().enumerate() {
        let schools = p
            .zones
            .iter()
            .filter(|z| matches!(z, ZoneRef::School(_)))
            .count();
        assert!(
            schools == 0 || (n % 4 == 0 && schools == plan.settings.schools),
            "{}",
            p.index
        );
        if schools > 0 {
            barred += 1;
            for r in p.zones.iter().filter(|z| matches!(z, ZoneRef::School(_))) {
                let c = match shape(zones[r]) {
                    Shape::Circle { centre, .. } => centre,
                    _ => unreachable!(),
                };
                assert!(p.person.distance_from_route_m(c) >= SCHOOL_RADIUS_M + 400.0);
            }
        }
    }
    assert!(
        barred * 4 >= compliant.len() / 2,
        "{barred} of {} barred",
        compliant.len()
    );
    for p in plan
        .people
        .iter()
        .filter(|p| p.scenario.scenario != ledger::Scenario::Compliant)
    {
        let barred = p.zones.iter().any(|z| matches!(z, ZoneRef::School(_)));
        assert_eq!(
            barred,
            Kind::of(&p.scenario.scenario) == Kind::PassThroughSchoolZone
        );
    }
}

#[test]
fn zones_are_the_county_the_schools_and_each_persons_home_and_victims_home() {
    let plan = ci_plan();
    let z = zone_map(plan);
    let county = z[&ZoneRef::Jurisdiction];
    assert_eq!(
        (
            county.kind.as_str(),
            county.shared,
            county.schedule.is_none()
        ),
        ("inclusion", true, true)
    );
    let ring = county.geometry["coordinates"][0].as_array().unwrap();
    assert_eq!(ring.len(), 65);
    assert_eq!(ring[0], ring[64]);
    for k in 0..plan.settings.schools {
        let s = z[&ZoneRef::School(k)];
        assert_eq!((s.kind.as_str(), s.shared), ("exclusion", true));
        assert_eq!(s.geometry["radius_m"], 100.0);
        let c = (
            s.geometry["coordinates"][1].as_f64().unwrap(),
            s.geometry["coordinates"][0].as_f64().unwrap(),
        );
        assert!(geo::distance_m(plan.settings.area.centre, c) <= SCHOOL_SPREAD_M + 1e-6);
    }
    for p in &plan.people {
        let (home, victim) = (z[&ZoneRef::Home(p.index)], z[&ZoneRef::Victim(p.index)]);
        assert_eq!(home.kind, "inclusion");
        assert_eq!(home.name, format!("Home of supervisee {}", p.index));
        assert_eq!(victim.kind, "exclusion");
        assert_eq!(victim.geometry["radius_m"], 200.0);
        let c = (
            victim.geometry["coordinates"][1].as_f64().unwrap(),
            victim.geometry["coordinates"][0].as_f64().unwrap(),
        );
        if !Kind::of(&p.scenario.scenario).victim_first() {
            assert!(
                super::zones::distance_to_segments(c, &super::zones::track_segments(&p.person))
                    >= 600.0
            );
        } else {
            assert!(p.person.distance_from_route_m(c) >= 600.0);
        }
        assert!(p.zones.starts_with(&[
            ZoneRef::Jurisdiction,
            ZoneRef::Home(p.index),
            ZoneRef::Victim(p.index)
        ]));
        assert_eq!(p.officer, p.index % plan.settings.officers);
        assert!(z.values().all(|z| z.confirm_fixes == 2));
    }
    assert_eq!(plan.order_starts, plan.start);
    assert_eq!(plan.order_ends, plan.start + Duration::days(30));
}

// ----------------------------------------------------------------------------------------
// Each scenario: the true track really breaks (or keeps) its rule.
// ----------------------------------------------------------------------------------------

fn the(plan: &Plan, kind: Kind) -> &PersonPlan {
    plan.people
        .iter()
        .find(|p| Kind::of(&p.scenario.scenario) == kind)
        .expect("placed")
}

fn window(p: &PersonPlan) -> ledger::Window {
    super::check::window_of(&p.scenario.scenario).unwrap()
}

fn victim_of(plan: &Plan, p: &PersonPlan) -> (LatLon, f64) {
    match shape(zone_map(plan)[&ZoneRef::Victim(p.index)]) {
        Shape::Circle { centre, radius } => (centre, radius),
        _ => unreachable!(),
    }
}

#[test]
fn entering_the_victims_home_is_confidently_inside_at_the_deciding_tick_and_outside_at_start() {
    for plan in [ci_plan(), default_plan()] {
        let p = the(plan, Kind::EnterExclusionZone);
        let (c, r) = victim_of(plan, p);
        let w = window(p);
        let lag = plan.settings.lag;
        let depth = |t| r - geo::distance_m(p.person.position_at(t).point(), c);
        assert!(depth(plan.start + lag) <= -50.0);
        // The last confirming tick (window end minus lag) and the one before are deep inside.
        let ticks = Ticks::of(&plan.settings, plan.start, p.index);
        let k = ticks.first_at_or_after(w.to - lag).unwrap();
        assert_eq!(ticks.at(k), w.to - lag);
        for j in [k - 1, k] {
            assert!(depth(ticks.at(j)) >= 30.0 && depth(ticks.at(j) + lag) >= 30.0);
        }
        // Nothing is inside at all before the window opens.
        assert!(depth(w.from - Duration::milliseconds(1)) <= 0.0 || w.from > ticks.at(0));
    }
}

#[test]
fn leaving_the_county_is_confidently_outside_its_polygon_at_the_deciding_tick() {
    let plan = ci_plan();
    let p = the(plan, Kind::LeaveJurisdiction);
    let county = shape(zone_map(plan)[&ZoneRef::Jurisdiction]);
    let w = window(p);
    let lag = plan.settings.lag;
    let out = |t| county.signed_distance(p.person.position_at(t).point());
    assert!(out(plan.start + lag) <= -50.0);
    assert!(out(w.to - lag) >= 30.0);
    assert!(out(w.from - Duration::milliseconds(1)) <= 0.0);
    assert!(out(plan.end()) > 30.0, "still out at the end");
}

#[test]
fn the_curfew_breaker_is_700_m_from_home_when_their_one_hour_window_opens() {
    let plan = default_plan();
    let p = the(plan, Kind::BreakCurfew);
    let home = zone_map(plan)[&ZoneRef::Home(p.index)];
    let w = window(p);
    assert_eq!(w.from.timestamp() % 60, 0, "opens on a whole minute");
    assert!(w.from >= plan.start + plan.settings.interval * 3);
    let offset = super::clock::etc_offset_h(&p.timezone).unwrap();
    let open = schedule_intervals(
        home.schedule.as_ref(),
        offset,
        plan.start,
        plan.settle_until,
    )
    .unwrap();
    assert_eq!(open, vec![(w.from, w.from + Duration::hours(1))]);
    let ticks = Ticks::of(&plan.settings, plan.start, p.index);
    for k in 0..ticks.count() {
        let d = geo::distance_m(p.person.position_at(ticks.at(k)).point(), p.person.home());
        assert!((d - 700.0).abs() < 1.0, "{d}");
    }
}

#[test]
fn the_pass_through_crosses_a_school_between_two_sparse_fixes_neither_near_it() {
    for plan in [ci_plan(), default_plan()] {
        let p = the(plan, Kind::PassThroughSchoolZone);
        let Some(ZoneRef::School(s)) = p.scenario.zone else {
            panic!()
        };
        let (c, r) = match shape(zone_map(plan)[&ZoneRef::School(s)]) {
            Shape::Circle { centre, radius } => (centre, radius),
            _ => unreachable!(),
        };
        for lag_mode in 0..4 {
            let fixes: Vec<(DateTime<Utc>, LatLon)> = replay(plan, p, lag_mode)
                .into_iter()
                .filter_map(|(r, _)| r.position.map(|q| (r.ts, (q.lat, q.lon))))
                .collect();
            let mut crossings = 0;
            for w in fixes.windows(2) {
                assert!(geo::distance_m(w[1].1, c) >= r + 30.0);
                if geo::distance_to_segment_m(c, w[0].1, w[1].1) < r - 30.0 {
                    crossings += 1;
                    assert!(w[1].0 - w[0].0 <= Duration::seconds(CROSSING_MAX_GAP_S));
                    assert!(window(p).contains(w[1].0));
                }
            }
            assert_eq!(crossings, 1);
        }
    }
}

#[test]
fn the_silent_tag_stops_on_a_tick_and_its_window_holds_the_last_receipt_plus_the_allowed_silence() {
    for plan in [ci_plan(), default_plan()] {
        let p = the(plan, Kind::GoSilent);
        let s = &plan.settings;
        let t = p.device.silent_from.unwrap();
        let ticks = Ticks::of(s, plan.start, p.index);
        assert_eq!(ticks.at(ticks.first_at_or_after(t).unwrap()), t);
        assert_eq!(p.lost_contact_after_s, s.silent_lost_contact_after_s);
        let w = window(p);
        let after = Duration::seconds(i64::from(p.lost_contact_after_s));
        assert!(w.from <= t - s.interval + after && t - s.interval + s.lag + after < w.to);
        assert!(w.to + s.lost_contact_grace + Duration::seconds(SWEEP_S) <= plan.settle_until);
        for q in &plan.people {
            if Kind::of(&q.scenario.scenario) != Kind::GoSilent {
                assert!(q.lost_contact_after_s >= s.lost_contact_after_s);
            }
        }
    }
}

#[test]
fn strap_battery_and_jump_happen_on_a_tick_with_a_window_of_the_lag() {
    let plan = ci_plan();
    let s = &plan.settings;
    for kind in [Kind::StrapTamper, Kind::LowBattery, Kind::LocationJump] {
        let p = the(plan, kind);
        let d = &p.device;
        let t = d.strap_open_at.or(d.battery_drop_at).or(d.jump_at).unwrap();
        assert_eq!(window(p), ledger::Window::new(t, t + s.lag));
        let ticks = Ticks::of(s, plan.start, p.index);
        assert_eq!(ticks.at(ticks.first_at_or_after(t).unwrap()), t);
        assert!(t > ticks.at(0) + s.lag, "a report comes before");
    }
    let b = &the(plan, Kind::LowBattery).device;
    assert!(
        b.battery_start_pct >= s.low_battery_pct + 10 && b.battery_low_pct == s.low_battery_pct - 5
    );
    for p in plan
        .people
        .iter()
        .filter(|p| Kind::of(&p.scenario.scenario) != Kind::LowBattery)
    {
        assert!(
            p.device.battery_start_pct >= s.low_battery_pct && p.device.battery_drop_at.is_none()
        );
    }
}

#[test]
fn the_buffered_entry_is_decided_late_well_inside_an_offline_gap_shorter_than_lost_contact() {
    for plan in [ci_plan(), default_plan()] {
        let p = the(plan, Kind::OfflineThenBufferedUpload);
        let s = &plan.settings;
        let off = p.device.offline.unwrap();
        let w = window(p);
        assert!(off.from <= w.from && w.to + s.late_after + s.interval * 2 <= off.to);
        assert!(off.to - off.from < Duration::seconds(i64::from(p.lost_contact_after_s)));
        let (c, r) = victim_of(plan, p);
        let depth = |t| r - geo::distance_m(p.person.position_at(t).point(), c);
        assert!(depth(w.to - s.lag) >= 30.0);
        assert!(depth(off.to) < 0.0, "out again before coming back online");
        assert!(depth(off.from) < 0.0, "outside when going offline");
    }
}

#[test]
fn approved_leave_leaves_the_county_inside_a_destination_with_two_km_to_spare() {
    let plan = ci_plan();
    let p = the(plan, Kind::ApprovedLeave);
    let leave = p.leave.as_ref().unwrap();
    assert_eq!(leave.starts_at, plan.start - Duration::minutes(10));
    assert_eq!(leave.ends_at, plan.end() + Duration::minutes(10));
    let dest = Shape::from_geometry(leave.destination.as_ref().unwrap()).unwrap();
    let county = shape(zone_map(plan)[&ZoneRef::Jurisdiction]);
    let mut t = leave.starts_at;
    while t <= leave.ends_at {
        assert!(dest.signed_distance(p.person.position_at(t).point()) <= -2000.0);
        t += Duration::seconds(1);
    }
    assert!(county.signed_distance(p.person.position_at(plan.end()).point()) > 0.0);
    assert!(county.signed_distance(p.person.position_at(plan.start).point()) < 0.0);
    assert_eq!(p.scenario.zone, None);
}

#[test]
fn border_jitter_stays_on_the_border_and_never_goes_a_metre_inside() {
    for plan in [ci_plan(), default_plan()] {
        let p = the(plan, Kind::BorderJitter);
        let s = &plan.settings;
        let (c, r) = victim_of(plan, p);
        let w = window(p);
        assert!(w.to - w.from >= s.interval * 5 && w.to - w.from < s.no_location_after);
        let e = p.person.excursions()[0];
        let mut t = e.depart;
        while t <= e.rejoin {
            let d = geo::distance_m(p.person.position_at(t).point(), c);
            assert!(d >= r - 1.0, "{d}");
            if w.contains(t) {
                assert!((d - r).abs() < 0.01);
            }
            t += Duration::milliseconds(250);
        }
    }
}

// ----------------------------------------------------------------------------------------
// Properties.
// ----------------------------------------------------------------------------------------

fn settings_strategy() -> impl Strategy<Value = Settings> {
    (
        any::<u64>(),
        1usize..400,
        1i64..=120,
        30i64..=7200,
        prop_oneof![Just(0.0), Just(1.0), 0.0f64..=1.0],
        0u32..4,
        0i64..=10,
        0usize..60,
    )
        .prop_map(
            |(seed, devices, interval, duration, share, confirm, lag, schools)| Settings {
                seed,
                devices,
                interval: Duration::seconds(interval),
                duration: Duration::seconds(duration),
                scenario_share: share,
                confirm_fixes: confirm,
                lag: Duration::seconds(lag),
                schools,
                ..ci()
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    #[test]
    fn build_never_panics_and_every_plan_it_returns_passes_its_checks(
        s in settings_strategy(), offset_s in 0i64..86_400,
    ) {
        let t = start() + Duration::seconds(offset_s);
        match build(&s, t) {
            Ok(plan) => {
                prop_assert!(check(&plan).is_ok());
                prop_assert_eq!(plan.people.len(), s.devices);
                if s.devices <= 40 {
                    let again = build(&s, t).map(|p| serde_json::to_string(&p).unwrap());
                    prop_assert_eq!(again.ok(), Some(serde_json::to_string(&plan).unwrap()));
                }
                let local = plan.start.with_timezone(&chrono::FixedOffset::east_opt(plan.local_offset_s).unwrap());
                prop_assert_eq!(local.time().num_seconds_from_midnight(), s.local_start_s);
                if s.scenario_share > 0.0 && s.devices >= 11 {
                    let placed = kinds(&plan);
                    for k in Kind::SCENARIOS {
                        prop_assert!(placed.contains(&k) || plan.skipped.iter().any(|n| n == k.name()));
                    }
                }
            }
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }

    #[test]
    fn any_settings_give_a_plan_or_an_error_never_a_panic(
        devices in 0usize..30, interval_ms in -2000i64..200_000, duration_ms in -1000i64..100_000,
        share in prop_oneof![Just(f64::NAN), Just(-1.0), Just(2.0), 0.0f64..=1.0],
        officers in 0usize..3, lag_ms in -100i64..20_000, confirm in 0u32..200,
        low in any::<u8>(), local in 0u32..90_000, silent in 0u32..100, no_loc in 0i64..2000,
    ) {
        let s = Settings {
            devices, officers, scenario_share: share, confirm_fixes: confirm,
            interval: Duration::milliseconds(interval_ms),
            duration: Duration::milliseconds(duration_ms),
            lag: Duration::milliseconds(lag_ms),
            low_battery_pct: low, local_start_s: local,
            silent_lost_contact_after_s: silent,
            no_location_after: Duration::seconds(no_loc),
            ..ci()
        };
        let _ = build(&s, start());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(10))]
    #[test]
    fn small_random_runs_raise_exactly_what_they_expect_at_any_sending_lag(
        seed in any::<u64>(), devices in 11usize..30, interval in 1i64..=60,
        ticks in 20i64..300, confirm in 1u32..4, lag in 0i64..=6, offset_s in 0i64..86_400,
        silent in 5u32..90, grace in 0i64..30, late in 5i64..200, no_loc in 200i64..900,
    ) {
        let s = Settings {
            seed, devices, confirm_fixes: confirm, scenario_share: 1.0, schools: 60,
            interval: Duration::seconds(interval),
            duration: Duration::seconds((interval * ticks).min(7200)),
            lag: Duration::seconds(lag),
            silent_lost_contact_after_s: silent,
            lost_contact_grace: Duration::seconds(grace),
            late_after: Duration::seconds(late),
            no_location_after: Duration::seconds(no_loc),
            ..ci()
        };
        if let Ok(plan) = build(&s, start() + Duration::seconds(offset_s)) {
            assert_plan_raises_exactly_what_it_expects(&plan);
        }
    }
}

#[path = "plan_spread_tests.rs"]
mod spread;
