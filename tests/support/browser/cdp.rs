//! The DevTools connection: one WebSocket to the browser endpoint, commands matched to their
//! replies by id, and events routed to the page (flattened session) they belong to, where the
//! errors it logs and its load events are recorded.
//!
//! Invariants: a command waits at most [`COMMAND_TIMEOUT`] for its reply; when the socket
//! closes every waiting command fails at once with the reason; a page keeps at most
//! [`MAX_LOG`] errors.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::Message;

use super::{BrowserError, Result};
use crate::support::device::WsStream;

/// How long one protocol command may take.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);
/// Most errors kept per page.
pub const MAX_LOG: usize = 1000;

/// Something a page logged as an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    /// `exception`, `console`, `crash`, or the Log domain's source (`network`, `javascript`, ...).
    pub source: String,
    pub text: String,
}

/// What one page logged: its errors, and how many load events it fired.
#[derive(Default)]
pub struct PageLog {
    pub errors: Vec<LogEntry>,
    pub loads: u64,
}

type Pending = HashMap<u64, oneshot::Sender<std::result::Result<Value, String>>>;

/// State shared with the task reading the DevTools socket.
#[derive(Default)]
pub struct Shared {
    pending: Mutex<Pending>,
    /// Page logs by session id.
    pub pages: Mutex<HashMap<String, Arc<Mutex<PageLog>>>>,
    closed: Mutex<Option<String>>,
}

/// One DevTools connection: commands out, replies and events in.
pub struct Cdp {
    next_id: AtomicU64,
    sink: tokio::sync::Mutex<SplitSink<WsStream, Message>>,
    pub shared: Arc<Shared>,
    reader: tokio::task::JoinHandle<()>,
}

impl Cdp {
    pub async fn connect(url: &str) -> Result<Cdp> {
        let (ws, _) = tokio::time::timeout(COMMAND_TIMEOUT, tokio_tungstenite::connect_async(url))
            .await
            .map_err(|_| BrowserError::Launch(format!("no WebSocket to {url} within 30 s")))?
            .map_err(|e| BrowserError::Launch(format!("WebSocket to {url}: {e}")))?;
        let (sink, mut stream) = ws.split();
        let shared = Arc::new(Shared::default());
        let state = shared.clone();
        let reader = tokio::spawn(async move {
            let reason = loop {
                match stream.next().await {
                    Some(Ok(Message::Text(text))) => dispatch(&state, text.as_str()),
                    Some(Ok(Message::Close(_))) | None => break "closed by Chromium".to_owned(),
                    Some(Ok(_)) => {}
                    Some(Err(e)) => break e.to_string(),
                }
            };
            *state.closed.lock().unwrap() = Some(reason);
            state.pending.lock().unwrap().clear();
        });
        Ok(Cdp {
            next_id: AtomicU64::new(1),
            sink: tokio::sync::Mutex::new(sink),
            shared,
            reader,
        })
    }

    /// Sends one command (to a page session, or to the browser) and waits for its result.
    pub async fn call(&self, session: Option<&str>, method: &str, params: Value) -> Result<Value> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.shared.pending.lock().unwrap().insert(id, tx);
        let mut command = json!({ "id": id, "method": method, "params": params });
        if let Some(session) = session {
            command["sessionId"] = json!(session);
        }
        let closed = || {
            let reason = self.shared.closed.lock().unwrap().clone();
            BrowserError::Protocol(format!(
                "{method}: connection lost ({})",
                reason.unwrap_or_else(|| "no reason".into())
            ))
        };
        let sent = tokio::time::timeout(COMMAND_TIMEOUT, async {
            self.sink
                .lock()
                .await
                .send(Message::text(command.to_string()))
                .await
        })
        .await;
        if !matches!(sent, Ok(Ok(()))) {
            self.shared.pending.lock().unwrap().remove(&id);
            return Err(closed());
        }
        match tokio::time::timeout(COMMAND_TIMEOUT, rx).await {
            Ok(Ok(Ok(result))) => Ok(result),
            Ok(Ok(Err(message))) => Err(BrowserError::Protocol(format!("{method}: {message}"))),
            Ok(Err(_)) => Err(closed()),
            Err(_) => {
                self.shared.pending.lock().unwrap().remove(&id);
                Err(BrowserError::Protocol(format!(
                    "{method}: no reply within {COMMAND_TIMEOUT:?}"
                )))
            }
        }
    }
}

impl Drop for Cdp {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// Routes one message from Chromium: a reply to its waiting command, or an event to its page.
fn dispatch(shared: &Shared, text: &str) {
    let Ok(message) = serde_json::from_str::<Value>(text) else {
        return;
    };
    if let Some(id) = message["id"].as_u64() {
        if let Some(tx) = shared.pending.lock().unwrap().remove(&id) {
            let reply = match message.get("error") {
                Some(error) => Err(error["message"].as_str().unwrap_or("error").to_owned()),
                None => Ok(message["result"].clone()),
            };
            let _ = tx.send(reply);
        }
        return;
    }
    let Some(session) = message["sessionId"].as_str() else {
        return;
    };
    let Some(log) = shared.pages.lock().unwrap().get(session).cloned() else {
        return;
    };
    let params = &message["params"];
    let error = match message["method"].as_str().unwrap_or_default() {
        "Page.loadEventFired" => {
            log.lock().unwrap().loads += 1;
            None
        }
        "Runtime.exceptionThrown" => Some(LogEntry {
            source: "exception".into(),
            text: describe_exception(&params["exceptionDetails"]),
        }),
        "Runtime.consoleAPICalled"
            if matches!(params["type"].as_str(), Some("error" | "assert")) =>
        {
            let args = params["args"].as_array().cloned().unwrap_or_default();
            let text = args
                .iter()
                .map(|a| match &a["value"] {
                    Value::String(s) => s.clone(),
                    Value::Null => a["description"].as_str().unwrap_or("?").to_owned(),
                    other => other.to_string(),
                })
                .collect::<Vec<_>>()
                .join(" ");
            Some(LogEntry {
                source: "console".into(),
                text,
            })
        }
        "Log.entryAdded" if params["entry"]["level"] == "error" => {
            let entry = &params["entry"];
            let url = entry["url"].as_str().unwrap_or_default();
            Some(LogEntry {
                source: entry["source"].as_str().unwrap_or("log").to_owned(),
                text: format!("{} {url}", entry["text"].as_str().unwrap_or_default())
                    .trim()
                    .to_owned(),
            })
        }
        "Inspector.targetCrashed" => Some(LogEntry {
            source: "crash".into(),
            text: "the page crashed".into(),
        }),
        _ => None,
    };
    if let Some(error) = error {
        let mut log = log.lock().unwrap();
        if log.errors.len() < MAX_LOG {
            log.errors.push(error);
        }
    }
}

/// An exception's message (with its stack when Chromium gives one).
pub fn describe_exception(details: &Value) -> String {
    details["exception"]["description"]
        .as_str()
        .or_else(|| details["exception"]["value"].as_str())
        .or_else(|| details["text"].as_str())
        .unwrap_or("unknown exception")
        .to_owned()
}
