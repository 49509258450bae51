//! A simulated run from start to verdict: plan, provision, watch, drive, settle, verify, report.
//!
//! The order matters and is the invariant of this module:
//! 1. the plan is built for a start far enough ahead to provision and connect everyone;
//! 2. provisioning writes every rule before a device is assigned (nothing is evaluated early);
//! 3. officers' feeds are connected and `ready` before any device connects, so no alert can be
//!    raised before someone watches (and feeds resume from their cursor if they drop);
//! 4. devices tick on the plan's schedule from `start` to `end`, then get a drain for their acks;
//! 5. feeds are watched until the plan's `settle_until` (lost contact needs its threshold and
//!    grace after the silence), and only then is the ledger compared with what arrived.
//!
//! [`Session::drive`] is the only step that differs between `run` (a fixed load) and `ramp`
//! (rising rates, see `ramp.rs`).

use std::collections::{BTreeMap, HashSet};
use std::io::IsTerminal;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use chrono::Utc;
use indicatif::{ProgressBar, ProgressStyle};
use rand::Rng as _;

use crate::api::Api;
use crate::fleet::{DeviceJob, Fleet, FleetConfig, FleetStats};
use crate::ledger::{self, Expectation, Feed};
use crate::officer::{FeedLogin, WatchReport, Watchers};
use crate::plan::{self, Plan, Settings};
use crate::provision::{self, Provisioned};
use crate::report::{self, RunReport, ServerProbe, VerdictDetail};

/// How the simulator reaches geoward and how it spreads its own load.
#[derive(Debug, Clone)]
pub struct Target {
    /// `http://HOST:PORT`.
    pub url: String,
    /// An existing admin account.
    pub admin_user: String,
    pub admin_password: String,
    /// Worker processes for the devices (0: in this process).
    pub workers: usize,
    /// Source addresses for device connections (empty: the OS's choice).
    pub source_ips: Vec<IpAddr>,
    /// The server's process ids, for its memory.
    pub pids: Vec<u32>,
    /// Concurrent API calls while provisioning, and concurrent connects.
    pub concurrency: usize,
    /// Officers acknowledge every n-th alert they receive (0: never).
    pub ack_every: u32,
    /// Time allowed from now to the run's start (provisioning and connecting); `None`: estimated.
    pub lead: Option<Duration>,
    /// Live progress on stderr.
    pub progress: bool,
}

/// How the run's accounts are named and protected. The default (random id and password) is
/// what a measurement wants; a demo names them and gives them a password a person can type.
#[derive(Debug, Clone, Default)]
pub struct Accounts {
    /// The id in every name of the run (`sim-{run_id}-officer-0`, …); `None`: 8 random hex
    /// digits. Must be new to the server: accounts and serials of an earlier run with the same
    /// id conflict.
    pub run_id: Option<String>,
    /// The password of the run's supervisor and officers; `None`: random.
    pub password: Option<String>,
}

/// Everything set up and connected, waiting for the start.
pub struct Session {
    pub plan: Plan,
    pub run_id: String,
    pub provisioned: Provisioned,
    pub expected: Vec<Expectation>,
    pub watchers: Watchers,
    pub fleet: Fleet,
    pub probe: ServerProbe,
    pub provision_s: f64,
    progress: Progress,
}

/// Estimated time to provision `plan` and connect its devices: about 2 ms per API call and per
/// connection (measured with release builds on the 2-core box, everything co-located: 2,000
/// supervisees, 36,000 calls, provisioned in 60 s), plus 10 s.
fn estimated_lead(plan: &Plan) -> Duration {
    let per_person: usize = plan
        .people
        .iter()
        .map(|p| 4 + p.zones.len() + usize::from(p.leave.is_some()))
        .sum();
    let calls = plan.zones.len() + per_person + 2 * (plan.settings.officers + 1);
    Duration::from_secs(10) + Duration::from_millis(2 * (calls + plan.people.len()) as u64)
}

impl Session {
    /// Steps 1–3 of the module doc, and connecting the devices.
    pub async fn prepare(target: &Target, settings: &Settings) -> anyhow::Result<Session> {
        Session::prepare_with(target, settings, &Accounts::default()).await
    }

