//! Replays a synthetic day of one supervisee in Zhoukou through the rule engine and asserts
//! the exact list of events: home under curfew, a commute past a school (a pass-through
//! between sparse fixes), work with a stretch of indoor positioning (no_location), a lunch
//! walk into a school uploaded late, a spoofed fix (location_jump), an evening out past the
//! curfew, low battery and a strap opened and closed.

use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use chrono_tz::Asia::Shanghai;
use geo::{LineString, MultiPolygon, Point, Polygon};
use geoward::domain::schedule::Schedule;
use geoward::domain::supervision::Period;
use geoward::domain::zone_geometry::ZoneGeometry;
use geoward::eval::{
    evaluate, evaluate_tick, EvalState, EventKind, Input, PreparedZone, RuleEvent, Rules, Settings,
    Transition, ZoneKind, ZoneLayer,
};
use geoward::wire::Strap;
use uuid::Uuid;

const LON: f64 = 114.65;
const LAT: f64 = 33.62;
const COUNTY: u128 = 1;
const HOME: u128 = 2;
const VICTIM: u128 = 3;
const SCHOOL_ON_ROAD: u128 = 10;
const SCHOOL_BY_WORK: u128 = 11;

fn at(east: f64, north: f64) -> (f64, f64) {
    let k = 111_320.0;
    (
        LON + east / (k * LAT.to_radians().cos()),
        LAT + north / 110_900.0,
    )
}

fn circle(east: f64, north: f64, r: f64) -> ZoneGeometry {
    let (lon, lat) = at(east, north);
    ZoneGeometry::Circle {
        center: Point::new(lon, lat),
        radius_m: r,
    }
}

fn zone(n: u128, kind: ZoneKind, g: ZoneGeometry, s: Schedule, buffer: f64) -> Arc<PreparedZone> {
    Arc::new(PreparedZone::prepare(
        Uuid::from_u128(n),
        kind,
        &g,
        s,
        buffer,
        2,
    ))
}

/// 2026-03-03 (a Tuesday) at `h`:`m` in Shanghai.
fn local(h: u32, m: u32) -> DateTime<Utc> {
    Shanghai
        .with_ymd_and_hms(2026, 3, 3, h, m, 0)
        .single()
        .expect("a valid time")
        .with_timezone(&Utc)
}

/// A deterministic wobble of a few metres, so the day is not unnaturally exact.
fn wobble(seq: u64) -> (f64, f64) {
    let x = (seq.wrapping_mul(2_654_435_761) % 1000) as f64 / 1000.0;
    let y = (seq.wrapping_mul(40_503) % 1000) as f64 / 1000.0;
    ((x - 0.5) * 6.0, (y - 0.5) * 6.0)
}

enum Step {
    Fix {
        t: DateTime<Utc>,
        east: f64,
        north: f64,
        acc: f64,
        bat: Option<u8>,
        received: Option<DateTime<Utc>>,
    },
    Strap {
        t: DateTime<Utc>,
        strap: Strap,
    },
    Tick(DateTime<Utc>),
}

fn fix(t: DateTime<Utc>, east: f64, north: f64, acc: f64) -> Step {
    Step::Fix {
        t,
        east,
        north,
        acc,
        bat: None,
        received: None,
    }
}

/// Fixes every `every` minutes from `from` until before `to`, at one place.
fn stay(
    steps: &mut Vec<Step>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    every: i64,
    east: f64,
    north: f64,
) {
    let mut t = from;
    while t < to {
        steps.push(fix(t, east, north, 12.0));
        t += Duration::minutes(every);
    }
}

