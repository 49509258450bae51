//! A zone's shape, parsed once from the officer's untrusted GeoJSON-like input and valid from
//! then on ("parse, don't validate").
//!
//! Accepted input: GeoJSON `Polygon` (first ring the shell, the rest holes), `MultiPolygon`,
//! and our own `{"type":"Circle","coordinates":[lon,lat],"radius_m":R}`, drawn in any
//! [`Datum`]. Parsing runs in this order, stopping at the first problem:
//! 1. shape and vertex limit (`input`); coordinates finite and in lon/lat range, checked on
//!    the input coordinates, before any datum conversion;
//! 2. per ring: closed, converted to WGS-84, consecutive duplicates dropped, at least
//!    3 distinct points, not all on one line;
//! 3. the bounding-box diagonal against [`GeometryLimits::max_extent_m`];
//! 4. topology (`topology`, R-tree indexed): no boundary segments touching or crossing, holes inside their
//!    shell and not inside each other, no polygon inside another.
//!
//! Invariants of a [`ZoneGeometry`]: WGS-84 lon/lat; every shell runs counter-clockwise and
//! every hole clockwise (normalised on input); rings are closed with no repeated consecutive
//! points; a circle has a finite radius in `(0, max_radius_m]`. Geometries crossing the
//! antimeridian are not supported (their extent is rejected as `too_large`); a circle is
//! bounded by `max_radius_m` only. Converted coordinates are clamped to the globe (BD-09's
//! shift applies everywhere). Parsing never panics and its work is bounded: a comparison
//! budget rejects pathological inputs as `too_complex`.

mod error;
mod input;
#[cfg(test)]
mod tests;
mod topology;

use geo::{Coord, LineString, MultiPolygon, Point, Polygon, Rect};
use serde_json::{json, Value};

use crate::domain::datum::{haversine_m, Datum, EARTH_RADIUS_M};
pub use error::{GeometryError, VertexRef};
use input::RawGeometry;
use topology::Ring;

/// Bounds on what an officer may submit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GeometryLimits {
    /// Most positions in the input (closing positions included).
    pub max_vertices: usize,
    /// Largest bounding-box diagonal of an area, in metres (haversine).
    pub max_extent_m: f64,
    /// Largest circle radius, in metres.
    pub max_radius_m: f64,
}

impl Default for GeometryLimits {
    fn default() -> Self {
        GeometryLimits {
            max_vertices: 100_000,
            max_extent_m: 1_000_000.0,
            max_radius_m: 100_000.0,
        }
    }
}

/// A validated zone shape in WGS-84.
#[derive(Debug, Clone, PartialEq)]
pub enum ZoneGeometry {
    /// One or more polygons (a `Polygon` input becomes a one-polygon MultiPolygon).
    Area(MultiPolygon<f64>),
    /// A circle on the sphere, `radius_m` metres around `center`.
    Circle { center: Point<f64>, radius_m: f64 },
}

