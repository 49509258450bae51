//! The slow path: a `serde_json::Value` pass for the frames the fast path could not type.
//!
//! It names the offending field and recovers the `seq` where it can, then hands the same
//! [`Fields`] to the shared [`validate`], so a report gets the same verdict on either path.
//! Only malformed or unusual frames come here (invalid JSON, a non-object, a wrong JSON type,
//! strings with escapes); its cost is a full `Value` tree, bounded by the frame size limit and
//! serde_json's nesting limit.

use crate::domain::json::kind_of as kind;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::types::{Decoded, ErrorCode};
use super::validate::{batch_size_ok, push_item, render, validate, Fields, Slot};
use super::Limits;

pub(crate) fn decode(text: &str, now: DateTime<Utc>, limits: &Limits) -> Decoded {
    let value: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            let m = format!("not valid JSON: {e}");
            return Decoded::rejected(None, ErrorCode::MalformedJson, m);
        }
    };
    let Value::Object(obj) = &value else {
        let m = format!("frame is {}, not a JSON object", kind(&value));
        return Decoded::rejected(None, ErrorCode::MalformedJson, m);
    };
    if obj.get("type").and_then(Value::as_str) != Some("batch") {
        let mut out = Decoded::default();
        push_item(&mut out, None, validate(&fields(obj), now, limits));
        return out;
    }
    let items = match obj.get("items") {
        None | Some(Value::Null) => {
            return Decoded::rejected(None, ErrorCode::MissingField, "missing items".into())
        }
        Some(Value::Array(items)) => items,
        Some(other) => {
            let m = format!("items {} is not an array", render(other));
            return Decoded::rejected(None, ErrorCode::InvalidField, m);
        }
    };
    if let Err(out) = batch_size_ok(items.len(), limits) {
        return out;
    }
    let mut out = Decoded {
        reports: Vec::with_capacity(items.len()),
        rejections: Vec::new(),
    };
    for (i, item) in items.iter().enumerate() {
        let verdict = match item {
            Value::Object(obj) => validate(&fields(obj), now, limits),
            other => Err(super::Rejection {
                seq: None,
                code: ErrorCode::MalformedJson,
                message: format!("item is {}, not a JSON object", kind(other)),
            }),
        };
        push_item(&mut out, Some(i), verdict);
    }
    out
}

fn fields(obj: &Map<String, Value>) -> Fields<'_> {
    Fields {
        ty: string(obj.get("type")),
        seq: unsigned(obj.get("seq")),
        ts: string(obj.get("ts")),
        lat: float(obj.get("lat")),
        lon: float(obj.get("lon")),
        acc: float(obj.get("acc")),
        src: string(obj.get("src")),
        speed: float(obj.get("speed")),
        bat: unsigned(obj.get("bat")),
        strap: string(obj.get("strap")),
    }
}

fn string(v: Option<&Value>) -> Slot<&str> {
    match v {
        None | Some(Value::Null) => Slot::Absent,
        Some(Value::String(s)) => Slot::Val(s),
        Some(other) => Slot::Wrong(render(other)),
    }
}

fn unsigned(v: Option<&Value>) -> Slot<u64> {
    match v {
        None | Some(Value::Null) => Slot::Absent,
        Some(other) => other
            .as_u64()
            .map_or_else(|| Slot::Wrong(render(other)), Slot::Val),
    }
}

fn float(v: Option<&Value>) -> Slot<f64> {
    match v {
        None | Some(Value::Null) => Slot::Absent,
        Some(other) => other
            .as_f64()
            .map_or_else(|| Slot::Wrong(render(other)), Slot::Val),
    }
}
