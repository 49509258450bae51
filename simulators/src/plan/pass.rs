//! The pass-through scenario: a school crossed between two fixes, neither near it.
//!
//! Invariants: the crossing is one straight drive from the plan through the school's centre
//! (within 5 m) to a point 1 km beyond, kept until after the run, so the school is crossed once;
//! every fix the tag may send is at least `PASS_CLEAR_M` beyond the school's border (the tag is
//! quiet in between, unless the interval alone leaves the school between two ticks); the two
//! fixes around the crossing are at most `crossing_max_gap` apart and on the straight line, so
//! the segment between them goes ~100 m deep, deeper than any GPS accuracy.

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use super::clock::{add_ms, add_secs_ceil, ms, Ticks};
use super::people::{Ctx, Input, Placed};
use super::scenarios::{first_when, placed, with};
use super::{ZoneRef, CROSSING_MAX_GAP_S, GPS_ACC_MAX_M, SCHOOL_RADIUS_M};
use crate::geo::{self, LatLon};
use crate::ledger::{Scenario, Window};
use crate::movement::{Excursion, Override, Person, TravelMode};

/// How far beyond a school's border every fix around a pass is: 30 m plus the largest GPS
/// accuracy, so every such fix is confidently outside (its error is at most 0.6 × 15 m).
pub(super) const PASS_CLEAR_M: f64 = 30.0 + GPS_ACC_MAX_M;
/// Speed of the drive through a school, km/h (the driving speed).
pub(super) const PASS_KMH: f64 = 40.0;

/// Half a pass's "no fix" band: how long the pass is within `PASS_CLEAR_M` of the school's
/// border, plus half a second, in ms.
fn pass_half_band_ms() -> i64 {
    let v = PASS_KMH / 3.6;
    (((SCHOOL_RADIUS_M + PASS_CLEAR_M) / v + 0.5) * 1000.0).ceil() as i64
}

/// Whether the tag can stay quiet around a pass (`Some(true)`), needs not (`Some(false)`: the
/// interval alone leaves the school between two fixes), or the gap would exceed
/// [`CROSSING_MAX_GAP_S`] (`None`).
pub(super) fn quiet(ctx: &Ctx) -> Option<bool> {
    let (i, lag) = (ctx.interval_ms, ctx.lag_ms);
    let max_gap = CROSSING_MAX_GAP_S * 1000 - 2000;
    if i >= lag + 2 * pass_half_band_ms() + 2000 {
        (i + lag <= max_gap).then_some(false)
    } else {
        (2 * pass_half_band_ms() + 2 * i + 2 * lag <= max_gap).then_some(true)
    }
}

