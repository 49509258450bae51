//! Reading one feed's text frames, without I/O: which deliveries to record, where to resume,
//! which alerts to acknowledge. Any text is accepted; nothing here panics.

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use crate::ledger::{Feed, Received};

/// Picks every n-th distinct alert (1-based: the n-th, 2n-th, …); `every` 0 picks none.
#[derive(Debug, Default)]
pub(crate) struct AckPicker {
    every: u32,
    seen: HashSet<String>,
}

impl AckPicker {
    pub(crate) fn new(every: u32) -> AckPicker {
        AckPicker {
            every,
            seen: HashSet::new(),
        }
    }

    pub(crate) fn pick(&mut self, alert_id: &str) -> bool {
        if self.every == 0 || !self.seen.insert(alert_id.to_owned()) {
            return false;
        }
        self.seen.len() as u64 % u64::from(self.every) == 0
    }
}

/// What one text frame meant.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Seen {
    /// A `ready` frame.
    pub ready: bool,
    /// An `opened` alert of one of the run's supervisees.
    pub received: Option<Received>,
    /// Acknowledge this alert id.
    pub ack: Option<String>,
    pub problem: Option<String>,
}

/// One feed's reading state: where to resume, and which alerts to acknowledge.
pub(crate) struct FeedState {
    feed: Feed,
    run: Arc<HashSet<Uuid>>,
    /// The newest cursor seen (`?after=` on reconnecting).
    pub cursor: Option<i64>,
    picker: AckPicker,
}

impl FeedState {
    pub(crate) fn new(feed: Feed, run: Arc<HashSet<Uuid>>, ack_every: u32) -> FeedState {
        FeedState {
            feed,
            run,
            cursor: None,
            picker: AckPicker::new(ack_every),
        }
    }

    /// Reads one text frame received at `at`.
    pub(crate) fn on_text(&mut self, text: &str, at: DateTime<Utc>) -> Seen {
        let mut seen = Seen::default();
        let Ok(frame) = serde_json::from_str::<Value>(text) else {
            seen.problem = Some("unparseable_frame".into());
            return seen;
        };
        match frame.get("type").and_then(Value::as_str) {
            Some("ready") => {
                seen.ready = true;
                seen.problem = self.note_cursor(&frame);
            }
            Some("alert") => {
                seen.problem = self.note_cursor(&frame);
                if frame.get("change").and_then(Value::as_str) != Some("opened") {
                    return seen;
                }
                match Received::from_feed_frame(&frame, self.feed, at) {
                    None => seen.problem = Some("malformed_opened_frame".into()),
                    Some(r) if self.run.contains(&r.supervisee_id) => {
                        seen.ack = self.picker.pick(&r.alert_id).then(|| r.alert_id.clone());
                        seen.received = Some(r);
                    }
                    Some(_) => {}
                }
            }
            Some("error") => {
                let code = frame.get("code").and_then(Value::as_str).unwrap_or("none");
                seen.problem = Some(format!("error_frame_{code}"));
            }
            Some(_) => {}
            None => seen.problem = Some("untyped_frame".into()),
        }
        seen
    }

    fn note_cursor(&mut self, frame: &Value) -> Option<String> {
        let cursor = frame.get("cursor").and_then(Value::as_str)?.parse::<i64>();
        match cursor {
            Ok(c) => {
                self.cursor = Some(self.cursor.map_or(c, |old| old.max(c)));
                None
            }
            Err(_) => Some("bad_cursor".into()),
        }
    }
}

/// `url` with `?after=<cursor>` when there is one.
pub(crate) fn resume_url(url: &str, after: Option<i64>) -> String {
    match after {
        Some(cursor) => format!("{url}?after={cursor}"),
        None => url.to_owned(),
    }
}
