//! Zone shapes of the plan and how far a point or a segment is from them: the jurisdiction's
//! regular 64-gon, the circles of schools, homes and victims' homes, leave destinations; and
//! where schools and victims' homes are put.
//!
//! Invariants:
//! - distances use geoward's metric ([`geo`]): a circle's signed distance is the distance to its
//!   centre minus its radius; a polygon's is the distance to its nearest edge (negative inside,
//!   even-odd rule in lon/lat, edges straight in lon/lat, as geoward draws them);
//! - [`Shape::bounds`] never claims more than the exact [`Shape::signed_distance`]: its lower
//!   bound is at most, its upper bound at least, the exact value (for a convex polygon; for
//!   any other polygon the bounds are infinite);
//! - rings are closed (first vertex repeated last) and counter-clockwise.

use rand::Rng;
use serde_json::{json, Value};

use crate::geo::{self, LatLon};
use crate::movement::Person;

/// A zone's geometry, ready for distances.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Shape {
    Circle {
        centre: LatLon,
        radius: f64,
    },
    Polygon {
        /// Closed ring.
        ring: Vec<LatLon>,
        /// The mean of the vertices.
        centre: LatLon,
        /// Distance from `centre` to the nearest edge (0 when not convex).
        r_in: f64,
        /// Distance from `centre` to the farthest vertex.
        r_out: f64,
        convex: bool,
    },
}

impl Shape {
    pub fn circle(centre: LatLon, radius: f64) -> Shape {
        Shape::Circle { centre, radius }
    }

    /// A polygon from a closed ring of at least 4 points.
    pub fn polygon(ring: Vec<LatLon>) -> Option<Shape> {
        if ring.len() < 4 || ring.first() != ring.last() {
            return None;
        }
        let n = ring.len() - 1;
        let centre = (
            ring[..n].iter().map(|p| p.0).sum::<f64>() / n as f64,
            ring[..n].iter().map(|p| p.1).sum::<f64>() / n as f64,
        );
        let cross = |i: usize| {
            let (a, b, c) = (ring[i], ring[i + 1], ring[(i + 2) % n]);
            (b.1 - a.1) * (c.0 - b.0) - (b.0 - a.0) * (c.1 - b.1)
        };
        let signs: Vec<f64> = (0..n).map(cross).collect();
        let convex = signs.iter().all(|s| *s >= 0.0) || signs.iter().all(|s| *s <= 0.0);
        let convex = convex && point_in_ring(centre, &ring);
        let r_in = ring
            .windows(2)
            .map(|w| geo::distance_to_segment_m(centre, w[0], w[1]))
            .fold(f64::INFINITY, f64::min);
        let r_out = ring
            .iter()
            .map(|p| geo::distance_m(centre, *p))
            .fold(0.0, f64::max);
        Some(Shape::Polygon {
            ring,
            centre,
            r_in: if convex { r_in } else { 0.0 },
            r_out,
            convex,
        })
    }

    /// From geoward's `Circle` or a GeoJSON `Polygon` (outer ring only).
    pub fn from_geometry(g: &Value) -> Option<Shape> {
        let pair = |v: &Value| Some((v.get(1)?.as_f64()?, v.get(0)?.as_f64()?));
        match g.get("type")?.as_str()? {
            "Circle" => Some(Shape::circle(
                pair(g.get("coordinates")?)?,
                g.get("radius_m")?.as_f64()?,
            )),
            "Polygon" => {
                let ring = g.get("coordinates")?.get(0)?.as_array()?;
                Shape::polygon(ring.iter().map(pair).collect::<Option<Vec<_>>>()?)
            }
            _ => None,
        }
    }

    /// The geometry as the geoward API takes it.
    pub fn geometry(&self) -> Value {
        match self {
            Shape::Circle { centre, radius } => geo::circle_zone(*centre, *radius),
            Shape::Polygon { ring, .. } => polygon_geojson(ring),
        }
    }

    /// Signed distance from `p` to the border, metres: negative inside.
    pub fn signed_distance(&self, p: LatLon) -> f64 {
        match self {
            Shape::Circle { centre, radius } => geo::distance_m(p, *centre) - radius,
            Shape::Polygon { ring, .. } => {
                let d = ring
                    .windows(2)
                    .map(|w| geo::distance_to_segment_m(p, w[0], w[1]))
                    .fold(f64::INFINITY, f64::min);
                if point_in_ring(p, ring) {
                    -d
                } else {
                    d
                }
            }
        }
    }

    /// Cheap bounds `(lo, hi)` of [`Shape::signed_distance`] (exact for a circle).
    pub fn bounds(&self, p: LatLon) -> (f64, f64) {
        match self {
            Shape::Circle { .. } => {
                let d = self.signed_distance(p);
                (d, d)
            }
            Shape::Polygon {
                centre,
                r_in,
                r_out,
                convex,
                ..
            } => {
                if !convex {
                    return (f64::NEG_INFINITY, f64::INFINITY);
                }
                let rho = geo::distance_m(p, *centre);
                // Outside, the polygon lies within r_out of the centre; inside, the border is
                // at least r_in - rho and at most r_out - rho away.
                // One metre of slack for the metric's departure from the plane.
                (rho - r_out - 1.0, rho - r_in + 1.0)
            }
        }
    }

