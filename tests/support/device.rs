//! A device speaking protocol v1 over `GET /v1/device/ws`, for tests.
//!
//! [`Device`] is one connection driven step by step by the test. [`StreamingDevice`] is a
//! background task behaving like a real tag: it samples fixes at a steady rate with increasing
//! seq, keeps every unacknowledged frame, and after a lost connection reconnects with bounded
//! backoff and resends all of them (store-and-forward). Fault tests compare its `sent()` and
//! `acked()` sets with what the server stored.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::header::AUTHORIZATION;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;

pub type WsStream = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub const DEVICE_WS_PATH: &str = "/v1/device/ws";
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const SEND_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a device could not connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectError {
    /// The server answered the upgrade request with this HTTP status (401 for a bad token).
    Http(u16),
    /// Anything else: refused, reset, timed out.
    Other(String),
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectError::Http(status) => write!(f, "upgrade refused with HTTP {status}"),
            ConnectError::Other(message) => write!(f, "cannot connect: {message}"),
        }
    }
}

impl std::error::Error for ConnectError {}

/// What the server said.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerMessage {
    Ack(Vec<u64>),
    Error {
        seq: Option<u64>,
        code: String,
        message: String,
    },
    /// A close frame (with its code), or the connection ended without one (code None, the
    /// reason says how).
    Closed {
        code: Option<u16>,
        reason: String,
    },
    /// A text frame of another type, or not JSON (kept as a JSON string).
    Other(Value),
}

/// Parses one server text frame.
pub fn parse_server_text(text: &str) -> ServerMessage {
    let Ok(value) = serde_json::from_str::<Value>(text) else {
        return ServerMessage::Other(Value::String(text.to_owned()));
    };
    match value["type"].as_str() {
        Some("ack") => ServerMessage::Ack(
            value["seqs"]
                .as_array()
                .map(|seqs| seqs.iter().filter_map(Value::as_u64).collect())
                .unwrap_or_default(),
        ),
        Some("error") => ServerMessage::Error {
            seq: value["seq"].as_u64(),
            code: value["code"].as_str().unwrap_or_default().to_owned(),
            message: value["message"].as_str().unwrap_or_default().to_owned(),
        },
        _ => ServerMessage::Other(value),
    }
}

/// The current time as the protocol writes it (RFC 3339, UTC, milliseconds).
pub fn now_ts() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A fix frame from GPS with battery 87 and the strap closed.
pub fn fix_json(seq: u64, ts: &str, lat: f64, lon: f64, acc: f64) -> Value {
    json!({
        "type": "fix", "seq": seq, "ts": ts, "lat": lat, "lon": lon, "acc": acc,
        "src": "gps", "bat": 87, "strap": "closed",
    })
}

/// A status frame.
pub fn status_json(seq: u64, ts: &str, bat: u8, strap: &str) -> Value {
    json!({ "type": "status", "seq": seq, "ts": ts, "bat": bat, "strap": strap })
}

/// A batch frame.
pub fn batch_json(items: Vec<Value>) -> Value {
    json!({ "type": "batch", "items": items })
}

/// Opens `<ws_base>/v1/device/ws` with the device token.
pub async fn connect_ws(ws_base: &str, token: &str) -> Result<WsStream, ConnectError> {
    let url = format!("{}{DEVICE_WS_PATH}", ws_base.trim_end_matches('/'));
    let mut request = url
        .as_str()
        .into_client_request()
        .map_err(|e| ConnectError::Other(format!("bad URL {url}: {e}")))?;
    let bearer = HeaderValue::from_str(&format!("Bearer {token}"))
        .map_err(|e| ConnectError::Other(format!("bad token: {e}")))?;
    request.headers_mut().insert(AUTHORIZATION, bearer);
    match tokio::time::timeout(CONNECT_TIMEOUT, tokio_tungstenite::connect_async(request)).await {
        Ok(Ok((ws, _))) => Ok(ws),
        Ok(Err(tungstenite::Error::Http(response))) => {
            Err(ConnectError::Http(response.status().as_u16()))
        }
        Ok(Err(err)) => Err(ConnectError::Other(err.to_string())),
        Err(_) => Err(ConnectError::Other(format!(
            "no upgrade within {CONNECT_TIMEOUT:?}"
        ))),
    }
}

