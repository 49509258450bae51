//! Which scenario a supervisee carries, whether it fits the run, and the device-side ones
//! (silence, strap, battery, an outlier fix); the movement ones live in `journeys` and `pass`.
//!
//! Each placer tries candidate moments (a fraction of the run, first one drawn in 0.3–0.5, then
//! a fixed list) and hands every sound candidate to the caller's `accept`, which adds the
//! victim's home, assembles the person and runs the plan's validation; the first accepted
//! candidate wins. A scenario that does not [`fits`] the run's thresholds is not tried.
//!
//! Timing invariants (see `docs/rules.md`; `t_k` is a tick of [`Ticks`], `lag` the tolerated
//! lateness: a report of tick `k` is built, stamped and positioned at some `b_k ∈ [t_k,
//! t_k + lag]` and received by `b_k + 1 s`):
//! - the device loop processes every tick within `lag` of it, but when an interval or more
//!   behind it skips missed ticks and builds only the latest due one (`device.rs`); so a new
//!   report is surely built every [`stride`] = `floor(lag / interval) + 1` ticks;
//! - zone entries and exits are monotone (a straight drive to a point, then a stay), so the
//!   `c`-th confident fix (`c = confirm_fixes`) lies between the first instant the true position
//!   is across the border (and the `c`-th tick from there) and `(c - 1)` strides after the first
//!   tick at which it is at least 30 m across (twice the GPS accuracy, fix error <= 0.6 ×
//!   accuracy), plus `lag`;
//! - device events (strap, battery, jump, silence) are set at a tick time `t` late enough that an
//!   earlier report exists, so the first build at or after it is in `[t, t + lag]`;
//! - movement scenarios are driven (40 km/h) and have no cell fixes.

use chrono::Duration;
use rand::{rngs::StdRng, Rng};
use serde::{Deserialize, Serialize};

use super::clock::{add_ms, ms, Ticks};
use super::people::{Ctx, Input, Placed};
use super::{journeys, pace, pass};
use super::{PlannedScenario, GPS_ACC_MAX_M, NETWORK_S, SWEEP_S};
use crate::ledger::{Scenario, Window};
use crate::movement::{Excursion, Override, Person};
use chrono::{DateTime, Utc};

/// How far across a border the true position must be for every honest GPS fix to be confident.
pub(crate) const DEEP_M: f64 = 2.0 * GPS_ACC_MAX_M;

/// A supervisee's scenario kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Compliant,
    EnterExclusionZone,
    LeaveJurisdiction,
    BreakCurfew,
    PassThroughSchoolZone,
    GoSilent,
    StrapTamper,
    LowBattery,
    LocationJump,
    OfflineThenBufferedUpload,
    ApprovedLeave,
    BorderJitter,
}

impl Kind {
    /// The kinds besides `Compliant`, in the order they are dealt.
    pub const SCENARIOS: [Kind; 11] = [
        Kind::EnterExclusionZone,
        Kind::LeaveJurisdiction,
        Kind::BreakCurfew,
        Kind::PassThroughSchoolZone,
        Kind::GoSilent,
        Kind::StrapTamper,
        Kind::LowBattery,
        Kind::LocationJump,
        Kind::OfflineThenBufferedUpload,
        Kind::ApprovedLeave,
        Kind::BorderJitter,
    ];

