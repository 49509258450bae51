//! The rules of a single report, shared by the fast and the slow parse so both judge alike.
//!
//! Both parses reduce a report object to [`Fields`]: each field absent, of the right JSON type,
//! or of the wrong type (kept as a short JSON rendering for the message). [`validate`] then
//! checks them in one fixed order (type, seq, ts, lat, lon, acc, src, speed, bat, strap) and
//! returns the first failure, so a report gets the same error whichever path read it.
//! Fields that do not apply to the report's type (a status's `lat`) are ignored like unknown
//! ones. Every value quoted back in a message is cut to a few dozen bytes.

use std::fmt::{self, Write as _};

use chrono::{DateTime, Utc};

use super::types::{Decoded, ErrorCode, Position, Rejection, Report, Source, Strap};
use super::Limits;

/// Longest rendering of a device-supplied value quoted back in a message, in bytes.
const MAX_QUOTE: usize = 48;

/// One field as read from the frame. `null` counts as absent.
pub(crate) enum Slot<T> {
    Absent,
    Val(T),
    /// Present but of the wrong JSON type; holds a short rendering of the value.
    Wrong(String),
}

impl<T> From<Option<T>> for Slot<T> {
    fn from(o: Option<T>) -> Self {
        o.map_or(Slot::Absent, Slot::Val)
    }
}

/// The fields of one report object (a frame, or an item of a batch).
pub(crate) struct Fields<'a> {
    pub ty: Slot<&'a str>,
    pub seq: Slot<u64>,
    pub ts: Slot<&'a str>,
    pub lat: Slot<f64>,
    pub lon: Slot<f64>,
    pub acc: Slot<f64>,
    pub src: Slot<&'a str>,
    pub speed: Slot<f64>,
    pub bat: Slot<u64>,
    pub strap: Slot<&'a str>,
}

/// Checks one report; the rejection carries the seq when it could be read.
pub(crate) fn validate(
    f: &Fields<'_>,
    now: DateTime<Utc>,
    limits: &Limits,
) -> Result<Report, Rejection> {
    let seq = match f.seq {
        Slot::Val(s) => Some(s),
        _ => None,
    };
    check(f, now, limits).map_err(|(code, message)| Rejection { seq, code, message })
}

/// Rejects a batch as a whole when it is empty or larger than [`Limits::max_batch`].
pub(crate) fn batch_size_ok(len: usize, limits: &Limits) -> Result<(), Decoded> {
    if len == 0 {
        return Err(Decoded::rejected(
            None,
            ErrorCode::EmptyBatch,
            "batch has no items".into(),
        ));
    }
    if len > limits.max_batch {
        let m = format!(
            "batch of {len} items exceeds the limit of {}; resend them in smaller batches",
            limits.max_batch
        );
        return Err(Decoded::rejected(None, ErrorCode::BatchTooLarge, m));
    }
    Ok(())
}

/// Records one verdict. A rejected batch item whose seq could not be read is named by its
/// index (`items[3]: ...`), the only way the device can tell which one it was.
pub(crate) fn push_item(
    out: &mut Decoded,
    index: Option<usize>,
    verdict: Result<Report, Rejection>,
) {
    match verdict {
        Ok(report) => out.reports.push(report),
        Err(mut rejection) => {
            if let (Some(i), None) = (index, rejection.seq) {
                rejection.message = format!("items[{i}]: {}", rejection.message);
            }
            out.rejections.push(rejection);
        }
    }
}

type Failure = (ErrorCode, String);

fn check(f: &Fields<'_>, now: DateTime<Utc>, limits: &Limits) -> Result<Report, Failure> {
    use ErrorCode::*;
    let is_fix = match &f.ty {
        Slot::Val("fix") => true,
        Slot::Val("status") => false,
        Slot::Val("batch") => {
            return Err((UnknownType, "a batch cannot be nested in a batch".into()))
        }
        Slot::Val(other) => {
            let m = format!("type {} is not one of fix, status, batch", quote(other));
            return Err((UnknownType, m));
        }
        Slot::Wrong(r) => return Err((UnknownType, format!("type {r} is not a string"))),
        Slot::Absent => return Err((UnknownType, "missing type".into())),
    };

    let seq = match &f.seq {
        Slot::Val(s) if i64::try_from(*s).is_ok() => *s,
        Slot::Val(s) => return Err((InvalidSeq, format!("seq {s} exceeds {}", i64::MAX))),
        Slot::Wrong(r) => {
            return Err((
                InvalidSeq,
                format!("seq {r} is not an integer in 0..={}", i64::MAX),
            ))
        }
        Slot::Absent => return Err((MissingField, "missing seq".into())),
    };

    let ts = match &f.ts {
        Slot::Val(s) => check_ts(s, now, limits).map_err(|m| (InvalidTs, m))?,
        Slot::Wrong(r) => return Err((InvalidTs, format!("ts {r} is not a string"))),
        Slot::Absent => return Err((MissingField, "missing ts".into())),
    };

    let position = if is_fix {
        let lat = coordinate("lat", &f.lat, 90.0)?;
        let lon = coordinate("lon", &f.lon, 180.0)?;
        let acc_m = match number("acc", &f.acc)? {
            None => limits.default_acc_m,
            Some(a) if a > 0.0 && a <= 100_000.0 && (a as f32) > 0.0 => a as f32,
            Some(a) => return Err((InvalidField, format!("acc {} out of range", num(a)))),
        };
        let src = match &f.src {
            Slot::Absent => Source::Gps,
            Slot::Val(s) => Source::from_wire(s).ok_or_else(|| bad_src(&quote(s)))?,
            Slot::Wrong(r) => return Err(bad_src(r)),
        };
        let speed_mps = match number("speed", &f.speed)? {
            None => None,
            Some(v) if (0.0..=1000.0).contains(&v) => Some(v as f32),
            Some(v) => return Err((InvalidField, format!("speed {} out of range", num(v)))),
        };
        Some(Position {
            lat,
            lon,
            acc_m,
            src,
            speed_mps,
        })
    } else {
        None
    };

    let bat = match &f.bat {
        Slot::Absent => None,
        Slot::Val(b) => match u8::try_from(*b) {
            Ok(b) if b <= 100 => Some(b),
            _ => return Err((InvalidField, format!("bat {b} out of range"))),
        },
        Slot::Wrong(r) => return Err((InvalidField, format!("bat {r} is not an integer 0..=100"))),
    };
    let strap = match &f.strap {
        Slot::Absent => None,
        Slot::Val(s) => Some(Strap::from_wire(s).ok_or_else(|| bad_strap(&quote(s)))?),
        Slot::Wrong(r) => return Err(bad_strap(r)),
    };

    Ok(Report {
        seq,
        ts,
        position,
        bat,
        strap,
    })
}