/// Reads the next meaningful message; pings are answered by tungstenite as we read.
async fn read_message(ws: &mut WsStream) -> ServerMessage {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) => return parse_server_text(text.as_str()),
            Some(Ok(Message::Binary(bytes))) => {
                return ServerMessage::Other(json!({ "binary_len": bytes.len() }))
            }
            Some(Ok(Message::Close(frame))) => {
                return match frame {
                    Some(frame) => ServerMessage::Closed {
                        code: Some(u16::from(frame.code)),
                        reason: frame.reason.as_str().to_owned(),
                    },
                    None => ServerMessage::Closed {
                        code: None,
                        reason: "close frame without a code".into(),
                    },
                }
            }
            Some(Ok(_)) => continue,
            Some(Err(err)) => {
                return ServerMessage::Closed {
                    code: None,
                    reason: err.to_string(),
                }
            }
            None => {
                return ServerMessage::Closed {
                    code: None,
                    reason: "connection ended".into(),
                }
            }
        }
    }
}

/// One device connection, driven by the test.
pub struct Device {
    ws: WsStream,
    /// Set once the connection has closed; later reads return it again.
    closed: Option<ServerMessage>,
    /// Messages other than acks that `wait_acks` read past, in order.
    pub other_messages: Vec<ServerMessage>,
}

impl Device {
    pub async fn connect(ws_base: &str, token: &str) -> Result<Device, ConnectError> {
        Ok(Device {
            ws: connect_ws(ws_base, token).await?,
            closed: None,
            other_messages: Vec::new(),
        })
    }

    pub async fn send_text(&mut self, text: &str) -> anyhow::Result<()> {
        tokio::time::timeout(SEND_TIMEOUT, self.ws.send(Message::text(text)))
            .await
            .context("send timed out")?
            .context("sending a frame")
    }

    pub async fn send_json(&mut self, value: &Value) -> anyhow::Result<()> {
        self.send_text(&value.to_string()).await
    }

    pub async fn send_fix(
        &mut self,
        seq: u64,
        ts: &str,
        lat: f64,
        lon: f64,
        acc: f64,
    ) -> anyhow::Result<()> {
        self.send_json(&fix_json(seq, ts, lat, lon, acc)).await
    }

    pub async fn send_binary(&mut self, bytes: Vec<u8>) -> anyhow::Result<()> {
        tokio::time::timeout(SEND_TIMEOUT, self.ws.send(Message::binary(bytes)))
            .await
            .context("send timed out")?
            .context("sending a frame")
    }

    pub async fn send_batch(&mut self, items: Vec<Value>) -> anyhow::Result<()> {
        self.send_json(&batch_json(items)).await
    }

    /// The next message within `timeout`, None when none came. After the connection closed,
    /// returns that `Closed` again at once.
    pub async fn next_message(&mut self, timeout: Duration) -> Option<ServerMessage> {
        if let Some(closed) = &self.closed {
            return Some(closed.clone());
        }
        let message = tokio::time::timeout(timeout, read_message(&mut self.ws))
            .await
            .ok()?;
        if matches!(message, ServerMessage::Closed { .. }) {
            self.closed = Some(message.clone());
        }
        Some(message)
    }

    /// Collects acked seqs until all of `expected` are acked, the connection closes or
    /// `timeout` passes; returns every seq acked meanwhile. Other messages are kept in
    /// `other_messages`.
    pub async fn wait_acks(
        &mut self,
        expected: &BTreeSet<u64>,
        timeout: Duration,
    ) -> BTreeSet<u64> {
        let deadline = Instant::now() + timeout;
        let mut acked = BTreeSet::new();
        while !expected.is_subset(&acked) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next_message(left).await {
                Some(ServerMessage::Ack(seqs)) => acked.extend(seqs),
                Some(closed @ ServerMessage::Closed { .. }) => {
                    self.other_messages.push(closed);
                    break;
                }
                Some(other) => self.other_messages.push(other),
                None => break,
            }
        }
        acked
    }

    /// Whether the connection has closed (as seen by a read).
    pub fn is_closed(&self) -> bool {
        self.closed.is_some()
    }

    /// Closes politely (code 1000) and waits briefly for the server's close.
    pub async fn close(mut self) {
        if self.closed.is_some() {
            return;
        }
        let _ = tokio::time::timeout(Duration::from_secs(2), self.ws.close(None)).await;
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            while let Some(Ok(_)) = self.ws.next().await {}
        })
        .await;
    }
}

// ---------------------------------------------------------------------------------------------
// StreamingDevice
// ---------------------------------------------------------------------------------------------