    /// [`Session::prepare`] with the run's accounts named and protected as `accounts` says.
    pub async fn prepare_with(
        target: &Target,
        settings: &Settings,
        accounts: &Accounts,
    ) -> anyhow::Result<Session> {
        let run_id = match &accounts.run_id {
            Some(id) => id.clone(),
            None => format!("{:08x}", rand::thread_rng().gen::<u32>()),
        };
        provision::check_run_id(&run_id, settings.officers).context("--run-id")?;
        // The plan depends on its start only in time (zone, windows), not in size: a first
        // plan tells how long provisioning will take, the second starts after that.
        let lead = match target.lead {
            Some(lead) => lead,
            None => estimated_lead(
                &plan::build(settings, Utc::now() + chrono::Duration::minutes(1))
                    .context("planning the run")?,
            ),
        };
        let start = Utc::now() + chrono::Duration::from_std(lead)?;
        let plan = plan::build(settings, start).context("planning the run")?;
        let progress = Progress::new(target.progress);

        let api = Api::new(&target.url).context("the geoward URL")?;
        let began = Instant::now();
        progress.phase(&format!(
            "provisioning {} supervisees (run {run_id}); the run starts in {:.0} s",
            plan.people.len(),
            lead.as_secs_f64()
        ));
        let password = (accounts.password.clone()).unwrap_or_else(provision::random_password);
        let provisioned = provision::provision_with_password(
            &api,
            (&target.admin_user, &target.admin_password),
            &plan,
            &run_id,
            &password,
            target.concurrency,
            |done, total| progress.set(done, total),
        )
        .await
        .context("provisioning through the API")?;
        let provision_s = began.elapsed().as_secs_f64();

        let expected = plan.expectations(
            |i| provisioned.supervisees[i],
            |o| provisioned.officers[o].id,
            |z| provisioned.zones.get(&z).copied().unwrap_or_default(),
        );
        let mut logins: Vec<FeedLogin> = provisioned
            .officers
            .iter()
            .map(|o| FeedLogin {
                feed: Feed {
                    officer_id: o.id,
                    supervisor: false,
                },
                token: o.token.clone(),
                officer_id: o.id,
            })
            .collect();
        logins.push(FeedLogin {
            feed: Feed {
                officer_id: provisioned.supervisor.id,
                supervisor: true,
            },
            token: provisioned.supervisor.token.clone(),
            officer_id: provisioned.supervisor.id,
        });
        let run_supervisees: HashSet<_> = provisioned.supervisees.iter().copied().collect();
        progress.phase("connecting officers' feeds");
        let watchers = Watchers::start(&api, logins, run_supervisees, target.ack_every)
            .await
            .context("connecting officers' feeds")?;

        let jobs: Vec<DeviceJob> = plan
            .people
            .iter()
            .map(|p| DeviceJob {
                index: p.index,
                token: provisioned.devices[p.index].token.clone(),
                person: p.person.clone(),
                device: p.device.clone(),
            })
            .collect();
        let config = FleetConfig {
            ws_url: api.ws_url("/v1/device/ws"),
            start: plan.start,
            end: plan.end(),
            interval: settings.interval.to_std()?,
            devices_total: plan.people.len(),
            workers: target.workers,
            source_ips: target.source_ips.clone(),
            connect_concurrency: target.concurrency,
        };
        progress.phase(&format!("connecting {} devices", jobs.len()));
        let fleet = Fleet::start(config, jobs)
            .await
            .context("connecting devices")?;
        let late = Utc::now() - plan.start;
        if late > chrono::Duration::zero() {
            bail!(
                "provisioning and connecting took {:.1} s, past the planned start by {:.1} s; \
                 give more time with --lead-s",
                began.elapsed().as_secs_f64(),
                late.num_milliseconds() as f64 / 1000.0
            );
        }
        Ok(Session {
            plan,
            run_id,
            provisioned,
            expected,
            watchers,
            fleet,
            probe: ServerProbe::new(target.pids.clone()),
            provision_s,
            progress,
        })
    }

    /// Step 4 for a fixed load: a progress line once a second until the end.
    pub async fn drive(&mut self) {
        let end = self.plan.end();
        self.progress.phase("running");
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let (mut last_sent, mut last_acked) = (0, 0);
        loop {
            tick.tick().await;
            let now = Utc::now();
            if now >= end {
                break;
            }
            self.probe.sample();
            let s = self.fleet.snapshot();
            let window = self.fleet.take_window().percentiles_ms();
            let elapsed = (now - self.plan.start).num_seconds().max(0);
            self.progress.line(&format!(
                "{elapsed:>4}/{} s  devices {}  sent {}/s  acked {}/s  p99 ack {} ms  alerts {}/{}  errors {}",
                self.plan.settings.duration.num_seconds(),
                s.connected,
                s.sent.saturating_sub(last_sent),
                s.acked.saturating_sub(last_acked),
                window.p99.map_or_else(|| "-".to_owned(), |v| format!("{v:.1}")),
                self.watchers.received_count(),
                self.expected.len(),
                s.errors,
            ));
            (last_sent, last_acked) = (s.sent, s.acked);
        }
    }

    /// Step 5 after a full run: drain, watch until the plan's `settle_until`, verify.
    pub async fn finish(self, drain: Duration) -> RunReport {
        let settle_until = self.plan.settle_until;
        let driven_s = self.plan.settings.duration.num_milliseconds() as f64 / 1000.0;
        self.finish_at(drain, settle_until, driven_s).await
    }

    /// Step 5 for a run stopped before its planned end (the ramp): devices stop now, feeds are
    /// watched a few seconds more; no scenario is pending, so that is enough.
    pub async fn finish_early(self, drain: Duration) -> RunReport {
        let driven_s = (Utc::now() - self.plan.start).num_milliseconds().max(1) as f64 / 1000.0;
        let settle_until = Utc::now() + chrono::Duration::seconds(3);
        self.finish_at(drain, settle_until, driven_s).await
    }

