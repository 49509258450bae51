//! Typed, pre-registered Prometheus metrics, served at `GET /metrics`. One place emits each
//! metric; names follow Prometheus conventions (`_total`, `_seconds`, `_bytes`) and no label
//! carries a per-device, per-person or per-officer value: every label has a small fixed set of
//! values, and every labelled series is created at start-up (at zero), so a fresh node already
//! lists every family. The catalogue (meanings, labels, where each is measured, useful PromQL)
//! is `docs/metrics.md`; the dashboards and alerting rules built on it are in `dashboards/`,
//! and `tests/dashboards.rs` checks both against what this module exports.

pub mod labels;
mod register;
pub mod store;

use prometheus::{
    Encoder, GaugeVec, Histogram, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec,
    Opts, Registry, TextEncoder,
};

pub use store::{PgOp, RedisOp, StoreCall, StoreCalls};

use register::{
    counter, counter_vec, gauge_vec, histogram, histogram_vec, init, register, ACKNOWLEDGE_BUCKETS,
    LATENCY_BUCKETS,
};

use crate::eval::EventKind;
use crate::wire::ErrorCode;

pub struct Metrics {
    registry: Registry,
    /// HTTP requests served, by route template, method and status class.
    pub http_requests: IntCounterVec,
    /// HTTP request latency, by route template.
    pub http_duration: HistogramVec,
    /// Officer login attempts by outcome: succeeded, failed, throttled.
    pub logins: IntCounterVec,
    /// Open connections by kind (`device`, `officer`).
    pub connections: IntGaugeVec,
    /// Device connections closed, by reason.
    pub connections_closed: IntCounterVec,
    /// Device reports received (decoded and valid), by kind: fix, status.
    /// (`reports_received_total{kind="fix"}` and `{kind="status"}`, resolved once: they are
    /// counted per frame on the hot path.)
    pub fixes_received: IntCounter,
    pub statuses_received: IntCounter,
    /// Device reports rejected, by error code.
    pub reports_rejected: IntCounterVec,
    /// Reports newly stored, and reports that were already stored (resends).
    pub reports_stored: IntCounter,
    pub reports_duplicate: IntCounter,
    /// Reports acknowledged to devices.
    pub reports_acked: IntCounter,
    /// Reports per write batch.
    pub batch_size: Histogram,
    /// Time to commit one write batch.
    pub commit_duration: Histogram,
    /// From a frame's arrival to its ack being queued for the device.
    pub fix_ack_duration: Histogram,
    /// Reports waiting for the writer.
    pub ingest_queue_depth: IntGauge,
    /// Time connections spent waiting because the writer queue or their in-flight window was full.
    pub backpressure_seconds: prometheus::Counter,
    /// Store call failures, by store (`postgres`, `redis`) and operation. Calls are counted
    /// through [`Metrics::store_calls`]; this handle is for degradations that are not one call
    /// (`live_state_deferred`, `live_state_skipped`).
    pub store_errors: IntCounterVec,
    /// Latency and failures of store calls, by store and operation.
    pub store_calls: StoreCalls,
    /// Live state rebuilt from PostgreSQL after Redis lost it.
    pub live_rebuilds: IntCounter,
    /// Alerts raised, by kind and severity.
    pub alerts_raised: IntCounterVec,
    /// Stored alert changes (feed events), by action.
    pub alert_changes: IntCounterVec,
    /// Agency-wide: alerts not yet resolved, by severity ([`crate::alerts::gauges`]).
    pub alerts_open: IntGaugeVec,
    /// Agency-wide: alerts nobody has acknowledged yet, by severity.
    pub alerts_unacknowledged: IntGaugeVec,
    /// Agency-wide: age of the oldest unacknowledged alert, by severity (0 when none).
    pub alerts_oldest_unacknowledged: GaugeVec,
    /// From an alert opening to its first acknowledgement by an officer, by severity.
    pub alert_acknowledge_duration: HistogramVec,
    /// From a report's arrival to the alert it decided being stored.
    pub fix_alert_stored_duration: Histogram,
    /// From a report's receipt to the alert it decided being written to an officer's feed.
    pub fix_feed_duration: Histogram,
    /// Batches waiting for evaluation.
    pub evaluation_queue_depth: IntGauge,
    /// Time to evaluate one batch (rules, state, engine, alerts).
    pub evaluation_duration: Histogram,
    pub reports_evaluated: IntCounter,
    /// Supervisees evaluated again because another node changed their state meanwhile.
    pub evaluation_conflicts: IntCounter,
    /// Lost-contact sweeps run, and deadlines moved past an outage instead of firing.
    pub lost_contact_sweeps: IntCounter,
    pub lost_contact_extended: IntCounter,
    /// Officer feed connections closed because they fell behind (they resume from a cursor).
    pub feed_overflows: IntCounter,
}

