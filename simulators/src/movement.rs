//! A supervisee's day as a function of time, and the fixes their tag reports.
//!
//! Role: gives each simulated device a realistic true position at any instant, and a GPS fix
//! with honest accuracy. Scenarios bend the day with [`Override`]s (go into an exclusion zone,
//! stay out during curfew, pass a school); the ledger decides which alerts those must cause.
//!
//! The plan, every day alike, in the person's local time (a fixed UTC offset, +8 h in China):
//! at home until a leave time drawn in 07:00–08:30; a commute to work along the person's route
//! (2–4 straight legs through waypoints) at their travel mode's speed; at work until a time
//! drawn in 17:00–18:30; the same route back; at home for the evening and night.
//!
//! Invariants (tested, several as properties over random seeds and times):
//! - the true track is continuous and never faster than the travel mode's speed, except during
//!   a [`Override::Pass`], which runs at its own speed, at most [`MAX_PASS_SPEED_KMH`]; so two
//!   fixes never imply geoward's 300 km/h location jump;
//! - every fix lies within `ERROR_SHARE * acc_m` (0.6 of its accuracy) of the true position;
//! - with no override, the true position is always on the route, so it never comes closer to a
//!   point than [`Person::distance_from_route_m`];
//! - pure and deterministic: a person is a function of its seed, a fix of time and the rng.
//!
//! Layout: this file draws a [`Person`] (the route, travel mode and daily times) from an
//! [`Area`]; `movement/position.rs` has where they are and what their tag reports at an
//! instant (the plan, [`Fix`]es); `movement/overrides.rs` resolves an [`Override`] into an
//! [`Excursion`] off the plan.

use chrono::{DateTime, Duration, FixedOffset, NaiveTime, Utc};
use rand::{rngs::StdRng, Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::geo::{self, LatLon};

mod overrides;
mod position;

pub use overrides::{Excursion, Override, OverrideError, MAX_PASS_SPEED_KMH};
pub use position::{Activity, Fix, FixSource, TravelMode, TruePosition, ERROR_SHARE};

/// Longest commute accepted when drawing a travel mode for a route.
pub const MAX_COMMUTE_MIN: f64 = 75.0;

/// Where supervisees are drawn: homes uniformly within `home_radius_m` of `centre`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Area {
    pub centre: LatLon,
    pub home_radius_m: f64,
    /// The local time zone, as a fixed offset (China: +8 h, no daylight saving).
    pub utc_offset: FixedOffset,
    /// Share of fixes that come from cell towers (clamped to `[0, 1]`).
    pub poor_fix_share: f64,
}

impl Default for Area {
    /// Zhoukou (Henan), 5 km, China Standard Time, 2% cell fixes.
    fn default() -> Self {
        Area {
            centre: (33.625, 114.65),
            home_radius_m: 5000.0,
            utc_offset: FixedOffset::east_opt(8 * 3600).expect("+8 h is a valid offset"),
            poor_fix_share: 0.02,
        }
    }
}

/// A simulated supervisee: home, work, route, travel mode, daily times, and overrides.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Person {
    route: Vec<LatLon>,
    mode: TravelMode,
    leave_home_s: f64,
    leave_work_s: f64,
    #[serde(with = "offset_secs")]
    utc_offset: FixedOffset,
    poor_fix_share: f64,
    excursions: Vec<Excursion>,
}

