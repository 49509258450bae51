//! Property tests for the pure domain parsers: zone geometry, datum conversion and schedules.
//! They must never panic on any input, accept what is valid, reject what is not, and
//! round-trip what they accept.

use geo::{Orient, Validation};
use geoward::domain::datum::{bd09_to_wgs84, gcj02_to_wgs84, wgs84_to_bd09, wgs84_to_gcj02, Datum};
use geoward::domain::schedule::Schedule;
use geoward::domain::zone_geometry::{GeometryLimits, ZoneGeometry};
use proptest::prelude::*;
use serde_json::{json, Value};

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f)
            .map(Value::Number)),
        (-200.0..200.0f64).prop_map(|f| json!(f)),
        any::<i64>().prop_map(Value::from),
        prop_oneof![
            Just("Polygon"),
            Just("MultiPolygon"),
            Just("Circle"),
            Just("mon"),
            Just("24:00"),
            Just("22:00"),
            Just("")
        ]
        .prop_map(Value::from),
        "[a-z:0-9]{0,8}".prop_map(Value::from),
    ];
    leaf.prop_recursive(5, 96, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("type".to_string()),
                    Just("coordinates".to_string()),
                    Just("radius_m".to_string()),
                    Just("days".to_string()),
                    Just("start".to_string()),
                    Just("end".to_string()),
                    "[a-z]{1,6}"
                ],
                inner,
                0..4
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn arb_geometry_json() -> impl Strategy<Value = Value> {
    let ty = prop_oneof![
        Just("Polygon"),
        Just("MultiPolygon"),
        Just("Circle"),
        Just("Point")
    ];
    (ty, arb_json(), arb_json())
        .prop_map(|(t, c, r)| json!({"type": t, "coordinates": c, "radius_m": r}))
}

/// A ring of 4..12 points on a small integer grid: plenty of touching, collinear and
/// crossing cases.
fn arb_grid_ring() -> impl Strategy<Value = Value> {
    prop::collection::vec((0u8..5, 0u8..5), 3..12).prop_map(|pts| {
        let mut ring: Vec<Value> = pts
            .iter()
            .map(|&(x, y)| json!([f64::from(x) * 0.01, f64::from(y) * 0.01]))
            .collect();
        ring.push(ring[0].clone());
        Value::Array(ring)
    })
}

/// A star-shaped (hence simple) ring around (lon, lat): one point per equal sector, jittered
/// inside it (so every angular gap is under pi), with radii > 0.
fn arb_star(lon: f64, lat: f64) -> impl Strategy<Value = Vec<(f64, f64)>> {
    prop::collection::vec((0.0f64..0.9, 0.2f64..1.0), 5..80).prop_map(move |pts| {
        let n = pts.len() as f64;
        pts.iter()
            .enumerate()
            .map(|(i, &(jitter, r))| {
                let t = (i as f64 + jitter) / n * std::f64::consts::TAU;
                (lon + 0.05 * r * t.cos(), lat + 0.05 * r * t.sin())
            })
            .collect()
    })
}

fn closed(pts: &[(f64, f64)]) -> Value {
    let mut ring: Vec<Value> = pts.iter().map(|&(x, y)| json!([x, y])).collect();
    ring.push(ring[0].clone());
    Value::Array(ring)
}

