//! When in the run the scenarios happen.
//!
//! By default every placer tries a moment drawn in 0.3–0.5 of the run, then a fixed list of
//! fractions ([`scenarios::fractions`]), so scenarios gather around the middle of the run, where
//! a measurement wants them. With [`Settings::spread_scenarios`] (a demo: an officer watching
//! alerts arrive from the first minute for as long as the run lasts), person `i`'s scenario is
//! first tried near its own moment, [`preferred`]: `(i + 0.5) / devices` of [`SPREAD_END`] of the
//! run. Scenario people are dealt evenly over the indices (`people::deal`), so their scenarios
//! follow one another through the run; the curfew breaker's window opens at that moment too
//! (by default it opens in the run's first minute).
//!
//! Invariants:
//! - the default pace draws from the rng exactly what it always did and tries the same moments
//!   in the same order, so plans without `spread_scenarios` are unchanged;
//! - the spread pace only puts other candidate moments first: every candidate is still a
//!   fraction in `(0, 1)` (or, for the curfew, a whole minute within the run) and every placer's
//!   own checks apply unchanged, so a moment that does not work is skipped as before and the
//!   default list remains the fallback.
//!
//! [`Settings::spread_scenarios`]: super::Settings::spread_scenarios

use chrono::{DateTime, Utc};
use rand::rngs::StdRng;

use super::clock::ceil_minute;
use super::people::Ctx;
use super::scenarios;

/// Spread scenarios are preferred within this fraction of the run, leaving the end for the
/// last ones to be decided before the devices stop.
pub const SPREAD_END: f64 = 0.95;

/// Tried after a spread person's own moment, before the default list: nearby moments, later
/// ones first (a movement scenario may need a little more time than the run has before it).
const NEAR: [f64; 7] = [0.0, 0.01, 0.02, 0.04, 0.07, -0.01, -0.03];

/// Person `index`'s own moment as a fraction of the run, when scenarios are spread.
pub(crate) fn preferred(ctx: &Ctx, index: usize) -> Option<f64> {
    if !ctx.s.spread_scenarios {
        return None;
    }
    let devices = ctx.s.devices.max(1) as f64;
    Some(SPREAD_END * (index as f64 + 0.5) / devices)
}

/// Candidate moments for person `index`, as fractions of the run, in the order tried.
pub(crate) fn fractions(ctx: &Ctx, index: usize, rng: &mut StdRng) -> Vec<f64> {
    let default = scenarios::fractions(rng);
    match preferred(ctx, index) {
        None => default,
        Some(f) => near(f).chain(default).collect(),
    }
}

fn near(f: f64) -> impl Iterator<Item = f64> {
    NEAR.iter()
        .map(move |d| f + d)
        .filter(|x| *x > 0.0 && *x < 1.0)
}

/// Candidate openings of the curfew breaker's one-hour window: `earliest` (the first whole
/// minute the scenario allows) by default; spread, first the whole minute at or after the
/// person's own moment (if later), then `earliest`.
pub(crate) fn curfew_opens(ctx: &Ctx, index: usize, earliest: DateTime<Utc>) -> Vec<DateTime<Utc>> {
    match preferred(ctx, index) {
        Some(f) => {
            let own = ceil_minute(ctx.at_fraction(f));
            if own > earliest {
                vec![own, earliest]
            } else {
                vec![earliest]
            }
        }
        None => vec![earliest],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn near_moments_stay_strictly_inside_the_run() {
        assert_eq!(near(0.005).collect::<Vec<_>>().len(), 5);
        assert!(near(0.995).all(|x| x > 0.0 && x < 1.0));
        assert_eq!(near(0.5).next(), Some(0.5));
    }
}
