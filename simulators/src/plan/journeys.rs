//! Scenarios that are journeys: into the victim's home (live, or offline and uploaded late),
//! out of the county (without or with approved leave), away from home when a curfew opens, and
//! lingering on the victim's home's border.
//!
//! Invariants: every journey is one excursion of the movement model (straight legs at the
//! driving speed), so a border is crossed monotonically and at most once each way; each
//! expectation window is computed from the excursion actually added (see `scenarios`).

use chrono::{DateTime, Duration, Utc};
use rand::{rngs::StdRng, Rng};
use uuid::Uuid;

use super::clock::{add_ms, add_secs_ceil, ceil_minute, ms, window_schedule};
use super::pace;
use super::people::{Ctx, Input, Placed};
use super::scenarios::{crossing_window, first_when, ms_of, placed, stride, with};
use super::{LeaveSpec, ZoneRef, GPS_ACC_MAX_M, JURISDICTION_RADIUS_M, VICTIM_RADIUS_M};
use crate::geo::{self, LatLon};
use crate::ledger::{Scenario, Window};
use crate::movement::{Override, Person, TravelMode};

/// Enters the victim's home (stay at its centre); with `offline`, inside an offline window so
/// the deciding fix arrives late.
pub(super) fn enter<T>(
    ctx: &Ctx,
    input: &Input,
    fractions: &[f64],
    offline: bool,
    accept: &mut dyn FnMut(Placed) -> Option<T>,
) -> Option<T> {
    let centre = input.victim?;
    let r = VICTIM_RADIUS_M;
    let ticks = ctx.ticks(input.index);
    let (i, lag) = (ctx.interval_ms, ctx.lag_ms);
    // At the centre until the last confirming report is built (see `crossing_window`).
    let dwell = ((ctx.confirm - 1) * stride(ctx) + 3) as i64 * i + lag;
    for &f in fractions {
        let t_e = ctx.at_fraction(f);
        let stay = Override::Stay {
            at: centre,
            from: t_e,
            until: add_ms(t_e, dwell),
        };
        let Some((person, e)) = with(&input.person, stay) else {
            continue;
        };
        let inside = |t| r - geo::distance_m(person.position_at(t).point(), centre);
        if inside(e.depart) > -1.0 {
            continue;
        }
        let Some((t_in, from, to)) = crossing_window(ctx, &ticks, e.depart, e.arrive, &inside)
        else {
            continue;
        };
        // Still at the centre until the last confirming report is built; confidently outside
        // (50 m) at the first fix.
        if to > e.leave || inside(add_ms(ticks.at(0), lag)) > -50.0 {
            continue;
        }
        let window = Window::new(from, to);
        let mut p = placed(ctx, input, person.clone(), Scenario::Compliant);
        p.scenario.zone = Some(ZoneRef::Victim(input.index));
        p.scenario.episode = Some(Window::new(e.depart, e.rejoin));
        if offline {
            let Some(exit) = first_when(e.leave, e.rejoin, |t| inside(t) < 0.0) else {
                continue;
            };
            // Offline from before the entry; back online once out again and long enough after
            // the deciding fix that it is late.
            let a = add_ms(t_in, -i.max(1000));
            let late = ms_of(ctx.s.late_after);
            let b = add_ms(to, late + 2 * i).max(add_ms(exit, i));
            if ms(a) <= ticks.at_ms(0) + lag || ticks.first_after(b).is_none() {
                continue;
            }
            let gap_s = (ms(b) - ms(a) + 2 * i + 2 * lag + 60_000 + 999) / 1000;
            p.lost_contact_after_s = ctx
                .s
                .lost_contact_after_s
                .max(u32::try_from(gap_s).unwrap_or(u32::MAX));
            p.device.offline = Some(Window::new(a, b));
            p.scenario.scenario = Scenario::OfflineThenBufferedUpload {
                zone_id: Uuid::nil(),
                window,
            };
        } else {
            p.scenario.scenario = Scenario::EnterExclusionZone {
                zone_id: Uuid::nil(),
                window,
            };
        }
        if let Some(x) = accept(p) {
            return Some(x);
        }
    }
    None
}

/// The point `beyond_m` outside the jurisdiction's circle, radially beyond home.
fn outward(ctx: &Ctx, home: LatLon, beyond_m: f64, rng: &mut StdRng) -> LatLon {
    let c = ctx.s.area.centre;
    let (n, e) = geo::displacement_m(c, home);
    let len = n.hypot(e);
    let (un, ue) = if len > 1.0 {
        (n / len, e / len)
    } else {
        let a = rng.gen_range(0.0..std::f64::consts::TAU);
        (a.cos(), a.sin())
    };
    let r = JURISDICTION_RADIUS_M + beyond_m;
    geo::offset(c.0, c.1, r * un, r * ue)
}

