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

use chrono::{DateTime, Duration, FixedOffset, NaiveTime, Utc};
use rand::{rngs::StdRng, Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::geo::{self, LatLon};

/// Fastest allowed [`Override::Pass`] (geoward flags 300 km/h as a location jump).
pub const MAX_PASS_SPEED_KMH: f64 = 250.0;
/// Longest commute accepted when drawing a travel mode for a route.
pub const MAX_COMMUTE_MIN: f64 = 75.0;
/// The largest error of a fix, as a share of its reported accuracy.
pub const ERROR_SHARE: f64 = 0.6;
/// How far before and after an override the search for departure and rejoining looks.
const SEARCH_S: f64 = 48.0 * 3600.0;

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

/// A scenario's change to the plan. Each is reached from the plan, and left back to it, in a
/// straight line at the travel mode's speed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Override {
    /// Leave the plan at `start`, go to `to`, stay there for `stay`, go back.
    Detour {
        start: DateTime<Utc>,
        to: LatLon,
        stay: Duration,
    },
    /// Be at `at` throughout `[from, until]`, leaving the plan early enough to arrive at `from`.
    Stay {
        at: LatLon,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
    },
    /// Cross `through` at instant `at` in a straight line `length_m` long at `speed_kmh`,
    /// heading from where the plan has the person at `at` towards `through`.
    Pass {
        through: LatLon,
        at: DateTime<Utc>,
        speed_kmh: f64,
        length_m: f64,
    },
}

/// An override resolved against the plan: on the plan until `depart`, at `arrive_at` at
/// `arrive`, moving straight to `leave_from` by `leave` (standing still unless a pass), back on
/// the plan at `rejoin`. Each leg is straight and at constant speed.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Excursion {
    pub depart: DateTime<Utc>,
    pub depart_from: LatLon,
    pub arrive: DateTime<Utc>,
    pub arrive_at: LatLon,
    pub leave: DateTime<Utc>,
    pub leave_from: LatLon,
    pub rejoin: DateTime<Utc>,
    pub rejoin_at: LatLon,
}

impl Excursion {
    fn position(&self, t: f64) -> LatLon {
        let (d, a, l, r) = (
            secs(self.depart),
            secs(self.arrive),
            secs(self.leave),
            secs(self.rejoin),
        );
        if t < a {
            geo::interpolate(self.depart_from, self.arrive_at, share(t, d, a))
        } else if t < l {
            geo::interpolate(self.arrive_at, self.leave_from, share(t, a, l))
        } else {
            geo::interpolate(self.leave_from, self.rejoin_at, share(t, l, r))
        }
    }
}

/// Why an override was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverrideError {
    /// A duration, speed, length or point out of range.
    Invalid(&'static str),
    /// It would overlap an excursion already added (from departure to rejoining).
    Overlaps,
    /// Its point is too far to reach within 48 hours at the travel mode's speed.
    Unreachable,
}

impl std::fmt::Display for OverrideError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OverrideError::Invalid(what) => write!(f, "invalid override: {what}"),
            OverrideError::Overlaps => f.write_str("override overlaps another excursion"),
            OverrideError::Unreachable => f.write_str("override point unreachable in 48 h"),
        }
    }
}

