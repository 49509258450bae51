//! Live state of devices and supervisees: the newest position, the last report time, battery
//! and strap.
//!
//! Each report is applied to one hash by a Lua script (one slot per call: it works on Redis
//! Cluster): a worn device's report to its wearer's `{prefix}:sup:{<supervisee id>}` (which
//! records the device id) by the evaluator, in the same script that stores the wearer's rule
//! state (same hash tag, same slot; [`crate::alerts::state`]); an unassigned device's report
//! to `{prefix}:dev:{<device id>}` by the writer ([`LiveState::apply`]). Writing both would
//! double the work for no reader: what officers look at is the person. The script compares device times: a report older than what the hash
//! already holds never overwrites it (late buffered uploads are history, not the present),
//! while `last_report_ms` (server receive time) always moves forward — a late upload still
//! proves the device is alive.
//!
//! Hash fields: `last_report_ms`, `pos_ts_ms`, `pos_seq`, `lat`, `lon`, `acc`, `src`, `speed`,
//! `state_ts_ms`, `bat`, `strap`, `device_id` (on the supervisee hash).
//!
//! Redis keeps nothing on disk in some deployments: [`LiveState::ensure_fresh`] notices a lost
//! dataset (the `{prefix}:live:epoch` marker is gone) or missed updates (an update failed while
//! Redis was unreachable) and rebuilds the positions from PostgreSQL with the same script, so a
//! rebuild never overwrites newer live data.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use redis::Script;
use sqlx::PgPool;
use uuid::Uuid;

use super::{Live, LiveResult};
use crate::store;

/// The compare-and-set of one report onto one live hash, as a Lua function: `apply(key, a, o)`
/// reads the report's 13 arguments from `a[o+1]` on (see [`LiveState::push_args`]).
pub const APPLY_FN: &str = r#"
local function apply(key, a, o)
  local received = tonumber(a[o + 1])
  local ts = tonumber(a[o + 2])
  local last = tonumber(redis.call('HGET', key, 'last_report_ms') or '0')
  if received > last then redis.call('HSET', key, 'last_report_ms', a[o + 1]) end
  if a[o + 13] ~= '' then redis.call('HSET', key, 'device_id', a[o + 13]) end
  local applied = 0
  if a[o + 4] == '1' then
    local cur = tonumber(redis.call('HGET', key, 'pos_ts_ms') or '-1')
    if ts > cur then
      redis.call('HSET', key, 'pos_ts_ms', a[o + 2], 'pos_seq', a[o + 3], 'lat', a[o + 5],
        'lon', a[o + 6], 'acc', a[o + 7], 'src', a[o + 8], 'speed', a[o + 9])
      applied = 1
    end
  end
  if a[o + 10] ~= '' or a[o + 11] ~= '' then
    local cur = tonumber(redis.call('HGET', key, 'state_ts_ms') or '-1')
    if ts > cur then
      redis.call('HSET', key, 'state_ts_ms', a[o + 2])
      if a[o + 10] ~= '' then redis.call('HSET', key, 'bat', a[o + 10]) end
      if a[o + 11] ~= '' then redis.call('HSET', key, 'strap', a[o + 11]) end
    end
  end
  if a[o + 12] ~= '' then redis.call('PEXPIRE', key, a[o + 12]) end
  return applied
end
"#;

fn apply_script() -> String {
    format!("{APPLY_FN}\nreturn apply(KEYS[1], ARGV, 0)\n")
}

/// One report to apply to live state.
#[derive(Debug, Clone)]
pub struct LiveReport {
    pub device_id: Uuid,
    pub supervisee_id: Option<Uuid>,
    pub received_at: DateTime<Utc>,
    pub ts: DateTime<Utc>,
    pub seq: i64,
    /// `(lat, lon, acc, src, speed)` for a fix.
    pub position: Option<(f64, f64, f32, &'static str, Option<f32>)>,
    pub bat: Option<i16>,
    pub strap: Option<&'static str>,
}

/// The live position of a supervisee or device, as read back.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LivePosition {
    pub device_id: Option<Uuid>,
    pub last_report: Option<DateTime<Utc>>,
    pub ts: Option<DateTime<Utc>>,
    pub seq: Option<i64>,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    pub acc: Option<f32>,
    pub src: Option<String>,
    pub speed: Option<f32>,
    pub bat: Option<i16>,
    pub strap: Option<String>,
}

