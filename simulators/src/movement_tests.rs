//! Tests of the movement model: the day's shape, honest accuracy, overrides, and the
//! properties geoward's rules rely on (no false location jumps).

use super::*;
use chrono::{NaiveDate, TimeZone, Timelike};
use proptest::prelude::*;

/// Geoward's location-jump threshold.
const JUMP_KMH: f64 = 300.0;

/// `h:m` local time on 2026-11-25 (+1 day per 24 h beyond), as UTC.
fn local(p: &Person, h: u32, m: u32) -> DateTime<Utc> {
    let day = NaiveDate::from_ymd_opt(2026, 11, 25)
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap();
    let midnight = p
        .utc_offset()
        .from_local_datetime(&day)
        .unwrap()
        .with_timezone(&Utc);
    midnight + Duration::hours(i64::from(h)) + Duration::minutes(i64::from(m))
}

fn person(seed: u64) -> Person {
    Person::generate(seed, &Area::default())
}

fn seconds(s: f64) -> Duration {
    Duration::milliseconds((s * 1000.0) as i64)
}

fn fixes(p: &Person, start: DateTime<Utc>, hours: i64, interval_s: i64, seed: u64) -> Vec<Fix> {
    let mut rng = StdRng::seed_from_u64(seed);
    fix_times(
        start,
        start + Duration::hours(hours),
        Duration::seconds(interval_s),
    )
    .map(|t| p.fix_at(t, &mut rng))
    .collect()
}

/// Any of the three overrides, somewhere within ~10 km of home, during the day.
fn some_override(p: &Person, kind: u8, minute: u32, n: f64, e: f64) -> Override {
    let to = geo::offset(p.home().0, p.home().1, n, e);
    let start = local(p, 0, 0) + Duration::minutes(i64::from(minute));
    match kind % 3 {
        0 => Override::Detour {
            start,
            to,
            stay: Duration::minutes(40),
        },
        1 => Override::Stay {
            at: to,
            from: start,
            until: start + Duration::minutes(90),
        },
        _ => Override::Pass {
            through: to,
            at: start,
            speed_kmh: MAX_PASS_SPEED_KMH,
            length_m: 2000.0,
        },
    }
}

#[test]
fn a_generated_person_works_1_to_8_km_from_home_along_2_to_4_legs() {
    let area = Area::default();
    let mut bent = 0;
    for seed in 0..300 {
        let p = Person::generate(seed, &area);
        assert!((3..=5).contains(&p.route().len()), "seed {seed}");
        assert!(geo::distance_m(area.centre, p.home()) <= area.home_radius_m + 1e-6);
        let straight = geo::distance_m(p.home(), p.work());
        assert!(
            (1000.0 - 1e-6..=8000.0 + 1e-6).contains(&straight),
            "seed {seed}: {straight}"
        );
        let path = path_length(p.route());
        assert!(path >= straight - 1e-6);
        bent += usize::from(path > 1.02 * straight);
        assert!(p.mode() == TravelMode::Driving || p.commute_s() <= MAX_COMMUTE_MIN * 60.0);
        let (home, work) = p.leave_times();
        let (h0, h1) = (
            NaiveTime::from_hms_opt(7, 0, 0).unwrap(),
            NaiveTime::from_hms_opt(8, 30, 0).unwrap(),
        );
        assert!(home >= h0 && home <= h1, "seed {seed}: leaves home {home}");
        let (w0, w1) = (
            NaiveTime::from_hms_opt(17, 0, 0).unwrap(),
            NaiveTime::from_hms_opt(18, 30, 0).unwrap(),
        );
        assert!(work >= w0 && work <= w1, "seed {seed}: leaves work {work}");
    }
    assert!(bent > 250, "routes are not straight lines: {bent}/300 bent");
    let modes: Vec<TravelMode> = (0..300).map(|s| person(s).mode()).collect();
    assert!(
        TravelMode::ALL.iter().all(|m| modes.contains(m)),
        "every mode occurs"
    );
}

#[test]
fn travel_modes_walk_cycle_and_drive_at_their_average_speeds() {
    let kmh: Vec<f64> = TravelMode::ALL.iter().map(|m| m.speed_kmh()).collect();
    assert_eq!(kmh, vec![5.0, 15.0, 40.0]);
    assert!((TravelMode::Driving.speed_mps() - 40.0 / 3.6).abs() < 1e-12);
}