    /// The ledger's name ([`Scenario::name`]).
    pub fn name(self) -> &'static str {
        match self {
            Kind::Compliant => "compliant",
            Kind::EnterExclusionZone => "enter_exclusion_zone",
            Kind::LeaveJurisdiction => "leave_jurisdiction",
            Kind::BreakCurfew => "break_curfew",
            Kind::PassThroughSchoolZone => "pass_through_school_zone",
            Kind::GoSilent => "go_silent",
            Kind::StrapTamper => "strap_tamper",
            Kind::LowBattery => "low_battery",
            Kind::LocationJump => "location_jump",
            Kind::OfflineThenBufferedUpload => "offline_then_buffered_upload",
            Kind::ApprovedLeave => "approved_leave",
            Kind::BorderJitter => "border_jitter",
        }
    }

    pub fn of(s: &Scenario) -> Kind {
        match s {
            Scenario::Compliant => Kind::Compliant,
            Scenario::EnterExclusionZone { .. } => Kind::EnterExclusionZone,
            Scenario::LeaveJurisdiction { .. } => Kind::LeaveJurisdiction,
            Scenario::BreakCurfew { .. } => Kind::BreakCurfew,
            Scenario::PassThroughSchoolZone { .. } => Kind::PassThroughSchoolZone,
            Scenario::GoSilent { .. } => Kind::GoSilent,
            Scenario::StrapTamper { .. } => Kind::StrapTamper,
            Scenario::LowBattery { .. } => Kind::LowBattery,
            Scenario::LocationJump { .. } => Kind::LocationJump,
            Scenario::OfflineThenBufferedUpload { .. } => Kind::OfflineThenBufferedUpload,
            Scenario::ApprovedLeave { .. } => Kind::ApprovedLeave,
            Scenario::BorderJitter { .. } => Kind::BorderJitter,
        }
    }

    /// Whether the person's movement is part of the scenario (then they drive, without cell
    /// fixes).
    pub fn moves(self) -> bool {
        !matches!(
            self,
            Kind::Compliant
                | Kind::GoSilent
                | Kind::StrapTamper
                | Kind::LowBattery
                | Kind::LocationJump
        )
    }

    /// Whether the scenario goes to the victim's home, which is then placed first.
    pub(crate) fn victim_first(self) -> bool {
        matches!(
            self,
            Kind::EnterExclusionZone | Kind::OfflineThenBufferedUpload | Kind::BorderJitter
        )
    }
}

/// Whether `kind` can happen at all with this run's thresholds (placement may still fail).
pub(crate) fn fits(ctx: &Ctx, kind: Kind) -> bool {
    let (i, lag) = (ctx.interval_ms, ctx.lag_ms);
    match kind {
        Kind::Compliant => true,
        Kind::PassThroughSchoolZone => !ctx.schools.is_empty() && pass::quiet(ctx).is_some(),
        Kind::GoSilent => {
            i64::from(ctx.s.silent_lost_contact_after_s) * 1000 + ms_of(ctx.s.lost_contact_grace)
                > i + lag + (NETWORK_S + 1) * 1000
        }
        Kind::LowBattery => ctx.s.low_battery_pct >= 1,
        Kind::LocationJump => {
            // The outlier must imply more than 300 km/h (with a fifth to spare) from any fix.
            let d = crate::script::JUMP_OFFSET_M - 2.0 * super::CELL_ACC_MAX_M;
            d / ((i + lag + NETWORK_S * 1000) as f64 / 1000.0) > 1.2 * 300.0 / 3.6
        }
        Kind::BorderJitter => journeys::border_stay_ms(ctx).is_some(),
        _ => true,
    }
}

pub(super) fn ms_of(d: Duration) -> i64 {
    d.num_milliseconds()
}

/// Places `kind` on `input`, handing each sound candidate to `accept`.
pub(crate) fn place<T>(
    ctx: &Ctx,
    kind: Kind,
    input: &Input,
    rng: &mut StdRng,
    accept: &mut dyn FnMut(Placed) -> Option<T>,
) -> Option<T> {
    let fractions = pace::fractions(ctx, input.index, rng);
    match kind {
        Kind::Compliant => None,
        Kind::EnterExclusionZone => journeys::enter(ctx, input, &fractions, false, accept),
        Kind::OfflineThenBufferedUpload => journeys::enter(ctx, input, &fractions, true, accept),
        Kind::LeaveJurisdiction => {
            journeys::leave_county(ctx, input, &fractions, false, rng, accept)
        }
        Kind::ApprovedLeave => journeys::leave_county(ctx, input, &fractions, true, rng, accept),
        Kind::BreakCurfew => journeys::curfew(ctx, input, rng, accept),
        Kind::PassThroughSchoolZone => pass::pass(ctx, input, &fractions, accept),
        Kind::BorderJitter => journeys::border(ctx, input, &fractions, accept),
        Kind::GoSilent => silent(ctx, input, &fractions, accept),
        Kind::StrapTamper | Kind::LowBattery | Kind::LocationJump => {
            device_event(ctx, kind, input, &fractions, accept)
        }
    }
}

