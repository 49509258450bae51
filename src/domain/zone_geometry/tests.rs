use geo::{Area, Contains, Coord, Point};
use serde_json::{json, Value};

use super::*;
use crate::domain::datum::{wgs84_to_gcj02, Datum};

fn parse(v: Value) -> Result<ZoneGeometry, GeometryError> {
    ZoneGeometry::parse(&v, Datum::Wgs84, &GeometryLimits::default())
}

fn code(v: Value) -> &'static str {
    match parse(v) {
        Ok(g) => panic!("expected an error, parsed {g:?}"),
        Err(e) => e.code(),
    }
}

fn square(x0: f64, y0: f64, size: f64) -> Value {
    json!([
        [x0, y0],
        [x0 + size, y0],
        [x0 + size, y0 + size],
        [x0, y0 + size],
        [x0, y0]
    ])
}

fn polygon(rings: Vec<Value>) -> Value {
    json!({ "type": "Polygon", "coordinates": rings })
}

/// A deterministic noisy circle of `n` points around (lon, lat), closed.
fn noisy_circle(lon: f64, lat: f64, n: usize) -> Value {
    let mut pts: Vec<Value> = (0..n)
        .map(|i| {
            let t = i as f64 / n as f64 * std::f64::consts::TAU;
            let r = 0.05 * (1.0 + 0.1 * ((i * 7919) % 97) as f64 / 97.0);
            json!([lon + r * t.cos(), lat + r * t.sin()])
        })
        .collect();
    pts.push(pts[0].clone());
    Value::Array(pts)
}

#[test]
fn a_valid_square_parses_into_a_one_polygon_area_with_a_ccw_shell() {
    // Given clockwise: stored counter-clockwise.
    let cw = json!([[0.0, 0.0], [0.0, 1.0], [1.0, 1.0], [1.0, 0.0], [0.0, 0.0]]);
    let Ok(ZoneGeometry::Area(mp)) = parse(polygon(vec![cw])) else {
        panic!("square rejected")
    };
    assert_eq!(mp.0.len(), 1);
    assert!(mp.0[0].signed_area() > 0.0);
    assert_eq!(ZoneGeometry::Area(mp).vertex_count(), 5);
}

#[test]
fn an_open_ring_is_rejected_with_its_position() {
    let open = json!([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]);
    let err = parse(polygon(vec![open])).err();
    assert_eq!(err.as_ref().map(|e| e.code()), Some("ring_not_closed"));
    let msg = err.map(|e| e.to_string()).unwrap_or_default();
    assert!(msg.contains("polygon 0, ring 0"), "{msg}");
}

#[test]
fn an_out_of_range_coordinate_is_rejected_with_its_vertex() {
    let bad = json!([[0.0, 0.0], [181.0, 0.0], [1.0, 1.0], [0.0, 0.0]]);
    let err = parse(polygon(vec![bad])).err();
    assert_eq!(
        err.as_ref().map(|e| e.code()),
        Some("coordinate_out_of_range")
    );
    let msg = err.map(|e| e.to_string()).unwrap_or_default();
    assert!(msg.contains("vertex 1") && msg.contains("181"), "{msg}");
}

