//! Lost contact (escape from supervision): deadlines, not polling.
//!
//! Every evaluated report moves its supervisee's deadline to `received + lost_contact_after_s
//! + alerts.lost_contact_grace` (`ZADD GT` in `{lost}:deadlines`). Every `sweep_interval`
//! each node's sweeper runs one script that atomically claims the expired deadlines (moving
//! them to `{lost}:claimed`), so with several nodes each lost contact is raised by exactly one.
//! A claim not finished within [`CLAIM_TIMEOUT`] (the node died) is claimed again.
//!
//! **A system outage is not an escape.** The same script records a heartbeat. A node sweeps
//! (and so beats) only while it is healthy: PostgreSQL answers and its evaluator is not
//! failing. When a sweep finds the last heartbeat older than `alerts.outage_after`, nobody
//! was able to receive and evaluate reports in between, so every deadline that expired is
//! moved to `now + alerts.outage_grace` instead of firing: devices that are alive report (or
//! upload their buffers) within that grace and their deadlines move on; the silent ones fire
//! after it. Documented in `docs/alerts.md`.
//!
//! Supervisees under an order get a deadline even before their first report (`seed`), every
//! `alerts.seed_interval` and whenever Redis lost the keys.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use redis::Script;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::Context;
use crate::metrics::PgOp;
use crate::store::alerts::{self as alert_store, Clear, Raise, Transition};
use crate::store::{self, rules as rule_store};

/// A claim older than this is taken over by another sweep.
pub const CLAIM_TIMEOUT: Duration = Duration::from_secs(30);
/// Deadlines claimed per sweep.
const CLAIM_LIMIT: usize = 1000;

const CLAIM: &str = r#"
local dl, claimed, hb = KEYS[1], KEYS[2], KEYS[3]
local now = tonumber(ARGV[1])
local last = tonumber(redis.call('GET', hb) or '0')
local extended = 0
if last > 0 and now - last > tonumber(ARGV[2]) then
  local expired = redis.call('ZRANGEBYSCORE', dl, '-inf', now)
  for _, m in ipairs(expired) do redis.call('ZADD', dl, now + tonumber(ARGV[3]), m) end
  extended = #expired
end
redis.call('SET', hb, now)
local out = {extended, last == 0 and 1 or 0}
local stale = redis.call('ZRANGEBYSCORE', claimed, '-inf', now - tonumber(ARGV[4]), 'LIMIT', 0, ARGV[5])
for _, m in ipairs(stale) do
  redis.call('ZADD', claimed, now, m)
  table.insert(out, m)
end
local due = redis.call('ZRANGEBYSCORE', dl, '-inf', now, 'WITHSCORES', 'LIMIT', 0, ARGV[5])
for i = 1, #due, 2 do
  local m = due[i] .. '|' .. due[i + 1]
  redis.call('ZREM', dl, due[i])
  redis.call('ZADD', claimed, now, m)
  table.insert(out, m)
end
return out
"#;

const SEED: &str = r#"
local added = 0
for i = 1, #ARGV, 2 do
  if redis.call('SISMEMBER', KEYS[2], ARGV[i + 1]) == 0 then
    added = added + redis.call('ZADD', KEYS[1], 'NX', ARGV[i], ARGV[i + 1])
  end
end
return added
"#;

/// Sweeps until `shutdown`.
pub async fn run(context: Arc<Context>, failing: Arc<AtomicUsize>, shutdown: CancellationToken) {
    let claim = Script::new(CLAIM);
    let seed_script = Script::new(SEED);
    let mut last_seed: Option<tokio::time::Instant> = None;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(context.config.sweep_interval) => {}
        }
        // Only a node that can receive and evaluate reports may judge silence.
        if failing.load(Ordering::Relaxed) > 0 || store::ping(&context.db).await.is_err() {
            continue;
        }
        match sweep(&context, &claim).await {
            Ok(fresh) => {
                let due = last_seed.map_or(true, |at| at.elapsed() >= context.config.seed_interval);
                if fresh || due {
                    match seed(&context, &seed_script).await {
                        Ok(added) if added > 0 => {
                            tracing::info!(
                                added,
                                "gave supervisees under an order a lost-contact deadline"
                            )
                        }
                        Ok(_) => {}
                        Err(err) => {
                            tracing::warn!(error = %err, "cannot seed lost-contact deadlines")
                        }
                    }
                    last_seed = Some(tokio::time::Instant::now());
                }
            }
            Err(err) => tracing::warn!(error = %err, "lost-contact sweep failed; retrying"),
        }
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// One sweep; returns whether the heartbeat was missing (Redis lost its keys: seed again).
async fn sweep(context: &Context, claim: &Script) -> Result<bool, BoxError> {
    let states = &context.states;
    let now = context.clock.now();
    let mut invocation = claim.key(states.deadlines_key());
    invocation
        .key(states.claimed_key())
        .key(states.heartbeat_key())
        .arg(now.timestamp_millis())
        .arg(context.config.outage_after.as_millis() as u64)
        .arg(context.config.outage_grace.as_millis() as u64)
        .arg(CLAIM_TIMEOUT.as_millis() as u64)
        .arg(CLAIM_LIMIT);
    let out: Vec<redis::Value> = states.live().invoke(&invocation).await?;
    context.metrics.lost_contact_sweeps.inc();
    let int = |v: Option<&redis::Value>| {
        v.and_then(|v| redis::from_redis_value::<i64>(v).ok())
            .unwrap_or(0)
    };
    let extended = int(out.first());
    let fresh = int(out.get(1)) == 1;
    if extended > 0 {
        context
            .metrics
            .lost_contact_extended
            .inc_by(extended as u64);
        tracing::warn!(
            extended,
            grace = ?context.config.outage_grace,
            "geoward was not receiving reports for a while: expired lost-contact deadlines moved past the outage grace instead of firing"
        );
    }
    for value in out.iter().skip(2) {
        let Ok(member) = redis::from_redis_value::<String>(value) else {
            continue;
        };
        if let Err(err) = fire(context, &member, now).await {
            // The claim stays; it is taken over after CLAIM_TIMEOUT.
            tracing::warn!(error = %crate::api::error::chain(err.as_ref()), "cannot raise a lost contact; it will be retried");
        }
    }
    Ok(fresh)
}

