//! A scenario's changes to a [`Person`]'s plan, resolved into excursions.
//!
//! Role: turns an [`Override`] (detour, stay, pass) into an [`Excursion`]: when the person
//! leaves the plan, arrives, leaves and rejoins the plan, each leg straight at constant speed.
//!
//! Invariants: departure and rejoining are found by bisection so that reaching the override's
//! point and getting back never needs more than the travel mode's speed (a pass runs at its own
//! speed, at most [`MAX_PASS_SPEED_KMH`]); excursions never overlap; times are whole
//! milliseconds, departures rounded down and rejoinings up.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::{secs, Person};
use crate::geo::{self, LatLon};

/// Fastest allowed [`Override::Pass`] (geoward flags 300 km/h as a location jump).
pub const MAX_PASS_SPEED_KMH: f64 = 250.0;
/// How far before and after an override the search for departure and rejoining looks.
const SEARCH_S: f64 = 48.0 * 3600.0;

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
    pub(super) fn position(&self, t: f64) -> LatLon {
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

impl Person {
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

/// How far `t` is through `[a, b]`, in `[0, 1]` (1 for an empty interval).
fn share(t: f64, a: f64, b: f64) -> f64 {
    if b > a {
        ((t - a) / (b - a)).clamp(0.0, 1.0)
    } else {
        1.0
    }
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
