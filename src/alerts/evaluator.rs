//! The evaluation stage: stored reports → rule engine → alerts, state and deadlines.
//!
//! The writer hands over every committed batch (new reports and resends alike) through
//! [`EvalQueue`]: `alerts.evaluators` workers, each owning a share of the supervisees (by id),
//! each with a bounded queue, so one supervisee's reports are evaluated in order by one worker
//! while the workers' store round trips overlap. Per batch, a worker:
//! 1. groups reports by supervisee, oldest first, and loads their rules (cached) and engine
//!    states (Redis, one round trip; a missing state is seeded from the open alerts);
//! 2. runs [`crate::eval::evaluate`] (pure) over each supervisee's reports;
//! 3. stores the resulting alert transitions in one transaction (idempotent per deciding
//!    report, so evaluating a resend or retrying after a conflict never raises twice);
//! 4. writes states back by compare-and-set, each with the supervisee's live hash (the same
//!    script), moves lost-contact deadlines and clears lost contacts; supervisees whose state
//!    another node changed meanwhile go round again;
//! 5. tells the officers' feed (every node) and publishes positions if anyone watches.
//!
//! Failures (PostgreSQL or Redis down) are retried with backoff, holding the batch; a full
//! queue makes the writer wait, so memory stays bounded. Acks do not wait for this stage.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::rules::SuperviseeRules;
use super::state::{Save, Stored};
use super::Context;
use crate::eval::{evaluate, EvalState, EventKind, Input, RuleEvent, Transition, ZoneState};
use crate::live::devices::LiveReport;
use crate::metrics::PgOp;
use crate::store::alerts::{self as alert_store, Clear, Raise, Transition as AlertTransition};
use crate::wire::Strap;

/// One stored report, as the evaluator needs it.
#[derive(Debug, Clone)]
pub struct EvalReport {
    pub supervisee_id: Uuid,
    pub device_id: Uuid,
    pub input: Input,
    pub received_at: DateTime<Utc>,
    /// When its frame arrived (for fix→alert latency).
    pub arrived: Instant,
    /// `(src, speed)` of a fix, for the officers' position view.
    pub source: Option<(&'static str, Option<f32>)>,
}

/// Evaluation rounds before a supervisee whose state keeps changing under us is left for the
/// next batch (another node is evaluating them right now).
const ROUNDS: usize = 4;

/// The hand-over from the writer: one bounded queue per worker, supervisees split by id.
#[derive(Clone)]
pub struct EvalQueue {
    shards: Vec<mpsc::Sender<Vec<EvalReport>>>,
    depth: prometheus::IntGauge,
}

impl EvalQueue {
    /// Queues a stored batch, waiting for room (bounded memory); Err when the workers stopped.
    pub async fn send(&self, reports: Vec<EvalReport>) -> Result<(), ()> {
        let n = self.shards.len();
        if n == 1 {
            return self.send_to(0, reports).await;
        }
        let mut parts: Vec<Vec<EvalReport>> = (0..n).map(|_| Vec::new()).collect();
        for r in reports {
            parts[(r.supervisee_id.as_u128() % n as u128) as usize].push(r);
        }
        for (shard, part) in parts.into_iter().enumerate() {
            if !part.is_empty() {
                self.send_to(shard, part).await?;
            }
        }
        Ok(())
    }