fn day() -> Vec<Step> {
    let mut s = Vec::new();
    // Home under curfew until 06:00, then the morning at home.
    stay(&mut s, local(5, 30), local(7, 30), 5, 0.0, 0.0);
    // Commute east at 36 km/h, a fix a minute; the school on the road lies between two fixes.
    for k in 0..14 {
        s.push(fix(
            local(7, 30) + Duration::minutes(k),
            600.0 * k as f64,
            0.0,
            10.0,
        ));
    }
    // Work, with a stretch of indoor positioning (±800 m) near the school by work.
    stay(&mut s, local(7, 44), local(10, 0), 5, 8_000.0, 0.0);
    for k in 0..16 {
        s.push(fix(local(10, k), 8_000.0, 0.0, 800.0));
    }
    stay(&mut s, local(10, 16), local(12, 30), 5, 8_000.0, 0.0);
    // Lunch walk into the school by work; the tag had no signal and uploads it at 12:55.
    let walk = [
        (30, 8_000.0, 0.0),
        (31, 8_100.0, 50.0),
        (32, 8_200.0, 100.0),
        (33, 8_300.0, 150.0),
        (34, 8_400.0, 200.0),
        (35, 8_500.0, 250.0),
        (36, 8_580.0, 290.0),
        (37, 8_600.0, 310.0),
        (38, 8_700.0, 300.0),
        (39, 8_800.0, 300.0),
        (40, 8_900.0, 300.0),
        (45, 8_600.0, -100.0),
        (50, 8_000.0, 0.0),
    ];
    for (m, east, north) in walk {
        s.push(Step::Fix {
            t: local(12, m),
            east,
            north,
            acc: 8.0,
            bat: None,
            received: Some(local(12, 55)),
        });
    }
    stay(&mut s, local(12, 55), local(14, 2), 5, 8_000.0, 0.0);
    s.push(fix(local(14, 2), 58_000.0, 0.0, 10.0)); // a spoofed or broken fix, 50 km away
    stay(&mut s, local(14, 5), local(17, 30), 5, 8_000.0, 0.0);
    // Home by the northern road.
    s.push(fix(local(17, 30), 8_000.0, 0.0, 10.0));
    s.push(fix(local(17, 32), 8_000.0, 1_000.0, 10.0));
    for k in 1..14 {
        s.push(fix(
            local(17, 32) + Duration::minutes(k),
            8_000.0 - 600.0 * k as f64,
            1_000.0,
            10.0,
        ));
    }
    s.push(fix(local(17, 47), 0.0, 500.0, 10.0));
    stay(&mut s, local(17, 48), local(19, 0), 5, 0.0, 0.0);
    // An evening at a friend's, past the curfew's opening at 22:00; the battery runs low.
    s.push(fix(local(19, 0), 0.0, 0.0, 10.0));
    s.push(fix(local(19, 5), 1_000.0, 1_000.0, 10.0));
    stay(&mut s, local(19, 10), local(21, 0), 10, 2_000.0, 2_000.0);
    s.push(Step::Fix {
        t: local(21, 0),
        east: 2_000.0,
        north: 2_000.0,
        acc: 12.0,
        bat: Some(18),
        received: None,
    });
    stay(&mut s, local(21, 5), local(22, 0), 10, 2_000.0, 2_000.0);
    s.push(Step::Tick(local(22, 1)));
    s.push(fix(local(22, 5), 2_000.0, 2_000.0, 12.0));
    s.push(fix(local(22, 10), 1_000.0, 1_000.0, 12.0));
    s.push(fix(local(22, 15), 0.0, 10.0, 10.0));
    stay(&mut s, local(22, 20), local(23, 0), 10, 0.0, 0.0);
    s.push(Step::Fix {
        t: local(23, 0),
        east: 0.0,
        north: 0.0,
        acc: 10.0,
        bat: Some(60),
        received: None,
    });
    s.push(Step::Strap {
        t: local(23, 30),
        strap: Strap::Open,
    });
    s.push(Step::Strap {
        t: local(23, 32),
        strap: Strap::Closed,
    });
    stay(&mut s, local(23, 40), local(23, 59), 10, 0.0, 0.0);
    s
}

