//! Worker processes: a fleet too big for one process (file descriptors, ephemeral ports)
//! runs its devices in children of the same binary (`geoward-sim worker`), each an in-process
//! fleet over a contiguous range of device indices.
//!
//! Protocol, one JSON object per line; the child's stderr is inherited.
//! - parent → child: first `{"config": FleetConfig, "jobs": [DeviceJob, ...]}` (the child's
//!   config has `workers: 0` and worker `w`'s source IP `source_ips[w % len]`), then any of
//!   `{"interval_ms": N}` and finally `{"finish": {"drain_ms": N}}`;
//! - child → parent: `{"snapshot": Snapshot, "window": Histogram}` once its devices are
//!   connected and then about once a second (the window holds the latencies since its previous
//!   line), and at the end `{"stats": FleetStats}`; then it exits 0.
//!
//! # Invariants
//! - a worker's latencies reach the parent's totals exactly once: from its final stats, or, if
//!   it died, from the windows it sent;
//! - a child that dies (EOF on its stdout before its stats) is counted once as `worker_lost`,
//!   and the parent goes on with the others; a child whose parent goes away exits.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::{instant_at, raise_fd_limit, DeviceJob, Fleet, FleetConfig, FleetStats, Snapshot};
use crate::device::{lock, Target};
use crate::stats::Histogram;

/// Beyond `end + drain`, how long the parent waits for a worker's stats before giving it up.
const STATS_GRACE: Duration = Duration::from_secs(30);

/// The first line to a worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct WorkerStart {
    pub config: FleetConfig,
    pub jobs: Vec<DeviceJob>,
}

/// Every later line to a worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ToWorker {
    /// `{"interval_ms": 66.7}`: the new interval in (fractional) milliseconds.
    IntervalMs(f64),
    /// `{"finish": {"drain_ms": 10000}}`.
    Finish { drain_ms: u64 },
}

/// A line from a worker: progress (`snapshot` and `window`) or the end (`stats`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct FromWorker {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<Snapshot>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<Histogram>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stats: Option<FleetStats>,
}

/// Splits jobs into at most `workers` contiguous index ranges whose sizes differ by at most
/// one (no empty share).
pub(crate) fn split_jobs(mut jobs: Vec<DeviceJob>, workers: usize) -> Vec<Vec<DeviceJob>> {
    jobs.sort_by_key(|j| j.index);
    let workers = workers.clamp(1, jobs.len().max(1));
    let (base, extra) = (jobs.len() / workers, jobs.len() % workers);
    let mut rest = jobs.into_iter();
    (0..workers)
        .map(|w| rest.by_ref().take(base + usize::from(w < extra)).collect())
        .filter(|share: &Vec<DeviceJob>| !share.is_empty())
        .collect()
}

/// Worker `w`'s config: in-process, with source IP `source_ips[w % len]` (if any).
pub(crate) fn worker_config(config: &FleetConfig, w: usize) -> FleetConfig {
    let source_ips = if config.source_ips.is_empty() {
        Vec::new()
    } else {
        vec![config.source_ips[w % config.source_ips.len()]]
    };
    FleetConfig {
        workers: 0,
        source_ips,
        ..config.clone()
    }
}

/// One JSON line (with its newline).
pub(crate) fn line<T: Serialize>(value: &T) -> String {
    let mut s = serde_json::to_string(value).unwrap_or_else(|_| "{}".to_owned());
    s.push('\n');
    s
}

