//! Typed, pre-registered Prometheus metrics. One place emits each metric; names follow
//! Prometheus conventions (`_total`, `_seconds`, `_bytes`) and no label carries a per-device or
//! per-person value. The catalogue with meanings is `dashboards/README.md`.

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

pub struct Metrics {
    registry: Registry,
    /// HTTP requests served, by route template, method and status class.
    pub http_requests: IntCounterVec,
    /// HTTP request latency, by route template.
    pub http_duration: HistogramVec,
    /// Officer login attempts by outcome: succeeded, failed, throttled.
    pub logins: IntCounterVec,
    /// Open connections by kind (`device`).
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
    /// Store call failures, by store (`postgres`, `redis`) and operation.
    pub store_errors: IntCounterVec,
    /// Live state rebuilt from PostgreSQL after Redis lost it.
    pub live_rebuilds: IntCounter,
    /// Alerts raised, by kind and severity.
    pub alerts_raised: IntCounterVec,
    /// Stored alert changes (feed events), by action.
    pub alert_changes: IntCounterVec,
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

fn counter_vec(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> Result<IntCounterVec, prometheus::Error> {
    let metric = IntCounterVec::new(Opts::new(name, help), labels)?;
    registry.register(Box::new(metric.clone()))?;
    Ok(metric)
}

fn counter(registry: &Registry, name: &str, help: &str) -> Result<IntCounter, prometheus::Error> {
    let metric = IntCounter::new(name, help)?;
    registry.register(Box::new(metric.clone()))?;
    Ok(metric)
}

fn histogram(
    registry: &Registry,
    name: &str,
    help: &str,
    buckets: Vec<f64>,
) -> Result<Histogram, prometheus::Error> {
    let metric = Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets))?;
    registry.register(Box::new(metric.clone()))?;
    Ok(metric)
}

const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

