//! What comes back from the server, and what a device does about it: acks (latency recorded,
//! each seq counted once), `error` frames (the seq dropped for good), close frames and lost
//! connections (counted, then a reconnect as `docs/device-protocol.md` §4 says, followed by a
//! resend of everything outstanding).
//!
//! # Invariants
//! - nothing the server sends panics; what cannot be read counts as `bad_frame`;
//! - close 4000 (`replaced`) and a refused token (HTTP 401/403/404) end the device; a silent
//!   device never reconnects; anything else reconnects with backoff (100 ms doubling to 5 s,
//!   jittered; 1–5 s after 1001; a minute after 1008), reset once an ack arrives.

use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::SinkExt;
use tokio::time::{timeout, Instant};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use super::net::socket_error_kind;
use super::{fast_ack, jitter, lock, ConnectError, Device, Phase, Ws, BACKOFF_MAX, BACKOFF_MIN};

/// How the connection ended and what that means for reconnecting.
pub(super) enum Lost {
    /// A socket error or EOF of this kind.
    Socket(&'static str),
    /// A close frame with this code (already counted).
    Closed(u16),
}

impl Device {
    pub(super) async fn on_message(&mut self, message: Option<Result<Message, WsError>>) {
        match message {
            None => self.lose(Lost::Socket("socket_eof")),
            Some(Err(e)) => self.lose(Lost::Socket(socket_error_kind(&e))),
            Some(Ok(Message::Text(text))) => self.on_text(text.as_str()),
            Some(Ok(Message::Binary(_))) => self.counters().error("bad_frame", 1),
            Some(Ok(Message::Close(frame))) => {
                let code = frame.map_or(1005, |f| u16::from(f.code));
                self.counters().close(code);
                // tungstenite has queued the close reply: flush it, then let the socket go.
                if let Some(ws) = self.ws.as_mut() {
                    let _ = timeout(Duration::from_secs(1), ws.flush()).await;
                }
                self.lose(Lost::Closed(code));
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
        }
    }

    pub(super) fn on_text(&mut self, text: &str) {
        if let Some(list) = fast_ack(text) {
            let seqs = list.split(',').filter_map(|s| s.parse::<u64>().ok());
            self.acked(seqs);
            return;
        }
        let Ok(value) = serde_json::from_str::<serde_json::Value>(text) else {
            self.counters().error("bad_frame", 1);
            return;
        };
        match value.get("type").and_then(|t| t.as_str()) {
            Some("ack") => match value.get("seqs").and_then(|s| s.as_array()) {
                Some(seqs) => self.acked(seqs.iter().filter_map(|s| s.as_u64())),
                None => self.counters().error("bad_frame", 1),
            },
            Some("error") => {
                let code = match value.get("code").and_then(|c| c.as_str()) {
                    Some(code) if !code.is_empty() => code.chars().take(64).collect(),
                    _ => "error_without_code".to_owned(),
                };
                self.counters().error(&code, 1);
                if let Some(seq) = value.get("seq").and_then(|s| s.as_u64()) {
                    if self.outstanding.remove(&seq).is_some() {
                        self.counters().outstanding.fetch_sub(1, Ordering::Relaxed);
                    }
                }
            }
            _ => self.counters().error("bad_frame", 1),
        }
    }

    fn acked(&mut self, seqs: impl Iterator<Item = u64>) {
        let now = Instant::now();
        let counters = &*self.link.counters;
        let mut n = 0;
        {
            let mut latencies = lock(&counters.shards[self.shard]);
            for seq in seqs {
                if let Some(pending) = self.outstanding.remove(&seq) {
                    n += 1;
                    if let Some(sent) = pending.sent {
                        let us = now.saturating_duration_since(sent).as_micros();
                        latencies.record(u64::try_from(us).unwrap_or(u64::MAX));
                    }
                }
            }
        }
        if n > 0 {
            counters.acked.fetch_add(n, Ordering::Relaxed);
            counters.outstanding.fetch_sub(n, Ordering::Relaxed);
            // The connection works: the next loss starts the backoff afresh.
            self.backoff = BACKOFF_MIN;
        }
    }

    /// The connection is gone: count why and schedule a reconnect as the protocol says.
    pub(super) fn lose(&mut self, lost: Lost) {
        if self.ws.take().is_some() {
            self.counters().disconnected();
        }
        let delay = match lost {
            Lost::Socket(kind) => {
                self.counters().error(kind, 1);
                Some(self.next_backoff())
            }
            // Replaced by a newer connection of the same device: that one is in charge.
            Lost::Closed(4000) => None,
            // Server going away: back after 1-5 s.
            Lost::Closed(1001) => Some(jitter(Duration::from_secs(1), 1.0, 5.0)),
            // Policy breach: at least a minute.
            Lost::Closed(1008) => Some(jitter(Duration::from_secs(60), 1.0, 1.1)),
            Lost::Closed(_) => Some(self.next_backoff()),
        };
        match (delay, self.phase) {
            (_, Phase::Silent { .. } | Phase::Done) => {}
            (None, _) => self.phase = Phase::Done,
            (Some(delay), _) => self.reconnect_after(delay),
        }
    }

    fn next_backoff(&mut self) -> Duration {
        let d = self.backoff;
        self.backoff = (d * 2).min(BACKOFF_MAX);
        jitter(d, 0.5, 1.0)
    }

    fn reconnect_after(&mut self, delay: Duration) {
        let (target, token, source) = (
            self.link.target.clone(),
            self.token.clone(),
            self.link.source,
        );
        self.connecting = Some(Box::pin(async move {
            tokio::time::sleep(delay).await;
            target.connect(&token, source).await
        }));
    }

    pub(super) async fn on_connect(&mut self, result: Result<Ws, ConnectError>) {
        match result {
            Ok(ws) => {
                self.counters().connected();
                self.counters().reconnects.fetch_add(1, Ordering::Relaxed);
                self.ws = Some(ws);
                self.resend().await;
            }
            Err(e) => {
                self.counters().error(&e.kind, 1);
                if e.fatal {
                    self.phase = Phase::Done;
                } else {
                    let delay = self.next_backoff();
                    self.reconnect_after(delay);
                }
            }
        }
    }
}
