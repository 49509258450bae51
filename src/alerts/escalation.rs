//! Escalation: an alert still `open` (nobody acknowledged it) when its severity's
//! `alerts.escalate_after` has passed gets an `escalated` event, which reaches supervisors on
//! the feed as well as the caseload's officer.
//!
//! Each alert stores its `escalate_at` when it opens; every `alerts.escalation_interval` each
//! node runs one `UPDATE ... RETURNING` with the node's clock, so an alert escalates once
//! whatever the number of nodes, at most one interval late.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::Context;
use crate::metrics::PgOp;
use crate::store::alerts;

pub async fn run(context: Arc<Context>, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(context.config.escalation_interval) => {}
        }
        let due = alerts::escalate_due(&context.db, context.clock.now());
        match context
            .metrics
            .store_calls
            .postgres(PgOp::Escalation)
            .time(due)
            .await
        {
            Ok(changes) if !changes.is_empty() => {
                tracing::warn!(alerts = changes.len(), "escalated unacknowledged alerts");
                context.record_changes(&changes);
                context.announce(&changes).await;
            }
            Ok(_) => {}
            Err(err) => {
                tracing::warn!(error = %crate::api::error::chain(&err), "escalation check failed; retrying")
            }
        }
    }
}
