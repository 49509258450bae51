//! Device ingest: the WebSocket endpoint devices stream to, and the group-commit writer
//! behind it.
//!
//! A report flows: socket → [`connection`] (decode with [`crate::wire`], per-connection
//! in-flight window) → bounded queue → [`writer`] (batch, commit, live state) → ack back on the
//! same connection. Every stage is bounded, so a slow PostgreSQL turns into sockets that are
//! not read from, never into memory growth.
//!
//! Shutdown ([`Ingest::drain`]): connections stop reading, wait (bounded) for their in-flight
//! reports to be acknowledged and close with 1001; then the writer commits what is queued and
//! stops.

pub mod connection;
pub mod registry;
pub mod writer;

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use tokio::sync::{mpsc, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::alerts::evaluator::EvalQueue;
use crate::config::IngestConfig;
use crate::live::devices::LiveState;
use crate::live::Live;
use crate::metrics::Metrics;
use crate::wire;
use registry::Registry;
use writer::{Pending, WriterConfig};

/// The ingest side of a node; cheap to clone.
#[derive(Clone)]
pub struct Ingest {
    inner: Arc<Inner>,
}

struct Inner {
    queue: mpsc::Sender<Pending>,
    registry: Arc<Registry>,
    connections: Arc<Semaphore>,
    limits: wire::Limits,
    config: IngestConfig,
    db: PgPool,
    metrics: Arc<Metrics>,
    /// Cancelled when the node shuts down: connections drain and close.
    shutdown: CancellationToken,
    connection_tasks: TaskTracker,
    writer_stop: CancellationToken,
    writer_tasks: TaskTracker,
}

impl Ingest {
    /// Starts the writer and the control-channel listener. `shutdown` is the node's token.
    pub fn start(
        db: PgPool,
        evaluate: EvalQueue,
        live: Live,
        live_state: LiveState,
        config: &IngestConfig,
        metrics: Arc<Metrics>,
        shutdown: CancellationToken,
    ) -> Ingest {
        let (queue, rx) = mpsc::channel(config.queue_capacity);
        let writer_stop = CancellationToken::new();
        let writer_tasks = TaskTracker::new();
        writer::spawn(
            rx,
            db.clone(),
            evaluate,
            live_state,
            metrics.clone(),
            WriterConfig {
                batch_max_reports: config.batch_max_reports,
                batch_max_wait: config.batch_max_wait,
                writers: config.writers,
                drain_timeout: config.drain_timeout,
            },
            writer_stop.clone(),
            &writer_tasks,
        );
        let registry = Arc::new(Registry::new(live));
        writer_tasks.spawn(registry.clone().listen(writer_stop.clone()));
        let limits = wire::Limits {
            max_batch: config.max_batch,
            max_future_skew: chrono::Duration::from_std(config.max_future_skew)
                .unwrap_or(chrono::Duration::minutes(5)),
            max_age: chrono::Duration::from_std(config.max_fix_age)
                .unwrap_or(chrono::Duration::days(30)),
            default_acc_m: config.default_acc_m,
        };
        Ingest {
            inner: Arc::new(Inner {
                queue,
                registry,
                connections: Arc::new(Semaphore::new(config.max_connections)),
                limits,
                config: config.clone(),
                db,
                metrics,
                shutdown,
                connection_tasks: TaskTracker::new(),
                writer_stop,
                writer_tasks,
            }),
        }
    }

    pub fn registry(&self) -> &Registry {
        &self.inner.registry
    }

    /// Waits for connections to close (they drain when the node's shutdown token is
    /// cancelled), then lets the writer commit what is queued. Both waits are bounded.
    pub async fn drain(&self) {
        let inner = &self.inner;
        inner.shutdown.cancel();
        inner.connection_tasks.close();
        let grace = inner.config.drain_timeout + Duration::from_secs(2);
        if tokio::time::timeout(grace, inner.connection_tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!("device connections did not close in time");
        }
        inner.writer_stop.cancel();
        inner.writer_tasks.close();
        if tokio::time::timeout(grace, inner.writer_tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                "the writer did not finish in time; unacknowledged reports will be resent"
            );
        }
    }
}
