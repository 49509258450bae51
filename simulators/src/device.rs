//! One simulated tag on the wire: a tokio task that ticks its [`DeviceScript`] on the fleet's
//! schedule, sends what the script says over its WebSocket (`docs/device-protocol.md`), reads
//! acks and errors, reconnects and resends after a lost connection, and counts everything in
//! the fleet's shared `Counters`. The connection and counters are in `device/net.rs`, the
//! ack fast path and batch building in `device/frames.rs`, what the server sends (acks, errors,
//! closes, lost connections) and reconnecting in `device/inbound.rs`.
//!
//! # Invariants
//! - a report is *outstanding* from the tick that produced it (or the flush of its buffer) until
//!   it is acked, rejected by an `error` frame, or the device ends; only then is it forgotten,
//!   so every unacknowledged report is resent, oldest first, after each reconnect;
//! - a seq is counted in `acked` at most once, however often it is resent and acked, and its
//!   latency is measured from its first send (a buffered report's from its batch's send);
//! - at most [`MAX_OUTSTANDING`] reports are outstanding (new fixes beyond are dropped and
//!   counted `backpressure`), at most [`MAX_BUFFERED`] buffered (the oldest is dropped and
//!   counted `buffer_overflow`);
//! - nothing the server sends makes the task panic: unparseable frames count as `bad_frame`;
//! - after [`Action::GoSilent`] nothing more is sent and the device never reconnects;
//! - ticks follow the schedule `first_tick + k * interval`; a device more than one interval
//!   behind skips the missed ticks (counted `ticks_skipped`) instead of bursting them.

use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use rand::Rng;
use serde::{Deserialize, Serialize};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::{sleep_until, timeout, Instant};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message, Utf8Bytes};
use tokio_tungstenite::WebSocketStream;

use crate::movement::Person;
use crate::script::{Action, DevicePlan, DeviceScript};

mod frames;
mod inbound;
mod net;

use frames::{batch_frames, fast_ack};
use inbound::Lost;
use net::socket_error_kind;
pub(crate) use net::{lock, ConnectError, Counters, Target};

/// Unacknowledged reports a device holds before it stops sending new fixes.
pub const MAX_OUTSTANDING: usize = 10_000;
/// Reports the offline buffer holds; beyond, the oldest is dropped.
pub const MAX_BUFFERED: usize = 100_000;
/// Items per `batch` frame (the protocol's limit).
pub const MAX_BATCH_ITEMS: usize = 1000;
/// Bytes per `batch` frame, well under the protocol's 256 KiB.
pub const MAX_BATCH_BYTES: usize = 200 * 1024;
/// Latency shards: a device records into shard `index % SHARDS`.
pub(crate) const SHARDS: usize = 32;

const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// Shortest tick interval honoured (a zero interval would spin).
const MIN_INTERVAL: Duration = Duration::from_millis(1);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a device that goes silent waits for its outstanding acks before closing.
const SILENT_LINGER: Duration = Duration::from_secs(2);

pub(crate) type Ws = WebSocketStream<TcpStream>;

/// Everything a device needs from the plan and provisioning.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceJob {
    /// Global device index, `0..devices_total`: fixes the device's phase.
    pub index: usize,
    /// Bearer token of the registered device.
    pub token: String,
    pub person: Person,
    pub device: DevicePlan,
}

/// `d` scaled by a random factor in `[lo, hi)`.
fn jitter(d: Duration, lo: f64, hi: f64) -> Duration {
    d.mul_f64(rand::thread_rng().gen_range(lo..hi))
}

/// When a device ticks: `first_tick + k * interval` while before `end`; after `end`, outstanding
/// acks are awaited until the drain deadline (`None` until the fleet finishes).
pub(crate) struct Schedule {
    pub first_tick: Instant,
    pub end: Instant,
    pub interval: watch::Receiver<Duration>,
    pub drain: watch::Receiver<Option<Instant>>,
}

/// How a device reaches the server and where it counts.
#[derive(Clone)]
pub(crate) struct Link {
    pub target: Arc<Target>,
    pub source: Option<IpAddr>,
    pub counters: Arc<Counters>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    Ticking,
    /// Past `end`: waiting for outstanding acks.
    Draining,
    /// Gone silent: waiting a little for outstanding acks, never reconnecting.
    Silent {
        until: Instant,
    },
    /// Closed by the server for good (`replaced`, token refused): nothing more to do.
    Done,
}

/// A report waiting for its ack: its JSON and its first send, if it was sent.
struct Pending {
    json: Utf8Bytes,
    sent: Option<Instant>,
}

type Connecting = Pin<Box<dyn Future<Output = Result<Ws, ConnectError>> + Send>>;

struct Device {
    script: DeviceScript,
    token: String,
    shard: usize,
    link: Link,
    ws: Option<Ws>,
    connecting: Option<Connecting>,
    outstanding: BTreeMap<u64, Pending>,
    buffer: VecDeque<(u64, Utf8Bytes)>,
    backoff: Duration,
    phase: Phase,
}