/// Crosses a school between two fixes, neither near it: drives (40 km/h) from where the plan
/// has them in a straight line through the school's centre to a point 1 km beyond, and stays
/// there past the end. (A `Pass` override would come back the same way when the plan stands
/// still, crossing twice.) The tag is quiet while within `PASS_CLEAR_M` of the border, unless
/// the interval alone leaves the school between two ticks.
pub(super) fn pass<T>(
    ctx: &Ctx,
    input: &Input,
    fractions: &[f64],
    accept: &mut dyn FnMut(Placed) -> Option<T>,
) -> Option<T> {
    let quiet = quiet(ctx)?;
    let ticks = ctx.ticks(input.index);
    let (i, lag) = (ctx.interval_ms, ctx.lag_ms);
    let beyond = 1000.0;
    let band = SCHOOL_RADIUS_M + PASS_CLEAR_M;
    let home = input.person.home();
    let mut schools: Vec<(f64, usize)> = ctx
        .schools
        .iter()
        .enumerate()
        .map(|(k, s)| (geo::distance_m(home, *s), k))
        .collect();
    schools.sort_by(|a, b| a.0.total_cmp(&b.0));
    for &f in fractions {
        // Aim the crossing between two ticks (no quiet window) or anywhere (quiet window).
        let (t_p, j) = if quiet {
            (ctx.at_fraction(f), None)
        } else {
            let Some(j) = ticks.first_at_or_after(ctx.at_fraction(f)) else {
                continue;
            };
            (add_ms(ticks.at(j), (i + lag) / 2), Some(j))
        };
        for &(_, s) in schools.iter().take(8) {
            let school = ctx.schools[s];
            let Some((person, e, to)) = drive_through(input, school, beyond, t_p, ctx.end) else {
                continue;
            };
            // When the straight leg passes the centre, and enters and leaves the band.
            let dist = |t| geo::distance_m(person.position_at(t).point(), school);
            let (n, east) = geo::displacement_m(e.depart_from, to);
            let (sn, se) = geo::displacement_m(e.depart_from, school);
            let along = (sn * n + se * east) / (n * n + east * east).max(1e-9);
            let t_c = add_ms(
                e.depart,
                (along * (ms(e.arrive) - ms(e.depart)) as f64) as i64,
            );
            let (Some(t_a), Some(t_b)) = (
                first_when(e.depart, t_c, |t| dist(t) <= band),
                first_when(t_c, e.arrive, |t| dist(t) > band),
            ) else {
                continue;
            };
            // (quiet window, earliest possible fix before, latest possible first fix after,
            // the expectation)
            let (q, before, after, window) = match j {
                None => {
                    let (q0, q1) = (add_ms(t_a, -500), add_ms(t_b, 500));
                    let Some(kd) = ticks.first_after(q1) else {
                        continue;
                    };
                    let last = add_ms(ticks.at(kd), lag);
                    (
                        Some(Window::new(q0, q1)),
                        add_ms(q0, -i - lag),
                        last,
                        Window::new(q1, last),
                    )
                }
                Some(j) => {
                    let Some(kd) = ticks.exists(j + 1) else {
                        continue;
                    };
                    if ticks.at_ms(j) + lag + 500 > ms(t_a) || ticks.at_ms(kd) < ms(t_b) + 500 {
                        continue;
                    }
                    let last = add_ms(ticks.at(kd), lag);
                    (None, ticks.at(j), last, Window::new(ticks.at(kd), last))
                }
            };
            if before < e.depart
                || ms(before) < ticks.at_ms(0)
                || ms(after) - ms(before) > CROSSING_MAX_GAP_S * 1000 - 2000
            {
                continue;
            }
            let episode = Window::new(e.depart, add_ms(e.arrive, i + lag));
            if !pass_fixes_clear(ctx, &ticks, &person, school, q, episode) {
                continue;
            }
            let mut p = placed(
                ctx,
                input,
                person,
                Scenario::PassThroughSchoolZone {
                    zone_id: Uuid::nil(),
                    window,
                },
            );
            p.barred = true;
            p.device.quiet = q.into_iter().collect();
            p.scenario.zone = Some(ZoneRef::School(s));
            p.scenario.episode = Some(episode);
            if let Some(x) = accept(p) {
                return Some(x);
            }
        }
    }
    None
}

/// `input`'s person driving from the plan straight through `school` (within 5 m of its centre)
/// at about `t_p`, to the point `beyond` metres further on, staying there past `end`.
fn drive_through(
    input: &Input,
    school: LatLon,
    beyond: f64,
    t_p: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Option<(Person, Excursion, LatLon)> {
    let v = TravelMode::Driving.speed_mps();
    let mut aim = input.person.position_at(t_p).point();
    for _ in 0..4 {
        let (n, e) = geo::displacement_m(aim, school);
        let len = n.hypot(e);
        if len < 300.0 {
            return None;
        }
        let to = geo::offset(school.0, school.1, beyond * n / len, beyond * e / len);
        let stay = Override::Stay {
            at: to,
            from: add_secs_ceil(t_p, beyond / v),
            until: end + Duration::hours(1),
        };
        let (person, x) = with(&input.person, stay)?;
        if geo::distance_to_segment_m(school, x.depart_from, to) <= 5.0 {
            return Some((person, x, to));
        }
        aim = x.depart_from;
    }
    None
}

/// Every fix the tag may send during `episode` (at any build time a tick allows, outside the
/// quiet window) is at least `PASS_CLEAR_M` beyond the school's border.
fn pass_fixes_clear(
    ctx: &Ctx,
    ticks: &Ticks,
    person: &Person,
    school: LatLon,
    quiet: Option<Window>,
    episode: Window,
) -> bool {
    let lag = ctx.lag_ms;
    let Some(k0) = ticks.first_at_or_after(add_ms(episode.from, -lag)) else {
        return true;
    };
    let mut k = k0;
    while ticks.exists(k).is_some() && ticks.at(k) <= episode.to {
        for off in [0, lag / 2, lag] {
            let t = add_ms(ticks.at(k), off);
            if quiet.is_some_and(|w| w.contains(t)) {
                continue;
            }
            let d = geo::distance_m(person.position_at(t).point(), school);
            if d < SCHOOL_RADIUS_M + PASS_CLEAR_M {
                return false;
            }
        }
        k += 1;
    }
    true
}
