//! The device wire protocol: the JSON text frames an ankle tag and the server exchange over
//! `GET /v1/device/ws` (see `docs/device-protocol.md`, the contract device makers code against).
//!
//! This module is pure: no I/O, no clock (the caller passes `now`), no tungstenite. The
//! connection layer hands it the text of one frame and gets back typed [`Report`]s and
//! [`Rejection`]s; it turns acknowledgements and rejections into frames with
//! [`Outbound::to_json`].
//!
//! Invariants:
//! - [`decode`] never panics and never fails as a whole: every input yields reports and/or
//!   rejections, and a batch item is judged on its own (good items pass, each bad one gets its
//!   own rejection).
//! - A [`Report`] is valid all through (parse, don't validate): `seq` fits a PostgreSQL bigint,
//!   `ts` is UTC within the allowed skew and age, coordinates are finite WGS-84 in range, every
//!   optional field is in range and defaults are applied.
//! - A rejection carries the report's `seq` whenever it could be read as an unsigned integer,
//!   even if other fields (or the seq's own range) are bad; otherwise `None` (`null` on the wire).
//! - The common valid frame takes the fast path ([`decode`]'s typed, borrowing parse) and
//!   allocates nothing but the output; only a frame the fast path cannot type falls back to a
//!   `serde_json::Value` pass that names the offending field.
//!
//! Layout: [`types`] (the typed output and error codes), `fast` (the borrowing parse), `slow`
//! (the `Value`-based diagnosis), `validate` (the one set of rules both paths share),
//! [`outbound`] (server frames).

use std::time::Duration as StdDuration;

mod fast;
pub mod outbound;
mod slow;
pub mod types;
mod validate;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_batch;
#[cfg(test)]
mod tests_errors;

pub use outbound::{parse_outbound, Outbound};
pub use types::{Decoded, ErrorCode, Position, Rejection, Report, Source, Strap};

/// Close code for a frame larger than [`MAX_FRAME_BYTES`] (sent after a `frame_too_large` error).
pub const CLOSE_OVERSIZED: u16 = 1009;
/// Close code for a policy breach: token revoked, flooding, persistent garbage.
pub const CLOSE_POLICY: u16 = 1008;
/// Close code when the server shuts down ("going away").
pub const CLOSE_SHUTDOWN: u16 = 1001;
/// Close code for an old connection replaced by the same device reconnecting.
pub const CLOSE_REPLACED: u16 = 4000;
/// Close reason sent with [`CLOSE_REPLACED`].
pub const REASON_REPLACED: &str = "replaced";

/// Largest text frame the server reads (256 KiB), as documented to device makers.
pub const MAX_FRAME_BYTES: usize = 256 * 1024;
/// The server pings a connection that has been idle this long.
pub const PING_INTERVAL: StdDuration = StdDuration::from_secs(30);
/// A connection from which nothing (not even a pong) arrived for this long is dropped.
pub const IDLE_TIMEOUT: StdDuration = StdDuration::from_secs(90);
/// Flooding: more than this many frames per second ...
pub const FLOOD_FRAMES_PER_SEC: u32 = 100;
/// ... sustained over this window closes the connection with [`CLOSE_POLICY`].
pub const FLOOD_WINDOW: StdDuration = StdDuration::from_secs(10);

/// Bounds applied while decoding. The defaults are the documented protocol limits.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Most items in one `batch` frame; a larger batch is rejected whole (`batch_too_large`).
    pub max_batch: usize,
    /// How far after `now` a report's `ts` may lie (device clock drift).
    pub max_future_skew: chrono::Duration,
    /// How far before `now` a report's `ts` may lie (buffered uploads).
    pub max_age: chrono::Duration,
    /// Accuracy in metres assumed for a fix that carries no `acc`.
    pub default_acc_m: f32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_batch: 1000,
            max_future_skew: chrono::Duration::minutes(5),
            max_age: chrono::Duration::days(30),
            default_acc_m: 50.0,
        }
    }
}

/// Decodes one text frame from a device.
///
/// Never panics; every input yields reports and/or rejections. Reports come out in frame order
/// (a batch is oldest first), and so do rejections. `now` is the server's time of receipt.
pub fn decode(text: &str, now: chrono::DateTime<chrono::Utc>, limits: &Limits) -> Decoded {
    match fast::parse_frame(text) {
        Some(frame) => fast::decode_frame(frame, now, limits),
        None => slow::decode(text, now, limits),
    }
}