impl ZoneGeometry {
    /// Parses and validates `value`, drawn in `datum`, into WGS-84.
    pub fn parse(
        value: &Value,
        datum: Datum,
        limits: &GeometryLimits,
    ) -> Result<Self, GeometryError> {
        match input::read(value, limits.max_vertices)? {
            RawGeometry::Circle { center, radius_m } => {
                if !(radius_m.is_finite() && radius_m > 0.0) {
                    return Err(GeometryError::RadiusNotPositive { radius_m });
                }
                // A NaN limit rejects rather than admits.
                if radius_m > limits.max_radius_m || limits.max_radius_m.is_nan() {
                    return Err(GeometryError::RadiusTooLarge {
                        radius_m,
                        max_m: limits.max_radius_m,
                    });
                }
                let (lon, lat) = datum.to_wgs84(center.0, center.1);
                Ok(ZoneGeometry::Circle {
                    center: Point::new(lon.clamp(-180.0, 180.0), lat.clamp(-90.0, 90.0)),
                    radius_m,
                })
            }
            RawGeometry::Polygons(polygons) => {
                let rings = polygons
                    .iter()
                    .enumerate()
                    .map(|(p, rings)| {
                        rings
                            .iter()
                            .enumerate()
                            .map(|(r, raw)| topology::clean_ring(raw, p, r, datum))
                            .collect::<Result<Vec<_>, _>>()
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                check_extent(&rings, limits.max_extent_m)?;
                topology::check(&rings, datum)?;
                Ok(ZoneGeometry::Area(MultiPolygon::new(
                    rings.iter().map(|r| to_polygon(r)).collect(),
                )))
            }
        }
    }

    /// The WGS-84 GeoJSON-like form: `Polygon` when the area has exactly one polygon, else
    /// `MultiPolygon`; a circle as `{"type":"Circle","coordinates":[lon,lat],"radius_m":R}`.
    /// Parsing this back with [`Datum::Wgs84`] gives an equal value.
    pub fn to_geojson(&self) -> Value {
        fn ring(ls: &LineString<f64>) -> Value {
            Value::Array(ls.coords().map(|c| json!([c.x, c.y])).collect())
        }
        fn polygon(p: &Polygon<f64>) -> Value {
            let mut rings = vec![ring(p.exterior())];
            rings.extend(p.interiors().iter().map(ring));
            Value::Array(rings)
        }
        match self {
            ZoneGeometry::Area(mp) if mp.0.len() == 1 => {
                json!({ "type": "Polygon", "coordinates": polygon(&mp.0[0]) })
            }
            ZoneGeometry::Area(mp) => json!({
                "type": "MultiPolygon",
                "coordinates": mp.0.iter().map(polygon).collect::<Vec<_>>(),
            }),
            ZoneGeometry::Circle { center, radius_m } => json!({
                "type": "Circle",
                "coordinates": [center.x(), center.y()],
                "radius_m": radius_m,
            }),
        }
    }

    /// Stored positions, closing positions included; 1 (the centre) for a circle.
    pub fn vertex_count(&self) -> usize {
        match self {
            ZoneGeometry::Area(mp) => mp
                .0
                .iter()
                .map(|p| {
                    p.exterior().0.len() + p.interiors().iter().map(|r| r.0.len()).sum::<usize>()
                })
                .sum(),
            ZoneGeometry::Circle { .. } => 1,
        }
    }

    /// The lon/lat rectangle covering the zone. For a circle that reaches a pole or crosses
    /// the antimeridian, the rectangle spans all longitudes.
    pub fn bounding_rect(&self) -> Rect<f64> {
        match self {
            ZoneGeometry::Area(mp) => {
                let coords = mp.0.iter().flat_map(|p| p.exterior().coords());
                bbox(coords.copied()).unwrap_or_else(|| Rect::new(Coord::zero(), Coord::zero()))
            }
            ZoneGeometry::Circle { center, radius_m } => circle_rect(*center, *radius_m),
        }
    }
}

fn bbox(coords: impl Iterator<Item = Coord<f64>>) -> Option<Rect<f64>> {
    coords.fold(None, |acc: Option<Rect<f64>>, c| {
        Some(match acc {
            None => Rect::new(c, c),
            Some(r) => Rect::new(
                Coord {
                    x: r.min().x.min(c.x),
                    y: r.min().y.min(c.y),
                },
                Coord {
                    x: r.max().x.max(c.x),
                    y: r.max().y.max(c.y),
                },
            ),
        })
    })
}

fn check_extent(polygons: &[Vec<Ring>], max_m: f64) -> Result<(), GeometryError> {
    let coords = polygons.iter().flat_map(|p| p[0].pts.iter().copied());
    let Some(r) = bbox(coords) else {
        return Ok(());
    };
    let extent_m = haversine_m((r.min().x, r.min().y), (r.max().x, r.max().y));
    if extent_m > max_m || extent_m.is_nan() || max_m.is_nan() {
        return Err(GeometryError::TooLarge { extent_m, max_m });
    }
    Ok(())
}

/// A closed geo polygon with the shell counter-clockwise and holes clockwise.
fn to_polygon(rings: &[Ring]) -> Polygon<f64> {
    let line = |r: &Ring, ccw: bool| {
        let mut pts = r.pts.clone();
        if topology::is_ccw(r) != ccw {
            pts.reverse();
        }
        if let Some(&first) = pts.first() {
            pts.push(first);
        }
        LineString::new(pts)
    };
    let mut it = rings.iter();
    let shell = it
        .next()
        .map_or_else(|| LineString::new(vec![]), |r| line(r, true));
    Polygon::new(shell, it.map(|r| line(r, false)).collect())
}

fn circle_rect(center: Point<f64>, radius_m: f64) -> Rect<f64> {
    let ang = radius_m / EARTH_RADIUS_M; // angular radius, radians
    let dlat = ang.to_degrees();
    let (lat_min, lat_max) = (center.y() - dlat, center.y() + dlat);
    let full = Rect::new(
        Coord {
            x: -180.0,
            y: lat_min.max(-90.0),
        },
        Coord {
            x: 180.0,
            y: lat_max.min(90.0),
        },
    );
    if lat_min <= -90.0 || lat_max >= 90.0 {
        return full;
    }
    let s = ang.sin() / center.y().to_radians().cos();
    if s >= 1.0 || s.is_nan() {
        return full;
    }
    let dlon = s.asin().to_degrees();
    if center.x() - dlon < -180.0 || center.x() + dlon > 180.0 {
        return full;
    }
    Rect::new(
        Coord {
            x: center.x() - dlon,
            y: lat_min,
        },
        Coord {
            x: center.x() + dlon,
            y: lat_max,
        },
    )
}
