//! Where a [`Person`] is at an instant, and the fix their tag reports there.
//!
//! Role: the daily plan (home, commute out, work, commute back, home) in the person's local
//! time, overlaid by their excursions; and fixes with honest accuracy around the true position.
//!
//! Invariants: off excursions the person moves along the route at the travel mode's speed, so the
//! true position is always on the route; every fix lies within `ERROR_SHARE * acc_m` of it.

use chrono::{DateTime, Utc};
use rand::Rng;
use serde::{Deserialize, Serialize};

use super::{secs, Person};
use crate::geo::{self, LatLon};

/// The largest error of a fix, as a share of its reported accuracy.
pub const ERROR_SHARE: f64 = 0.6;

/// How a supervisee gets about, with its average speed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TravelMode {
    Walking,
    Cycling,
    Driving,
}

impl TravelMode {
    pub const ALL: [TravelMode; 3] = [
        TravelMode::Walking,
        TravelMode::Cycling,
        TravelMode::Driving,
    ];

    /// Average speed: 5, 15 and 40 km/h.
    pub fn speed_kmh(self) -> f64 {
        match self {
            TravelMode::Walking => 5.0,
            TravelMode::Cycling => 15.0,
            TravelMode::Driving => 40.0,
        }
    }

    pub fn speed_mps(self) -> f64 {
        self.speed_kmh() / 3.6
    }
}

/// Where a fix came from, as the wire's `src` spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FixSource {
    Gps,
    Wifi,
    Cell,
}

impl FixSource {
    pub fn as_str(self) -> &'static str {
        match self {
            FixSource::Gps => "gps",
            FixSource::Wifi => "wifi",
            FixSource::Cell => "cell",
        }
    }
}

/// One location report: the true position plus an error within `ERROR_SHARE * acc_m`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Fix {
    pub ts: DateTime<Utc>,
    pub lat: f64,
    pub lon: f64,
    /// Reported accuracy in metres, to 0.1 m: gps 5–15 outdoors, wifi 20–40 indoors, cell
    /// 300–1500.
    pub acc_m: f64,
    pub src: FixSource,
}

/// What the person is doing at an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Activity {
    AtHome,
    ToWork,
    AtWork,
    ToHome,
    /// Away from the plan: travelling to, staying at or passing an override's point.
    OnExcursion,
}

impl Activity {
    /// Indoors fixes come from Wi-Fi (20–40 m); outdoors from GPS (5–15 m).
    pub fn is_indoors(self) -> bool {
        matches!(self, Activity::AtHome | Activity::AtWork)
    }
}

/// Where the person really is.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct TruePosition {
    pub lat: f64,
    pub lon: f64,
    pub activity: Activity,
}

impl TruePosition {
    pub fn point(&self) -> LatLon {
        (self.lat, self.lon)
    }
}

impl Person {
    /// Where the person really is at `t`.
    pub fn position_at(&self, t: DateTime<Utc>) -> TruePosition {
        let s = secs(t);
        let (p, activity) = match self
            .excursions
            .iter()
            .find(|e| secs(e.depart) <= s && s < secs(e.rejoin))
        {
            Some(e) => (e.position(s), Activity::OnExcursion),
            None => self.plan_at(s),
        };
        TruePosition {
            lat: p.0,
            lon: p.1,
            activity,
        }
    }

    /// The fix the tag reports at `t`: a cell fix with probability `poor_fix_share`, else Wi-Fi
    /// indoors or GPS outdoors; the error is uniform over the disc of radius
    /// `ERROR_SHARE * acc_m` around the true position.
    pub fn fix_at<R: Rng + ?Sized>(&self, t: DateTime<Utc>, rng: &mut R) -> Fix {
        let p = self.position_at(t);
        let (src, lo, hi) = if rng.gen_bool(self.poor_fix_share) {
            (FixSource::Cell, 300.0, 1500.0)
        } else if p.activity.is_indoors() {
            (FixSource::Wifi, 20.0, 40.0)
        } else {
            (FixSource::Gps, 5.0, 15.0)
        };
        let acc_m = (rng.gen_range(lo..hi) * 10.0_f64).round() / 10.0;
        let r = ERROR_SHARE * acc_m * rng.gen::<f64>().sqrt();
        let a = rng.gen_range(0.0..std::f64::consts::TAU);
        let (lat, lon) = geo::offset(p.lat, p.lon, r * a.cos(), r * a.sin());
        Fix {
            ts: t,
            lat,
            lon,
            acc_m,
            src,
        }
    }

    /// The plan alone (no overrides) at `t` seconds since the epoch.
    pub(super) fn plan_at(&self, t: f64) -> (LatLon, Activity) {
        let day = (t + f64::from(self.utc_offset.local_minus_utc())).rem_euclid(86_400.0);
        let (commute, v) = (self.commute_s(), self.mode.speed_mps());
        if day < self.leave_home_s {
            (self.home(), Activity::AtHome)
        } else if day < self.leave_home_s + commute {
            (
                along(&self.route, (day - self.leave_home_s) * v),
                Activity::ToWork,
            )
        } else if day < self.leave_work_s {
            (self.work(), Activity::AtWork)
        } else if day < self.leave_work_s + commute {
            let back: Vec<LatLon> = self.route.iter().rev().copied().collect();
            (
                along(&back, (day - self.leave_work_s) * v),
                Activity::ToHome,
            )
        } else {
            (self.home(), Activity::AtHome)
        }
    }
}

/// The point `d` metres along `path` (its end beyond).
fn along(path: &[LatLon], mut d: f64) -> LatLon {
    for w in path.windows(2) {
        let leg = geo::distance_m(w[0], w[1]);
        if d < leg {
            return geo::interpolate(w[0], w[1], d / leg);
        }
        d -= leg;
    }
    path[path.len() - 1]
}
