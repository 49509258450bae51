//! A device's connection and the counters it reports to: the resolved server address, opening
//! a WebSocket (from a chosen source address, bearer token in the header), naming what went
//! wrong, and the per-process [`Counters`] every device of a fleet shares.
//!
//! # Invariants
//! - the hot path (a report sent, an ack read) touches only atomics and one of [`SHARDS`]
//!   latency histograms; the error and close maps are locked only for rare events;
//! - every failure gets a short, stable kind (`connect_*`, `socket_*`, `bad_frame`) that the
//!   fleet's error counts are keyed by.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use tokio::net::{TcpSocket, TcpStream};
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::error::ProtocolError;
use tokio_tungstenite::tungstenite::http::{header::AUTHORIZATION, HeaderValue};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Error as WsError;

use super::{Ws, CONNECT_TIMEOUT, SHARDS};
use crate::stats::Histogram;

/// Counters shared by every device of a process (atomics on the hot path; maps behind locks
/// only for rare events; latencies in [`SHARDS`] histograms).
pub(crate) struct Counters {
    pub connected: AtomicU64,
    pub max_connected: AtomicU64,
    /// Reports written for the first time (resends not counted).
    pub sent: AtomicU64,
    /// Reports acknowledged (each seq once).
    pub acked: AtomicU64,
    /// Reports produced or flushed and not yet acked or rejected.
    pub outstanding: AtomicU64,
    pub errors_total: AtomicU64,
    pub reconnects: AtomicU64,
    pub connect_failures: AtomicU64,
    errors: Mutex<BTreeMap<String, u64>>,
    closes: Mutex<BTreeMap<u16, u64>>,
    pub(super) shards: Vec<Mutex<Histogram>>,
}

/// Locks, ignoring poisoning (a panicking holder cannot leave a counter half-written).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Counters {
    pub fn new() -> Counters {
        Counters {
            connected: AtomicU64::new(0),
            max_connected: AtomicU64::new(0),
            sent: AtomicU64::new(0),
            acked: AtomicU64::new(0),
            outstanding: AtomicU64::new(0),
            errors_total: AtomicU64::new(0),
            reconnects: AtomicU64::new(0),
            connect_failures: AtomicU64::new(0),
            errors: Mutex::new(BTreeMap::new()),
            closes: Mutex::new(BTreeMap::new()),
            shards: (0..SHARDS).map(|_| Mutex::new(Histogram::new())).collect(),
        }
    }

    /// Counts `n` events of an error kind.
    pub fn error(&self, kind: &str, n: u64) {
        if n == 0 {
            return;
        }
        self.errors_total.fetch_add(n, Ordering::Relaxed);
        let mut errors = lock(&self.errors);
        match errors.get_mut(kind) {
            Some(count) => *count += n,
            None => {
                errors.insert(kind.to_owned(), n);
            }
        }
    }

    pub(super) fn close(&self, code: u16) {
        *lock(&self.closes).entry(code).or_default() += 1;
    }

    pub(super) fn connected(&self) {
        let now = self.connected.fetch_add(1, Ordering::Relaxed) + 1;
        self.max_connected.fetch_max(now, Ordering::Relaxed);
    }

    pub(super) fn disconnected(&self) {
        self.connected.fetch_sub(1, Ordering::Relaxed);
    }

    pub fn errors(&self) -> BTreeMap<String, u64> {
        lock(&self.errors).clone()
    }

    pub fn closes(&self) -> BTreeMap<u16, u64> {
        lock(&self.closes).clone()
    }

    /// The latencies recorded since the previous call, emptying the shards.
    pub fn take_latencies(&self) -> Histogram {
        let mut out = Histogram::new();
        for shard in &self.shards {
            let taken = std::mem::take(&mut *lock(shard));
            out.merge(&taken);
        }
        out
    }
}

/// Where devices connect: the WebSocket URL and its resolved addresses.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    url: String,
    addrs: Vec<SocketAddr>,
}

/// Why a connection attempt failed: a kind for the error counts, and whether retrying with
/// the same token is pointless (HTTP 401/403/404).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConnectError {
    pub kind: String,
    pub fatal: bool,
}

impl ConnectError {
    fn new(kind: impl Into<String>) -> ConnectError {
        ConnectError {
            kind: kind.into(),
            fatal: false,
        }
    }
}

