//! Geodetic datums for zone coordinates, and conversion between them.
//!
//! Devices report WGS-84. Officers often draw zones on Chinese web maps, which use GCJ-02
//! (Amap, Tencent: WGS-84 shifted by a published obfuscation polynomial, several hundred
//! metres) or BD-09 (Baidu: GCJ-02 shifted again). A zone carries its [`Datum`] and is
//! converted to WGS-84 once, on input; everything downstream is WGS-84.
//!
//! Invariants:
//! - every function is pure and total: no panics, non-finite input gives non-finite output;
//! - all coordinates are `(lon, lat)` in degrees;
//! - outside the mainland-China bounding box ([`out_of_china`]) GCJ-02 equals WGS-84;
//! - [`gcj02_to_wgs84`] inverts [`wgs84_to_gcj02`] iteratively to better than 1e-9 degrees
//!   (a few iterations; bounded by [`MAX_INVERSE_ITERATIONS`]).

use std::f64::consts::PI;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Semi-major axis of the Krasovsky 1940 ellipsoid used by the GCJ-02 formula, in metres.
const KRASOVSKY_A: f64 = 6_378_245.0;
/// First eccentricity squared of the Krasovsky 1940 ellipsoid.
const KRASOVSKY_EE: f64 = 0.006_693_421_622_965_943; // 0.00669342162296594323
/// BD-09's rotation constant.
const X_PI: f64 = PI * 3000.0 / 180.0;
/// Upper bound on iterations of the GCJ-02 inverse (it converges in about five).
pub const MAX_INVERSE_ITERATIONS: usize = 30;
/// Convergence threshold of the GCJ-02 inverse, in degrees.
const INVERSE_TOLERANCE_DEG: f64 = 1e-10;

/// The datum a coordinate was drawn in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Datum {
    /// WGS-84: GPS, OpenStreetMap, Google Maps outside China.
    Wgs84,
    /// GCJ-02 ("Mars coordinates"): Amap (Gaode), Tencent Maps, Google Maps inside China.
    Gcj02,
    /// BD-09: Baidu Maps.
    Bd09,
}

impl Datum {
    /// Every datum, in a stable order.
    pub const ALL: [Datum; 3] = [Datum::Wgs84, Datum::Gcj02, Datum::Bd09];

    /// The wire name: `wgs84`, `gcj02` or `bd09`.
    pub fn as_str(self) -> &'static str {
        match self {
            Datum::Wgs84 => "wgs84",
            Datum::Gcj02 => "gcj02",
            Datum::Bd09 => "bd09",
        }
    }

    /// Converts a `(lon, lat)` in this datum to WGS-84.
    pub fn to_wgs84(self, lon: f64, lat: f64) -> (f64, f64) {
        match self {
            Datum::Wgs84 => (lon, lat),
            Datum::Gcj02 => gcj02_to_wgs84(lon, lat),
            Datum::Bd09 => bd09_to_wgs84(lon, lat),
        }
    }

    /// Converts a WGS-84 `(lon, lat)` into this datum (for messages shown to the officer).
    pub fn from_wgs84(self, lon: f64, lat: f64) -> (f64, f64) {
        match self {
            Datum::Wgs84 => (lon, lat),
            Datum::Gcj02 => wgs84_to_gcj02(lon, lat),
            Datum::Bd09 => wgs84_to_bd09(lon, lat),
        }
    }
}

impl fmt::Display for Datum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A datum name that is not one of `wgs84`, `gcj02`, `bd09` (names are case-sensitive).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown datum {0:?}: expected wgs84, gcj02 or bd09")]
pub struct UnknownDatum(pub String);

impl FromStr for Datum {
    type Err = UnknownDatum;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Datum::ALL
            .into_iter()
            .find(|d| d.as_str() == s)
            // Echo at most 40 characters of untrusted input back.
            .ok_or_else(|| UnknownDatum(s.chars().take(40).collect()))
    }
}

/// True outside the rough mainland-China box where GCJ-02 applies no offset.
pub fn out_of_china(lon: f64, lat: f64) -> bool {
    !(72.004..=137.8347).contains(&lon) || !(0.8293..=55.8271).contains(&lat)
}

fn transform_lat(x: f64, y: f64) -> f64 {
    let mut ret = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * x.abs().sqrt();
    ret += (20.0 * (6.0 * x * PI).sin() + 20.0 * (2.0 * x * PI).sin()) * 2.0 / 3.0;
    ret += (20.0 * (y * PI).sin() + 40.0 * (y / 3.0 * PI).sin()) * 2.0 / 3.0;
    ret += (160.0 * (y / 12.0 * PI).sin() + 320.0 * (y * PI / 30.0).sin()) * 2.0 / 3.0;
    ret
}

