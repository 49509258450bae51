//! Metres on the ground around a point: offsets, distances, bearings, straight segments, and the
//! zone geometries the geoward API accepts.
//!
//! Role: every distance the simulator reasons with (how far a supervisee travelled, how far a
//! fix lies from the true position, how far a school is from a commute) is measured here, with
//! the same metric geoward uses to decide alerts: the mean-latitude flat-earth distance on the
//! WGS-84 ellipsoid (meridional and prime-vertical radii of curvature). Against Karney's
//! geodesic it is within 0.01% up to 50 km (tested); geoward itself switches to the geodesic
//! beyond 10 km, a difference of centimetres.
//!
//! Conventions and invariants:
//! - every point is a [`LatLon`] `(lat, lon)` in WGS-84 degrees, in that order, in every
//!   function here; only the GeoJSON this module emits is in GeoJSON's `[lon, lat]` order;
//! - [`offset`] and [`displacement_m`] are inverse to each other (to micrometres), and
//!   `distance_m(p, offset(p, n, e)) == hypot(n, e)` to micrometres;
//! - a segment is straight in lon/lat, as zone edges are in geoward; [`interpolate`] is linear
//!   in lon/lat and exact at its endpoints (so distances along it are proportional to the
//!   fraction only to within 0.01% on segments of a few km);
//! - pure and total; not meant for the antimeridian or the poles (no supervisee lives there).

use serde_json::{json, Value};

/// A point as `(lat, lon)`, WGS-84 degrees.
pub type LatLon = (f64, f64);

/// WGS-84 semi-major axis, metres.
const A: f64 = 6_378_137.0;
/// WGS-84 first eccentricity squared.
const E2: f64 = 0.006_694_379_990_141_317;

/// Metres per degree `(north, east)` at `lat`: of latitude (meridional radius M) and of
/// longitude (prime-vertical radius N times cos lat).
fn metres_per_degree(lat: f64) -> (f64, f64) {
    let phi = lat.to_radians();
    let w2 = 1.0 - E2 * phi.sin().powi(2);
    let w = w2.sqrt();
    let k = std::f64::consts::PI / 180.0;
    (A * (1.0 - E2) / (w2 * w) * k, A / w * phi.cos() * k)
}

/// The point `north_m` metres north and `east_m` metres east of `(lat, lon)` (negative values
/// go south and west), measured with the mean latitude of the two points, so that
/// [`displacement_m`] gives back exactly `(north_m, east_m)`.
pub fn offset(lat: f64, lon: f64, north_m: f64, east_m: f64) -> LatLon {
    let mut lat2 = lat + north_m / metres_per_degree(lat).0;
    for _ in 0..4 {
        lat2 = lat + north_m / metres_per_degree(0.5 * (lat + lat2)).0;
    }
    let east_per_degree = metres_per_degree(0.5 * (lat + lat2)).1;
    (lat2, lon + east_m / east_per_degree)
}

/// The `(north_m, east_m)` metres from `from` to `to`, at the mean latitude of the two.
pub fn displacement_m(from: LatLon, to: LatLon) -> (f64, f64) {
    let (ky, kx) = metres_per_degree(0.5 * (from.0 + to.0));
    ((to.0 - from.0) * ky, (to.1 - from.1) * kx)
}

/// Distance in metres between two points (geoward's metric, see the module doc).
pub fn distance_m(a: LatLon, b: LatLon) -> f64 {
    let (n, e) = displacement_m(a, b);
    n.hypot(e)
}

/// Initial bearing from `from` to `to`, degrees clockwise from north, in `[0, 360)`;
/// 0 when the points coincide.
pub fn bearing_deg(from: LatLon, to: LatLon) -> f64 {
    let (n, e) = displacement_m(from, to);
    let b = e.atan2(n).to_degrees().rem_euclid(360.0);
    if b >= 360.0 {
        0.0
    } else {
        b
    }
}

/// The point `fraction` of the way from `from` to `to` along the straight (in lon/lat)
/// segment: `from` at 0, `to` at 1; fractions outside `[0, 1]` extrapolate.
pub fn interpolate(from: LatLon, to: LatLon, fraction: f64) -> LatLon {
    (
        from.0 + fraction * (to.0 - from.0),
        from.1 + fraction * (to.1 - from.1),
    )
}

