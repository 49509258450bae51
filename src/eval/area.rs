//! The prepared form of a polygonal zone: edges in a zone-centred metric frame, an R-tree
//! over them for distances, and horizontal slabs for point-in-polygon.
//!
//! Role: answer, fast and exactly (up to the metric in [`super::metric`]), "is this point in
//! the area, and how far is it from the border", and "does this straight segment pass through
//! the area at a given depth".
//!
//! Invariants:
//! - containment uses the even-odd rule over every ring (shells and holes), with the half-open
//!   vertex rule, so a point is inside exactly when it is in a shell and not in a hole;
//! - the border distance is the exact distance to the nearest edge in a frame centred on the
//!   query point (the R-tree search runs in the zone frame, corrected for the two frames'
//!   scale difference so the nearest edge cannot be missed), re-measured with
//!   [`super::metric::distance_m`];
//! - building costs `O(n log n)` and the slab table is bounded to a few entries per edge.

use geo::MultiPolygon;
use rstar::primitives::{GeomWithData, Line};
use rstar::{RTree, AABB};

use super::metric::{
    closest_on_segment, distance_m, metres_per_degree, segment_distance, segment_hit, Frame,
};
use super::nearest::CandidateTree;

type Edge = GeomWithData<Line<[f64; 2]>, ()>;

/// Entries the slab table may hold per edge before it is made coarser.
const SLAB_BUDGET_PER_EDGE: usize = 6;

#[derive(Debug)]
pub(crate) struct Area {
    frame: Frame,
    tree: RTree<Edge>,
    quad: CandidateTree,
    edges: Vec<[[f64; 2]; 2]>,
    slab_y0: f64,
    slab_h: f64,
    /// Slab `s` holds `slab_items[slab_start[s]..slab_start[s + 1]]`.
    slab_start: Vec<u32>,
    slab_items: Vec<u32>,
}

impl Area {
    /// Prepares `mp`; `None` when it has no edges (then nothing is inside it).
    pub fn new(mp: &MultiPolygon<f64>) -> Option<Area> {
        let coords =
            mp.0.iter()
                .flat_map(|p| std::iter::once(p.exterior()).chain(p.interiors()))
                .flat_map(|ring| ring.coords());
        let (mut lo, mut hi) = ([f64::INFINITY; 2], [f64::NEG_INFINITY; 2]);
        for c in coords {
            lo = [lo[0].min(c.x), lo[1].min(c.y)];
            hi = [hi[0].max(c.x), hi[1].max(c.y)];
        }
        if !(lo[0].is_finite() && hi[1].is_finite()) {
            return None;
        }
        let frame = Frame::at((lo[0] + hi[0]) * 0.5, (lo[1] + hi[1]) * 0.5);
        let mut edges = Vec::new();
        for p in &mp.0 {
            for ring in std::iter::once(p.exterior()).chain(p.interiors()) {
                for l in ring.lines() {
                    let a = frame.xy(l.start.x, l.start.y);
                    let b = frame.xy(l.end.x, l.end.y);
                    if a != b {
                        edges.push([a, b]);
                    }
                }
            }
        }
        if edges.is_empty() {
            return None;
        }
        let tree = RTree::bulk_load(
            edges
                .iter()
                .map(|e| GeomWithData::new(Line::new(e[0], e[1]), ()))
                .collect(),
        );
        let (y0, y1) = (frame.xy(0.0, lo[1])[1], frame.xy(0.0, hi[1])[1]);
        let quad = quadtree(&edges, &frame, lo, hi);
        let mut area = Area {
            frame,
            tree,
            quad,
            edges,
            slab_y0: y0,
            slab_h: 1.0,
            slab_start: Vec::new(),
            slab_items: Vec::new(),
        };
        area.build_slabs(y0, y1);
        Some(area)
    }

    fn slab_range(&self, ylo: f64, yhi: f64) -> (usize, usize) {
        let last = self.slab_start.len().saturating_sub(2);
        let s = |y: f64| (((y - self.slab_y0) / self.slab_h).floor().max(0.0) as usize).min(last);
        (s(ylo), s(yhi))
    }

    fn build_slabs(&mut self, y0: f64, y1: f64) {
        let n = self.edges.len();
        let mut slabs = (n / 2).clamp(1, 1 << 16);
        loop {
            self.slab_h = ((y1 - y0) / slabs as f64).max(1e-6);
            self.slab_start = vec![0; slabs + 1];
            let total: usize = self
                .edges
                .iter()
                .map(|e| {
                    let (a, b) = self.slab_range(e[0][1].min(e[1][1]), e[0][1].max(e[1][1]));
                    b - a + 1
                })
                .sum();
            if total <= SLAB_BUDGET_PER_EDGE * n || slabs == 1 {
                break;
            }
            slabs = (slabs / 2).max(1);
        }
        let mut counts = vec![0u32; slabs + 1];
        let ranges: Vec<(usize, usize)> = self
            .edges
            .iter()
            .map(|e| self.slab_range(e[0][1].min(e[1][1]), e[0][1].max(e[1][1])))
            .collect();
        for &(a, b) in &ranges {
            for c in &mut counts[a + 1..=b + 1] {
                *c += 1;
            }
        }
        for s in 1..=slabs {
            counts[s] += counts[s - 1];
        }
        let mut fill = counts.clone();
        let mut items = vec![0u32; counts[slabs] as usize];
        for (i, &(a, b)) in ranges.iter().enumerate() {
            for f in &mut fill[a..=b] {
                items[*f as usize] = i as u32;
                *f += 1;
            }
        }
        self.slab_start = counts;
        self.slab_items = items;
    }