/// How a [`StreamingDevice`] behaves.
#[derive(Debug, Clone)]
pub struct StreamConfig {
    pub ws_base: String,
    pub token: String,
    /// Fixes sampled per second (also while disconnected: they are buffered). Keep it below
    /// geoward's `ingest.flood_frames_per_s` (100 by default).
    pub fixes_per_second: f64,
    pub first_seq: u64,
    /// Where the fixes are; each fix moves a little north-east of it.
    pub lat: f64,
    pub lon: f64,
    pub acc: f64,
    /// Backoff between connection attempts starts here and doubles up to `max_backoff`.
    pub min_backoff: Duration,
    pub max_backoff: Duration,
    /// After a reconnect, unacknowledged frames are resent as batches of this many items
    /// (default 200: geoward's `ingest.max_batch` is 1000, and resending thousands of single
    /// frames would trip its flood limit); 0 resends them one frame each.
    pub resend_batch: usize,
}

impl StreamConfig {
    pub fn new(ws_base: &str, token: &str) -> StreamConfig {
        StreamConfig {
            ws_base: ws_base.to_owned(),
            token: token.to_owned(),
            fixes_per_second: 10.0,
            first_seq: 1,
            lat: 33.6251,
            lon: 114.6512,
            acc: 8.0,
            min_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
            resend_batch: 200,
        }
    }
}

/// What a streaming device did so far.
#[derive(Debug, Clone, Default)]
pub struct StreamStats {
    /// Every seq sampled (sent, or buffered while disconnected).
    pub sent: BTreeSet<u64>,
    pub acked: BTreeSet<u64>,
    /// Sampled and neither acked nor rejected yet.
    pub unacked: BTreeSet<u64>,
    /// Seqs the server answered with an error, with its code.
    pub rejected: BTreeMap<u64, String>,
    /// Errors without a seq: (code, message).
    pub errors: Vec<(String, String)>,
    /// Successful connections (1 + reconnections).
    pub connects: u64,
    pub connect_failures: u64,
    pub last_connect_error: Option<ConnectError>,
    /// Close codes of lost connections (None: ended without a close frame).
    pub closes: Vec<Option<u16>>,
    /// Frames resent after reconnecting.
    pub resent: u64,
}

#[derive(Default)]
struct Shared {
    stats: StreamStats,
    /// The frames of `stats.unacked`.
    frames: BTreeMap<u64, Value>,
}