/// Distance in metres from `p` to the nearest point of the segment `a`–`b`. The nearest point
/// is found in a flat frame at `p` (affine in lon/lat, so the segment stays straight) and then
/// measured with [`distance_m`], so the result is the distance to a real point of the segment;
/// the ends are real points too, and over kilometres the two frames differ by millimetres, so
/// the nearer end wins when it is nearer.
pub fn distance_to_segment_m(p: LatLon, a: LatLon, b: LatLon) -> f64 {
    let (ky, kx) = metres_per_degree(p.0);
    let xy = |q: LatLon| ((q.1 - p.1) * kx, (q.0 - p.0) * ky);
    let ((ax, ay), (bx, by)) = (xy(a), xy(b));
    let (dx, dy) = (bx - ax, by - ay);
    let len2 = dx * dx + dy * dy;
    let t = if len2 > 0.0 {
        (-(ax * dx + ay * dy) / len2).clamp(0.0, 1.0)
    } else {
        0.0
    };
    distance_m(p, interpolate(a, b, t))
        .min(distance_m(p, a))
        .min(distance_m(p, b))
}

/// A circular zone as geoward accepts it:
/// `{"type":"Circle","coordinates":[lon,lat],"radius_m":R}`.
pub fn circle_zone(centre: LatLon, radius_m: f64) -> Value {
    json!({"type": "Circle", "coordinates": [centre.1, centre.0], "radius_m": radius_m})
}