/// Live state handle: the store plus the compiled script.
#[derive(Clone)]
pub struct LiveState {
    live: Live,
    apply: Script,
    /// Live hashes of devices not heard from for this long expire.
    ttl: Duration,
    /// Set when an update could not be applied: the next check rebuilds from history.
    stale: Arc<AtomicBool>,
}

impl LiveState {
    pub fn new(live: Live, ttl: Duration) -> LiveState {
        LiveState {
            live,
            apply: Script::new(&apply_script()),
            ttl,
            stale: Arc::new(AtomicBool::new(false)),
        }
    }

    pub fn device_key(&self, id: Uuid) -> String {
        self.live.key(&format!("dev:{{{id}}}"))
    }

    pub fn supervisee_key(&self, id: Uuid) -> String {
        self.live.key(&format!("sup:{{{id}}}"))
    }

    fn epoch_key(&self) -> String {
        self.live.key("live:epoch")
    }

    fn add(&self, pipe: &mut redis::Pipeline, key: String, r: &LiveReport, device_field: &str) {
        let mut invocation = self.apply.key(key);
        self.push_args(&mut invocation, r, device_field);
        pipe.invoke_script(&invocation).ignore();
    }

    /// Appends one report's 13 arguments for [`APPLY_FN`]; `device_field` is the device id to
    /// record (on a supervisee's hash) or empty.
    pub fn push_args(
        &self,
        invocation: &mut redis::ScriptInvocation<'_>,
        r: &LiveReport,
        device_field: &str,
    ) {
        let (lat, lon, acc, src, speed) = match r.position {
            Some((lat, lon, acc, src, speed)) => (
                lat.to_string(),
                lon.to_string(),
                acc.to_string(),
                src,
                speed.map(|s| s.to_string()).unwrap_or_default(),
            ),
            None => (
                String::new(),
                String::new(),
                String::new(),
                "",
                String::new(),
            ),
        };
        invocation
            .arg(r.received_at.timestamp_millis())
            .arg(r.ts.timestamp_millis())
            .arg(r.seq)
            .arg(if r.position.is_some() { "1" } else { "0" })
            .arg(lat)
            .arg(lon)
            .arg(acc)
            .arg(src)
            .arg(speed)
            .arg(r.bat.map(|b| b.to_string()).unwrap_or_default())
            .arg(r.strap.unwrap_or(""))
            .arg(self.ttl.as_millis() as u64)
            .arg(device_field);
    }

    /// Applies reports in one pipeline: a worn device's report to its wearer's hash (which
    /// names the device), an unassigned device's to the device's own hash.
    pub async fn apply(&self, reports: &[LiveReport]) -> LiveResult<()> {
        if reports.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for r in reports {
            match r.supervisee_id {
                Some(supervisee) => self.add(
                    &mut pipe,
                    self.supervisee_key(supervisee),
                    r,
                    &r.device_id.to_string(),
                ),
                None => self.add(&mut pipe, self.device_key(r.device_id), r, ""),
            }
        }
        match self.live.query_pipe::<()>(&pipe).await {
            Err(super::LiveError::Unavailable(err))
                if err.kind() == redis::ErrorKind::NoScriptError =>
            {
                self.load_script().await?;
                self.live.query_pipe::<()>(&pipe).await
            }
            other => other,
        }
    }

    async fn load_script(&self) -> LiveResult<()> {
        let _: String = self
            .live
            .query(redis::cmd("SCRIPT").arg("LOAD").arg(apply_script()))
            .await?;
        Ok(())
    }

