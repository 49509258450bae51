//! Unit tests of classification: accuracy circles against circles, polygons, holes, buffers,
//! and of the path test behind pass-through.

use geo::{LineString, MultiPolygon, Point, Polygon};
use uuid::Uuid;

use super::metric::metres_per_degree;
use super::*;
use crate::domain::schedule::Schedule;
use crate::domain::zone_geometry::ZoneGeometry;

const LON: f64 = 114.65;
const LAT: f64 = 33.62;

/// The lon/lat `east` and `north` metres from the reference point.
pub(super) fn at(east: f64, north: f64) -> (f64, f64) {
    let (kx, ky) = metres_per_degree(LAT);
    (LON + east / kx, LAT + north / ky)
}

fn ring(pts: &[(f64, f64)]) -> LineString<f64> {
    let mut v: Vec<(f64, f64)> = pts.iter().map(|&(e, n)| at(e, n)).collect();
    v.push(v[0]);
    LineString::from(v)
}

/// A square of half-side `h` metres centred `east`, `north` of the reference, ccw.
pub(super) fn square(east: f64, north: f64, h: f64) -> Vec<(f64, f64)> {
    vec![
        (east - h, north - h),
        (east + h, north - h),
        (east + h, north + h),
        (east - h, north + h),
    ]
}

pub(super) fn area(shell: &[(f64, f64)], holes: &[Vec<(f64, f64)>]) -> ZoneGeometry {
    let holes = holes
        .iter()
        .map(|h| {
            let mut h = h.clone();
            h.reverse();
            ring(&h)
        })
        .collect();
    ZoneGeometry::Area(MultiPolygon::new(vec![Polygon::new(ring(shell), holes)]))
}

pub(super) fn circle(east: f64, north: f64, r: f64) -> ZoneGeometry {
    let (lon, lat) = at(east, north);
    ZoneGeometry::Circle {
        center: Point::new(lon, lat),
        radius_m: r,
    }
}

fn zone(kind: ZoneKind, g: &ZoneGeometry, buffer: f64) -> PreparedZone {
    PreparedZone::prepare(Uuid::nil(), kind, g, Schedule::default(), buffer, 2)
}

fn classify(z: &PreparedZone, east: f64, north: f64, acc: f64) -> Classification {
    let (lon, lat) = at(east, north);
    let c = z.classify(lat, lon, acc);
    assert_eq!(
        z.class_of(lat, lon, acc),
        c.class,
        "class_of agrees with classify"
    );
    c
}

#[test]
fn a_fix_whose_accuracy_circle_lies_wholly_inside_a_circle_zone_is_inside() {
    let z = zone(ZoneKind::Inclusion, &circle(0.0, 0.0, 100.0), 0.0);
    let c = classify(&z, 30.0, 0.0, 20.0);
    assert_eq!(c.class, Class::Inside);
    assert!((c.distance_m - 70.0).abs() < 0.01, "{}", c.distance_m);
}

#[test]
fn a_fix_whose_accuracy_circle_straddles_the_border_is_uncertain() {
    let z = zone(ZoneKind::Inclusion, &circle(0.0, 0.0, 100.0), 0.0);
    assert_eq!(classify(&z, 90.0, 0.0, 20.0).class, Class::Uncertain);
    assert_eq!(classify(&z, 110.0, 0.0, 20.0).class, Class::Uncertain);
    assert_eq!(classify(&z, 0.0, 125.0, 20.0).class, Class::Outside);
}

#[test]
fn a_fix_wholly_outside_a_polygon_is_outside_with_its_distance_to_the_border() {
    let z = zone(
        ZoneKind::Exclusion,
        &area(&square(0.0, 0.0, 100.0), &[]),
        0.0,
    );
    let c = classify(&z, 150.0, 0.0, 10.0);
    assert_eq!(c.class, Class::Outside);
    assert!((c.distance_m - 50.0).abs() < 0.01, "{}", c.distance_m);
    let c = classify(&z, 0.0, 60.0, 10.0);
    assert_eq!(c.class, Class::Inside);
    assert!((c.distance_m - 40.0).abs() < 0.01, "{}", c.distance_m);
}

#[test]
fn a_point_in_a_hole_is_outside_the_area() {
    let z = zone(
        ZoneKind::Inclusion,
        &area(&square(0.0, 0.0, 500.0), &[square(0.0, 0.0, 100.0)]),
        0.0,
    );
    let c = classify(&z, 0.0, 0.0, 10.0);
    assert_eq!(c.class, Class::Outside);
    assert!((c.distance_m - 100.0).abs() < 0.01);
    assert_eq!(classify(&z, 300.0, 0.0, 10.0).class, Class::Inside);
}

