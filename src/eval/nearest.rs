//! A quadtree of nearest-edge candidates: for every leaf cell, the few edges that can be the
//! nearest one to some point of the cell, so a border distance costs a short descent and a
//! handful of exact point-to-segment distances, however deep inside a large zone the point is.
//!
//! Role: the fast path of [`super::area::Area::border`]; points outside the tree's domain
//! (the zone's box widened by a margin) fall back to the edge R-tree.
//!
//! Invariants (what makes the candidate lists exact):
//! - distances are measured in the fix-centred frame of the cell's middle latitude (the zone
//!   frame scaled per axis by `scale(y)`); a cell keeps every edge whose distance to the cell
//!   is at most `ratio` times the smallest "farthest distance" from the cell to any edge (the
//!   distance to a segment is convex, so its maximum over the cell is at a corner); `ratio`
//!   bounds how much the frame of any fix inside the cell stretches one axis against the other
//!   relative to the cell's frame, so the nearest edge *in the fix's frame* is always among
//!   the candidates (the slack shrinks with the cell, so deep cells stay short);
//! - a cell farther than [`FAR_M`] from every edge becomes a *far* leaf holding only that lower
//!   bound: deep inside (or outside) a large zone many edges are nearly equidistant, so exact
//!   lists there would be long; the engine only needs "farther than the accuracy", and the
//!   exact distance falls back to the edge R-tree;
//! - a cell becomes a leaf at [`LEAF_MAX`] candidates, at [`MAX_DEPTH`], or when the node
//!   budget is spent, so building is bounded; a leaf may hold more candidates (still exact).

use super::metric::closest_on_segment;

/// Candidates a leaf aims for.
pub const LEAF_MAX: usize = 8;
/// Cells farther than this from every edge keep only a lower bound, metres.
pub const FAR_M: f64 = 400.0;
/// Deepest level (a 60 km zone reaches cells of about 4 m).
pub const MAX_DEPTH: u32 = 14;
/// Nodes one tree may hold per edge, and at most (bounds memory for pathological zones, such
/// as combs of thin spikes; cells left when the budget runs out become longer leaves).
const NODES_PER_EDGE: usize = 48;
const MAX_NODES: usize = 1 << 18;

#[derive(Debug, Clone, Copy)]
struct Node {
    /// Index of the first of four children (SW, SE, NW, NE), or `u32::MAX` for a leaf.
    child: u32,
    start: u32,
    len: u32,
    /// Lower bound on the distance from any point of the cell to any edge, in the frame of any
    /// fix inside the cell.
    lb: f64,
}

/// What the tree knows about a point: exact candidates, or only a lower bound (`far`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Leaf<'a> {
    pub items: &'a [u32],
    pub lb: f64,
    pub far: bool,
}

#[derive(Debug)]
pub(crate) struct CandidateTree {
    lo: [f64; 2],
    hi: [f64; 2],
    nodes: Vec<Node>,
    items: Vec<u32>,
}

fn dist2(p: [f64; 2], e: &[[f64; 2]; 2]) -> f64 {
    closest_on_segment(p, e[0], e[1]).1
}

/// Whether segment `e` meets the rectangle `lo`–`hi` (Liang–Barsky).
fn meets(lo: [f64; 2], hi: [f64; 2], e: &[[f64; 2]; 2]) -> bool {
    let (mut t0, mut t1) = (0.0f64, 1.0f64);
    for k in 0..2 {
        let d = e[1][k] - e[0][k];
        for (p, q) in [(-d, e[0][k] - lo[k]), (d, hi[k] - e[0][k])] {
            if p == 0.0 {
                if q < 0.0 {
                    return false;
                }
            } else {
                let r = q / p;
                if p < 0.0 {
                    t0 = t0.max(r);
                } else {
                    t1 = t1.min(r);
                }
            }
        }
    }
    t0 <= t1
}

/// `e` scaled per axis by `k`.
fn scaled(e: &[[f64; 2]; 2], k: [f64; 2]) -> [[f64; 2]; 2] {
    [
        [e[0][0] * k[0], e[0][1] * k[1]],
        [e[1][0] * k[0], e[1][1] * k[1]],
    ]
}

fn min_dist2(lo: [f64; 2], hi: [f64; 2], e: &[[f64; 2]; 2]) -> f64 {
    if meets(lo, hi, e) {
        return 0.0;
    }
    let clamp = |p: [f64; 2]| [p[0].clamp(lo[0], hi[0]), p[1].clamp(lo[1], hi[1])];
    let pr = |p: [f64; 2]| {
        let c = clamp(p);
        (p[0] - c[0]).powi(2) + (p[1] - c[1]).powi(2)
    };
    let corners = [lo, [hi[0], lo[1]], [lo[0], hi[1]], hi];
    corners
        .iter()
        .map(|&c| dist2(c, e))
        .fold(pr(e[0]).min(pr(e[1])), f64::min)
}

fn max_dist2(lo: [f64; 2], hi: [f64; 2], e: &[[f64; 2]; 2]) -> f64 {
    [lo, [hi[0], lo[1]], [lo[0], hi[1]], hi]
        .iter()
        .map(|&c| dist2(c, e))
        .fold(0.0, f64::max)
}

