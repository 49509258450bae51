//! Fault tests: the real geoward binary with its own private PostgreSQL and Redis, while
//! devices stream; then the server is killed, PostgreSQL restarted or Redis restarted (losing
//! its data). History must hold every fix exactly once, nothing acknowledged may be lost, and
//! geoward must recover by itself.
//!
//! Each test starts its stores on spare ports (see `support::private_stores`), so stopping them
//! disturbs nothing else. They need the PostgreSQL server binaries and redis-server installed;
//! without them they fail saying what to install (they never skip).

#[path = "support/mod.rs"]
mod support;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sqlx::Connection;

use support::device::{fix_json, Device, StreamConfig, StreamStats, StreamingDevice};
use support::private_stores::{PrivatePostgres, PrivateRedis};
use support::server_process::ServerProcess;
use support::{ADMIN_PASSWORD, ADMIN_USER};

/// Devices per test and their sampling rate (well under the flood limit of 100 frames/s).
const DEVICES: usize = 5;
const FIXES_PER_SECOND: f64 = 20.0;
/// The PostgreSQL outage test streams harder, so fixes pile up while acks pause.
const OUTAGE_DEVICES: usize = 10;
const OUTAGE_FIXES_PER_SECOND: f64 = 40.0;
/// The resident memory the server must stay under while PostgreSQL is down.
const RSS_BOUND_KB: u64 = 200 * 1024;

// ---------------------------------------------------------------------------------------------
// The rig: private stores, the server, registered devices.
// ---------------------------------------------------------------------------------------------

struct Rig {
    pg: PrivatePostgres,
    redis: PrivateRedis,
    server: ServerProcess,
    db_url: String,
    prefix: String,
    http: reqwest::Client,
    admin: String,
}

/// A registered device: its id and token.
struct Registered {
    id: String,
    token: String,
}

