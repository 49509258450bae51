//! One device's WebSocket connection: authentication before the upgrade, then one task per
//! connection that reads frames (decode, flood and garbage limits, in-flight window, hand-off
//! to the writer) and writes acks, error frames, pings and the closing frame. One task and
//! small buffers per connection keep an idle connection at a few KiB of memory; pings and
//! device re-reads are spread over their interval so thousands of connections made at once do
//! not tick together.
//!
//! This is the only module that handles WebSocket messages; everything past it sees
//! [`crate::wire`] types. Close codes: 1009 oversized frame, 1008 policy (revoked, flooding,
//! garbage), 1001 shutdown, 4000 replaced by a newer connection of the same device.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use rand::Rng;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant as TokioInstant;

use super::registry::Kick;
use super::writer::{AckSink, Pending};
use super::Ingest;
use crate::api::error::ApiError;
use crate::api::AppState;
use crate::credentials::hash_token;
use crate::store;
use crate::store::devices::DeviceAuth;
use crate::store::fixes::StoredReport;
use crate::wire::{self, ErrorCode, Outbound, Rejection, Report};

/// Initial read buffer of a connection; it grows for a large frame. Fix frames are ~200 bytes.
const READ_BUFFER_BYTES: usize = 1024;

/// `GET /v1/device/ws`: authenticates the device token, then upgrades.
pub async fn upgrade(
    State(state): State<AppState>,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let token = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty());
    let Some(token) = token else {
        return ApiError::Unauthenticated.into_response();
    };
    let device = match store::devices::by_token_hash(&state.db, &hash_token(token)).await {
        Ok(Some(device)) if !device.revoked => device,
        Ok(_) => return ApiError::Unauthenticated.into_response(),
        Err(err) => return ApiError::from(err).into_response(),
    };
    let ws = match ws {
        Ok(ws) => ws,
        Err(rejection) => {
            return ApiError::BadRequest {
                code: "not_websocket",
                message: rejection.body_text(),
            }
            .into_response()
        }
    };
    let ingest = state.ingest.clone();
    let Ok(permit) = ingest.inner.connections.clone().try_acquire_owned() else {
        return ApiError::Unavailable("device connection limit reached".into()).into_response();
    };
    // Frames up to twice the limit are read whole and refused politely (error frame, then a
    // 1009 close the device can read); only larger ones are cut off by the WebSocket layer.
    let limit = ingest.inner.config.max_frame_bytes.saturating_mul(2);
    let tracker = ingest.inner.connection_tasks.clone();
    ws.max_message_size(limit)
        .max_frame_size(limit)
        .read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(0)
        .max_write_buffer_size(limit)
        .on_upgrade(move |socket| tracker.track_future(serve(socket, device, ingest, permit)))
}

/// Why a connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    PeerClosed,
    Idle,
    Broken,
    Replaced,
    Revoked,
    Shutdown,
    Oversized,
    Flooding,
    Garbage,
}

impl Ending {
    fn label(self) -> &'static str {
        match self {
            Ending::PeerClosed => "peer_closed",
            Ending::Idle => "idle",
            Ending::Broken => "broken",
            Ending::Replaced => "replaced",
            Ending::Revoked => "revoked",
            Ending::Shutdown => "shutdown",
            Ending::Oversized => "oversized",
            Ending::Flooding => "flooding",
            Ending::Garbage => "garbage",
        }
    }

    /// The close frame to send, if the peer can still hear one.
    fn close_frame(self) -> Option<(u16, &'static str)> {
        match self {
            Ending::PeerClosed | Ending::Broken => None,
            Ending::Idle => Some((wire::CLOSE_POLICY, "idle timeout")),
            Ending::Replaced => Some((wire::CLOSE_REPLACED, wire::REASON_REPLACED)),
            Ending::Revoked => Some((wire::CLOSE_POLICY, "token revoked")),
            Ending::Shutdown => Some((wire::CLOSE_SHUTDOWN, "server shutting down")),
            Ending::Oversized => Some((wire::CLOSE_OVERSIZED, "frame too large")),
            Ending::Flooding => Some((wire::CLOSE_POLICY, "flooding")),
            Ending::Garbage => Some((wire::CLOSE_POLICY, "too many malformed frames")),
        }
    }
}

