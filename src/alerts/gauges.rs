//! What officers have on their plate, as metrics: open and unacknowledged alerts by severity,
//! the age of the oldest unacknowledged one, and the time officers take to acknowledge.
//!
//! The gauges (`geoward_alerts_open`, `geoward_alerts_unacknowledged`,
//! `geoward_alerts_oldest_unacknowledged_age_seconds`, all `{severity}`) are **agency-wide**:
//! each node refreshes them from PostgreSQL with one grouped query
//! ([`crate::store::alerts::unresolved_by_severity`]) every [`REFRESH`], and sooner (at most
//! once per [`MIN_GAP`]) after any node stored an alert change (its own, or another's
//! announced on the bus). Every node therefore reports the same values; dashboards and rules
//! take `max()` over nodes, never `sum()`. "Open" means
//! not yet resolved (acknowledged ones included); "unacknowledged" means status `open`. Ages
//! come from the node's [`crate::clock::Clock`]. A failed refresh keeps the last values and is
//! counted as a store error (`operation="alert_gauges"`).
//!
//! The time to acknowledge (`geoward_alert_acknowledge_duration_seconds{severity}`) is observed
//! on the node where an officer acknowledges: from the alert opening to its first
//! acknowledgement, which resolving an unacknowledged alert also is.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::Context;
use crate::metrics::{labels, Metrics, PgOp};
use crate::store::alerts::{self as alert_store, Alert, SeverityCounts};

/// How often the gauges are refreshed without any change on this node.
pub const REFRESH: Duration = Duration::from_secs(15);
/// The least time between two refreshes.
pub const MIN_GAP: Duration = Duration::from_secs(1);

/// Wakes the refresher when this node stored alert changes.
#[derive(Debug, Default)]
pub struct GaugeRefresh {
    changed: Notify,
}

impl GaugeRefresh {
    /// Asks for a refresh soon (a wake-up while one runs is kept for after it).
    pub fn changed(&self) {
        self.changed.notify_one();
    }
}

/// Refreshes the gauges until `shutdown`: at once, then every [`REFRESH`] or after a change.
pub async fn run(context: Arc<Context>, shutdown: CancellationToken) {
    loop {
        // Raced against shutdown: a hung PostgreSQL must not hold up the node's exit.
        let refreshed = tokio::select! {
            _ = shutdown.cancelled() => return,
            refreshed = refresh(&context) => refreshed,
        };
        if let Err(err) = refreshed {
            tracing::warn!(error = %crate::api::error::chain(&err), "cannot refresh the alert gauges; keeping the last values");
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(MIN_GAP) => {}
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(REFRESH.saturating_sub(MIN_GAP)) => {}
            _ = context.gauges.changed.notified() => {}
        }
    }
}

/// One refresh: one query, then every severity's gauges set (zero when it has no alert).
pub async fn refresh(context: &Context) -> Result<(), crate::store::StoreError> {
    let rows = context
        .metrics
        .store_calls
        .postgres(PgOp::AlertGauges)
        .time(alert_store::unresolved_by_severity(&context.db))
        .await?;
    set(&context.metrics, &rows, context.clock.now());
    Ok(())
}

/// Sets the gauges from the query's rows.
fn set(metrics: &Metrics, rows: &[SeverityCounts], now: DateTime<Utc>) {
    for severity in labels::SEVERITIES {
        let row = rows.iter().find(|r| r.severity == severity);
        let (open, unacknowledged, oldest) = row.map_or((0, 0, None), |r| {
            (r.unresolved, r.unacknowledged, r.oldest_unacknowledged)
        });
        let age = oldest.map_or(0.0, |at| age_seconds(at, now));
        metrics.alerts_open.with_label_values(&[severity]).set(open);
        metrics
            .alerts_unacknowledged
            .with_label_values(&[severity])
            .set(unacknowledged);
        metrics
            .alerts_oldest_unacknowledged
            .with_label_values(&[severity])
            .set(age);
    }
}

/// Seconds from `from` to `to`, never negative (clocks of different nodes may disagree).
fn age_seconds(from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
    (to - from).num_milliseconds().max(0) as f64 / 1000.0
}

