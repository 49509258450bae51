//! Ring cleaning and topology checks on WGS-84 rings.
//!
//! Rings are held open (no closing point), with consecutive duplicates dropped and each point
//! remembering its index in the officer's input. Validity is stricter than OGC "simple": no two
//! boundary segments may meet anywhere except adjacent segments of one ring at their shared
//! vertex. So a ring may not touch itself, a hole may not touch its shell or another hole, and
//! the polygons of a MultiPolygon may not touch. Segments live in an R-tree, so a check costs
//! about `n log n`; a comparison budget bounds pathological inputs (`too_complex`).
//! Containment (holes in shells, polygons inside polygons) is decided by casting a ray from one
//! vertex through the same R-tree, with exact orientation predicates.

use std::collections::BTreeSet;

use geo::kernels::{Kernel, Orientation, RobustKernel};
use geo::line_intersection::{line_intersection, LineIntersection};
use geo::{Coord, Line};
use rstar::{RTree, RTreeObject, AABB};

use super::error::{GeometryError, VertexRef};
use crate::domain::datum::Datum;

/// Segment comparisons allowed per segment (plus a fixed million) before giving up as
/// `too_complex`. Real boundaries need a few dozen; a 100,000-vertex zig-zag of long,
/// heavily overlapping segments runs out (about a second of work when optimised).
const BUDGET_PER_SEGMENT: usize = 256;

/// An open ring of WGS-84 points, no two consecutive equal (including last and first).
#[derive(Debug, Clone)]
pub(super) struct Ring {
    pub pts: Vec<Coord<f64>>,
    /// Input vertex index of each point, for messages.
    pub src: Vec<usize>,
}

/// Checks closure on the input ring, converts it to WGS-84 and drops repeated points.
pub(super) fn clean_ring(
    raw: &[(f64, f64)],
    polygon: usize,
    ring: usize,
    datum: Datum,
) -> Result<Ring, GeometryError> {
    let too_few = |distinct| GeometryError::TooFewPoints {
        polygon,
        ring,
        distinct,
    };
    let (Some(&first), Some(&last)) = (raw.first(), raw.last()) else {
        return Err(too_few(0));
    };
    if first != last {
        return Err(GeometryError::RingNotClosed {
            polygon,
            ring,
            first,
            last,
        });
    }
    let mut out = Ring {
        pts: Vec::with_capacity(raw.len()),
        src: Vec::with_capacity(raw.len()),
    };
    for (i, &(lon, lat)) in raw[..raw.len() - 1].iter().enumerate() {
        let (x, y) = datum.to_wgs84(lon, lat);
        // BD-09's shift applies everywhere; keep the result on the globe.
        let c = Coord {
            x: x.clamp(-180.0, 180.0),
            y: y.clamp(-90.0, 90.0),
        };
        if out.pts.last() != Some(&c) {
            out.pts.push(c);
            out.src.push(i);
        }
    }
    while out.pts.len() > 1 && out.pts.first() == out.pts.last() {
        out.pts.pop();
        out.src.pop();
    }
    if out.pts.len() < 3 {
        return Err(too_few(out.pts.len()));
    }
    let (p0, p1) = (out.pts[0], out.pts[1]);
    if out.pts[2..]
        .iter()
        .all(|&p| RobustKernel::orient2d(p0, p1, p) == Orientation::Collinear)
    {
        return Err(GeometryError::ZeroArea { polygon, ring });
    }
    Ok(out)
}

/// True if the ring runs counter-clockwise (x east, y north). Assumes a simple ring with
/// non-zero area: the lowest-then-leftmost vertex is convex, so its turn gives the orientation.
pub(super) fn is_ccw(ring: &Ring) -> bool {
    let pts = &ring.pts;
    let n = pts.len();
    let mut k = 0;
    for (i, p) in pts.iter().enumerate() {
        if (p.y, p.x) < (pts[k].y, pts[k].x) {
            k = i;
        }
    }
    let prev = pts[(k + n - 1) % n];
    let next = pts[(k + 1) % n];
    RobustKernel::orient2d(prev, pts[k], next) == Orientation::CounterClockwise
}

#[derive(Debug, Clone, Copy)]
struct Seg {
    line: Line<f64>,
    polygon: usize,
    ring: usize,
    /// Segment index in its ring: from point `idx` to point `idx + 1` (mod ring length).
    idx: usize,
    ring_len: usize,
}

impl Seg {
    fn key(&self) -> (usize, usize, usize) {
        (self.polygon, self.ring, self.idx)
    }

    fn adjacent(&self, o: &Seg) -> bool {
        if (self.polygon, self.ring) != (o.polygon, o.ring) {
            return false;
        }
        let d = self.idx.abs_diff(o.idx);
        d == 1 || d + 1 == self.ring_len
    }
}

impl RTreeObject for Seg {
    type Envelope = AABB<[f64; 2]>;

