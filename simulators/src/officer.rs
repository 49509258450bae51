//! Officers' live feeds (`GET /v1/officer/ws`, `docs/alerts.md`): one connection per officer
//! and supervisor of the run, every `opened` delivery recorded for the ledger, every n-th alert
//! an officer receives acknowledged as that officer would.
//!
//! # Invariants
//! - Every text frame is stamped with the wall clock right after it is read, on a thread of its
//!   own (a current-thread runtime): receipt times are not delayed behind the device tasks.
//! - Nothing is missed across a disconnect (an error, a close, `4001` for a slow consumer): the
//!   feed reconnects with backoff using `?after=` the newest cursor seen (of an `alert` or a
//!   `ready` frame). Replays record the same alert again; the ledger counts an id once.
//! - Only alerts of this run's supervisees are recorded (a supervisor sees everyone's).
//! - Acknowledging never blocks reading: picked alerts go to a bounded queue (full: counted as a
//!   failure) served by an acknowledger on the caller's runtime, [`ACK_CONCURRENCY`] at a time.
//!   A 409 (already acknowledged or resolved) counts as done. Supervisors never acknowledge; an
//!   officer counts distinct alerts, so a replayed alert is never picked twice.
//! - No frame makes it panic: anything unexpected is counted in the report's `errors`; failed
//!   acknowledgements only in `acknowledge_failures` (by kind in `acknowledge_errors`).

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::Utc;
use futures_util::StreamExt;
use serde::Serialize;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use uuid::Uuid;

use crate::api::Api;
use crate::ledger::{Feed, Received};

mod ack;
mod frames;

use ack::{acknowledge_all, AckJob};
pub(crate) use frames::{resume_url, FeedState};
#[cfg(test)]
use frames::{AckPicker, Seen};

pub const FEED_PATH: &str = "/v1/officer/ws";
/// The note written on every acknowledgement.
pub const ACK_NOTE: &str = "seen by the simulator";
/// Acknowledgements in flight at once.
pub const ACK_CONCURRENCY: usize = 8;
/// Acknowledgements waiting at most; more are dropped (and counted).
const ACK_QUEUE: usize = 4096;
/// How long [`Watchers::start`] waits for every feed's `ready`.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// Failed first connections of a feed before [`Watchers::start`] gives up.
const FIRST_CONNECT_ATTEMPTS: u32 = 5;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How long [`Watchers::stop`] lets queued acknowledgements finish.
const ACK_DRAIN: Duration = Duration::from_secs(10);

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// One feed to watch: whose it is and the session token to open it with.
#[derive(Debug, Clone)]
pub struct FeedLogin {
    pub feed: Feed,
    pub token: String,
    pub officer_id: Uuid,
}

/// Why the watchers could not start.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error("cannot start the officer-feed thread")]
    Thread(#[source] std::io::Error),
    #[error("officer {officer_id}: the feed did not become ready: {detail}")]
    NotReady { officer_id: Uuid, detail: String },
}

/// What the feeds delivered.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct WatchReport {
    /// Every `opened` delivery on every feed, of this run's supervisees only, replays included.
    pub received: Vec<Received>,
    /// Text frames read, of any type.
    pub frames: u64,
    pub acknowledged: u64,
    pub acknowledge_failures: u64,
    /// Connections made again after a disconnect.
    pub reconnects: u64,
    /// Feed problems by kind: closes (`closed_4001`, `closed_1001`), read and connect errors
    /// (`read_error`, `connect_http_503`), odd frames (`error_frame_<code>`). A run without
    /// disruption has none.
    pub errors: BTreeMap<String, u64>,
    /// The `acknowledge_failures` by kind (`http_404`, `no_reply`, `queue_full`, `unfinished`);
    /// not repeated in `errors`.
    pub acknowledge_errors: BTreeMap<String, u64>,
}

/// The running feeds.
pub struct Watchers {
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    thread: Option<std::thread::JoinHandle<()>>,
    acknowledger: JoinHandle<()>,
}

