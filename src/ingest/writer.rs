//! Group commit: reports from every connection are written to PostgreSQL in batches, and each
//! report is acknowledged only after the transaction holding it has committed.
//!
//! One batcher task takes reports from the bounded queue, closing a batch at
//! `ingest.batch_max_reports` or `ingest.batch_max_wait`, whichever comes first, and hands it
//! to one of `ingest.writers` commit tasks. A failed commit is retried with backoff, holding
//! its batch (and so, through the bounded queue, the sockets) until PostgreSQL is back:
//! nothing unacknowledged is dropped while geoward runs, and nothing is acknowledged before it
//! is durable. After the commit the batch goes on to the rule engine (a bounded queue, which
//! also writes a worn device's live state, its wearer's) and an unassigned device's live
//! state in Redis is updated (best effort: the writer slot is
//! released before it; when Redis is slow the update waits for the next one, and when Redis
//! is down, or too much is waiting, live state is marked for a rebuild from history, so Redis
//! never holds up history or acks).

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::alerts::evaluator::{EvalQueue, EvalReport};
use crate::eval::Input;
use crate::live::devices::{LiveReport, LiveState};
use crate::metrics::{Metrics, PgOp};
use crate::store::fixes::{self, StoredReport};
use crate::wire::Strap;

/// Where a report's ack goes: the connection's ack channel, and its in-flight window.
#[derive(Clone)]
pub struct AckSink {
    pub acks: mpsc::UnboundedSender<u64>,
    pub in_flight: Arc<Semaphore>,
}

impl AckSink {
    fn ack(&self, seq: u64) {
        // The connection may be gone; its device will resend and be acked then.
        let _ = self.acks.send(seq);
        self.in_flight.add_permits(1);
    }
}

/// A report waiting to be written.
pub struct Pending {
    pub report: StoredReport,
    pub seq: u64,
    /// When the frame carrying it arrived (for the fix→ack latency).
    pub arrived: Instant,
    pub received_at: DateTime<Utc>,
    pub ack: AckSink,
}

/// Batch shaping and concurrency.
#[derive(Debug, Clone)]
pub struct WriterConfig {
    pub batch_max_reports: usize,
    pub batch_max_wait: Duration,
    pub writers: usize,
    /// How long a commit keeps retrying once shutdown began.
    pub drain_timeout: Duration,
}

struct Context {
    db: PgPool,
    /// Stored batches go on to the rule engine ([`crate::alerts::evaluator`]).
    evaluate: EvalQueue,
    live: LiveState,
    /// Live-state updates in flight; when all are busy (Redis slow) a batch's update is
    /// deferred to the next one instead of holding anything up.
    live_updates: Arc<Semaphore>,
    /// Live-state reports whose update found every slot busy; sent with the next update.
    deferred_live: std::sync::Mutex<Vec<LiveReport>>,
    metrics: Arc<Metrics>,
    config: WriterConfig,
    stop: CancellationToken,
}

/// Starts the batcher; it runs until `stop` is cancelled and the queue is empty.
#[allow(clippy::too_many_arguments)]
pub fn spawn(
    rx: mpsc::Receiver<Pending>,
    db: PgPool,
    evaluate: EvalQueue,
    live: LiveState,
    metrics: Arc<Metrics>,
    config: WriterConfig,
    stop: CancellationToken,
    tracker: &TaskTracker,
) {
    let context = Arc::new(Context {
        db,
        evaluate,
        live,
        live_updates: Arc::new(Semaphore::new(LIVE_UPDATES_IN_FLIGHT)),
        deferred_live: std::sync::Mutex::new(Vec::new()),
        metrics,
        config,
        stop,
    });
    let commits = tracker.clone();
    tracker.spawn(batcher(rx, context, commits));
}

