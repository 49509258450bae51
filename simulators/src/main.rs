//! `geoward-sim`: the simulator's command line. `run` drives a fixed load with scenarios and
//! checks the alerts; `ramp` raises the rate to find the sustainable maximum; `worker` is the
//! device worker process the other two spawn for large runs (not for people).
//!
//! Exit status: 0 when the run passed (every expected alert once, nothing else, no errors),
//! 1 when it ran and failed its verdict, 2 when it could not run (bad arguments, server
//! unreachable, provisioning refused).

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context as _};
use clap::{Args, Parser, Subcommand};
use geoward_sim::plan::Settings;
use geoward_sim::ramp::{self, Ramp};
use geoward_sim::run::{Accounts, Session, Target};
use serde::Serialize;

/// The load generator shares the machine with the server it measures; mimalloc keeps its
/// per-fix allocations cheap.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser, Debug)]
#[command(
    name = "geoward-sim",
    about = "Load tests for geoward that also prove every expected alert, and no other, arrives"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// A fixed load: N devices, a fix every S seconds each, for D seconds, with scenarios.
    Run {
        #[command(flatten)]
        common: Common,
        /// Seconds between a device's fixes.
        #[arg(long, default_value_t = 10.0)]
        interval_s: f64,
        /// Seconds the devices report.
        #[arg(long, default_value_t = 60.0)]
        duration_s: f64,
        /// Share of supervisees given a scenario (each kind at least once when above 0).
        #[arg(long, default_value_t = 0.05)]
        scenario_share: f64,
        #[command(flatten)]
        demo: Demo,
    },
    /// Raise the fix rate in steps until p99 fix→ack passes a limit or errors appear.
    Ramp {
        #[command(flatten)]
        common: Common,
        /// First step's total fixes/s.
        #[arg(long, default_value_t = 5000.0)]
        start_rate: f64,
        /// Added each step.
        #[arg(long, default_value_t = 2500.0)]
        step_rate: f64,
        /// Highest rate tried.
        #[arg(long, default_value_t = 40000.0)]
        max_rate: f64,
        /// Seconds per step.
        #[arg(long, default_value_t = 20.0)]
        step_s: f64,
        /// Seconds at the first rate before the first step (not counted).
        #[arg(long, default_value_t = 10.0)]
        warmup_s: f64,
        /// A step holds while p99 fix→ack stays within this.
        #[arg(long, default_value_t = 50.0)]
        p99_limit_ms: f64,
    },
    /// Internal: a device worker process (reads its devices on stdin).
    #[command(hide = true)]
    Worker,
}

#[derive(Args, Debug)]
struct Common {
    /// geoward's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// An existing admin account, USER:PASS.
    #[arg(long)]
    admin: String,
    /// Simulated supervisees, one device and one WebSocket each.
    #[arg(long, default_value_t = 1000)]
    devices: usize,
    /// Makes the run reproducible (people, routes, scenarios, fix noise).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Writes the report as JSON here.
    #[arg(long)]
    report: Option<PathBuf>,
    /// The server's process id (repeat for several nodes): peak RSS in the report.
    #[arg(long = "pid")]
    pids: Vec<u32>,
    /// Device worker processes (default: one per 15,000 devices above 15,000; 0 = none).
    #[arg(long)]
    workers: Option<usize>,
    /// Source addresses for device connections: `auto` (127.0.0.1, .2, … one per 20,000
    /// devices when the server is on loopback), `none`, or a comma-separated list.
    #[arg(long, default_value = "auto")]
    source_ips: String,
    /// Caseloads (officers), besides one supervisor.
    #[arg(long, default_value_t = 4)]
    officers: usize,
    /// Schools in the shared exclusion layer.
    #[arg(long, default_value_t = 40)]
    schools: usize,
    /// Concurrent API calls while provisioning, and concurrent connects.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Officers acknowledge every n-th alert they receive (0: never).
    #[arg(long, default_value_t = 3)]
    ack_every: u32,
    /// Seconds from now to the start, for provisioning and connecting (default: estimated).
    #[arg(long)]
    lead_s: Option<f64>,
    /// Seconds allowed after the end for outstanding acks.
    #[arg(long, default_value_t = 10.0)]
    drain_s: f64,
    /// No live progress line.
    #[arg(long)]
    no_progress: bool,
    /// Server setting `confirm_fixes` (zones are drawn with it).
    #[arg(long, default_value_t = 2)]
    confirm_fixes: u32,
    /// Allowed silence of ordinary supervisees, seconds (longer than the run and its settling).
    #[arg(long, default_value_t = 3600)]
    lost_contact_after_s: u32,
    /// Allowed silence of the supervisee who goes silent (at least the server's
    /// `supervision.min_lost_contact_after_s`).
    #[arg(long, default_value_t = 60)]
    silent_lost_contact_after_s: u32,
    /// Server setting `alerts.lost_contact_grace`, seconds.
    #[arg(long, default_value_t = 60.0)]
    lost_contact_grace_s: f64,
    /// Server setting `alerts.late_after`, seconds.
    #[arg(long, default_value_t = 120.0)]
    late_after_s: f64,
    /// Server setting `alerts.no_location_after`, seconds.
    #[arg(long, default_value_t = 600.0)]
    no_location_after_s: f64,
    /// Server setting `alerts.low_battery_pct`.
    #[arg(long, default_value_t = 20)]
    low_battery_pct: u8,
    /// Sending lag tolerated in expectation windows, seconds.
    #[arg(long, default_value_t = 5.0)]
    lag_s: f64,
}

