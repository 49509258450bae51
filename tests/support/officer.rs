//! An officer's live feed over `GET /v1/officer/ws`, for tests.
//!
//! The connection authenticates with `Authorization: Bearer <officer token>` or with a
//! single-use `?ticket=` from `POST /v1/auth/ws-ticket`; `?after=<cursor>` replays every alert
//! change after that cursor before the feed goes live. The server sends JSON text frames:
//! `ready` (once, after any replay, with the newest cursor), `alert` (with `cursor`, `change`
//! and `alert`), `position` (once subscribed), `subscribed` and `error`.
//!
//! [`OfficerFeed`] keeps every frame read from the socket in a queue until a call hands it out,
//! so waiting for one kind of frame (`ready`, a matching alert) never loses the others:
//!
//! - [`OfficerFeed::next`] hands out the oldest frame of any type;
//! - [`OfficerFeed::wait_ready`], [`OfficerFeed::wait_alert`], [`OfficerFeed::next_position`]
//!   and [`OfficerFeed::subscribe_positions`] take the first frame they look for and leave
//!   every other frame queued, in order;
//! - [`OfficerFeed::next_alert`] and [`OfficerFeed::alerts_for`] consume frames in order and
//!   move the non-alert ones they pass over (positions, `subscribed`, ...) to
//!   [`OfficerFeed::skipped`].
//!
//! Pings are answered by tungstenite while a read is in progress; a test holding a feed it
//! does not read for a long time may be dropped by the server's keepalive.

use std::collections::VecDeque;
use std::fmt;
use std::time::Duration;

use anyhow::Context;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::header::AUTHORIZATION;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{self, Message};

use super::device::WsStream;

pub const OFFICER_WS_PATH: &str = "/v1/officer/ws";
pub const WS_TICKET_PATH: &str = "/v1/auth/ws-ticket";
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const SEND_TIMEOUT: Duration = Duration::from_secs(5);
/// How long `subscribe_positions` waits for the server's `subscribed`.
const SUBSCRIBE_TIMEOUT: Duration = Duration::from_secs(10);

/// How a feed connection authenticates.
#[derive(Debug, Clone, Copy)]
pub enum FeedAuth<'a> {
    /// `Authorization: Bearer <token>`.
    Bearer(&'a str),
    /// `?ticket=<ticket>`.
    Ticket(&'a str),
    /// Nothing (the server should refuse the upgrade).
    None,
}

/// Why a feed could not connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeedConnectError {
    /// The server answered the upgrade request with this HTTP status, and this body.
    Http { status: u16, body: String },
    /// Anything else: refused, reset, timed out.
    Other(String),
}

impl FeedConnectError {
    /// The HTTP status of a refused upgrade.
    pub fn status(&self) -> Option<u16> {
        match self {
            FeedConnectError::Http { status, .. } => Some(*status),
            FeedConnectError::Other(_) => None,
        }
    }
}

impl fmt::Display for FeedConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FeedConnectError::Http { status, body } => {
                write!(f, "officer feed upgrade refused with HTTP {status}: {body}")
            }
            FeedConnectError::Other(message) => {
                write!(f, "cannot connect the officer feed: {message}")
            }
        }
    }
}

impl std::error::Error for FeedConnectError {}

/// `http://host:port` as `ws://host:port` (and https as wss); ws URLs are kept.
pub fn ws_base(base_http: &str) -> String {
    let base = base_http.trim_end_matches('/');
    if let Some(rest) = base.strip_prefix("http://") {
        format!("ws://{rest}")
    } else if let Some(rest) = base.strip_prefix("https://") {
        format!("wss://{rest}")
    } else {
        base.to_owned()
    }
}

/// Percent-encodes a query value (everything but RFC 3986 unreserved characters).
pub fn query_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The feed URL for this authentication and cursor.
pub fn feed_url(base_http: &str, auth: FeedAuth<'_>, after: Option<&str>) -> String {
    let mut query = Vec::new();
    if let FeedAuth::Ticket(ticket) = auth {
        query.push(format!("ticket={}", query_escape(ticket)));
    }
    if let Some(after) = after {
        query.push(format!("after={}", query_escape(after)));
    }
    let mut url = format!("{}{OFFICER_WS_PATH}", ws_base(base_http));
    if !query.is_empty() {
        url.push('?');
        url.push_str(&query.join("&"));
    }
    url
}