/// Raises one claimed lost contact, unless a report came meanwhile or no order covers now.
async fn fire(context: &Context, member: &str, now: DateTime<Utc>) -> Result<(), BoxError> {
    let states = &context.states;
    let live = states.live();
    let done = || async {
        let _: Result<i64, _> = live
            .query(redis::cmd("ZREM").arg(states.claimed_key()).arg(member))
            .await;
    };
    let Some((id, deadline_ms)) = member
        .split_once('|')
        .and_then(|(id, ms)| Some((id.parse::<Uuid>().ok()?, ms.parse::<i64>().ok()?)))
    else {
        done().await;
        return Ok(());
    };
    let rules = context.rules.get_many(&[id], now).await?;
    let Some(rules) = rules.get(&id).filter(|r| r.under_order(now)) else {
        done().await;
        return Ok(());
    };
    let moved = || async {
        live.query::<Option<f64>>(
            redis::cmd("ZSCORE")
                .arg(states.deadlines_key())
                .arg(id.to_string()),
        )
        .await
        .map(|score| score.is_some())
    };
    if moved().await? {
        done().await; // a report arrived after the claim
        return Ok(());
    }
    let grace = chrono::Duration::from_std(context.config.lost_contact_grace).unwrap_or_default();
    let last = context.live_state.supervisee(id).await.ok().flatten();
    // When contact was lost: the last report plus the allowed silence. The deadline says the
    // same unless an outage moved it; without a report ever, the deadline is all we know.
    let lost_at = last
        .as_ref()
        .and_then(|p| p.last_report)
        .map(|at| at + rules.lost_contact_after)
        .unwrap_or_else(|| {
            DateTime::<Utc>::from_timestamp_millis(deadline_ms).unwrap_or(now) - grace
        });
    let position = last
        .as_ref()
        .and_then(|p| Some((p.lat?, p.lon?, p.acc.unwrap_or(f32::NAN))));
    let severity = context.config.severity_of("lost_contact");
    let raise = Transition::Raise(Raise {
        supervisee_id: id,
        kind: "lost_contact",
        severity: severity.as_str(),
        zone_id: None,
        event_at: lost_at,
        late: false,
        position,
        device_id: last.as_ref().and_then(|p| p.device_id),
        seq: None,
        instantaneous: false,
        escalate_at: context.escalate_at(severity, now),
        fix_received_at: None,
    });
    let transaction = context.metrics.store_calls.postgres(PgOp::AlertTransaction);
    let mut changes = transaction
        .time(alert_store::apply(&context.db, &[raise], now))
        .await?;
    let _: i64 = live
        .query(
            redis::cmd("SADD")
                .arg(states.open_key())
                .arg(id.to_string()),
        )
        .await?;
    done().await;
    // A report may have slipped in between the check and the mark: then clear at once.
    if moved().await? {
        let clear = Transition::Clear(Clear {
            supervisee_id: id,
            kind: "lost_contact",
            zone_id: None,
            at: now,
        });
        changes.extend(
            transaction
                .time(alert_store::apply(&context.db, &[clear], now))
                .await?,
        );
        let _: i64 = live
            .query(
                redis::cmd("SREM")
                    .arg(states.open_key())
                    .arg(id.to_string()),
            )
            .await?;
    }
    tracing::info!(supervisee = %id, after = ?rules.lost_contact_after, "lost contact");
    context.record_changes(&changes);
    context.announce(&changes).await;
    Ok(())
}

/// Gives every supervisee under an order (and without an open lost contact) a deadline if
/// they have none: `now + lost_contact_after_s + grace`.
async fn seed(context: &Context, script: &Script) -> Result<i64, BoxError> {
    let now = context.clock.now();
    let rows = context
        .metrics
        .store_calls
        .postgres(PgOp::LostContactSeed)
        .time(rule_store::under_order(&context.db, now))
        .await?;
    let grace = context.config.lost_contact_grace.as_millis() as i64;
    let mut added = 0;
    for chunk in rows.chunks(1000) {
        let states = &context.states;
        let mut invocation = script.key(states.deadlines_key());
        invocation.key(states.open_key());
        for (id, after_s) in chunk {
            invocation
                .arg(now.timestamp_millis() + i64::from(*after_s) * 1000 + grace)
                .arg(id.to_string());
        }
        let n: i64 = states.live().invoke(&invocation).await?;
        added += n;
    }
    Ok(added)
}