/// A batch's place in the hand-off to the rule engine: after the batch before it.
///
/// Commits run concurrently and may finish out of order, but the engine must see each device's
/// reports in the order they were sent: it ignores a report older than one it has already
/// evaluated, so a buffered upload overtaken by the device's next live fix (committed in a
/// smaller, faster batch) would never be judged and its late violation never raised. The
/// batcher closes batches in arrival order, so handing them on in that order keeps every
/// device's order. Acks do not wait for this; only evaluation does.
struct Turn {
    /// Resolves when the previous batch was handed on (or its task ended without doing so).
    previous: Option<oneshot::Receiver<()>>,
    handed_on: oneshot::Sender<()>,
}

async fn batcher(mut rx: mpsc::Receiver<Pending>, context: Arc<Context>, commits: TaskTracker) {
    let writers = Arc::new(Semaphore::new(context.config.writers));
    let max = context.config.batch_max_reports;
    let mut last_turn: Option<oneshot::Receiver<()>> = None;
    loop {
        let mut batch = Vec::with_capacity(max.min(4096));
        let stopping = context.stop.is_cancelled();
        if stopping {
            // Drain whatever is left without waiting for more.
            while batch.len() < max {
                match rx.try_recv() {
                    Ok(item) => batch.push(item),
                    Err(_) => break,
                }
            }
            if batch.is_empty() {
                return;
            }
        } else {
            tokio::select! {
                received = rx.recv_many(&mut batch, max) => {
                    if received == 0 {
                        return;
                    }
                }
                _ = context.stop.cancelled() => continue,
            }
            let deadline = tokio::time::Instant::now() + context.config.batch_max_wait;
            while batch.len() < max {
                let room = max - batch.len();
                match tokio::time::timeout_at(deadline, rx.recv_many(&mut batch, room)).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
            }
        }
        context.metrics.ingest_queue_depth.set(rx.len() as i64);
        let Ok(permit) = writers.clone().acquire_owned().await else {
            return;
        };
        let context = context.clone();
        let (handed_on, next) = oneshot::channel();
        let turn = Turn {
            previous: last_turn.replace(next),
            handed_on,
        };
        commits.spawn(async move {
            commit(&context, batch, permit, turn).await;
        });
    }
}

/// A stored report of a worn device, for the rule engine.
fn eval_report(p: &Pending) -> Option<EvalReport> {
    let r = &p.report;
    let supervisee_id = r.supervisee_id?;
    let seq = u64::try_from(r.seq).ok()?;
    let bat = r.bat.and_then(|b| u8::try_from(b).ok());
    let strap = r.strap.map(|s| {
        if s == "open" {
            Strap::Open
        } else {
            Strap::Closed
        }
    });
    let input = match r.position {
        Some((lat, lon, acc, _, _)) => Input::Fix {
            seq,
            ts: r.ts,
            lat,
            lon,
            acc_m: f64::from(acc),
            bat,
            strap,
        },
        None => Input::Status {
            seq,
            ts: r.ts,
            bat,
            strap,
        },
    };
    Some(EvalReport {
        supervisee_id,
        device_id: r.device_id,
        input,
        received_at: p.received_at,
        arrived: p.arrived,
        source: r.position.map(|(_, _, _, src, speed)| (src, speed)),
    })
}

/// Keeps a live-state update for the next one when Redis is slow (every slot busy); beyond
/// [`DEFERRED_LIVE_MAX`] reports, gives up and marks live state for a rebuild from history.
fn defer_live(context: &Context, mut live: Vec<LiveReport>) {
    let overflow = match context.deferred_live.lock() {
        Ok(mut deferred) if deferred.len() + live.len() <= DEFERRED_LIVE_MAX => {
            deferred.append(&mut live);
            false
        }
        Ok(mut deferred) => {
            deferred.clear();
            true
        }
        Err(_) => true,
    };
    let outcome = if overflow {
        context.live.mark_stale();
        "live_state_skipped"
    } else {
        "live_state_deferred"
    };
    context
        .metrics
        .store_errors
        .with_label_values(&["redis", outcome])
        .inc();
}

/// Live-state reports held for the next update at most (about 10 MB).
const DEFERRED_LIVE_MAX: usize = 50_000;