impl Target {
    /// Parses `ws://host:port/path` and resolves the host once.
    pub async fn resolve(ws_url: &str) -> anyhow::Result<Target> {
        let request = ws_url.into_client_request()?;
        let uri = request.uri();
        anyhow::ensure!(
            uri.scheme_str() == Some("ws"),
            "only ws:// URLs are supported, not {ws_url}"
        );
        let host = uri
            .host()
            .ok_or_else(|| anyhow::anyhow!("no host in {ws_url}"))?;
        let port = uri.port_u16().unwrap_or(80);
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host(format!("{host}:{port}"))
            .await?
            .collect();
        anyhow::ensure!(!addrs.is_empty(), "{host} resolves to no address");
        Ok(Target {
            url: ws_url.to_owned(),
            addrs,
        })
    }

    /// Opens a device's WebSocket, from `source` if given (bound to port 0).
    pub async fn connect(&self, token: &str, source: Option<IpAddr>) -> Result<Ws, ConnectError> {
        let addr = source
            .and_then(|ip| self.addrs.iter().find(|a| a.is_ipv4() == ip.is_ipv4()))
            .unwrap_or(&self.addrs[0]);
        let tcp = async {
            match source {
                Some(ip) => {
                    let socket = if ip.is_ipv4() {
                        TcpSocket::new_v4()?
                    } else {
                        TcpSocket::new_v6()?
                    };
                    socket.bind(SocketAddr::new(ip, 0))?;
                    socket.connect(*addr).await
                }
                None => TcpStream::connect(addr).await,
            }
        };
        let stream = match timeout(CONNECT_TIMEOUT, tcp).await {
            Err(_) => return Err(ConnectError::new("connect_timeout")),
            Ok(Err(e)) => return Err(ConnectError::new(connect_io_kind(&e))),
            Ok(Ok(stream)) => stream,
        };
        let _ = stream.set_nodelay(true);
        let mut request = self
            .url
            .as_str()
            .into_client_request()
            .map_err(|_| ConnectError::new("connect_bad_url"))?;
        let auth = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| ConnectError {
            kind: "connect_bad_token".into(),
            fatal: true,
        })?;
        request.headers_mut().insert(AUTHORIZATION, auth);
        let handshake =
            tokio_tungstenite::client_async_with_config(request, stream, Some(ws_config()));
        match timeout(CONNECT_TIMEOUT, handshake).await {
            Err(_) => Err(ConnectError::new("connect_timeout")),
            Ok(Ok((ws, _))) => Ok(ws),
            Ok(Err(WsError::Http(response))) => {
                let status = response.status().as_u16();
                Err(ConnectError {
                    kind: format!("connect_http_{status}"),
                    fatal: matches!(status, 401 | 403 | 404),
                })
            }
            Ok(Err(WsError::Io(e))) => Err(ConnectError::new(connect_io_kind(&e))),
            Ok(Err(_)) => Err(ConnectError::new("connect_handshake")),
        }
    }
}

fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0)
        .max_message_size(Some(1 << 20))
        .max_frame_size(Some(1 << 20))
}

fn connect_io_kind(e: &std::io::Error) -> &'static str {
    use std::io::ErrorKind::*;
    match e.kind() {
        ConnectionRefused => "connect_refused",
        AddrNotAvailable => "connect_addr_unavailable",
        AddrInUse => "connect_addr_in_use",
        TimedOut => "connect_timeout",
        ConnectionReset | ConnectionAborted | UnexpectedEof | BrokenPipe => "connect_reset",
        _ => "connect_io",
    }
}

pub(super) fn socket_error_kind(e: &WsError) -> &'static str {
    use std::io::ErrorKind::*;
    match e {
        WsError::ConnectionClosed | WsError::AlreadyClosed => "socket_closed",
        WsError::Io(io) => match io.kind() {
            ConnectionReset => "socket_reset",
            ConnectionAborted => "socket_aborted",
            BrokenPipe => "socket_broken_pipe",
            UnexpectedEof => "socket_eof",
            TimedOut => "socket_timeout",
            _ => "socket_io",
        },
        WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => "socket_reset",
        WsError::Protocol(_) => "socket_protocol",
        WsError::Capacity(_) => "socket_capacity",
        WsError::Utf8(_) => "bad_frame",
        _ => "socket_other",
    }
}