/// Candidate moments, as fractions of the run: one drawn in 0.3–0.5, then a fixed list (the
/// default pace; see `pace` for spread scenarios).
pub(super) fn fractions(rng: &mut StdRng) -> Vec<f64> {
    let mut f = vec![rng.gen_range(0.3..0.5)];
    f.extend([
        0.3, 0.4, 0.5, 0.25, 0.55, 0.2, 0.6, 0.15, 0.65, 0.1, 0.7, 0.05, 0.75, 0.8, 0.02,
    ]);
    f
}

pub(super) fn placed(ctx: &Ctx, input: &Input, person: Person, scenario: Scenario) -> Placed {
    Placed {
        person,
        device: input.device.clone(),
        scenario: PlannedScenario {
            scenario,
            zone: None,
            episode: None,
        },
        lost_contact_after_s: ctx.s.lost_contact_after_s,
        home_schedule: None,
        leave: None,
        barred: false,
    }
}

/// `base` with `o` added, and the excursion it made.
pub(super) fn with(base: &Person, o: Override) -> Option<(Person, Excursion)> {
    let mut p = base.clone();
    let e = p.add(o).ok()?;
    Some((p, e))
}

/// The first millisecond in `[lo, hi]` at which the monotone `holds` is true (`None` if it is
/// false at `hi`).
pub(super) fn first_when(
    lo: DateTime<Utc>,
    hi: DateTime<Utc>,
    holds: impl Fn(DateTime<Utc>) -> bool,
) -> Option<DateTime<Utc>> {
    if hi < lo || !holds(hi) {
        return None;
    }
    if holds(lo) {
        return Some(lo);
    }
    let (mut a, mut b) = (ms(lo), ms(hi));
    while b - a > 1 {
        let m = a + (b - a) / 2;
        if holds(super::clock::from_ms(m)) {
            b = m;
        } else {
            a = m;
        }
    }
    Some(super::clock::from_ms(b))
}

/// The window of a confirmed crossing: `outside(t)` is how far the true position is on the
/// violating side at `t` (increasing on `[from, to]`), crossing 0 at some instant `t0`.
/// Returns `(t0, from, to)` of the expectation, or `None` if the alert cannot be decided
/// before the run ends.
pub(super) fn crossing_window(
    ctx: &Ctx,
    ticks: &Ticks,
    lo: DateTime<Utc>,
    hi: DateTime<Utc>,
    depth: &dyn Fn(DateTime<Utc>) -> f64,
) -> Option<(DateTime<Utc>, DateTime<Utc>, DateTime<Utc>)> {
    let c = ctx.confirm;
    let t0 = first_when(lo, hi, |t| depth(t) > 0.0)?;
    let deep = first_when(lo, hi, |t| depth(t) >= DEEP_M)?;
    // The first confident fix is built after t0, at a tick k with t_k + lag >= t0; the c-th is
    // c - 1 ticks later at least. From the first tick at which the position is deep across,
    // every `stride` ticks bring one more report built by that tick + lag.
    let j1 = ticks.first_at_or_after(add_ms(t0, -ctx.lag_ms))?;
    let from = t0.max(ticks.at(ticks.exists(j1 + c - 1)?));
    let ja = ticks.first_at_or_after(deep)?;
    let last = ticks.exists(ja + (c - 1) * stride(ctx))?;
    let to = add_ms(ticks.at(last), ctx.lag_ms);
    Some((t0, from, to))
}