    fn envelope(&self) -> Self::Envelope {
        let (a, b) = (self.line.start, self.line.end);
        AABB::from_corners([a.x, a.y], [b.x, b.y])
    }
}

/// Counts segment comparisons against a fixed budget.
struct Budget {
    left: usize,
    total: usize,
}

impl Budget {
    fn spend(&mut self, n: usize) -> Result<(), GeometryError> {
        self.left = self
            .left
            .checked_sub(n)
            .ok_or(GeometryError::TooComplex { budget: self.total })?;
        Ok(())
    }
}

/// Rejects touching or crossing boundaries, holes outside their shell, nested holes and
/// polygons inside other polygons. `datum` is only used to report coordinates as drawn.
pub(super) fn check(polygons: &[Vec<Ring>], datum: Datum) -> Result<(), GeometryError> {
    let mut segs = Vec::new();
    for (polygon, rings) in polygons.iter().enumerate() {
        for (ring, r) in rings.iter().enumerate() {
            let n = r.pts.len();
            segs.extend((0..n).map(|idx| Seg {
                line: Line::new(r.pts[idx], r.pts[(idx + 1) % n]),
                polygon,
                ring,
                idx,
                ring_len: n,
            }));
        }
    }
    let total = segs
        .len()
        .saturating_mul(BUDGET_PER_SEGMENT)
        .saturating_add(1_000_000);
    let mut budget = Budget { left: total, total };
    let tree = RTree::bulk_load(segs.clone());
    let vref = |s: &Seg| VertexRef {
        polygon: s.polygon,
        ring: s.ring,
        vertex: polygons[s.polygon][s.ring].src[s.idx],
    };

    for s in &segs {
        for c in tree.locate_in_envelope_intersecting(&s.envelope()) {
            budget.spend(1)?;
            if c.key() <= s.key() {
                continue;
            }
            let hit = match line_intersection(s.line, c.line) {
                None => None,
                Some(LineIntersection::Collinear { intersection }) => Some(intersection.start),
                Some(LineIntersection::SinglePoint { intersection, .. }) => {
                    (!s.adjacent(c)).then_some(intersection)
                }
            };
            if let Some(p) = hit {
                let (lon, lat) = datum.from_wgs84(p.x, p.y);
                return Err(GeometryError::SelfIntersection {
                    first: vref(s),
                    second: vref(c),
                    lon,
                    lat,
                });
            }
        }
    }

    // Boundaries are now pairwise disjoint, so one vertex decides each containment question.
    // Only rings the ray crossed an odd number of times are looked at: no quadratic scans.
    for (i, rings) in polygons.iter().enumerate() {
        for (h, hole) in rings.iter().enumerate().skip(1) {
            let inside = ray_parity(&tree, hole.pts[0], (i, h), &mut budget)?;
            if !inside.contains(&(i, 0)) {
                return Err(GeometryError::HoleOutsideShell {
                    polygon: i,
                    ring: h,
                });
            }
            if let Some(&(_, outer)) = inside.iter().find(|&&(p, r)| p == i && r > 0) {
                return Err(GeometryError::NestedHoles {
                    polygon: i,
                    ring: h,
                    outer,
                });
            }
        }
    }
    if polygons.len() > 1 {
        for (i, rings) in polygons.iter().enumerate() {
            let inside = ray_parity(&tree, rings[0].pts[0], (i, 0), &mut budget)?;
            // Inside polygon j's area: inside its shell and in none of its holes.
            let in_area = |&&(j, r): &&(usize, usize)| {
                r == 0 && inside.range((j, 1)..(j + 1, 0)).next().is_none()
            };
            if let Some(&(outer, _)) = inside.iter().find(in_area) {
                return Err(GeometryError::OverlappingPolygons { inner: i, outer });
            }
        }
    }
    Ok(())
}

/// The rings (other than `own`) that contain `p`, by the parity of crossings of a ray from
/// `p` towards +x, as `(polygon, ring)` in order.
fn ray_parity(
    tree: &RTree<Seg>,
    p: Coord<f64>,
    own: (usize, usize),
    budget: &mut Budget,
) -> Result<BTreeSet<(usize, usize)>, GeometryError> {
    let ray = AABB::from_corners([p.x, p.y], [1e9, p.y]);
    let mut inside = BTreeSet::new();
    for s in tree.locate_in_envelope_intersecting(&ray) {
        budget.spend(1)?;
        if (s.polygon, s.ring) == own {
            continue;
        }
        let (a, b) = (s.line.start, s.line.end);
        // Half-open rule: an edge counts if it spans p.y with one end strictly above.
        let crosses = match (a.y > p.y, b.y > p.y) {
            (false, true) => RobustKernel::orient2d(a, b, p) == Orientation::CounterClockwise,
            (true, false) => RobustKernel::orient2d(a, b, p) == Orientation::Clockwise,
            _ => false,
        };
        if crosses && !inside.remove(&(s.polygon, s.ring)) {
            inside.insert((s.polygon, s.ring));
        }
    }
    Ok(inside)
}