/// Drives out of the county (1 km beyond, or 3 km on approved leave) crossing the border around
/// the chosen moment, and stays out past the end.
pub(super) fn leave_county<T>(
    ctx: &Ctx,
    input: &Input,
    fractions: &[f64],
    approved: bool,
    rng: &mut StdRng,
    accept: &mut dyn FnMut(Placed) -> Option<T>,
) -> Option<T> {
    let beyond = if approved { 3000.0 } else { 1000.0 };
    let to_point = outward(ctx, input.person.home(), beyond, rng);
    let ticks = ctx.ticks(input.index);
    let lag = ctx.lag_ms;
    let v = TravelMode::Driving.speed_mps();
    let until = ctx.end + Duration::hours(1);
    for &f in fractions {
        let from = add_secs_ceil(ctx.at_fraction(f), beyond / v);
        let stay = Override::Stay {
            at: to_point,
            from,
            until,
        };
        let Some((person, e)) = with(&input.person, stay) else {
            continue;
        };
        let out = |t| {
            ctx.jurisdiction
                .signed_distance(person.position_at(t).point())
        };
        if out(e.depart) > -1.0 || out(add_ms(ticks.at(0), lag)) > -50.0 {
            continue;
        }
        let mut p = placed(ctx, input, person.clone(), Scenario::Compliant);
        if approved {
            let Some(t_out) = first_when(e.depart, e.arrive, |t| out(t) > 0.0) else {
                continue;
            };
            if t_out < ticks.at(0) || t_out >= ctx.end {
                continue;
            }
            let starts_at = ctx.start - Duration::minutes(10);
            let ends_at = ctx.end + Duration::minutes(10);
            p.leave = Some(LeaveSpec {
                starts_at,
                ends_at,
                destination: Some(destination(&person, starts_at, ends_at)),
                reason: "Family visit (simulated approved leave)".into(),
            });
            p.scenario.scenario = Scenario::ApprovedLeave {
                destination_zone_id: None,
                window: Window::new(starts_at, ends_at),
            };
        } else {
            let Some((_, from, to)) = crossing_window(ctx, &ticks, e.depart, e.arrive, &out) else {
                continue;
            };
            p.scenario.zone = Some(ZoneRef::Jurisdiction);
            p.scenario.episode = Some(Window::new(e.depart, e.rejoin));
            p.scenario.scenario = Scenario::LeaveJurisdiction {
                zone_id: Uuid::nil(),
                window: Window::new(from, to),
            };
        }
        if let Some(x) = accept(p) {
            return Some(x);
        }
    }
    None
}

/// A circle holding `person`'s whole track during `[from, to]` with at least 2 km to spare.
fn destination(person: &Person, from: DateTime<Utc>, to: DateTime<Utc>) -> serde_json::Value {
    let mut pts: Vec<LatLon> = Vec::new();
    let mut t = from;
    while t <= to {
        pts.push(person.position_at(t).point());
        t += Duration::seconds(5);
    }
    pts.push(person.position_at(to).point());
    for e in person.excursions() {
        for (at, p) in [
            (e.depart, e.depart_from),
            (e.arrive, e.arrive_at),
            (e.leave, e.leave_from),
            (e.rejoin, e.rejoin_at),
        ] {
            if from <= at && at <= to {
                pts.push(p);
            }
        }
    }
    let origin = pts[0];
    let d: Vec<(f64, f64)> = pts
        .iter()
        .map(|p| geo::displacement_m(origin, *p))
        .collect();
    let (mut n0, mut n1, mut e0, mut e1) = (0.0f64, 0.0f64, 0.0f64, 0.0f64);
    for (n, e) in &d {
        (n0, n1, e0, e1) = (n0.min(*n), n1.max(*n), e0.min(*e), e1.max(*e));
    }
    let centre = geo::offset(origin.0, origin.1, 0.5 * (n0 + n1), 0.5 * (e0 + e1));
    let reach = pts
        .iter()
        .map(|p| geo::distance_m(centre, *p))
        .fold(0.0, f64::max);
    // Samples are 5 s apart: the track between two strays at most ~28 m from them.
    let radius = ((reach + 2100.0) / 10.0).ceil() * 10.0;
    geo::circle_zone(centre, radius)
}

/// Away from home (700 m) when a one-hour curfew window opens shortly after the start (or, with
/// spread scenarios, at the person's own moment: `pace`), until after it closes (a window
/// closing on an open violation clears it and raises nothing).
pub(super) fn curfew<T>(
    ctx: &Ctx,
    input: &Input,
    rng: &mut StdRng,
    accept: &mut dyn FnMut(Placed) -> Option<T>,
) -> Option<T> {
    let earliest = ceil_minute(add_ms(ctx.start, (3 * ctx.interval_ms).max(10_000)));
    pace::curfew_opens(ctx, input.index, earliest)
        .into_iter()
        .find_map(|open| curfew_at(ctx, input, open, rng, accept))
}