impl Metrics {
    pub fn new() -> Result<Metrics, prometheus::Error> {
        let registry = Registry::new_custom(Some("geoward".into()), None)?;
        let http_requests = counter_vec(
            &registry,
            "http_requests_total",
            "HTTP requests served",
            &["route", "method", "status"],
        )?;
        let http_duration = HistogramVec::new(
            HistogramOpts::new("http_request_duration_seconds", "HTTP request latency")
                .buckets(LATENCY_BUCKETS.to_vec()),
            &["route"],
        )?;
        registry.register(Box::new(http_duration.clone()))?;
        let logins = counter_vec(
            &registry,
            "officer_logins_total",
            "Officer login attempts by outcome",
            &["outcome"],
        )?;
        for outcome in ["succeeded", "failed", "throttled"] {
            logins.with_label_values(&[outcome]);
        }
        let connections = IntGaugeVec::new(
            Opts::new("connections", "Open connections by kind"),
            &["kind"],
        )?;
        registry.register(Box::new(connections.clone()))?;
        connections.with_label_values(&["device"]);
        let connections_closed = counter_vec(
            &registry,
            "device_connections_closed_total",
            "Device connections closed, by reason",
            &["reason"],
        )?;
        let reports_received = counter_vec(
            &registry,
            "reports_received_total",
            "Valid device reports received, by kind",
            &["kind"],
        )?;
        let fixes_received = reports_received.with_label_values(&["fix"]);
        let statuses_received = reports_received.with_label_values(&["status"]);
        let reports_rejected = counter_vec(
            &registry,
            "reports_rejected_total",
            "Device reports rejected, by error code",
            &["code"],
        )?;
        let reports_stored = counter(
            &registry,
            "reports_stored_total",
            "Device reports newly stored in PostgreSQL",
        )?;
        let reports_duplicate = counter(
            &registry,
            "reports_duplicate_total",
            "Device reports already stored (resends)",
        )?;
        let reports_acked = counter(
            &registry,
            "reports_acked_total",
            "Device reports acknowledged",
        )?;
        let batch_size = histogram(
            &registry,
            "ingest_batch_reports",
            "Reports per write batch",
            vec![1.0, 10.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2000.0, 5000.0],
        )?;
        let commit_duration = histogram(
            &registry,
            "ingest_commit_duration_seconds",
            "Time to commit one write batch",
            LATENCY_BUCKETS.to_vec(),
        )?;
        let fix_ack_duration = histogram(
            &registry,
            "fix_ack_duration_seconds",
            "From a report's arrival to its ack",
            LATENCY_BUCKETS.to_vec(),
        )?;
        let ingest_queue_depth =
            IntGauge::new("ingest_queue_depth", "Reports waiting for the writer")?;
        registry.register(Box::new(ingest_queue_depth.clone()))?;
        let backpressure_seconds = prometheus::Counter::new(
            "ingest_backpressure_seconds_total",
            "Time device connections waited for room in the write queue or their in-flight window",
        )?;
        registry.register(Box::new(backpressure_seconds.clone()))?;
        let store_errors = counter_vec(
            &registry,
            "store_errors_total",
            "Store call failures",
            &["store", "operation"],
        )?;
        let live_rebuilds = counter(
            &registry,
            "live_rebuilds_total",
            "Live state rebuilt from PostgreSQL after Redis lost it",
        )?;
        let alerts_raised = counter_vec(
            &registry,
            "alerts_raised_total",
            "Alerts raised, by kind and severity",
            &["kind", "severity"],
        )?;
        let alert_changes = counter_vec(
            &registry,
            "alert_changes_total",
            "Stored alert changes, by action",
            &["action"],
        )?;
        for action in ["opened", "cleared", "acknowledged", "resolved", "escalated"] {
            alert_changes.with_label_values(&[action]);
        }
        let fix_alert_stored_duration = histogram(
            &registry,
            "fix_alert_stored_duration_seconds",
            "From a report's arrival to the alert it decided being stored",
            LATENCY_BUCKETS.to_vec(),
        )?;
        let fix_feed_duration = histogram(
            &registry,
            "fix_officer_feed_duration_seconds",
            "From a report's receipt to its alert being written to an officer's feed",
            LATENCY_BUCKETS.to_vec(),
        )?;
        let evaluation_queue_depth = IntGauge::new(
            "evaluation_queue_depth",
            "Stored batches waiting for evaluation",
        )?;
        registry.register(Box::new(evaluation_queue_depth.clone()))?;
        let evaluation_duration = histogram(
            &registry,
            "evaluation_batch_duration_seconds",
            "Time to evaluate one batch of stored reports",
            LATENCY_BUCKETS.to_vec(),
        )?;
        let reports_evaluated = counter(
            &registry,
            "reports_evaluated_total",
            "Reports run through the rule engine",
        )?;
        let evaluation_conflicts = counter(
            &registry,
            "evaluation_conflicts_total",
            "Supervisees evaluated again because their state changed on another node",
        )?;
        let lost_contact_sweeps = counter(
            &registry,
            "lost_contact_sweeps_total",
            "Lost-contact deadline sweeps run",
        )?;
        let lost_contact_extended = counter(
            &registry,
            "lost_contact_deadlines_extended_total",
            "Lost-contact deadlines moved past a system outage instead of firing",
        )?;
        let feed_overflows = counter(
            &registry,
            "officer_feed_overflows_total",
            "Officer feed connections closed for falling behind",
        )?;
        connections.with_label_values(&["officer"]);
        Ok(Metrics {
            registry,
            alerts_raised,
            alert_changes,
            fix_alert_stored_duration,
            fix_feed_duration,
            evaluation_queue_depth,
            evaluation_duration,
            reports_evaluated,
            evaluation_conflicts,
            lost_contact_sweeps,
            lost_contact_extended,
            feed_overflows,
            http_requests,
            http_duration,
            logins,
            connections,
            connections_closed,
            fixes_received,
            statuses_received,
            reports_rejected,
            reports_stored,
            reports_duplicate,
            reports_acked,
            batch_size,
            commit_duration,
            fix_ack_duration,
            ingest_queue_depth,
            backpressure_seconds,
            store_errors,
            live_rebuilds,
        })
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> Result<String, prometheus::Error> {
        let mut buffer = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut buffer)?;
        String::from_utf8(buffer).map_err(|e| prometheus::Error::Msg(e.to_string()))
    }
}
