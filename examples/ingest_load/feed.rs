//! `--supervised`: watching the officers' feed (`GET /v1/officer/ws`) as the supervisor, and the
//! fix→officer-feed report.
//!
//! The watcher runs on its own thread with its own runtime, so the receipt time of a frame is
//! not delayed behind the device tasks' queue. Latency of an `opened` frame = wall clock at
//! receipt − `alert.event_at`, the device time of the deciding fix, which is the driver's wall
//! clock when it wrote that fix (truncated to the millisecond: up to 1 ms is added).

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _};
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio::sync::{oneshot, watch};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use crate::supervised::Setup;
use crate::{bucket_quantile, fmt_map, percentile, Ws};

/// One alert frame as received.
pub struct Frame {
    pub change: String,
    pub kind: String,
    pub supervisee: String,
    pub event_at: DateTime<Utc>,
    pub cleared_at: Option<DateTime<Utc>>,
    pub received: DateTime<Utc>,
    /// The alert, for printing a false one.
    pub alert: Value,
}

/// Everything the feed said.
#[derive(Default)]
pub struct FeedLog {
    pub frames: Vec<Frame>,
    pub reconnects: u64,
    /// Closes, socket errors, error frames and unparseable frames, by kind.
    pub problems: BTreeMap<String, u64>,
    pub pings: u64,
}

pub struct Watcher {
    stop: watch::Sender<bool>,
    thread: std::thread::JoinHandle<FeedLog>,
}

impl Watcher {
    /// Connects and returns once the feed said `ready`.
    pub async fn open(base: &str, token: &str) -> anyhow::Result<Watcher> {
        let url = format!(
            "{}/v1/officer/ws",
            base.replacen("https://", "wss://", 1)
                .replacen("http://", "ws://", 1)
        );
        let (stop, stop_rx) = watch::channel(false);
        let (ready_tx, ready_rx) = oneshot::channel();
        let token = token.to_owned();
        let thread = std::thread::Builder::new()
            .name("officer-feed".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a runtime for the feed watcher");
                runtime.block_on(watch_feed(url, token, stop_rx, ready_tx))
            })?;
        ready_rx
            .await
            .map_err(|_| anyhow!("the feed watcher ended before the feed was ready"))??;
        Ok(Watcher { stop, thread })
    }

    pub async fn finish(self) -> FeedLog {
        let _ = self.stop.send(true);
        let thread = self.thread;
        tokio::task::spawn_blocking(move || thread.join().unwrap_or_default())
            .await
            .unwrap_or_default()
    }
}

async fn connect(url: &str, token: &str, after: Option<&str>) -> anyhow::Result<Ws> {
    let url = match after {
        Some(cursor) => format!("{url}?after={cursor}"),
        None => url.to_owned(),
    };
    let mut request = url.as_str().into_client_request()?;
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {token}").parse()?);
    let (mut ws, _) = tokio_tungstenite::connect_async(request)
        .await
        .context("opening the officer feed")?;
    // Frames replayed before `ready` are changes we missed while reconnecting: keep them out
    // of the latency figures, they were not live.
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) => {
                let v: Value = serde_json::from_str(text.as_str()).unwrap_or_default();
                if v["type"] == "ready" {
                    return Ok(ws);
                }
            }
            Some(Ok(_)) => {}
            Some(Err(err)) => bail!("officer feed before ready: {err}"),
            None => bail!("officer feed closed before ready"),
        }
    }
}