impl Person {
    /// Draws a person from `seed`: home uniformly in the area, work 1–8 km away in any
    /// direction, 1–3 waypoints each at most a quarter of that distance off the straight
    /// line, a travel mode uniformly among those commuting in at most [`MAX_COMMUTE_MIN`]
    /// (driving always does), leave times to the second.
    pub fn generate(seed: u64, area: &Area) -> Person {
        let mut rng = StdRng::seed_from_u64(seed);
        let (r, a) = (
            area.home_radius_m.max(0.0) * rng.gen::<f64>().sqrt(),
            rng.gen_range(0.0..std::f64::consts::TAU),
        );
        let home = geo::offset(area.centre.0, area.centre.1, r * a.cos(), r * a.sin());
        let (dist, b) = (
            rng.gen_range(1000.0..8000.0),
            rng.gen_range(0.0..std::f64::consts::TAU),
        );
        let (along, across) = ((b.cos(), b.sin()), (-b.sin(), b.cos()));
        let at = |f: f64, side: f64| {
            let (n, e) = (f * along.0 + side * across.0, f * along.1 + side * across.1);
            geo::offset(home.0, home.1, dist * n, dist * e)
        };
        let legs: u32 = rng.gen_range(2..=4);
        let mut route = vec![home];
        for i in 1..legs {
            let f = (f64::from(i) + rng.gen_range(-0.3..0.3)) / f64::from(legs);
            route.push(at(f, rng.gen_range(-0.25..0.25)));
        }
        route.push(at(1.0, 0.0));
        let length = path_length(&route);
        let modes: Vec<TravelMode> = TravelMode::ALL
            .into_iter()
            .filter(|m| {
                length / m.speed_mps() <= MAX_COMMUTE_MIN * 60.0 || *m == TravelMode::Driving
            })
            .collect();
        let mode = modes[rng.gen_range(0..modes.len())];
        Person {
            route,
            mode,
            leave_home_s: f64::from(rng.gen_range(7 * 3600..=8 * 3600 + 1800)),
            leave_work_s: f64::from(rng.gen_range(17 * 3600..=18 * 3600 + 1800)),
            utc_offset: area.utc_offset,
            poor_fix_share: area.poor_fix_share.clamp(0.0, 1.0),
            excursions: Vec::new(),
        }
    }

    /// Like [`Person::generate`] (same draws, same person), but travelling by `mode` when one is
    /// given: scenarios whose timing depends on movement drive. The area's `poor_fix_share` is
    /// taken as given, so a caller wanting no cell fixes passes an area with a share of 0.
    pub fn generate_with(seed: u64, area: &Area, mode: Option<TravelMode>) -> Person {
        let mut p = Person::generate(seed, area);
        if let Some(m) = mode {
            p.mode = m;
        }
        p
    }

    /// Share of this person's fixes that come from cell towers.
    pub fn poor_fix_share(&self) -> f64 {
        self.poor_fix_share
    }

    pub fn home(&self) -> LatLon {
        self.route[0]
    }

    pub fn work(&self) -> LatLon {
        self.route[self.route.len() - 1]
    }

    pub fn mode(&self) -> TravelMode {
        self.mode
    }

    /// Home, the waypoints, work: the commute's legs, straight in lon/lat.
    pub fn route(&self) -> &[LatLon] {
        &self.route
    }

    pub fn commute_s(&self) -> f64 {
        path_length(&self.route) / self.mode.speed_mps()
    }

    /// Local times of leaving home and leaving work.
    pub fn leave_times(&self) -> (NaiveTime, NaiveTime) {
        let t = |s: f64| {
            NaiveTime::from_num_seconds_from_midnight_opt(s as u32, 0).unwrap_or(NaiveTime::MIN)
        };
        (t(self.leave_home_s), t(self.leave_work_s))
    }

    pub fn utc_offset(&self) -> FixedOffset {
        self.utc_offset
    }

    pub fn excursions(&self) -> &[Excursion] {
        &self.excursions
    }

    /// The shortest distance from `p` to home, work or the route: with no override, the
    /// person never comes closer to `p` than this.
    pub fn distance_from_route_m(&self, p: LatLon) -> f64 {
        self.route
            .windows(2)
            .map(|w| geo::distance_to_segment_m(p, w[0], w[1]))
            .fold(f64::INFINITY, f64::min)
    }
}

/// Times `start`, `start + interval`, … strictly before `end`; none if `interval <= 0`.
pub fn fix_times(
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    interval: Duration,
) -> impl Iterator<Item = DateTime<Utc>> {
    let first = (interval > Duration::zero()).then_some(start);
    std::iter::successors(first, move |t| Some(*t + interval)).take_while(move |t| *t < end)
}

fn path_length(path: &[LatLon]) -> f64 {
    path.windows(2).map(|w| geo::distance_m(w[0], w[1])).sum()
}

fn secs(t: DateTime<Utc>) -> f64 {
    t.timestamp_millis() as f64 / 1000.0
}

/// Serde for a `FixedOffset` as seconds east of UTC.
mod offset_secs {
    use chrono::FixedOffset;
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(o: &FixedOffset, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i32(o.local_minus_utc())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<FixedOffset, D::Error> {
        let secs = i32::deserialize(d)?;
        FixedOffset::east_opt(secs).ok_or_else(|| D::Error::custom("UTC offset out of range"))
    }
}

#[cfg(test)]
#[path = "movement_tests.rs"]
mod tests;