impl Watchers {
    /// Connects one live feed per login (bearer header), waits for each feed's `ready` frame,
    /// then returns. `ack_every`: acknowledge every n-th distinct alert an officer (not a
    /// supervisor) receives; 0 never.
    pub async fn start(
        api: &Api,
        logins: Vec<FeedLogin>,
        run_supervisees: HashSet<Uuid>,
        ack_every: u32,
    ) -> Result<Watchers, WatchError> {
        let shared = Arc::new(Shared::default());
        let (stop, stop_rx) = watch::channel(false);
        let (ack_tx, ack_rx) = mpsc::channel(ACK_QUEUE);
        let acknowledger = tokio::spawn(acknowledge_all(api.clone(), ack_rx, shared.clone()));
        let run = Arc::new(run_supervisees);
        let url = api.ws_url(FEED_PATH);
        let mut readies = Vec::new();
        let mut tasks = Vec::new();
        for login in logins {
            let (ready, ready_rx) = oneshot::channel();
            readies.push((login.officer_id, ready_rx));
            let every = if login.feed.supervisor { 0 } else { ack_every };
            tasks.push(FeedTask {
                url: url.clone(),
                token: Arc::from(login.token.as_str()),
                state: FeedState::new(login.feed, run.clone(), every),
                shared: shared.clone(),
                acks: ack_tx.clone(),
                stop: stop_rx.clone(),
                ready: Some(ready),
            });
        }
        drop(ack_tx);
        let thread = std::thread::Builder::new()
            .name("officer-feeds".into())
            .spawn(move || {
                let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                else {
                    return; // the ready senders drop: start reports every feed not ready
                };
                runtime.block_on(async move {
                    let running: Vec<_> =
                        tasks.into_iter().map(|t| tokio::spawn(t.run())).collect();
                    for task in running {
                        let _ = task.await;
                    }
                });
            });
        let mut watchers = Watchers {
            shared,
            stop,
            thread: None,
            acknowledger,
        };
        match thread {
            Ok(thread) => watchers.thread = Some(thread),
            Err(err) => {
                watchers.stop().await;
                return Err(WatchError::Thread(err));
            }
        }
        let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
        for (officer_id, ready) in readies {
            let detail = match tokio::time::timeout_at(deadline, ready).await {
                Ok(Ok(Ok(()))) => continue,
                Ok(Ok(Err(detail))) => detail,
                Ok(Err(_)) => "the feed thread ended".to_owned(),
                Err(_) => format!("no `ready` within {READY_TIMEOUT:?}"),
            };
            watchers.stop().await;
            return Err(WatchError::NotReady { officer_id, detail });
        }
        Ok(watchers)
    }

    /// Distinct alert ids opened so far (for a progress line).
    pub fn received_count(&self) -> usize {
        self.shared.received().1.len()
    }

    /// Closes the feeds, lets queued acknowledgements finish (for a while), and reports.
    pub async fn stop(mut self) -> WatchReport {
        let _ = self.stop.send(true);
        if let Some(thread) = self.thread.take() {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
        if tokio::time::timeout(ACK_DRAIN, &mut self.acknowledger)
            .await
            .is_err()
        {
            self.acknowledger.abort();
            let unfinished = self.shared.ack_pending.swap(0, Ordering::Relaxed);
            self.shared.ack_failed_n("unfinished", unfinished);
        }
        let s = &self.shared;
        let received = std::mem::take(&mut s.received().0);
        let errors = std::mem::take(&mut *lock(&s.errors));
        let acknowledge_errors = std::mem::take(&mut *lock(&s.ack_errors));
        WatchReport {
            received,
            frames: s.frames.load(Ordering::Relaxed),
            acknowledged: s.acknowledged.load(Ordering::Relaxed),
            acknowledge_failures: s.ack_failures.load(Ordering::Relaxed),
            reconnects: s.reconnects.load(Ordering::Relaxed),
            errors,
            acknowledge_errors,
        }
    }
}

/// What every feed writes to.
#[derive(Default)]
struct Shared {
    /// Deliveries, and the distinct alert ids among them.
    received: Mutex<(Vec<Received>, HashSet<String>)>,
    frames: AtomicU64,
    acknowledged: AtomicU64,
    ack_failures: AtomicU64,
    /// Acknowledgements queued and not yet done.
    ack_pending: AtomicU64,
    ack_errors: Mutex<BTreeMap<String, u64>>,
    reconnects: AtomicU64,
    errors: Mutex<BTreeMap<String, u64>>,
}

/// A lock that survives a poisoned mutex (the data are counters and records).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Shared {
    fn received(&self) -> MutexGuard<'_, (Vec<Received>, HashSet<String>)> {
        lock(&self.received)
    }

    fn problem(&self, kind: impl Into<String>) {
        *lock(&self.errors).entry(kind.into()).or_default() += 1;
    }

    fn ack_failed(&self, kind: impl Into<String>) {
        self.ack_failed_n(kind, 1);
    }

    fn ack_failed_n(&self, kind: impl Into<String>, n: u64) {
        if n > 0 {
            self.ack_failures.fetch_add(n, Ordering::Relaxed);
            *lock(&self.ack_errors).entry(kind.into()).or_default() += n;
        }
    }

    fn record(&self, r: Received) {
        let mut received = self.received();
        received.1.insert(r.alert_id.clone());
        received.0.push(r);
    }
}

/// One connection's life: connect, read until it drops, resume, until stopped.
struct FeedTask {
    url: String,
    token: Arc<str>,
    state: FeedState,
    shared: Arc<Shared>,
    acks: mpsc::Sender<AckJob>,
    stop: watch::Receiver<bool>,
    ready: Option<oneshot::Sender<Result<(), String>>>,
}

async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