impl CandidateTree {
    /// Builds the tree over `edges` for the square domain covering `lo`–`hi`; `scale(y)` gives
    /// the per-axis factors from the zone frame to the frame of a fix at zone-frame height `y`.
    pub fn build(
        edges: &[[[f64; 2]; 2]],
        lo: [f64; 2],
        hi: [f64; 2],
        scale: impl Fn(f64) -> [f64; 2],
    ) -> CandidateTree {
        let side = (hi[0] - lo[0]).max(hi[1] - lo[1]).max(1.0);
        let hi = [lo[0] + side, lo[1] + side];
        let mut t = CandidateTree {
            lo,
            hi,
            nodes: Vec::new(),
            items: Vec::new(),
        };
        let all: Vec<u32> = (0..edges.len() as u32).collect();
        t.nodes.push(Node {
            child: u32::MAX,
            start: 0,
            len: 0,
            lb: 0.0,
        });
        let budget = (NODES_PER_EDGE * edges.len()).clamp(64, MAX_NODES);
        // Breadth first, so a spent budget leaves cells of even size: (node, lo, hi, depth, parent candidates).
        let mut queue = std::collections::VecDeque::from([(0usize, lo, hi, 0u32, all)]);
        while let Some((n, a, b, depth, parent)) = queue.pop_front() {
            let k = scale((a[1] + b[1]) * 0.5);
            let stretch = |y: f64| {
                let s = scale(y);
                let (x, y) = (s[0] / k[0], s[1] / k[1]);
                x.max(y) / x.min(y)
            };
            let ratio = stretch(a[1]).max(stretch(b[1]));
            let ratio2 = if ratio.is_finite() {
                ratio * ratio * (1.0 + 1e-9)
            } else {
                f64::INFINITY
            };
            let (sa, sb) = ([a[0] * k[0], a[1] * k[1]], [b[0] * k[0], b[1] * k[1]]);
            let u = parent
                .iter()
                .map(|&i| max_dist2(sa, sb, &scaled(&edges[i as usize], k)))
                .fold(f64::INFINITY, f64::min);
            let keep: Vec<u32> = parent
                .into_iter()
                .filter(|&i| min_dist2(sa, sb, &scaled(&edges[i as usize], k)) <= u * ratio2 + 1e-9)
                .collect();
            let lb2 = keep
                .iter()
                .map(|&i| min_dist2(sa, sb, &scaled(&edges[i as usize], k)))
                .fold(f64::INFINITY, f64::min);
            let lb = if ratio2.is_finite() {
                (lb2 / ratio2).sqrt()
            } else {
                0.0
            };
            if lb > FAR_M {
                t.nodes[n] = Node {
                    child: u32::MAX,
                    start: 0,
                    len: u32::MAX,
                    lb,
                };
                continue;
            }
            let leaf = keep.len() <= LEAF_MAX || depth >= MAX_DEPTH || t.nodes.len() + 4 > budget;
            if leaf {
                t.nodes[n] = Node {
                    child: u32::MAX,
                    start: t.items.len() as u32,
                    len: keep.len() as u32,
                    lb,
                };
                t.items.extend_from_slice(&keep);
                continue;
            }
            let first = t.nodes.len();
            t.nodes[n].child = first as u32;
            t.nodes.extend(
                [Node {
                    child: u32::MAX,
                    start: 0,
                    len: 0,
                    lb: 0.0,
                }; 4],
            );
            let m = [(a[0] + b[0]) * 0.5, (a[1] + b[1]) * 0.5];
            let quads = [
                (a, m),
                ([m[0], a[1]], [b[0], m[1]]),
                ([a[0], m[1]], [m[0], b[1]]),
                (m, b),
            ];
            for (k, (qa, qb)) in quads.into_iter().enumerate() {
                queue.push_back((first + k, qa, qb, depth + 1, keep.clone()));
            }
        }
        t
    }

    /// The leaf for `p`, or `None` when `p` is outside the domain.
    pub fn leaf(&self, p: [f64; 2]) -> Option<Leaf<'_>> {
        if !(p[0] >= self.lo[0] && p[0] <= self.hi[0] && p[1] >= self.lo[1] && p[1] <= self.hi[1]) {
            return None;
        }
        let (mut a, mut b) = (self.lo, self.hi);
        let mut n = *self.nodes.first()?;
        while n.child != u32::MAX {
            let m = [(a[0] + b[0]) * 0.5, (a[1] + b[1]) * 0.5];
            let (east, north) = (p[0] >= m[0], p[1] >= m[1]);
            if east {
                a[0] = m[0]
            } else {
                b[0] = m[0]
            }
            if north {
                a[1] = m[1]
            } else {
                b[1] = m[1]
            }
            let k = usize::from(east) + 2 * usize::from(north);
            n = *self.nodes.get(n.child as usize + k)?;
        }
        if n.len == u32::MAX {
            return Some(Leaf {
                items: &[],
                lb: n.lb,
                far: true,
            });
        }
        let items = self
            .items
            .get(n.start as usize..n.start as usize + n.len as usize)?;
        Some(Leaf {
            items,
            lb: n.lb,
            far: false,
        })
    }
}