/// The curfew breaker with their window opening at `open` (a whole minute).
fn curfew_at<T>(
    ctx: &Ctx,
    input: &Input,
    open: DateTime<Utc>,
    rng: &mut StdRng,
    accept: &mut dyn FnMut(Placed) -> Option<T>,
) -> Option<T> {
    let ticks = ctx.ticks(input.index);
    let (i, lag) = (ctx.interval_ms, ctx.lag_ms);
    let k0 = ticks.first_at_or_after(open)?;
    let kc = ticks.exists(k0 + (ctx.confirm - 1) * stride(ctx))?;
    let window = Window::new(open, add_ms(ticks.at(kc), lag));
    let close = open + Duration::hours(1);
    let home = input.person.home();
    for _ in 0..8 {
        let a = rng.gen_range(0.0..std::f64::consts::TAU);
        let at = geo::offset(home.0, home.1, 700.0 * a.cos(), 700.0 * a.sin());
        let stay = Override::Stay {
            at,
            from: ctx.start - Duration::minutes(1),
            until: add_ms(close, (2 * 60_000).max(i + lag + 2000)),
        };
        let Some((person, e)) = with(&input.person, stay) else {
            continue;
        };
        let mut p = placed(
            ctx,
            input,
            person,
            Scenario::BreakCurfew {
                zone_id: Uuid::nil(),
                window,
            },
        );
        p.scenario.zone = Some(ZoneRef::Home(input.index));
        p.scenario.episode = Some(Window::new(e.depart, e.rejoin));
        p.home_schedule = Some(window_schedule(
            ctx.clock.geoward_offset_h,
            open,
            Duration::hours(1),
        ));
        if let Some(x) = accept(p) {
            return Some(x);
        }
    }
    None
}

/// How long the border-jitter stay lasts: at least 5 intervals, short enough that the whole
/// run of uncertain fixes (the stay, the last 25 m of the approach and the first of the way
/// back, a tick's rounding and the lag) stays under `no_location_after`. `None` if impossible.
pub(super) fn border_stay_ms(ctx: &Ctx) -> Option<i64> {
    let (i, lag) = (ctx.interval_ms, ctx.lag_ms);
    let v = TravelMode::Driving.speed_mps();
    let near_ms = ((1.6 * GPS_ACC_MAX_M + 1.0) / v * 1000.0).ceil() as i64 + lag;
    let guard = 2 * near_ms + i + lag + 5000;
    let no_loc = ms_of(ctx.s.no_location_after);
    let max = no_loc - guard;
    let want = (no_loc / 2).min(ms_of(ctx.s.duration) * 3 / 10).max(5 * i);
    (5 * i <= max).then_some(want.min(max))
}

/// Lingers exactly on the victim's home's border, reached and left from outside.
pub(super) fn border<T>(
    ctx: &Ctx,
    input: &Input,
    fractions: &[f64],
    accept: &mut dyn FnMut(Placed) -> Option<T>,
) -> Option<T> {
    let centre = input.victim?;
    let stay_ms = border_stay_ms(ctx)?;
    let r = VICTIM_RADIUS_M;
    let on_border = |aim: LatLon| {
        let (n, e) = geo::displacement_m(centre, aim);
        let len = n.hypot(e).max(1e-9);
        geo::offset(centre.0, centre.1, r * n / len, r * e / len)
    };
    for &f in fractions {
        let t_b = ctx.at_fraction(f);
        let mut aim = input.person.position_at(t_b).point();
        let mut found = None;
        for _ in 0..3 {
            let b = on_border(aim);
            let stay = Override::Stay {
                at: b,
                from: t_b,
                until: add_ms(t_b, stay_ms),
            };
            let Some((person, e)) = with(&input.person, stay) else {
                break;
            };
            if geo::distance_to_segment_m(centre, e.depart_from, b) >= r - 1.0 {
                found = Some((person, e, b));
                break;
            }
            aim = e.depart_from;
        }
        let Some((person, e, b)) = found else {
            continue;
        };
        if geo::distance_to_segment_m(centre, b, e.rejoin_at) < r - 1.0
            || e.arrive < ctx.start
            || e.leave > ctx.end
        {
            continue;
        }
        let mut p = placed(
            ctx,
            input,
            person,
            Scenario::BorderJitter {
                zone_id: Uuid::nil(),
                window: Window::new(e.arrive, e.leave),
            },
        );
        p.scenario.zone = Some(ZoneRef::Victim(input.index));
        p.scenario.episode = Some(Window::new(e.depart, e.rejoin));
        if let Some(x) = accept(p) {
            return Some(x);
        }
    }
    None
}
