//! Cost of the rule engine (`geoward::eval`) on realistic shapes.
//!
//! Cases:
//! - `classify/county_3000`: one fix against a 3,000-vertex county (a noisy ~30 km circle);
//! - `classify/district_400`: against a 400-vertex district (~5 km);
//! - `classify/circle_poly_64`: against a 64-vertex circle polygon (200 m);
//! - `classify/circle`: against a true circle zone;
//! - `.../class_only`: the same through `class_of`, the engine's path (no exact distance once
//!   the border is known to be beyond the accuracy);
//! - `evaluate/day` and `evaluate/night`: one fix for a supervisee with 20 personal zones
//!   (county, district, a curfew home, 17 exclusion zones) and a 10,000-zone shared layer of
//!   schools, from the state the previous fix left (night: the curfew window is open).
//!
//! Probe points cycle through 4,096 pre-generated positions (half anywhere in the zone's box,
//! half within 100 m of the border). Run with
//! `cargo bench --bench eval -- --warm-up-time 1 --measurement-time 3`.

use std::f64::consts::TAU;
use std::hint::black_box;
use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use criterion::{criterion_group, criterion_main, Criterion};
use geo::{LineString, MultiPolygon, Point, Polygon};
use geoward::domain::schedule::Schedule;
use geoward::domain::supervision::Period;
use geoward::domain::zone_geometry::ZoneGeometry;
use geoward::eval::{
    evaluate, EvalState, Input, PreparedZone, Rules, Settings, ZoneKind, ZoneLayer,
};
use uuid::Uuid;

const LON: f64 = 114.65;
const LAT: f64 = 33.62;

/// A small deterministic generator (xorshift), so every run measures the same points.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn at(east: f64, north: f64) -> (f64, f64) {
    (
        LON + east / (111_320.0 * LAT.to_radians().cos()),
        LAT + north / 110_900.0,
    )
}

/// A boundary-like ring of `n` vertices around `east`, `north`: a circle of radius `r` bent
/// by a few smooth waves of relative amplitude `waves`, plus a jitter of `noise` times the
/// vertex spacing (real boundaries wiggle along rivers and roads, not in spikes).
fn noisy(rng: &mut Rng, east: f64, north: f64, r: f64, waves: f64, n: usize) -> ZoneGeometry {
    let (p1, p2, p3) = (rng.next() * TAU, rng.next() * TAU, rng.next() * TAU);
    let spacing = TAU * r / n as f64;
    let mut pts: Vec<(f64, f64)> = (0..n)
        .map(|i| {
            let a = TAU * i as f64 / n as f64;
            let bend = 1.0
                + waves
                    * ((3.0 * a + p1).sin()
                        + 0.5 * (7.0 * a + p2).sin()
                        + 0.25 * (17.0 * a + p3).sin());
            let rr = r * bend + 0.6 * spacing * (rng.next() - 0.5);
            at(east + rr * a.cos(), north + rr * a.sin())
        })
        .collect();
    pts.push(pts[0]);
    ZoneGeometry::Area(MultiPolygon::new(vec![Polygon::new(
        LineString::from(pts),
        vec![],
    )]))
}

fn circle(east: f64, north: f64, r: f64) -> ZoneGeometry {
    let (lon, lat) = at(east, north);
    ZoneGeometry::Circle {
        center: Point::new(lon, lat),
        radius_m: r,
    }
}

fn prep(n: u128, kind: ZoneKind, g: &ZoneGeometry, s: Schedule) -> Arc<PreparedZone> {
    Arc::new(PreparedZone::prepare(
        Uuid::from_u128(n),
        kind,
        g,
        s,
        0.0,
        2,
    ))
}

/// Probe points for a zone of radius `r`: half in its box, half near its border.
fn probes(rng: &mut Rng, r: f64) -> Vec<(f64, f64, f64)> {
    (0..4096)
        .map(|i| {
            let (e, n) = if i % 2 == 0 {
                ((rng.next() - 0.5) * 2.2 * r, (rng.next() - 0.5) * 2.2 * r)
            } else {
                let a = rng.next() * TAU;
                let rr = r + (rng.next() - 0.5) * 200.0;
                (rr * a.cos(), rr * a.sin())
            };
            let (lon, lat) = at(e, n);
            (lat, lon, 5.0 + rng.next() * 30.0)
        })
        .collect()
}

