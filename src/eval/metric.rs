//! Metric frames on the WGS-84 ellipsoid: how the engine turns degrees into metres.
//!
//! Role: every distance that decides a classification is measured here. Two tools:
//! - [`Frame`]: an equirectangular projection centred on a point, scaled by the ellipsoid's
//!   meridional (M) and prime-vertical (N) radii of curvature at that latitude. It is affine in
//!   lon/lat, so straight zone edges (straight in lon/lat, as in `geo`) stay straight in it.
//!   Zones use one centred on the zone for their index; classification re-measures in one
//!   centred on the fix.
//! - [`distance_m`]: the "mean-latitude" flat-earth distance on the ellipsoid (second-order
//!   accurate), falling back to Karney's geodesic (`geo::Geodesic`) beyond
//!   [`FLAT_LIMIT_M`]. Measured against Karney (see the tests and `docs/rules.md`): under 1 mm
//!   up to 2 km and under 2 cm up to 10 km, at latitudes up to 70 degrees.
//!
//! Invariants: pure, total, no panics; non-finite input gives non-finite output.

use geo::{Distance, Geodesic, Point};

/// WGS-84 semi-major axis, metres.
const A: f64 = 6_378_137.0;
/// WGS-84 first eccentricity squared.
const E2: f64 = 0.006_694_379_990_141_317;
/// Beyond this many metres [`distance_m`] uses the (slower) geodesic.
pub const FLAT_LIMIT_M: f64 = 10_000.0;

/// Metres per degree of longitude and of latitude at `lat_deg`.
pub fn metres_per_degree(lat_deg: f64) -> (f64, f64) {
    let phi = lat_deg.to_radians();
    let s = phi.sin();
    let w2 = 1.0 - E2 * s * s;
    let w = w2.sqrt();
    let n = A / w;
    let m = A * (1.0 - E2) / (w2 * w);
    let k = std::f64::consts::PI / 180.0;
    (n * phi.cos() * k, m * k)
}

/// A local metric frame: x east, y north, metres, origin at (`lon0`, `lat0`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Frame {
    pub lon0: f64,
    pub lat0: f64,
    pub kx: f64,
    pub ky: f64,
}

impl Frame {
    pub fn at(lon0: f64, lat0: f64) -> Frame {
        let (kx, ky) = metres_per_degree(lat0);
        Frame { lon0, lat0, kx, ky }
    }

    /// Projects lon/lat (degrees) into the frame.
    #[inline]
    pub fn xy(&self, lon: f64, lat: f64) -> [f64; 2] {
        [(lon - self.lon0) * self.kx, (lat - self.lat0) * self.ky]
    }

    /// The inverse of [`Frame::xy`].
    #[inline]
    pub fn lonlat(&self, p: [f64; 2]) -> (f64, f64) {
        (self.lon0 + p[0] / self.kx, self.lat0 + p[1] / self.ky)
    }
}

/// Longitude difference wrapped into [-180, 180].
fn dlon(a: f64, b: f64) -> f64 {
    let d = b - a;
    if d > 180.0 {
        d - 360.0
    } else if d < -180.0 {
        d + 360.0
    } else {
        d
    }
}

/// Ellipsoidal distance in metres between two lon/lat points (see the module doc).
pub fn distance_m(a: (f64, f64), b: (f64, f64)) -> f64 {
    let (kx, ky) = metres_per_degree((a.1 + b.1) * 0.5);
    let dx = dlon(a.0, b.0) * kx;
    let dy = (b.1 - a.1) * ky;
    let flat = dx.hypot(dy);
    if flat <= FLAT_LIMIT_M || !flat.is_finite() {
        return flat;
    }
    Geodesic.distance(Point::new(a.0, a.1), Point::new(b.0, b.1))
}

