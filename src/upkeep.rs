//! Background upkeep of the stores, one loop each, all stopped by the node's shutdown token:
//! - history: monthly `fixes` partitions created ahead of time, and whole months older than
//!   `history.retention` dropped (every `history.maintenance_interval`);
//! - live state: rebuilt from PostgreSQL when Redis lost its data (checked every few seconds).
//!
//! Both are idempotent, so several nodes may run them at once.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::HistoryConfig;
use crate::live::devices::LiveState;
use crate::metrics::Metrics;
use crate::store::fixes;

/// Months of partitions kept ready before and after the current one.
pub const MONTHS_BACK: u32 = 2;
pub const MONTHS_AHEAD: u32 = 3;

/// How often live state is checked for loss.
const LIVE_CHECK: Duration = Duration::from_secs(5);

/// One round of history upkeep.
pub async fn history_round(
    db: &PgPool,
    config: &HistoryConfig,
) -> Result<(), crate::store::StoreError> {
    let now = Utc::now();
    let created = fixes::ensure_partitions(db, now, MONTHS_BACK, MONTHS_AHEAD).await?;
    if created > 0 {
        tracing::info!(created, "created fix history partitions");
    }
    let retention =
        chrono::Duration::from_std(config.retention).unwrap_or(chrono::Duration::days(400));
    let dropped = fixes::drop_partitions_before(db, now - retention).await?;
    if !dropped.is_empty() {
        tracing::info!(?dropped, "dropped fix history past retention");
    }
    Ok(())
}

pub fn spawn(
    db: PgPool,
    live: LiveState,
    history: HistoryConfig,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
    tracker: &TaskTracker,
) {
    let (db2, stop) = (db.clone(), shutdown.clone());
    tracker.spawn(async move {
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(history.maintenance_interval) => {}
            }
            if let Err(err) = history_round(&db2, &history).await {
                tracing::warn!(error = %crate::api::error::chain(&err), "history upkeep failed; retrying next round");
            }
        }
    });
    tracker.spawn(async move {
        loop {
            match live.ensure_fresh(&db, Utc::now()).await {
                Ok(Some(devices)) => {
                    metrics.live_rebuilds.inc();
                    tracing::info!(devices, "rebuilt live state from history");
                }
                Ok(None) => {}
                Err(err) => tracing::debug!(error = %crate::api::error::chain(&err), "live state check failed"),
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(LIVE_CHECK) => {}
            }
        }
    });
}