/// A GeoJSON Polygon: the square of side `2 * half_side_m` centred on `centre`, sides along
/// the meridian and the parallel (each side `2 * half_side_m` to within 0.01%); one closed
/// ring starting south-west, counter-clockwise, `[lon, lat]` positions.
pub fn square_polygon(centre: LatLon, half_side_m: f64) -> Value {
    let h = half_side_m;
    let corner = |north: f64, east: f64| {
        let (lat, lon) = offset(centre.0, centre.1, north, east);
        json!([lon, lat])
    };
    let sw = corner(-h, -h);
    json!({
        "type": "Polygon",
        "coordinates": [[sw.clone(), corner(-h, h), corner(h, h), corner(h, -h), sw]],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use georef::{Distance, Geodesic, Point};
    use proptest::prelude::*;

    /// Zhoukou, Henan.
    const ZHOUKOU: LatLon = (33.625, 114.65);

    fn karney(a: LatLon, b: LatLon) -> f64 {
        Geodesic.distance(Point::new(a.1, a.0), Point::new(b.1, b.0))
    }

    #[test]
    fn one_degree_matches_the_published_wgs84_lengths() {
        // Lengths of one degree on WGS-84 (e.g. the NGA tables): latitude 110 574 m at the
        // equator and 111 132 m at 45 degrees; longitude 111 320 m and 78 847 m.
        let near = |x: f64, y: f64| (x - y).abs() < 1.0;
        assert!(near(distance_m((-0.5, 0.0), (0.5, 0.0)), 110_574.0));
        assert!(near(distance_m((44.5, 0.0), (45.5, 0.0)), 111_132.0));
        assert!(near(distance_m((0.0, 0.0), (0.0, 1.0)), 111_320.0));
        assert!(near(distance_m((45.0, 0.0), (45.0, 1.0)), 78_847.0));
    }

    #[test]
    fn offset_moves_by_the_requested_metres_in_the_requested_direction() {
        let (lat, lon) = ZHOUKOU;
        let north = offset(lat, lon, 1000.0, 0.0);
        assert!(north.0 > lat && (north.1 - lon).abs() < 1e-12);
        let west = offset(lat, lon, 0.0, -1000.0);
        assert!(west.1 < lon && (west.0 - lat).abs() < 1e-12);
        assert!((distance_m(ZHOUKOU, north) - 1000.0).abs() < 1e-6);
        assert!((bearing_deg(ZHOUKOU, north) - 0.0).abs() < 1e-9);
        assert!((bearing_deg(ZHOUKOU, west) - 270.0).abs() < 1e-9);
        assert!((bearing_deg(ZHOUKOU, offset(lat, lon, -10.0, 10.0)) - 135.0).abs() < 1e-6);
        assert_eq!(bearing_deg(ZHOUKOU, ZHOUKOU), 0.0);
    }

    #[test]
    fn interpolate_is_exact_at_the_ends_and_halves_the_distance_in_the_middle() {
        let b = offset(ZHOUKOU.0, ZHOUKOU.1, 3000.0, -4000.0);
        assert_eq!(interpolate(ZHOUKOU, b, 0.0), ZHOUKOU);
        assert_eq!(interpolate(ZHOUKOU, b, 1.0), b);
        let mid = interpolate(ZHOUKOU, b, 0.5);
        // Straight in lon/lat is not quite straight in metres: within 0.01%.
        assert!((distance_m(ZHOUKOU, mid) - 2500.0).abs() < 0.25);
        assert!((distance_m(mid, b) - 2500.0).abs() < 0.25);
    }

    #[test]
    fn distance_to_a_segment_is_perpendicular_inside_and_to_the_end_outside() {
        let (lat, lon) = ZHOUKOU;
        let a = offset(lat, lon, 0.0, -1000.0);
        let b = offset(lat, lon, 0.0, 1000.0);
        let above = offset(lat, lon, 300.0, 0.0);
        assert!((distance_to_segment_m(above, a, b) - 300.0).abs() < 0.01);
        let beyond = offset(lat, lon, 0.0, 1500.0);
        assert!((distance_to_segment_m(beyond, a, b) - 500.0).abs() < 0.01);
        assert!(distance_to_segment_m(ZHOUKOU, a, b) < 0.01);
        assert!((distance_to_segment_m(above, ZHOUKOU, ZHOUKOU) - 300.0).abs() < 0.01);
    }

    #[test]
    fn circle_zone_is_geowards_circle_in_lon_lat_order() {
        assert_eq!(
            circle_zone(ZHOUKOU, 150.0),
            json!({"type": "Circle", "coordinates": [114.65, 33.625], "radius_m": 150.0})
        );
    }

    #[test]
    fn square_polygon_is_a_closed_counter_clockwise_lon_lat_ring_of_the_right_size() {
        let g = square_polygon(ZHOUKOU, 500.0);
        assert_eq!(g["type"], "Polygon");
        let ring: Vec<(f64, f64)> = g["coordinates"][0]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p[0].as_f64().unwrap(), p[1].as_f64().unwrap()))
            .collect();
        assert_eq!(ring.len(), 5);
        assert_eq!(ring[0], ring[4]);
        // Shoelace in (lon, lat): positive means counter-clockwise.
        let twice_area: f64 = ring
            .windows(2)
            .map(|w| w[0].0 * w[1].1 - w[1].0 * w[0].1)
            .sum();
        assert!(twice_area > 0.0);
        for w in ring.windows(2) {
            let side = distance_m((w[0].1, w[0].0), (w[1].1, w[1].0));
            assert!((side - 1000.0).abs() < 0.1, "side {side}");
        }
        let (lon, lat) = ring[0];
        assert!(lon < ZHOUKOU.1 && lat < ZHOUKOU.0, "starts south-west");
    }

    proptest! {
        #[test]
        fn distance_is_within_a_hundredth_of_a_percent_of_the_geodesic_under_50_km(
            lat in -70.0f64..70.0, lon in -179.0f64..179.0,
            dist in 1.0f64..50_000.0, bearing in 0.0f64..360.0,
        ) {
            let (n, e) = (dist * bearing.to_radians().cos(), dist * bearing.to_radians().sin());
            let b = offset(lat, lon, n, e);
            let ours = distance_m((lat, lon), b);
            prop_assert!((ours - dist).abs() < 1e-6, "offset/distance round trip {ours} vs {dist}");
            let reference = karney((lat, lon), b);
            prop_assert!((ours - reference).abs() <= 1e-4 * reference + 1e-6,
                "{ours} vs geodesic {reference}");
        }

        #[test]
        fn offset_and_displacement_are_inverse(
            lat in -70.0f64..70.0, lon in -179.0f64..179.0,
            n in -50_000.0f64..50_000.0, e in -50_000.0f64..50_000.0,
        ) {
            let (n2, e2) = displacement_m((lat, lon), offset(lat, lon, n, e));
            prop_assert!((n2 - n).abs() < 1e-6 && (e2 - e).abs() < 1e-6);
        }

        #[test]
        fn distance_to_segment_is_never_more_than_to_its_ends_nor_less_than_to_sampled_points(
            pn in -20_000.0f64..20_000.0, pe in -20_000.0f64..20_000.0,
            bn in -10_000.0f64..10_000.0, be in -10_000.0f64..10_000.0,
        ) {
            let a = ZHOUKOU;
            let b = offset(a.0, a.1, bn, be);
            let p = offset(a.0, a.1, pn, pe);
            let d = distance_to_segment_m(p, a, b);
            prop_assert!(d <= distance_m(p, a) + 1e-6 && d <= distance_m(p, b) + 1e-6);
            for i in 0..=100 {
                let s = distance_m(p, interpolate(a, b, f64::from(i) / 100.0));
                prop_assert!(s >= d - 1e-3 * d - 0.01, "sample {s} below {d}");
            }
        }
    }
}