#[test]
fn the_day_runs_home_commute_work_commute_home_in_local_time() {
    let p = person(7);
    let (lh, lw) = p.leave_times();
    let at = |t: DateTime<Utc>| p.position_at(t);
    // 03:00 in Shanghai is 19:00 UTC the day before.
    let three = local(&p, 3, 0);
    assert_eq!(three, Utc.with_ymd_and_hms(2026, 11, 24, 19, 0, 0).unwrap());
    assert_eq!(at(three).activity, Activity::AtHome);
    assert_eq!(at(three).point(), p.home());
    let half = seconds(p.commute_s() / 2.0);
    let leave_home = local(&p, 0, 0) + seconds(f64::from(lh.num_seconds_from_midnight()));
    let to_work = at(leave_home + half);
    assert_eq!(to_work.activity, Activity::ToWork);
    assert!(p.distance_from_route_m(to_work.point()) < 0.01);
    assert!(geo::distance_m(to_work.point(), p.home()) > 100.0);
    assert_eq!(at(local(&p, 12, 0)).activity, Activity::AtWork);
    assert_eq!(at(local(&p, 12, 0)).point(), p.work());
    let leave_work = local(&p, 0, 0) + seconds(f64::from(lw.num_seconds_from_midnight()));
    assert_eq!(at(leave_work + half).activity, Activity::ToHome);
    assert_eq!(at(local(&p, 22, 0)).activity, Activity::AtHome);
    assert_eq!(at(local(&p, 22, 0)).point(), p.home());
    // Every day alike.
    assert_eq!(at(leave_home + half + Duration::days(3)), to_work);
}

#[test]
fn fixes_come_from_wifi_indoors_gps_outdoors_and_cell_towers_when_poor() {
    let mut rng = StdRng::seed_from_u64(1);
    let clean = Area {
        poor_fix_share: 0.0,
        ..Area::default()
    };
    let p = Person::generate(3, &clean);
    let night = local(&p, 2, 0);
    for i in 0..500 {
        let f = p.fix_at(night + Duration::seconds(i), &mut rng);
        assert_eq!(f.src, FixSource::Wifi);
        assert!((20.0..=40.0).contains(&f.acc_m));
        assert_eq!(f.acc_m, (f.acc_m * 10.0).round() / 10.0, "to 0.1 m");
    }
    let mut p = p;
    let e = p.add(some_override(&p, 1, 120, 500.0, 500.0)).unwrap();
    for i in 0..500 {
        let f = p.fix_at(e.arrive + Duration::seconds(i), &mut rng);
        assert_eq!((f.src, f.src.as_str()), (FixSource::Gps, "gps"));
        assert!((5.0..=15.0).contains(&f.acc_m));
    }
    let poor = Person::generate(
        3,
        &Area {
            poor_fix_share: 1.0,
            ..Area::default()
        },
    );
    for i in 0..500 {
        let f = poor.fix_at(night + Duration::seconds(i), &mut rng);
        assert_eq!(f.src, FixSource::Cell);
        assert!((300.0..=1500.0).contains(&f.acc_m));
    }
    assert_eq!(serde_json::to_value(FixSource::Wifi).unwrap(), "wifi");
}

#[test]
fn about_two_percent_of_fixes_come_from_cell_towers_by_default() {
    let p = person(11);
    let all = fixes(&p, local(&p, 0, 0), 24, 4, 5);
    let cell = all.iter().filter(|f| f.src == FixSource::Cell).count();
    let share = cell as f64 / all.len() as f64;
    assert!((0.015..=0.025).contains(&share), "{cell} of {}", all.len());
}

#[test]
fn a_detour_goes_to_the_point_at_the_modes_speed_stays_and_comes_back() {
    let mut p = person(21);
    let start = local(&p, 12, 0);
    let to = geo::offset(p.work().0, p.work().1, 3000.0, -2000.0);
    let e = p
        .add(Override::Detour {
            start,
            to,
            stay: Duration::minutes(45),
        })
        .unwrap();
    let v = p.mode().speed_mps();
    assert_eq!((e.depart, e.depart_from), (start, p.work()));
    let travel = (e.arrive - e.depart).num_milliseconds() as f64 / 1000.0;
    assert!((travel - geo::distance_m(p.work(), to) / v).abs() < 0.002);
    assert_eq!(e.leave - e.arrive, Duration::minutes(45));
    for t in fix_times(
        e.arrive,
        e.leave + Duration::milliseconds(1),
        Duration::minutes(5),
    ) {
        assert_eq!(p.position_at(t).point(), to);
        assert_eq!(p.position_at(t).activity, Activity::OnExcursion);
    }
    let back = (e.rejoin - e.leave).num_milliseconds() as f64 / 1000.0;
    assert!(geo::distance_m(to, e.rejoin_at) <= v * back + 1e-6);
    assert_eq!(p.position_at(e.rejoin).activity, Activity::AtWork);
    assert_eq!(p.excursions(), &[e]);
}

