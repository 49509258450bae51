//! A zone ready for checking (shape, kind, schedule) and the half-open spans of time, in
//! milliseconds, during which a zone is in force.

use serde_json::Value;

use crate::plan::zones::Shape;
use crate::plan::ZoneSpec;

/// A zone ready for checking.
#[derive(Debug, Clone)]
pub(super) struct Zone {
    pub(super) shape: Shape,
    pub(super) exclusion: bool,
    pub(super) schedule: Option<Value>,
}

impl Zone {
    pub(super) fn of(spec: &ZoneSpec) -> Result<Zone, String> {
        let shape = Shape::from_geometry(&spec.geometry)
            .ok_or_else(|| format!("zone {:?}: unreadable geometry", spec.zone))?;
        let exclusion = match spec.kind.as_str() {
            "exclusion" => true,
            "inclusion" => false,
            k => return Err(format!("zone {:?}: kind {k:?}", spec.zone)),
        };
        Ok(Zone {
            shape,
            exclusion,
            schedule: spec.schedule.clone(),
        })
    }
}

/// Half-open intervals, in milliseconds.
pub(super) type Spans = Vec<(i64, i64)>;

pub(super) fn contains(spans: &Spans, t: i64) -> bool {
    spans.iter().any(|(a, b)| *a <= t && t < *b)
}

pub(super) fn minus(spans: &Spans, cut: (i64, i64)) -> Spans {
    let mut out = Vec::new();
    for &(a, b) in spans {
        if cut.1 <= a || b <= cut.0 {
            out.push((a, b));
            continue;
        }
        if a < cut.0 {
            out.push((a, cut.0));
        }
        if cut.1 < b {
            out.push((cut.1, b));
        }
    }
    out
}