fn transform_lon(x: f64, y: f64) -> f64 {
    let mut ret = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * x.abs().sqrt();
    ret += (20.0 * (6.0 * x * PI).sin() + 20.0 * (2.0 * x * PI).sin()) * 2.0 / 3.0;
    ret += (20.0 * (x * PI).sin() + 40.0 * (x / 3.0 * PI).sin()) * 2.0 / 3.0;
    ret += (150.0 * (x / 12.0 * PI).sin() + 300.0 * (x / 30.0 * PI).sin()) * 2.0 / 3.0;
    ret
}

/// The GCJ-02 offset `(dlon, dlat)` at a WGS-84 point, ignoring the China box.
fn gcj02_offset(lon: f64, lat: f64) -> (f64, f64) {
    let dlat = transform_lat(lon - 105.0, lat - 35.0);
    let dlon = transform_lon(lon - 105.0, lat - 35.0);
    let radlat = lat / 180.0 * PI;
    let magic = 1.0 - KRASOVSKY_EE * radlat.sin() * radlat.sin();
    let sqrtmagic = magic.sqrt();
    let dlat = (dlat * 180.0) / ((KRASOVSKY_A * (1.0 - KRASOVSKY_EE)) / (magic * sqrtmagic) * PI);
    let dlon = (dlon * 180.0) / (KRASOVSKY_A / sqrtmagic * radlat.cos() * PI);
    (dlon, dlat)
}

/// WGS-84 to GCJ-02 (the published forward formula).
pub fn wgs84_to_gcj02(lon: f64, lat: f64) -> (f64, f64) {
    if out_of_china(lon, lat) {
        return (lon, lat);
    }
    let (dlon, dlat) = gcj02_offset(lon, lat);
    (lon + dlon, lat + dlat)
}

/// GCJ-02 to WGS-84, by fixed-point iteration on the forward transform.
///
/// Converges to better than 1e-9 degrees in a handful of steps; stops after
/// [`MAX_INVERSE_ITERATIONS`] whatever happens (e.g. at the edge of the China box, where the
/// forward transform is discontinuous).
pub fn gcj02_to_wgs84(lon: f64, lat: f64) -> (f64, f64) {
    if out_of_china(lon, lat) {
        return (lon, lat);
    }
    let (mut wlon, mut wlat) = (lon, lat);
    for _ in 0..MAX_INVERSE_ITERATIONS {
        let (glon, glat) = wgs84_to_gcj02(wlon, wlat);
        let (elon, elat) = (glon - lon, glat - lat);
        wlon -= elon;
        wlat -= elat;
        let err = elon.abs().max(elat.abs());
        if err <= INVERSE_TOLERANCE_DEG || err.is_nan() {
            break;
        }
    }
    (wlon, wlat)
}

/// GCJ-02 to BD-09 (the published Baidu formula).
pub fn gcj02_to_bd09(lon: f64, lat: f64) -> (f64, f64) {
    let z = (lon * lon + lat * lat).sqrt() + 0.00002 * (lat * X_PI).sin();
    let theta = lat.atan2(lon) + 0.000003 * (lon * X_PI).cos();
    (z * theta.cos() + 0.0065, z * theta.sin() + 0.006)
}

/// BD-09 to GCJ-02 (the published approximate inverse, as in the coordtransform libraries;
/// off by up to a few centimetres: [`bd09_to_wgs84`] refines it).
pub fn bd09_to_gcj02(lon: f64, lat: f64) -> (f64, f64) {
    let x = lon - 0.0065;
    let y = lat - 0.006;
    let z = (x * x + y * y).sqrt() - 0.00002 * (y * X_PI).sin();
    let theta = y.atan2(x) - 0.000003 * (x * X_PI).cos();
    (z * theta.cos(), z * theta.sin())
}

/// BD-09 to WGS-84 (via GCJ-02).
///
/// The published [`bd09_to_gcj02`] is off by up to a few centimetres, so here its result is
/// refined by fixed-point iteration on [`gcj02_to_bd09`], like [`gcj02_to_wgs84`].
pub fn bd09_to_wgs84(lon: f64, lat: f64) -> (f64, f64) {
    let (mut glon, mut glat) = bd09_to_gcj02(lon, lat);
    for _ in 0..MAX_INVERSE_ITERATIONS {
        let (blon, blat) = gcj02_to_bd09(glon, glat);
        let (elon, elat) = (blon - lon, blat - lat);
        glon -= elon;
        glat -= elat;
        let err = elon.abs().max(elat.abs());
        if err <= INVERSE_TOLERANCE_DEG || err.is_nan() {
            break;
        }
    }
    gcj02_to_wgs84(glon, glat)
}

/// WGS-84 to BD-09 (via GCJ-02).
pub fn wgs84_to_bd09(lon: f64, lat: f64) -> (f64, f64) {
    let (glon, glat) = wgs84_to_gcj02(lon, lat);
    gcj02_to_bd09(glon, glat)
}

