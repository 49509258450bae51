//! Weekly time windows in the supervisee's local time, deciding when a zone rule is in force.
//!
//! Wire form: `[{"days":["mon","tue"],"start":"22:00","end":"06:00"}]`; `null` or `[]` means
//! no schedule (always in force). Days are lowercase `mon`..`sun`; a repeated day is accepted
//! and stored once; unknown members are rejected (they are usually typos). Times are exactly
//! `HH:MM`, 24-hour; `end` may be `"24:00"`. A window is half-open, `[start, end)`. When
//! `end <= start` (and `end` is not `24:00`) the window crosses midnight: it starts on a listed
//! day and ends on the next. `start == end` is rejected; `00:00`–`24:00` is the whole day.
//!
//! Two evaluations:
//! - [`Schedule::is_active_at`] reads a wall-clock time, no time zone involved.
//! - [`Schedule::active_at`] and [`Schedule::last_opening_at_or_before`] map each window
//!   occurrence to a real interval `[open, close)` in UTC. A wall-clock time that does not exist
//!   (spring-forward gap) resolves to the first instant after the gap; an ambiguous one
//!   (fall-back overlap) resolves to the earlier instant. So on the New York fall-back night a
//!   `01:00`–`01:30` window is in force once, during daylight time, and not again at 01:15 EST;
//!   a window wholly inside a gap does not open that day.
//!
//! Everything is pure: time is an argument, and work is bounded (at most [`MAX_WINDOWS`]
//! windows, a fixed number of days examined per call).

use chrono::{
    DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeZone, Utc,
    Weekday,
};
use chrono_tz::Tz;
use serde_json::{json, Value};

/// Most windows one schedule may hold.
pub const MAX_WINDOWS: usize = 64;
const DAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
/// Days examined before the instant's local date when looking for an opening.
const LOOKBACK_DAYS: i64 = 9;

/// A set of weekdays.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct DaySet(u8);

impl DaySet {
    pub fn contains(self, day: Weekday) -> bool {
        self.0 & (1 << day.num_days_from_monday()) != 0
    }
    pub fn insert(&mut self, day: Weekday) {
        self.0 |= 1 << day.num_days_from_monday();
    }
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
    /// The days in the set, Monday first.
    pub fn iter(self) -> impl Iterator<Item = Weekday> {
        (0..7u8)
            .filter(move |i| self.0 & (1 << i) != 0)
            .filter_map(|i| Weekday::try_from(i).ok())
    }
}

/// One weekly window. `end_is_midnight` marks an `end` of `"24:00"` (then `end` is 00:00).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    pub days: DaySet,
    pub start: NaiveTime,
    pub end: NaiveTime,
    pub end_is_midnight: bool,
}

impl Window {
    /// True when the window ends on the day after the one it starts.
    pub fn crosses_midnight(&self) -> bool {
        !self.end_is_midnight && self.end <= self.start
    }

    fn contains_local(&self, local: NaiveDateTime) -> bool {
        let (day, t) = (local.weekday(), local.time());
        if self.end_is_midnight {
            self.days.contains(day) && t >= self.start
        } else if self.crosses_midnight() {
            (self.days.contains(day) && t >= self.start)
                || (self.days.contains(day.pred()) && t < self.end)
        } else {
            self.days.contains(day) && self.start <= t && t < self.end
        }
    }

    /// The real interval of the occurrence starting on local `date`, if it opens at all.
    fn occurrence(&self, date: NaiveDate, tz: Tz) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        if !self.days.contains(date.weekday()) {
            return None;
        }
        let end_date = if self.end_is_midnight || self.crosses_midnight() {
            date.succ_opt()?
        } else {
            date
        };
        let open = resolve(date.and_time(self.start), tz)?;
        let close = resolve(end_date.and_time(self.end), tz)?;
        (close > open).then_some((open, close))
    }
}

/// When a zone rule is in force. Empty means always.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Schedule {
    windows: Vec<Window>,
}