/// Ticks between two reports that are surely distinct: the device loop processes every tick
/// within `lag` of it, but when it is an interval or more behind it skips the missed ticks and
/// builds only the latest due one; so within `floor(lag / interval) + 1` ticks a new report is
/// built.
pub(super) fn stride(ctx: &Ctx) -> u64 {
    (ctx.lag_ms / ctx.interval_ms) as u64 + 1
}

/// The first tick usable for a device event: late enough that an earlier report has surely
/// been built before it (`floor(lag / interval) + 1`).
fn first_event_tick(ctx: &Ctx) -> u64 {
    (ctx.lag_ms / ctx.interval_ms) as u64 + 1
}

/// Stops reporting at a tick; lost contact is the last report's receipt plus the allowed
/// silence.
fn silent<T>(
    ctx: &Ctx,
    input: &Input,
    fractions: &[f64],
    accept: &mut dyn FnMut(Placed) -> Option<T>,
) -> Option<T> {
    let ticks = ctx.ticks(input.index);
    let (i, lag) = (ctx.interval_ms, ctx.lag_ms);
    let after = i64::from(ctx.s.silent_lost_contact_after_s) * 1000;
    let grace = ms_of(ctx.s.lost_contact_grace);
    let kmin = first_event_tick(ctx);
    // Preferably decided before the others' last reports have settled; else by the cap.
    for settle in [ms(ctx.end) + lag + 2000, ms(ctx.settle_cap)] {
        for &f in fractions {
            let Some(k) = ticks.first_at_or_after(ctx.at_fraction(f)) else {
                continue;
            };
            let Some(k) = ticks.exists(k.max(kmin)) else {
                continue;
            };
            let t_s = ticks.at(k);
            // The last report is from the last tick built before t_s: between
            // t_s - interval - floor(lag / interval) × interval and t_s - interval.
            let earliest = -i - (lag / i) * i;
            let from = add_ms(t_s, earliest + after);
            let to = add_ms(t_s, -i + lag + NETWORK_S * 1000 + after);
            if ms(to) + grace + SWEEP_S * 1000 > settle {
                continue;
            }
            let mut p = placed(
                ctx,
                input,
                input.person.clone(),
                Scenario::GoSilent {
                    window: Window::new(from, to),
                },
            );
            p.device.silent_from = Some(t_s);
            p.lost_contact_after_s = ctx.s.silent_lost_contact_after_s;
            if let Some(x) = accept(p) {
                return Some(x);
            }
        }
    }
    None
}

/// Strap opened, battery drop or an outlier fix at a tick: the first report built at or after
/// it carries it.
fn device_event<T>(
    ctx: &Ctx,
    kind: Kind,
    input: &Input,
    fractions: &[f64],
    accept: &mut dyn FnMut(Placed) -> Option<T>,
) -> Option<T> {
    let ticks = ctx.ticks(input.index);
    let kmin = first_event_tick(ctx);
    for &f in fractions {
        let Some(k) = ticks.first_at_or_after(ctx.at_fraction(f)) else {
            continue;
        };
        let Some(k) = ticks.exists(k.max(kmin)) else {
            continue;
        };
        let t = ticks.at(k);
        let window = Window::new(t, add_ms(t, ctx.lag_ms));
        let mut p = placed(ctx, input, input.person.clone(), Scenario::Compliant);
        match kind {
            Kind::StrapTamper => {
                p.device.strap_open_at = Some(t);
                p.scenario.scenario = Scenario::StrapTamper { window };
            }
            Kind::LowBattery => {
                let low = ctx.s.low_battery_pct;
                p.device.battery_start_pct = p.device.battery_start_pct.max(low + 10).min(100);
                p.device.battery_drop_at = Some(t);
                p.device.battery_low_pct = match low {
                    6.. => low - 5,
                    2..=5 => 1,
                    _ => 0,
                };
                p.scenario.scenario = Scenario::LowBattery { window };
            }
            _ => {
                p.device.jump_at = Some(t);
                p.scenario.scenario = Scenario::LocationJump { window };
            }
        }
        if let Some(x) = accept(p) {
            return Some(x);
        }
    }
    None
}