/// Live-state updates allowed in flight at once.
const LIVE_UPDATES_IN_FLIGHT: usize = 8;

/// Stores a batch, acks it, releases the writer slot, hands it to the rule engine in its turn,
/// then updates live state.
async fn commit(
    context: &Context,
    batch: Vec<Pending>,
    writer_slot: tokio::sync::OwnedSemaphorePermit,
    turn: Turn,
) {
    let rows: Vec<StoredReport> = batch.iter().map(|p| p.report.clone()).collect();
    context.metrics.batch_size.observe(rows.len() as f64);
    let mut delay = Duration::from_millis(50);
    let mut stopping_since: Option<Instant> = None;
    let inserted = loop {
        let started = Instant::now();
        let result = fixes::insert_batch(&context.db, &rows).await;
        context
            .metrics
            .store_calls
            .postgres(PgOp::InsertFixes)
            .record(started, &result);
        match result {
            Ok(new) => {
                context
                    .metrics
                    .commit_duration
                    .observe(started.elapsed().as_secs_f64());
                break Some(new);
            }
            Err(err) => {
                tracing::warn!(error = %crate::api::error::chain(&err), reports = rows.len(), retry_in = ?delay,
                    "cannot store a batch; holding it and retrying");
                if context.stop.is_cancelled() {
                    let since = *stopping_since.get_or_insert_with(Instant::now);
                    if since.elapsed() >= context.config.drain_timeout {
                        break None;
                    }
                }
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    };
    let Some(new) = inserted else {
        tracing::error!(
            reports = rows.len(),
            "shutting down with an uncommitted batch; devices will resend it"
        );
        return;
    };
    context.metrics.reports_stored.inc_by(new.len() as u64);
    context
        .metrics
        .reports_duplicate
        .inc_by((rows.len() - new.len()) as u64);
    for pending in &batch {
        pending.ack.ack(pending.seq);
        context
            .metrics
            .fix_ack_duration
            .observe(pending.arrived.elapsed().as_secs_f64());
    }
    context.metrics.reports_acked.inc_by(batch.len() as u64);
    // History and acks are done: the next batch may commit while live state is updated.
    drop(writer_slot);
    // Resends are evaluated too: the engine ignores what it has seen, and a report stored
    // just before a crash (never acked, so resent) is evaluated now.
    let evaluate: Vec<EvalReport> = batch.iter().filter_map(eval_report).collect();
    if let Some(previous) = turn.previous {
        let _ = previous.await; // an error: that batch's task ended; its turn is over either way
    }
    if !evaluate.is_empty() && context.evaluate.send(evaluate).await.is_err() {
        tracing::error!("the evaluator has stopped; a stored batch was not evaluated");
    }
    let _ = turn.handed_on.send(());
    // A worn device's live state is its wearer's, written by the evaluator with their rule
    // state; the writer keeps only devices worn by nobody.
    let mut live: Vec<LiveReport> = batch
        .iter()
        .filter(|p| p.report.supervisee_id.is_none())
        .map(|p| LiveReport {
            device_id: p.report.device_id,
            supervisee_id: p.report.supervisee_id,
            received_at: p.received_at,
            ts: p.report.ts,
            seq: p.report.seq,
            position: p.report.position,
            bat: p.report.bat,
            strap: p.report.strap,
        })
        .collect();
    let Ok(_live_slot) = context.live_updates.clone().try_acquire_owned() else {
        defer_live(context, live);
        return;
    };
    // Updates deferred while every slot was busy go with this one (the script compares device
    // times, so their order does not matter).
    if let Ok(mut deferred) = context.deferred_live.lock() {
        live.append(&mut deferred);
    }
    // A failure is counted with the Redis call (`store_errors_total{store="redis"}`).
    if let Err(err) = context.live.apply(&live).await {
        context.live.mark_stale();
        tracing::warn!(error = %crate::api::error::chain(&err), "cannot update live state; it is rebuilt when Redis is back");
    }
}
