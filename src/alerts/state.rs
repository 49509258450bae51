//! The rule engine's per-supervisee state in Redis, shared by every node, and the
//! lost-contact keys the evaluator moves.
//!
//! | key | type | holds |
//! |---|---|---|
//! | `{prefix}:eval:{<supervisee id>}` | hash `v`, `s` | version and JSON [`EvalState`]; 30 days after the last report (written with the wearer's live hash `sup:{<id>}`, same slot) |
//! | `{prefix}:{lost}:deadlines` | sorted set | supervisee → lost-contact deadline (ms) |
//! | `{prefix}:{lost}:claimed` | sorted set | `<supervisee>\|<deadline ms>` claimed by a sweeper → claim time |
//! | `{prefix}:{lost}:open` | set | supervisees with an uncleared lost-contact alert |
//! | `{prefix}:{lost}:heartbeat` | string | ms of the last sweep by a healthy node |
//! | `{prefix}:feed:positions_wanted` | string | present while some officer watches positions |
//!
//! Invariant: a state is written only over the version it was computed from (compare-and-set
//! in one script), so two nodes evaluating the same supervisee at once cannot lose an update;
//! the loser evaluates again from the winner's state.

use std::time::Duration;

use redis::Script;
use uuid::Uuid;

use crate::eval::EvalState;
use crate::live::devices::{LiveReport, LiveState, APPLY_FN};
use crate::live::{Live, LiveError, LiveResult};

/// Compare-and-set of the engine state (`KEYS[1]`), then, only if it was written, the
/// supervisee's live hash (`KEYS[2]`: the same hash tag, so the same slot) from the reports
/// that follow `ARGV[1..3]`, with the live-state function of [`crate::live::devices`].
const CAS_BODY: &str = r#"
local v = tonumber(redis.call('HGET', KEYS[1], 'v') or '0')
if v ~= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'v', v + 1, 's', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
for o = 3, #ARGV - 13, 13 do apply(KEYS[2], ARGV, o) end
return 1
"#;

/// How long a state outlives its supervisee's last report.
const STATE_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

/// A state as read: its version (0 when there is none) and the state, if any.
#[derive(Debug, Clone)]
pub struct Stored {
    pub version: i64,
    pub state: Option<EvalState>,
}

/// What one evaluation round reads up front.
#[derive(Debug)]
pub struct Loaded {
    pub states: Vec<Stored>,
    /// Per supervisee: an uncleared lost-contact alert is recorded.
    pub lost_open: Vec<bool>,
    pub positions_wanted: bool,
}

/// One state to write over `version`, with the reports to apply to the supervisee's live
/// hash once it is written.
pub struct Save<'a> {
    pub supervisee_id: Uuid,
    pub version: i64,
    pub state: &'a EvalState,
    pub live: Vec<LiveReport>,
}

#[derive(Clone)]
pub struct StateStore {
    live: Live,
    live_state: LiveState,
    cas_text: String,
    cas: Script,
}

impl StateStore {
    pub fn new(live: Live, live_state: LiveState) -> StateStore {
        let cas_text = format!("{APPLY_FN}\n{CAS_BODY}");
        StateStore {
            live,
            live_state,
            cas: Script::new(&cas_text),
            cas_text,
        }
    }

    pub fn live(&self) -> &Live {
        &self.live
    }

    pub fn state_key(&self, id: Uuid) -> String {
        self.live.key(&format!("eval:{{{id}}}"))
    }

    pub fn deadlines_key(&self) -> String {
        self.live.key("{lost}:deadlines")
    }

    pub fn claimed_key(&self) -> String {
        self.live.key("{lost}:claimed")
    }

    pub fn open_key(&self) -> String {
        self.live.key("{lost}:open")
    }

    pub fn heartbeat_key(&self) -> String {
        self.live.key("{lost}:heartbeat")
    }

    pub fn positions_wanted_key(&self) -> String {
        self.live.key("feed:positions_wanted")
    }

