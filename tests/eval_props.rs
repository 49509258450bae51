//! Property tests of the rule engine's classification against a brute-force reference (exact
//! even-odd point-in-polygon over every ring, exact point-to-segment distance over every edge,
//! measured with Karney's geodesic), on random star polygons with holes and multipolygons; and
//! the jitter property: a stationary device inside its zone, reporting honest accuracy, never
//! raises anything.

use std::f64::consts::TAU;
use std::sync::Arc;

use chrono::{Duration, TimeZone, Utc};
use geo::{Distance, Geodesic, LineString, MultiPolygon, Point, Polygon};
use geoward::domain::schedule::Schedule;
use geoward::domain::supervision::Period;
use geoward::domain::zone_geometry::ZoneGeometry;
use geoward::eval::{evaluate, Class, EvalState, Input, PreparedZone, Rules, Settings, ZoneKind};
use proptest::prelude::*;
use uuid::Uuid;

/// Metres per degree (lon, lat) on the WGS-84 ellipsoid, written independently of the engine.
fn scale(lat: f64) -> (f64, f64) {
    let (a, e2) = (6_378_137.0_f64, 0.006_694_379_990_14_f64);
    let s = lat.to_radians().sin();
    let w = (1.0 - e2 * s * s).sqrt();
    let k = std::f64::consts::PI / 180.0;
    (
        a / w * lat.to_radians().cos() * k,
        a * (1.0 - e2) / (w * w * w) * k,
    )
}

/// A star around (`lon`, `lat`): vertex `i` at angle `i/n` turns, `radii[i]` metres out.
fn star(lon: f64, lat: f64, radii: &[f64], clockwise: bool) -> LineString<f64> {
    let (kx, ky) = scale(lat);
    let n = radii.len();
    let mut pts: Vec<(f64, f64)> = (0..n)
        .map(|i| {
            let a = TAU * i as f64 / n as f64;
            (lon + radii[i] * a.cos() / kx, lat + radii[i] * a.sin() / ky)
        })
        .collect();
    if clockwise {
        pts.reverse();
    }
    pts.push(pts[0]);
    LineString::from(pts)
}

/// Even-odd containment over every ring, in lon/lat.
fn contains(mp: &MultiPolygon<f64>, lon: f64, lat: f64) -> bool {
    let mut inside = false;
    for p in &mp.0 {
        for ring in std::iter::once(p.exterior()).chain(p.interiors()) {
            for l in ring.lines() {
                let (a, b) = (l.start, l.end);
                if (a.y > lat) != (b.y > lat) && lon < a.x + (lat - a.y) * (b.x - a.x) / (b.y - a.y)
                {
                    inside = !inside;
                }
            }
        }
    }
    inside
}

/// Distance (metres) from the point to the nearest edge, every edge tried.
fn border_distance(mp: &MultiPolygon<f64>, lon: f64, lat: f64) -> f64 {
    let (kx, ky) = scale(lat);
    let mut best = (f64::INFINITY, (lon, lat));
    for p in &mp.0 {
        for ring in std::iter::once(p.exterior()).chain(p.interiors()) {
            for l in ring.lines() {
                let a = ((l.start.x - lon) * kx, (l.start.y - lat) * ky);
                let b = ((l.end.x - lon) * kx, (l.end.y - lat) * ky);
                let (vx, vy) = (b.0 - a.0, b.1 - a.1);
                let t = (-(a.0 * vx + a.1 * vy) / (vx * vx + vy * vy)).clamp(0.0, 1.0);
                let q = (a.0 + t * vx, a.1 + t * vy);
                let d = q.0.hypot(q.1);
                if d < best.0 {
                    best = (d, (lon + q.0 / kx, lat + q.1 / ky));
                }
            }
        }
    }
    Geodesic.distance(Point::new(lon, lat), Point::new(best.1 .0, best.1 .1))
}

