//! Which device is connected where: one live connection per device across all nodes.
//!
//! Each node keeps its own connections in a map. When a device connects, the node closes any
//! older local connection of that device and announces the connection on the Redis channel
//! `{prefix}:control`; every other node closes its own older connection of that device. A
//! revoked device is announced the same way, and so is a device given to another supervisee
//! (its connection re-reads the record at once). Announcements carry the connect time so a late
//! message never closes a newer connection. If the channel is down, connections still re-read
//! their device every `ingest.device_refresh`, so a change takes effect within that time.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::live::Live;

/// Why a connection is being closed by someone else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kick {
    /// The device connected again (here or on another node).
    Replaced,
    /// The device's token was revoked.
    Revoked,
}

/// A registered connection: cancelled when kicked, with the reason left in `reason`.
pub struct Registration {
    pub conn: u64,
    pub stop: CancellationToken,
    /// Notified when the device's record changed (reassigned): re-read it now.
    pub changed: Arc<Notify>,
    pub reason: Arc<Mutex<Option<Kick>>>,
    pub connected_ms: i64,
}

struct Entry {
    conn: u64,
    stop: CancellationToken,
    changed: Arc<Notify>,
    reason: Arc<Mutex<Option<Kick>>>,
    connected_ms: i64,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Announcement {
    Connected {
        device: Uuid,
        node: Uuid,
        at_ms: i64,
    },
    Revoked {
        device: Uuid,
    },
    Changed {
        device: Uuid,
    },
}

pub struct Registry {
    node: Uuid,
    next: AtomicU64,
    connections: Mutex<HashMap<Uuid, Entry>>,
    live: Live,
    channel: String,
}

fn kick_entry(entry: &Entry, why: Kick) {
    if let Ok(mut reason) = entry.reason.lock() {
        reason.get_or_insert(why);
    }
    entry.stop.cancel();
}

impl Registry {
    pub fn new(live: Live) -> Registry {
        let channel = live.key("control");
        Registry {
            node: Uuid::new_v4(),
            next: AtomicU64::new(1),
            connections: Mutex::new(HashMap::new()),
            live,
            channel,
        }
    }

    /// Registers a new connection of `device`, closing an older local one. `parent` is the
    /// shutdown token the connection's own token derives from.
    pub fn register(&self, device: Uuid, parent: &CancellationToken) -> Registration {
        let conn = self.next.fetch_add(1, Ordering::Relaxed);
        let stop = parent.child_token();
        let reason = Arc::new(Mutex::new(None));
        let changed = Arc::new(Notify::new());
        let connected_ms = chrono::Utc::now().timestamp_millis();
        let entry = Entry {
            conn,
            stop: stop.clone(),
            changed: changed.clone(),
            reason: reason.clone(),
            connected_ms,
        };
        if let Ok(mut map) = self.connections.lock() {
            if let Some(old) = map.insert(device, entry) {
                kick_entry(&old, Kick::Replaced);
            }
        }
        Registration {
            conn,
            stop,
            changed,
            reason,
            connected_ms,
        }
    }

    /// Forgets a connection (only if it is still the registered one).
    pub fn unregister(&self, device: Uuid, conn: u64) {
        if let Ok(mut map) = self.connections.lock() {
            if map.get(&device).is_some_and(|e| e.conn == conn) {
                map.remove(&device);
            }
        }
    }

    /// Closes the local connection of `device` if it is older than `before_ms`.
    fn kick_local(&self, device: Uuid, why: Kick, before_ms: i64) {
        if let Ok(map) = self.connections.lock() {
            if let Some(entry) = map.get(&device) {
                if entry.connected_ms <= before_ms {
                    kick_entry(entry, why);
                }
            }
        }
    }

    /// Number of device connections on this node.
    pub fn local_count(&self) -> usize {
        self.connections.lock().map(|m| m.len()).unwrap_or(0)
    }

    async fn publish(&self, announcement: &Announcement) {
        let Ok(payload) = serde_json::to_string(announcement) else {
            return;
        };
        let result: Result<i64, _> = self
            .live
            .query(redis::cmd("PUBLISH").arg(&self.channel).arg(payload))
            .await;
        if let Err(err) = result {
            tracing::warn!(error = %err, "cannot announce on the control channel; connections re-check their device periodically");
        }
    }

    /// Tells other nodes that `device` connected here at `at_ms`.
    pub async fn announce_connected(&self, device: Uuid, at_ms: i64) {
        self.publish(&Announcement::Connected {
            device,
            node: self.node,
            at_ms,
        })
        .await;
    }

    /// Tells the device's connection, here or on another node, to re-read its record.
    pub async fn changed(&self, device: Uuid) {
        self.notify_local(device);
        self.publish(&Announcement::Changed { device }).await;
    }

    fn notify_local(&self, device: Uuid) {
        if let Ok(map) = self.connections.lock() {
            if let Some(entry) = map.get(&device) {
                entry.changed.notify_one();
            }
        }
    }

    /// Closes the device's connection here and on every node.
    pub async fn revoke(&self, device: Uuid) {
        self.kick_local(device, Kick::Revoked, i64::MAX);
        self.publish(&Announcement::Revoked { device }).await;
    }

    fn handle(&self, payload: &str) {
        match serde_json::from_str::<Announcement>(payload) {
            Ok(Announcement::Connected {
                device,
                node,
                at_ms,
            }) if node != self.node => {
                self.kick_local(device, Kick::Replaced, at_ms);
            }
            Ok(Announcement::Connected { .. }) => {}
            Ok(Announcement::Revoked { device }) => {
                self.kick_local(device, Kick::Revoked, i64::MAX)
            }
            Ok(Announcement::Changed { device }) => self.notify_local(device),
            Err(err) => tracing::warn!(error = %err, "ignoring a malformed control message"),
        }
    }

    /// Listens on the control channel until `shutdown`, resubscribing with backoff.
    pub async fn listen(self: Arc<Self>, shutdown: CancellationToken) {
        let mut delay = Duration::from_millis(100);
        while !shutdown.is_cancelled() {
            match self.live.client().get_async_pubsub().await {
                Ok(mut pubsub) => {
                    if let Err(err) = pubsub.subscribe(&self.channel).await {
                        tracing::warn!(error = %err, "cannot subscribe to the control channel");
                    } else {
                        delay = Duration::from_millis(100);
                        let mut messages = pubsub.on_message();
                        loop {
                            tokio::select! {
                                _ = shutdown.cancelled() => return,
                                message = messages.next() => match message {
                                    Some(message) => {
                                        if let Ok(payload) = message.get_payload::<String>() {
                                            self.handle(&payload);
                                        }
                                    }
                                    None => break,
                                },
                            }
                        }
                    }
                }
                Err(err) => {
                    tracing::warn!(error = %err, retry_in = ?delay, "control channel unavailable")
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(delay) => {}
            }
            delay = (delay * 2).min(Duration::from_secs(5));
        }
    }
}