    async fn send_to(&self, shard: usize, reports: Vec<EvalReport>) -> Result<(), ()> {
        self.depth.inc();
        self.shards[shard].send(reports).await.map_err(|_| {
            self.depth.dec();
        })
    }
}

/// Starts `workers` evaluation workers; they stop when every [`EvalQueue`] clone is dropped
/// (the writer finished), after finishing what is queued. `failing` counts workers whose last
/// batch failed.
pub fn spawn(
    workers: usize,
    capacity: usize,
    context: Arc<Context>,
    failing: Arc<AtomicUsize>,
    stop: CancellationToken,
    drain_timeout: Duration,
    tracker: &tokio_util::task::TaskTracker,
) -> EvalQueue {
    let workers = workers.max(1);
    let mut shards = Vec::with_capacity(workers);
    for _ in 0..workers {
        let (tx, rx) = mpsc::channel((capacity / workers).max(1));
        shards.push(tx);
        tracker.spawn(run(
            rx,
            context.clone(),
            failing.clone(),
            stop.clone(),
            drain_timeout,
        ));
    }
    EvalQueue {
        shards,
        depth: context.metrics.evaluation_queue_depth.clone(),
    }
}

/// One worker: runs until its queue closes, finishing what is queued; once `stop` is
/// cancelled a failing batch is retried for at most `drain_timeout`.
async fn run(
    mut rx: mpsc::Receiver<Vec<EvalReport>>,
    context: Arc<Context>,
    failing: Arc<AtomicUsize>,
    stop: CancellationToken,
    drain_timeout: Duration,
) {
    let depth = &context.metrics.evaluation_queue_depth;
    while let Some(mut batch) = rx.recv().await {
        depth.dec();
        while batch.len() < 5000 {
            match rx.try_recv() {
                Ok(more) => {
                    depth.dec();
                    batch.extend(more);
                }
                Err(_) => break,
            }
        }
        let mut delay = Duration::from_millis(50);
        let mut stopping_since: Option<Instant> = None;
        let mut failed = false;
        loop {
            let started = Instant::now();
            match process(&context, &batch).await {
                Ok(()) => {
                    if failed {
                        failing.fetch_sub(1, Ordering::Relaxed);
                    }
                    context
                        .metrics
                        .evaluation_duration
                        .observe(started.elapsed().as_secs_f64());
                    context.metrics.reports_evaluated.inc_by(batch.len() as u64);
                    break;
                }
                Err(err) => {
                    if !failed {
                        failed = true;
                        failing.fetch_add(1, Ordering::Relaxed);
                    }
                    tracing::warn!(error = %crate::api::error::chain(err.as_ref()), reports = batch.len(),
                        retry_in = ?delay, "cannot evaluate a batch; holding it and retrying");
                    if stop.is_cancelled() {
                        let since = *stopping_since.get_or_insert_with(Instant::now);
                        if since.elapsed() >= drain_timeout {
                            tracing::error!(
                                reports = batch.len(),
                                "shutting down with an unevaluated batch"
                            );
                            failing.fetch_sub(1, Ordering::Relaxed);
                            break;
                        }
                    }
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
            }
        }
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// One supervisee's part of a batch.
struct Group<'a> {
    id: Uuid,
    reports: Vec<&'a EvalReport>,
    rules: Arc<SuperviseeRules>,
    stored: Stored,
    lost_open: bool,
}

async fn process(context: &Context, batch: &[EvalReport]) -> Result<(), BoxError> {
    let now = context.clock.now();
    let mut by_supervisee: HashMap<Uuid, Vec<&EvalReport>> = HashMap::new();
    for r in batch {
        by_supervisee.entry(r.supervisee_id).or_default().push(r);
    }
    let ids: Vec<Uuid> = by_supervisee.keys().copied().collect();
    let rules = context.rules.get_many(&ids, now).await?;
    // Supervisees deleted meanwhile have no rules: nothing to evaluate for them.
    let mut pending: Vec<Uuid> = ids
        .into_iter()
        .filter(|id| rules.contains_key(id))
        .collect();
    let mut positions_wanted = false;
    for round in 0..ROUNDS {
        if pending.is_empty() {
            break;
        }
        let loaded = context.states.load(&pending).await?;
        positions_wanted = loaded.positions_wanted;
        let mut groups: Vec<Group> = Vec::with_capacity(pending.len());
        for ((id, stored), lost_open) in pending.iter().zip(loaded.states).zip(loaded.lost_open) {
            let mut reports = by_supervisee.get(id).cloned().unwrap_or_default();
            reports.sort_by_key(|r| (r.input.ts(), r.input.seq()));
            groups.push(Group {
                id: *id,
                reports,
                rules: rules[id].clone(),
                stored,
                lost_open,
            });
        }
        let seeds = seed_missing(context, &groups).await?;
        let conflicts = evaluate_groups(context, &groups, &seeds, now).await?;
        if conflicts.is_empty() {
            pending.clear();
        } else {
            context
                .metrics
                .evaluation_conflicts
                .inc_by(conflicts.len() as u64);
            tracing::debug!(
                round,
                supervisees = conflicts.len(),
                "rule state changed elsewhere; evaluating again"
            );
            pending = conflicts;
        }
    }
    if positions_wanted {
        publish_positions(context, &by_supervisee, &rules).await;
    }
    Ok(())
}

/// States for groups that have none: rebuilt from their uncleared alerts, so a lost Redis
/// never reopens (or forgets to clear) a condition that is already alerted.
async fn seed_missing(
    context: &Context,
    groups: &[Group<'_>],
) -> Result<HashMap<Uuid, EvalState>, BoxError> {
    let missing: Vec<Uuid> = groups
        .iter()
        .filter(|g| g.stored.state.is_none())
        .map(|g| g.id)
        .collect();
    let mut seeds: HashMap<Uuid, EvalState> = HashMap::new();
    if missing.is_empty() {
        return Ok(seeds);
    }
    let rules: HashMap<Uuid, &SuperviseeRules> = groups.iter().map(|g| (g.id, &*g.rules)).collect();
    let mut conditions: HashMap<Uuid, Vec<OpenCondition>> = HashMap::new();
    let open = context
        .metrics
        .store_calls
        .postgres(PgOp::SeedStates)
        .time(alert_store::open_conditions(&context.db, &missing))
        .await?;
    for (id, kind, zone_id, event_at) in open {
        conditions
            .entry(id)
            .or_default()
            .push((kind, zone_id, event_at));
    }
    for (id, open) in conditions {
        if let Some(r) = rules.get(&id) {
            seeds.insert(id, seed_state(&open, r));
        }
    }
    Ok(seeds)
}

/// An uncleared alert's condition: kind, zone, event time.
type OpenCondition = (String, Option<Uuid>, DateTime<Utc>);

/// The engine state implied by a supervisee's uncleared alerts.
fn seed_state(open: &[OpenCondition], r: &SuperviseeRules) -> EvalState {
    let mut st = EvalState::default();
    for (kind, zone_id, event_at) in open {
        let Ok(kind) = serde_json::from_value::<EventKind>(serde_json::Value::String(kind.clone()))
        else {
            continue; // lost_contact is not the engine's
        };
        match (kind, zone_id) {
            (EventKind::StrapTamper, _) => st.strap_open = true,
            (EventKind::LowBattery, _) => st.low_battery = true,
            (EventKind::NoLocation, _) => {
                st.no_location = true;
                st.uncertain_since = Some(*event_at);
            }
            (_, Some(zone)) if !kind.is_instantaneous() => {
                let window = (kind == EventKind::CurfewViolation)
                    .then(|| r.zone(*zone))
                    .flatten()
                    .and_then(|z| {
                        z.schedule()
                            .last_opening_at_or_before(*event_at, r.timezone)
                    });
                st.zones.push(ZoneState {
                    id: *zone,
                    violating: true,
                    streak: 0,
                    kind,
                    window,
                });
            }
            _ => {}
        }
    }
    st
}

/// Evaluates, stores alerts, saves states; returns the supervisees whose save lost a race.
async fn evaluate_groups(
    context: &Context,
    groups: &[Group<'_>],
    seeds: &HashMap<Uuid, EvalState>,
    now: DateTime<Utc>,
) -> Result<Vec<Uuid>, BoxError> {
    let settings = &context.settings;
    let mut transitions = Vec::new();
    let mut arrivals = Vec::new();
    let mut states = Vec::with_capacity(groups.len());
    let mut deadlines = Vec::new();
    let mut lost_cleared = Vec::new();
    for g in groups {
        let mut state = g
            .stored
            .state
            .clone()
            .or_else(|| seeds.get(&g.id).cloned())
            .unwrap_or_default();
        let rules = g.rules.rules(settings);
        for r in &g.reports {
            let outcome = evaluate(&rules, &state, &r.input, r.received_at);
            state = outcome.state;
            for event in outcome.events {
                transitions.push(transition(context, g.id, r, &event, now));
                arrivals.push(r.arrived);
            }
        }
        let newest = g.reports.iter().map(|r| r.received_at).max();
        if let Some(received) = newest {
            if g.lost_open {
                transitions.push(AlertTransition::Clear(Clear {
                    supervisee_id: g.id,
                    kind: "lost_contact",
                    zone_id: None,
                    at: received,
                }));
                arrivals.push(g.reports[0].arrived);
                lost_cleared.push(g.id);
            }
            if g.rules.under_order(received) {
                let deadline = received
                    + g.rules.lost_contact_after
                    + chrono::Duration::from_std(context.config.lost_contact_grace)
                        .unwrap_or_default();
                deadlines.push((g.id, deadline.timestamp_millis()));
            }
        }
        states.push(state);
    }
    let changes = if transitions.is_empty() {
        Vec::new()
    } else {
        context
            .metrics
            .store_calls
            .postgres(PgOp::AlertTransaction)
            .time(alert_store::apply(&context.db, &transitions, now))
            .await?
    };
    if !changes.is_empty() {
        for arrived in &arrivals {
            context
                .metrics
                .fix_alert_stored_duration
                .observe(arrived.elapsed().as_secs_f64());
        }
        context.record_changes(&changes);
        context.announce(&changes).await;
    }
    let saves: Vec<Save> = groups
        .iter()
        .zip(&states)
        .map(|(g, state)| Save {
            supervisee_id: g.id,
            version: g.stored.version,
            state,
            live: g.reports.iter().map(|r| live_report(g.id, r)).collect(),
        })
        .collect();
    let written = context
        .states
        .save(&saves, &deadlines, &lost_cleared)
        .await?;
    Ok(groups
        .iter()
        .zip(written.iter().chain(std::iter::repeat(&true)))
        .filter(|(_, ok)| !**ok)
        .map(|(g, _)| g.id)
        .collect())
}

/// A report as it updates the supervisee's live hash.
fn live_report(supervisee_id: Uuid, r: &EvalReport) -> LiveReport {
    let (position, bat, strap) = match r.input {
        Input::Fix {
            lat,
            lon,
            acc_m,
            bat,
            strap,
            ..
        } => {
            let (src, speed) = r.source.unwrap_or(("gps", None));
            (Some((lat, lon, acc_m as f32, src, speed)), bat, strap)
        }
        Input::Status { bat, strap, .. } => (None, bat, strap),
    };
    LiveReport {
        device_id: r.device_id,
        supervisee_id: Some(supervisee_id),
        received_at: r.received_at,
        ts: r.input.ts(),
        seq: i64::try_from(r.input.seq()).unwrap_or(i64::MAX),
        position,
        bat: bat.map(i16::from),
        strap: strap.map(|s| match s {
            Strap::Open => "open",
            Strap::Closed => "closed",
        }),
    }
}

/// A rule event as an alert transition.
fn transition(
    context: &Context,
    supervisee_id: Uuid,
    report: &EvalReport,
    event: &RuleEvent,
    now: DateTime<Utc>,
) -> AlertTransition {
    let kind = event.kind.as_str();
    match event.transition {
        Transition::Started => {
            let severity = context.config.severity_of(kind);
            AlertTransition::Raise(Raise {
                supervisee_id,
                kind,
                severity: severity.as_str(),
                zone_id: event.zone_id,
                event_at: event.at,
                late: event.late,
                position: event.position.map(|p| (p.lat, p.lon, p.acc as f32)),
                device_id: Some(report.device_id),
                seq: event.seq.and_then(|s| i64::try_from(s).ok()),
                instantaneous: event.kind.is_instantaneous(),
                escalate_at: context.escalate_at(severity, now),
                fix_received_at: Some(report.received_at),
            })
        }
        Transition::Cleared => AlertTransition::Clear(Clear {
            supervisee_id,
            kind,
            zone_id: event.zone_id,
            at: event.at,
        }),
    }
}

/// Sends each supervisee's newest fix of the batch to the nodes' feeds.
async fn publish_positions(
    context: &Context,
    by_supervisee: &HashMap<Uuid, Vec<&EvalReport>>,
    rules: &HashMap<Uuid, Arc<SuperviseeRules>>,
) {
    let mut items = Vec::new();
    for (id, reports) in by_supervisee {
        let Some(rules) = rules.get(id) else { continue };
        let newest = reports
            .iter()
            .filter(|r| matches!(r.input, Input::Fix { .. }))
            .max_by_key(|r| (r.input.ts(), r.input.seq()));
        if let Some(r) = newest {
            if let Some(fix) = super::feed::position_fix(r) {
                items.push(serde_json::json!({
                    "supervisee_id": id,
                    "officer_id": rules.officer_id,
                    "fix": fix,
                }));
            }
        }
    }
    if items.is_empty() {
        return;
    }
    let payload = serde_json::Value::Array(items).to_string();
    if let Err(err) = context
        .states
        .publish(super::bus::POSITIONS, &payload)
        .await
    {
        tracing::debug!(error = %err, "cannot publish positions");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> SuperviseeRules {
        SuperviseeRules {
            id: Uuid::new_v4(),
            officer_id: Uuid::new_v4(),
            timezone: chrono_tz::Asia::Shanghai,
            lost_contact_after: chrono::Duration::minutes(10),
            zones: Vec::new(),
            shared: None,
            orders: Vec::new(),
            leaves: Vec::new(),
        }
    }

    #[test]
    fn a_lost_state_is_seeded_from_the_open_alerts_so_nothing_is_raised_twice() {
        let zone = Uuid::new_v4();
        let at = Utc::now();
        let open = vec![
            ("exclusion_zone_entered".to_owned(), Some(zone), at),
            ("strap_tamper".to_owned(), None, at),
            ("low_battery".to_owned(), None, at),
            ("no_location".to_owned(), None, at),
            ("lost_contact".to_owned(), None, at),
            ("location_jump".to_owned(), None, at),
        ];
        let st = seed_state(&open, &rules());
        assert!(st.strap_open && st.low_battery && st.no_location);
        assert_eq!(st.uncertain_since, Some(at));
        assert_eq!(st.zones.len(), 1);
        assert_eq!(st.zones[0].id, zone);
        assert!(st.zones[0].violating);
        assert_eq!(st.zones[0].kind, EventKind::ExclusionZoneEntered);
        assert_eq!(st.newest, None, "the next report is evaluated as new");
    }

    #[test]
    fn no_open_alerts_seed_the_state_of_someone_never_seen() {
        assert_eq!(seed_state(&[], &rules()), EvalState::default());
    }
}
