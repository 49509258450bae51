//! Latency and failures of calls to the stores: `geoward_store_call_duration_seconds` and
//! `geoward_store_errors_total`, both labelled `{store, operation}`.
//!
//! Operations are a small fixed set, resolved into series once at start-up so the hot path
//! never looks a label up:
//! - PostgreSQL by what geoward is doing ([`PgOp`]), timed where the call is made;
//! - Redis by the kind of command ([`RedisOp`]), derived from the command name in the one place
//!   every Redis call goes through ([`crate::live::Live`]); a pipeline counts as one call, named
//!   by its first command.
//!
//! A failed call is timed too (a timeout shows as a slow call) and counted as an error. The
//! catalogue, with which geoward path issues which operation, is `docs/metrics.md`.

use std::future::Future;
use std::time::Instant;

use prometheus::{Histogram, HistogramVec, IntCounter, IntCounterVec};

/// PostgreSQL operations worth watching on their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PgOp {
    /// The ingest writer's batch insert (group commit) into the fix history.
    InsertFixes,
    /// Storing alert transitions (evaluator, lost contact): one transaction.
    AlertTransaction,
    /// An officer acknowledging or resolving an alert: one transaction.
    AlertStep,
    /// The escalation check (`UPDATE ... RETURNING`).
    Escalation,
    /// The officer-feed hub reading new alert changes.
    FeedRead,
    /// Loading supervisees' zones, orders and leave (rules cache misses).
    RulesLoad,
    /// Reading uncleared alerts to seed a lost rule state.
    SeedStates,
    /// Listing supervisees under an order, to seed lost-contact deadlines.
    LostContactSeed,
    /// The grouped query behind the open/unacknowledged alert gauges.
    AlertGauges,
}

impl PgOp {
    pub const ALL: [PgOp; 9] = [
        PgOp::InsertFixes,
        PgOp::AlertTransaction,
        PgOp::AlertStep,
        PgOp::Escalation,
        PgOp::FeedRead,
        PgOp::RulesLoad,
        PgOp::SeedStates,
        PgOp::LostContactSeed,
        PgOp::AlertGauges,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PgOp::InsertFixes => "insert_fixes",
            PgOp::AlertTransaction => "alert_transaction",
            PgOp::AlertStep => "alert_step",
            PgOp::Escalation => "escalation",
            PgOp::FeedRead => "feed_read",
            PgOp::RulesLoad => "rules_load",
            PgOp::SeedStates => "seed_states",
            PgOp::LostContactSeed => "lost_contact_seed",
            PgOp::AlertGauges => "alert_gauges",
        }
    }
}

/// Redis calls by kind of command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedisOp {
    /// Lua scripts (`EVALSHA`, `EVAL`, `SCRIPT LOAD`): live and rule state compare-and-set,
    /// lost-contact claims and seeding.
    Script,
    /// Commands that only read (`GET`, `HMGET`, `HGETALL`, `EXISTS`, `ZSCORE`, ...).
    Read,
    /// Commands that change keys (`SET`, `DEL`, `INCR`, `GETDEL`, `ZADD`, `SADD`, ...).
    Write,
    /// `PUBLISH` (between nodes: alert wake-ups, positions, rule changes, connections).
    Publish,
    /// Anything else (`PING`).
    Other,
}

