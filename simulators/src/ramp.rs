//! `ramp`: finds the highest rate geoward sustains, by raising the devices' common fix rate in
//! steps until a step fails.
//!
//! A step *holds* when, over its window, p99 fix→ack stays within the limit, no error of any
//! kind appears, and the acknowledged rate reaches 95% of the offered one (a server that falls
//! behind shows it there first). A warm-up at the first rate comes first and is not counted.
//! The maximum sustained rate is the acknowledged rate of the
//! last step that held. The first failing step ends the ramp.
//!
//! Every supervisee is compliant (no scenario), so the run also proves that no alert is raised
//! at any of these rates: any alert at all fails the ramp.

use std::time::Duration;

use serde::Serialize;

use crate::plan::Settings;
use crate::report::{Percentiles, RunReport};
use crate::run::{Session, Target};

/// The ramp's shape.
#[derive(Debug, Clone)]
pub struct Ramp {
    pub start_rate: f64,
    pub step_rate: f64,
    pub max_rate: f64,
    pub step: Duration,
    /// Time at the first rate before the first step, not counted (caches, connections and the
    /// server's pools settle).
    pub warmup: Duration,
    pub p99_limit_ms: f64,
}

impl Ramp {
    /// The offered rates, lowest first.
    pub fn rates(&self) -> Vec<f64> {
        let mut rates = Vec::new();
        let mut r = self.start_rate;
        while r <= self.max_rate + 1e-9 && rates.len() < 1000 {
            rates.push(r);
            if self.step_rate <= 0.0 {
                break;
            }
            r += self.step_rate;
        }
        rates
    }
}

/// One step's figures.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub offered_fixes_per_s: f64,
    pub sent_per_s: f64,
    pub acked_per_s: f64,
    pub ack_latency_ms: Percentiles,
    pub errors: u64,
    pub held: bool,
}

/// The ramp report: the steps, the maximum, and the whole run's report (alert counts, errors).
#[derive(Debug, Clone, Serialize)]
pub struct RampReport {
    pub max_sustained_fixes_per_s: Option<f64>,
    pub p99_limit_ms: f64,
    pub step_s: f64,
    pub steps: Vec<Step>,
    pub run: RunReport,
}

/// The settings a ramp plans with: no scenarios, and long enough for every step.
pub fn settings(base: &Settings, ramp: &Ramp) -> anyhow::Result<Settings> {
    let rates = ramp.rates();
    let Some(&first) = rates.first() else {
        anyhow::bail!("the ramp has no step: --start-rate must be positive and at most --max-rate");
    };
    if first.is_nan() || first <= 0.0 || ramp.step.is_zero() {
        anyhow::bail!("--start-rate and --step-s must be positive");
    }
    let mut s = base.clone();
    s.scenario_share = 0.0;
    s.interval = chrono::Duration::from_std(Duration::from_secs_f64(s.devices as f64 / first))?;
    s.duration = chrono::Duration::from_std(ramp.warmup + ramp.step * rates.len() as u32)?;
    Ok(s)
}

/// Runs the ramp on a prepared session (planned with [`settings`]).
pub async fn drive(session: &mut Session, ramp: &Ramp, limit_errors: bool) -> Vec<Step> {
    let devices = session.plan.people.len() as f64;
    let mut steps = Vec::new();
    let until_start = (session.plan.start - chrono::Utc::now())
        .to_std()
        .unwrap_or_default();
    tokio::time::sleep(until_start + ramp.warmup).await;
    for rate in ramp.rates() {
        session
            .fleet
            .set_interval(Duration::from_secs_f64(devices / rate));
        let before = session.fleet.snapshot();
        let _ = session.fleet.take_window();
        tokio::time::sleep(ramp.step).await;
        session.probe.sample();
        let after = session.fleet.snapshot();
        let window = session.fleet.take_window();
        let secs = ramp.step.as_secs_f64();
        let acked_per_s = after.acked.saturating_sub(before.acked) as f64 / secs;
        let errors = after.errors.saturating_sub(before.errors);
        let ack_latency_ms: Percentiles = window.percentiles_ms();
        let held = ack_latency_ms.p99.is_some_and(|p| p <= ramp.p99_limit_ms)
            && (errors == 0 || !limit_errors)
            && acked_per_s >= 0.95 * rate;
        let step = Step {
            offered_fixes_per_s: rate,
            sent_per_s: after.sent.saturating_sub(before.sent) as f64 / secs,
            acked_per_s,
            ack_latency_ms,
            errors,
            held,
        };
        eprintln!(
            "geoward-sim ramp: offered {:>6.0}/s  acked {:>8.1}/s  p99 ack {} ms  errors {}  {}",
            step.offered_fixes_per_s,
            step.acked_per_s,
            step.ack_latency_ms
                .p99
                .map_or_else(|| "n/a".to_owned(), |p| format!("{p:.1}")),
            step.errors,
            if held { "held" } else { "FAILED" }
        );
        steps.push(step);
        if !held {
            break;
        }
    }
    session.fleet.stop();
    steps
}

/// Prepares, ramps, finishes: the ramp report.
pub async fn ramp(target: &Target, base: &Settings, ramp: &Ramp) -> anyhow::Result<RampReport> {
    let settings = settings(base, ramp)?;
    let mut session = Session::prepare(target, &settings).await?;
    let steps = drive(&mut session, ramp, true).await;
    let run = session.finish_early(Duration::from_secs(10)).await;
    let max = steps
        .iter()
        .filter(|s| s.held)
        .map(|s| s.acked_per_s)
        .fold(None, |m: Option<f64>, r| Some(m.map_or(r, |m| m.max(r))));
    Ok(RampReport {
        max_sustained_fixes_per_s: max,
        p99_limit_ms: ramp.p99_limit_ms,
        step_s: ramp.step.as_secs_f64(),
        steps,
        run,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(start: f64, step: f64, max: f64) -> Ramp {
        Ramp {
            start_rate: start,
            step_rate: step,
            max_rate: max,
            step: Duration::from_secs(20),
            warmup: Duration::from_secs(10),
            p99_limit_ms: 50.0,
        }
    }

    #[test]
    fn rates_rise_by_the_step_up_to_the_maximum() {
        assert_eq!(
            ramp(5000.0, 2500.0, 12500.0).rates(),
            vec![5000.0, 7500.0, 10000.0, 12500.0]
        );
        assert_eq!(ramp(5000.0, 0.0, 9000.0).rates(), vec![5000.0]);
        assert!(ramp(5000.0, 100.0, 10.0).rates().is_empty());
    }

    #[test]
    fn a_ramp_plans_no_scenarios_and_time_for_every_step() {
        let base = Settings {
            devices: 2000,
            scenario_share: 0.2,
            ..Settings::default()
        };
        let s = settings(&base, &ramp(5000.0, 2500.0, 12500.0)).unwrap();
        assert_eq!(s.scenario_share, 0.0);
        assert_eq!(s.duration, chrono::Duration::seconds(90));
        assert_eq!(s.interval, chrono::Duration::milliseconds(400));
        assert!(settings(&base, &ramp(0.0, 1.0, 10.0)).is_err());
    }
}