impl FeedTask {
    async fn run(mut self) {
        let mut backoff = FIRST_BACKOFF;
        let (mut connected_before, mut first_failures) = (false, 0);
        loop {
            let url = resume_url(&self.url, self.state.cursor);
            let connected = tokio::select! {
                _ = stopped(&mut self.stop) => return,
                c = connect(&url, &self.token) => c,
            };
            let mut ws = match connected {
                Ok(ws) => ws,
                Err((kind, detail, refused)) => {
                    self.shared.problem(kind);
                    if self.ready.is_some() {
                        first_failures += 1;
                        if refused || first_failures >= FIRST_CONNECT_ATTEMPTS {
                            if let Some(ready) = self.ready.take() {
                                let _ = ready.send(Err(detail));
                            }
                            return;
                        }
                    }
                    if !self.pause(&mut backoff).await {
                        return;
                    }
                    continue;
                }
            };
            if connected_before {
                self.shared.reconnects.fetch_add(1, Ordering::Relaxed);
            }
            connected_before = true;
            match self.read(&mut ws).await {
                None => {
                    let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(None)).await;
                    return;
                }
                Some(true) => backoff = FIRST_BACKOFF,
                Some(false) => {}
            }
            if !self.pause(&mut backoff).await {
                return;
            }
        }
    }

    /// Waits `backoff` (then doubles it); false when stopped meanwhile.
    async fn pause(&mut self, backoff: &mut Duration) -> bool {
        let wait = *backoff;
        *backoff = (*backoff * 2).min(MAX_BACKOFF);
        tokio::select! {
            _ = stopped(&mut self.stop) => false,
            _ = tokio::time::sleep(wait) => true,
        }
    }

    /// Reads until the connection drops (`Some(whether ready came)`) or stop (`None`).
    async fn read(&mut self, ws: &mut Ws) -> Option<bool> {
        let mut ready = false;
        loop {
            let message = tokio::select! {
                _ = stopped(&mut self.stop) => return None,
                m = ws.next() => m,
            };
            let text = match message {
                Some(Ok(Message::Text(text))) => text,
                Some(Ok(Message::Binary(_))) => {
                    self.shared.problem("binary_frame");
                    continue;
                }
                Some(Ok(Message::Close(frame))) => {
                    self.shared.problem(match frame {
                        Some(f) => format!("closed_{}", u16::from(f.code)),
                        None => "closed_without_code".into(),
                    });
                    return Some(ready);
                }
                Some(Ok(_)) => continue,
                Some(Err(_)) => {
                    self.shared.problem("read_error");
                    return Some(ready);
                }
                None => {
                    self.shared.problem("disconnected");
                    return Some(ready);
                }
            };
            let at = Utc::now();
            self.shared.frames.fetch_add(1, Ordering::Relaxed);
            let seen = self.state.on_text(text.as_str(), at);
            if let Some(problem) = seen.problem {
                self.shared.problem(problem);
            }
            if let Some(r) = seen.received {
                self.shared.record(r);
            }
            if let Some(alert_id) = seen.ack {
                let job = AckJob {
                    alert_id,
                    token: self.token.clone(),
                };
                match self.acks.try_send(job) {
                    Ok(()) => {
                        self.shared.ack_pending.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(_) => self.shared.ack_failed("queue_full"),
                }
            }
            if seen.ready {
                ready = true;
                if let Some(tx) = self.ready.take() {
                    let _ = tx.send(Ok(()));
                }
            }
        }
    }
}

/// Opens the feed; on failure (error kind, detail, whether the server refused the upgrade).
async fn connect(url: &str, token: &str) -> Result<Ws, (String, String, bool)> {
    let failed = |detail: String| ("connect_failed".to_owned(), detail, false);
    let mut request = url
        .into_client_request()
        .map_err(|e| failed(format!("bad URL {url}: {e}")))?;
    let bearer = HeaderValue::from_str(&format!("Bearer {token}"))
        .map_err(|e| failed(format!("bad token: {e}")))?;
    request.headers_mut().insert("authorization", bearer);
    match tokio::time::timeout(CONNECT_TIMEOUT, tokio_tungstenite::connect_async(request)).await {
        Ok(Ok((ws, _))) => Ok(ws),
        Ok(Err(tungstenite::Error::Http(response))) => {
            let status = response.status().as_u16();
            let body = response
                .body()
                .as_deref()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default();
            let kind = format!("connect_http_{status}");
            // 503 (connection limit) and 5xx may pass; a refusal of the request will not.
            Err((kind, format!("HTTP {status}: {body}"), status < 500))
        }
        Ok(Err(err)) => Err(failed(err.to_string())),
        Err(_) => Err((
            "connect_timeout".into(),
            format!("no upgrade within {CONNECT_TIMEOUT:?}"),
            false,
        )),
    }
}

#[cfg(test)]
#[path = "officer_tests.rs"]
mod tests;