/// Asks `POST /v1/auth/ws-ticket` for a single-use feed ticket: (status, body). The body sent
/// is `{}`.
pub async fn request_ws_ticket(
    http: &reqwest::Client,
    base_http: &str,
    token: &str,
) -> (u16, Value) {
    let response = http
        .post(format!(
            "{}{WS_TICKET_PATH}",
            base_http.trim_end_matches('/')
        ))
        .bearer_auth(token)
        .json(&json!({}))
        .send()
        .await
        .expect("ws-ticket request sent");
    let status = response.status().as_u16();
    let text = response.text().await.expect("ws-ticket body read");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// A ticket for `token`; panics unless the server answers 201 with a `ticket`.
pub async fn ws_ticket(http: &reqwest::Client, base_http: &str, token: &str) -> String {
    let (status, body) = request_ws_ticket(http, base_http, token).await;
    assert_eq!(
        status, 201,
        "POST {WS_TICKET_PATH} answered {status}: {body}"
    );
    body["ticket"]
        .as_str()
        .unwrap_or_else(|| panic!("no ticket in the ws-ticket reply {body}"))
        .to_owned()
}

impl super::TestApp {
    /// A single-use feed ticket for `token` (expects 201).
    pub async fn ws_ticket(&self, token: &str) -> String {
        ws_ticket(&self.http, &self.base, token).await
    }

    /// Opens the feed of the officer holding `token` (bearer), panicking when refused.
    pub async fn officer_feed(&self, token: &str, after: Option<&str>) -> OfficerFeed {
        OfficerFeed::connect(&self.base, token, after)
            .await
            .expect("officer feed connects")
    }
}

impl super::TestNode {
    /// A single-use feed ticket for `token`, asked of this node (expects 201).
    pub async fn ws_ticket(&self, token: &str) -> String {
        ws_ticket(&self.http, &self.base, token).await
    }

    /// Opens the feed of the officer holding `token` on this node, panicking when refused.
    pub async fn officer_feed(&self, token: &str, after: Option<&str>) -> OfficerFeed {
        OfficerFeed::connect(&self.base, token, after)
            .await
            .expect("officer feed connects")
    }
}

/// The `type` of a frame ("" when it has none).
pub fn frame_type(frame: &Value) -> &str {
    frame["type"].as_str().unwrap_or_default()
}

pub fn is_alert(frame: &Value) -> bool {
    frame_type(frame) == "alert"
}

/// One officer feed connection, driven by the test. See the module doc.
pub struct OfficerFeed {
    ws: WsStream,
    /// Frames read from the socket and not yet handed out, oldest first.
    queue: VecDeque<Value>,
    /// Every frame read from the socket, in order.
    received: Vec<Value>,
    /// Frames `next_alert` and `alerts_for` passed over.
    skipped: Vec<Value>,
    /// Set once the connection has closed: (close code, reason).
    closed: Option<(Option<u16>, String)>,
    /// The cursor of the `ready` frame, once received.
    ready_cursor: Option<String>,
    /// The cursor of the newest alert frame handed out.
    last_cursor: Option<String>,
    /// The cursor of the newest alert frame received.
    received_cursor: Option<String>,
}

impl OfficerFeed {
    /// Opens the feed with `auth`, replaying after `after` when given.
    pub async fn open(
        base_http: &str,
        auth: FeedAuth<'_>,
        after: Option<&str>,
    ) -> Result<OfficerFeed, FeedConnectError> {
        let url = feed_url(base_http, auth, after);
        let mut request = url
            .as_str()
            .into_client_request()
            .map_err(|e| FeedConnectError::Other(format!("bad URL {url}: {e}")))?;
        if let FeedAuth::Bearer(token) = auth {
            let bearer = HeaderValue::from_str(&format!("Bearer {token}"))
                .map_err(|e| FeedConnectError::Other(format!("bad token: {e}")))?;
            request.headers_mut().insert(AUTHORIZATION, bearer);
        }
        let ws =
            match tokio::time::timeout(CONNECT_TIMEOUT, tokio_tungstenite::connect_async(request))
                .await
            {
                Ok(Ok((ws, _))) => ws,
                Ok(Err(tungstenite::Error::Http(response))) => {
                    let body = response
                        .body()
                        .as_deref()
                        .map(|b| String::from_utf8_lossy(b).into_owned())
                        .unwrap_or_default();
                    return Err(FeedConnectError::Http {
                        status: response.status().as_u16(),
                        body,
                    });
                }
                Ok(Err(err)) => return Err(FeedConnectError::Other(err.to_string())),
                Err(_) => {
                    return Err(FeedConnectError::Other(format!(
                        "no upgrade within {CONNECT_TIMEOUT:?}"
                    )))
                }
            };
        Ok(OfficerFeed {
            ws,
            queue: VecDeque::new(),
            received: Vec::new(),
            skipped: Vec::new(),
            closed: None,
            ready_cursor: None,
            last_cursor: None,
            received_cursor: None,
        })
    }

    /// Opens the feed with a bearer token. A refused upgrade is an error whose message has the
    /// HTTP status; it downcasts to [`FeedConnectError`].
    pub async fn connect(
        base_http: &str,
        token: &str,
        after: Option<&str>,
    ) -> anyhow::Result<OfficerFeed> {
        Ok(Self::open(base_http, FeedAuth::Bearer(token), after).await?)
    }

    /// Opens the feed with a ticket from `POST /v1/auth/ws-ticket`.
    pub async fn connect_with_ticket(
        base_http: &str,
        ticket: &str,
        after: Option<&str>,
    ) -> anyhow::Result<OfficerFeed> {
        Ok(Self::open(base_http, FeedAuth::Ticket(ticket), after).await?)
    }

    /// Like [`OfficerFeed::connect`], with the HTTP status of a refused upgrade as the error.
    /// Panics when the connection fails otherwise (refused, timed out).
    pub async fn connect_status(
        base_http: &str,
        token: &str,
        after: Option<&str>,
    ) -> Result<OfficerFeed, u16> {
        Self::open_status(base_http, FeedAuth::Bearer(token), after).await
    }

    /// Like [`OfficerFeed::connect_with_ticket`], with the HTTP status of a refused upgrade as
    /// the error. Panics when the connection fails otherwise.
    pub async fn connect_with_ticket_status(
        base_http: &str,
        ticket: &str,
        after: Option<&str>,
    ) -> Result<OfficerFeed, u16> {
        Self::open_status(base_http, FeedAuth::Ticket(ticket), after).await
    }

    /// [`OfficerFeed::open`] with the HTTP status of a refused upgrade as the error. Panics
    /// when the connection fails otherwise.
    pub async fn open_status(
        base_http: &str,
        auth: FeedAuth<'_>,
        after: Option<&str>,
    ) -> Result<OfficerFeed, u16> {
        match Self::open(base_http, auth, after).await {
            Ok(feed) => Ok(feed),
            Err(FeedConnectError::Http { status, .. }) => Err(status),
            Err(err) => panic!("{err}"),
        }
    }

    // -----------------------------------------------------------------------------------------
    // Sending
    // -----------------------------------------------------------------------------------------

    pub async fn send_text(&mut self, text: &str) -> anyhow::Result<()> {
        tokio::time::timeout(SEND_TIMEOUT, self.ws.send(Message::text(text)))
            .await
            .context("send timed out")?
            .context("sending a frame")
    }

    pub async fn send_json(&mut self, value: &Value) -> anyhow::Result<()> {
        self.send_text(&value.to_string()).await
    }

    /// Sends `{"type":"subscribe","positions":true}` and waits for the server's `subscribed`
    /// (other frames stay queued). Panics when it does not come within 10 s.
    pub async fn subscribe_positions(&mut self) {
        self.send_json(&json!({ "type": "subscribe", "positions": true }))
            .await
            .expect("subscribe sent");
        if self
            .take_matching(SUBSCRIBE_TIMEOUT, |f| frame_type(f) == "subscribed")
            .await
            .is_none()
        {
            panic!(
                "no `subscribed` within {SUBSCRIBE_TIMEOUT:?} after subscribing to positions; {}",
                self.describe()
            );
        }
    }

    // -----------------------------------------------------------------------------------------
    // Receiving
    // -----------------------------------------------------------------------------------------

    /// Reads one frame from the socket into the queue; false when the connection has closed
    /// (or closes now). Not limited in time: callers wrap it in a timeout (it is cancel-safe).
    async fn read_one(&mut self) -> bool {
        if self.closed.is_some() {
            return false;
        }
        loop {
            let frame = match self.ws.next().await {
                Some(Ok(Message::Text(text))) => serde_json::from_str::<Value>(text.as_str())
                    .unwrap_or_else(|_| Value::String(text.as_str().to_owned())),
                Some(Ok(Message::Binary(bytes))) => json!({ "binary_len": bytes.len() }),
                Some(Ok(Message::Close(frame))) => {
                    self.closed = Some(match frame {
                        Some(frame) => (Some(u16::from(frame.code)), frame.reason.as_str().into()),
                        None => (None, "close frame without a code".into()),
                    });
                    return false;
                }
                Some(Ok(_)) => continue,
                Some(Err(err)) => {
                    self.closed = Some((None, err.to_string()));
                    return false;
                }
                None => {
                    self.closed = Some((None, "connection ended".into()));
                    return false;
                }
            };
            match frame_type(&frame) {
                "ready" => {
                    self.ready_cursor = Some(cursor_of(&frame));
                }
                "alert" => {
                    self.received_cursor = Some(cursor_of(&frame));
                }
                _ => {}
            }
            self.received.push(frame.clone());
            self.queue.push_back(frame);
            return true;
        }
    }

    /// Reads one frame into the queue unless `deadline` passes first; false on timeout or
    /// close.
    async fn read_until(&mut self, deadline: Instant) -> bool {
        tokio::time::timeout_at(deadline, self.read_one())
            .await
            .unwrap_or(false)
    }

    /// Hands a frame out of the queue, noting an alert's cursor.
    fn hand_out(&mut self, frame: Value) -> Value {
        if is_alert(&frame) {
            self.last_cursor = Some(cursor_of(&frame));
        }
        frame
    }

    /// The oldest frame not handed out yet (of any type), waiting up to `timeout` for one;
    /// None on timeout or once the connection has closed and the queue is empty.
    pub async fn next(&mut self, timeout: Duration) -> Option<Value> {
        let deadline = Instant::now() + timeout;
        if self.queue.is_empty() && !self.read_until(deadline).await {
            return None;
        }
        let frame = self.queue.pop_front()?;
        Some(self.hand_out(frame))
    }

    /// The first queued or arriving frame matching `pred`, within `timeout`; frames that do not
    /// match stay queued in order.
    pub async fn take_matching(
        &mut self,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Option<Value> {
        let deadline = Instant::now() + timeout;
        let mut checked = 0;
        loop {
            if let Some(i) = self.queue.iter().skip(checked).position(&pred) {
                let frame = self.queue.remove(checked + i).expect("index in range");
                return Some(self.hand_out(frame));
            }
            checked = self.queue.len();
            if !self.read_until(deadline).await {
                return None;
            }
        }
    }

    /// Waits for the `ready` frame and returns its cursor; frames before it (a replay) stay
    /// queued for later calls. If `ready` was already handed out by `next`, returns its cursor
    /// at once. Panics when it does not come within `timeout`.
    pub async fn wait_ready(&mut self, timeout: Duration) -> String {
        let queued = self.queue.iter().any(|f| frame_type(f) == "ready");
        if !queued {
            if let Some(cursor) = &self.ready_cursor {
                return cursor.clone();
            }
        }
        match self
            .take_matching(timeout, |f| frame_type(f) == "ready")
            .await
        {
            Some(frame) => cursor_of(&frame),
            None => panic!("no `ready` frame within {timeout:?}; {}", self.describe()),
        }
    }

    /// The next alert frame within `timeout`; non-alert frames before it are moved to
    /// `skipped`. None on timeout or close.
    pub async fn next_alert(&mut self, timeout: Duration) -> Option<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let frame = self.next(left).await?;
            if is_alert(&frame) {
                return Some(frame);
            }
            self.skipped.push(frame);
        }
    }

    /// Every alert frame queued or arriving during `period` (waits the whole period unless the
    /// connection closes); non-alert frames are moved to `skipped`.
    pub async fn alerts_for(&mut self, period: Duration) -> Vec<Value> {
        let deadline = Instant::now() + period;
        let mut alerts = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next(left).await {
                Some(frame) if is_alert(&frame) => alerts.push(frame),
                Some(frame) => self.skipped.push(frame),
                None => break,
            }
        }
        alerts
    }

    /// The first alert frame for which `pred` holds, within `timeout`. Frames that do not
    /// match (other alerts, positions) stay queued in order for later calls.
    pub async fn wait_alert(
        &mut self,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Option<Value> {
        self.take_matching(timeout, |f| is_alert(f) && pred(f))
            .await
    }

    /// Like [`OfficerFeed::wait_alert`], panicking with what was received when none matches.
    pub async fn expect_alert(
        &mut self,
        timeout: Duration,
        what: &str,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        match self.wait_alert(timeout, pred).await {
            Some(frame) => frame,
            None => panic!(
                "no alert frame {what} within {timeout:?}; {}",
                self.describe()
            ),
        }
    }

    /// The next `position` frame within `timeout`; other frames stay queued.
    pub async fn next_position(&mut self, timeout: Duration) -> Option<Value> {
        self.take_matching(timeout, |f| frame_type(f) == "position")
            .await
    }

    /// Reads (without handing out) whatever arrives within `period`, then returns a copy of
    /// the queue.
    pub async fn settle(&mut self, period: Duration) -> Vec<Value> {
        let deadline = Instant::now() + period;
        while self.read_until(deadline).await {}
        self.queue.iter().cloned().collect()
    }

    // -----------------------------------------------------------------------------------------
    // State
    // -----------------------------------------------------------------------------------------

    /// The cursor of the newest alert frame handed out to the test (by `next`, `next_alert`,
    /// `alerts_for`, `wait_alert`, ...): what to pass as `after` to resume.
    pub fn last_cursor(&self) -> Option<String> {
        self.last_cursor.clone()
    }

    /// The cursor of the newest alert frame read from the socket (handed out or still queued).
    pub fn received_cursor(&self) -> Option<String> {
        self.received_cursor.clone()
    }

    /// The cursor of the `ready` frame, once received.
    pub fn ready_cursor(&self) -> Option<String> {
        self.ready_cursor.clone()
    }

    /// Frames read and not yet handed out, oldest first.
    pub fn queued(&self) -> &VecDeque<Value> {
        &self.queue
    }

    /// Every frame read from the socket so far, in order (handed out or not).
    pub fn received(&self) -> &[Value] {
        &self.received
    }

    /// Every alert frame read from the socket so far, in order.
    pub fn received_alerts(&self) -> Vec<Value> {
        self.received
            .iter()
            .filter(|f| is_alert(f))
            .cloned()
            .collect()
    }

    /// Frames `next_alert` and `alerts_for` passed over.
    pub fn skipped(&self) -> &[Value] {
        &self.skipped
    }

    /// Whether the connection has closed (as seen by a read).
    pub fn is_closed(&self) -> bool {
        self.closed.is_some()
    }

    /// The close code (None: closed without a close frame, or still open).
    pub fn close_code(&self) -> Option<u16> {
        self.closed.as_ref().and_then(|(code, _)| *code)
    }

    /// How the connection closed, once it has.
    pub fn close_reason(&self) -> Option<String> {
        self.closed.as_ref().map(|(_, reason)| reason.clone())
    }

    /// Reads until the server closes the connection, within `timeout`; returns whether it
    /// did. Frames read meanwhile are queued.
    pub async fn wait_closed(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while self.read_until(deadline).await {}
        self.is_closed()
    }

    /// A short account of the connection for failure messages.
    pub fn describe(&self) -> String {
        let closed = match &self.closed {
            Some((code, reason)) => format!("closed (code {code:?}: {reason})"),
            None => "open".to_owned(),
        };
        let recent: Vec<String> = self
            .received
            .iter()
            .rev()
            .take(10)
            .rev()
            .map(Value::to_string)
            .collect();
        format!(
            "connection {closed}; {} frames received, the last ones: [{}]",
            self.received.len(),
            recent.join(", ")
        )
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

/// The `cursor` of a frame, as a string (numbers are accepted too).
pub fn cursor_of(frame: &Value) -> String {
    match &frame["cursor"] {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}