/// Options for a run people watch (`scripts/demo`) rather than measure.
#[derive(Args, Debug)]
struct Demo {
    /// Scenarios one after another through the run, from its first seconds to near its end,
    /// instead of around its middle.
    #[arg(long)]
    spread_scenarios: bool,
    /// The id in the run's names (accounts `sim-ID-supervisor`, `sim-ID-officer-K`); default
    /// random. Must be new to the server.
    #[arg(long)]
    run_id: Option<String>,
    /// Password of the run's supervisor and officers (at least 10 characters); default: the
    /// environment variable GEOWARD_SIM_ACCOUNT_PASSWORD, else random.
    #[arg(long)]
    account_password: Option<String>,
    /// Writes this JSON file (run id, start, end, account usernames; no password) once the run
    /// is provisioned and its devices are connected, before it starts.
    #[arg(long)]
    ready_file: Option<PathBuf>,
}

/// geoward's shortest password (`MIN_PASSWORD_LEN`).
const MIN_PASSWORD_CHARS: usize = 10;
/// The environment variable read when `--account-password` is not given.
const PASSWORD_ENV: &str = "GEOWARD_SIM_ACCOUNT_PASSWORD";

impl Demo {
    fn accounts(&self) -> anyhow::Result<Accounts> {
        let password = match &self.account_password {
            Some(p) => Some(p.clone()),
            None => std::env::var(PASSWORD_ENV).ok().filter(|p| !p.is_empty()),
        };
        if let Some(p) = &password {
            let n = p.chars().count();
            if !(MIN_PASSWORD_CHARS..=256).contains(&n) {
                bail!("the account password (--account-password or {PASSWORD_ENV}) must have {MIN_PASSWORD_CHARS} to 256 characters, not {n}");
            }
        }
        Ok(Accounts {
            run_id: self.run_id.clone(),
            password,
        })
    }
}

/// What `--ready-file` holds.
#[derive(Serialize)]
struct Ready<'a> {
    run_id: &'a str,
    start: chrono::DateTime<chrono::Utc>,
    end: chrono::DateTime<chrono::Utc>,
    supervisor: &'a str,
    officers: Vec<&'a str>,
    supervisees: usize,
    alerts_expected: usize,
}

/// Writes the ready file whole or not at all (a reader polling for it never sees half).
fn write_ready(path: &std::path::Path, session: &Session) -> anyhow::Result<()> {
    let ready = Ready {
        run_id: &session.run_id,
        start: session.plan.start,
        end: session.plan.end(),
        supervisor: &session.provisioned.supervisor.username,
        officers: (session.provisioned.officers.iter())
            .map(|o| o.username.as_str())
            .collect(),
        supervisees: session.plan.people.len(),
        alerts_expected: session.expected.len(),
    };
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_string_pretty(&ready)? + "\n")
        .and_then(|()| std::fs::rename(&tmp, path))
        .with_context(|| format!("writing the ready file {}", path.display()))
}

fn seconds(s: f64, what: &str) -> anyhow::Result<chrono::Duration> {
    if !(s.is_finite() && s > 0.0 && s < 1e7) {
        bail!("{what} must be a positive number of seconds, not {s}");
    }
    Ok(chrono::Duration::milliseconds((s * 1000.0).round() as i64))
}

impl Common {
    fn settings(&self, interval_s: f64, duration_s: f64, share: f64) -> anyhow::Result<Settings> {
        Ok(Settings {
            seed: self.seed,
            devices: self.devices,
            officers: self.officers,
            schools: self.schools,
            interval: seconds(interval_s, "--interval-s")?,
            duration: seconds(duration_s, "--duration-s")?,
            scenario_share: share,
            confirm_fixes: self.confirm_fixes,
            lost_contact_after_s: self.lost_contact_after_s,
            silent_lost_contact_after_s: self.silent_lost_contact_after_s,
            lost_contact_grace: seconds(self.lost_contact_grace_s, "--lost-contact-grace-s")?,
            late_after: seconds(self.late_after_s, "--late-after-s")?,
            no_location_after: seconds(self.no_location_after_s, "--no-location-after-s")?,
            low_battery_pct: self.low_battery_pct,
            lag: seconds(self.lag_s, "--lag-s")?,
            ..Settings::default()
        })
    }

