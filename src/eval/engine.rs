//! The entry points: [`evaluate`] one report, and [`evaluate_tick`] for the few rules that
//! time alone can decide.
//!
//! Role: order and lateness, monitoring orders, device conditions (strap, battery), location
//! jumps; zone rules are delegated to `step`.
//!
//! Invariants:
//! - pure and deterministic: time is an argument, nothing is read from a clock or the outside;
//! - a report not newer than the newest evaluated one (by `(ts, seq)`) changes no state; the
//!   only thing it can emit is a `strap_tamper` started/cleared pair marked late, so a tamper
//!   inside a gap is never lost;
//! - outside every monitoring order nothing is evaluated and every open condition is cleared;
//! - a jumping fix changes no zone state and does not count for `no_location`.

use chrono::{DateTime, Utc};

use super::metric::distance_m;
use super::step::{drop_entry, in_force, step, violation_kind, Decider};
use super::types::{
    EvalState, EventKind, Input, KnownFix, Outcome, RuleEvent, Rules, Settings, Transition,
    ZoneState,
};
use super::zone::{Class, PreparedZone, ZoneKind};
use crate::wire::Strap;

/// Evaluates one report received at `received_at` against `rules`, from `state`.
pub fn evaluate(
    rules: &Rules,
    state: &EvalState,
    input: &Input,
    received_at: DateTime<Utc>,
) -> Outcome {
    let mut st = state.clone();
    let mut ev = Vec::new();
    let (seq, ts) = (input.seq(), input.ts());
    let late = received_at - ts > rules.settings.late_after;
    let fix = match *input {
        Input::Fix {
            lat, lon, acc_m, ..
        } if lat.is_finite() && lon.is_finite() && lat.abs() <= 90.0 && lon.abs() <= 180.0 => {
            Some(KnownFix {
                seq,
                ts,
                lat,
                lon,
                acc: if acc_m >= 0.0 { acc_m as f32 } else { f32::NAN },
            })
        }
        _ => None,
    };
    let d = Decider {
        seq: Some(seq),
        at: ts,
        position: fix.map(|f| f.position()),
        late,
    };
    if st
        .newest
        .is_some_and(|(nseq, nts)| (ts, seq) <= (nts, nseq))
    {
        if input.device().1 == Some(Strap::Open) && !st.strap_open && st.newest != Some((seq, ts)) {
            let d = Decider { late: true, ..d };
            ev.push(d.event(EventKind::StrapTamper, Transition::Started, None));
            ev.push(d.event(EventKind::StrapTamper, Transition::Cleared, None));
        }
        return Outcome {
            state: st,
            events: ev,
        };
    }
    st.newest = Some((seq, ts));
    if !rules.orders.iter().any(|o| o.contains(ts)) {
        close_all(&mut st, &d, &mut ev);
        return Outcome {
            state: st,
            events: ev,
        };
    }
    device(rules.settings, &mut st, input, &d, &mut ev);
    if let Some(fix) = fix {
        if is_jump(rules.settings, &st, &fix) {
            ev.push(d.event(EventKind::LocationJump, Transition::Started, None));
            st.jumped = Some(fix);
        } else {
            step(rules, &mut st, &fix, late, &mut ev);
            st.last = Some(fix);
            st.jumped = None;
        }
    }
    Outcome {
        state: st,
        events: ev,
    }
}

/// Clears every open condition (the order ended) and forgets all but the newest report.
fn close_all(st: &mut EvalState, d: &Decider, ev: &mut Vec<RuleEvent>) {
    let ids: Vec<_> = st.zones.iter().map(|e| e.id).collect();
    for id in ids {
        drop_entry(st, id, d, ev);
    }
    for (open, kind) in [
        (st.no_location, EventKind::NoLocation),
        (st.strap_open, EventKind::StrapTamper),
        (st.low_battery, EventKind::LowBattery),
    ] {
        if open {
            ev.push(d.event(kind, Transition::Cleared, None));
        }
    }
    *st = EvalState {
        newest: st.newest,
        ..EvalState::default()
    };
}

