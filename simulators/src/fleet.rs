//! Many devices at once: connects every [`DeviceJob`]'s tag, runs each as a task
//! ([`crate::device`]) on one shared schedule, and sums their counters; for big runs, spreads
//! them over worker processes ([`worker`]) that report back over JSON lines.
//!
//! # Invariants
//! - device `index` first ticks at [`first_tick`] `= start + index / devices_total × interval`
//!   (phases spread evenly over one interval; the planner's expectation windows assume exactly
//!   this), then every interval (read live: [`Fleet::set_interval`]) while before `end`;
//! - no global lock on a device's hot path: counters are atomics, latencies go to one of
//!   32 sharded histograms;
//! - [`Fleet::finish`] always returns: devices get until `end + drain` for their acks, and
//!   whatever is still running a few seconds later is aborted; a lost worker is counted as
//!   `worker_lost`, not waited for.
//!
//! One process holds about 20,000 sockets here (the hard `RLIMIT_NOFILE` is 20,000; see
//! [`raise_fd_limit`]), so for big runs choose `workers = ceil(devices / 15,000)`, and give
//! several `source_ips` beyond about 28,000 connections to one server address (ephemeral
//! ports per source address).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::task::{AbortHandle, JoinHandle};
use tokio::time::Instant;

pub use crate::device::DeviceJob;
use crate::device::{self, lock, ConnectError, Counters, Link, Schedule, Target};
use crate::stats::Histogram;

pub mod worker;

pub use worker::worker_main;

/// Connection attempts per device at the start: the first and up to 5 retries.
const CONNECT_ATTEMPTS: u32 = 6;
/// After the drain deadline, how long closing may take before tasks are aborted.
const CLOSE_GRACE: Duration = Duration::from_secs(4);

/// What a fleet runs against and when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FleetConfig {
    /// `ws://HOST:PORT/v1/device/ws`.
    pub ws_url: String,
    /// Tick 0 of device 0.
    pub start: DateTime<Utc>,
    /// No tick at or after this.
    pub end: DateTime<Utc>,
    /// Time between a device's ticks at the start (see [`Fleet::set_interval`]).
    pub interval: Duration,
    /// Devices in the whole run (all workers): spreads the phases.
    pub devices_total: usize,
    /// Worker processes; 0 runs every device in this process.
    pub workers: usize,
    /// Source addresses to connect from (round-robin over devices, or one per worker); empty
    /// for the OS default.
    pub source_ips: Vec<IpAddr>,
    /// WebSocket handshakes in flight at once while starting.
    pub connect_concurrency: usize,
}

/// Live totals, cheap to take (atomics): for a progress line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Open connections now.
    pub connected: u64,
    /// Most connections open at once (with workers: the sum of each worker's maximum).
    pub max_connected: u64,
    /// Reports written for the first time (resends not counted).
    pub sent: u64,
    /// Reports acknowledged, each seq once.
    pub acked: u64,
    /// Every count in [`FleetStats::errors`] so far.
    pub errors: u64,
    /// Reports produced and not yet acknowledged or rejected.
    pub outstanding: u64,
}

/// The totals of a finished fleet.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FleetStats {
    /// Reports written for the first time (resends not counted).
    pub sent: u64,
    /// Reports acknowledged, each seq once.
    pub acked: u64,
    /// Reports still unacknowledged (and not rejected) when the devices ended, including any
    /// produced while disconnected and never written.
    pub unacked: u64,
    /// By kind: error frame codes as the server sends them (`invalid_ts`, ...); `socket_*`
    /// (lost connections: `socket_eof`, `socket_reset`, ...); `connect_*` (failed connection
    /// attempts, each attempt: `connect_refused`, `connect_http_401`, ...); `bad_frame`
    /// (unparseable server frames); `backpressure` (fixes not sent because
    /// [`device::MAX_OUTSTANDING`] were unacked); `buffer_overflow`; `ticks_skipped` (the
    /// process fell more than an interval behind); `worker_lost`.
    pub errors: BTreeMap<String, u64>,
    /// Close frames received from the server, by code.
    pub closes: BTreeMap<u16, u64>,
    pub max_connected: u64,
    /// Devices given up at the start after every connection attempt failed.
    pub connect_failures: u64,
    /// Successful reconnections after a lost connection.
    pub reconnects: u64,
    /// Fix→ack latency of every acknowledged report, µs.
    pub ack_latency: Histogram,
}

impl FleetStats {
    /// Adds another process's totals (max_connected adds up: the processes run side by side).
    pub fn merge(&mut self, other: &FleetStats) {
        self.sent += other.sent;
        self.acked += other.acked;
        self.unacked += other.unacked;
        for (k, v) in &other.errors {
            *self.errors.entry(k.clone()).or_default() += v;
        }
        for (k, v) in &other.closes {
            *self.closes.entry(*k).or_default() += v;
        }
        self.max_connected += other.max_connected;
        self.connect_failures += other.connect_failures;
        self.reconnects += other.reconnects;
        self.ack_latency.merge(&other.ack_latency);
    }
}