/// Closest point to `p` on segment `a`–`b` (all in one frame), and its squared distance.
#[inline]
pub fn closest_on_segment(p: [f64; 2], a: [f64; 2], b: [f64; 2]) -> ([f64; 2], f64) {
    let (vx, vy) = (b[0] - a[0], b[1] - a[1]);
    let (wx, wy) = (p[0] - a[0], p[1] - a[1]);
    let len2 = vx * vx + vy * vy;
    let t = if len2 > 0.0 {
        ((wx * vx + wy * vy) / len2).clamp(0.0, 1.0)
    } else {
        0.0
    };
    let q = [a[0] + t * vx, a[1] + t * vy];
    let (dx, dy) = (p[0] - q[0], p[1] - q[1]);
    (q, dx * dx + dy * dy)
}

/// Where segment `p`–`q` meets segment `a`–`b`, as the parameter along `p`–`q`, if it does
/// (touching counts; collinear overlaps report their nearer end).
pub fn segment_hit(p: [f64; 2], q: [f64; 2], a: [f64; 2], b: [f64; 2]) -> Option<f64> {
    let r = [q[0] - p[0], q[1] - p[1]];
    let s = [b[0] - a[0], b[1] - a[1]];
    let den = r[0] * s[1] - r[1] * s[0];
    let ap = [a[0] - p[0], a[1] - p[1]];
    if den == 0.0 {
        return None; // parallel: the depth samples around it decide
    }
    let t = (ap[0] * s[1] - ap[1] * s[0]) / den;
    let u = (ap[0] * r[1] - ap[1] * r[0]) / den;
    ((0.0..=1.0).contains(&t) && (0.0..=1.0).contains(&u)).then_some(t)
}

/// Distance between segments `p`–`q` and `a`–`b` in one frame.
pub fn segment_distance(p: [f64; 2], q: [f64; 2], a: [f64; 2], b: [f64; 2]) -> f64 {
    if segment_hit(p, q, a, b).is_some() {
        return 0.0;
    }
    let d2 = closest_on_segment(p, a, b)
        .1
        .min(closest_on_segment(q, a, b).1)
        .min(closest_on_segment(a, p, q).1)
        .min(closest_on_segment(b, p, q).1);
    d2.sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Worst error of [`distance_m`] against Karney over a fan of bearings at `d` metres.
    fn worst_error(lat: f64, d: f64) -> f64 {
        let mut worst: f64 = 0.0;
        for i in 0..36 {
            let bearing = f64::from(i) * 10.0;
            let o = Point::new(113.65, lat);
            let p = geo::Destination::destination(&Geodesic, o, bearing, d);
            let e = (distance_m((o.x(), o.y()), (p.x(), p.y())) - d).abs();
            worst = worst.max(e);
        }
        worst
    }

    #[test]
    fn the_flat_distance_is_within_a_millimetre_of_the_geodesic_up_to_two_kilometres() {
        for lat in [0.0, 23.0, 34.6, 45.0, 60.0, 70.0] {
            assert!(worst_error(lat, 2_000.0) < 0.001, "lat {lat}");
            assert!(worst_error(lat, 200.0) < 0.001, "lat {lat}");
        }
    }

    #[test]
    fn the_flat_distance_is_within_two_centimetres_of_the_geodesic_up_to_ten_kilometres() {
        for lat in [0.0, 23.0, 34.6, 45.0, 60.0, 70.0, -70.0] {
            assert!(worst_error(lat, 9_999.0) < 0.02, "lat {lat}");
        }
    }

    #[test]
    fn long_distances_use_the_geodesic() {
        assert!(worst_error(34.6, 80_000.0) < 0.001);
    }

    #[test]
    fn non_finite_input_gives_non_finite_output_without_panicking() {
        assert!(distance_m((f64::NAN, 0.0), (0.0, 0.0)).is_nan());
        assert!(!distance_m((f64::INFINITY, 0.0), (0.0, 0.0)).is_finite());
    }

    #[test]
    fn a_segment_crossing_another_is_at_distance_zero() {
        let d = segment_distance([0.0, -1.0], [0.0, 1.0], [-1.0, 0.0], [1.0, 0.0]);
        assert_eq!(d, 0.0);
        let d = segment_distance([0.0, 1.0], [0.0, 2.0], [-1.0, 0.0], [1.0, 0.0]);
        assert!((d - 1.0).abs() < 1e-12);
    }
}