fn parse(v: &Value) -> Result<ZoneGeometry, &'static str> {
    ZoneGeometry::parse(v, Datum::Wgs84, &GeometryLimits::default()).map_err(|e| e.code())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn parsing_arbitrary_json_as_a_geometry_never_panics(v in arb_json(), g in arb_geometry_json()) {
        for d in Datum::ALL {
            let _ = ZoneGeometry::parse(&v, d, &GeometryLimits::default());
            let _ = ZoneGeometry::parse(&g, d, &GeometryLimits::default());
        }
    }

    #[test]
    fn an_accepted_grid_polygon_is_valid_for_geo_and_round_trips(ring in arb_grid_ring()) {
        let v = json!({"type": "Polygon", "coordinates": [ring]});
        if let Ok(g) = parse(&v) {
            let ZoneGeometry::Area(mp) = &g else { panic!("a polygon became {g:?}") };
            prop_assert!(mp.is_valid(), "geo rejects {v}: {:?}", mp.validation_errors());
            prop_assert_eq!(parse(&g.to_geojson()), Ok(g.clone()));
            // Already oriented: shell counter-clockwise, holes clockwise.
            prop_assert_eq!(&mp.orient(geo::orient::Direction::Default), mp);
        }
    }

    #[test]
    fn a_star_shaped_ring_is_accepted_in_either_direction(pts in arb_star(114.65, 33.62)) {
        let mut rev = pts.clone();
        rev.reverse();
        let a = parse(&json!({"type": "Polygon", "coordinates": [closed(&pts)]}));
        let b = parse(&json!({"type": "Polygon", "coordinates": [closed(&rev)]}));
        prop_assert!(a.is_ok(), "{:?}", a);
        prop_assert!(b.is_ok(), "{:?}", b);
    }

    #[test]
    fn swapping_two_neighbours_of_a_convex_ring_makes_it_self_intersect(
        angles in prop::collection::btree_set(0u32..360, 4..40),
        pick in any::<prop::sample::Index>(),
    ) {
        let mut pts: Vec<(f64, f64)> = angles
            .iter()
            .map(|&a| {
                let t = f64::from(a).to_radians();
                (10.0 + 0.1 * t.cos(), 10.0 + 0.1 * t.sin())
            })
            .collect();
        let i = pick.index(pts.len());
        let j = (i + 1) % pts.len();
        pts.swap(i, j);
        let v = json!({"type": "Polygon", "coordinates": [closed(&pts)]});
        prop_assert_eq!(parse(&v).err(), Some("self_intersection"));
    }

    #[test]
    fn gcj02_and_bd09_invert_to_a_nanodegree_inside_china(
        lon in 73.0f64..135.0, lat in 1.0f64..55.0,
    ) {
        let (glon, glat) = wgs84_to_gcj02(lon, lat);
        let (wlon, wlat) = gcj02_to_wgs84(glon, glat);
        prop_assert!((wlon - lon).abs() < 1e-9 && (wlat - lat).abs() < 1e-9);
        let (blon, blat) = wgs84_to_bd09(lon, lat);
        let (wlon, wlat) = bd09_to_wgs84(blon, blat);
        prop_assert!((wlon - lon).abs() < 1e-9 && (wlat - lat).abs() < 1e-9);
    }

    #[test]
    fn parsing_arbitrary_json_as_a_schedule_never_panics(v in arb_json(), secs in any::<i64>()) {
        if let Ok(s) = Schedule::parse(&v) {
            prop_assert_eq!(Schedule::parse(&s.to_json()), Ok(s.clone()));
            if let Some(t) = chrono::DateTime::from_timestamp(secs % 20_000_000_000, 0) {
                let _ = s.active_at(t, chrono_tz::America::New_York);
                let _ = s.last_opening_at_or_before(t, chrono_tz::Asia::Shanghai);
            }
        }
    }

    #[test]
    fn a_generated_schedule_round_trips_and_agrees_with_itself(
        windows in prop::collection::vec(
            (prop::collection::btree_set(0usize..7, 1..7), 0u32..24, 0u32..60, 0u32..25, 0u32..60),
            0..8,
        ),
        secs in 1_700_000_000i64..1_900_000_000,
    ) {
        const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
        let v = Value::Array(windows.iter().map(|(days, sh, sm, eh, em)| {
            let end = if *eh == 24 { "24:00".to_string() } else { format!("{eh:02}:{em:02}") };
            json!({
                "days": days.iter().map(|&d| DAYS[d]).collect::<Vec<_>>(),
                "start": format!("{sh:02}:{sm:02}"),
                "end": end,
            })
        }).collect());
        let Ok(s) = Schedule::parse(&v) else { return Ok(()) };
        prop_assert_eq!(Schedule::parse(&s.to_json()), Ok(s.clone()));
        let Some(t) = chrono::DateTime::from_timestamp(secs, 0) else { return Ok(()) };
        // Shanghai has no DST: real-time and wall-clock evaluation must agree.
        let tz = chrono_tz::Asia::Shanghai;
        let local = t.with_timezone(&tz).naive_local();
        prop_assert_eq!(s.active_at(t, tz), s.is_active_at(local));
        if let Some(open) = s.last_opening_at_or_before(t, tz) {
            prop_assert!(open <= t && s.active_at(t, tz) && s.active_at(open, tz));
        }
    }
}