    /// Reads a live hash back.
    pub async fn read(&self, key: String) -> LiveResult<Option<LivePosition>> {
        let map: std::collections::HashMap<String, String> =
            self.live.query(redis::cmd("HGETALL").arg(key)).await?;
        if map.is_empty() {
            return Ok(None);
        }
        let num = |f: &str| map.get(f).and_then(|v| v.parse::<f64>().ok());
        let millis = |f: &str| {
            map.get(f)
                .and_then(|v| v.parse::<i64>().ok())
                .and_then(DateTime::<Utc>::from_timestamp_millis)
        };
        Ok(Some(LivePosition {
            device_id: map.get("device_id").and_then(|v| v.parse().ok()),
            last_report: millis("last_report_ms"),
            ts: millis("pos_ts_ms"),
            seq: map.get("pos_seq").and_then(|v| v.parse().ok()),
            lat: num("lat"),
            lon: num("lon"),
            acc: num("acc").map(|v| v as f32),
            src: map.get("src").filter(|s| !s.is_empty()).cloned(),
            speed: num("speed").map(|v| v as f32),
            bat: map.get("bat").and_then(|v| v.parse().ok()),
            strap: map.get("strap").cloned(),
        }))
    }

    pub async fn device(&self, id: Uuid) -> LiveResult<Option<LivePosition>> {
        self.read(self.device_key(id)).await
    }

    pub async fn supervisee(&self, id: Uuid) -> LiveResult<Option<LivePosition>> {
        self.read(self.supervisee_key(id)).await
    }

    /// Marks live state as missing updates (an update failed or was skipped).
    pub fn mark_stale(&self) {
        self.stale.store(true, Ordering::Relaxed);
    }

    /// Rebuilds live positions from PostgreSQL when Redis lost its data (the epoch marker is
    /// missing) or updates were missed while it was unreachable. Returns the number of devices
    /// restored, or None when nothing was lost. The rebuild uses the same compare-and-set, so
    /// it never overwrites newer live data.
    pub async fn ensure_fresh(
        &self,
        db: &PgPool,
        now: DateTime<Utc>,
    ) -> Result<Option<usize>, RebuildError> {
        let exists: bool = self
            .live
            .query(redis::cmd("EXISTS").arg(self.epoch_key()))
            .await?;
        let stale = self.stale.swap(false, Ordering::Relaxed);
        if exists && !stale {
            return Ok(None);
        }
        let since = now - chrono::Duration::from_std(self.ttl).unwrap_or(chrono::Duration::days(7));
        let rows = store::fixes::latest_per_device(db, since).await?;
        let reports: Vec<LiveReport> = rows
            .into_iter()
            .map(|(p, supervisee_id, received_at)| LiveReport {
                device_id: p.device_id,
                supervisee_id,
                received_at,
                ts: p.ts,
                seq: p.seq,
                position: Some((p.lat, p.lon, p.acc, source_name(&p.src), p.speed)),
                bat: p.bat,
                strap: p.strap.as_deref().map(strap_name),
            })
            .collect();
        for chunk in reports.chunks(1000) {
            if let Err(err) = self.apply(chunk).await {
                self.mark_stale();
                return Err(err.into());
            }
        }
        let _: () = self
            .live
            .query(
                redis::cmd("SET")
                    .arg(self.epoch_key())
                    .arg(now.timestamp_millis()),
            )
            .await?;
        Ok(Some(reports.len()))
    }
}

fn source_name(src: &str) -> &'static str {
    match src {
        "wifi" => "wifi",
        "cell" => "cell",
        _ => "gps",
    }
}

fn strap_name(strap: &str) -> &'static str {
    if strap == "open" {
        "open"
    } else {
        "closed"
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RebuildError {
    #[error("cannot reach Redis")]
    Live(#[from] super::LiveError),
    #[error("cannot read history")]
    Store(#[from] store::StoreError),
}
