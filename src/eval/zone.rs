//! Zones prepared once for evaluation, the accuracy-aware classification of a fix, and the
//! shared-layer R-tree.
//!
//! Role: [`PreparedZone::classify`] is the single definition of inside / outside / uncertain,
//! used by the engine and by the officers' `classify` endpoint. [`ZoneLayer`] finds, among
//! thousands of shared zones, the few a fix (or the path between two fixes) could touch.
//!
//! Invariants:
//! - signed distance `s` to the border is negative inside; an exclusion zone's `buffer_m` moves
//!   its border outwards (`s - buffer_m`); inclusion zones ignore the buffer;
//! - `Inside` iff `s < -acc`, `Outside` iff `s > acc`, else `Uncertain` (touching the border
//!   is uncertain); a non-finite or negative accuracy is always `Uncertain`;
//! - [`PreparedZone::reaches`] is conservative: when it says `false`, `classify` says
//!   `Outside`, so skipping the zone cannot change a result;
//! - nothing panics, whatever the numbers.

use std::collections::HashMap;
use std::sync::Arc;

use rstar::primitives::{GeomWithData, Rectangle};
use rstar::{RTree, AABB};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::area::Area;
use super::metric::{distance_m, metres_per_degree, Frame};
use crate::domain::schedule::Schedule;
use crate::domain::zone_geometry::ZoneGeometry;

/// Whether the person must stay inside the zone or out of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ZoneKind {
    Inclusion,
    Exclusion,
}

/// Where a fix is relative to a zone, given its accuracy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Class {
    Inside,
    Outside,
    Uncertain,
}

/// A classification and the unsigned distance (metres) from the point to the zone's border,
/// after the buffer. NaN (JSON `null`) when the point itself is not finite.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Classification {
    pub class: Class,
    pub distance_m: f64,
}

#[derive(Debug)]
enum Shape {
    Circle {
        lon: f64,
        lat: f64,
        radius_m: f64,
    },
    Area(Box<Area>),
    /// A geometry without edges: nothing is inside it.
    Empty,
}

/// A zone ready for evaluation: projected, indexed, with its rule parameters.
#[derive(Debug)]
pub struct PreparedZone {
    id: Uuid,
    kind: ZoneKind,
    shape: Shape,
    schedule: Schedule,
    buffer_m: f64,
    confirm_fixes: u32,
    /// lon/lat box of the zone widened by its buffer: `[min_lon, min_lat, max_lon, max_lat]`.
    bbox: [f64; 4],
}

/// The lon/lat box around a point and a radius in metres (whole longitude range near poles).
pub(crate) fn envelope(lon: f64, lat: f64, r: f64) -> [f64; 4] {
    let r = r.max(0.0) * 1.001 + 1e-3;
    let (_, ky) = metres_per_degree(0.0);
    let dlat = r / (ky * 0.99);
    let far = (lat.abs() + dlat).min(90.0);
    let (kx, _) = metres_per_degree(far);
    let dlon = if far >= 89.0 || kx.is_nan() || kx <= 0.0 {
        360.0
    } else {
        r / kx
    };
    [lon - dlon, lat - dlat, lon + dlon, lat + dlat]
}

fn boxes_meet(a: &[f64; 4], b: &[f64; 4]) -> bool {
    a[0] <= b[2] && b[0] <= a[2] && a[1] <= b[3] && b[1] <= a[3]
}