fn bench_classify(c: &mut Criterion) {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let cases = [
        (
            "county_3000",
            noisy(&mut rng, 0.0, 0.0, 30_000.0, 0.08, 3_000),
            30_000.0,
        ),
        (
            "district_400",
            noisy(&mut rng, 0.0, 0.0, 5_000.0, 0.08, 400),
            5_000.0,
        ),
        (
            "circle_poly_64",
            noisy(&mut rng, 0.0, 0.0, 200.0, 0.0, 64),
            200.0,
        ),
        ("circle", circle(0.0, 0.0, 200.0), 200.0),
    ];
    let mut group = c.benchmark_group("classify");
    for (name, g, r) in &cases {
        let z = prep(1, ZoneKind::Inclusion, g, Schedule::default());
        let pts = probes(&mut rng, *r);
        let mut i = 0;
        group.bench_function(*name, |b| {
            b.iter(|| {
                i = (i + 1) & 4095;
                let (lat, lon, acc) = pts[i];
                black_box(z.classify(black_box(lat), black_box(lon), black_box(acc)))
            })
        });
        group.bench_function(format!("{name}/class_only"), |b| {
            b.iter(|| {
                i = (i + 1) & 4095;
                let (lat, lon, acc) = pts[i];
                black_box(z.class_of(black_box(lat), black_box(lon), black_box(acc)))
            })
        });
    }
    group.finish();
}

struct World {
    zones: Vec<Arc<PreparedZone>>,
    layer: ZoneLayer,
    orders: Vec<Period>,
    settings: Settings,
}

fn world(rng: &mut Rng) -> World {
    let all = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
    let night =
        Schedule::parse(&serde_json::json!([{"days": all, "start": "22:00", "end": "06:00"}]))
            .unwrap_or_default();
    let mut zones = vec![
        prep(
            1,
            ZoneKind::Inclusion,
            &noisy(rng, 0.0, 0.0, 30_000.0, 0.08, 3_000),
            Schedule::default(),
        ),
        prep(
            2,
            ZoneKind::Inclusion,
            &noisy(rng, 0.0, 0.0, 5_000.0, 0.08, 400),
            Schedule::default(),
        ),
        prep(3, ZoneKind::Inclusion, &circle(0.0, 0.0, 80.0), night),
    ];
    for i in 0..17u128 {
        let (e, n) = ((rng.next() - 0.5) * 20_000.0, (rng.next() - 0.5) * 20_000.0);
        let g = if i % 2 == 0 {
            circle(e, n, 150.0)
        } else {
            noisy(rng, e, n, 150.0, 0.0, 64)
        };
        zones.push(prep(10 + i, ZoneKind::Exclusion, &g, Schedule::default()));
    }
    // 10,000 schools over a 60 km square: every other one a 64-vertex polygon.
    let shared = (0..10_000u128)
        .map(|i| {
            let (e, n) = ((rng.next() - 0.5) * 60_000.0, (rng.next() - 0.5) * 60_000.0);
            let g = if i % 2 == 0 {
                circle(e, n, 100.0)
            } else {
                noisy(rng, e, n, 100.0, 0.05, 64)
            };
            prep(1_000 + i, ZoneKind::Exclusion, &g, Schedule::default())
        })
        .collect();
    let start = Utc
        .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
        .single()
        .unwrap_or_default();
    World {
        zones,
        layer: ZoneLayer::new(shared),
        orders: vec![Period {
            starts_at: start,
            ends_at: start + Duration::days(90),
        }],
        settings: Settings::default(),
    }
}

/// A city walk of 4,096 fixes a minute apart from `t0`, with the state before each one.
fn trajectory(w: &World, rng: &mut Rng, t0: DateTime<Utc>) -> Vec<(EvalState, Input)> {
    let rules = rules(w);
    let (mut e, mut n) = (0.0, 0.0);
    let mut state = EvalState::default();
    (0..4096u64)
        .map(|seq| {
            e += (rng.next() - 0.5) * 300.0;
            n += (rng.next() - 0.5) * 300.0;
            let (lon, lat) = at(e, n);
            let ts = t0 + Duration::minutes(seq as i64);
            let input = Input::Fix {
                seq,
                ts,
                lat,
                lon,
                acc_m: 5.0 + rng.next() * 20.0,
                bat: Some(80),
                strap: None,
            };
            let before = state.clone();
            state = evaluate(&rules, &state, &input, ts).state;
            (before, input)
        })
        .collect()
}

fn rules(w: &World) -> Rules<'_> {
    Rules {
        timezone: chrono_tz::Asia::Shanghai,
        zones: &w.zones,
        shared: Some(&w.layer),
        orders: &w.orders,
        leaves: &[],
        settings: &w.settings,
    }
}

fn bench_evaluate(c: &mut Criterion) {
    let mut rng = Rng(0xD1B5_4A32_D192_ED03);
    let w = world(&mut rng);
    let mut group = c.benchmark_group("evaluate");
    // 02:00Z is 10:00 in Shanghai (day); 15:00Z is 23:00 (curfew window open).
    for (name, hour) in [("day", 2), ("night", 15)] {
        let t0 = Utc
            .with_ymd_and_hms(2026, 2, 2, hour, 0, 0)
            .single()
            .unwrap_or_default();
        let steps = trajectory(&w, &mut rng, t0);
        let r = rules(&w);
        let mut i = 0;
        group.bench_function(name, |b| {
            b.iter(|| {
                i = (i + 1) & 4095;
                let (state, input) = &steps[i];
                let ts = input.ts();
                black_box(evaluate(&r, black_box(state), black_box(input), ts))
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_classify, bench_evaluate);
criterion_main!(benches);