    async fn finish_at(
        mut self,
        drain: Duration,
        settle_until: chrono::DateTime<Utc>,
        driven_s: f64,
    ) -> RunReport {
        self.progress.phase("draining acks");
        let stats: FleetStats = self.fleet.finish(drain).await;
        self.probe.sample();
        let settle = (settle_until + chrono::Duration::seconds(3) - Utc::now())
            .to_std()
            .unwrap_or_default();
        if !settle.is_zero() {
            self.progress.phase(&format!(
                "waiting {:.0} s for late alerts",
                settle.as_secs_f64()
            ));
            tokio::time::sleep(settle).await;
        }
        let watched: WatchReport = self.watchers.stop().await;
        self.progress.done();
        build_report(
            &self.plan,
            &self.run_id,
            &self.expected,
            &stats,
            &watched,
            &self.probe,
            self.provision_s,
            driven_s,
        )
    }
}

#[allow(clippy::too_many_arguments)]
fn build_report(
    plan: &Plan,
    run_id: &str,
    expected: &[Expectation],
    stats: &FleetStats,
    watched: &WatchReport,
    probe: &ServerProbe,
    provision_s: f64,
    duration_s: f64,
) -> RunReport {
    let verdict = ledger::verify(expected, &watched.received);
    let summary = verdict.summary();
    let mut error_kinds: BTreeMap<String, u64> = stats.errors.clone();
    if stats.unacked > 0 {
        error_kinds.insert("unacked".into(), stats.unacked);
    }
    if watched.acknowledge_failures > 0 {
        error_kinds.insert("acknowledge_failed".into(), watched.acknowledge_failures);
    }
    let mut scenarios: BTreeMap<String, usize> = BTreeMap::new();
    for p in &plan.people {
        *scenarios
            .entry(p.scenario.scenario.name().to_owned())
            .or_default() += 1;
    }
    let mut latencies = report::alert_latencies_ms(expected, &watched.received);
    let errors = error_kinds.values().sum();
    RunReport {
        run_id: run_id.to_owned(),
        seed: plan.settings.seed,
        devices: plan.people.len(),
        interval_s: plan.settings.interval.num_milliseconds() as f64 / 1000.0,
        duration_s,
        fixes_sent: stats.sent,
        fixes_acked: stats.acked,
        fixes_per_s: stats.acked as f64 / duration_s,
        sent_per_s: stats.sent as f64 / duration_s,
        ack_latency_ms: stats.ack_latency.percentiles_ms(),
        alert_latency_ms: report::percentiles_of(&mut latencies),
        alerts_expected: summary.alerts_expected,
        alerts_received: summary.alerts_received,
        alerts_missing: summary.alerts_missing,
        alerts_unexpected: summary.alerts_unexpected,
        alerts_duplicated: summary.alerts_duplicated,
        alerts_wrong_officer: summary.alerts_wrong_officer,
        alerts_acknowledged: watched.acknowledged,
        errors,
        error_kinds,
        feed_disruptions: watched.errors.clone(),
        feed_reconnects: watched.reconnects,
        connections_max: stats.max_connected,
        server_rss_mib: probe.peak_mib(),
        scenarios,
        scenarios_skipped: plan.skipped.clone(),
        provision_s,
        verdict: VerdictDetail::of(&verdict),
        passed: verdict.passed() && errors == 0,
    }
}

/// The live progress line: indicatif on a terminal, a plain line every 10 s otherwise.
struct Progress {
    bar: Option<ProgressBar>,
    plain: bool,
    last_plain: std::sync::Mutex<Option<Instant>>,
}

impl Progress {
    fn new(enabled: bool) -> Progress {
        let tty = std::io::stderr().is_terminal();
        let bar = (enabled && tty).then(|| {
            let bar = ProgressBar::new(0);
            bar.set_style(
                ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.enable_steady_tick(Duration::from_millis(250));
            bar
        });
        Progress {
            bar,
            plain: enabled && !tty,
            last_plain: std::sync::Mutex::new(None),
        }
    }

    fn phase(&self, what: &str) {
        match &self.bar {
            Some(bar) => bar.set_message(what.to_owned()),
            None if self.plain => eprintln!("geoward-sim: {what}"),
            None => {}
        }
    }

    fn set(&self, done: usize, total: usize) {
        if let Some(bar) = &self.bar {
            bar.set_message(format!("provisioning {done}/{total}"));
        } else if done == total || done % 1000 == 0 {
            self.line(&format!("provisioned {done}/{total}"));
        }
    }

    fn line(&self, what: &str) {
        match &self.bar {
            Some(bar) => bar.set_message(what.to_owned()),
            None if self.plain => {
                let mut last = self.last_plain.lock().unwrap_or_else(|e| e.into_inner());
                if last.map_or(true, |t| t.elapsed() >= Duration::from_secs(10)) {
                    *last = Some(Instant::now());
                    eprintln!("geoward-sim: {what}");
                }
            }
            None => {}
        }
    }

    fn done(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