/// When device `index` of `devices_total` first ticks: `start + index / devices_total ×
/// interval`, to the nanosecond (integer arithmetic).
pub fn first_tick(
    start: DateTime<Utc>,
    index: usize,
    devices_total: usize,
    interval: Duration,
) -> DateTime<Utc> {
    start + chrono::Duration::from_std(phase(index, devices_total, interval)).unwrap_or_default()
}

fn phase(index: usize, devices_total: usize, interval: Duration) -> Duration {
    let ns = interval.as_nanos() * index as u128 / devices_total.max(1) as u128;
    Duration::from_nanos(u64::try_from(ns).unwrap_or(u64::MAX))
}

/// Raises this process's soft `RLIMIT_NOFILE` to its hard limit and returns the soft limit now
/// in force (0 if it cannot be read). Every socket is a descriptor: about 20,000 here.
#[allow(clippy::unnecessary_cast)] // rlim_t is not u64 everywhere
pub fn raise_fd_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed by pointer.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 0;
        }
        if limit.rlim_cur < limit.rlim_max {
            let want = if limit.rlim_max == libc::RLIM_INFINITY {
                1 << 20
            } else {
                limit.rlim_max
            };
            let raised = libc::rlimit {
                rlim_cur: want,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                return want as u64;
            }
        }
    }
    limit.rlim_cur as u64
}

/// The monotonic instant of a wall-clock time (in the past: before now).
pub(crate) fn instant_at(t: DateTime<Utc>) -> Instant {
    let (now, wall) = (Instant::now(), Utc::now());
    match (t - wall).to_std() {
        Ok(ahead) => now + ahead,
        Err(_) => {
            let behind = (wall - t).to_std().unwrap_or_default();
            now.checked_sub(behind).unwrap_or(now)
        }
    }
}

/// A running fleet of devices, in this process or spread over workers.
pub struct Fleet {
    inner: Inner,
}

enum Inner {
    Local(Local),
    Workers(worker::Workers),
}

impl Fleet {
    /// Connects every job's device (bounded concurrency; a connect failure is retried with
    /// backoff up to 5 times, then counted in `connect_failures` and that device is given up),
    /// then returns; devices start ticking at their first tick. With `workers > 0`, returns
    /// once every worker has connected its share (or died).
    pub async fn start(config: FleetConfig, jobs: Vec<DeviceJob>) -> anyhow::Result<Fleet> {
        raise_fd_limit();
        anyhow::ensure!(config.devices_total > 0, "devices_total must be > 0");
        anyhow::ensure!(!config.interval.is_zero(), "interval must be > 0");
        let inner = if config.workers == 0 {
            Inner::Local(Local::start(&config, jobs).await?)
        } else {
            Inner::Workers(worker::Workers::start(&config, jobs).await?)
        };
        Ok(Fleet { inner })
    }

    /// Changes every device's interval (all workers); each device's next tick is its last tick
    /// plus the new interval.
    pub fn set_interval(&self, interval: Duration) {
        match &self.inner {
            Inner::Local(local) => {
                local.interval.send_replace(interval);
            }
            Inner::Workers(workers) => workers.set_interval(interval),
        }
    }

    /// Stops every device now, before the planned end (the ramp, after its last step): each
    /// device's next tick moves past the end, so it drains its acks; [`finish`](Self::finish)
    /// then no longer waits for the planned end.
    pub fn stop(&self) {
        self.set_interval(STOPPED);
    }

    /// Live totals (with workers: as of each worker's last report, about a second old).
    pub fn snapshot(&self) -> Snapshot {
        match &self.inner {
            Inner::Local(local) => local.snapshot(),
            Inner::Workers(workers) => workers.snapshot(),
        }
    }

    /// Ack latencies recorded since the previous call, merged over workers.
    pub fn take_window(&self) -> Histogram {
        match &self.inner {
            Inner::Local(local) => local.take_window(),
            Inner::Workers(workers) => workers.take_window(),
        }
    }

    /// Waits until `end` has passed, gives devices up to `drain` for their outstanding acks,
    /// closes everything and returns the totals.
    pub async fn finish(self, drain: Duration) -> FleetStats {
        match self.inner {
            Inner::Local(local) => local.finish(drain).await,
            Inner::Workers(workers) => workers.finish(drain).await,
        }
    }
}

/// The interval that stops devices ([`Fleet::stop`]): longer than any run (`plan` caps runs at
/// 12 hours).
pub const STOPPED: Duration = Duration::from_secs(7 * 24 * 3600);