/// Observes the time to acknowledge after an officer's step (`action`: the stored change)
/// left `alert` as it is now, when the step was the alert's first acknowledgement.
pub fn observe_step(metrics: &Metrics, alert: &Alert, action: &str) {
    let first = match action {
        "acknowledged" => true,
        // Resolving acknowledges too; both times are then set by the same statement.
        "resolved" => alert.acknowledged_at == alert.resolved_at,
        _ => false,
    };
    let Some(acknowledged_at) = alert.acknowledged_at.filter(|_| first) else {
        return;
    };
    let Some(severity) = labels::SEVERITIES
        .into_iter()
        .find(|s| *s == alert.severity)
    else {
        return;
    };
    metrics
        .alert_acknowledge_duration
        .with_label_values(&[severity])
        .observe(age_seconds(alert.opened_at, acknowledged_at));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(
        severity: &str,
        unresolved: i64,
        unacknowledged: i64,
        oldest_s: i64,
    ) -> SeverityCounts {
        SeverityCounts {
            severity: severity.into(),
            unresolved,
            unacknowledged,
            oldest_unacknowledged: Some(
                DateTime::<Utc>::UNIX_EPOCH + chrono::Duration::seconds(oldest_s),
            ),
        }
    }

    #[test]
    fn severities_without_alerts_read_zero_and_ages_come_from_the_clock() {
        let metrics = Metrics::new().expect("metrics");
        let now = DateTime::<Utc>::UNIX_EPOCH + chrono::Duration::seconds(1000);
        set(&metrics, &[counts("critical", 3, 2, 400)], now);
        let open = |s: &str| metrics.alerts_open.with_label_values(&[s]).get();
        let oldest = |s: &str| {
            metrics
                .alerts_oldest_unacknowledged
                .with_label_values(&[s])
                .get()
        };
        assert_eq!((open("critical"), open("serious")), (3, 0));
        assert_eq!(
            metrics
                .alerts_unacknowledged
                .with_label_values(&["critical"])
                .get(),
            2
        );
        assert_eq!((oldest("critical"), oldest("info")), (600.0, 0.0));
        // Everything acknowledged since: back to zero.
        set(&metrics, &[], now);
        assert_eq!((open("critical"), oldest("critical")), (0, 0.0));
    }

    fn alert(severity: &str, acknowledged_s: Option<i64>, resolved_s: Option<i64>) -> Alert {
        let at = |s: i64| DateTime::<Utc>::UNIX_EPOCH + chrono::Duration::seconds(s);
        Alert {
            id: 1,
            supervisee_id: uuid::Uuid::nil(),
            officer_id: uuid::Uuid::nil(),
            kind: "curfew_violation".into(),
            severity: severity.into(),
            status: "acknowledged".into(),
            zone_id: None,
            event_at: at(0),
            opened_at: at(100),
            cleared_at: None,
            acknowledged_at: acknowledged_s.map(at),
            acknowledged_by: None,
            resolved_at: resolved_s.map(at),
            resolved_by: None,
            escalated_at: None,
            late: false,
            lat: None,
            lon: None,
            acc: None,
            device_id: None,
            seq: None,
            fix_received_at: None,
        }
    }

    #[test]
    fn only_a_first_acknowledgement_is_timed() {
        let metrics = Metrics::new().expect("metrics");
        let timed = |s: &str| {
            let h = metrics.alert_acknowledge_duration.with_label_values(&[s]);
            (h.get_sample_count(), h.get_sample_sum())
        };
        observe_step(
            &metrics,
            &alert("critical", Some(160), None),
            "acknowledged",
        );
        assert_eq!(timed("critical"), (1, 60.0));
        // Resolving an acknowledged alert is not a second acknowledgement...
        observe_step(
            &metrics,
            &alert("critical", Some(160), Some(900)),
            "resolved",
        );
        assert_eq!(timed("critical"), (1, 60.0));
        // ...but resolving an unacknowledged one is the first.
        observe_step(
            &metrics,
            &alert("serious", Some(400), Some(400)),
            "resolved",
        );
        assert_eq!(timed("serious"), (1, 300.0));
        // An unknown severity adds no series.
        observe_step(&metrics, &alert("urgent", Some(400), None), "acknowledged");
        assert_eq!(timed("info"), (0, 0.0));
    }

    #[test]
    fn a_clock_behind_the_opening_never_gives_a_negative_age() {
        let t = DateTime::<Utc>::UNIX_EPOCH + chrono::Duration::seconds(10);
        assert_eq!(age_seconds(t, DateTime::<Utc>::UNIX_EPOCH), 0.0);
    }
}