/// Runs one device on an open connection until it is done: past `end` and drained, silent,
/// or shut out by the server.
pub(crate) async fn run(ws: Ws, job: DeviceJob, link: Link, mut schedule: Schedule) {
    link.counters.connected();
    let mut device = Device {
        script: DeviceScript::new(job.person, job.device),
        token: job.token,
        shard: job.index % SHARDS,
        link,
        ws: Some(ws),
        connecting: None,
        outstanding: BTreeMap::new(),
        buffer: VecDeque::new(),
        backoff: BACKOFF_MIN,
        phase: Phase::Ticking,
    };
    let mut interval = (*schedule.interval.borrow_and_update()).max(MIN_INTERVAL);
    // One long-lived wait for an interval change (not a new one per loop: registering with the
    // fleet-wide watch takes a lock), and the drain deadline only watched while draining.
    let mut interval_change = Some(interval_changed(schedule.interval.clone()));
    let mut drain_alive = true;
    let mut next_tick = schedule.first_tick;
    let mut last_tick: Option<Instant> = None;
    let tick = sleep_until(next_tick);
    tokio::pin!(tick);
    if next_tick >= schedule.end {
        device.phase = Phase::Draining;
    }
    loop {
        let now = Instant::now();
        let wake = match device.phase {
            Phase::Ticking => None,
            Phase::Done => break,
            Phase::Draining => {
                let deadline = if drain_alive {
                    *schedule.drain.borrow()
                } else {
                    Some(now)
                };
                if device.outstanding.is_empty() || deadline.is_some_and(|d| now >= d) {
                    break;
                }
                deadline
            }
            Phase::Silent { until } => {
                if device.outstanding.is_empty() || device.ws.is_none() || now >= until {
                    break;
                }
                Some(until)
            }
        };
        tokio::select! {
            biased;
            message = recv(&mut device.ws) => device.on_message(message).await,
            result = next_of(&mut device.connecting) => {
                device.connecting = None;
                device.on_connect(result).await;
            }
            () = &mut tick, if device.phase == Phase::Ticking => {
                last_tick = Some(next_tick);
                device.tick().await;
                let skipped;
                (next_tick, skipped) = tick_after(next_tick, interval, Instant::now());
                device.counters().error("ticks_skipped", skipped);
                if device.phase == Phase::Ticking {
                    if next_tick >= schedule.end {
                        device.phase = Phase::Draining;
                    } else {
                        tick.as_mut().reset(next_tick);
                    }
                }
            }
            changed = next_of(&mut interval_change), if device.phase == Phase::Ticking => {
                match changed {
                    Some(mut rx) => {
                        interval = (*rx.borrow_and_update()).max(MIN_INTERVAL);
                        interval_change = Some(interval_changed(rx));
                        if let Some(last) = last_tick {
                            next_tick = last + interval;
                            if next_tick >= schedule.end {
                                device.phase = Phase::Draining;
                            } else {
                                tick.as_mut().reset(next_tick);
                            }
                        }
                    }
                    None => interval_change = None,
                }
            }
            changed = schedule.drain.changed(), if drain_alive && device.phase == Phase::Draining => {
                if changed.is_err() {
                    drain_alive = false;
                }
            }
            () = wait_until(wake) => {}
        }
    }
    device.close().await;
}

/// The next message of the connection, or never if there is none.
async fn recv(ws: &mut Option<Ws>) -> Option<Result<Message, WsError>> {
    match ws {
        Some(ws) => ws.next().await,
        None => std::future::pending().await,
    }
}

/// The tick after the one scheduled at `last`, and how many were skipped: `last + interval`,
/// unless two or more ticks are already due at `now` (the process fell behind); then the missed
/// ones are skipped rather than sent in a burst stamped with the same time, and the latest due
/// one fires at once.
fn tick_after(last: Instant, interval: Duration, now: Instant) -> (Instant, u64) {
    let next = last + interval;
    if next + interval > now {
        return (next, 0);
    }
    let behind = (now - next).as_nanos() / interval.as_nanos().max(1);
    let skipped = u32::try_from(behind).unwrap_or(u32::MAX);
    (next + interval * skipped, u64::from(skipped))
}

/// The output of a pending future, or never if there is none.
async fn next_of<F: Future + Unpin>(f: &mut Option<F>) -> F::Output {
    match f {
        Some(f) => f.await,
        None => std::future::pending().await,
    }
}

type IntervalChange = Pin<Box<dyn Future<Output = Option<watch::Receiver<Duration>>> + Send>>;

/// Resolves (handing the receiver back) when the interval changes; `None` if the fleet is gone.
fn interval_changed(mut rx: watch::Receiver<Duration>) -> IntervalChange {
    Box::pin(async move { rx.changed().await.ok().map(|()| rx) })
}