/// Devices in this process.
struct Local {
    counters: Arc<Counters>,
    interval: watch::Sender<Duration>,
    drain: watch::Sender<Option<Instant>>,
    tasks: Vec<JoinHandle<()>>,
    end: Instant,
    /// Latencies taken out of the shards so far (by `take_window`).
    taken: Mutex<Histogram>,
}

impl Local {
    async fn start(config: &FleetConfig, jobs: Vec<DeviceJob>) -> anyhow::Result<Local> {
        let target = Arc::new(Target::resolve(&config.ws_url).await?);
        let counters = Arc::new(Counters::new());
        let (interval, interval_rx) = watch::channel(config.interval);
        let (drain, drain_rx) = watch::channel(None);
        let (start, end) = (instant_at(config.start), instant_at(config.end));
        let spawned: Vec<Option<JoinHandle<()>>> = futures_util::stream::iter(jobs)
            .map(|job| {
                let source = (!config.source_ips.is_empty())
                    .then(|| config.source_ips[job.index % config.source_ips.len()]);
                let link = Link {
                    target: target.clone(),
                    source,
                    counters: counters.clone(),
                };
                let schedule = Schedule {
                    first_tick: start + phase(job.index, config.devices_total, config.interval),
                    end,
                    interval: interval_rx.clone(),
                    drain: drain_rx.clone(),
                };
                async move {
                    let ws = connect_with_retries(&link, &job.token).await?;
                    Some(tokio::spawn(device::run(ws, job, link, schedule)))
                }
            })
            .buffer_unordered(config.connect_concurrency.max(1))
            .collect()
            .await;
        Ok(Local {
            counters,
            interval,
            drain,
            tasks: spawned.into_iter().flatten().collect(),
            end,
            taken: Mutex::new(Histogram::new()),
        })
    }

    fn snapshot(&self) -> Snapshot {
        let c = &self.counters;
        Snapshot {
            connected: c.connected.load(Ordering::Relaxed),
            max_connected: c.max_connected.load(Ordering::Relaxed),
            sent: c.sent.load(Ordering::Relaxed),
            acked: c.acked.load(Ordering::Relaxed),
            errors: c.errors_total.load(Ordering::Relaxed),
            outstanding: c.outstanding.load(Ordering::Relaxed),
        }
    }

    fn take_window(&self) -> Histogram {
        let window = self.counters.take_latencies();
        lock(&self.taken).merge(&window);
        window
    }

    async fn finish(mut self, drain: Duration) -> FleetStats {
        if *self.interval.borrow() < STOPPED {
            tokio::time::sleep_until(self.end).await;
        }
        let deadline = Instant::now() + drain;
        self.drain.send_replace(Some(deadline));
        let tasks = std::mem::take(&mut self.tasks);
        let aborts: Vec<AbortHandle> = tasks.iter().map(JoinHandle::abort_handle).collect();
        let all = futures_util::future::join_all(tasks);
        if tokio::time::timeout_at(deadline + CLOSE_GRACE, all)
            .await
            .is_err()
        {
            aborts.iter().for_each(AbortHandle::abort);
        }
        let c = &self.counters;
        let mut ack_latency = std::mem::take(&mut *lock(&self.taken));
        ack_latency.merge(&c.take_latencies());
        FleetStats {
            sent: c.sent.load(Ordering::Relaxed),
            acked: c.acked.load(Ordering::Relaxed),
            unacked: c.outstanding.load(Ordering::Relaxed),
            errors: c.errors(),
            closes: c.closes(),
            max_connected: c.max_connected.load(Ordering::Relaxed),
            connect_failures: c.connect_failures.load(Ordering::Relaxed),
            reconnects: c.reconnects.load(Ordering::Relaxed),
            ack_latency,
        }
    }
}

impl Drop for Local {
    /// A fleet dropped without `finish` stops its devices.
    fn drop(&mut self) {
        self.tasks.iter().for_each(JoinHandle::abort);
    }
}

/// The first connection of a device: up to [`CONNECT_ATTEMPTS`] attempts, 100 ms backoff
/// doubling (jittered); none after a refused token. `None` (counted) if all fail.
async fn connect_with_retries(link: &Link, token: &str) -> Option<device::Ws> {
    let mut backoff = Duration::from_millis(100);
    for attempt in 1..=CONNECT_ATTEMPTS {
        match link.target.connect(token, link.source).await {
            Ok(ws) => return Some(ws),
            Err(ConnectError { kind, fatal }) => {
                link.counters.error(&kind, 1);
                if fatal || attempt == CONNECT_ATTEMPTS {
                    break;
                }
            }
        }
        let jittered = backoff.mul_f64(0.5 + rand::random::<f64>() * 0.5);
        tokio::time::sleep(jittered).await;
        backoff *= 2;
    }
    link.counters
        .connect_failures
        .fetch_add(1, Ordering::Relaxed);
    None
}

#[cfg(test)]
mod tests;
