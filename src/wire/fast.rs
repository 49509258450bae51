//! The fast path: one typed, borrowing parse of a frame straight from the text.
//!
//! A hand-written map visitor reads only the known keys into `Option`s of borrowed `&str`,
//! `u64` and `f64`, skips every other key without building it, and accepts a JSON object only
//! (a derived struct would also take an array). A valid fix frame thus allocates nothing but
//! the output `Vec` and its `Report`. The parse fails, and [`super::slow`] takes over, on
//! anything it cannot type: invalid JSON, a non-object, a wrong JSON type, a string with
//! escapes (which cannot be borrowed). Range rules are not checked here: a typed frame goes
//! through the same [`validate`] as a diagnosed one.
//!
//! Invariant: `items` is read only at the top level (`TOP = true`); inside a batch it is
//! skipped, so nesting costs nothing and a nested batch is judged by its `type` alone.

use std::fmt;
use std::marker::PhantomData;

use chrono::{DateTime, Utc};
use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};

use super::types::Decoded;
use super::validate::{batch_size_ok, push_item, validate, Fields, Slot};
use super::Limits;

/// The known keys of a report object, as typed by the fast path.
#[derive(Default)]
pub(crate) struct RawReport<'a, const TOP: bool> {
    ty: Option<&'a str>,
    seq: Option<u64>,
    ts: Option<&'a str>,
    lat: Option<f64>,
    lon: Option<f64>,
    acc: Option<f64>,
    src: Option<&'a str>,
    speed: Option<f64>,
    bat: Option<u64>,
    strap: Option<&'a str>,
    items: Option<Vec<RawReport<'a, false>>>,
}

impl<'a, const TOP: bool> RawReport<'a, TOP> {
    fn fields(&self) -> Fields<'a> {
        Fields {
            ty: Slot::from(self.ty),
            seq: Slot::from(self.seq),
            ts: Slot::from(self.ts),
            lat: Slot::from(self.lat),
            lon: Slot::from(self.lon),
            acc: Slot::from(self.acc),
            src: Slot::from(self.src),
            speed: Slot::from(self.speed),
            bat: Slot::from(self.bat),
            strap: Slot::from(self.strap),
        }
    }
}

/// Types a whole frame, or `None` when the slow path must diagnose it.
pub(crate) fn parse_frame(text: &str) -> Option<RawReport<'_, true>> {
    serde_json::from_str(text).ok()
}

/// Judges a typed frame: one report, or the items of a batch in order.
pub(crate) fn decode_frame(
    frame: RawReport<'_, true>,
    now: DateTime<Utc>,
    limits: &Limits,
) -> Decoded {
    if frame.ty != Some("batch") {
        let mut out = Decoded::default();
        push_item(&mut out, None, validate(&frame.fields(), now, limits));
        return out;
    }
    let Some(items) = frame.items else {
        return Decoded::rejected(None, super::ErrorCode::MissingField, "missing items".into());
    };
    if let Err(out) = batch_size_ok(items.len(), limits) {
        return out;
    }
    let mut out = Decoded {
        reports: Vec::with_capacity(items.len()),
        rejections: Vec::new(),
    };
    for (i, item) in items.iter().enumerate() {
        push_item(&mut out, Some(i), validate(&item.fields(), now, limits));
    }
    out
}

enum Key {
    Type,
    Seq,
    Ts,
    Lat,
    Lon,
    Acc,
    Src,
    Speed,
    Bat,
    Strap,
    Items,
    Other,
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_identifier(KeyVisitor)
    }
}

struct KeyVisitor;

impl Visitor<'_> for KeyVisitor {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a field name")
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Key, E> {
        Ok(match s {
            "type" => Key::Type,
            "seq" => Key::Seq,
            "ts" => Key::Ts,
            "lat" => Key::Lat,
            "lon" => Key::Lon,
            "acc" => Key::Acc,
            "src" => Key::Src,
            "speed" => Key::Speed,
            "bat" => Key::Bat,
            "strap" => Key::Strap,
            "items" => Key::Items,
            _ => Key::Other,
        })
    }
}

impl<'de: 'a, 'a, const TOP: bool> Deserialize<'de> for RawReport<'a, TOP> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(ReportVisitor::<'a, TOP>(PhantomData))
    }
}

struct ReportVisitor<'a, const TOP: bool>(PhantomData<&'a ()>);

impl<'de: 'a, 'a, const TOP: bool> Visitor<'de> for ReportVisitor<'a, TOP> {
    type Value = RawReport<'a, TOP>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut r = RawReport::<'a, TOP>::default();
        while let Some(key) = map.next_key::<Key>()? {
            match key {
                Key::Type => r.ty = map.next_value()?,
                Key::Seq => r.seq = map.next_value()?,
                Key::Ts => r.ts = map.next_value()?,
                Key::Lat => r.lat = map.next_value()?,
                Key::Lon => r.lon = map.next_value()?,
                Key::Acc => r.acc = map.next_value()?,
                Key::Src => r.src = map.next_value()?,
                Key::Speed => r.speed = map.next_value()?,
                Key::Bat => r.bat = map.next_value()?,
                Key::Strap => r.strap = map.next_value()?,
                Key::Items if TOP => r.items = map.next_value()?,
                Key::Items | Key::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(r)
    }
}