impl PreparedZone {
    /// Prepares a zone. A negative or non-finite `buffer_m` counts as 0; `confirm_fixes` of
    /// 0 counts as 1 (immediately).
    pub fn prepare(
        id: Uuid,
        kind: ZoneKind,
        geometry: &ZoneGeometry,
        schedule: Schedule,
        buffer_m: f64,
        confirm_fixes: u32,
    ) -> PreparedZone {
        let buffer_m = if buffer_m.is_finite() && buffer_m > 0.0 && kind == ZoneKind::Exclusion {
            buffer_m
        } else {
            0.0
        };
        let rect = geometry.bounding_rect();
        let shape = match geometry {
            ZoneGeometry::Circle { center, radius_m } => Shape::Circle {
                lon: center.x(),
                lat: center.y(),
                radius_m: *radius_m,
            },
            ZoneGeometry::Area(mp) => {
                Area::new(mp).map_or(Shape::Empty, |a| Shape::Area(Box::new(a)))
            }
        };
        let lo = envelope(rect.min().x, rect.min().y, buffer_m);
        let hi = envelope(rect.max().x, rect.max().y, buffer_m);
        PreparedZone {
            id,
            kind,
            shape,
            schedule,
            buffer_m,
            confirm_fixes: confirm_fixes.max(1),
            bbox: [lo[0].min(hi[0]), lo[1], lo[2].max(hi[2]), hi[3]],
        }
    }

    pub fn id(&self) -> Uuid {
        self.id
    }
    pub fn kind(&self) -> ZoneKind {
        self.kind
    }
    pub fn schedule(&self) -> &Schedule {
        &self.schedule
    }
    pub fn buffer_m(&self) -> f64 {
        self.buffer_m
    }
    pub fn confirm_fixes(&self) -> u32 {
        self.confirm_fixes
    }
    /// The lon/lat box of the buffered zone, `[min_lon, min_lat, max_lon, max_lat]`.
    pub fn bbox(&self) -> [f64; 4] {
        self.bbox
    }

    /// Signed distance (metres, negative inside) from the point to the buffered border; when
    /// its magnitude before the buffer exceeds `t`, possibly a bound of the same sign that
    /// still exceeds `t` (classification with `acc + buffer <= t` is then unchanged).
    fn signed_distance(&self, lat: f64, lon: f64, t: f64) -> f64 {
        let s = match &self.shape {
            Shape::Circle {
                lon: cx,
                lat: cy,
                radius_m,
            } => distance_m((*cx, *cy), (lon, lat)) - radius_m,
            Shape::Area(a) => {
                let (d, inside) = a.border_beyond(lon, lat, t);
                if inside {
                    -d
                } else {
                    d
                }
            }
            Shape::Empty => f64::INFINITY,
        };
        s - self.buffer_m
    }

    /// Classifies a fix at (`lat`, `lon`) with accuracy radius `acc_m` (see the module doc).
    pub fn classify(&self, lat: f64, lon: f64, acc_m: f64) -> Classification {
        self.classify_within(lat, lon, acc_m, f64::INFINITY)
    }

    /// [`PreparedZone::classify`] that may stop at a bound once the border is known to be
    /// farther than `t` (>= `acc_m + buffer`): same class, `distance_m` then a lower bound.
    fn classify_within(&self, lat: f64, lon: f64, acc_m: f64, t: f64) -> Classification {
        if !(lat.is_finite() && lon.is_finite()) {
            return Classification {
                class: Class::Uncertain,
                distance_m: f64::NAN,
            };
        }
        let s = self.signed_distance(lat, lon, t);
        let class = if !(acc_m.is_finite() && acc_m >= 0.0) {
            Class::Uncertain
        } else if s < -acc_m {
            Class::Inside
        } else if s > acc_m {
            Class::Outside
        } else {
            Class::Uncertain
        };
        Classification {
            class,
            distance_m: s.abs(),
        }
    }

    /// Whether the accuracy circle can touch the buffered zone's box. `false` implies
    /// [`PreparedZone::classify`] is `Outside`.
    pub fn reaches(&self, lat: f64, lon: f64, acc_m: f64) -> bool {
        !(lat.is_finite() && lon.is_finite() && acc_m.is_finite() && acc_m >= 0.0)
            || boxes_meet(&envelope(lon, lat, acc_m), &self.bbox)
    }