#[test]
fn a_synthetic_day_produces_exactly_the_expected_events() {
    let all = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
    let night =
        Schedule::parse(&serde_json::json!([{"days": all, "start": "22:00", "end": "06:00"}]))
            .expect("a valid schedule");
    let square = |h: f64| {
        let pts: Vec<(f64, f64)> = [(-h, -h), (h, -h), (h, h), (-h, h), (-h, -h)]
            .iter()
            .map(|&(e, n)| at(e, n))
            .collect();
        ZoneGeometry::Area(MultiPolygon::new(vec![Polygon::new(
            LineString::from(pts),
            vec![],
        )]))
    };
    let zones = vec![
        zone(
            COUNTY,
            ZoneKind::Inclusion,
            square(15_000.0),
            Schedule::default(),
            0.0,
        ),
        zone(
            HOME,
            ZoneKind::Inclusion,
            circle(0.0, 0.0, 80.0),
            night,
            0.0,
        ),
        zone(
            VICTIM,
            ZoneKind::Exclusion,
            circle(-5_000.0, -5_000.0, 150.0),
            Schedule::default(),
            50.0,
        ),
    ];
    // The city's schools: two on this person's way, and a grid of others.
    let mut schools = vec![
        zone(
            SCHOOL_ON_ROAD,
            ZoneKind::Exclusion,
            circle(4_000.0, 0.0, 100.0),
            Schedule::default(),
            0.0,
        ),
        zone(
            SCHOOL_BY_WORK,
            ZoneKind::Exclusion,
            circle(8_600.0, 300.0, 100.0),
            Schedule::default(),
            0.0,
        ),
    ];
    for i in 0..400u128 {
        let (e, n) = (
            (i % 20) as f64 * 1_500.0 - 15_000.0,
            (i / 20) as f64 * 1_500.0 + 3_000.0,
        );
        schools.push(zone(
            1_000 + i,
            ZoneKind::Exclusion,
            circle(e, n, 80.0),
            Schedule::default(),
            0.0,
        ));
    }
    let layer = ZoneLayer::new(schools);
    let orders = [Period {
        starts_at: local(0, 0),
        ends_at: local(0, 0) + Duration::days(90),
    }];
    let settings = Settings::default();
    let rules = Rules {
        timezone: Shanghai,
        zones: &zones,
        shared: Some(&layer),
        orders: &orders,
        leaves: &[],
        settings: &settings,
    };

    let mut state = EvalState::default();
    let mut events: Vec<RuleEvent> = Vec::new();
    for (seq, step) in day().into_iter().enumerate() {
        let seq = seq as u64 + 1;
        let out = match step {
            Step::Fix {
                t,
                east,
                north,
                acc,
                bat,
                received,
            } => {
                let (dx, dy) = if acc >= 12.0 { wobble(seq) } else { (0.0, 0.0) };
                let (lon, lat) = at(east + dx, north + dy);
                let input = Input::Fix {
                    seq,
                    ts: t,
                    lat,
                    lon,
                    acc_m: acc,
                    bat,
                    strap: None,
                };
                evaluate(&rules, &state, &input, received.unwrap_or(t))
            }
            Step::Strap { t, strap } => evaluate(
                &rules,
                &state,
                &Input::Status {
                    seq,
                    ts: t,
                    bat: None,
                    strap: Some(strap),
                },
                t,
            ),
            Step::Tick(now) => evaluate_tick(&rules, &state, now),
        };
        state = out.state;
        events.extend(out.events);
        let size = serde_json::to_string(&state).map(|s| s.len()).unwrap_or(0);
        assert!(size < 512, "state of {size} bytes after step {seq}");
    }

    use EventKind::*;
    use Transition::*;
    let z = |n: u128| Some(Uuid::from_u128(n));
    let want = vec![
        (
            ExclusionZoneCrossed,
            Started,
            z(SCHOOL_ON_ROAD),
            local(7, 37),
            false,
        ),
        (NoLocation, Started, None, local(10, 10), false),
        (NoLocation, Cleared, None, local(10, 16), false),
        (
            ExclusionZoneEntered,
            Started,
            z(SCHOOL_BY_WORK),
            local(12, 37),
            true,
        ),
        (
            ExclusionZoneEntered,
            Cleared,
            z(SCHOOL_BY_WORK),
            local(12, 40),
            true,
        ),
        (LocationJump, Started, None, local(14, 2), false),
        (LowBattery, Started, None, local(21, 0), false),
        (CurfewViolation, Started, z(HOME), local(22, 5), false),
        (CurfewViolation, Cleared, z(HOME), local(22, 20), false),
        (LowBattery, Cleared, None, local(23, 0), false),
        (StrapTamper, Started, None, local(23, 30), false),
        (StrapTamper, Cleared, None, local(23, 32), false),
    ];
    let got: Vec<_> = events
        .iter()
        .map(|e| (e.kind, e.transition, e.zone_id, e.at, e.late))
        .collect();
    assert_eq!(got, want);
    assert!(events
        .iter()
        .all(|e| e.seq.is_some() && e.position.is_some() == (e.kind != StrapTamper)));
    assert_eq!(state.zones, vec![], "the day ends with nothing open");
}