/// A token bucket: `burst` frames, refilled at `rate` per second.
struct Flood {
    tokens: f64,
    burst: f64,
    rate: f64,
    last: Instant,
}

impl Flood {
    fn allow(&mut self) -> bool {
        let now = Instant::now();
        let refill = now.duration_since(self.last).as_secs_f64() * self.rate;
        self.tokens = (self.tokens + refill).min(self.burst);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

struct Session {
    ingest: Ingest,
    device: DeviceAuth,
    socket: WebSocket,
    acks: mpsc::UnboundedReceiver<u64>,
    ack: AckSink,
    flood: Flood,
    garbage: u32,
    stop: tokio_util::sync::CancellationToken,
    changed: Arc<tokio::sync::Notify>,
}

async fn serve(
    socket: WebSocket,
    device: DeviceAuth,
    ingest: Ingest,
    _permit: OwnedSemaphorePermit,
) {
    let inner = ingest.inner.clone();
    let metrics = inner.metrics.clone();
    let gauge = metrics.connections.with_label_values(&["device"]);
    gauge.inc();
    let device_id = device.id;
    let registration = inner.registry.register(device_id, &inner.shutdown);
    inner
        .registry
        .announce_connected(device_id, registration.connected_ms)
        .await;
    let (ack_tx, acks) = mpsc::unbounded_channel();
    let config = &inner.config;
    let mut session = Session {
        ingest: ingest.clone(),
        device,
        socket,
        acks,
        ack: AckSink {
            acks: ack_tx,
            in_flight: Arc::new(Semaphore::new(config.max_in_flight)),
        },
        flood: Flood {
            tokens: f64::from(config.flood_burst),
            burst: f64::from(config.flood_burst),
            rate: f64::from(config.flood_frames_per_s),
            last: Instant::now(),
        },
        garbage: 0,
        stop: registration.stop.clone(),
        changed: registration.changed.clone(),
    };
    let mut ending = session.run().await;
    if ending == Ending::Shutdown {
        if let Ok(reason) = registration.reason.lock() {
            ending = match *reason {
                Some(Kick::Replaced) => Ending::Replaced,
                Some(Kick::Revoked) => Ending::Revoked,
                None => Ending::Shutdown,
            };
        }
    }
    session.finish(ending).await;
    inner.registry.unregister(device_id, registration.conn);
    metrics
        .connections_closed
        .with_label_values(&[ending.label()])
        .inc();
    gauge.dec();
}

/// A random point within `period`, so timers of connections made together do not align.
fn spread(period: Duration) -> TokioInstant {
    let offset = rand::thread_rng().gen_range(0.0..1.0) * period.as_secs_f64();
    TokioInstant::now() + Duration::from_secs_f64(offset.max(0.001))
}

impl Session {
    async fn send(&mut self, message: Message) -> Result<(), Ending> {
        self.socket.send(message).await.map_err(|_| Ending::Broken)
    }

    async fn send_acks(&mut self, seqs: &mut Vec<u64>) -> Result<(), Ending> {
        let text = Outbound::Ack {
            seqs: std::mem::take(seqs),
        }
        .to_json();
        self.send(Message::Text(text.into())).await
    }

    async fn run(&mut self) -> Ending {
        let config = self.ingest.inner.config.clone();
        let mut ping = tokio::time::interval_at(spread(config.ping_interval), config.ping_interval);
        let mut refresh =
            tokio::time::interval_at(spread(config.device_refresh), config.device_refresh);
        let idle = tokio::time::sleep(config.idle_timeout);
        tokio::pin!(idle);
        let mut seqs = Vec::new();
        loop {
            tokio::select! {
                biased;
                _ = self.stop.cancelled() => return Ending::Shutdown,
                _ = self.acks.recv_many(&mut seqs, 1000) => {
                    if let Err(ending) = self.send_acks(&mut seqs).await {
                        return ending;
                    }
                }
                _ = ping.tick() => {
                    if let Err(ending) = self.send(Message::Ping(Default::default())).await {
                        return ending;
                    }
                }
                _ = refresh.tick() => {
                    if let Some(ending) = self.refresh_device().await {
                        return ending;
                    }
                }
                _ = self.changed.notified() => {
                    if let Some(ending) = self.refresh_device().await {
                        return ending;
                    }
                }
                _ = &mut idle => return Ending::Idle,
                message = self.socket.recv() => {
                    idle.as_mut().reset(TokioInstant::now() + config.idle_timeout);
                    let message = match message {
                        None => return Ending::PeerClosed,
                        Some(Err(err)) => return self.read_error(err).await,
                        Some(Ok(message)) => message,
                    };
                    if let Err(ending) = self.handle(message).await {
                        return ending;
                    }
                }
            }
        }
    }

    async fn handle(&mut self, message: Message) -> Result<(), Ending> {
        let limit = self.ingest.inner.config.max_frame_bytes;
        match message {
            Message::Text(text) if text.len() > limit => Err(self.oversized().await),
            Message::Binary(bytes) if bytes.len() > limit => Err(self.oversized().await),
            Message::Text(text) => self.handle_text(text.as_str()).await,
            Message::Binary(_) => {
                self.reject(Rejection {
                    seq: None,
                    code: ErrorCode::BinaryFrame,
                    message: "binary frames are not part of the protocol; send JSON text".into(),
                })
                .await?;
                self.count_garbage()
            }
            Message::Close(_) => Err(Ending::PeerClosed),
            Message::Ping(_) | Message::Pong(_) => Ok(()),
        }
    }

    /// Sends the last acks (waiting, bounded, for what is still being committed) and the
    /// closing frame, then lets the peer answer it.
    async fn finish(&mut self, ending: Ending) {
        let Some((code, reason)) = ending.close_frame() else {
            return;
        };
        let config = self.ingest.inner.config.clone();
        let window = config.max_in_flight;
        let deadline = TokioInstant::now() + config.drain_timeout;
        let mut seqs = Vec::new();
        while self.ack.in_flight.available_permits() < window {
            tokio::select! {
                _ = self.acks.recv_many(&mut seqs, 1000) => {
                    if self.send_acks(&mut seqs).await.is_err() {
                        return;
                    }
                }
                _ = tokio::time::sleep_until(deadline) => break,
            }
        }
        while let Ok(seq) = self.acks.try_recv() {
            seqs.push(seq);
        }
        if !seqs.is_empty() && self.send_acks(&mut seqs).await.is_err() {
            return;
        }
        let close = Message::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        }));
        if self.send(close).await.is_err() {
            return;
        }
        // Read until the peer's close (or a bound), so the socket is not reset under it.
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            while let Some(Ok(_)) = self.socket.recv().await {}
        })
        .await;
    }

    async fn read_error(&mut self, err: axum::Error) -> Ending {
        let inner = err.into_inner();
        let oversized = matches!(
            inner.downcast_ref::<tokio_tungstenite::tungstenite::Error>(),
            Some(tokio_tungstenite::tungstenite::Error::Capacity(_))
        );
        if oversized {
            self.oversized().await
        } else {
            Ending::Broken
        }
    }

    async fn oversized(&mut self) -> Ending {
        let message = format!(
            "frames are limited to {} bytes",
            self.ingest.inner.config.max_frame_bytes
        );
        let rejection = Rejection {
            seq: None,
            code: ErrorCode::FrameTooLarge,
            message,
        };
        match self.reject(rejection).await {
            Ok(()) => Ending::Oversized,
            Err(ending) => ending,
        }
    }

    async fn refresh_device(&mut self) -> Option<Ending> {
        match store::devices::auth_by_id(&self.ingest.inner.db, self.device.id).await {
            Ok(Some(device)) if device.revoked => Some(Ending::Revoked),
            Ok(Some(device)) => {
                self.device = device;
                None
            }
            Ok(None) => Some(Ending::Revoked),
            Err(err) => {
                tracing::warn!(error = %err, device = %self.device.id, "cannot re-read the device; keeping what is known");
                None
            }
        }
    }

    fn count_garbage(&mut self) -> Result<(), Ending> {
        self.garbage += 1;
        if self.garbage >= self.ingest.inner.config.garbage_limit {
            Err(Ending::Garbage)
        } else {
            Ok(())
        }
    }

    async fn reject(&mut self, rejection: Rejection) -> Result<(), Ending> {
        self.ingest
            .inner
            .metrics
            .reports_rejected
            .with_label_values(&[rejection.code.as_str()])
            .inc();
        let text = Outbound::Error(rejection).to_json();
        self.send(Message::Text(text.into())).await
    }

    async fn handle_text(&mut self, text: &str) -> Result<(), Ending> {
        if !self.flood.allow() {
            self.ingest
                .inner
                .metrics
                .reports_rejected
                .with_label_values(&["flooding"])
                .inc();
            return Err(Ending::Flooding);
        }
        let arrived = Instant::now();
        let now = chrono::Utc::now();
        let decoded = wire::decode(text, now, &self.ingest.inner.limits);
        let garbage = decoded.reports.is_empty()
            && decoded.rejections.len() == 1
            && decoded.rejections[0].code == ErrorCode::MalformedJson;
        for rejection in decoded.rejections {
            self.reject(rejection).await?;
        }
        if garbage {
            return self.count_garbage();
        }
        self.garbage = 0;
        self.submit(decoded.reports, arrived, now).await
    }

    /// Hands reports to the writer, waiting for room in the in-flight window and the queue.
    async fn submit(
        &mut self,
        reports: Vec<Report>,
        arrived: Instant,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), Ending> {
        let n = reports.len();
        if n == 0 {
            return Ok(());
        }
        let inner = self.ingest.inner.clone();
        let waited = Instant::now();
        let permit = tokio::select! {
            permit = self.ack.in_flight.acquire_many(n as u32) => permit.map_err(|_| Ending::Shutdown)?,
            _ = self.stop.cancelled() => return Err(Ending::Shutdown),
        };
        permit.forget();
        let slots = tokio::select! {
            slots = inner.queue.reserve_many(n) => slots,
            _ = self.stop.cancelled() => {
                self.ack.in_flight.add_permits(n);
                return Err(Ending::Shutdown);
            }
        };
        let Ok(slots) = slots else {
            self.ack.in_flight.add_permits(n);
            return Err(Ending::Shutdown);
        };
        inner
            .metrics
            .backpressure_seconds
            .inc_by(waited.elapsed().as_secs_f64());
        let supervisee_id = self.device.supervisee_id;
        let fixes = reports.iter().filter(|r| r.position.is_some()).count() as u64;
        inner.metrics.fixes_received.inc_by(fixes);
        inner.metrics.statuses_received.inc_by(n as u64 - fixes);
        for (slot, report) in slots.zip(reports) {
            slot.send(Pending {
                seq: report.seq,
                report: StoredReport {
                    device_id: self.device.id,
                    supervisee_id,
                    seq: i64::try_from(report.seq).unwrap_or(i64::MAX),
                    ts: report.ts,
                    position: report
                        .position
                        .map(|p| (p.lat, p.lon, p.acc_m, p.src.as_str(), p.speed_mps)),
                    bat: report.bat.map(i16::from),
                    strap: report.strap.map(|s| s.as_str()),
                },
                arrived,
                received_at: now,
                ack: self.ack.clone(),
            });
        }
        Ok(())
    }
}
