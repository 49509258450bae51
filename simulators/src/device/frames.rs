//! The device's side of the frame formats it handles itself: the fast path for geoward's
//! `ack` frames, and `batch` frames built from reports' JSON (`docs/device-protocol.md` §2–3).
//!
//! # Invariants (tested)
//! - `fast_ack` accepts only the exact shape geoward writes, so anything else goes through the
//!   full JSON parser;
//! - `batch_frames` keeps the items' order, puts at most [`MAX_BATCH_ITEMS`] in a frame and keeps
//!   each frame within [`MAX_BATCH_BYTES`] unless a single item is larger.

use super::{MAX_BATCH_BYTES, MAX_BATCH_ITEMS};

/// The list inside `{"type":"ack","seqs":[...]}` as geoward writes it, or `None` for anything
/// else (which then goes through the full JSON parser).
pub(super) fn fast_ack(text: &str) -> Option<&str> {
    let list = text
        .strip_prefix(r#"{"type":"ack","seqs":["#)?
        .strip_suffix("]}")?;
    list.bytes()
        .all(|b| b.is_ascii_digit() || b == b',')
        .then_some(list)
}

/// `batch` frames holding `items` (report JSON objects) in order: at most [`MAX_BATCH_ITEMS`]
/// items and, unless a single item is larger, [`MAX_BATCH_BYTES`] bytes each.
pub(crate) fn batch_frames<'a>(items: impl Iterator<Item = &'a str>) -> Vec<String> {
    const HEAD: &str = r#"{"type":"batch","items":["#;
    const TAIL: &str = "]}";
    let mut frames = Vec::new();
    let mut frame = String::new();
    let mut n = 0;
    for item in items {
        if n > 0
            && (n == MAX_BATCH_ITEMS || frame.len() + 1 + item.len() + TAIL.len() > MAX_BATCH_BYTES)
        {
            frame.push_str(TAIL);
            frames.push(std::mem::take(&mut frame));
            n = 0;
        }
        if n == 0 {
            frame.push_str(HEAD);
        } else {
            frame.push(',');
        }
        frame.push_str(item);
        n += 1;
    }
    if n > 0 {
        frame.push_str(TAIL);
        frames.push(frame);
    }
    frames
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geowards_acks_take_the_fast_path_and_anything_else_does_not() {
        assert_eq!(fast_ack(r#"{"type":"ack","seqs":[17,18]}"#), Some("17,18"));
        assert_eq!(fast_ack(r#"{"type":"ack","seqs":[]}"#), Some(""));
        assert_eq!(fast_ack(r#"{"type":"ack","seqs":[1,-2]}"#), None);
        assert_eq!(fast_ack(r#"{"type":"ack","seqs":[1] }"#), None);
        assert_eq!(fast_ack(r#"{"type":"error","seq":1}"#), None);
    }

    #[test]
    fn batches_hold_at_most_a_thousand_items_in_order() {
        let items: Vec<String> = (1..=2500).map(|i| format!(r#"{{"seq":{i}}}"#)).collect();
        let frames = batch_frames(items.iter().map(String::as_str));
        assert_eq!(frames.len(), 3);
        let mut seqs = Vec::new();
        for frame in &frames {
            let v: serde_json::Value = serde_json::from_str(frame).unwrap();
            assert_eq!(v["type"], "batch");
            let list = v["items"].as_array().unwrap();
            assert!(list.len() <= MAX_BATCH_ITEMS);
            seqs.extend(list.iter().map(|i| i["seq"].as_u64().unwrap()));
        }
        assert_eq!(seqs, (1..=2500).collect::<Vec<u64>>());
        assert!(batch_frames(std::iter::empty()).is_empty());
    }

    #[test]
    fn batches_stay_under_the_byte_limit() {
        let big = format!(r#"{{"pad":"{}"}}"#, "x".repeat(60_000));
        let frames = batch_frames(std::iter::repeat(big.as_str()).take(10));
        assert!(frames.len() >= 3);
        assert!(frames.iter().all(|f| f.len() <= MAX_BATCH_BYTES));
        let items: usize = frames
            .iter()
            .map(|f| {
                serde_json::from_str::<serde_json::Value>(f).unwrap()["items"]
                    .as_array()
                    .unwrap()
                    .len()
            })
            .sum();
        assert_eq!(items, 10);
    }
}