    /// The class alone, skipping far zones by their box: always equal to `classify(..).class`.
    pub fn class_of(&self, lat: f64, lon: f64, acc_m: f64) -> Class {
        if self.reaches(lat, lon, acc_m) {
            let t = if acc_m.is_finite() {
                acc_m + self.buffer_m
            } else {
                f64::INFINITY
            };
            self.classify_within(lat, lon, acc_m, t).class
        } else {
            Class::Outside
        }
    }

    /// Whether the box of the straight path `a`–`b` (lon/lat) meets the buffered zone's box.
    pub fn path_box_meets(&self, a: (f64, f64), b: (f64, f64)) -> bool {
        let seg = [a.0.min(b.0), a.1.min(b.1), a.0.max(b.0), a.1.max(b.1)];
        boxes_meet(&seg, &self.bbox)
    }

    /// True when the straight path `a`–`b` (lon/lat) goes more than `margin` metres deep into
    /// the buffered zone (used for pass-through; see `docs/rules.md`).
    pub fn path_reaches(&self, a: (f64, f64), b: (f64, f64), margin: f64) -> bool {
        if !self.path_box_meets(a, b) || !margin.is_finite() {
            return false;
        }
        match &self.shape {
            Shape::Circle { lon, lat, radius_m } => {
                let f = Frame::at(*lon, *lat);
                let (pa, pb) = (f.xy(a.0, a.1), f.xy(b.0, b.1));
                let (_, d2) = super::metric::closest_on_segment([0.0, 0.0], pa, pb);
                radius_m + self.buffer_m - d2.sqrt() > margin
            }
            Shape::Area(area) => area.segment_reaches(a, b, self.buffer_m, margin),
            Shape::Empty => false,
        }
    }
}

type Entry = GeomWithData<Rectangle<[f64; 2]>, u32>;

/// Many prepared zones behind an R-tree of their boxes: the shared layer attached to a person
/// (for example every school in the city). It holds exactly the zones that apply to the people
/// it is attached to; a per-person subset is a different layer (layers are cheap to share
/// through `Arc`). Inclusion zones in a layer are evaluated on every fix, like personal ones.
#[derive(Debug)]
pub struct ZoneLayer {
    zones: Vec<Arc<PreparedZone>>,
    tree: RTree<Entry>,
    by_id: HashMap<Uuid, u32>,
    inclusions: Vec<u32>,
}

impl ZoneLayer {
    pub fn new(zones: Vec<Arc<PreparedZone>>) -> ZoneLayer {
        let entries = zones
            .iter()
            .enumerate()
            .map(|(i, z)| {
                let b = z.bbox;
                GeomWithData::new(
                    Rectangle::from_corners([b[0], b[1]], [b[2], b[3]]),
                    i as u32,
                )
            })
            .collect();
        let by_id = zones
            .iter()
            .enumerate()
            .map(|(i, z)| (z.id, i as u32))
            .collect();
        let inclusions = (0..zones.len() as u32)
            .filter(|&i| zones[i as usize].kind == ZoneKind::Inclusion)
            .collect();
        ZoneLayer {
            tree: RTree::bulk_load(entries),
            zones,
            by_id,
            inclusions,
        }
    }

    pub fn len(&self) -> usize {
        self.zones.len()
    }
    pub fn is_empty(&self) -> bool {
        self.zones.is_empty()
    }
    pub fn zones(&self) -> &[Arc<PreparedZone>] {
        &self.zones
    }
    /// The index of the zone with this id.
    pub fn index_of(&self, id: Uuid) -> Option<u32> {
        self.by_id.get(&id).copied()
    }
    pub(crate) fn inclusion_indices(&self) -> &[u32] {
        &self.inclusions
    }

    /// Indices of zones whose box meets the lon/lat box `b`, pushed onto `out`.
    pub(crate) fn candidates(&self, b: [f64; 4], out: &mut Vec<u32>) {
        let env = AABB::from_corners([b[0], b[1]], [b[2], b[3]]);
        out.extend(
            self.tree
                .locate_in_envelope_intersecting(&env)
                .map(|e| e.data),
        );
    }
}
