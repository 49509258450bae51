//! The run report: what an operator reads at the end of a run (a table) and what tools read
//! (`--report FILE`, JSON). Field names are a public contract (issue 5/6): `devices`,
//! `duration_s`, `fixes_sent`, `fixes_acked`, `fixes_per_s`, `ack_latency_ms` and
//! `alert_latency_ms` {p50,p95,p99,max}, `alerts_expected`, `alerts_received`, `alerts_missing`,
//! `alerts_unexpected`, `alerts_duplicated`, `errors`; everything else is extra.
//!
//! fix→officer-alert latency is measured per alert, on the feed of the supervisee's own officer:
//! from the device time of the deciding report (devices stamp reports with the real clock at
//! the moment they send them) to the moment the simulator read the frame. Alerts that are not
//! decided by a report as it happens are left out: `late` ones (a buffered upload is late by
//! design) and `lost_contact` (decided by silence).

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;

use serde::Serialize;
use uuid::Uuid;

use crate::ledger::{Expectation, Received, Verdict};
pub use crate::stats::Percentiles;

/// Nearest-rank percentiles of `samples` (milliseconds, any order).
pub fn percentiles_of(samples: &mut [f64]) -> Percentiles {
    samples.sort_by(f64::total_cmp);
    let rank = |q: f64| -> Option<f64> {
        if samples.is_empty() {
            return None;
        }
        let i = ((q * samples.len() as f64).ceil() as usize).clamp(1, samples.len()) - 1;
        Some(samples[i])
    };
    Percentiles {
        p50: rank(0.50),
        p95: rank(0.95),
        p99: rank(0.99),
        max: samples.last().copied(),
    }
}

/// fix→officer-alert latencies (ms) of the distinct alerts delivered to the supervisee's own
/// officer, leaving out late and lost-contact alerts (see the module doc).
pub fn alert_latencies_ms(expected: &[Expectation], received: &[Received]) -> Vec<f64> {
    let owner: BTreeMap<Uuid, Uuid> = expected
        .iter()
        .map(|e| (e.supervisee_id, e.officer_id))
        .collect();
    let mut seen = HashSet::new();
    let mut first: BTreeMap<&str, &Received> = BTreeMap::new();
    for r in received {
        let officer = owner.get(&r.supervisee_id).copied().unwrap_or(r.officer_id);
        if r.feed.supervisor || r.feed.officer_id != officer || r.late || r.kind == "lost_contact" {
            continue;
        }
        seen.insert(r.alert_id.as_str());
        first
            .entry(r.alert_id.as_str())
            .and_modify(|f| {
                if r.received_at < f.received_at {
                    *f = r;
                }
            })
            .or_insert(r);
    }
    first
        .values()
        .map(|r| {
            (r.received_at - r.event_at)
                .num_microseconds()
                .unwrap_or(i64::MAX) as f64
                / 1e3
        })
        .collect()
}

/// The server processes named by `--pid`: their resident memory, summed.
#[derive(Debug, Clone, Default)]
pub struct ServerProbe {
    pids: Vec<u32>,
    peak_kib: u64,
}

impl ServerProbe {
    pub fn new(pids: Vec<u32>) -> ServerProbe {
        ServerProbe { pids, peak_kib: 0 }
    }

    /// Reads the summed VmRSS now (and remembers the peak); `None` without pids or when a
    /// process cannot be read.
    pub fn sample(&mut self) -> Option<u64> {
        if self.pids.is_empty() {
            return None;
        }
        let mut sum = 0;
        for &pid in &self.pids {
            sum += rss_kib(pid)?;
        }
        self.peak_kib = self.peak_kib.max(sum);
        Some(sum)
    }

    /// Peak summed RSS seen by [`sample`](Self::sample), MiB.
    pub fn peak_mib(&self) -> Option<f64> {
        (self.peak_kib > 0).then(|| self.peak_kib as f64 / 1024.0)
    }
}

/// VmRSS of a process, KiB (`None` when it cannot be read).
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The report of a `run`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RunReport {
    pub run_id: String,
    pub seed: u64,
    pub devices: usize,
    pub interval_s: f64,
    pub duration_s: f64,
    pub fixes_sent: u64,
    pub fixes_acked: u64,
    /// Fixes acknowledged per second of the run.
    pub fixes_per_s: f64,
    pub sent_per_s: f64,
    pub ack_latency_ms: Percentiles,
    pub alert_latency_ms: Percentiles,
    pub alerts_expected: usize,
    pub alerts_received: usize,
    pub alerts_missing: usize,
    pub alerts_unexpected: usize,
    pub alerts_duplicated: usize,
    pub alerts_wrong_officer: usize,
    pub alerts_acknowledged: u64,
    /// Errors of every kind: error frames, socket errors, failed connects, feed errors.
    pub errors: u64,
    pub error_kinds: BTreeMap<String, u64>,
    /// Officers' feeds that dropped and resumed from their cursor (nothing is lost by that:
    /// the verdict says whether anything was missed).
    pub feed_disruptions: BTreeMap<String, u64>,
    pub feed_reconnects: u64,
    pub connections_max: u64,
    pub server_rss_mib: Option<f64>,
    /// How many supervisees carried each scenario.
    pub scenarios: BTreeMap<String, usize>,
    /// Scenario kinds the run was too short for.
    pub scenarios_skipped: Vec<String>,
    pub provision_s: f64,
    /// The verdict's details (each list cut at 50 entries).
    pub verdict: VerdictDetail,
    pub passed: bool,
}