/// `geoward-sim worker`: runs the share of devices its parent sends on stdin (see the module
/// docs) and reports on stdout.
pub async fn worker_main() -> anyhow::Result<()> {
    raise_fd_limit();
    // A plain thread (not tokio's blocking pool), so that a read pending at exit cannot hold
    // the runtime's shutdown.
    let (tx, mut lines) = mpsc::unbounded_channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::stdin().lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let first = lines
        .recv()
        .await
        .context("worker: no start line on stdin")?;
    let WorkerStart { mut config, jobs } =
        serde_json::from_str(&first).context("worker: bad start line")?;
    config.workers = 0;
    let fleet = Fleet::start(config, jobs).await?;
    let mut out = tokio::io::stdout();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let drain = loop {
        tokio::select! {
            _ = tick.tick() => {
                let progress = FromWorker {
                    snapshot: Some(fleet.snapshot()),
                    window: Some(fleet.take_window()),
                    stats: None,
                };
                out.write_all(line(&progress).as_bytes()).await?;
                out.flush().await?;
            }
            next = lines.recv() => match next {
                // The parent is gone: nobody to report to.
                None => return Ok(()),
                Some(text) => match serde_json::from_str::<ToWorker>(&text) {
                    Ok(ToWorker::IntervalMs(ms)) if ms.is_finite() && ms > 0.0 => {
                        fleet.set_interval(Duration::from_secs_f64(ms / 1000.0));
                    }
                    Ok(ToWorker::Finish { drain_ms }) => break Duration::from_millis(drain_ms),
                    _ => eprintln!("geoward-sim worker: ignoring line {text:?}"),
                },
            },
        }
    };
    let stats = fleet.finish(drain).await;
    let done = FromWorker {
        stats: Some(stats),
        ..FromWorker::default()
    };
    out.write_all(line(&done).as_bytes()).await?;
    out.flush().await?;
    Ok(())
}

/// What the parent knows of its workers, updated by one reader task per worker.
#[derive(Default)]
struct Known {
    /// Each worker's last snapshot.
    snapshots: Vec<Snapshot>,
    /// Each worker's windows so far (its latencies if it dies before its stats).
    windows: Vec<Histogram>,
    /// Latencies since the last `take_window`.
    window: Histogram,
    /// Workers that ended without their stats.
    lost: Vec<bool>,
}

impl Known {
    fn lost(&self) -> u64 {
        self.lost.iter().filter(|&&l| l).count() as u64
    }
}

/// A running worker process.
struct Worker {
    child: Child,
    to: mpsc::UnboundedSender<String>,
    stats: oneshot::Receiver<FleetStats>,
}

/// The parent's side: the fleet spread over workers.
pub(crate) struct Workers {
    workers: Vec<Worker>,
    known: Arc<Mutex<Known>>,
    end: Instant,
}

impl Workers {
    pub async fn start(config: &FleetConfig, jobs: Vec<DeviceJob>) -> anyhow::Result<Workers> {
        // A bad URL fails here rather than in every worker.
        Target::resolve(&config.ws_url).await?;
        let exe = std::env::current_exe().context("finding this binary to run workers")?;
        let shares = split_jobs(jobs, config.workers);
        let known = Arc::new(Mutex::new(Known {
            snapshots: vec![Snapshot::default(); shares.len()],
            windows: vec![Histogram::new(); shares.len()],
            lost: vec![false; shares.len()],
            window: Histogram::new(),
        }));
        let mut workers = Vec::with_capacity(shares.len());
        let mut ready = Vec::with_capacity(shares.len());
        for (w, jobs) in shares.into_iter().enumerate() {
            let mut child = Command::new(&exe)
                .arg("worker")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .kill_on_drop(true)
                .spawn()
                .with_context(|| format!("starting worker {w} ({})", exe.display()))?;
            let (stdin, stdout) = match (child.stdin.take(), child.stdout.take()) {
                (Some(stdin), Some(stdout)) => (stdin, stdout),
                _ => anyhow::bail!("worker {w} has no stdin/stdout"),
            };
            let start = line(&WorkerStart {
                config: worker_config(config, w),
                jobs,
            });
            let (to, rx) = mpsc::unbounded_channel();
            let _ = to.send(start);
            tokio::spawn(write_lines(stdin, rx));
            let (ready_tx, ready_rx) = oneshot::channel();
            let (stats_tx, stats) = oneshot::channel();
            tokio::spawn(read_lines(w, stdout, known.clone(), ready_tx, stats_tx));
            ready.push(ready_rx);
            workers.push(Worker { child, to, stats });
        }
        for r in ready {
            // Err: the worker died before connecting (counted as lost by its reader).
            let _ = r.await;
        }
        Ok(Workers {
            workers,
            known,
            end: instant_at(config.end),
        })
    }