async fn wait_until(at: Option<Instant>) {
    match at {
        Some(at) => sleep_until(at).await,
        None => std::future::pending().await,
    }
}

impl Device {
    fn counters(&self) -> &Counters {
        &self.link.counters
    }

    async fn tick(&mut self) {
        let actions = self.script.tick(chrono::Utc::now());
        for action in actions {
            match action {
                Action::Send(report) => {
                    if self.outstanding.len() >= MAX_OUTSTANDING {
                        self.counters().error("backpressure", 1);
                        continue;
                    }
                    let json = Utf8Bytes::from(report.to_json());
                    let sent = self.ws.is_some().then(Instant::now);
                    let frame = sent.map(|_| Message::Text(json.clone()));
                    self.outstanding.insert(report.seq, Pending { json, sent });
                    self.counters().outstanding.fetch_add(1, Ordering::Relaxed);
                    if let Some(frame) = frame {
                        self.counters().sent.fetch_add(1, Ordering::Relaxed);
                        self.send(frame).await;
                    }
                }
                Action::Buffer(report) => {
                    if self.buffer.len() >= MAX_BUFFERED {
                        self.buffer.pop_front();
                        self.counters().error("buffer_overflow", 1);
                    }
                    self.buffer
                        .push_back((report.seq, Utf8Bytes::from(report.to_json())));
                }
                Action::Flush => self.flush().await,
                Action::GoSilent => {
                    self.buffer.clear();
                    self.connecting = None;
                    self.phase = Phase::Silent {
                        until: Instant::now() + SILENT_LINGER,
                    };
                    return;
                }
            }
        }
    }

    /// Sends the offline buffer, oldest first, as batches; its reports become outstanding.
    async fn flush(&mut self) {
        if self.buffer.is_empty() {
            return;
        }
        let items: Vec<(u64, Utf8Bytes)> = self.buffer.drain(..).collect();
        let connected = self.ws.is_some();
        let now = Instant::now();
        let mut added = 0;
        for (seq, json) in &items {
            let sent = connected.then_some(now);
            if self
                .outstanding
                .insert(
                    *seq,
                    Pending {
                        json: json.clone(),
                        sent,
                    },
                )
                .is_none()
            {
                added += 1;
            }
        }
        self.counters()
            .outstanding
            .fetch_add(added, Ordering::Relaxed);
        if connected {
            self.counters()
                .sent
                .fetch_add(items.len() as u64, Ordering::Relaxed);
            for frame in batch_frames(items.iter().map(|(_, json)| json.as_str())) {
                self.send(Message::text(frame)).await;
                if self.ws.is_none() {
                    break;
                }
            }
        }
    }

    /// After a reconnect: sends every outstanding report again, oldest first, as batches.
    async fn resend(&mut self) {
        if self.outstanding.is_empty() {
            return;
        }
        let now = Instant::now();
        let mut first_sends = 0;
        for pending in self.outstanding.values_mut() {
            if pending.sent.is_none() {
                pending.sent = Some(now);
                first_sends += 1;
            }
        }
        self.counters()
            .sent
            .fetch_add(first_sends, Ordering::Relaxed);
        let frames = batch_frames(self.outstanding.values().map(|p| p.json.as_str()));
        for frame in frames {
            self.send(Message::text(frame)).await;
            if self.ws.is_none() {
                break;
            }
        }
    }

    async fn send(&mut self, message: Message) {
        let Some(ws) = self.ws.as_mut() else {
            return;
        };
        if let Err(e) = ws.send(message).await {
            self.lose(Lost::Socket(socket_error_kind(&e)));
        }
    }

    /// Closes normally (code 1000) and waits briefly for the server's reply, still taking acks.
    async fn close(mut self) {
        self.connecting = None;
        let Some(mut ws) = self.ws.take() else {
            return;
        };
        let frame = CloseFrame {
            code: CloseCode::Normal,
            reason: Utf8Bytes::from_static(""),
        };
        let _ = timeout(CLOSE_TIMEOUT, async {
            if ws.close(Some(frame)).await.is_err() {
                return;
            }
            while let Some(Ok(message)) = ws.next().await {
                if let Message::Text(text) = message {
                    self.on_text(text.as_str());
                }
            }
        })
        .await;
        self.counters().disconnected();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_late_device_skips_missed_ticks_instead_of_bursting() {
        let (t0, ms) = (Instant::now(), Duration::from_millis);
        assert_eq!(tick_after(t0, ms(100), t0 + ms(50)), (t0 + ms(100), 0));
        // One tick due: it fires at once, on schedule.
        assert_eq!(tick_after(t0, ms(100), t0 + ms(199)), (t0 + ms(100), 0));
        // Ticks at 100 and 200 missed: skip them, fire the one due at 300.
        assert_eq!(tick_after(t0, ms(100), t0 + ms(350)), (t0 + ms(300), 2));
        assert_eq!(tick_after(t0, ms(100), t0 + ms(200)), (t0 + ms(200), 1));
    }
}
