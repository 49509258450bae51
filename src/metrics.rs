//! Typed, pre-registered Prometheus metrics. One place emits each metric; names follow
//! Prometheus conventions (`_total`, `_seconds`, `_bytes`) and no label carries a per-device or
//! per-person value.

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder,
};

pub struct Metrics {
    registry: Registry,
    /// HTTP requests served, by route template, method and status class.
    pub http_requests: IntCounterVec,
    /// HTTP request latency, by route template.
    pub http_duration: HistogramVec,
    /// Officer login attempts by outcome: succeeded, failed, throttled.
    pub logins: IntCounterVec,
}

impl Metrics {
    pub fn new() -> Result<Metrics, prometheus::Error> {
        let registry = Registry::new_custom(Some("geoward".into()), None)?;
        let http_requests = IntCounterVec::new(
            Opts::new("http_requests_total", "HTTP requests served"),
            &["route", "method", "status"],
        )?;
        let http_duration = HistogramVec::new(
            HistogramOpts::new("http_request_duration_seconds", "HTTP request latency").buckets(
                vec![
                    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                ],
            ),
            &["route"],
        )?;
        let logins = IntCounterVec::new(
            Opts::new("officer_logins_total", "Officer login attempts by outcome"),
            &["outcome"],
        )?;
        registry.register(Box::new(http_requests.clone()))?;
        registry.register(Box::new(http_duration.clone()))?;
        registry.register(Box::new(logins.clone()))?;
        for outcome in ["succeeded", "failed", "throttled"] {
            logins.with_label_values(&[outcome]);
        }
        Ok(Metrics {
            registry,
            http_requests,
            http_duration,
            logins,
        })
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> Result<String, prometheus::Error> {
        let mut buffer = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut buffer)?;
        String::from_utf8(buffer).map_err(|e| prometheus::Error::Msg(e.to_string()))
    }
}