#[test]
fn a_stay_holds_the_person_at_the_point_for_the_whole_window() {
    // Out at a friend's during the night: a curfew violation for the ledger.
    let mut p = person(4);
    let friend = geo::offset(p.home().0, p.home().1, -2500.0, 1500.0);
    let (from, until) = (local(&p, 22, 0), local(&p, 23, 30));
    let e = p
        .add(Override::Stay {
            at: friend,
            from,
            until,
        })
        .unwrap();
    assert_eq!((e.arrive, e.leave), (from, until));
    for t in fix_times(
        from,
        until + Duration::milliseconds(1),
        Duration::minutes(10),
    ) {
        assert_eq!(p.position_at(t).point(), friend);
    }
    let v = p.mode().speed_mps();
    let out = (from - e.depart).num_milliseconds() as f64 / 1000.0;
    assert!(geo::distance_m(p.home(), friend) <= v * out + 1e-6);
    assert!(
        out <= geo::distance_m(p.home(), friend) / v + 0.01,
        "leaves no earlier than needed"
    );
    assert_eq!(
        p.position_at(e.depart - Duration::seconds(1)).activity,
        Activity::AtHome
    );
    assert_eq!(p.position_at(e.rejoin).activity, Activity::AtHome);
    assert_eq!(e.rejoin_at, p.home());
}

#[test]
fn a_pass_crosses_the_point_at_the_instant_and_speed_given() {
    let mut p = person(9);
    let school = geo::offset(p.home().0, p.home().1, 1500.0, 1500.0);
    let at = local(&p, 14, 0);
    let o = Override::Pass {
        through: school,
        at,
        speed_kmh: 36.0,
        length_m: 1000.0,
    };
    let e = p.add(o).unwrap();
    assert!(geo::distance_m(p.position_at(at).point(), school) < 0.01);
    assert_eq!(e.leave - e.arrive, Duration::seconds(100), "1 km at 10 m/s");
    // Inside a 100 m circle for exactly 10 s either side.
    let near = |s: i64| geo::distance_m(p.position_at(at + Duration::seconds(s)).point(), school);
    assert!(near(-9) < 100.0 && near(9) < 100.0);
    assert!(near(-11) > 100.0 && near(11) > 100.0);
    assert!((near(5) - 50.0).abs() < 0.1);
}

#[test]
fn overrides_that_overlap_are_invalid_or_unreachable_are_refused() {
    let mut p = person(2);
    let here = p.home();
    let start = local(&p, 12, 0);
    p.add(Override::Detour {
        start,
        to: here,
        stay: Duration::hours(1),
    })
    .unwrap();
    let again = Override::Stay {
        at: here,
        from: start + Duration::minutes(30),
        until: start + Duration::hours(2),
    };
    assert_eq!(p.add(again), Err(OverrideError::Overlaps));
    let bad = [
        Override::Detour {
            start,
            to: (f64::NAN, 0.0),
            stay: Duration::zero(),
        },
        Override::Detour {
            start,
            to: here,
            stay: Duration::seconds(-1),
        },
        Override::Stay {
            at: here,
            from: start,
            until: start - Duration::seconds(1),
        },
        Override::Pass {
            through: here,
            at: start,
            speed_kmh: 301.0,
            length_m: 100.0,
        },
        Override::Pass {
            through: here,
            at: start,
            speed_kmh: 0.0,
            length_m: 100.0,
        },
        Override::Pass {
            through: here,
            at: start,
            speed_kmh: 30.0,
            length_m: -1.0,
        },
    ];
    for o in bad {
        assert!(matches!(p.add(o), Err(OverrideError::Invalid(_))), "{o:?}");
    }
    let far = geo::offset(here.0, here.1, 0.0, 2_000_000.0);
    let o = Override::Stay {
        at: far,
        from: local(&p, 48, 0),
        until: local(&p, 49, 0),
    };
    assert_eq!(p.add(o), Err(OverrideError::Unreachable));
    assert_eq!(p.excursions().len(), 1);
}