/// Every alert kind: the rule engine's and the others.
pub fn alert_kinds() -> impl Iterator<Item = &'static str> {
    EventKind::ALL
        .into_iter()
        .map(EventKind::as_str)
        .chain(labels::OTHER_ALERT_KINDS)
}

impl Metrics {
    pub fn new() -> Result<Metrics, prometheus::Error> {
        let registry = Registry::new_custom(Some("geoward".into()), None)?;
        let r = &registry;
        let http_requests = counter_vec(
            r,
            "http_requests_total",
            "HTTP requests served",
            &["route", "method", "status"],
        )?;
        let http_duration = histogram_vec(
            r,
            "http_request_duration_seconds",
            "HTTP request latency",
            LATENCY_BUCKETS.to_vec(),
            &["route"],
        )?;
        // Routes are many; only the one every scrape uses is created up front.
        http_requests.with_label_values(&["/metrics", "GET", "2xx"]);
        http_duration.with_label_values(&["/metrics"]);
        let logins = counter_vec(
            r,
            "officer_logins_total",
            "Officer login attempts by outcome",
            &["outcome"],
        )?;
        init(&logins, labels::LOGIN_OUTCOMES);
        let connections = gauge_vec(r, "connections", "Open connections by kind", &["kind"])?;
        init(&connections, labels::CONNECTION_KINDS);
        let connections_closed = counter_vec(
            r,
            "device_connections_closed_total",
            "Device connections closed, by reason",
            &["reason"],
        )?;
        init(&connections_closed, labels::CLOSE_REASONS);
        let reports_received = counter_vec(
            r,
            "reports_received_total",
            "Valid device reports received, by kind",
            &["kind"],
        )?;
        let fixes_received = reports_received.with_label_values(&["fix"]);
        let statuses_received = reports_received.with_label_values(&["status"]);
        let reports_rejected = counter_vec(
            r,
            "reports_rejected_total",
            "Device reports rejected, by error code",
            &["code"],
        )?;
        init(
            &reports_rejected,
            ErrorCode::ALL
                .into_iter()
                .map(ErrorCode::as_str)
                .chain(labels::OTHER_REJECTIONS),
        );
        let store_errors = counter_vec(
            r,
            "store_errors_total",
            "Store call failures, by store and operation",
            &["store", "operation"],
        )?;
        let store_call_duration = histogram_vec(
            r,
            "store_call_duration_seconds",
            "Store call latency (failed calls included), by store and operation",
            LATENCY_BUCKETS.to_vec(),
            &["store", "operation"],
        )?;
        let store_calls = StoreCalls::new(&store_call_duration, &store_errors);
        for degradation in labels::REDIS_DEGRADATIONS {
            store_errors.with_label_values(&["redis", degradation]);
        }
        let alerts_raised = counter_vec(
            r,
            "alerts_raised_total",
            "Alerts raised, by kind and severity",
            &["kind", "severity"],
        )?;
        for kind in alert_kinds() {
            for severity in labels::SEVERITIES {
                alerts_raised.with_label_values(&[kind, severity]);
            }
        }
        let alert_changes = counter_vec(
            r,
            "alert_changes_total",
            "Stored alert changes, by action",
            &["action"],
        )?;
        init(&alert_changes, labels::ALERT_ACTIONS);
        let alerts_open = gauge_vec(
            r,
            "alerts_open",
            "Alerts not yet resolved, agency-wide, by severity",
            &["severity"],
        )?;
        let alerts_unacknowledged = gauge_vec(
            r,
            "alerts_unacknowledged",
            "Alerts nobody has acknowledged yet, agency-wide, by severity",
            &["severity"],
        )?;
        let alerts_oldest_unacknowledged = register(
            r,
            GaugeVec::new(
                Opts::new(
                    "alerts_oldest_unacknowledged_age_seconds",
                    "Age of the oldest unacknowledged alert, agency-wide, by severity (0: none)",
                ),
                &["severity"],
            )?,
        )?;
        let alert_acknowledge_duration = histogram_vec(
            r,
            "alert_acknowledge_duration_seconds",
            "From an alert opening to its first acknowledgement, by severity",
            ACKNOWLEDGE_BUCKETS.to_vec(),
            &["severity"],
        )?;
        init(&alerts_open, labels::SEVERITIES);
        init(&alerts_unacknowledged, labels::SEVERITIES);
        init(&alerts_oldest_unacknowledged, labels::SEVERITIES);
        init(&alert_acknowledge_duration, labels::SEVERITIES);
        Ok(Metrics {
            http_requests,
            http_duration,
            logins,
            connections,
            connections_closed,
            fixes_received,
            statuses_received,
            reports_rejected,
            reports_stored: counter(
                r,
                "reports_stored_total",
                "Device reports newly stored in PostgreSQL",
            )?,
            reports_duplicate: counter(
                r,
                "reports_duplicate_total",
                "Device reports already stored (resends)",
            )?,
            reports_acked: counter(r, "reports_acked_total", "Device reports acknowledged")?,
            batch_size: histogram(
                r,
                "ingest_batch_reports",
                "Reports per write batch",
                vec![1.0, 10.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2000.0, 5000.0],
            )?,
            commit_duration: histogram(
                r,
                "ingest_commit_duration_seconds",
                "Time to commit one write batch",
                LATENCY_BUCKETS.to_vec(),
            )?,
            fix_ack_duration: histogram(
                r,
                "fix_ack_duration_seconds",
                "From a report's arrival to its ack",
                LATENCY_BUCKETS.to_vec(),
            )?,
            ingest_queue_depth: register(
                r,
                IntGauge::new("ingest_queue_depth", "Reports waiting for the writer")?,
            )?,
            backpressure_seconds: register(
                r,
                prometheus::Counter::new(
                    "ingest_backpressure_seconds_total",
                    "Time device connections waited for room in the write queue or their \
                     in-flight window",
                )?,
            )?,
            store_errors,
            store_calls,
            live_rebuilds: counter(
                r,
                "live_rebuilds_total",
                "Live state rebuilt from PostgreSQL after Redis lost it",
            )?,
            alerts_raised,
            alert_changes,
            alerts_open,
            alerts_unacknowledged,
            alerts_oldest_unacknowledged,
            alert_acknowledge_duration,
            fix_alert_stored_duration: histogram(
                r,
                "fix_alert_stored_duration_seconds",
                "From a report's arrival to the alert it decided being stored",
                LATENCY_BUCKETS.to_vec(),
            )?,
            fix_feed_duration: histogram(
                r,
                "fix_officer_feed_duration_seconds",
                "From a report's receipt to its alert being written to an officer's feed",
                LATENCY_BUCKETS.to_vec(),
            )?,
            evaluation_queue_depth: register(
                r,
                IntGauge::new(
                    "evaluation_queue_depth",
                    "Stored batches waiting for evaluation",
                )?,
            )?,
            evaluation_duration: histogram(
                r,
                "evaluation_batch_duration_seconds",
                "Time to evaluate one batch of stored reports",
                LATENCY_BUCKETS.to_vec(),
            )?,
            reports_evaluated: counter(
                r,
                "reports_evaluated_total",
                "Reports run through the rule engine",
            )?,
            evaluation_conflicts: counter(
                r,
                "evaluation_conflicts_total",
                "Supervisees evaluated again because their state changed on another node",
            )?,
            lost_contact_sweeps: counter(
                r,
                "lost_contact_sweeps_total",
                "Lost-contact deadline sweeps run",
            )?,
            lost_contact_extended: counter(
                r,
                "lost_contact_deadlines_extended_total",
                "Lost-contact deadlines moved past a system outage instead of firing",
            )?,
            feed_overflows: counter(
                r,
                "officer_feed_overflows_total",
                "Officer feed connections closed for falling behind",
            )?,
            registry,
        })
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> Result<String, prometheus::Error> {
        let mut buffer = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut buffer)?;
        String::from_utf8(buffer).map_err(|e| prometheus::Error::Msg(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_labels_are_the_configured_severities() {
        use crate::config::Severity;
        assert_eq!(
            labels::SEVERITIES,
            [Severity::Critical, Severity::Serious, Severity::Info].map(Severity::as_str)
        );
    }

    #[test]
    fn alert_kinds_are_those_the_api_filters_by() {
        let mut ours: Vec<&str> = alert_kinds().collect();
        let mut api = crate::api::alerts::KINDS.to_vec();
        ours.sort_unstable();
        api.sort_unstable();
        assert_eq!(ours, api);
    }

    #[test]
    fn a_fresh_registry_exports_every_labelled_family() {
        let text = Metrics::new().expect("metrics").render().expect("render");
        for series in [
            "geoward_alerts_open{severity=\"critical\"} 0",
            "geoward_alerts_raised_total{kind=\"lost_contact\",severity=\"info\"} 0",
            "geoward_store_errors_total{operation=\"insert_fixes\",store=\"postgres\"} 0",
            "geoward_store_call_duration_seconds_count{operation=\"script\",store=\"redis\"} 0",
            "geoward_reports_rejected_total{code=\"flooding\"} 0",
            "geoward_device_connections_closed_total{reason=\"idle\"} 0",
            "geoward_alert_acknowledge_duration_seconds_count{severity=\"serious\"} 0",
            "geoward_http_requests_total{method=\"GET\",route=\"/metrics\",status=\"2xx\"} 0",
        ] {
            assert!(text.contains(series), "missing {series} in\n{text}");
        }
    }
}