#[test]
fn a_buffer_widens_an_exclusion_zone_and_narrows_nothing_else() {
    let g = circle(0.0, 0.0, 100.0);
    let excl = zone(ZoneKind::Exclusion, &g, 50.0);
    let c = classify(&excl, 130.0, 0.0, 10.0);
    assert_eq!(c.class, Class::Inside);
    assert!((c.distance_m - 20.0).abs() < 0.01);
    let incl = zone(ZoneKind::Inclusion, &g, 50.0);
    assert_eq!(classify(&incl, 130.0, 0.0, 10.0).class, Class::Outside);
    assert_eq!(incl.buffer_m(), 0.0);
    let poly = zone(
        ZoneKind::Exclusion,
        &area(&square(0.0, 0.0, 100.0), &[]),
        50.0,
    );
    assert_eq!(classify(&poly, 140.0, 0.0, 5.0).class, Class::Inside);
    assert_eq!(classify(&poly, 160.0, 0.0, 5.0).class, Class::Outside);
}

#[test]
fn a_non_finite_point_or_a_nonsense_accuracy_is_uncertain_without_panicking() {
    let z = zone(
        ZoneKind::Inclusion,
        &area(&square(0.0, 0.0, 100.0), &[]),
        0.0,
    );
    assert_eq!(z.classify(f64::NAN, LON, 5.0).class, Class::Uncertain);
    assert!(z.classify(f64::NAN, LON, 5.0).distance_m.is_nan());
    assert_eq!(z.classify(LAT, f64::INFINITY, 5.0).class, Class::Uncertain);
    assert_eq!(z.classify(LAT, LON, f64::NAN).class, Class::Uncertain);
    assert_eq!(z.classify(LAT, LON, -1.0).class, Class::Uncertain);
    assert_eq!(z.classify(90.0, 180.0, 1e300).class, Class::Uncertain);
}

#[test]
fn a_far_zone_is_outside_by_its_box_alone() {
    let z = zone(ZoneKind::Exclusion, &circle(0.0, 0.0, 100.0), 20.0);
    let (lon, lat) = at(5_000.0, 0.0);
    assert!(!z.reaches(lat, lon, 50.0));
    assert_eq!(z.classify(lat, lon, 50.0).class, Class::Outside);
    assert!(z.reaches(lat, lon, 5_000.0));
}

#[test]
fn an_area_without_edges_has_nothing_inside() {
    let z = zone(
        ZoneKind::Exclusion,
        &ZoneGeometry::Area(MultiPolygon::new(vec![])),
        0.0,
    );
    assert_eq!(z.classify(LAT, LON, 5.0).class, Class::Outside);
}

#[test]
fn a_straight_path_through_a_zone_reaches_it_and_one_beside_it_does_not() {
    for g in [circle(0.0, 0.0, 100.0), area(&square(0.0, 0.0, 100.0), &[])] {
        let z = zone(ZoneKind::Exclusion, &g, 0.0);
        assert!(z.path_reaches(at(-500.0, 0.0), at(500.0, 10.0), 20.0));
        assert!(!z.path_reaches(at(-500.0, 150.0), at(500.0, 150.0), 20.0));
        // Grazing the edge by less than the accuracy is not enough.
        assert!(!z.path_reaches(at(-500.0, 95.0), at(500.0, 95.0), 20.0));
        let buffered = zone(ZoneKind::Exclusion, &g, 80.0);
        assert!(buffered.path_reaches(at(-500.0, 150.0), at(500.0, 150.0), 20.0));
    }
}

#[test]
fn the_border_distance_of_a_large_polygon_is_exact_far_from_its_centre() {
    // 40 km square: the fix frame, not the zone frame, measures the last metres.
    let z = zone(
        ZoneKind::Inclusion,
        &area(&square(0.0, 0.0, 20_000.0), &[]),
        0.0,
    );
    // `at` lays out east-west metres at the reference latitude: rescale to the fix's.
    let local =
        |north: f64, m: f64| m * metres_per_degree(at(0.0, north).1).0 / metres_per_degree(LAT).0;
    for (e, n, want) in [
        (19_950.0, 19_000.0, local(19_000.0, 50.0)),
        (-19_000.0, -19_990.0, 10.0),
    ] {
        let c = classify(&z, e, n, 5.0);
        assert_eq!(c.class, Class::Inside);
        assert!(
            (c.distance_m - want).abs() < 0.05,
            "{} vs {want}",
            c.distance_m
        );
    }
}
