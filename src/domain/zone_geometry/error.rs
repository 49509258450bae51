//! Why a zone geometry was rejected, with where: every variant names the polygon, ring and
//! vertex (indices into the officer's input, before duplicate points were dropped) and, where
//! one exists, the coordinate in the officer's own datum. `code()` is stable API.

use std::fmt;

/// A position in the input: `coordinates[polygon][ring][vertex]` (polygon is 0 for a Polygon).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VertexRef {
    pub polygon: usize,
    pub ring: usize,
    pub vertex: usize,
}

impl fmt::Display for VertexRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "polygon {}, ring {}, vertex {}",
            self.polygon, self.ring, self.vertex
        )
    }
}

/// A rejected zone geometry.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GeometryError {
    /// The `type` member names a geometry we do not accept as a zone.
    #[error("unknown geometry type {found:?}: expected Polygon, MultiPolygon or Circle")]
    UnknownType { found: String },
    /// The JSON does not have the shape of the declared geometry.
    #[error("invalid geometry at {path}: {problem}")]
    Invalid { path: String, problem: String },
    /// A coordinate is infinite (e.g. a JSON number whose exponent overflows).
    #[error("non-finite coordinate at {at}")]
    NonFinite { at: VertexRef },
    /// A coordinate outside lon [-180, 180], lat [-90, 90] (checked before datum conversion).
    #[error("coordinate out of range at {at}: ({lon}, {lat}) must have lon in [-180, 180] and lat in [-90, 90]")]
    OutOfRange { at: VertexRef, lon: f64, lat: f64 },
    /// A ring whose last position differs from its first.
    #[error(
        "ring not closed: polygon {polygon}, ring {ring} starts at {first:?} but ends at {last:?}"
    )]
    RingNotClosed {
        polygon: usize,
        ring: usize,
        first: (f64, f64),
        last: (f64, f64),
    },
    /// A ring with fewer than 3 distinct points (after dropping repeated consecutive points).
    #[error("too few points: polygon {polygon}, ring {ring} has {distinct} distinct points, at least 3 are needed")]
    TooFewPoints {
        polygon: usize,
        ring: usize,
        distinct: usize,
    },
    /// Two segments of the geometry's boundary touch or cross.
    #[error("self-intersection near ({lon:.7}, {lat:.7}): the segment starting at {first} meets the segment starting at {second}")]
    SelfIntersection {
        first: VertexRef,
        second: VertexRef,
        lon: f64,
        lat: f64,
    },
    /// A hole that does not lie inside its polygon's shell.
    #[error("hole outside shell: polygon {polygon}, ring {ring} is not inside ring 0")]
    HoleOutsideShell { polygon: usize, ring: usize },
    /// A hole that lies inside another hole of the same polygon.
    #[error("nested holes: polygon {polygon}, ring {ring} lies inside hole ring {outer}")]
    NestedHoles {
        polygon: usize,
        ring: usize,
        outer: usize,
    },
    /// A polygon of a MultiPolygon that lies inside another one's area.
    #[error("overlapping polygons: polygon {inner} lies inside polygon {outer}")]
    OverlappingPolygons { inner: usize, outer: usize },
    /// A ring whose points are all on one line.
    #[error("zero area: polygon {polygon}, ring {ring} has all its points on one line")]
    ZeroArea { polygon: usize, ring: usize },
    /// A circle radius that is zero, negative or not finite.
    #[error("radius not positive: radius_m {radius_m} must be a finite number above 0")]
    RadiusNotPositive { radius_m: f64 },
    /// A circle radius above the configured maximum.
    #[error("radius too large: radius_m {radius_m} exceeds the maximum of {max_m} m")]
    RadiusTooLarge { radius_m: f64, max_m: f64 },
    /// More positions than the configured maximum.
    #[error("too many vertices: {count} positions exceed the maximum of {max}")]
    TooManyVertices { count: usize, max: usize },
    /// A bounding box whose diagonal exceeds the configured maximum.
    #[error(
        "geometry too large: its bounding box spans {extent_m:.0} m, the maximum is {max_m:.0} m"
    )]
    TooLarge { extent_m: f64, max_m: f64 },
    /// Validation would take unreasonably long (pathological overlapping segments).
    #[error("geometry too complex to validate: more than {budget} segment comparisons")]
    TooComplex { budget: usize },
}

impl GeometryError {
    /// A stable snake_case code for API responses and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            GeometryError::UnknownType { .. } => "unknown_geometry_type",
            GeometryError::Invalid { .. } => "invalid_geometry",
            GeometryError::NonFinite { .. } => "non_finite_coordinate",
            GeometryError::OutOfRange { .. } => "coordinate_out_of_range",
            GeometryError::RingNotClosed { .. } => "ring_not_closed",
            GeometryError::TooFewPoints { .. } => "too_few_points",
            GeometryError::SelfIntersection { .. } => "self_intersection",
            GeometryError::HoleOutsideShell { .. } => "hole_outside_shell",
            GeometryError::NestedHoles { .. } => "nested_holes",
            GeometryError::OverlappingPolygons { .. } => "overlapping_polygons",
            GeometryError::ZeroArea { .. } => "zero_area",
            GeometryError::RadiusNotPositive { .. } => "radius_not_positive",
            GeometryError::RadiusTooLarge { .. } => "radius_too_large",
            GeometryError::TooManyVertices { .. } => "too_many_vertices",
            GeometryError::TooLarge { .. } => "too_large",
            GeometryError::TooComplex { .. } => "too_complex",
        }
    }

    pub(super) fn invalid(path: impl Into<String>, problem: impl Into<String>) -> Self {
        GeometryError::Invalid {
            path: path.into(),
            problem: problem.into(),
        }
    }
}
