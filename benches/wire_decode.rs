//! Decoding cost of device frames on the ingest hot path (`geoward::wire::decode`).
//!
//! Cases: a valid fix frame (the common case), a status frame, a batch of 1000 fixes (reported
//! per item), and an invalid fix (bad lat: still the typed path, plus one rejection), and a
//! frame the typed parse cannot read (lat as a string: the slow `Value` path). Run with
//! `cargo bench --bench wire_decode -- --warm-up-time 1 --measurement-time 3`.

use std::hint::black_box;

use chrono::{TimeZone, Utc};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use geoward::wire::{decode, Limits};

const FIX: &str = r#"{"type":"fix","seq":17,"ts":"2026-11-25T09:30:00Z","lat":33.6251,"lon":114.6512,"acc":6.5,"src":"gps","bat":87,"strap":"closed","speed":1.2}"#;
const STATUS: &str =
    r#"{"type":"status","seq":18,"ts":"2026-11-25T09:30:30Z","bat":86,"strap":"open"}"#;
/// A wrong JSON type (`lat` as a string) fails the typed parse: the slow `Value` path.
const LAT_STRING: &str = r#"{"type":"fix","seq":20,"ts":"2026-11-25T09:30:00Z","lat":"33.6","lon":114.6512,"acc":6.5,"src":"gps","bat":87,"strap":"closed","speed":1.2}"#;
const BAD_LAT: &str = r#"{"type":"fix","seq":19,"ts":"2026-11-25T09:30:00Z","lat":91.2,"lon":114.6512,"acc":6.5,"src":"gps","bat":87,"strap":"closed","speed":1.2}"#;

fn batch_of(n: u64) -> String {
    let items: Vec<String> = (0..n)
        .map(|i| {
            format!(
                r#"{{"type":"fix","seq":{},"ts":"2026-11-25T08:{:02}:{:02}Z","lat":{:.6},"lon":114.6512,"acc":8.5,"src":"gps","bat":80,"strap":"closed"}}"#,
                1000 + i,
                i / 60 % 60,
                i % 60,
                33.6 + i as f64 * 1e-5
            )
        })
        .collect();
    format!(r#"{{"type":"batch","items":[{}]}}"#, items.join(","))
}

fn bench(c: &mut Criterion) {
    let Some(now) = Utc.with_ymd_and_hms(2026, 11, 25, 9, 31, 0).single() else {
        return;
    };
    let limits = Limits::default();
    let batch = batch_of(1000);
    assert_eq!(decode(FIX, now, &limits).reports.len(), 1);
    assert_eq!(decode(STATUS, now, &limits).reports.len(), 1);
    assert_eq!(decode(&batch, now, &limits).reports.len(), 1000);
    assert_eq!(decode(BAD_LAT, now, &limits).rejections.len(), 1);

    let mut g = c.benchmark_group("wire_decode");
    g.throughput(Throughput::Elements(1));
    g.bench_function("fix", |b| b.iter(|| decode(black_box(FIX), now, &limits)));
    g.bench_function("status", |b| {
        b.iter(|| decode(black_box(STATUS), now, &limits))
    });
    g.bench_function("invalid_lat", |b| {
        b.iter(|| decode(black_box(BAD_LAT), now, &limits))
    });
    g.bench_function("lat_string_slow_path", |b| {
        b.iter(|| decode(black_box(LAT_STRING), now, &limits))
    });
    g.throughput(Throughput::Elements(1000));
    g.bench_function("batch_1000_fixes", |b| {
        b.iter(|| decode(black_box(&batch), now, &limits))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
