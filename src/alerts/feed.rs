//! The node's officer-feed hub: every stored alert change, in cursor order, to every officer
//! connected to this node who may see it; and positions to those who asked for them.
//!
//! The hub reads changes from PostgreSQL (`alert_events` after its cursor) when woken — by
//! this node's evaluator, by another node through the bus, or by a one-second poll that
//! covers missed wake-ups — so what an officer receives is exactly what is stored, on every
//! node, in one order.
//!
//! Each subscriber has a bounded queue. An officer whose queue is full is not silently
//! skipped: their connection is told to close (4001) and resumes from its last cursor, which
//! replays from PostgreSQL. Positions are a live view and are dropped, not queued, when full.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use tokio::sync::{mpsc, Notify};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::evaluator::EvalReport;
use super::view::feed_frame;
use crate::eval::Input;
use crate::metrics::{Metrics, PgOp};
use crate::store::alerts;

/// Changes read per query.
const PAGE: i64 = 500;
/// The poll that catches wake-ups lost on the way.
const POLL: Duration = Duration::from_secs(1);

/// One message for an officer's connection.
#[derive(Debug, Clone)]
pub enum FeedItem {
    Alert {
        cursor: i64,
        text: Arc<str>,
        /// Server receive time of the deciding report of a newly opened alert.
        fix_received_at: Option<DateTime<Utc>>,
    },
    Position(Arc<str>),
}

/// Who a subscriber is.
#[derive(Debug, Clone, Copy)]
pub struct Scope {
    pub officer_id: Uuid,
    /// Supervisors see every caseload.
    pub sees_all: bool,
}

impl Scope {
    fn admits(&self, officer_id: Uuid) -> bool {
        self.sees_all || self.officer_id == officer_id
    }
}

struct Subscriber {
    scope: Scope,
    positions: Arc<AtomicBool>,
    tx: mpsc::Sender<FeedItem>,
    /// Cancelled when the subscriber fell behind and must resume from its cursor.
    overflow: CancellationToken,
}

/// A connection's registration; dropping it unsubscribes.
pub struct Subscription {
    hub: Arc<FeedHub>,
    id: u64,
    /// The hub's cursor when the subscription began: later changes arrive on `rx`.
    pub cursor: i64,
    pub rx: mpsc::Receiver<FeedItem>,
    pub positions: Arc<AtomicBool>,
    pub overflow: CancellationToken,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if let Ok(mut subs) = self.hub.subscribers.lock() {
            subs.remove(&self.id);
        }
    }
}

pub struct FeedHub {
    db: PgPool,
    metrics: Arc<Metrics>,
    queue: usize,
    subscribers: Mutex<HashMap<u64, Subscriber>>,
    next_id: AtomicU64,
    /// The newest change dispatched (-1 until the hub has read the starting point).
    cursor: AtomicI64,
    wake: Notify,
    started: Notify,
    /// Local subscribers watching positions.
    position_watchers: AtomicUsize,
}

impl FeedHub {
    pub fn new(db: PgPool, metrics: Arc<Metrics>, queue: usize) -> FeedHub {
        FeedHub {
            db,
            metrics,
            queue,
            subscribers: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            cursor: AtomicI64::new(-1),
            wake: Notify::new(),
            started: Notify::new(),
            position_watchers: AtomicUsize::new(0),
        }
    }

    /// Asks the hub to read new changes now.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Whether any local subscriber watches positions.
    pub fn positions_watched(&self) -> bool {
        self.position_watchers.load(Ordering::Relaxed) > 0
    }

