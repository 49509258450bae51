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
//!
//! Layout: `window` (days and one window), `local_time` (wall clock and the DST rule),
//! `parse` (one window of the wire form), `error` ([`ScheduleError`]); this file holds
//! [`Schedule`] itself.

mod error;
mod local_time;
mod parse;
#[cfg(test)]
mod tests;
mod window;

use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use chrono_tz::Tz;
use serde_json::{json, Value};

pub use error::ScheduleError;
pub use window::{DaySet, Window};

use local_time::wall_clock;
use parse::parse_window;

/// Most windows one schedule may hold.
pub const MAX_WINDOWS: usize = 64;
const DAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
/// Days examined before the instant's local date when looking for an opening.
const LOOKBACK_DAYS: i64 = 9;

/// When a zone rule is in force. Empty means always.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Schedule {
    windows: Vec<Window>,
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