    /// The least signed distance along the straight segment `a`–`b` (exact for a circle; for a
    /// polygon the lesser of the ends, which is exact for the depth inside a convex polygon).
    pub fn segment_clearance(&self, a: LatLon, b: LatLon) -> f64 {
        match self {
            Shape::Circle { centre, radius } => geo::distance_to_segment_m(*centre, a, b) - radius,
            Shape::Polygon { .. } => self.signed_distance(a).min(self.signed_distance(b)),
        }
    }
}

/// Even-odd point in a closed ring, in lon/lat.
pub(crate) fn point_in_ring(p: LatLon, ring: &[LatLon]) -> bool {
    let (y, x) = p;
    let mut inside = false;
    for w in ring.windows(2) {
        let ((y1, x1), (y2, x2)) = (w[0], w[1]);
        if (y1 > y) != (y2 > y) {
            let xi = x1 + (y - y1) / (y2 - y1) * (x2 - x1);
            if x < xi {
                inside = !inside;
            }
        }
    }
    inside
}

/// The regular `n`-gon inscribed in the circle of `radius_m` around `centre`: a closed,
/// counter-clockwise ring starting due east.
pub(crate) fn regular_polygon(centre: LatLon, radius_m: f64, n: usize) -> Vec<LatLon> {
    let n = n.max(3);
    let mut ring: Vec<LatLon> = (0..n)
        .map(|k| {
            let a = std::f64::consts::TAU * k as f64 / n as f64;
            geo::offset(centre.0, centre.1, radius_m * a.sin(), radius_m * a.cos())
        })
        .collect();
    ring.push(ring[0]);
    ring
}

/// A GeoJSON Polygon of one closed ring, `[lon, lat]` positions.
pub(crate) fn polygon_geojson(ring: &[LatLon]) -> Value {
    let coords: Vec<Value> = ring.iter().map(|p| json!([p.1, p.0])).collect();
    json!({"type": "Polygon", "coordinates": [coords]})
}

/// `n` school centres drawn uniformly within [`super::SCHOOL_SPREAD_M`] of `centre`.
pub(crate) fn place_schools<R: Rng>(rng: &mut R, centre: LatLon, n: usize) -> Vec<LatLon> {
    (0..n)
        .map(|_| {
            let r = super::SCHOOL_SPREAD_M * rng.gen::<f64>().sqrt();
            let a = rng.gen_range(0.0..std::f64::consts::TAU);
            geo::offset(centre.0, centre.1, r * a.cos(), r * a.sin())
        })
        .collect()
}

/// The straight pieces a person's track is made of, at any time: the route's legs and every
/// leg of every excursion.
pub(crate) fn track_segments(person: &Person) -> Vec<(LatLon, LatLon)> {
    let mut segs = route_segments(person);
    for e in person.excursions() {
        segs.push((e.depart_from, e.arrive_at));
        segs.push((e.arrive_at, e.leave_from));
        segs.push((e.leave_from, e.rejoin_at));
    }
    segs
}

pub(crate) fn route_segments(person: &Person) -> Vec<(LatLon, LatLon)> {
    person.route().windows(2).map(|w| (w[0], w[1])).collect()
}

/// Least distance from `p` to any of `segs` (infinite for none).
pub(crate) fn distance_to_segments(p: LatLon, segs: &[(LatLon, LatLon)]) -> f64 {
    segs.iter()
        .map(|(a, b)| geo::distance_to_segment_m(p, *a, *b))
        .fold(f64::INFINITY, f64::min)
}

/// The point `d` metres along the route (its end beyond).
pub(crate) fn along_route(person: &Person, mut d: f64) -> LatLon {
    let route = person.route();
    for w in route.windows(2) {
        let leg = geo::distance_m(w[0], w[1]);
        if d < leg && leg > 0.0 {
            return geo::interpolate(w[0], w[1], d / leg);
        }
        d -= leg;
    }
    route[route.len() - 1]
}

/// A victim's home for `person`: 1–4 km from a point of their route, at least
/// `radius + 400 m` from every segment of `avoid` (the person's track), and at least 2 km
/// inside the jurisdiction. `None` after 200 tries.
pub(crate) fn place_victim<R: Rng>(
    rng: &mut R,
    person: &Person,
    avoid: &[(LatLon, LatLon)],
    jurisdiction: &Shape,
) -> Option<LatLon> {
    let length: f64 = person
        .route()
        .windows(2)
        .map(|w| geo::distance_m(w[0], w[1]))
        .sum();
    for _ in 0..200 {
        let from = along_route(person, rng.gen_range(0.0..=length.max(0.0)));
        let (d, a) = (
            rng.gen_range(1000.0..4000.0),
            rng.gen_range(0.0..std::f64::consts::TAU),
        );
        let c = geo::offset(from.0, from.1, d * a.cos(), d * a.sin());
        if distance_to_segments(c, avoid) >= super::VICTIM_RADIUS_M + 400.0
            && jurisdiction.signed_distance(c) <= -2000.0
        {
            return Some(c);
        }
    }
    None
}

/// Whether `person`'s route keeps `school radius + 400 m` from every school.
pub(crate) fn route_clear_of(person: &Person, schools: &[LatLon]) -> bool {
    let need = super::SCHOOL_RADIUS_M + 400.0;
    schools
        .iter()
        .all(|s| person.distance_from_route_m(*s) >= need)
}