impl std::error::Error for OverrideError {}

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

    /// Resolves `o` against the plan and adds it; returns when the person leaves the plan,
    /// arrives, leaves and is back on the plan.
    pub fn add(&mut self, o: Override) -> Result<Excursion, OverrideError> {
        let finite = |p: LatLon| p.0.is_finite() && p.1.is_finite() && p.0.abs() < 85.0;
        let e = match o {
            Override::Detour { start, to, stay } => {
                if !finite(to) || stay < Duration::zero() {
                    return Err(OverrideError::Invalid("detour point or stay"));
                }
                let from = self.plan_at(secs(start)).0;
                let arrive =
                    ceil_ms(secs(start) + geo::distance_m(from, to) / self.mode.speed_mps());
                self.visit(to, to, arrive, secs(at_ms(arrive) + stay))?
            }
            Override::Stay { at, from, until } => {
                if !finite(at) || until < from {
                    return Err(OverrideError::Invalid("stay point or window"));
                }
                self.visit(at, at, secs(from), secs(until))?
            }
            Override::Pass {
                through,
                at,
                speed_kmh,
                length_m,
            } => {
                if !(finite(through) && speed_kmh > 0.0 && speed_kmh <= MAX_PASS_SPEED_KMH) {
                    return Err(OverrideError::Invalid("pass point or speed"));
                }
                if !(length_m > 0.0 && length_m <= 50_000.0) {
                    return Err(OverrideError::Invalid("pass length"));
                }
                let here = self.plan_at(secs(at)).0;
                let heading = geo::bearing_deg(here, through).to_radians();
                let h = length_m / 2.0;
                let (n, e) = (h * heading.cos(), h * heading.sin());
                let (start, end) = (
                    geo::offset(through.0, through.1, -n, -e),
                    geo::offset(through.0, through.1, n, e),
                );
                let half_s = h / (speed_kmh / 3.6);
                self.visit(start, end, secs(at) - half_s, secs(at) + half_s)?
            }
        };
        if self
            .excursions
            .iter()
            .any(|x| e.depart < x.rejoin && x.depart < e.rejoin)
        {
            return Err(OverrideError::Overlaps);
        }
        self.excursions.push(e);
        self.excursions.sort_by_key(|x| x.depart);
        Ok(e)
    }

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
    fn plan_at(&self, t: f64) -> (LatLon, Activity) {
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

    /// An excursion at `start` at `arrive` and `end` at `leave` (seconds), reached from the
    /// plan and left back to it at the mode's speed.
    fn visit(
        &self,
        start: LatLon,
        end: LatLon,
        arrive: f64,
        leave: f64,
    ) -> Result<Excursion, OverrideError> {
        let v = self.mode.speed_mps();
        let dist = |t: f64, p: LatLon| geo::distance_m(self.plan_at(t).0, p);
        // Latest departure that reaches `start` in time: `v (arrive - t) - dist` falls with t
        // (the plan moves no faster than v).
        let early = |t: f64| v * (arrive - t) >= dist(t, start);
        let depart = if early(arrive) {
            arrive
        } else if !early(arrive - SEARCH_S) {
            return Err(OverrideError::Unreachable);
        } else {
            floor_ms(bisect(arrive - SEARCH_S, arrive, early).0)
        };
        // Earliest time back on the plan.
        let late = |t: f64| v * (t - leave) >= dist(t, end);
        let rejoin = if late(leave) {
            leave
        } else if late(leave + SEARCH_S) {
            ceil_ms(bisect(leave, leave + SEARCH_S, |t| !late(t)).1)
        } else {
            return Err(OverrideError::Unreachable);
        };
        let (arrive, leave) = (at_ms(arrive), at_ms(leave));
        Ok(Excursion {
            depart: at_ms(depart).min(arrive),
            depart_from: self.plan_at(depart).0,
            arrive,
            arrive_at: start,
            leave,
            leave_from: end,
            rejoin: at_ms(rejoin).max(leave),
            rejoin_at: self.plan_at(rejoin).0,
        })
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

/// The boundary of a monotone predicate on `[lo, hi]`, true at `lo` and false at `hi`:
/// returns `(lo, hi)` within 1 µs of each other, true at `lo` and false at `hi`.
fn bisect(mut lo: f64, mut hi: f64, holds: impl Fn(f64) -> bool) -> (f64, f64) {
    while hi - lo > 1e-6 {
        let mid = 0.5 * (lo + hi);
        if mid <= lo || mid >= hi {
            break;
        }
        if holds(mid) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    (lo, hi)
}

fn path_length(path: &[LatLon]) -> f64 {
    path.windows(2).map(|w| geo::distance_m(w[0], w[1])).sum()
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

/// How far `t` is through `[a, b]`, in `[0, 1]` (1 for an empty interval).
fn share(t: f64, a: f64, b: f64) -> f64 {
    if b > a {
        ((t - a) / (b - a)).clamp(0.0, 1.0)
    } else {
        1.0
    }
}

fn secs(t: DateTime<Utc>) -> f64 {
    t.timestamp_millis() as f64 / 1000.0
}

fn at_ms(s: f64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis((s * 1000.0).round() as i64).unwrap_or_default()
}

fn floor_ms(s: f64) -> f64 {
    (s * 1000.0).floor() / 1000.0
}

fn ceil_ms(s: f64) -> f64 {
    (s * 1000.0).ceil() / 1000.0
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