/// Random areas: one to three separated stars, each with up to two star holes.
fn areas() -> impl Strategy<Value = MultiPolygon<f64>> {
    let shape = (
        prop::collection::vec(400.0..3_000.0f64, 3..40),
        prop::collection::vec(prop::collection::vec(20.0..150.0f64, 3..12), 0..3),
    );
    (
        -60.0..60.0f64,
        -170.0..170.0f64,
        prop::collection::vec(shape, 1..4),
    )
        .prop_map(|(lat, lon, shapes)| {
            let (kx, _) = scale(lat);
            let polys = shapes
                .iter()
                .enumerate()
                .map(|(k, (radii, holes))| {
                    let cx = lon + 7_000.0 * k as f64 / kx;
                    // Holes sit around points inside the shell's smallest radius.
                    let inner = radii.iter().cloned().fold(f64::INFINITY, f64::min);
                    let holes = holes
                        .iter()
                        .enumerate()
                        .map(|(h, r)| {
                            let off = (if h == 0 { -0.5 } else { 0.5 }) * inner / kx;
                            let rr: Vec<f64> = r.iter().map(|x| x * inner / 400.0).collect();
                            star(cx + off, lat, &rr, true)
                        })
                        .collect();
                    Polygon::new(star(cx, lat, radii, false), holes)
                })
                .collect();
            MultiPolygon::new(polys)
        })
}

fn prepared(kind: ZoneKind, g: &ZoneGeometry, buffer: f64) -> PreparedZone {
    PreparedZone::prepare(Uuid::nil(), kind, g, Schedule::default(), buffer, 2)
}