    fn target(&self) -> anyhow::Result<Target> {
        let (user, password) = self
            .admin
            .split_once(':')
            .context("--admin must be USER:PASS")?;
        let workers = self.workers.unwrap_or(if self.devices > 15_000 {
            self.devices.div_ceil(15_000)
        } else {
            0
        });
        Ok(Target {
            url: self.url.trim_end_matches('/').to_owned(),
            admin_user: user.to_owned(),
            admin_password: password.to_owned(),
            workers,
            source_ips: source_ips(&self.source_ips, &self.url, self.devices)?,
            pids: self.pids.clone(),
            concurrency: self.concurrency.max(1),
            ack_every: self.ack_every,
            lead: self.lead_s.map(Duration::from_secs_f64),
            progress: !self.no_progress,
        })
    }
}

/// `auto`: 127.0.0.1 … 127.0.0.k, one per 20,000 devices (one source address has about 28,000
/// ephemeral ports), when the server is on an IPv4 loopback address; else the OS's choice.
fn source_ips(spec: &str, url: &str, devices: usize) -> anyhow::Result<Vec<IpAddr>> {
    match spec {
        "none" | "" => Ok(Vec::new()),
        "auto" => {
            let host = url
                .split("://")
                .nth(1)
                .unwrap_or(url)
                .split([':', '/'])
                .next()
                .unwrap_or("");
            let loopback =
                host.parse::<Ipv4Addr>().is_ok_and(|ip| ip.is_loopback()) || host == "localhost";
            if !loopback || devices <= 20_000 {
                return Ok(Vec::new());
            }
            let k = devices.div_ceil(20_000).min(250) as u8;
            Ok((1..=k)
                .map(|i| IpAddr::V4(Ipv4Addr::new(127, 0, 0, i)))
                .collect())
        }
        list => list
            .split(',')
            .map(|s| {
                s.trim()
                    .parse::<IpAddr>()
                    .with_context(|| format!("--source-ips: {s:?} is not an IP address"))
            })
            .collect(),
    }
}

fn write_report<T: Serialize>(path: Option<&PathBuf>, report: &T) -> anyhow::Result<()> {
    if let Some(path) = path {
        let json = serde_json::to_string_pretty(report)?;
        std::fs::write(path, json + "\n")
            .with_context(|| format!("writing the report to {}", path.display()))?;
    }
    Ok(())
}

async fn main_async(cli: Cli) -> anyhow::Result<bool> {
    match cli.command {
        Command::Worker => {
            geoward_sim::fleet::worker_main().await?;
            Ok(true)
        }
        Command::Run {
            common,
            interval_s,
            duration_s,
            scenario_share,
            demo,
        } => {
            let mut settings = common.settings(interval_s, duration_s, scenario_share)?;
            settings.spread_scenarios = demo.spread_scenarios;
            let target = common.target()?;
            let accounts = demo.accounts()?;
            let mut session = Session::prepare_with(&target, &settings, &accounts).await?;
            if let Some(path) = &demo.ready_file {
                write_ready(path, &session)?;
            }
            session.drive().await;
            let report = session
                .finish(Duration::from_secs_f64(common.drain_s))
                .await;
            print!("{}", report.table());
            write_report(common.report.as_ref(), &report)?;
            Ok(report.passed)
        }
        Command::Ramp {
            common,
            start_rate,
            step_rate,
            max_rate,
            step_s,
            warmup_s,
            p99_limit_ms,
        } => {
            let spec = Ramp {
                start_rate,
                step_rate,
                max_rate,
                step: Duration::from_secs_f64(
                    seconds(step_s, "--step-s")?.num_milliseconds() as f64 / 1000.0,
                ),
                warmup: Duration::from_secs_f64(warmup_s.clamp(0.0, 3600.0)),
                p99_limit_ms,
            };
            let settings = common.settings(1.0, 1.0, 0.0)?;
            let target = common.target()?;
            let report = ramp::ramp(&target, &settings, &spec).await?;
            print!("{}", report.run.table());
            match report.max_sustained_fixes_per_s {
                Some(max) => println!("  {:<28} {max:.0}", "max sustained fixes/s"),
                None => println!(
                    "  {:<28} none (the first step failed)",
                    "max sustained fixes/s"
                ),
            }
            write_report(common.report.as_ref(), &report)?;
            // Errors are how a step fails; the ramp itself fails only on its alerts.
            let r = &report.run;
            Ok(r.alerts_missing
                + r.alerts_unexpected
                + r.alerts_duplicated
                + r.alerts_wrong_officer
                == 0)
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    geoward_sim::fleet::raise_fd_limit();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("geoward-sim: cannot start the runtime: {err}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(main_async(cli)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(err) => {
            eprintln!("geoward-sim: {err:#}");
            ExitCode::from(2)
        }
    }
}
