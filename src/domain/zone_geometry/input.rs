//! Reads the officer's untrusted JSON into plain coordinate arrays, checking only shape,
//! finiteness, range and the vertex limit. The vertex limit is checked on a cheap first pass
//! that only sums array lengths, so an oversized input is rejected before any allocation
//! proportional to it.

use crate::domain::json::kind_of as kind;
use serde_json::{Map, Value};

use super::error::{GeometryError, VertexRef};

/// Rings of one polygon: `rings[0]` is the shell, the rest are holes. Input coordinates.
pub(super) type RawPolygon = Vec<Vec<(f64, f64)>>;

/// A geometry that has the right shape, finite in-range coordinates and few enough vertices.
#[derive(Debug)]
pub(super) enum RawGeometry {
    Polygons(Vec<RawPolygon>),
    Circle { center: (f64, f64), radius_m: f64 },
}

fn array<'a>(v: &'a Value, path: &str, what: &str) -> Result<&'a Vec<Value>, GeometryError> {
    v.as_array().ok_or_else(|| {
        GeometryError::invalid(
            path,
            format!("expected {what} (an array), found {}", kind(v)),
        )
    })
}

pub(super) fn read(value: &Value, max_vertices: usize) -> Result<RawGeometry, GeometryError> {
    let obj = value.as_object().ok_or_else(|| {
        GeometryError::invalid(
            "$",
            format!("expected a GeoJSON geometry object, found {}", kind(value)),
        )
    })?;
    let ty = match obj.get("type") {
        None => return Err(GeometryError::invalid("type", "missing \"type\" member")),
        Some(Value::String(s)) => s.as_str(),
        Some(other) => {
            return Err(GeometryError::invalid(
                "type",
                format!("expected a string, found {}", kind(other)),
            ))
        }
    };
    let coords = || {
        obj.get("coordinates")
            .ok_or_else(|| GeometryError::invalid("coordinates", "missing \"coordinates\" member"))
    };
    match ty {
        "Polygon" => {
            let c = coords()?;
            check_count(polygon_positions(c), max_vertices)?;
            let polygon = read_polygon(c, 0, "coordinates")?;
            Ok(RawGeometry::Polygons(vec![polygon]))
        }
        "MultiPolygon" => {
            let c = coords()?;
            let items = array(c, "coordinates", "a list of polygons")?;
            check_count(items.iter().map(polygon_positions).sum(), max_vertices)?;
            if items.is_empty() {
                return Err(GeometryError::invalid(
                    "coordinates",
                    "a MultiPolygon needs at least one polygon",
                ));
            }
            let polygons = items
                .iter()
                .enumerate()
                .map(|(i, p)| read_polygon(p, i, &format!("coordinates[{i}]")))
                .collect::<Result<_, _>>()?;
            Ok(RawGeometry::Polygons(polygons))
        }
        "Circle" => read_circle(obj, coords()?),
        other => Err(GeometryError::UnknownType {
            found: other.chars().take(40).collect(),
        }),
    }
}

/// Positions in a polygon-shaped value, counting only what is an array (shape comes later).
fn polygon_positions(v: &Value) -> usize {
    v.as_array()
        .map(|rings| rings.iter().map(|r| r.as_array().map_or(0, Vec::len)).sum())
        .unwrap_or(0)
}

fn check_count(count: usize, max: usize) -> Result<(), GeometryError> {
    if count > max {
        return Err(GeometryError::TooManyVertices { count, max });
    }
    Ok(())
}

fn read_polygon(v: &Value, polygon: usize, path: &str) -> Result<RawPolygon, GeometryError> {
    let rings = array(v, path, "a list of rings")?;
    if rings.is_empty() {
        return Err(GeometryError::invalid(
            path,
            "a polygon needs at least one ring (its shell)",
        ));
    }
    rings
        .iter()
        .enumerate()
        .map(|(ring, r)| {
            let rpath = format!("{path}[{ring}]");
            array(r, &rpath, "a ring of positions")?
                .iter()
                .enumerate()
                .map(|(vertex, p)| {
                    let at = VertexRef {
                        polygon,
                        ring,
                        vertex,
                    };
                    read_position(p, at, &format!("{rpath}[{vertex}]"))
                })
                .collect()
        })
        .collect()
}

/// A `[lon, lat]` or `[lon, lat, altitude]` position (altitude ignored), finite and in range.
fn read_position(v: &Value, at: VertexRef, path: &str) -> Result<(f64, f64), GeometryError> {
    let items = array(v, path, "a position [lon, lat]")?;
    if !(2..=3).contains(&items.len()) {
        return Err(GeometryError::invalid(
            path,
            format!(
                "expected a position [lon, lat] of 2 numbers (or 3 with altitude), found {} elements",
                items.len()
            ),
        ));
    }
    let mut nums = [0.0; 3];
    for (i, item) in items.iter().enumerate() {
        let Value::Number(n) = item else {
            return Err(GeometryError::invalid(
                format!("{path}[{i}]"),
                format!("expected a number, found {}", kind(item)),
            ));
        };
        nums[i] = n.as_f64().unwrap_or(f64::INFINITY);
    }
    let (lon, lat) = (nums[0], nums[1]);
    if !lon.is_finite() || !lat.is_finite() {
        return Err(GeometryError::NonFinite { at });
    }
    if !(-180.0..=180.0).contains(&lon) || !(-90.0..=90.0).contains(&lat) {
        return Err(GeometryError::OutOfRange { at, lon, lat });
    }
    Ok((lon, lat))
}

fn read_circle(obj: &Map<String, Value>, coords: &Value) -> Result<RawGeometry, GeometryError> {
    let at = VertexRef {
        polygon: 0,
        ring: 0,
        vertex: 0,
    };
    let center = read_position(coords, at, "coordinates")?;
    let radius_m = match obj.get("radius_m") {
        None => {
            return Err(GeometryError::invalid(
                "radius_m",
                "a Circle needs a \"radius_m\" member (metres)",
            ))
        }
        Some(Value::Number(n)) => n.as_f64().unwrap_or(f64::INFINITY),
        Some(other) => {
            return Err(GeometryError::invalid(
                "radius_m",
                format!("expected a number of metres, found {}", kind(other)),
            ))
        }
    };
    Ok(RawGeometry::Circle { center, radius_m })
}