/// A device streaming fixes in the background; see the module doc.
pub struct StreamingDevice {
    shared: Arc<Mutex<Shared>>,
    sampling: Arc<AtomicBool>,
    stop: CancellationToken,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl StreamingDevice {
    /// Starts streaming at once (the first connection is made by the task).
    pub fn start(config: StreamConfig) -> StreamingDevice {
        let shared = Arc::new(Mutex::new(Shared::default()));
        let sampling = Arc::new(AtomicBool::new(true));
        let stop = CancellationToken::new();
        let task = tokio::spawn(run(config, shared.clone(), sampling.clone(), stop.clone()));
        StreamingDevice {
            shared,
            sampling,
            stop,
            task: Some(task),
        }
    }

    pub fn stats(&self) -> StreamStats {
        self.shared.lock().expect("stream state").stats.clone()
    }

    pub fn sent(&self) -> BTreeSet<u64> {
        self.stats().sent
    }

    pub fn acked(&self) -> BTreeSet<u64> {
        self.stats().acked
    }

    pub fn unacked(&self) -> BTreeSet<u64> {
        self.stats().unacked
    }

    /// Stops sampling new fixes; the task keeps (re)connecting and resending until stopped.
    pub fn stop_sampling(&self) {
        self.sampling.store(false, Ordering::SeqCst);
    }

    /// Waits until `done(stats)` holds; false on timeout.
    pub async fn wait_until(&self, timeout: Duration, done: impl Fn(&StreamStats) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if done(&self.stats()) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops sampling and waits until every sampled fix is acked or rejected.
    pub async fn drain(&self, timeout: Duration) -> bool {
        self.stop_sampling();
        self.wait_until(timeout, |stats| stats.unacked.is_empty())
            .await
    }

    /// Stops the task (closing the connection) and returns the final stats.
    pub async fn stop(&mut self) -> StreamStats {
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
        self.stats()
    }
}

impl Drop for StreamingDevice {
    fn drop(&mut self) {
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// The streaming task.
async fn run(
    config: StreamConfig,
    shared: Arc<Mutex<Shared>>,
    sampling: Arc<AtomicBool>,
    stop: CancellationToken,
) {
    let period = Duration::from_secs_f64(1.0 / config.fixes_per_second.max(0.001));
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut next_seq = config.first_seq;
    let mut ws: Option<WsStream> = None;
    let mut backoff = config.min_backoff;
    let mut next_attempt = tokio::time::Instant::now();
    let lock = || shared.lock().expect("stream state");

    loop {
        if ws.is_none() && tokio::time::Instant::now() >= next_attempt {
            let attempt = tokio::select! {
                _ = stop.cancelled() => break,
                attempt = connect_ws(&config.ws_base, &config.token) => attempt,
            };
            match attempt {
                Ok(mut stream) => {
                    backoff = config.min_backoff;
                    let pending: Vec<Value> = {
                        let mut state = lock();
                        state.stats.connects += 1;
                        state.frames.values().cloned().collect()
                    };
                    let count = pending.len() as u64;
                    if resend(&mut stream, pending, config.resend_batch).await {
                        lock().stats.resent += count;
                        ws = Some(stream);
                    } else {
                        next_attempt = tokio::time::Instant::now() + backoff;
                    }
                }
                Err(err) => {
                    let mut state = lock();
                    state.stats.connect_failures += 1;
                    state.stats.last_connect_error = Some(err);
                    next_attempt = tokio::time::Instant::now() + backoff;
                    backoff = (backoff * 2).min(config.max_backoff);
                }
            }
            continue;
        }

        let connected = ws.is_some();
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = ticker.tick() => {
                if !sampling.load(Ordering::SeqCst) {
                    continue;
                }
                let seq = next_seq;
                next_seq += 1;
                let drift = (seq % 1000) as f64 * 1e-5;
                let frame = fix_json(seq, &now_ts(), config.lat + drift, config.lon + drift, config.acc);
                {
                    let mut state = lock();
                    state.stats.sent.insert(seq);
                    state.stats.unacked.insert(seq);
                    state.frames.insert(seq, frame.clone());
                }
                if let Some(stream) = ws.as_mut() {
                    let sent = tokio::time::timeout(
                        SEND_TIMEOUT,
                        stream.send(Message::text(frame.to_string())),
                    )
                    .await;
                    if !matches!(sent, Ok(Ok(()))) {
                        lock().stats.closes.push(None);
                        ws = None;
                        next_attempt = tokio::time::Instant::now() + backoff;
                    }
                }
            }
            message = async {
                match ws.as_mut() {
                    Some(stream) => read_message(stream).await,
                    None => std::future::pending().await,
                }
            }, if connected => {
                let mut state = lock();
                match message {
                    ServerMessage::Ack(seqs) => {
                        for seq in seqs {
                            state.frames.remove(&seq);
                            state.stats.unacked.remove(&seq);
                            state.stats.acked.insert(seq);
                        }
                    }
                    ServerMessage::Error { seq: Some(seq), code, .. } => {
                        state.frames.remove(&seq);
                        state.stats.unacked.remove(&seq);
                        state.stats.rejected.insert(seq, code);
                    }
                    ServerMessage::Error { seq: None, code, message } => {
                        state.stats.errors.push((code, message));
                    }
                    ServerMessage::Closed { code, .. } => {
                        state.stats.closes.push(code);
                        drop(state);
                        ws = None;
                        next_attempt = tokio::time::Instant::now() + backoff;
                    }
                    ServerMessage::Other(_) => {}
                }
            }
            _ = tokio::time::sleep_until(next_attempt), if !connected => {}
        }
    }
    if let Some(mut stream) = ws {
        let _ = tokio::time::timeout(Duration::from_secs(1), stream.close(None)).await;
    }
}

/// Sends buffered frames after a reconnect; false when the connection failed meanwhile.
async fn resend(stream: &mut WsStream, frames: Vec<Value>, batch: usize) -> bool {
    let texts: Vec<String> = if batch == 0 {
        frames.iter().map(Value::to_string).collect()
    } else {
        frames
            .chunks(batch)
            .map(|chunk| batch_json(chunk.to_vec()).to_string())
            .collect()
    };
    for text in texts {
        let sent = tokio::time::timeout(SEND_TIMEOUT, stream.feed(Message::text(text))).await;
        if !matches!(sent, Ok(Ok(()))) {
            return false;
        }
    }
    matches!(
        tokio::time::timeout(SEND_TIMEOUT, stream.flush()).await,
        Ok(Ok(()))
    )
}
