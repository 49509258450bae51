//! Time in the plan: each device's tick schedule, the mapping of the run's start to a time of
//! day (the movement model's offset and geoward's `Etc/GMT∓N` zone), and weekly schedules.
//!
//! Invariants:
//! - ticks are whole milliseconds: `start` is truncated to the millisecond, the phase of device
//!   `i` is `floor(interval × i / devices)` and `interval` is validated to be whole milliseconds,
//!   so the ts a device prints (milliseconds) is exactly its tick or later;
//! - the movement offset puts `start` at exactly `local_start_s` (to the second) and lies in
//!   `(-10 h, +14 h]`; geoward's offset is that rounded up to a whole hour, so geoward's local
//!   time at `start` is in `[local_start, local_start + 1 h)`;
//! - nothing here panics: out-of-range times saturate.

use chrono::{
    DateTime, Datelike, Duration, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, Offset,
    Timelike, Utc, Weekday,
};
use serde_json::{json, Value};

use super::Settings;

/// Device `index`'s `k`-th tick: `start + floor(interval × index / devices) + k × interval`,
/// with `start` truncated to the millisecond (phases spread evenly over one interval).
pub fn tick_time(settings: &Settings, start: DateTime<Utc>, index: usize, k: u64) -> DateTime<Utc> {
    Ticks::of(settings, start, index).at(k)
}

/// Milliseconds since the epoch.
pub(crate) fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

pub(crate) fn from_ms(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or(if ms < 0 {
        DateTime::<Utc>::MIN_UTC
    } else {
        DateTime::<Utc>::MAX_UTC
    })
}

pub(crate) fn dur_ms(d: Duration) -> i64 {
    d.num_milliseconds()
}

pub(crate) fn floor_ms(t: DateTime<Utc>) -> DateTime<Utc> {
    from_ms(ms(t))
}

/// `t + ms` milliseconds, saturating.
pub(crate) fn add_ms(t: DateTime<Utc>, ms_: i64) -> DateTime<Utc> {
    from_ms(ms(t).saturating_add(ms_))
}

/// `t + s` seconds (fractional), rounded up to the millisecond.
pub(crate) fn add_secs_ceil(t: DateTime<Utc>, s: f64) -> DateTime<Utc> {
    add_ms(t, (s * 1000.0).ceil() as i64)
}

/// One device's tick schedule: `first + k × interval` for every `k` with a tick before `end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ticks {
    first_ms: i64,
    interval_ms: i64,
    end_ms: i64,
}

impl Ticks {
    pub fn of(settings: &Settings, start: DateTime<Utc>, index: usize) -> Ticks {
        let interval_ms = dur_ms(settings.interval).max(1);
        let devices = settings.devices.max(1) as i128;
        let phase = (i128::from(interval_ms) * (index as i128 % devices) / devices) as i64;
        let start_ms = ms(start);
        Ticks {
            first_ms: start_ms.saturating_add(phase),
            interval_ms,
            end_ms: start_ms.saturating_add(dur_ms(settings.duration)),
        }
    }

    pub fn interval_ms(&self) -> i64 {
        self.interval_ms
    }

    pub fn at_ms(&self, k: u64) -> i64 {
        let k = i64::try_from(k).unwrap_or(i64::MAX);
        self.first_ms
            .saturating_add(self.interval_ms.saturating_mul(k))
    }

    pub fn at(&self, k: u64) -> DateTime<Utc> {
        from_ms(self.at_ms(k))
    }

    /// Ticks before `end`.
    pub fn count(&self) -> u64 {
        if self.end_ms <= self.first_ms {
            0
        } else {
            ((self.end_ms - self.first_ms - 1) / self.interval_ms + 1) as u64
        }
    }

    /// The first tick at or after `t`, if it is before `end`.
    pub fn first_at_or_after(&self, t: DateTime<Utc>) -> Option<u64> {
        let d = ms(t).saturating_sub(self.first_ms);
        let k = if d <= 0 {
            0
        } else {
            (d - 1) / self.interval_ms + 1
        } as u64;
        (k < self.count()).then_some(k)
    }

    /// The first tick strictly after `t`, if it is before `end`.
    pub fn first_after(&self, t: DateTime<Utc>) -> Option<u64> {
        self.first_at_or_after(add_ms(t, 1))
    }

    /// `k` if that tick exists (is before `end`).
    pub fn exists(&self, k: u64) -> Option<u64> {
        (k < self.count()).then_some(k)
    }
}

/// The run's time of day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DayClock {
    /// The movement model's offset, seconds east of UTC.
    pub movement_offset_s: i32,
    /// geoward's whole-hour offset, hours east of UTC.
    pub geoward_offset_h: i32,
    /// `Etc/GMT∓N` for `geoward_offset_h`.
    pub timezone: String,
}

impl DayClock {
    pub fn new(local_start_s: u32, start: DateTime<Utc>) -> DayClock {
        let utc_s = i64::from(start.num_seconds_from_midnight());
        let mut off = (i64::from(local_start_s) - utc_s).rem_euclid(86_400);
        if off > 14 * 3600 {
            off -= 86_400;
        }
        let hours = off.div_euclid(3600) + i64::from(off.rem_euclid(3600) > 0);
        DayClock {
            movement_offset_s: off as i32,
            geoward_offset_h: hours as i32,
            timezone: etc_zone(hours as i32),
        }
    }

    pub fn movement_offset(&self) -> FixedOffset {
        FixedOffset::east_opt(self.movement_offset_s).unwrap_or_else(|| Utc.fix())
    }

