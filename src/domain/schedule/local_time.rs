//! Mapping between real instants and wall-clock times in a time zone, with the schedule's
//! daylight-saving rule: a time in a spring-forward gap resolves to the end of the gap, an
//! ambiguous one to the earlier instant. Never panics, even at chrono's range limits.

use chrono::{DateTime, NaiveDateTime, Offset, TimeZone, Utc};
use chrono_tz::Tz;

/// The wall-clock time in `tz` at `instant`; `None` beyond chrono's range (no panic).
pub(super) fn wall_clock(instant: DateTime<Utc>, tz: Tz) -> Option<NaiveDateTime> {
    let utc = instant.naive_utc();
    utc.checked_add_offset(tz.offset_from_utc_datetime(&utc).fix())
}

/// The first real instant at which the wall clock in `tz` reads `local`: the earlier of two
/// in an overlap, the end of the gap in a gap (found by bisection to the second).
pub(super) fn resolve(local: NaiveDateTime, tz: Tz) -> Option<DateTime<Utc>> {
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