    pub fn set_interval(&self, interval: Duration) {
        let msg = line(&ToWorker::IntervalMs(interval.as_secs_f64() * 1000.0));
        for worker in &self.workers {
            let _ = worker.to.send(msg.clone());
        }
    }

    pub fn snapshot(&self) -> Snapshot {
        let known = lock(&self.known);
        let mut sum = Snapshot {
            errors: known.lost(),
            ..Snapshot::default()
        };
        for s in &known.snapshots {
            sum.connected += s.connected;
            sum.max_connected += s.max_connected;
            sum.sent += s.sent;
            sum.acked += s.acked;
            sum.errors += s.errors;
            sum.outstanding += s.outstanding;
        }
        sum
    }

    pub fn take_window(&self) -> Histogram {
        std::mem::take(&mut lock(&self.known).window)
    }

    pub async fn finish(self, drain: Duration) -> FleetStats {
        let msg = line(&ToWorker::Finish {
            drain_ms: u64::try_from(drain.as_millis()).unwrap_or(u64::MAX),
        });
        for worker in &self.workers {
            let _ = worker.to.send(msg.clone());
        }
        let deadline = self.end.max(Instant::now()) + drain + STATS_GRACE;
        let mut total = FleetStats::default();
        for (w, mut worker) in self.workers.into_iter().enumerate() {
            match tokio::time::timeout_at(deadline, &mut worker.stats).await {
                Ok(Ok(stats)) => total.merge(&stats),
                outcome => {
                    if outcome.is_err() {
                        eprintln!("geoward-sim: worker {w} sent no stats in time; killing it");
                    }
                    let _ = worker.child.start_kill();
                    let mut known = lock(&self.known);
                    known.lost[w] = true;
                    known.snapshots[w].connected = 0;
                    let last = known.snapshots[w];
                    total.merge(&FleetStats {
                        sent: last.sent,
                        acked: last.acked,
                        unacked: last.outstanding,
                        max_connected: last.max_connected,
                        ack_latency: known.windows[w].clone(),
                        ..FleetStats::default()
                    });
                }
            }
            drop(worker.to);
            if tokio::time::timeout(Duration::from_secs(5), worker.child.wait())
                .await
                .is_err()
            {
                let _ = worker.child.kill().await;
            }
        }
        let lost = lock(&self.known).lost();
        if lost > 0 {
            *total.errors.entry("worker_lost".into()).or_default() += lost;
        }
        total
    }
}

/// Writes queued lines to a worker's stdin; closing the channel closes its stdin.
async fn write_lines(
    mut stdin: tokio::process::ChildStdin,
    mut rx: mpsc::UnboundedReceiver<String>,
) {
    while let Some(text) = rx.recv().await {
        if stdin.write_all(text.as_bytes()).await.is_err() || stdin.flush().await.is_err() {
            break;
        }
    }
}

/// Reads a worker's lines into `known`; signals `ready` at its first line and hands over its
/// stats. EOF before the stats counts the worker as lost.
async fn read_lines(
    w: usize,
    stdout: tokio::process::ChildStdout,
    known: Arc<Mutex<Known>>,
    ready: oneshot::Sender<()>,
    stats: oneshot::Sender<FleetStats>,
) {
    let mut ready = Some(ready);
    let mut lines = BufReader::new(stdout).lines();
    while let Ok(Some(text)) = lines.next_line().await {
        let Ok(msg) = serde_json::from_str::<FromWorker>(&text) else {
            eprintln!("geoward-sim: worker {w} wrote a line that is not protocol: {text:.200}");
            continue;
        };
        if let Some(done) = msg.stats {
            let _ = stats.send(done);
            return;
        }
        {
            let mut known = lock(&known);
            if let Some(snapshot) = msg.snapshot {
                known.snapshots[w] = snapshot;
            }
            if let Some(window) = msg.window {
                known.windows[w].merge(&window);
                known.window.merge(&window);
            }
        }
        if let Some(ready) = ready.take() {
            let _ = ready.send(());
        }
    }
    eprintln!("geoward-sim: worker {w} ended without its stats");
    let mut known = lock(&known);
    known.lost[w] = true;
    known.snapshots[w].connected = 0;
}