fn expected(s: f64, acc: f64) -> Option<Class> {
    if (s.abs() - acc).abs() < 0.1 {
        None // too close to the decision to insist
    } else if s < -acc {
        Some(Class::Inside)
    } else if s > acc {
        Some(Class::Outside)
    } else {
        Some(Class::Uncertain)
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn area_classification_matches_the_brute_force_reference(
        mp in areas(),
        probes in prop::collection::vec((-1.2..1.2f64, -1.2..1.2f64, 0.0..300.0f64, 0.0..1.0f64), 1..40),
        buffer in prop_oneof![Just(0.0), 0.0..200.0f64],
        exclusion in any::<bool>(),
    ) {
        let g = ZoneGeometry::Area(mp.clone());
        let kind = if exclusion { ZoneKind::Exclusion } else { ZoneKind::Inclusion };
        let z = prepared(kind, &g, buffer);
        let buffer = if exclusion { buffer } else { 0.0 };
        let r = g.bounding_rect();
        let edges: Vec<_> = mp.0.iter().flat_map(|p| p.exterior().lines()).collect();
        for (i, (u, v, acc, t)) in probes.into_iter().enumerate() {
            // Half the probes anywhere around the area, half just off an edge.
            let (lon, lat) = if i % 2 == 0 {
                let (w, h) = (r.width(), r.height());
                (r.center().x + u * w, r.center().y + v * h)
            } else {
                let e = edges[(t * edges.len() as f64) as usize % edges.len()];
                let (kx, ky) = scale(e.start.y);
                (e.start.x + (e.end.x - e.start.x) * (u.abs() / 1.2) + v * 40.0 / kx,
                 e.start.y + (e.end.y - e.start.y) * (u.abs() / 1.2) + u * 40.0 / ky)
            };
            let d = border_distance(&mp, lon, lat);
            let s = if contains(&mp, lon, lat) { -d } else { d } - buffer;
            let got = z.classify(lat, lon, acc);
            prop_assert_eq!(z.class_of(lat, lon, acc), got.class, "the engine's path agrees");
            prop_assert!((got.distance_m - s.abs()).abs() <= 0.05 + 2e-6 * d,
                "distance {} vs reference {}", got.distance_m, s.abs());
            if let Some(want) = expected(s, acc) {
                prop_assert_eq!(got.class, want, "signed {} acc {}", s, acc);
            }
        }
    }

    #[test]
    fn circle_classification_matches_the_geodesic(
        lat in -70.0..70.0f64, lon in -179.0..179.0f64, radius in 10.0..50_000.0f64,
        probes in prop::collection::vec((0.0..360.0f64, 0.0..2.0f64, 0.0..500.0f64), 1..20),
    ) {
        let center = Point::new(lon, lat);
        let g = ZoneGeometry::Circle { center, radius_m: radius };
        let z = prepared(ZoneKind::Inclusion, &g, 0.0);
        for (bearing, f, acc) in probes {
            let p = geo::Destination::destination(&Geodesic, center, bearing, radius * f);
            let s = Geodesic.distance(center, p) - radius;
            let got = z.classify(p.y(), p.x(), acc);
            prop_assert!((got.distance_m - s.abs()).abs() <= 0.05, "{} vs {}", got.distance_m, s.abs());
            if let Some(want) = expected(s, acc) {
                prop_assert_eq!(got.class, want);
            }
        }
    }

    #[test]
    fn a_stationary_device_inside_its_zone_with_honest_accuracy_never_raises_anything(
        mp in areas(),
        acc in 3.0..60.0f64,
        jitter in prop::collection::vec((0.0..1.0f64, 0.0..TAU), 30),
        pick in (0.0..1.0f64, 0.0..1.0f64),
    ) {
        // A true position well inside: the deepest of a few candidate points.
        let r = mp.0[0].exterior().lines().next().map(|l| l.start).unwrap_or_default();
        let c = mp.0[0].exterior().coords().fold((0.0, 0.0, 0.0), |a, p| (a.0 + p.x, a.1 + p.y, a.2 + 1.0));
        let (cx, cy) = (c.0 / c.2, c.1 / c.2);
        let (tx, ty) = (cx + (r.x - cx) * pick.0 * 0.3, cy + (r.y - cy) * pick.1 * 0.3);
        prop_assume!(contains(&mp, tx, ty));
        let depth = border_distance(&mp, tx, ty);
        prop_assume!(depth > 10.0);
        let acc = acc.min(depth / 2.0 - 1.0);
        let home = Arc::new(PreparedZone::prepare(Uuid::from_u128(1), ZoneKind::Inclusion,
            &ZoneGeometry::Area(mp.clone()), Schedule::default(), 0.0, 1));
        let night = Schedule::parse(&serde_json::json!([{"days": ["mon","tue","wed","thu","fri","sat","sun"], "start": "22:00", "end": "06:00"}])).unwrap_or_default();
        let curfew = Arc::new(PreparedZone::prepare(Uuid::from_u128(2), ZoneKind::Inclusion,
            &ZoneGeometry::Area(mp.clone()), night, 0.0, 1));
        let zones = vec![home, curfew];
        let t0 = Utc.with_ymd_and_hms(2026, 3, 2, 13, 30, 0).single().unwrap_or_default();
        let orders = [Period { starts_at: t0 - Duration::days(1), ends_at: t0 + Duration::days(1) }];
        let settings = Settings::default();
        let rules = Rules { timezone: chrono_tz::Asia::Shanghai, zones: &zones, shared: None,
            orders: &orders, leaves: &[], settings: &settings };
        let (kx, ky) = scale(ty);
        let mut state = EvalState::default();
        for (i, (f, a)) in jitter.into_iter().enumerate() {
            let d = acc * f.sqrt() * 0.999;
            let ts = t0 + Duration::minutes(i as i64);
            let input = Input::Fix { seq: i as u64, ts, lat: ty + d * a.sin() / ky,
                lon: tx + d * a.cos() / kx, acc_m: acc, bat: Some(80), strap: None };
            let out = evaluate(&rules, &state, &input, ts);
            prop_assert!(out.events.is_empty(), "fix {}: {:?}", i, out.events);
            state = out.state;
        }
    }
}
