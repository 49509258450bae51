//! The parts of a schedule: a set of weekdays and one weekly window, with the two ways of
//! reading a window (by wall clock, and as a real interval in a time zone).
//!
//! Invariants (upheld by the parser): a window lists at least one day, and `start != end`
//! unless `end_is_midnight`.

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, NaiveTime, Utc, Weekday};
use chrono_tz::Tz;

use super::local_time::resolve;

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

    pub(super) fn contains_local(&self, local: NaiveDateTime) -> bool {
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
    pub(super) fn occurrence(
        &self,
        date: NaiveDate,
        tz: Tz,
    ) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
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