/// Strap and battery conditions.
fn device(s: &Settings, st: &mut EvalState, input: &Input, d: &Decider, ev: &mut Vec<RuleEvent>) {
    let (bat, strap) = input.device();
    match strap {
        Some(Strap::Open) if !st.strap_open => {
            st.strap_open = true;
            ev.push(d.event(EventKind::StrapTamper, Transition::Started, None));
        }
        Some(Strap::Closed) if st.strap_open => {
            st.strap_open = false;
            ev.push(d.event(EventKind::StrapTamper, Transition::Cleared, None));
        }
        _ => {}
    }
    if let Some(b) = bat {
        let clear_at = u16::from(s.low_battery_pct) + u16::from(s.battery_hysteresis_pct);
        if !st.low_battery && b < s.low_battery_pct {
            st.low_battery = true;
            ev.push(d.event(EventKind::LowBattery, Transition::Started, None));
        } else if st.low_battery && u16::from(b) >= clear_at {
            st.low_battery = false;
            ev.push(d.event(EventKind::LowBattery, Transition::Cleared, None));
        }
    }
}

/// Whether going from `a` to `b` needs more than the maximum speed, beyond both accuracies.
fn implies_jump(s: &Settings, a: &KnownFix, b: &KnownFix) -> bool {
    let slack = f64::from(a.acc) + f64::from(b.acc);
    let d = distance_m((a.lon, a.lat), (b.lon, b.lat)) - slack;
    if d.is_nan() || d <= 0.0 {
        return false;
    }
    let dt = (b.ts - a.ts).num_milliseconds() as f64 / 1000.0;
    dt <= 0.0 || d / dt * 3.6 > s.max_speed_kmh
}

/// A jump from the last accepted fix, unless the fix agrees with an earlier rejected one
/// (then that rejected fix was right and the old reference was the outlier).
fn is_jump(s: &Settings, st: &EvalState, fix: &KnownFix) -> bool {
    let Some(last) = st.last.filter(|l| l.ts <= fix.ts) else {
        return false;
    };
    implies_jump(s, &last, fix) && st.jumped.map_or(true, |j| implies_jump(s, &j, fix))
}

/// Time-only rules at `now`, with no report: clears violations of zones no longer in force
/// (and everything when no order covers `now`), and raises a curfew violation from the last
/// known position when a window opened with it outside and no fix arrived for
/// `curfew_tick_after` since.
pub fn evaluate_tick(rules: &Rules, state: &EvalState, now: DateTime<Utc>) -> Outcome {
    let mut st = state.clone();
    let mut ev = Vec::new();
    let d = Decider {
        seq: None,
        at: now,
        position: None,
        late: false,
    };
    if !rules.orders.iter().any(|o| o.contains(now)) {
        if st != EvalState::default() {
            close_all(&mut st, &d, &mut ev);
        }
        return Outcome {
            state: st,
            events: ev,
        };
    }
    let leave = rules.leaves.iter().find(|l| l.period.contains(now));
    let shared = rules.shared.map_or(&[][..], |l| l.zones());
    let dest = leave.and_then(|l| l.destination.as_ref());
    let find = |id| -> Option<(&PreparedZone, bool)> {
        (rules.zones.iter().chain(shared))
            .find(|z| z.id() == id)
            .map(|z| (&**z, false))
            .or_else(|| dest.filter(|z| z.id() == id).map(|z| (&**z, true)))
    };
    let entries: Vec<ZoneState> = st.zones.clone();
    for e in entries {
        let keep = find(e.id).is_some_and(|(z, is_dest)| {
            in_force(rules, z, is_dest, leave, now)
                && (violation_kind(z, is_dest) != EventKind::CurfewViolation
                    || z.schedule().last_opening_at_or_before(now, rules.timezone) == e.window)
        });
        if !keep {
            drop_entry(&mut st, e.id, &d, &mut ev);
        }
    }
    let Some(last) = st.last.filter(|l| l.ts <= now) else {
        return Outcome {
            state: st,
            events: ev,
        };
    };
    let curfews = rules.zones.iter().chain(shared).filter(|z| {
        z.kind() == ZoneKind::Inclusion && !z.schedule().is_always() && leave.is_none()
    });
    for z in curfews {
        let Some(o) = z.schedule().last_opening_at_or_before(now, rules.timezone) else {
            continue;
        };
        let s = rules.settings;
        let due =
            last.ts < o && o - last.ts <= s.no_location_after && now - o >= s.curfew_tick_after;
        if !due || st.zones.iter().any(|e| e.id == z.id()) {
            continue;
        }
        if z.class_of(last.lat, last.lon, f64::from(last.acc)) == Class::Outside {
            st.zones.push(ZoneState {
                id: z.id(),
                violating: true,
                streak: 0,
                kind: EventKind::CurfewViolation,
                window: Some(o),
            });
            let d = Decider {
                at: o,
                ..Decider::of(&last, false)
            };
            ev.push(d.event(
                EventKind::CurfewViolation,
                Transition::Started,
                Some(z.id()),
            ));
        }
    }
    Outcome {
        state: st,
        events: ev,
    }
}
