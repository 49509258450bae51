//! Redis: live state shared by every geoward node.
//!
//! ## Key layout
//! Every key starts with the configured prefix (`redis.key_prefix`, default `gw`), so several
//! deployments or test runs share one Redis without seeing each other. Keys that must be read
//! or written together carry a hash tag (`{...}`) so they land in one slot on Redis Cluster.
//!
//! | key | type | holds | lifetime |
//! |---|---|---|---|
//! | `{prefix}:login:user:{username}` | string (counter) | failed logins for a username | `auth.login_failure_window` |
//! | `{prefix}:login:addr:{address}` | string (counter) | failed logins from a client address | `auth.login_failure_window` |
//! | `{prefix}:dev:{<device id>}` | hash | the live state of a device worn by nobody (see [`devices`]) | 7 days after its last report |
//! | `{prefix}:sup:{<supervisee id>}` | hash | a supervisee's live state, from their device | 7 days after the last report |
//! | `{prefix}:live:epoch` | string | marker: live state is complete; missing after Redis lost its data | permanent |
//! | `{prefix}:control` | pub/sub channel | device connections and revocations, between nodes | — |
//! | `{prefix}:eval:{<supervisee id>}` | hash | the rule engine's state (version, JSON) | 30 days after the last report |
//! | `{prefix}:{lost}:deadlines` / `:claimed` / `:open` / `:heartbeat` | sorted sets, set, string | lost-contact deadlines, claims, open lost contacts, sweep heartbeat (see [`crate::alerts::state`]) | permanent |
//! | `{prefix}:ticket:<sha-256>` | string | a single-use officer-feed ticket → its session | `alerts.ticket_ttl` |
//! | `{prefix}:feed:positions_wanted` | string | some officer watches positions | 10 s, renewed |
//! | `{prefix}:feed:changes`, `feed:positions`, `rules` | pub/sub channels | alert wake-ups, positions, rule changes, between nodes ([`crate::alerts::bus`]) | — |
//!
//! ## Failure behaviour
//! Every call is bounded by `redis.call_timeout`. The connection manager reconnects by itself
//! after Redis restarts; a call made while Redis is down fails with [`LiveError`] and the
//! caller decides (login fails closed with 503: no throttling, no login).
//!
//! ## Measured
//! Every call goes through [`Live::query`], [`Live::query_pipe`] or [`Live::invoke`]: with
//! metrics attached ([`Live::with_metrics`]), each is timed and its failures counted as
//! `geoward_store_call_duration_seconds` / `geoward_store_errors_total{store="redis"}`, by
//! kind of command ([`crate::metrics::RedisOp`]; `docs/metrics.md`).

pub mod devices;
pub mod throttle;

use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::config::RedisConfig;
use crate::metrics::{Metrics, RedisOp};

#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    #[error("Redis is unavailable")]
    Unavailable(#[source] redis::RedisError),
    #[error("Redis call timed out after {0:?}")]
    Timeout(Duration),
}

pub type LiveResult<T> = Result<T, LiveError>;

/// A handle on the live store: a reconnecting connection plus the key prefix.
#[derive(Clone)]
pub struct Live {
    client: redis::Client,
    conn: ConnectionManager,
    prefix: String,
    timeout: Duration,
    metrics: Option<Arc<Metrics>>,
}

impl Live {
    /// Connects, retrying with backoff for up to `patience` (Redis may still be starting).
    pub async fn connect(config: &RedisConfig, patience: Duration) -> LiveResult<Live> {
        let client = redis::Client::open(config.url.as_str()).map_err(LiveError::Unavailable)?;
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(config.call_timeout)
            .set_response_timeout(config.call_timeout)
            .set_number_of_retries(3)
            .set_max_delay(1000);
        let deadline = tokio::time::Instant::now() + patience;
        let mut delay = Duration::from_millis(100);
        loop {
            match ConnectionManager::new_with_config(client.clone(), manager_config.clone()).await {
                Ok(conn) => {
                    return Ok(Live {
                        client: client.clone(),
                        conn,
                        prefix: config.key_prefix.clone(),
                        timeout: config.call_timeout,
                        metrics: None,
                    })
                }
                Err(err) if tokio::time::Instant::now() + delay > deadline => {
                    return Err(LiveError::Unavailable(err))
                }
                Err(err) => {
                    tracing::warn!(error = %err, retry_in = ?delay, "Redis not reachable yet");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(2));
                }
            }
        }
    }

    /// The full key for a layout entry: `{prefix}:{rest}`.
    pub fn key(&self, rest: &str) -> String {
        format!("{}:{}", self.prefix, rest)
    }

    /// The client, for dedicated connections (pub/sub).
    pub fn client(&self) -> &redis::Client {
        &self.client
    }

    /// A clone of the shared connection, for calls that manage their own time bound (they are
    /// not measured: prefer [`Live::query`], [`Live::query_pipe`] and [`Live::invoke`]).
    pub fn connection(&self) -> ConnectionManager {
        self.conn.clone()
    }

    /// The configured bound on one call.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Times every call from now on (clones made later share the metrics).
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Live {
        self.metrics = Some(metrics);
        self
    }

    /// Bounds `call` by the configured time and records it under `op`.
    async fn bounded<T>(
        &self,
        op: RedisOp,
        call: impl std::future::Future<Output = redis::RedisResult<T>>,
    ) -> LiveResult<T> {
        let started = Instant::now();
        let result = match tokio::time::timeout(self.timeout, call).await {
            Ok(result) => result.map_err(LiveError::Unavailable),
            Err(_) => Err(LiveError::Timeout(self.timeout)),
        };
        // "Script not loaded" is the expected first reply of a script on a fresh or restarted
        // Redis (the caller loads it and retries), not a failure of the store.
        let unloaded = matches!(&result, Err(LiveError::Unavailable(err))
            if err.kind() == redis::ErrorKind::NoScriptError);
        if let (Some(metrics), false) = (&self.metrics, unloaded) {
            metrics.store_calls.redis(op).record(started, &result);
        }
        result
    }

    /// Runs `cmd` with the configured time bound.
    pub async fn query<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> LiveResult<T> {
        let mut conn = self.conn.clone();
        self.bounded(RedisOp::of_cmd(cmd), cmd.query_async(&mut conn))
            .await
    }

    /// Runs a pipeline with the configured time bound.
    pub async fn query_pipe<T: redis::FromRedisValue>(
        &self,
        pipe: &redis::Pipeline,
    ) -> LiveResult<T> {
        let mut conn = self.conn.clone();
        self.bounded(RedisOp::of_pipeline(pipe), pipe.query_async(&mut conn))
            .await
    }

    /// Runs a script (loading it first when Redis does not know it) with the time bound.
    pub async fn invoke<T: redis::FromRedisValue>(
        &self,
        invocation: &redis::ScriptInvocation<'_>,
    ) -> LiveResult<T> {
        let mut conn = self.conn.clone();
        self.bounded(RedisOp::Script, invocation.invoke_async(&mut conn))
            .await
    }

    /// A cheap round trip, for readiness.
    pub async fn ping(&self) -> LiveResult<()> {
        let _: String = self.query(&redis::cmd("PING")).await?;
        Ok(())
    }
}