async fn watch_feed(
    url: String,
    token: String,
    mut stop: watch::Receiver<bool>,
    ready: oneshot::Sender<anyhow::Result<()>>,
) -> FeedLog {
    let mut log = FeedLog::default();
    let mut ws = match connect(&url, &token, None).await {
        Ok(ws) => ws,
        Err(err) => {
            let _ = ready.send(Err(err));
            return log;
        }
    };
    let _ = ready.send(Ok(()));
    let mut cursor: Option<String> = None;
    loop {
        let message = tokio::select! {
            _ = stop.changed() => break,
            message = ws.next() => message,
        };
        let received = Utc::now();
        let problem = match message {
            Some(Ok(Message::Text(text))) => {
                match parse(text.as_str(), received) {
                    Ok(Some((c, frame))) => {
                        cursor = Some(c);
                        log.frames.push(frame);
                    }
                    Ok(None) => {}
                    Err(kind) => *log.problems.entry(kind).or_default() += 1,
                }
                continue;
            }
            Some(Ok(Message::Ping(_))) => {
                log.pings += 1;
                continue;
            }
            Some(Ok(Message::Close(frame))) => {
                format!("close {}", frame.map_or(1005, |f| u16::from(f.code)))
            }
            Some(Ok(_)) => continue,
            Some(Err(err)) => format!("read error: {err}"),
            None => "eof".to_owned(),
        };
        *log.problems.entry(problem).or_default() += 1;
        // Resume where we were (4001: fell behind); replayed changes are not counted.
        loop {
            if *stop.borrow() || log.reconnects >= 20 {
                return log;
            }
            log.reconnects += 1;
            tokio::time::sleep(Duration::from_millis(250)).await;
            match connect(&url, &token, cursor.as_deref()).await {
                Ok(new) => {
                    ws = new;
                    break;
                }
                Err(err) => *log.problems.entry(format!("reconnect: {err}")).or_default() += 1,
            }
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(2), ws.close(None)).await;
    log
}

/// An alert frame's cursor and contents; None for other frames; Err for a bad one.
fn parse(text: &str, received: DateTime<Utc>) -> Result<Option<(String, Frame)>, String> {
    let v: Value = serde_json::from_str(text).map_err(|_| "unparseable frame".to_owned())?;
    match v["type"].as_str() {
        Some("alert") => {}
        Some("error") => return Err(format!("error frame {}", v["code"])),
        _ => return Ok(None),
    }
    let alert = &v["alert"];
    let time = |field: &str| alert[field].as_str().and_then(|t| t.parse().ok());
    let event_at = time("event_at").ok_or("alert frame without event_at")?;
    let text_of = |v: &Value| v.as_str().unwrap_or("?").to_owned();
    Ok(Some((
        text_of(&v["cursor"]),
        Frame {
            change: text_of(&v["change"]),
            kind: text_of(&alert["kind"]),
            supervisee: text_of(&alert["supervisee_id"]),
            event_at,
            cleared_at: time("cleared_at"),
            received,
            alert: alert.clone(),
        },
    )))
}

/// The supervised part of the results, printed after the load table and added to the JSON.
pub struct Report {
    pub lines: Vec<String>,
    pub json: Value,
}

/// `window` is the measured window in wall time; `a` and `b` the /metrics scrapes at its edges;
/// `depth_max` the largest evaluation queue depth sampled during it.
pub fn report(
    setup: &Setup,
    log: &FeedLog,
    window: (DateTime<Utc>, DateTime<Utc>),
    a: &BTreeMap<String, f64>,
    b: &BTreeMap<String, f64>,
    depth_max: Option<f64>,
) -> Report {
    let inside = |t: DateTime<Utc>| window.0 <= t && t < window.1;
    let mut latencies_us = Vec::new();
    let (mut opened, mut cleared, mut foreign) = (0u64, 0u64, 0u64);
    let (mut opened_all, mut changes, mut kinds) =
        (0u64, BTreeMap::new(), BTreeMap::<String, u64>::new());
    let mut false_alerts = Vec::new();
    for f in &log.frames {
        let Some(&violator) = setup.supervisees.get(&f.supervisee) else {
            foreign += 1;
            continue;
        };
        *changes.entry(f.change.clone()).or_insert(0u64) += 1;
        match f.change.as_str() {
            "opened" => {
                opened_all += 1;
                *kinds.entry(f.kind.clone()).or_default() += 1;
                if f.kind != "exclusion_zone_entered" || !violator {
                    false_alerts.push(&f.alert);
                }
                if inside(f.event_at) {
                    opened += 1;
                    let us = (f.received - f.event_at)
                        .num_microseconds()
                        .unwrap_or(i64::MAX);
                    latencies_us.push(u32::try_from(us.max(0)).unwrap_or(u32::MAX));
                }
            }
            "cleared" if inside(f.cleared_at.unwrap_or(f.received)) => cleared += 1,
            _ => {}
        }
    }
    latencies_us.sort_unstable();
    let lat = &latencies_us;
    let (p50, p95, p99) = (
        percentile(lat, 50.0),
        percentile(lat, 95.0),
        percentile(lat, 99.0),
    );
    let max = lat.last().map(|&v| f64::from(v) / 1000.0);
    let window_s = (window.1 - window.0).num_milliseconds() as f64 / 1000.0;
    // Two passes through the zone per period (out and back).
    let expected = setup.violators as f64 * 2.0 * window_s / setup.period_s;
    let ms = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.1}"));

    let mut server = BTreeMap::new();
    let mut histogram_lines = Vec::new();
    for (name, label) in [
        (
            "geoward_fix_officer_feed_duration_seconds",
            "fix_officer_feed",
        ),
        (
            "geoward_fix_alert_stored_duration_seconds",
            "fix_alert_stored",
        ),
    ] {
        let d = |s: &str| {
            b.get(&format!("{name}{s}"))
                .map(|v| v - a.get(&format!("{name}{s}")).copied().unwrap_or(0.0))
        };
        let (n, sum) = (d("_count"), d("_sum"));
        let mean_ms = match (n, sum) {
            (Some(n), Some(s)) if n > 0.0 => Some(s / n * 1e3),
            _ => None,
        };
        let p99_ms = bucket_quantile(a, b, name, 0.99).map(|v| v * 1e3);
        histogram_lines.push(format!(
            "  {label:<18} count {}  mean {} ms  p99 <= {} ms (bucket)",
            n.map_or("-".to_owned(), |v| format!("{v:.0}")),
            ms(mean_ms),
            ms(p99_ms)
        ));
        server.insert(
            label,
            json!({ "count": n, "mean_ms": mean_ms, "p99_le_ms": p99_ms }),
        );
    }
    let depth_end = b.get("geoward_evaluation_queue_depth").copied();

    let count = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.0}"));
    let mut lines = vec![
        format!(
            "supervisees               {} ({} violators, period {} s), zone {}",
            setup.supervisees.len(),
            setup.violators,
            setup.period_s,
            setup.zone_id
        ),
        format!(
            "alerts opened (window)    {opened}  (expected about {expected:.0}: 2 passes per \
             period per violator)"
        ),
        format!("alerts cleared (window)   {cleared}"),
        format!(
            "opened, whole run         {opened_all}: {}",
            fmt_map(&kinds)
        ),
        format!("feed changes, whole run   {}", fmt_map(&changes)),
        format!(
            "fix->officer feed ms p50/p95/p99/max  {} / {} / {} / {}  ({} opened in window)",
            ms(p50),
            ms(p95),
            ms(p99),
            ms(max),
            lat.len()
        ),
        format!(
            "feed reconnects           {}  problems: {}",
            log.reconnects,
            fmt_map(&log.problems)
        ),
        format!("other supervisees' frames {foreign}"),
        "server /metrics over the window (officer feed):".to_owned(),
    ];
    lines.extend(histogram_lines);
    lines.push(format!(
        "  evaluation queue depth   end {}  max sampled {}",
        count(depth_end),
        count(depth_max)
    ));
    if false_alerts.is_empty() {
        lines.push("false alerts              0".to_owned());
    } else {
        lines.push(format!(
            "!!! FALSE ALERTS: {} opened alert(s) other than exclusion_zone_entered on a \
             violator; the first ones:",
            false_alerts.len()
        ));
        for alert in false_alerts.iter().take(10) {
            lines.push(format!("!!!   {alert}"));
        }
    }
    let json = json!({
        "supervisees": setup.supervisees.len(),
        "violators": setup.violators,
        "violation_period_s": setup.period_s,
        "zone_id": setup.zone_id,
        "alerts_opened": opened,
        "alerts_opened_expected": expected,
        "alerts_cleared": cleared,
        "opened_whole_run_by_kind": kinds,
        "changes_whole_run": changes,
        "false_alerts": false_alerts.len(),
        "false_alert_examples": false_alerts.iter().take(10).collect::<Vec<_>>(),
        "fix_officer_feed_ms": { "p50": p50, "p95": p95, "p99": p99, "max": max, "n": lat.len() },
        "feed_reconnects": log.reconnects,
        "feed_problems": log.problems,
        "feed_pings": log.pings,
        "other_supervisees_frames": foreign,
        "server": server,
        "evaluation_queue_depth": { "end": depth_end, "max_sampled": depth_max },
    });
    Report { lines, json }
}

/// Samples `geoward_evaluation_queue_depth` once a second until `until`; the largest value.
pub fn sample_queue_depth(
    http: reqwest::Client,
    url: String,
    until: std::time::Instant,
) -> tokio::task::JoinHandle<Option<f64>> {
    tokio::spawn(async move {
        let mut max: Option<f64> = None;
        while std::time::Instant::now() < until {
            if let Some(&v) = crate::scrape(&http, &url)
                .await
                .get("geoward_evaluation_queue_depth")
            {
                max = Some(max.map_or(v, |m: f64| m.max(v)));
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        max
    })
}

/// After the devices stopped: waits (at most `limit`) for the evaluation queue to empty, then
/// one more second for the last alerts to reach the feed.
pub async fn settle(http: &reqwest::Client, url: &str, limit: Duration) {
    let deadline = std::time::Instant::now() + limit;
    while std::time::Instant::now() < deadline {
        let depth = crate::scrape(http, url)
            .await
            .get("geoward_evaluation_queue_depth")
            .copied();
        if depth.is_some_and(|d| d <= 0.0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
}