/// Mean Earth radius (IUGG), in metres, used for haversine distances.
pub const EARTH_RADIUS_M: f64 = 6_371_008.8;

/// Great-circle distance in metres between two `(lon, lat)` points (haversine, spherical).
pub fn haversine_m(a: (f64, f64), b: (f64, f64)) -> f64 {
    let (lat1, lat2) = (a.1.to_radians(), b.1.to_radians());
    let dlat = lat2 - lat1;
    let dlon = (b.0 - a.0).to_radians();
    let h = (dlat / 2.0).sin().powi(2) + lat1.cos() * lat2.cos() * (dlon / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_M * h.sqrt().min(1.0).asin()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIANANMEN: (f64, f64) = (116.404, 39.915);

    fn assert_close(actual: (f64, f64), expected: (f64, f64), tol: f64) {
        assert!(
            (actual.0 - expected.0).abs() < tol && (actual.1 - expected.1).abs() < tol,
            "{actual:?} != {expected:?} (tolerance {tol})"
        );
    }

    #[test]
    fn wgs84_to_gcj02_matches_the_published_vector() {
        let got = wgs84_to_gcj02(TIANANMEN.0, TIANANMEN.1);
        assert_close(got, (116.41024449916938, 39.91640428150164), 1e-9);
    }

    #[test]
    fn gcj02_to_bd09_matches_the_published_vector() {
        let got = gcj02_to_bd09(TIANANMEN.0, TIANANMEN.1);
        assert_close(got, (116.41036949371029, 39.92133699351021), 1e-9);
    }

    #[test]
    fn bd09_to_gcj02_matches_the_published_vector() {
        let got = bd09_to_gcj02(TIANANMEN.0, TIANANMEN.1);
        assert_close(got, (116.39762729119315, 39.90865673957631), 1e-9);
    }

    #[test]
    fn wgs84_to_gcj02_and_back_round_trips_to_under_a_centimetre() {
        for lon in [73.5, 100.0, 114.65, 116.404, 121.47, 135.0] {
            for lat in [3.0, 22.3, 33.62, 39.915, 53.0] {
                let (glon, glat) = wgs84_to_gcj02(lon, lat);
                let back = gcj02_to_wgs84(glon, glat);
                assert!(
                    haversine_m((lon, lat), back) < 0.01,
                    "{lon},{lat} -> {back:?}"
                );
                assert_close(back, (lon, lat), 1e-9);
            }
        }
    }

    #[test]
    fn wgs84_to_bd09_and_back_round_trips_to_under_a_centimetre() {
        for lon in [73.5, 100.0, 114.65, 116.404, 121.47, 135.0] {
            for lat in [3.0, 22.3, 33.62, 39.915, 53.0] {
                let (blon, blat) = wgs84_to_bd09(lon, lat);
                let back = bd09_to_wgs84(blon, blat);
                assert!(
                    haversine_m((lon, lat), back) < 0.01,
                    "{lon},{lat} -> {back:?}"
                );
            }
        }
    }

    #[test]
    fn the_gcj02_offset_around_zhoukou_is_several_hundred_metres() {
        let zhoukou = (114.65, 33.62);
        let shifted = wgs84_to_gcj02(zhoukou.0, zhoukou.1);
        let offset = haversine_m(zhoukou, shifted);
        assert!((400.0..700.0).contains(&offset), "offset {offset} m");
    }

    #[test]
    fn points_outside_china_pass_through_gcj02_unchanged() {
        for p in [
            (-73.99, 40.73),
            (2.35, 48.85),
            (139.69, 35.68),
            (151.2, -33.87),
        ] {
            assert_eq!(wgs84_to_gcj02(p.0, p.1), p);
            assert_eq!(gcj02_to_wgs84(p.0, p.1), p);
            assert_eq!(Datum::Gcj02.to_wgs84(p.0, p.1), p);
        }
    }

    #[test]
    fn datum_names_parse_and_print_round_trip() {
        for d in Datum::ALL {
            assert_eq!(d.as_str().parse::<Datum>(), Ok(d));
            assert_eq!(
                serde_json::to_value(d).ok(),
                Some(serde_json::json!(d.as_str()))
            );
        }
    }

    #[test]
    fn an_unknown_datum_name_is_echoed_with_the_accepted_ones() {
        let err = "xyz".parse::<Datum>().err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("unknown datum \"xyz\": expected wgs84, gcj02 or bd09")
        );
        assert!("WGS84".parse::<Datum>().is_err());
    }

    #[test]
    fn non_finite_input_does_not_panic_or_loop() {
        for d in Datum::ALL {
            let (lon, lat) = d.to_wgs84(f64::NAN, 39.0);
            assert!(lon.is_nan() || lat.is_nan() || lon.is_finite());
            let _ = d.to_wgs84(f64::INFINITY, f64::NEG_INFINITY);
            let _ = d.from_wgs84(f64::NAN, f64::NAN);
        }
    }
}