    /// Counts a subscriber starting (`true`) or stopping to watch positions.
    pub fn watch_positions(&self, on: bool) {
        if on {
            self.position_watchers.fetch_add(1, Ordering::Relaxed);
        } else {
            self.position_watchers.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Subscribes a connection; waits until the hub knows its starting cursor.
    pub async fn subscribe(self: &Arc<Self>, scope: Scope) -> Subscription {
        loop {
            let started = self.started.notified();
            if self.cursor.load(Ordering::Acquire) >= 0 {
                break;
            }
            started.await;
        }
        let (tx, rx) = mpsc::channel(self.queue);
        let positions = Arc::new(AtomicBool::new(false));
        let overflow = CancellationToken::new();
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let cursor = {
            // The cursor is read under the lock dispatch also holds: no change falls between
            // "already dispatched" and "queued for this subscriber".
            let mut subs = self
                .subscribers
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            subs.insert(
                id,
                Subscriber {
                    scope,
                    positions: positions.clone(),
                    tx,
                    overflow: overflow.clone(),
                },
            );
            self.cursor.load(Ordering::Acquire)
        };
        Subscription {
            hub: self.clone(),
            id,
            cursor,
            rx,
            positions,
            overflow,
        }
    }

    /// Reads changes as they are stored and dispatches them, until `shutdown`.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let mut delay = Duration::from_millis(100);
        let start = loop {
            match alerts::newest_cursor(&self.db).await {
                Ok(cursor) => break cursor,
                Err(err) => {
                    tracing::warn!(error = %err, "feed hub cannot read its starting cursor");
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(delay) => {}
                    }
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
            }
        };
        self.cursor.store(start, Ordering::Release);
        self.started.notify_waiters();
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(POLL) => {}
            }
            if let Err(err) = self.catch_up().await {
                tracing::warn!(error = %err, "feed hub cannot read alert changes; retrying");
            }
        }
    }

    async fn catch_up(&self) -> Result<(), crate::store::StoreError> {
        loop {
            let after = self.cursor.load(Ordering::Acquire);
            let changes = self
                .metrics
                .store_calls
                .postgres(PgOp::FeedRead)
                .time(alerts::changes_after(&self.db, after, None, PAGE))
                .await?;
            let n = changes.len();
            for change in changes {
                let item = FeedItem::Alert {
                    cursor: change.cursor,
                    text: feed_frame(change.cursor, &change.action, &change.alert).into(),
                    fix_received_at: (change.action == "opened")
                        .then_some(change.alert.fix_received_at)
                        .flatten(),
                };
                let subs = self
                    .subscribers
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                for sub in subs.values() {
                    if !sub.scope.admits(change.alert.officer_id) {
                        continue;
                    }
                    if sub.tx.try_send(item.clone()).is_err() {
                        self.metrics.feed_overflows.inc();
                        sub.overflow.cancel();
                    }
                }
                self.cursor.store(change.cursor, Ordering::Release);
            }
            if n < PAGE as usize {
                return Ok(());
            }
        }
    }

    /// Dispatches a batch of positions published by an evaluator (a JSON array of
    /// `{"supervisee_id","officer_id","fix"}`).
    pub fn positions(&self, payload: &str) {
        if !self.positions_watched() {
            return;
        }
        let Ok(items) = serde_json::from_str::<Vec<serde_json::Value>>(payload) else {
            tracing::warn!("ignoring a malformed positions message");
            return;
        };
        let subs = self
            .subscribers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        for item in items {
            let Some(officer) = item
                .get("officer_id")
                .and_then(|v| v.as_str())
                .and_then(|v| v.parse::<Uuid>().ok())
            else {
                continue;
            };
            let text: Arc<str> = serde_json::json!({
                "type": "position",
                "supervisee_id": item.get("supervisee_id"),
                "fix": item.get("fix"),
            })
            .to_string()
            .into();
            for sub in subs.values() {
                if sub.positions.load(Ordering::Relaxed) && sub.scope.admits(officer) {
                    // A live view: a position that does not fit is simply superseded later.
                    let _ = sub.tx.try_send(FeedItem::Position(text.clone()));
                }
            }
        }
    }
}

/// The `fix` object of a position message.
pub fn position_fix(r: &EvalReport) -> Option<serde_json::Value> {
    let Input::Fix {
        seq,
        ts,
        lat,
        lon,
        acc_m,
        bat,
        strap,
    } = &r.input
    else {
        return None;
    };
    let (src, speed) = r.source.unwrap_or(("gps", None));
    Some(serde_json::json!({
        "device_id": r.device_id,
        "seq": seq,
        "ts": ts,
        "lat": lat,
        "lon": lon,
        "acc": acc_m,
        "src": src,
        "speed": speed,
        "bat": bat,
        "strap": strap,
        "received_at": r.received_at,
    }))
}