    /// Even-odd containment of a zone-frame point.
    pub fn contains_xy(&self, p: [f64; 2]) -> bool {
        let (s, _) = self.slab_range(p[1], p[1]);
        let (Some(&from), Some(&to)) = (self.slab_start.get(s), self.slab_start.get(s + 1)) else {
            return false;
        };
        let mut inside = false;
        for &i in self
            .slab_items
            .get(from as usize..to as usize)
            .unwrap_or(&[])
        {
            let [a, b] = self.edges[i as usize];
            if (a[1] > p[1]) != (b[1] > p[1]) {
                let x = a[0] + (p[1] - a[1]) * (b[0] - a[0]) / (b[1] - a[1]);
                if p[0] < x {
                    inside = !inside;
                }
            }
        }
        inside
    }

    /// `(distance to the border in metres, inside)` for a lon/lat point.
    pub fn border(&self, lon: f64, lat: f64) -> (f64, bool) {
        self.border_beyond(lon, lat, f64::INFINITY)
    }

    /// Like [`Area::border`], except that when the point is known to be more than `t` metres
    /// from the border, a lower bound (> `t`) may be returned instead of the exact distance.
    pub fn border_beyond(&self, lon: f64, lat: f64, t: f64) -> (f64, bool) {
        let p = self.frame.xy(lon, lat);
        let inside = self.contains_xy(p);
        let leaf = self.quad.leaf(p);
        if let Some(l) = leaf.filter(|l| l.far) {
            // Safety for the final re-measure, which differs from the frame by far less.
            let lb = l.lb * (1.0 - 1e-5) - 0.01;
            if lb > t {
                return (lb, inside);
            }
        }
        let fix = Frame::at(lon, lat);
        let (sx, sy) = (fix.kx / self.frame.kx, fix.ky / self.frame.ky);
        let smin = sx.min(sy);
        let rel = |v: [f64; 2]| [(v[0] - p[0]) * sx, (v[1] - p[1]) * sy];
        let consider = |best: &mut (f64, [f64; 2]), a: [f64; 2], b: [f64; 2]| {
            let (q, dd2) = closest_on_segment([0.0, 0.0], rel(a), rel(b));
            if dd2 < best.0 * best.0 {
                *best = (dd2.sqrt(), q);
            }
        };
        let mut found = (f64::INFINITY, [0.0, 0.0]);
        if let Some(l) = leaf.filter(|l| !l.far) {
            for &i in l.items {
                if let Some(e) = self.edges.get(i as usize) {
                    consider(&mut found, e[0], e[1]);
                }
            }
        } else {
            for (e, d2) in self.tree.nearest_neighbor_iter_with_distance_2(&p) {
                if d2.sqrt() * smin >= found.0 {
                    break;
                }
                consider(&mut found, e.geom().from, e.geom().to);
            }
        }
        let (best, best_q) = found;
        if !best.is_finite() {
            return (best, inside);
        }
        let q = fix.lonlat(best_q);
        (distance_m((lon, lat), q), inside)
    }

    /// True when the straight segment `a`–`b` (lon/lat) reaches more than `margin` metres deep
    /// into the area widened by `buffer` metres. Depth inside the area is sampled at the
    /// quarter, middle and three-quarter points of each inside chord, so it is never
    /// overestimated (no false pass-through), only possibly underestimated.
    pub fn segment_reaches(&self, a: (f64, f64), b: (f64, f64), buffer: f64, margin: f64) -> bool {
        let (pa, pb) = (self.frame.xy(a.0, a.1), self.frame.xy(b.0, b.1));
        let pad = buffer.max(0.0) + 1.0;
        let env = AABB::from_corners(
            [pa[0].min(pb[0]) - pad, pa[1].min(pb[1]) - pad],
            [pa[0].max(pb[0]) + pad, pa[1].max(pb[1]) + pad],
        );
        let mut ts = vec![0.0, 1.0];
        let mut nearest = f64::INFINITY;
        for e in self.tree.locate_in_envelope_intersecting(&env) {
            let (ea, eb) = (e.geom().from, e.geom().to);
            if let Some(t) = segment_hit(pa, pb, ea, eb) {
                ts.push(t);
            }
            if buffer > margin {
                nearest = nearest.min(segment_distance(pa, pb, ea, eb));
            }
        }
        if buffer - nearest > margin {
            return true;
        }
        ts.sort_by(f64::total_cmp);
        ts.windows(2).any(|w| {
            [0.25, 0.5, 0.75].iter().any(|f| {
                let t = w[0] + f * (w[1] - w[0]);
                let pt = [pa[0] + t * (pb[0] - pa[0]), pa[1] + t * (pb[1] - pa[1])];
                if !self.contains_xy(pt) {
                    return false;
                }
                let (lon, lat) = self.frame.lonlat(pt);
                buffer + self.border(lon, lat).0 > margin
            })
        })
    }
}

/// The candidate tree over the zone's box widened by a margin (a quarter of its size, at least
/// 1 km), measuring in the frame of a fix at each cell's latitude.
fn quadtree(edges: &[[[f64; 2]; 2]], frame: &Frame, lo: [f64; 2], hi: [f64; 2]) -> CandidateTree {
    let (a, b) = (frame.xy(lo[0], lo[1]), frame.xy(hi[0], hi[1]));
    let margin = ((b[0] - a[0]).max(b[1] - a[1]) * 0.25).max(1_000.0);
    let (a, b) = (
        [a[0] - margin, a[1] - margin],
        [b[0] + margin, b[1] + margin],
    );
    let scale = |y: f64| {
        let (_, lat) = frame.lonlat([0.0, y]);
        let (kx, ky) = metres_per_degree(lat.clamp(-89.9, 89.9));
        [kx / frame.kx, ky / frame.ky]
    };
    CandidateTree::build(edges, a, b, scale)
}