async fn rig() -> Rig {
    let pg = PrivatePostgres::start()
        .await
        .unwrap_or_else(|e| panic!("cannot start a private PostgreSQL for the fault test: {e:#}"));
    let redis = PrivateRedis::start()
        .await
        .unwrap_or_else(|e| panic!("cannot start a private Redis for the fault test: {e:#}"));
    let db_url = pg
        .create_database("geoward_faults")
        .await
        .unwrap_or_else(|e| panic!("cannot create the database on the private PostgreSQL: {e:#}"));
    let prefix = format!(
        "gwfault-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    let env: Vec<(String, String)> = [
        ("DATABASE_URL", db_url.as_str()),
        ("REDIS_URL", redis.url().as_str()),
        (
            "GEOWARD_BOOTSTRAP_ADMIN",
            &format!("{ADMIN_USER}:{ADMIN_PASSWORD}"),
        ),
        ("GEOWARD_REDIS__KEY_PREFIX", prefix.as_str()),
        ("GEOWARD_LOG__FORMAT", "pretty"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let server = ServerProcess::spawn(&env)
        .await
        .unwrap_or_else(|e| panic!("cannot start geoward against the private stores: {e:#}"));
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("HTTP client");
    let reply = http
        .post(format!("{}/v1/auth/login", server.base_url()))
        .json(&json!({ "username": ADMIN_USER, "password": ADMIN_PASSWORD }))
        .send()
        .await
        .expect("login request");
    assert_eq!(reply.status().as_u16(), 201, "admin login");
    let body: Value = reply.json().await.expect("login body");
    let admin = body["token"].as_str().expect("admin token").to_owned();
    Rig {
        pg,
        redis,
        server,
        db_url,
        prefix,
        http,
        admin,
    }
}

impl Rig {
    async fn register_devices(&self, n: usize) -> Vec<Registered> {
        let mut devices = Vec::with_capacity(n);
        for i in 0..n {
            let serial = format!(
                "fault-{i}-{}",
                &uuid::Uuid::new_v4().simple().to_string()[..8]
            );
            let reply = self
                .http
                .post(format!("{}/v1/devices", self.server.base_url()))
                .bearer_auth(&self.admin)
                .json(&json!({ "serial": serial }))
                .send()
                .await
                .expect("register device");
            let status = reply.status().as_u16();
            let body: Value = reply.json().await.unwrap_or(Value::Null);
            assert_eq!(status, 201, "registering a device: {body}");
            devices.push(Registered {
                id: body["id"].as_str().expect("device id").to_owned(),
                token: body["token"].as_str().expect("device token").to_owned(),
            });
        }
        devices
    }

    fn stream(&self, devices: &[Registered], fixes_per_second: f64) -> Vec<StreamingDevice> {
        devices
            .iter()
            .map(|d| {
                let mut config = StreamConfig::new(&self.server.ws_url(), &d.token);
                config.fixes_per_second = fixes_per_second;
                config.max_backoff = Duration::from_secs(1);
                StreamingDevice::start(config)
            })
            .collect()
    }

    /// The status of `GET /readyz` (0 when there was no answer).
    async fn readyz(&self) -> u16 {
        match self
            .http
            .get(format!("{}/readyz", self.server.base_url()))
            .timeout(Duration::from_secs(5))
            .send()
            .await
        {
            Ok(reply) => reply.status().as_u16(),
            Err(_) => 0,
        }
    }

    /// The sum of a counter over all its labels, from `GET /metrics` (None when unreadable).
    async fn metric(&self, name: &str) -> Option<f64> {
        let text = self
            .http
            .get(format!("{}/metrics", self.server.base_url()))
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        let mut total = None;
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let Some((series, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let metric = series.split('{').next().unwrap_or(series);
            if metric == name || metric.ends_with(&format!("_{name}")) {
                *total.get_or_insert(0.0) += value.parse::<f64>().unwrap_or(0.0);
            }
        }
        total
    }

    async fn redis_conn(&self) -> redis::aio::MultiplexedConnection {
        let client = redis::Client::open(self.redis.url()).expect("Redis URL");
        tokio::time::timeout(
            Duration::from_secs(5),
            client.get_multiplexed_async_connection(),
        )
        .await
        .expect("Redis connection timed out")
        .expect("Redis connection")
    }

    /// Seqs stored per device, and every (device, seq) stored more than once.
    async fn history(&self, devices: &[Registered]) -> History {
        let mut conn = sqlx::PgConnection::connect(&self.db_url)
            .await
            .expect("connect to the private PostgreSQL");
        let mut per_device = Vec::with_capacity(devices.len());
        for device in devices {
            let id: uuid::Uuid = device.id.parse().expect("device id is a UUID");
            let seqs: Vec<(i64,)> = sqlx::query_as("select seq from fixes where device_id = $1")
                .bind(id)
                .fetch_all(&mut conn)
                .await
                .expect("read stored seqs");
            per_device.push(seqs.into_iter().map(|(s,)| s as u64).collect());
        }
        let duplicates: Vec<(uuid::Uuid, i64, i64)> = sqlx::query_as(
            "select device_id, seq, count(*) from fixes group by 1, 2 having count(*) > 1",
        )
        .fetch_all(&mut conn)
        .await
        .expect("duplicate query");
        let ids: Vec<uuid::Uuid> = devices
            .iter()
            .map(|d| d.id.parse().expect("device id is a UUID"))
            .collect();
        let (rows,): (i64,) =
            sqlx::query_as("select count(*) from fixes where device_id = any($1)")
                .bind(ids)
                .fetch_one(&mut conn)
                .await
                .expect("count fixes");
        let _ = conn.close().await;
        History {
            per_device,
            duplicates,
            rows,
        }
    }
}

struct History {
    per_device: Vec<BTreeSet<u64>>,
    duplicates: Vec<(uuid::Uuid, i64, i64)>,
    rows: i64,
}

fn total_acked(streams: &[StreamingDevice]) -> usize {
    streams.iter().map(|s| s.stats().acked.len()).sum()
}

fn total_sent(streams: &[StreamingDevice]) -> usize {
    streams.iter().map(|s| s.stats().sent.len()).sum()
}

/// Waits until every device has had at least one fix acknowledged.
async fn wait_first_acks(streams: &[StreamingDevice], server: &ServerProcess) {
    for (i, stream) in streams.iter().enumerate() {
        let ok = stream
            .wait_until(Duration::from_secs(10), |s| !s.acked.is_empty())
            .await;
        assert!(
            ok,
            "device {i} got no ack within 10 s of streaming: {:?}\nserver log:\n{}",
            stream.stats(),
            server.log_tail(30)
        );
    }
}

/// The most fixes awaiting their ack (all devices together) seen over `period`.
async fn max_unacked_for(streams: &[StreamingDevice], period: Duration) -> usize {
    let until = Instant::now() + period;
    let mut most = 0;
    while Instant::now() < until {
        let unacked: usize = streams.iter().map(|s| s.stats().unacked.len()).sum();
        most = most.max(unacked);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    most
}

/// Stops sampling, waits until every sent fix is acknowledged, stops the devices and returns
/// their final stats.
async fn drain_all(
    streams: &mut [StreamingDevice],
    timeout: Duration,
    server: &ServerProcess,
) -> Vec<StreamStats> {
    for stream in streams.iter() {
        stream.stop_sampling();
    }
    for (i, stream) in streams.iter().enumerate() {
        let drained = stream.drain(timeout).await;
        let stats = stream.stats();
        assert!(
            drained,
            "device {i} still has {} unacknowledged fixes after {timeout:?} (sent {}, acked {}, \
             connects {}, connect failures {}, last connect error {:?}, closes {:?})\n\
             server log:\n{}",
            stats.unacked.len(),
            stats.sent.len(),
            stats.acked.len(),
            stats.connects,
            stats.connect_failures,
            stats.last_connect_error,
            stats.closes,
            server.log_tail(40)
        );
    }
    let mut all = Vec::with_capacity(streams.len());
    for stream in streams.iter_mut() {
        all.push(stream.stop().await);
    }
    all
}

/// Every sent seq stored exactly once, every acked seq stored, nothing rejected.
fn assert_history_complete(stats: &[StreamStats], history: &History) {
    assert!(
        history.duplicates.is_empty(),
        "fixes stored more than once (device, seq, count): {:?}",
        &history.duplicates[..history.duplicates.len().min(20)]
    );
    let mut expected_rows = 0usize;
    for (i, (stats, stored)) in stats.iter().zip(&history.per_device).enumerate() {
        assert!(
            stats.rejected.is_empty() && stats.errors.is_empty(),
            "device {i} had fixes rejected: {:?} {:?}",
            stats.rejected,
            stats.errors
        );
        let lost: Vec<u64> = stats.sent.difference(stored).copied().collect();
        let extra: Vec<u64> = stored.difference(&stats.sent).copied().collect();
        assert!(
            lost.is_empty() && extra.is_empty(),
            "device {i}: {} sent, {} stored; sent but not stored: {:?}; stored but never sent: {:?}",
            stats.sent.len(),
            stored.len(),
            &lost[..lost.len().min(20)],
            &extra[..extra.len().min(20)]
        );
        let acked_lost: Vec<u64> = stats.acked.difference(stored).copied().collect();
        assert!(
            acked_lost.is_empty(),
            "device {i}: acknowledged but not stored: {acked_lost:?}"
        );
        expected_rows += stats.sent.len();
    }
    assert_eq!(
        history.rows as usize, expected_rows,
        "rows in fixes vs fixes sent by all devices"
    );
}

/// The resident set size of a process in kB, from /proc.
fn rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|line| line.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Samples a process's RSS every 50 ms in the background: (ms since start, kB).
struct RssSampler {
    samples: Arc<Mutex<Vec<(u128, u64)>>>,
    task: tokio::task::JoinHandle<()>,
}

impl RssSampler {
    fn start(pid: u32) -> RssSampler {
        let samples = Arc::new(Mutex::new(Vec::new()));
        let shared = samples.clone();
        let started = Instant::now();
        let task = tokio::spawn(async move {
            loop {
                if let Some(kb) = rss_kb(pid) {
                    shared
                        .lock()
                        .expect("samples")
                        .push((started.elapsed().as_millis(), kb));
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        RssSampler { samples, task }
    }

    fn max_kb(&self) -> u64 {
        self.samples
            .lock()
            .expect("samples")
            .iter()
            .map(|s| s.1)
            .max()
            .unwrap_or(0)
    }

    fn len(&self) -> usize {
        self.samples.lock().expect("samples").len()
    }

    /// The largest sample so far, and the number taken.
    fn mark(&self) -> (u64, usize) {
        (self.max_kb(), self.len())
    }

    /// The largest sample taken after `from` samples.
    fn max_since(&self, from: usize) -> u64 {
        self.samples.lock().expect("samples")[from..]
            .iter()
            .map(|s| s.1)
            .max()
            .unwrap_or(0)
    }
}

impl Drop for RssSampler {
    fn drop(&mut self) {
        self.task.abort();
    }
}

// ---------------------------------------------------------------------------------------------
// (a) the server killed mid-stream
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_mid_stream_loses_nothing_and_stores_every_fix_once() {
    let started = Instant::now();
    let mut rig = rig().await;
    let mut devices = rig.register_devices(DEVICES + 1).await;
    // One more device, driven by hand, resends fixes that were already acknowledged.
    let doubter = devices.pop().expect("one more device");
    let mut streams = rig.stream(&devices, FIXES_PER_SECOND);
    let doubter_frames: Vec<Value> = (1..=60u64)
        .map(|seq| {
            let ts = (chrono::Utc::now() - chrono::Duration::seconds(120 - seq as i64))
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            fix_json(seq, &ts, 33.62, 114.65, 10.0)
        })
        .collect();
    let mut doubter_ws = Device::connect(&rig.server.ws_url(), &doubter.token)
        .await
        .expect("connect the hand-driven device");
    doubter_ws
        .send_batch(doubter_frames[..50].to_vec())
        .await
        .expect("send 50 fixes");
    let first_fifty: BTreeSet<u64> = (1..=50).collect();
    let acked = doubter_ws
        .wait_acks(&first_fifty, Duration::from_secs(10))
        .await;
    assert_eq!(
        acked, first_fifty,
        "the hand-driven device's first 50 fixes"
    );
    wait_first_acks(&streams, &rig.server).await;
    tokio::time::sleep(Duration::from_secs(2)).await;

    // Kill while fixes are in flight (sent, not yet acknowledged), when we can catch that
    // moment within a second; acks take a few milliseconds, so poll tightly.
    let catch_until = Instant::now() + Duration::from_secs(1);
    let mut unacked_at_kill = 0;
    while Instant::now() < catch_until {
        unacked_at_kill = streams.iter().map(|s| s.stats().unacked.len()).sum();
        if unacked_at_kill >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    let acked_at_kill = total_acked(&streams);
    rig.server.sigkill().await.expect("SIGKILL geoward");
    let killed = Instant::now();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let sent_while_down = total_sent(&streams);
    rig.server
        .restart()
        .await
        .unwrap_or_else(|e| panic!("geoward does not start again after SIGKILL: {e:#}"));
    let down_for = killed.elapsed();

    // Every device reconnects by itself and resends what was not acknowledged.
    for (i, stream) in streams.iter().enumerate() {
        let ok = stream
            .wait_until(Duration::from_secs(15), |s| s.connects >= 2)
            .await;
        assert!(
            ok,
            "device {i} did not reconnect within 15 s of the restart: {:?}\nserver log:\n{}",
            stream.stats(),
            rig.server.log_tail(30)
        );
    }
    let reconnected_after = killed.elapsed();

    // A device in doubt resends all 50 acknowledged fixes with 10 new ones: all are acked,
    // none stored twice.
    drop(doubter_ws);
    let mut doubter_ws = Device::connect(&rig.server.ws_url(), &doubter.token)
        .await
        .expect("reconnect the hand-driven device");
    doubter_ws
        .send_batch(doubter_frames.clone())
        .await
        .expect("resend 60 fixes");
    let all_sixty: BTreeSet<u64> = (1..=60).collect();
    let acked = doubter_ws
        .wait_acks(&all_sixty, Duration::from_secs(10))
        .await;
    assert_eq!(
        acked, all_sixty,
        "acks for a resend of 50 stored and 10 new fixes ({:?})",
        doubter_ws.other_messages
    );
    doubter_ws.close().await;

    tokio::time::sleep(Duration::from_secs(1)).await;
    let stats = drain_all(&mut streams, Duration::from_secs(20), &rig.server).await;
    let duplicates_seen = rig.metric("reports_duplicate_total").await.unwrap_or(0.0);
    assert!(
        duplicates_seen >= 50.0,
        "the restarted server counted {duplicates_seen} duplicate reports; the 50 resent \
         fixes alone are duplicates"
    );

    let history = rig.history(&devices).await;
    assert_history_complete(&stats, &history);
    let doubter_history = rig.history(std::slice::from_ref(&doubter)).await;
    assert_eq!(
        doubter_history.per_device[0], all_sixty,
        "the hand-driven device's stored seqs"
    );
    assert_eq!(doubter_history.rows, 60, "the hand-driven device's rows");
    let sent: usize = stats.iter().map(|s| s.sent.len()).sum();
    let resent: u64 = stats.iter().map(|s| s.resent).sum();
    let closes: Vec<_> = stats.iter().map(|s| s.closes.clone()).collect();
    eprintln!(
        "killed mid-stream: {acked_at_kill} acked and {unacked_at_kill} unacked at the kill, \
         {sent_while_down} sampled by the time of the restart; down {down_for:?}, all \
         reconnected {reconnected_after:?} after the kill; {sent} fixes sent, {resent} resent \
         by the streaming devices; the restarted server counted {duplicates_seen} duplicate \
         reports (50 of them from the hand-driven device's deliberate resend); {} rows stored \
         for the streaming devices, 60 for the hand-driven one, no duplicates; closes \
         {closes:?}; test took {:?}",
        history.rows,
        started.elapsed()
    );
}

// ---------------------------------------------------------------------------------------------
// (b) PostgreSQL restarted
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_restart_pauses_acks_keeps_memory_bounded_and_loses_nothing() {
    let started = Instant::now();
    let mut rig = rig().await;
    let pid = rig.server.pid().expect("geoward pid");
    let rss = RssSampler::start(pid);
    let devices = rig.register_devices(OUTAGE_DEVICES).await;
    let mut streams = rig.stream(&devices, OUTAGE_FIXES_PER_SECOND);
    wait_first_acks(&streams, &rig.server).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (rss_before_kb, mark) = rss.mark();

    // PostgreSQL goes away: acks stop, devices keep sending.
    let stopping = Instant::now();
    rig.pg.stop().await.expect("stop the private PostgreSQL");
    let stop_took = stopping.elapsed();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let acked_down = total_acked(&streams);
    let sent_down = total_sent(&streams);
    let flat_until = Instant::now() + Duration::from_millis(2700);
    let acks_stay_flat = async {
        while Instant::now() < flat_until {
            let acked = total_acked(&streams);
            assert_eq!(
                acked, acked_down,
                "fixes were acknowledged while PostgreSQL was down (an ack promises a commit)"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let (ready_while_down, ()) = tokio::join!(rig.readyz(), acks_stay_flat);
    let sent_during_outage = total_sent(&streams) - sent_down;
    let rss_down_kb = rss.max_since(mark);
    assert!(
        sent_during_outage > 0,
        "devices sent nothing during the outage"
    );
    assert_eq!(
        ready_while_down, 503,
        "GET /readyz while PostgreSQL is down"
    );
    assert!(
        rig.server.is_running(),
        "geoward died while PostgreSQL was down:\n{}",
        rig.server.log_tail(30)
    );

    // PostgreSQL comes back: ingest resumes without restarting geoward.
    let starting = Instant::now();
    rig.pg
        .start_again()
        .await
        .unwrap_or_else(|e| panic!("the private PostgreSQL does not start again: {e:#}"));
    let outage = stopping.elapsed();
    let start_took = starting.elapsed();
    let resume_deadline = Instant::now() + Duration::from_secs(15);
    while total_acked(&streams) <= acked_down {
        assert!(
            Instant::now() < resume_deadline,
            "no ack within 15 s of PostgreSQL being back\nserver log:\n{}",
            rig.server.log_tail(30)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let resumed_after = starting.elapsed();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let stats = drain_all(&mut streams, Duration::from_secs(20), &rig.server).await;
    let duplicates_seen = rig.metric("reports_duplicate_total").await;
    let store_errors = rig.metric("store_errors_total").await;
    let rss_max_kb = rss.max_kb();
    let rss_samples = rss.len();
    drop(rss);

    let history = rig.history(&devices).await;
    assert_history_complete(&stats, &history);
    assert!(
        rss_samples > 0 && rss_max_kb > 0,
        "could not read geoward's RSS from /proc/{pid}/status"
    );
    assert!(
        rss_max_kb < RSS_BOUND_KB,
        "geoward's RSS reached {rss_max_kb} kB (bound {RSS_BOUND_KB} kB)"
    );
    let connects: Vec<u64> = stats.iter().map(|s| s.connects).collect();
    eprintln!(
        "PostgreSQL restart: stop took {stop_took:?}, down {outage:?} in all, start took \
         {start_took:?}; acks flat at {acked_down} while {sent_during_outage} fixes were sent; \
         first ack {resumed_after:?} after PostgreSQL started again; readyz while down \
         {ready_while_down}; RSS before {rss_before_kb} kB, max while down {rss_down_kb} kB, max \
         overall {rss_max_kb} kB ({rss_samples} samples); {} rows stored, no duplicates \
         (duplicates seen by the server {duplicates_seen:?}, store errors {store_errors:?}); \
         connections per device {connects:?}; test took {:?}",
        history.rows,
        started.elapsed()
    );
}

// ---------------------------------------------------------------------------------------------
// (c) Redis restarted, losing its data
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restart_is_survived_and_live_state_is_rebuilt() {
    let started = Instant::now();
    let mut rig = rig().await;
    let devices = rig.register_devices(DEVICES).await;
    let mut streams = rig.stream(&devices, FIXES_PER_SECOND);
    wait_first_acks(&streams, &rig.server).await;
    let max_unacked_up = max_unacked_for(&streams, Duration::from_millis(1500)).await;

    let epoch_key = format!("{}:live:epoch", rig.prefix);
    let dev_key = |id: &str| format!("{}:dev:{{{id}}}", rig.prefix);
    {
        let mut conn = rig.redis_conn().await;
        let exists: bool = redis::cmd("EXISTS")
            .arg(&epoch_key)
            .query_async(&mut conn)
            .await
            .expect("EXISTS epoch");
        assert!(exists, "{epoch_key} missing before the fault");
        let seq: Option<String> = redis::cmd("HGET")
            .arg(dev_key(&devices[0].id))
            .arg("pos_seq")
            .query_async(&mut conn)
            .await
            .expect("HGET pos_seq");
        assert!(
            seq.is_some(),
            "no live state for a streaming device before the fault"
        );
    }

    // Redis goes away (and with it all live state): history and acks go on.
    let stopping = Instant::now();
    rig.redis.stop().await.expect("stop the private Redis");
    let stop_took = stopping.elapsed();
    let acked_before: Vec<usize> = streams.iter().map(|s| s.stats().acked.len()).collect();
    let max_unacked_down = max_unacked_for(&streams, Duration::from_secs(3)).await;
    let ready_while_down = rig.readyz().await;
    for (i, stream) in streams.iter().enumerate() {
        let acked = stream.stats().acked.len();
        assert!(
            acked >= acked_before[i] + 20,
            "device {i}: only {} acks in 3 s with Redis down (history must not depend on \
             Redis)\nserver log:\n{}",
            acked - acked_before[i],
            rig.server.log_tail(30)
        );
    }
    let acked_while_down = total_acked(&streams) - acked_before.iter().sum::<usize>();
    assert_eq!(ready_while_down, 503, "GET /readyz while Redis is down");
    // Drain while Redis is still down, so live state can only come back from the rebuild.
    let drain_started = Instant::now();
    let stats = drain_all(&mut streams, Duration::from_secs(20), &rig.server).await;
    let drain_took = drain_started.elapsed();
    assert!(
        rig.server.is_running(),
        "geoward died while Redis was down:\n{}",
        rig.server.log_tail(30)
    );

    // Redis comes back empty: geoward reconnects and rebuilds live state from PostgreSQL.
    rig.redis
        .start_again()
        .await
        .unwrap_or_else(|e| panic!("the private Redis does not start again: {e:#}"));
    let back = Instant::now();
    let outage = stopping.elapsed();
    let expected: Vec<(String, u64)> = devices
        .iter()
        .zip(&stats)
        .map(|(d, s)| (dev_key(&d.id), *s.sent.last().expect("sent something")))
        .collect();
    // Three things come back, each observed on its own: the rebuilt live state (epoch marker
    // and every device hash at its last fix), readiness, and the control-channel subscription
    // (device replacement and revocation across nodes).
    let channel = format!("{}:control", rig.prefix);
    let mut conn = rig.redis_conn().await;
    let deadline = back + Duration::from_secs(15);
    let (mut epoch_after, mut rebuilt_after, mut ready_after, mut subscribed_after) =
        (None, None, None, None);
    loop {
        let mut state = String::new();
        if rebuilt_after.is_none() {
            let epoch: bool = redis::cmd("EXISTS")
                .arg(&epoch_key)
                .query_async(&mut conn)
                .await
                .expect("EXISTS epoch");
            if epoch && epoch_after.is_none() {
                epoch_after = Some(back.elapsed());
            }
            let mut complete = epoch;
            state.push_str(&format!("\n  {epoch_key} exists: {epoch}"));
            for (key, last_seq) in &expected {
                let hash: std::collections::HashMap<String, String> = redis::cmd("HGETALL")
                    .arg(key)
                    .query_async(&mut conn)
                    .await
                    .expect("HGETALL");
                let seq = hash.get("pos_seq").and_then(|v| v.parse::<u64>().ok());
                let lat = hash.get("lat").and_then(|v| v.parse::<f64>().ok());
                let lon = hash.get("lon").and_then(|v| v.parse::<f64>().ok());
                let drift = (last_seq % 1000) as f64 * 1e-5;
                complete &= seq == Some(*last_seq)
                    && lat.is_some_and(|lat| (lat - (33.6251 + drift)).abs() < 1e-9)
                    && lon.is_some_and(|lon| (lon - (114.6512 + drift)).abs() < 1e-9);
                state.push_str(&format!("\n  {key}: {hash:?} (want pos_seq {last_seq})"));
            }
            if complete {
                rebuilt_after = Some(back.elapsed());
            }
        }
        if ready_after.is_none() {
            let status = rig.readyz().await;
            if status == 200 {
                ready_after = Some(back.elapsed());
            }
            state.push_str(&format!("\n  GET /readyz: {status}"));
        }
        if subscribed_after.is_none() {
            let (_, subscribers): (String, i64) = redis::cmd("PUBSUB")
                .arg("NUMSUB")
                .arg(&channel)
                .query_async(&mut conn)
                .await
                .expect("PUBSUB NUMSUB");
            if subscribers >= 1 {
                subscribed_after = Some(back.elapsed());
            }
            state.push_str(&format!("\n  subscribers of {channel}: {subscribers}"));
        }
        if rebuilt_after.is_some() && ready_after.is_some() && subscribed_after.is_some() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "geoward has not recovered 15 s after Redis is back (rebuilt: {rebuilt_after:?}, \
             ready: {ready_after:?}, subscribed: {subscribed_after:?}); still missing:{state}\n\
             server log:\n{}",
            rig.server.log_tail(30)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let rebuilds = rig.metric("live_rebuilds_total").await;

    let history = rig.history(&devices).await;
    assert_history_complete(&stats, &history);
    eprintln!(
        "Redis restart: stop took {stop_took:?}, down {outage:?}; {acked_while_down} fixes \
         acked in the 3 s with Redis down (readyz {ready_while_down}); fixes awaiting their ack \
         at most {max_unacked_up} with Redis up, {max_unacked_down} with it down; drain took \
         {drain_took:?}; after Redis was back: readyz 200 at {ready_after:?}, control channel \
         subscribed again at {subscribed_after:?}, epoch marker at {epoch_after:?}, all {} \
         device hashes rebuilt with the last seq at {rebuilt_after:?} \
         (live rebuilds since start, by metric: {rebuilds:?}); {} rows stored, no duplicates; test took {:?}",
        expected.len(),
        history.rows,
        started.elapsed()
    );
}
