//! Alerts: from stored reports to stored alerts, and from stored alerts to the officers who
//! must act on them.
//!
//! # Layout
//! | module | role |
//! |---|---|
//! | [`evaluator`] | the stage after the writer: rules + state + engine → alert transitions |
//! | [`rules`] | each supervisee's zones, orders and leave, cached per node |
//! | [`state`] | engine state and lost-contact keys in Redis (compare-and-set) |
//! | [`lost_contact`] | deadlines, the sweeper that claims them once, the outage rule |
//! | [`escalation`] | unacknowledged alerts escalated on time |
//! | [`gauges`] | open and unacknowledged alerts (agency-wide gauges), time to acknowledge |
//! | [`feed`] | the node's officer-feed hub: stored changes → connected officers |
//! | [`bus`] | Redis pub/sub between nodes: change wake-ups, positions, rule changes |
//!
//! Invariants: an alert is stored before anyone is told about it; the feed is fed from stored
//! alert events (PostgreSQL), never from memory, so every node and every reconnecting officer
//! sees the same ordered history; time comes from the node's [`Clock`].
//! The rules, with the outage rule, are written up in `docs/alerts.md`.

pub mod bus;
pub mod escalation;
pub mod evaluator;
pub mod feed;
pub mod gauges;
pub mod lost_contact;
pub mod rules;
pub mod state;
pub mod view;

use std::sync::atomic::AtomicUsize;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::clock::Clock;
use crate::config::{AlertsConfig, Config, Severity};
use crate::eval::Settings;
use crate::live::devices::LiveState;
use crate::live::Live;
use crate::metrics::{Metrics, PgOp};
use crate::store::alerts::Change;
use crate::zone_cache::ZoneCache;
use evaluator::EvalQueue;
use feed::FeedHub;
use rules::RulesCache;
use state::StateStore;

/// What every alert task shares.
pub struct Context {
    pub db: PgPool,
    pub states: StateStore,
    pub rules: Arc<RulesCache>,
    pub live_state: LiveState,
    pub config: AlertsConfig,
    pub settings: Settings,
    pub metrics: Arc<Metrics>,
    pub clock: Clock,
    pub hub: Arc<FeedHub>,
    /// Officer feed connections allowed on this node.
    pub feed_connections: Arc<Semaphore>,
    /// The node's shutdown: officer feeds close with 1001.
    pub shutdown: CancellationToken,
    /// Wakes the alert gauges' refresh after a change.
    pub gauges: gauges::GaugeRefresh,
}

impl Context {
    /// When an alert of `severity` opened at `now` escalates, if it does.
    pub fn escalate_at(&self, severity: Severity, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.config
            .escalation_of(severity)
            .and_then(|d| chrono::Duration::from_std(d).ok())
            .map(|d| now + d)
    }

    /// Counts stored changes: by action, and raised alerts by kind and severity.
    pub fn record_changes(&self, changes: &[Change]) {
        if !changes.is_empty() {
            self.gauges.changed();
        }
        for change in changes {
            self.metrics
                .alert_changes
                .with_label_values(&[change.action])
                .inc();
            if let Some((kind, severity)) = change.raised {
                self.metrics
                    .alerts_raised
                    .with_label_values(&[kind, severity])
                    .inc();
            }
        }
    }

    /// Tells this node's feed and every other node that changes were stored.
    pub async fn announce(&self, changes: &[Change]) {
        let Some(newest) = changes.iter().map(|c| c.cursor).max() else {
            return;
        };
        self.hub.wake();
        if let Err(err) = self.states.publish(bus::CHANGES, &newest.to_string()).await {
            // Other nodes still catch up within their poll interval.
            tracing::debug!(error = %err, "cannot announce alert changes");
        }
    }
}

/// Starts the alert side of a node (evaluator, sweeper, escalation, alert gauges, feed hub, bus
/// listener) and returns its context and the queue the writer hands stored batches to. The
/// evaluator stops when that queue's senders are gone (after the writer drained); the others
/// stop with `shutdown`.
#[allow(clippy::too_many_arguments)]
pub fn start(
    db: PgPool,
    live: Live,
    live_state: LiveState,
    zones: Arc<ZoneCache>,
    config: &Config,
    metrics: Arc<Metrics>,
    clock: Clock,
    shutdown: CancellationToken,
    tracker: &TaskTracker,
) -> (Arc<Context>, EvalQueue) {
    let alerts = config.alerts.clone();
    let hub = Arc::new(FeedHub::new(db.clone(), metrics.clone(), alerts.feed_queue));
    let context = Arc::new(Context {
        rules: Arc::new(
            RulesCache::new(
                db.clone(),
                zones,
                alerts.rules_refresh,
                config.zones.default_confirm_fixes,
            )
            .measured(metrics.store_calls.postgres(PgOp::RulesLoad).clone()),
        ),
        states: StateStore::new(live, live_state.clone()),
        settings: alerts.settings(config.zones.default_confirm_fixes),
        config: alerts,
        db,
        live_state,
        metrics,
        clock,
        hub,
        feed_connections: Arc::new(Semaphore::new(config.alerts.max_feed_connections)),
        shutdown: shutdown.clone(),
        gauges: gauges::GaugeRefresh::default(),
    });
    let failing = Arc::new(AtomicUsize::new(0));
    let queue = evaluator::spawn(
        context.config.evaluators,
        context.config.queue_capacity,
        context.clone(),
        failing.clone(),
        shutdown.clone(),
        config.ingest.drain_timeout,
        tracker,
    );
    tracker.spawn(context.hub.clone().run(shutdown.clone()));
    tracker.spawn(bus::listen(context.clone(), shutdown.clone()));
    tracker.spawn(lost_contact::run(
        context.clone(),
        failing.clone(),
        shutdown.clone(),
    ));
    tracker.spawn(gauges::run(context.clone(), shutdown.clone()));
    tracker.spawn(escalation::run(context.clone(), shutdown));
    (context, queue)
}