    /// Reads the states of `ids` (in order), whether each has an open lost-contact alert, and
    /// whether any officer watches positions: one round trip.
    pub async fn load(&self, ids: &[Uuid]) -> LiveResult<Loaded> {
        let mut pipe = redis::pipe();
        for id in ids {
            pipe.cmd("HMGET").arg(self.state_key(*id)).arg("v").arg("s");
        }
        pipe.cmd("SMISMEMBER").arg(self.open_key());
        for id in ids {
            pipe.arg(id.to_string());
        }
        pipe.cmd("EXISTS").arg(self.positions_wanted_key());
        let mut values: Vec<redis::Value> = self.live.query_pipe(&pipe).await?;
        let wanted = values.pop().map(|v| redis::from_redis_value::<bool>(&v));
        let open = values
            .pop()
            .map(|v| redis::from_redis_value::<Vec<bool>>(&v));
        let mut states = Vec::with_capacity(ids.len());
        for (id, value) in ids.iter().zip(values) {
            let (version, json): (Option<i64>, Option<String>) =
                redis::from_redis_value(&value).map_err(LiveError::Unavailable)?;
            let state = match json.map(|j| serde_json::from_str::<EvalState>(&j)) {
                Some(Ok(state)) => Some(state),
                Some(Err(err)) => {
                    // A state this build cannot read is treated as lost: it is seeded again
                    // from the open alerts, and the version still guards the write.
                    tracing::warn!(supervisee = %id, error = %err, "unreadable rule state; reseeding it");
                    None
                }
                None => None,
            };
            states.push(Stored {
                version: version.unwrap_or(0),
                state,
            });
        }
        Ok(Loaded {
            states,
            lost_open: open
                .transpose()
                .map_err(LiveError::Unavailable)?
                .unwrap_or_else(|| vec![false; ids.len()]),
            positions_wanted: wanted
                .transpose()
                .map_err(LiveError::Unavailable)?
                .unwrap_or(false),
        })
    }

    /// Writes states (each only over its version), moves lost-contact deadlines forward
    /// (`ZADD GT`) and forgets cleared lost contacts, in one round trip. Returns, per save,
    /// whether it was written.
    pub async fn save(
        &self,
        saves: &[Save<'_>],
        deadlines: &[(Uuid, i64)],
        lost_cleared: &[Uuid],
    ) -> LiveResult<Vec<bool>> {
        let mut pipe = redis::pipe();
        let ttl = STATE_TTL.as_millis() as u64;
        for s in saves {
            let json = serde_json::to_string(s.state).unwrap_or_else(|_| "{}".into());
            let mut invocation = self.cas.key(self.state_key(s.supervisee_id));
            invocation
                .key(self.live_state.supervisee_key(s.supervisee_id))
                .arg(s.version)
                .arg(json)
                .arg(ttl);
            for r in &s.live {
                self.live_state
                    .push_args(&mut invocation, r, &r.device_id.to_string());
            }
            pipe.invoke_script(&invocation);
        }
        if !deadlines.is_empty() {
            let cmd = pipe.cmd("ZADD").arg(self.deadlines_key()).arg("GT");
            for (id, at_ms) in deadlines {
                cmd.arg(*at_ms).arg(id.to_string());
            }
            cmd.ignore();
        }
        if !lost_cleared.is_empty() {
            let cmd = pipe.cmd("SREM").arg(self.open_key());
            for id in lost_cleared {
                cmd.arg(id.to_string());
            }
            cmd.ignore();
        }
        if saves.is_empty() && deadlines.is_empty() && lost_cleared.is_empty() {
            return Ok(Vec::new());
        }
        let written: Vec<i64> = match self.live.query_pipe(&pipe).await {
            Err(LiveError::Unavailable(err)) if err.kind() == redis::ErrorKind::NoScriptError => {
                let _: String = self
                    .live
                    .query(redis::cmd("SCRIPT").arg("LOAD").arg(&self.cas_text))
                    .await?;
                self.live.query_pipe(&pipe).await?
            }
            other => other?,
        };
        Ok(written.into_iter().map(|w| w == 1).collect())
    }

    /// Publishes `payload` on a channel; returns how many nodes listen.
    pub async fn publish(&self, channel: &str, payload: &str) -> LiveResult<i64> {
        self.live
            .query(
                redis::cmd("PUBLISH")
                    .arg(self.live.key(channel))
                    .arg(payload),
            )
            .await
    }
}
