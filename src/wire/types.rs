//! The typed output of the wire protocol: reports that passed every rule, rejections with a
//! documented error code, and the small enums a report carries.
//!
//! Invariants: every value of these types that [`super::decode`] returns is valid (see the
//! module doc of [`super`]); the `as_str` spellings are the wire spellings and never change,
//! because device makers match on them.

use chrono::{DateTime, Utc};
use serde::Serialize;

/// Where a fix came from; the accuracy differs by orders of magnitude between them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Gps,
    Wifi,
    Cell,
}

impl Source {
    /// The wire spelling: `gps`, `wifi` or `cell`.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Gps => "gps",
            Source::Wifi => "wifi",
            Source::Cell => "cell",
        }
    }

    pub(crate) fn from_wire(s: &str) -> Option<Self> {
        match s {
            "gps" => Some(Source::Gps),
            "wifi" => Some(Source::Wifi),
            "cell" => Some(Source::Cell),
            _ => None,
        }
    }
}

/// The state of the tag's strap; `Open` means opened or cut (a tamper alert).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Strap {
    Closed,
    Open,
}

impl Strap {
    /// The wire spelling: `closed` or `open`.
    pub fn as_str(self) -> &'static str {
        match self {
            Strap::Closed => "closed",
            Strap::Open => "open",
        }
    }

    pub(crate) fn from_wire(s: &str) -> Option<Self> {
        match s {
            "closed" => Some(Strap::Closed),
            "open" => Some(Strap::Open),
            _ => None,
        }
    }
}

/// A WGS-84 position with its accuracy radius.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Position {
    /// Degrees, in [-90, 90].
    pub lat: f64,
    /// Degrees, in [-180, 180].
    pub lon: f64,
    /// Accuracy radius in metres, in (0, 100000]; the configured default when the device sent none.
    pub acc_m: f32,
    pub src: Source,
    /// Ground speed in m/s, in [0, 1000].
    pub speed_mps: Option<f32>,
}

/// One valid report from a device: a fix (with a position) or a status (without).
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// Per-device increasing sequence number, at most `i64::MAX`.
    pub seq: u64,
    /// When the device took the report, normalised to UTC.
    pub ts: DateTime<Utc>,
    /// `None` for a `status` report.
    pub position: Option<Position>,
    /// Battery percentage, 0–100.
    pub bat: Option<u8>,
    pub strap: Option<Strap>,
}

/// A report (or frame) rejected for good: the device must not resend it.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    /// The report's seq when it could be read, else `None` (`null` on the wire).
    pub seq: Option<u64>,
    pub code: ErrorCode,
    /// A short human-readable cause naming the field and value, e.g. `lat 91.2 out of range`.
    pub message: String,
}

/// What one frame decoded to.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Decoded {
    pub reports: Vec<Report>,
    pub rejections: Vec<Rejection>,
}

impl Decoded {
    pub(crate) fn rejected(seq: Option<u64>, code: ErrorCode, message: String) -> Self {
        Decoded {
            reports: Vec::new(),
            rejections: vec![Rejection { seq, code, message }],
        }
    }
}

/// The documented error codes of an `error` frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// The frame is not JSON, not a JSON object (or a batch item is not an object), or not UTF-8.
    MalformedJson,
    /// `type` is missing or not `fix`/`status`/`batch`, or a batch is nested in a batch.
    UnknownType,
    /// A required field is missing (`seq`, `ts`, `lat`, `lon`, or a batch's `items`).
    MissingField,
    /// An optional field (`acc`, `src`, `bat`, `strap`, `speed`) or `items` is of the wrong type
    /// or out of range.
    InvalidField,
    /// `lat` or `lon` is not a number or out of range.
    InvalidFix,
    /// `ts` is not RFC 3339 with an offset, too far in the future, or too old.
    InvalidTs,
    /// `seq` is not an integer in 0..=i64::MAX.
    InvalidSeq,
    /// A batch has more items than allowed; the whole frame is rejected.
    BatchTooLarge,
    /// A batch has no items.
    EmptyBatch,
    /// The device sent a binary frame (connection layer).
    BinaryFrame,
    /// The device sent a frame larger than the limit (connection layer, before closing with 1009).
    FrameTooLarge,
}

impl ErrorCode {
    /// Every code, in documentation order.
    pub const ALL: [ErrorCode; 11] = [
        ErrorCode::MalformedJson,
        ErrorCode::UnknownType,
        ErrorCode::MissingField,
        ErrorCode::InvalidField,
        ErrorCode::InvalidFix,
        ErrorCode::InvalidTs,
        ErrorCode::InvalidSeq,
        ErrorCode::BatchTooLarge,
        ErrorCode::EmptyBatch,
        ErrorCode::BinaryFrame,
        ErrorCode::FrameTooLarge,
    ];

    /// The wire spelling, e.g. `invalid_fix`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::MalformedJson => "malformed_json",
            ErrorCode::UnknownType => "unknown_type",
            ErrorCode::MissingField => "missing_field",
            ErrorCode::InvalidField => "invalid_field",
            ErrorCode::InvalidFix => "invalid_fix",
            ErrorCode::InvalidTs => "invalid_ts",
            ErrorCode::InvalidSeq => "invalid_seq",
            ErrorCode::BatchTooLarge => "batch_too_large",
            ErrorCode::EmptyBatch => "empty_batch",
            ErrorCode::BinaryFrame => "binary_frame",
            ErrorCode::FrameTooLarge => "frame_too_large",
        }
    }

    /// The code with this wire spelling, if any.
    pub fn from_wire(s: &str) -> Option<Self> {
        ErrorCode::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
