//! Server → device frames: `ack` and `error`, rendered by hand (no intermediate tree) and
//! parsed back by [`parse_outbound`] for clients, the simulator and tests.
//!
//! Invariant: `parse_outbound(&o.to_json()) == Some(o)` for every [`Outbound`] `o`; the
//! rendering is compact JSON with keys in the documented order.

use std::fmt::Write as _;

use serde::Deserialize;

use super::types::{ErrorCode, Rejection};

/// A frame the server sends to a device.
#[derive(Debug, Clone, PartialEq)]
pub enum Outbound {
    /// These seqs are committed; the device may forget them.
    Ack { seqs: Vec<u64> },
    /// A report (or frame) rejected for good; the device must not resend it.
    Error(Rejection),
}

impl Outbound {
    /// `{"type":"ack","seqs":[17,18]}` or
    /// `{"type":"error","seq":19,"code":"invalid_fix","message":"lat 91.2 out of range"}`
    /// (`"seq":null` when the seq could not be read).
    pub fn to_json(&self) -> String {
        match self {
            Outbound::Ack { seqs } => {
                let mut out = String::with_capacity(24 + seqs.len() * 8);
                out.push_str(r#"{"type":"ack","seqs":["#);
                for (i, seq) in seqs.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    // Writing to a String cannot fail.
                    let _ = write!(out, "{seq}");
                }
                out.push_str("]}");
                out
            }
            Outbound::Error(r) => {
                let mut out = String::with_capacity(64 + r.message.len());
                out.push_str(r#"{"type":"error","seq":"#);
                match r.seq {
                    Some(seq) => {
                        let _ = write!(out, "{seq}");
                    }
                    None => out.push_str("null"),
                }
                out.push_str(r#","code":""#);
                out.push_str(r.code.as_str());
                out.push_str(r#"","message":"#);
                push_json_str(&mut out, &r.message);
                out.push('}');
                out
            }
        }
    }
}

/// Parses a server frame; `None` for anything that is not a well-formed `ack` or `error`
/// with a documented code.
pub fn parse_outbound(text: &str) -> Option<Outbound> {
    #[derive(Deserialize)]
    struct Raw {
        #[serde(rename = "type")]
        ty: String,
        seqs: Option<Vec<u64>>,
        seq: Option<u64>,
        code: Option<String>,
        message: Option<String>,
    }
    let raw: Raw = serde_json::from_str(text).ok()?;
    match raw.ty.as_str() {
        "ack" => Some(Outbound::Ack { seqs: raw.seqs? }),
        "error" => Some(Outbound::Error(Rejection {
            seq: raw.seq,
            code: ErrorCode::from_wire(raw.code.as_deref()?)?,
            message: raw.message?,
        })),
        _ => None,
    }
}

/// Appends `s` as a JSON string literal (quotes included).
pub(crate) fn push_json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}