    /// geoward's local time at `t`.
    pub fn local(&self, t: DateTime<Utc>) -> NaiveDateTime {
        local_at(self.geoward_offset_h, t)
    }
}

/// `Etc/GMT∓N` for a whole-hour offset east of UTC (POSIX signs: UTC+8 is `Etc/GMT-8`).
pub(crate) fn etc_zone(hours_east: i32) -> String {
    match hours_east {
        0 => "Etc/GMT".to_owned(),
        h if h > 0 => format!("Etc/GMT-{h}"),
        h => format!("Etc/GMT+{}", -h),
    }
}

/// Hours east of UTC of an `Etc/GMT∓N` zone (`Etc/GMT`, `Etc/UTC` are 0); `None` for anything
/// else.
pub(crate) fn etc_offset_h(zone: &str) -> Option<i32> {
    let rest = zone.strip_prefix("Etc/")?;
    if matches!(
        rest,
        "GMT" | "UTC" | "GMT0" | "GMT+0" | "GMT-0" | "UCT" | "Zulu" | "Universal"
    ) {
        return Some(0);
    }
    let n = rest.strip_prefix("GMT")?;
    let (sign, digits) = match n.as_bytes().first()? {
        b'+' => (-1, &n[1..]),
        b'-' => (1, &n[1..]),
        _ => return None,
    };
    let h: i32 = digits.parse().ok()?;
    let east = sign * h;
    (-12..=14).contains(&east).then_some(east)
}

pub(crate) fn local_at(offset_h: i32, t: DateTime<Utc>) -> NaiveDateTime {
    (t.naive_utc())
        .checked_add_signed(Duration::hours(i64::from(offset_h)))
        .unwrap_or(t.naive_utc())
}

fn utc_of_local(offset_h: i32, local: NaiveDateTime) -> DateTime<Utc> {
    let naive = local
        .checked_sub_signed(Duration::hours(i64::from(offset_h)))
        .unwrap_or(local);
    DateTime::from_naive_utc_and_offset(naive, Utc)
}

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

fn day_name(d: Weekday) -> &'static str {
    DAYS[d.num_days_from_monday() as usize]
}

/// The curfew every home zone carries: 22:00–06:00, every day.
pub(crate) fn curfew_schedule() -> Value {
    json!([{"days": DAYS, "start": "22:00", "end": "06:00"}])
}

/// One weekly window opening at `open` (a whole minute) in geoward's local time, on that local
/// weekday, lasting `len` (whole minutes, under a day); `end` before `start` crosses midnight.
pub(crate) fn window_schedule(offset_h: i32, open: DateTime<Utc>, len: Duration) -> Value {
    let a = local_at(offset_h, open);
    let b = local_at(offset_h, open + len);
    json!([{
        "days": [day_name(a.weekday())],
        "start": a.format("%H:%M").to_string(),
        "end": b.format("%H:%M").to_string(),
    }])
}

/// Real intervals `[from, to)`.
pub(crate) type Intervals = Vec<(DateTime<Utc>, DateTime<Utc>)>;

/// The real intervals `[open, close)` during which `schedule` (the wire form of
/// `docs/rules.md` §3, as this planner writes it: days, `HH:MM` start and end, crossing midnight
/// when end <= start) is open and overlaps `[from, to]`, in a fixed whole-hour zone. `None`
/// (always in force) is `[from, to]`. Errors for anything it cannot read.
pub(crate) fn schedule_intervals(
    schedule: Option<&Value>,
    offset_h: i32,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Intervals, String> {
    let windows = match schedule {
        None | Some(Value::Null) => return Ok(vec![(from, to)]),
        Some(Value::Array(w)) if w.is_empty() => return Ok(vec![(from, to)]),
        Some(Value::Array(w)) => w,
        Some(other) => return Err(format!("schedule is not a list: {other}")),
    };
    let mut out = Vec::new();
    let first = local_at(offset_h, from)
        .date()
        .pred_opt()
        .unwrap_or(NaiveDate::MIN);
    let last = local_at(offset_h, to).date();
    for w in windows {
        let days: Vec<Weekday> = w["days"]
            .as_array()
            .ok_or("schedule window without days")?
            .iter()
            .map(|d| {
                let name = d.as_str().unwrap_or("");
                DAYS.iter()
                    .position(|x| *x == name)
                    .and_then(|i| Weekday::try_from(i as u8).ok())
                    .ok_or_else(|| format!("unknown day {d}"))
            })
            .collect::<Result<_, _>>()?;
        let time = |f: &str| {
            w[f].as_str()
                .and_then(|s| NaiveTime::parse_from_str(s, "%H:%M").ok())
                .ok_or_else(|| format!("schedule {f} is not HH:MM: {}", w[f]))
        };
        let (start, end) = (time("start")?, time("end")?);
        let mut date = first;
        while date <= last {
            if days.contains(&date.weekday()) {
                let close_date = if end <= start {
                    date.succ_opt().unwrap_or(date)
                } else {
                    date
                };
                let open = utc_of_local(offset_h, date.and_time(start));
                let close = utc_of_local(offset_h, close_date.and_time(end));
                if open <= to && close > from {
                    out.push((open, close));
                }
            }
            match date.succ_opt() {
                Some(d) => date = d,
                None => break,
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The first whole UTC minute at or after `t` (a whole minute in every `Etc` zone too).
pub(crate) fn ceil_minute(t: DateTime<Utc>) -> DateTime<Utc> {
    let m = ms(t);
    from_ms(m.div_euclid(60_000) * 60_000 + if m.rem_euclid(60_000) > 0 { 60_000 } else { 0 })
}