/// A rejected schedule; `code()` is stable API.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("invalid schedule{}: {problem}", at(*.window))]
    Invalid {
        window: Option<usize>,
        problem: String,
    },
    #[error(
        "window {window}: unknown day {value:?}: expected mon, tue, wed, thu, fri, sat or sun"
    )]
    UnknownDay { window: usize, value: String },
    #[error("window {window}: invalid {field} time {value:?}: expected HH:MM (24-hour{})",
        if *.field == "end" { ", or 24:00" } else { "" })]
    InvalidTime {
        window: usize,
        field: &'static str,
        value: String,
    },
    #[error("window {window}: empty window: {reason}")]
    EmptyWindow { window: usize, reason: String },
    #[error("too many windows: {count}, the maximum is {max}")]
    TooManyWindows { count: usize, max: usize },
}

fn at(window: Option<usize>) -> String {
    window
        .map(|w| format!(" at window {w}"))
        .unwrap_or_default()
}

impl ScheduleError {
    /// A stable snake_case code for API responses.
    pub fn code(&self) -> &'static str {
        match self {
            ScheduleError::Invalid { .. } => "invalid_schedule",
            ScheduleError::UnknownDay { .. } => "unknown_day",
            ScheduleError::InvalidTime { .. } => "invalid_time",
            ScheduleError::EmptyWindow { .. } => "empty_window",
            ScheduleError::TooManyWindows { .. } => "too_many_windows",
        }
    }
}

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