fn bad_src(rendered: &str) -> Failure {
    let m = format!("src {rendered} is not one of gps, wifi, cell");
    (ErrorCode::InvalidField, m)
}

fn bad_strap(rendered: &str) -> Failure {
    let m = format!("strap {rendered} is not one of closed, open");
    (ErrorCode::InvalidField, m)
}

/// A required coordinate: finite and within ±`bound` degrees, else `invalid_fix`.
fn coordinate(name: &str, slot: &Slot<f64>, bound: f64) -> Result<f64, Failure> {
    match slot {
        Slot::Val(v) if v.is_finite() && (-bound..=bound).contains(v) => Ok(*v),
        Slot::Val(v) => Err((
            ErrorCode::InvalidFix,
            format!("{name} {} out of range", num(*v)),
        )),
        Slot::Wrong(r) => Err((ErrorCode::InvalidFix, format!("{name} {r} is not a number"))),
        Slot::Absent => Err((ErrorCode::MissingField, format!("missing {name}"))),
    }
}

/// An optional number; a wrong type is `invalid_field`. Non-finite values are kept for the
/// caller's range check to reject.
fn number(name: &str, slot: &Slot<f64>) -> Result<Option<f64>, Failure> {
    match slot {
        Slot::Absent => Ok(None),
        Slot::Val(v) if v.is_finite() => Ok(Some(*v)),
        Slot::Val(v) => Err((
            ErrorCode::InvalidField,
            format!("{name} {} out of range", num(*v)),
        )),
        Slot::Wrong(r) => Err((
            ErrorCode::InvalidField,
            format!("{name} {r} is not a number"),
        )),
    }
}

/// Parses an RFC 3339 timestamp and checks it against `now`; the error is the message.
fn check_ts(s: &str, now: DateTime<Utc>, limits: &Limits) -> Result<DateTime<Utc>, String> {
    let ts = match DateTime::parse_from_rfc3339(s) {
        Ok(t) => t.with_timezone(&Utc),
        Err(_) => return Err(format!("ts {} is not RFC 3339 with an offset", quote(s))),
    };
    if ts.signed_duration_since(now) > limits.max_future_skew {
        let secs = limits.max_future_skew.num_seconds();
        return Err(format!(
            "ts {} is more than {secs} s ahead of server time",
            quote(s)
        ));
    }
    if now.signed_duration_since(ts) > limits.max_age {
        let days = limits.max_age.num_days();
        return Err(format!("ts {} is older than {days} days", quote(s)));
    }
    Ok(ts)
}

/// A number as quoted in a message: plain for everyday magnitudes, scientific otherwise.
pub(crate) fn num(v: f64) -> String {
    let a = v.abs();
    if a != 0.0 && !(1e-6..1e15).contains(&a) {
        format!("{v:e}")
    } else {
        format!("{v}")
    }
}

/// A device string quoted as JSON, cut to a few dozen bytes.
pub(crate) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len().min(MAX_QUOTE) + 2);
    super::outbound::push_json_str(&mut out, s);
    cut(out)
}

/// Renders any `Display` (a JSON value) cut to a few dozen bytes, without rendering the rest.
pub(crate) fn render(v: &impl fmt::Display) -> String {
    let mut w = Bounded(String::new());
    let _ = write!(w, "{v}");
    cut(w.0)
}

fn cut(mut s: String) -> String {
    if s.len() > MAX_QUOTE {
        let mut end = MAX_QUOTE;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push('…');
    }
    s
}

/// A writer that stops (with an error) once it holds more than [`MAX_QUOTE`] bytes.
struct Bounded(String);

impl fmt::Write for Bounded {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = MAX_QUOTE + 4 - self.0.len().min(MAX_QUOTE + 4);
        if s.len() <= room {
            self.0.push_str(s);
            return Ok(());
        }
        let mut end = room;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        self.0.push_str(&s[..end]);
        Err(fmt::Error)
    }
}