/// The first entries of each verdict list, for the JSON report.
#[derive(Debug, Clone, Default, Serialize)]
pub struct VerdictDetail {
    pub missing: Vec<serde_json::Value>,
    pub unexpected: Vec<serde_json::Value>,
    pub duplicated: Vec<serde_json::Value>,
    pub wrong_officer: Vec<serde_json::Value>,
}

impl VerdictDetail {
    pub fn of(v: &Verdict) -> VerdictDetail {
        fn cut<T: Serialize>(items: &[T]) -> Vec<serde_json::Value> {
            items
                .iter()
                .take(50)
                .filter_map(|i| serde_json::to_value(i).ok())
                .collect()
        }
        VerdictDetail {
            missing: cut(&v.missing),
            unexpected: cut(&v.unexpected),
            duplicated: cut(&v.duplicated),
            wrong_officer: cut(&v.wrong_officer),
        }
    }
}

fn ms(v: Option<f64>) -> String {
    v.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.1}"))
}

impl RunReport {
    /// The end-of-run table.
    pub fn table(&self) -> String {
        let mut t = String::new();
        let mut row = |k: &str, v: String| {
            let _ = writeln!(t, "  {k:<28} {v}");
        };
        row("run", format!("{} (seed {})", self.run_id, self.seed));
        row(
            "devices",
            format!(
                "{} (interval {} s, {} s)",
                self.devices, self.interval_s, self.duration_s
            ),
        );
        row(
            "fixes sent / acked",
            format!("{} / {}", self.fixes_sent, self.fixes_acked),
        );
        row(
            "fixes/s sent / acked",
            format!("{:.0} / {:.0}", self.sent_per_s, self.fixes_per_s),
        );
        for (name, p) in [
            ("fix→ack ms", &self.ack_latency_ms),
            ("fix→officer-alert ms", &self.alert_latency_ms),
        ] {
            row(
                name,
                format!(
                    "p50 {}  p95 {}  p99 {}  max {}",
                    ms(p.p50),
                    ms(p.p95),
                    ms(p.p99),
                    ms(p.max)
                ),
            );
        }
        row(
            "alerts expected / received",
            format!("{} / {}", self.alerts_expected, self.alerts_received),
        );
        row(
            "missing / unexpected",
            format!("{} / {}", self.alerts_missing, self.alerts_unexpected),
        );
        row(
            "duplicated / wrong officer",
            format!("{} / {}", self.alerts_duplicated, self.alerts_wrong_officer),
        );
        row("acknowledged", self.alerts_acknowledged.to_string());
        let kinds: Vec<String> = self
            .error_kinds
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        row(
            "errors",
            if kinds.is_empty() {
                "0".to_owned()
            } else {
                format!("{} ({})", self.errors, kinds.join(", "))
            },
        );
        row("connections (max)", self.connections_max.to_string());
        row(
            "server RSS (peak)",
            self.server_rss_mib
                .map_or_else(|| "n/a (no --pid)".to_owned(), |m| format!("{m:.0} MiB")),
        );
        if !self.scenarios_skipped.is_empty() {
            row("scenarios skipped", self.scenarios_skipped.join(", "));
        }
        row(
            "verdict",
            if self.passed { "PASS" } else { "FAIL" }.to_owned(),
        );
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_take_the_nearest_rank() {
        let mut v: Vec<f64> = (1..=100).map(f64::from).collect();
        let p = percentiles_of(&mut v);
        assert_eq!(
            (p.p50, p.p95, p.p99, p.max),
            (Some(50.0), Some(95.0), Some(99.0), Some(100.0))
        );
        assert_eq!(percentiles_of(&mut []), Percentiles::default());
    }

    #[test]
    fn an_empty_report_prints_without_numbers_it_does_not_have() {
        let table = RunReport::default().table();
        assert!(table.contains("p99 n/a"), "{table}");
        assert!(table.contains("FAIL"), "{table}");
    }
}