fn parse_window(i: usize, v: &Value) -> Result<Window, ScheduleError> {
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

/// The wall-clock time in `tz` at `instant`; `None` beyond chrono's range (no panic).
fn wall_clock(instant: DateTime<Utc>, tz: Tz) -> Option<NaiveDateTime> {
    let utc = instant.naive_utc();
    utc.checked_add_offset(tz.offset_from_utc_datetime(&utc).fix())
}

/// The first real instant at which the wall clock in `tz` reads `local`: the earlier of two
/// in an overlap, the end of the gap in a gap (found by bisection to the second).
fn resolve(local: NaiveDateTime, tz: Tz) -> Option<DateTime<Utc>> {
    if let Some(t) = tz.from_local_datetime(&local).earliest() {
        return Some(t.with_timezone(&Utc));
    }
    let reached = |secs: i64| {
        DateTime::from_timestamp(secs, 0)
            .and_then(|t| wall_clock(t, tz))
            .is_some_and(|t| t >= local)
    };
    // UTC offsets, historical ones included, stay within ±16 h.
    let guess = local.and_utc().timestamp();
    let (mut lo, mut hi) = (guess.checked_sub(16 * 3600)?, guess.checked_add(16 * 3600)?);
    if reached(lo) || !reached(hi) {
        return None;
    }
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if reached(mid) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    DateTime::from_timestamp(hi, 0)
}

impl Schedule {
    /// Parses the wire form; `null` gives the empty (always) schedule.
    pub fn parse(value: &Value) -> Result<Schedule, ScheduleError> {
        let items = match value {
            Value::Null => return Ok(Schedule::default()),
            Value::Array(items) => items,
            _ => {
                return Err(ScheduleError::Invalid {
                    window: None,
                    problem: "expected a list of windows or null".into(),
                })
            }
        };
        if items.len() > MAX_WINDOWS {
            return Err(ScheduleError::TooManyWindows {
                count: items.len(),
                max: MAX_WINDOWS,
            });
        }
        let windows = items
            .iter()
            .enumerate()
            .map(|(i, v)| parse_window(i, v))
            .collect::<Result<_, _>>()?;
        Ok(Schedule { windows })
    }

    /// The wire form (days Monday first); [`Schedule::parse`] of it gives an equal schedule.
    pub fn to_json(&self) -> Value {
        let windows = self.windows.iter().map(|w| {
            let days: Vec<&str> = w
                .days
                .iter()
                .map(|d| DAY_NAMES[d.num_days_from_monday() as usize])
                .collect();
            let end = if w.end_is_midnight {
                "24:00".to_string()
            } else {
                w.end.format("%H:%M").to_string()
            };
            json!({ "days": days, "start": w.start.format("%H:%M").to_string(), "end": end })
        });
        Value::Array(windows.collect())
    }

    /// True when there is no schedule: the rule is always in force.
    pub fn is_always(&self) -> bool {
        self.windows.is_empty()
    }

    pub fn windows(&self) -> &[Window] {
        &self.windows
    }

    /// Whether a window covers this wall-clock time (including one that started the day
    /// before and crosses midnight). No time zone, so no daylight-saving rules.
    pub fn is_active_at(&self, local: NaiveDateTime) -> bool {
        self.is_always() || self.windows.iter().any(|w| w.contains_local(local))
    }

    /// Whether a window is open at `instant` in `tz` (see the module doc on DST).
    pub fn active_at(&self, instant: DateTime<Utc>, tz: Tz) -> bool {
        self.is_always()
            || self
                .occurrences(instant, tz, 2)
                .iter()
                .any(|&(open, close, _)| open <= instant && instant < close)
    }

    /// When the schedule last went from closed to open, if it is open at `instant` (for
    /// curfew: "outside when the window opens"). Overlapping or touching windows count as
    /// one period: `22:00`–`24:00` plus next day's `00:00`–`06:00` opens once, at 22:00.
    /// `None` when closed at `instant`, when there is no schedule, or when the schedule has
    /// been open for more than about a week (so it has no opening to report).
    pub fn last_opening_at_or_before(
        &self,
        instant: DateTime<Utc>,
        tz: Tz,
    ) -> Option<DateTime<Utc>> {
        let mut occ = self.occurrences(instant, tz, LOOKBACK_DAYS);
        occ.sort_unstable();
        // Merge into periods; `h` marks a period that may reach back past the horizon.
        let mut period: Option<(DateTime<Utc>, DateTime<Utc>, bool)> = None;
        for (open, close, at_horizon) in occ {
            period = match period {
                Some((s, e, h)) if open <= e => Some((s, e.max(close), h || at_horizon)),
                Some((s, e, h)) if s <= instant && instant < e => return (!h).then_some(s),
                _ => Some((open, close, at_horizon)),
            };
        }
        period
            .filter(|&(s, e, h)| s <= instant && instant < e && !h)
            .map(|(s, _, _)| s)
    }

    /// Occurrences of every window starting on local dates from `back` days before the
    /// instant's local date to one day after, as `(open, close, on_the_first_date)`.
    fn occurrences(
        &self,
        instant: DateTime<Utc>,
        tz: Tz,
        back: i64,
    ) -> Vec<(DateTime<Utc>, DateTime<Utc>, bool)> {
        let mut out = Vec::new();
        let Some(today) = wall_clock(instant, tz).map(|t| t.date()) else {
            return out;
        };
        for offset in -back..=1 {
            let Some(date) = today.checked_add_signed(Duration::days(offset)) else {
                continue;
            };
            out.extend(
                self.windows
                    .iter()
                    .filter_map(|w| w.occurrence(date, tz))
                    .map(|(o, c)| (o, c, offset == -back)),
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;
    use chrono_tz::{America::New_York, Asia::Shanghai};

    fn sched(v: Value) -> Schedule {
        match Schedule::parse(&v) {
            Ok(s) => s,
            Err(e) => panic!("rejected {v}: {e}"),
        }
    }

    fn err(v: Value) -> ScheduleError {
        match Schedule::parse(&v) {
            Ok(s) => panic!("accepted {v}: {s:?}"),
            Err(e) => e,
        }
    }

    fn utc(s: &str) -> DateTime<Utc> {
        match DateTime::parse_from_rfc3339(s) {
            Ok(t) => t.with_timezone(&Utc),
            Err(e) => panic!("bad test instant {s}: {e}"),
        }
    }

    fn local(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(y, mo, d)
            .and_then(|d| d.and_hms_opt(h, mi, 0))
            .unwrap_or_else(|| panic!("bad test date"))
    }

    #[test]
    fn null_and_an_empty_list_mean_always_in_force() {
        for v in [Value::Null, json!([])] {
            let s = sched(v);
            assert!(s.is_always());
            assert!(s.active_at(utc("2026-01-05T00:00:00Z"), Shanghai));
            assert!(s.is_active_at(local(2026, 1, 5, 3, 0)));
            assert_eq!(
                s.last_opening_at_or_before(utc("2026-01-05T00:00:00Z"), Shanghai),
                None
            );
        }
    }

    #[test]
    fn a_schedule_round_trips_through_json_with_days_in_week_order() {
        let v = json!([
            {"days": ["sun", "mon", "mon"], "start": "22:00", "end": "06:00"},
            {"days": ["sat"], "start": "00:00", "end": "24:00"},
        ]);
        let s = sched(v);
        let out = s.to_json();
        assert_eq!(out[0]["days"], json!(["mon", "sun"]));
        assert_eq!(out[1]["end"], "24:00");
        assert_eq!(sched(out), s);
    }

    #[test]
    fn bad_windows_are_rejected_with_their_index_and_value() {
        let e = err(json!([{"days": ["mon"], "start": "08:00", "end": "09:00"},
                           {"days": ["mnday"], "start": "08:00", "end": "09:00"}]));
        assert_eq!(e.code(), "unknown_day");
        assert!(e.to_string().contains("window 1") && e.to_string().contains("mnday"));
        let e = err(json!([{"days": ["mon"], "start": "8:00", "end": "09:00"}]));
        assert_eq!(e.code(), "invalid_time");
        assert!(e.to_string().contains("\"8:00\""), "{e}");
        assert_eq!(
            err(json!([{"days": ["mon"], "start": "24:00", "end": "09:00"}])).code(),
            "invalid_time"
        );
        assert_eq!(
            err(json!([{"days": ["mon"], "start": "08:60", "end": "09:00"}])).code(),
            "invalid_time"
        );
        assert_eq!(
            err(json!([{"days": ["mon"], "start": "22:00", "end": "22:00"}])).code(),
            "empty_window"
        );
        assert_eq!(
            err(json!([{"days": [], "start": "08:00", "end": "09:00"}])).code(),
            "empty_window"
        );
        assert_eq!(
            err(json!([{"days": ["Mon"], "start": "08:00", "end": "09:00"}])).code(),
            "unknown_day"
        );
        assert_eq!(
            err(json!([{"days": ["mon"], "start": "08:00", "end": "09:00", "x": 1}])).code(),
            "invalid_schedule"
        );
        assert_eq!(
            err(json!([{"days": "mon", "start": "08:00", "end": "09:00"}])).code(),
            "invalid_schedule"
        );
        assert_eq!(err(json!({"days": ["mon"]})).code(), "invalid_schedule");
        assert_eq!(
            err(json!([{"days": ["mon"], "start": 800, "end": "09:00"}])).code(),
            "invalid_schedule"
        );
        let many: Vec<Value> = (0..=MAX_WINDOWS)
            .map(|_| json!({"days": ["mon"], "start": "08:00", "end": "09:00"}))
            .collect();
        assert_eq!(err(Value::Array(many)).code(), "too_many_windows");
    }

    #[test]
    fn a_window_crossing_midnight_covers_the_next_morning_by_wall_clock() {
        // 2026-01-05 is a Monday.
        let s = sched(json!([{"days": ["mon"], "start": "22:00", "end": "06:00"}]));
        assert!(!s.is_active_at(local(2026, 1, 5, 21, 59)));
        assert!(s.is_active_at(local(2026, 1, 5, 22, 0)));
        assert!(s.is_active_at(local(2026, 1, 6, 5, 59)));
        assert!(!s.is_active_at(local(2026, 1, 6, 6, 0)));
        assert!(!s.is_active_at(local(2026, 1, 6, 23, 0)));
        assert!(!s.is_active_at(local(2026, 1, 5, 3, 0)));
    }

    #[test]
    fn a_shanghai_curfew_from_22_to_06_opens_at_22_local() {
        let s = sched(json!([{"days": ["mon"], "start": "22:00", "end": "06:00"}]));
        assert!(!s.active_at(utc("2026-01-05T13:59:00Z"), Shanghai));
        assert!(s.active_at(utc("2026-01-05T14:00:00Z"), Shanghai));
        assert!(s.active_at(utc("2026-01-05T21:59:00Z"), Shanghai));
        assert!(!s.active_at(utc("2026-01-05T22:00:00Z"), Shanghai));
        assert!(!s.active_at(utc("2026-01-06T14:00:00Z"), Shanghai));
        assert_eq!(
            s.last_opening_at_or_before(utc("2026-01-05T19:00:00Z"), Shanghai),
            Some(utc("2026-01-05T14:00:00Z"))
        );
        assert_eq!(
            s.last_opening_at_or_before(utc("2026-01-05T23:00:00Z"), Shanghai),
            None
        );
    }

    #[test]
    fn touching_windows_open_once_at_the_first() {
        let s = sched(json!([
            {"days": ["mon"], "start": "22:00", "end": "24:00"},
            {"days": ["tue"], "start": "00:00", "end": "06:00"},
        ]));
        assert_eq!(
            s.last_opening_at_or_before(utc("2026-01-05T19:00:00Z"), Shanghai),
            Some(utc("2026-01-05T14:00:00Z"))
        );
    }

    #[test]
    fn a_schedule_open_all_week_reports_no_opening() {
        let all = json!(["mon", "tue", "wed", "thu", "fri", "sat", "sun"]);
        let s = sched(json!([{"days": all, "start": "00:00", "end": "24:00"}]));
        assert!(s.active_at(utc("2026-03-08T07:30:00Z"), New_York));
        assert_eq!(
            s.last_opening_at_or_before(utc("2026-03-08T07:30:00Z"), New_York),
            None
        );
    }

    #[test]
    fn a_start_in_the_spring_forward_gap_opens_when_the_gap_ends() {
        // New York, 2026-03-08: 02:00 EST jumps to 03:00 EDT (07:00 UTC).
        let s = sched(json!([{"days": ["sun"], "start": "02:30", "end": "04:00"}]));
        assert!(!s.active_at(utc("2026-03-08T06:59:59Z"), New_York));
        assert!(s.active_at(utc("2026-03-08T07:00:00Z"), New_York));
        assert!(!s.active_at(utc("2026-03-08T08:00:00Z"), New_York));
        assert_eq!(
            s.last_opening_at_or_before(utc("2026-03-08T07:30:00Z"), New_York),
            Some(utc("2026-03-08T07:00:00Z"))
        );
    }

    #[test]
    fn an_overnight_window_across_spring_forward_lasts_seven_real_hours() {
        // Sat 22:00 EST (03:00 UTC) to Sun 06:00 EDT (10:00 UTC).
        let s = sched(json!([{"days": ["sat"], "start": "22:00", "end": "06:00"}]));
        assert!(!s.active_at(utc("2026-03-08T02:59:00Z"), New_York));
        assert!(s.active_at(utc("2026-03-08T09:59:00Z"), New_York));
        assert!(!s.active_at(utc("2026-03-08T10:00:00Z"), New_York));
        assert_eq!(
            s.last_opening_at_or_before(utc("2026-03-08T09:59:00Z"), New_York),
            Some(utc("2026-03-08T03:00:00Z"))
        );
    }

    #[test]
    fn an_ambiguous_fall_back_start_uses_the_earlier_instant() {
        // New York, 2026-11-01: 02:00 EDT falls back to 01:00 EST (06:00 UTC).
        let s = sched(json!([{"days": ["sun"], "start": "01:30", "end": "03:00"}]));
        assert!(!s.active_at(utc("2026-11-01T05:29:00Z"), New_York));
        assert!(s.active_at(utc("2026-11-01T05:30:00Z"), New_York));
        assert!(s.active_at(utc("2026-11-01T06:45:00Z"), New_York));
        assert!(!s.active_at(utc("2026-11-01T08:00:00Z"), New_York));
        assert_eq!(
            s.last_opening_at_or_before(utc("2026-11-01T06:45:00Z"), New_York),
            Some(utc("2026-11-01T05:30:00Z"))
        );
    }

    #[test]
    fn a_window_inside_the_repeated_hour_is_in_force_only_once() {
        let s = sched(json!([{"days": ["sun"], "start": "01:00", "end": "01:30"}]));
        assert!(s.active_at(utc("2026-11-01T05:15:00Z"), New_York)); // 01:15 EDT
        assert!(!s.active_at(utc("2026-11-01T06:15:00Z"), New_York)); // 01:15 EST
                                                                      // The wall-clock view, having no zone, sees 01:15 as inside.
        assert!(s.is_active_at(local(2026, 11, 1, 1, 15)));
    }

    #[test]
    fn extreme_instants_do_not_panic() {
        let s = sched(json!([{"days": ["mon", "sun"], "start": "22:00", "end": "06:00"}]));
        for t in [DateTime::<Utc>::MIN_UTC, DateTime::<Utc>::MAX_UTC] {
            let _ = s.active_at(t, New_York);
            let _ = s.last_opening_at_or_before(t, Shanghai);
        }
    }
}