impl RedisOp {
    pub const ALL: [RedisOp; 5] = [
        RedisOp::Script,
        RedisOp::Read,
        RedisOp::Write,
        RedisOp::Publish,
        RedisOp::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RedisOp::Script => "script",
            RedisOp::Read => "read",
            RedisOp::Write => "write",
            RedisOp::Publish => "publish",
            RedisOp::Other => "other",
        }
    }

    /// The kind of a command, from its name (any case).
    pub fn of_name(name: &[u8]) -> RedisOp {
        const SCRIPT: &[&str] = &[
            "EVALSHA",
            "EVAL",
            "EVALSHA_RO",
            "EVAL_RO",
            "SCRIPT",
            "FCALL",
        ];
        const READ: &[&str] = &[
            "GET",
            "MGET",
            "HGET",
            "HMGET",
            "HGETALL",
            "EXISTS",
            "TTL",
            "PTTL",
            "ZSCORE",
            "ZRANGE",
            "ZRANGEBYSCORE",
            "ZCARD",
            "SMEMBERS",
            "SISMEMBER",
            "SMISMEMBER",
            "SCARD",
            "KEYS",
            "SCAN",
        ];
        const WRITE: &[&str] = &[
            "SET", "GETDEL", "DEL", "UNLINK", "INCR", "INCRBY", "EXPIRE", "PEXPIRE", "HSET",
            "HDEL", "ZADD", "ZREM", "SADD", "SREM",
        ];
        let is = |names: &[&str]| {
            names
                .iter()
                .any(|n| n.as_bytes().eq_ignore_ascii_case(name))
        };
        if is(SCRIPT) {
            RedisOp::Script
        } else if is(READ) {
            RedisOp::Read
        } else if is(WRITE) {
            RedisOp::Write
        } else if name.eq_ignore_ascii_case(b"PUBLISH") {
            RedisOp::Publish
        } else {
            RedisOp::Other
        }
    }

    /// The kind of a command.
    pub fn of_cmd(cmd: &redis::Cmd) -> RedisOp {
        match cmd.args_iter().next() {
            Some(redis::Arg::Simple(name)) => RedisOp::of_name(name),
            _ => RedisOp::Other,
        }
    }

    /// The kind of a pipeline: that of its first command.
    pub fn of_pipeline(pipe: &redis::Pipeline) -> RedisOp {
        pipe.cmd_iter()
            .next()
            .map_or(RedisOp::Other, RedisOp::of_cmd)
    }
}

/// One measured operation: its latency histogram and error counter, resolved once.
#[derive(Clone)]
pub struct StoreCall {
    duration: Histogram,
    errors: IntCounter,
}

impl StoreCall {
    /// Records a call that started at `started` and ended with `result`.
    pub fn record<T, E>(&self, started: Instant, result: &Result<T, E>) {
        self.duration.observe(started.elapsed().as_secs_f64());
        if result.is_err() {
            self.errors.inc();
        }
    }

    /// Runs `call`, recording its time and whether it failed.
    pub async fn time<T, E>(&self, call: impl Future<Output = Result<T, E>>) -> Result<T, E> {
        let started = Instant::now();
        let result = call.await;
        self.record(started, &result);
        result
    }
}

/// Every store operation's series, by store.
pub struct StoreCalls {
    postgres: Vec<StoreCall>,
    redis: Vec<StoreCall>,
}

impl StoreCalls {
    /// Resolves (and so exports, at zero) every `{store, operation}` series.
    pub fn new(duration: &HistogramVec, errors: &IntCounterVec) -> StoreCalls {
        let call = |store: &str, op: &str| StoreCall {
            duration: duration.with_label_values(&[store, op]),
            errors: errors.with_label_values(&[store, op]),
        };
        StoreCalls {
            postgres: PgOp::ALL
                .iter()
                .map(|op| call("postgres", op.as_str()))
                .collect(),
            redis: RedisOp::ALL
                .iter()
                .map(|op| call("redis", op.as_str()))
                .collect(),
        }
    }

    pub fn postgres(&self, op: PgOp) -> &StoreCall {
        &self.postgres[op as usize]
    }

    pub fn redis(&self, op: RedisOp) -> &StoreCall {
        &self.redis[op as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_commands_are_named_by_kind() {
        assert_eq!(RedisOp::of_cmd(&redis::cmd("GET")), RedisOp::Read);
        assert_eq!(RedisOp::of_cmd(&redis::cmd("getdel")), RedisOp::Write);
        assert_eq!(RedisOp::of_cmd(&redis::cmd("PUBLISH")), RedisOp::Publish);
        assert_eq!(RedisOp::of_cmd(&redis::cmd("PING")), RedisOp::Other);
        assert_eq!(
            RedisOp::of_cmd(redis::cmd("SCRIPT").arg("LOAD").arg("return 1")),
            RedisOp::Script
        );
        let mut pipe = redis::pipe();
        pipe.cmd("HMGET").arg("k").arg("v").cmd("EXISTS").arg("w");
        assert_eq!(RedisOp::of_pipeline(&pipe), RedisOp::Read);
        let script = redis::Script::new("return 1");
        let mut pipe = redis::pipe();
        pipe.invoke_script(&script.key("k"));
        assert_eq!(RedisOp::of_pipeline(&pipe), RedisOp::Script);
        assert_eq!(RedisOp::of_pipeline(&redis::pipe()), RedisOp::Other);
    }

    #[test]
    fn operations_index_their_own_series() {
        for (i, op) in PgOp::ALL.iter().enumerate() {
            assert_eq!(*op as usize, i);
        }
        for (i, op) in RedisOp::ALL.iter().enumerate() {
            assert_eq!(*op as usize, i);
        }
    }
}