#[test]
fn fix_times_are_half_open_and_empty_for_a_non_positive_interval() {
    let t0 = Utc.with_ymd_and_hms(2026, 11, 25, 0, 0, 0).unwrap();
    let times: Vec<_> = fix_times(t0, t0 + Duration::minutes(5), Duration::minutes(1)).collect();
    assert_eq!(times.len(), 5);
    assert_eq!((times[0], times[4]), (t0, t0 + Duration::minutes(4)));
    assert_eq!(
        fix_times(t0, t0 + Duration::hours(1), Duration::zero()).count(),
        0
    );
    assert_eq!(
        fix_times(t0, t0 + Duration::hours(1), Duration::seconds(-5)).count(),
        0
    );
    assert_eq!(fix_times(t0, t0, Duration::seconds(5)).count(), 0);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// (a) Geoward's location-jump rule never fires on simulated movement, overrides included.
    #[test]
    fn no_two_fixes_imply_a_location_jump(
        seed in any::<u64>(), interval in 1i64..600, start_min in 0u32..1440,
        kind in 0u8..3, minute in 0u32..1440, n in -10_000.0f64..10_000.0, e in -10_000.0f64..10_000.0,
    ) {
        let mut p = person(seed);
        p.add(some_override(&p, kind, minute, n, e)).unwrap();
        let all = fixes(&p, local(&p, 0, start_min), 24, interval, seed);
        for lag in [1, 2, 7, 60] {
            for (f1, f2) in all.iter().zip(all.iter().skip(lag)) {
                let dt = (f2.ts - f1.ts).num_milliseconds() as f64 / 1000.0;
                let d = geo::distance_m((f1.lat, f1.lon), (f2.lat, f2.lon)) - f1.acc_m - f2.acc_m;
                prop_assert!(d <= JUMP_KMH / 3.6 * dt, "{f1:?} -> {f2:?}");
            }
        }
    }

    /// The true track is continuous and no faster than the mode (or the pass).
    #[test]
    fn the_true_track_never_outruns_its_speed(
        seed in any::<u64>(), kind in 0u8..3, minute in 0u32..1440,
        n in -10_000.0f64..10_000.0, e in -10_000.0f64..10_000.0,
    ) {
        let mut p = person(seed);
        p.add(some_override(&p, kind, minute, n, e)).unwrap();
        let limit = if kind % 3 == 2 { MAX_PASS_SPEED_KMH / 3.6 } else { p.mode().speed_mps() };
        let step = Duration::seconds(5);
        let mut last = p.position_at(local(&p, 0, 0)).point();
        for t in fix_times(local(&p, 0, 0) + step, local(&p, 26, 0), step) {
            let now = p.position_at(t).point();
            prop_assert!(geo::distance_m(last, now) <= limit * 5.0 * 1.001 + 1e-3, "at {t}");
            last = now;
        }
    }

    /// (b) Honest accuracy: the true position is always within 0.6 of the fix's accuracy.
    #[test]
    fn the_true_position_is_always_within_the_fix_accuracy(
        seed in any::<u64>(), interval in 5i64..300, share in 0.0f64..0.5,
    ) {
        let p = Person::generate(seed, &Area { poor_fix_share: share, ..Area::default() });
        for f in fixes(&p, local(&p, 0, 0), 24, interval, seed ^ 1) {
            let d = geo::distance_m(p.position_at(f.ts).point(), (f.lat, f.lon));
            prop_assert!(d <= ERROR_SHARE * f.acc_m + 1e-6, "{d} m off at acc {}", f.acc_m);
        }
    }

    /// (c) With no override the person never comes closer to a point than the route, so an
    /// exclusion zone farther than its radius plus 2 km from the route is never entered.
    #[test]
    fn without_overrides_the_person_stays_as_far_from_a_point_as_the_route(
        seed in any::<u64>(), n in -15_000.0f64..15_000.0, e in -15_000.0f64..15_000.0,
        radius in 50.0f64..1000.0,
    ) {
        let p = person(seed);
        let point = geo::offset(Area::default().centre.0, Area::default().centre.1, n, e);
        let route = p.distance_from_route_m(point);
        for t in fix_times(local(&p, 0, 0), local(&p, 24, 0), Duration::seconds(20)) {
            let d = geo::distance_m(p.position_at(t).point(), point);
            prop_assert!(d >= route * (1.0 - 1e-4) - 0.01, "{d} < route distance {route}");
            if route > radius + 2000.0 {
                prop_assert!(d > radius);
            }
        }
    }

    /// (d) Same seed, same person, same fixes; another seed, another person.
    #[test]
    fn the_same_seed_gives_the_same_person_and_fixes(seed in any::<u64>()) {
        let (a, b) = (person(seed), person(seed));
        prop_assert_eq!(&a, &b);
        let start = local(&a, 6, 0);
        prop_assert_eq!(fixes(&a, start, 4, 30, seed), fixes(&b, start, 4, 30, seed));
        prop_assert_ne!(a, person(seed.wrapping_add(1)));
    }
}
