//! Parsing one window of the wire form (see the parent module doc for the format). Untrusted
//! text is clipped before it goes into an error message.

use chrono::{NaiveTime, Weekday};
use serde_json::Value;

use super::{DaySet, ScheduleError, Window, DAY_NAMES};

/// At most 20 characters of untrusted text, for messages.
fn clip(s: &str) -> String {
    s.chars().take(20).collect()
}

/// Parses `HH:MM`; `24:00` only when `allow_24` (returned as 00:00 with the flag set).
fn parse_time(s: &str, allow_24: bool) -> Option<(NaiveTime, bool)> {
    let b = s.as_bytes();
    if b.len() != 5
        || b[2] != b':'
        || !b
            .iter()
            .enumerate()
            .all(|(i, c)| i == 2 || c.is_ascii_digit())
    {
        return None;
    }
    let num = |i: usize| u32::from(b[i] - b'0') * 10 + u32::from(b[i + 1] - b'0');
    let (h, m) = (num(0), num(3));
    if allow_24 && h == 24 && m == 0 {
        return Some((NaiveTime::MIN, true));
    }
    NaiveTime::from_hms_opt(h, m, 0).map(|t| (t, false))
}

pub(super) fn parse_window(i: usize, v: &Value) -> Result<Window, ScheduleError> {
    let invalid = |problem: String| ScheduleError::Invalid {
        window: Some(i),
        problem,
    };
    let obj = v
        .as_object()
        .ok_or_else(|| invalid("expected an object with days, start and end".into()))?;
    if let Some(k) = obj
        .keys()
        .find(|k| !["days", "start", "end"].contains(&k.as_str()))
    {
        return Err(invalid(format!("unknown member {:?}", clip(k))));
    }
    let days_v = obj.get("days").and_then(Value::as_array);
    let days_v = days_v.ok_or_else(|| invalid("\"days\" must be a list of day names".into()))?;
    let mut days = DaySet::default();
    for d in days_v {
        let name = d
            .as_str()
            .ok_or_else(|| invalid("\"days\" must hold strings".into()))?;
        let idx =
            DAY_NAMES
                .iter()
                .position(|n| *n == name)
                .ok_or_else(|| ScheduleError::UnknownDay {
                    window: i,
                    value: clip(name),
                })?;
        days.insert(Weekday::try_from(idx as u8).map_err(|_| invalid("bad day".into()))?);
    }
    if days.is_empty() {
        return Err(ScheduleError::EmptyWindow {
            window: i,
            reason: "no days listed".into(),
        });
    }
    let time = |field: &'static str| -> Result<(NaiveTime, bool), ScheduleError> {
        let s = obj
            .get(field)
            .and_then(Value::as_str)
            .ok_or_else(|| invalid(format!("{field:?} must be a string \"HH:MM\"")))?;
        parse_time(s, field == "end").ok_or_else(|| ScheduleError::InvalidTime {
            window: i,
            field,
            value: clip(s),
        })
    };
    let (start, _) = time("start")?;
    let (end, end_is_midnight) = time("end")?;
    if start == end && !end_is_midnight {
        return Err(ScheduleError::EmptyWindow {
            window: i,
            reason: format!("start equals end ({})", start.format("%H:%M")),
        });
    }
    Ok(Window {
        days,
        start,
        end,
        end_is_midnight,
    })
}