#[test]
fn a_bow_tie_is_a_self_intersection_reported_near_its_crossing() {
    let bow = json!([[0.0, 0.0], [1.0, 1.0], [1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]);
    match parse(polygon(vec![bow])) {
        Err(GeometryError::SelfIntersection { lon, lat, .. }) => {
            assert!((lon - 0.5).abs() < 1e-9 && (lat - 0.5).abs() < 1e-9);
        }
        other => panic!("expected self_intersection, got {other:?}"),
    }
}

#[test]
fn a_ring_touching_itself_at_a_vertex_is_a_self_intersection() {
    // Two squares joined at (1, 1), traced as one ring.
    let eight = json!([
        [0.0, 0.0],
        [1.0, 0.0],
        [1.0, 1.0],
        [2.0, 1.0],
        [2.0, 2.0],
        [1.0, 2.0],
        [1.0, 1.0],
        [0.0, 1.0],
        [0.0, 0.0]
    ]);
    assert_eq!(code(polygon(vec![eight])), "self_intersection");
}

#[test]
fn a_spike_folding_back_on_itself_is_a_self_intersection() {
    let spike = json!([[0.0, 0.0], [2.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 0.0]]);
    assert_eq!(code(polygon(vec![spike])), "self_intersection");
}

#[test]
fn consecutive_duplicates_are_dropped_but_a_collapsed_ring_is_too_few_points() {
    let dup = json!([
        [0.0, 0.0],
        [0.0, 0.0],
        [1.0, 0.0],
        [1.0, 1.0],
        [1.0, 1.0],
        [0.0, 0.0]
    ]);
    let Ok(g) = parse(polygon(vec![dup])) else {
        panic!("duplicates rejected")
    };
    assert_eq!(g.vertex_count(), 4);
    let collapsed = json!([[0.0, 0.0], [1.0, 0.0], [1.0, 0.0], [0.0, 0.0], [0.0, 0.0]]);
    assert_eq!(code(polygon(vec![collapsed])), "too_few_points");
    assert_eq!(
        code(polygon(vec![json!([[0.0, 0.0], [1.0, 0.0], [0.0, 0.0]])])),
        "too_few_points"
    );
    assert_eq!(code(polygon(vec![json!([])])), "too_few_points");
}

#[test]
fn a_ring_on_one_line_has_zero_area() {
    let flat = json!([[0.0, 0.0], [1.0, 1.0], [3.0, 3.0], [0.0, 0.0]]);
    assert_eq!(code(polygon(vec![flat])), "zero_area");
}

#[test]
fn a_polygon_with_a_hole_parses_and_excludes_the_hole() {
    let g = parse(polygon(vec![square(0.0, 0.0, 4.0), square(1.0, 1.0, 1.0)]));
    let Ok(ZoneGeometry::Area(mp)) = g else {
        panic!("rejected: {g:?}")
    };
    assert_eq!(mp.0[0].interiors().len(), 1);
    assert!(mp.0[0].interiors()[0].0.len() == 5);
    assert!(!mp.contains(&Point::new(1.5, 1.5)));
    assert!(mp.contains(&Point::new(3.0, 3.0)));
    assert!((mp.unsigned_area() - 15.0).abs() < 1e-9);
}

#[test]
fn a_hole_outside_its_shell_is_rejected() {
    let v = polygon(vec![square(0.0, 0.0, 1.0), square(5.0, 5.0, 1.0)]);
    assert_eq!(code(v), "hole_outside_shell");
}

#[test]
fn a_hole_crossing_its_shell_is_a_self_intersection() {
    let v = polygon(vec![square(0.0, 0.0, 2.0), square(1.0, 1.0, 2.0)]);
    assert_eq!(code(v), "self_intersection");
}

#[test]
fn a_hole_inside_another_hole_is_rejected() {
    let v = polygon(vec![
        square(0.0, 0.0, 1.0),
        square(0.1, 0.1, 0.5),
        square(0.2, 0.2, 0.1),
    ]);
    assert_eq!(code(v), "nested_holes");
}

#[test]
fn a_valid_multipolygon_parses_with_an_island_in_a_lake() {
    let v = json!({ "type": "MultiPolygon", "coordinates": [
        [square(0.0, 0.0, 1.0), square(0.2, 0.2, 0.6)],
        [square(0.4, 0.4, 0.1)],
        [square(2.0, 0.0, 0.1)],
    ]});
    let Ok(ZoneGeometry::Area(mp)) = parse(v.clone()) else {
        panic!("multipolygon rejected")
    };
    assert_eq!(mp.0.len(), 3);
    assert!(mp.contains(&Point::new(0.45, 0.45)));
    assert!(!mp.contains(&Point::new(0.3, 0.3)));
    assert!(mp.contains(&Point::new(0.1, 0.1)));
    let back = ZoneGeometry::Area(mp).to_geojson();
    assert_eq!(back["type"], "MultiPolygon");
    assert_eq!(parse(back).map(|g| g.vertex_count()).ok(), Some(20));
}

#[test]
fn polygons_that_overlap_or_nest_in_a_multipolygon_are_rejected() {
    let crossing = json!({ "type": "MultiPolygon", "coordinates": [
        [square(0.0, 0.0, 2.0)], [square(1.0, 1.0, 2.0)],
    ]});
    assert_eq!(code(crossing), "self_intersection");
    let nested = json!({ "type": "MultiPolygon", "coordinates": [
        [square(0.0, 0.0, 1.0)], [square(0.1, 0.1, 0.2)],
    ]});
    assert_eq!(code(nested), "overlapping_polygons");
}

#[test]
fn a_circle_parses_and_a_non_positive_or_huge_radius_is_rejected() {
    let g = parse(json!({ "type": "Circle", "coordinates": [116.4, 39.9], "radius_m": 250.0 }));
    assert_eq!(
        g.clone().ok(),
        Some(ZoneGeometry::Circle {
            center: Point::new(116.4, 39.9),
            radius_m: 250.0
        })
    );
    let rect = g.map(|g| g.bounding_rect()).ok();
    let expect_dlat = 250.0 / 6_371_008.8_f64 * 180.0 / std::f64::consts::PI;
    assert!(rect.is_some_and(|r| (r.max().y - 39.9 - expect_dlat).abs() < 1e-9));
    for r in [0.0, -5.0] {
        let v = json!({ "type": "Circle", "coordinates": [116.4, 39.9], "radius_m": r });
        assert_eq!(code(v), "radius_not_positive");
    }
    let big = json!({ "type": "Circle", "coordinates": [116.4, 39.9], "radius_m": 1e6 });
    assert_eq!(code(big), "radius_too_large");
    let missing = json!({ "type": "Circle", "coordinates": [116.4, 39.9] });
    assert_eq!(code(missing), "invalid_geometry");
}

#[test]
fn a_gcj02_polygon_is_stored_shifted_to_wgs84() {
    // Draw the GCJ-02 image of a WGS-84 square; the stored shape is that square again.
    let wgs = [
        (114.64, 33.61),
        (114.66, 33.61),
        (114.66, 33.63),
        (114.64, 33.63),
    ];
    let mut ring: Vec<Value> = wgs
        .iter()
        .map(|&(x, y)| {
            let (gx, gy) = wgs84_to_gcj02(x, y);
            json!([gx, gy])
        })
        .collect();
    ring.push(ring[0].clone());
    let v = polygon(vec![Value::Array(ring)]);
    let Ok(ZoneGeometry::Area(mp)) =
        ZoneGeometry::parse(&v, Datum::Gcj02, &GeometryLimits::default())
    else {
        panic!("gcj02 square rejected")
    };
    let stored: Vec<Coord<f64>> = mp.0[0].exterior().coords().copied().collect();
    for (x, y) in wgs {
        assert!(
            stored
                .iter()
                .any(|c| (c.x - x).abs() < 1e-9 && (c.y - y).abs() < 1e-9),
            "({x}, {y}) not in {stored:?}"
        );
    }
}

#[test]
fn a_3000_vertex_noisy_circle_parses_and_round_trips() {
    let v = polygon(vec![noisy_circle(114.65, 33.62, 3000)]);
    let g = parse(v);
    let Ok(g) = g else {
        panic!("noisy circle rejected: {g:?}")
    };
    assert_eq!(g.vertex_count(), 3001);
    assert_eq!(parse(g.to_geojson()).as_ref(), Ok(&g));
}

#[test]
fn limits_on_vertices_and_extent_are_enforced() {
    let limits = GeometryLimits {
        max_vertices: 10,
        ..GeometryLimits::default()
    };
    let v = polygon(vec![noisy_circle(0.0, 0.0, 20)]);
    let err = ZoneGeometry::parse(&v, Datum::Wgs84, &limits).err();
    assert_eq!(err.map(|e| e.code()), Some("too_many_vertices"));
    assert_eq!(code(polygon(vec![square(0.0, 0.0, 20.0)])), "too_large");
}

#[test]
fn shapes_that_are_not_zone_geometries_are_named_in_the_error() {
    assert_eq!(
        code(json!({ "type": "Point", "coordinates": [0.0, 0.0] })),
        "unknown_geometry_type"
    );
    assert_eq!(
        code(json!({ "type": "Feature", "geometry": null })),
        "unknown_geometry_type"
    );
    assert_eq!(code(json!({ "coordinates": [] })), "invalid_geometry");
    assert_eq!(code(json!([1, 2])), "invalid_geometry");
    assert_eq!(code(json!({ "type": 3 })), "invalid_geometry");
    assert_eq!(
        code(polygon(vec![json!([
            [0.0, 0.0],
            [1.0],
            [1.0, 1.0],
            [0.0, 0.0]
        ])])),
        "invalid_geometry"
    );
    assert_eq!(
        code(polygon(vec![json!([[[0.0, 0.0]]])])),
        "invalid_geometry"
    );
    let msg = parse(polygon(vec![json!([
        [0.0, 0.0],
        [1.0, "x"],
        [1.0, 1.0],
        [0.0, 0.0]
    ])]))
    .err()
    .map(|e| e.to_string())
    .unwrap_or_default();
    assert!(
        msg.contains("coordinates[0][1][1]") && msg.contains("a string"),
        "{msg}"
    );
}

#[test]
fn an_altitude_is_accepted_and_ignored() {
    let ring = json!([
        [0.0, 0.0, 5.0],
        [1.0, 0.0, 5.0],
        [1.0, 1.0, 5.0],
        [0.0, 0.0, 5.0]
    ]);
    assert!(parse(polygon(vec![ring])).is_ok());
}

#[test]
fn every_error_has_a_distinct_snake_case_code() {
    let at = VertexRef {
        polygon: 0,
        ring: 0,
        vertex: 0,
    };
    let errors = [
        GeometryError::UnknownType {
            found: String::new(),
        },
        GeometryError::invalid("$", ""),
        GeometryError::NonFinite { at },
        GeometryError::OutOfRange {
            at,
            lon: 0.0,
            lat: 0.0,
        },
        GeometryError::RingNotClosed {
            polygon: 0,
            ring: 0,
            first: (0.0, 0.0),
            last: (0.0, 0.0),
        },
        GeometryError::TooFewPoints {
            polygon: 0,
            ring: 0,
            distinct: 0,
        },
        GeometryError::SelfIntersection {
            first: at,
            second: at,
            lon: 0.0,
            lat: 0.0,
        },
        GeometryError::HoleOutsideShell {
            polygon: 0,
            ring: 0,
        },
        GeometryError::NestedHoles {
            polygon: 0,
            ring: 0,
            outer: 0,
        },
        GeometryError::OverlappingPolygons { inner: 0, outer: 0 },
        GeometryError::ZeroArea {
            polygon: 0,
            ring: 0,
        },
        GeometryError::RadiusNotPositive { radius_m: 0.0 },
        GeometryError::RadiusTooLarge {
            radius_m: 0.0,
            max_m: 0.0,
        },
        GeometryError::TooManyVertices { count: 0, max: 0 },
        GeometryError::TooLarge {
            extent_m: 0.0,
            max_m: 0.0,
        },
        GeometryError::TooComplex { budget: 0 },
    ];
    let mut codes: Vec<_> = errors.iter().map(|e| e.code()).collect();
    assert!(codes
        .iter()
        .all(|c| c.chars().all(|ch| ch.is_ascii_lowercase() || ch == '_')));
    codes.sort_unstable();
    codes.dedup();
    assert_eq!(codes.len(), errors.len());
}
