//! The planner's settings: the run's size and shape, and the server thresholds the
//! expectations depend on; their validation, defaults and wire form.
//!
//! Invariants: [`Settings::validate`] accepts only settings every part of the planner can use
//! without overflow or panic (durations bounded, interval in whole milliseconds, shares finite
//! in `[0, 1]`); durations are (fractional) seconds on the wire, the area an object.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::movement::Area;

use super::MAX_DURATION_S;

/// What the planner needs to know about the run and the server it runs against. Server
/// thresholds must match the server's configuration (`[alerts]`, `[supervision]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    pub seed: u64,
    pub devices: usize,
    /// Caseloads (officers); supervisees are dealt round-robin. At least 1.
    pub officers: usize,
    /// Shared school zones in the agency's layer.
    pub schools: usize,
    /// Time between a device's fixes (a whole number of milliseconds).
    #[serde(with = "secs")]
    pub interval: Duration,
    /// How long devices report (at most 12 h).
    #[serde(with = "secs")]
    pub duration: Duration,
    /// Share of devices given a scenario, in `[0, 1]`. Every scenario kind gets at least one
    /// device when `share > 0` and there are enough devices (see [`super::build`]).
    pub scenario_share: f64,
    /// Where supervisees live. Its `utc_offset` is not used: the plan derives the offset from
    /// the start time and [`Settings::local_start_s`].
    #[serde(default, with = "area_serde")]
    pub area: Area,
    /// Local time of day at the run's start (seconds after midnight) in the supervisees' day:
    /// every run, whatever the hour, sees the same part of their day (default 07:30, the morning
    /// commute).
    pub local_start_s: u32,
    /// Fixes needed to confirm a zone violation (`confirm_fixes` given to every zone; 0 is
    /// read as 1, as geoward does).
    pub confirm_fixes: u32,
    /// Allowed silence of ordinary supervisees (`lost_contact_after_s`).
    pub lost_contact_after_s: u32,
    /// Allowed silence given to the supervisee who goes silent (at least the server's minimum).
    pub silent_lost_contact_after_s: u32,
    /// Server: `alerts.lost_contact_grace`.
    #[serde(with = "secs")]
    pub lost_contact_grace: Duration,
    /// Server: `alerts.late_after`.
    #[serde(with = "secs")]
    pub late_after: Duration,
    /// Server: `alerts.no_location_after`.
    #[serde(with = "secs")]
    pub no_location_after: Duration,
    /// Server: `alerts.low_battery_pct`.
    pub low_battery_pct: u8,
    /// Sending lag tolerated in expectation windows (a loaded simulator sends late): the device
    /// loop builds (stamps, positions) and sends each report at most this long after its tick,
    /// and geoward receives it at most [`super::NETWORK_S`] after that.
    #[serde(with = "secs")]
    pub lag: Duration,
    /// Scenarios one after another through the run, in supervisee order, from its first
    /// seconds to near its end (a demo), instead of around its middle (see `pace`).
    #[serde(default)]
    pub spread_scenarios: bool,
}

impl Default for Settings {
    /// geoward's default thresholds, a 5-minute run of 1000 devices.
    fn default() -> Self {
        Settings {
            seed: 1,
            devices: 1000,
            officers: 4,
            schools: 40,
            interval: Duration::seconds(10),
            duration: Duration::seconds(300),
            scenario_share: 0.05,
            area: Area::default(),
            local_start_s: 7 * 3600 + 30 * 60,
            confirm_fixes: 2,
            lost_contact_after_s: 600,
            silent_lost_contact_after_s: 60,
            lost_contact_grace: Duration::seconds(60),
            late_after: Duration::seconds(120),
            no_location_after: Duration::seconds(600),
            low_battery_pct: 20,
            lag: Duration::seconds(5),
            spread_scenarios: false,
        }
    }
}

impl Settings {
    /// A one-minute run of 300 devices at one fix a second, a fifth of them with scenarios,
    /// against a server configured for CI (`lost_contact_grace` 2 s, `late_after` 10 s, a
    /// minimum `lost_contact_after_s` of 5 s).
    pub fn ci() -> Settings {
        Settings {
            devices: 300,
            interval: Duration::seconds(1),
            duration: Duration::seconds(60),
            scenario_share: 0.2,
            silent_lost_contact_after_s: 5,
            lost_contact_grace: Duration::seconds(2),
            late_after: Duration::seconds(10),
            lag: Duration::seconds(3),
            ..Settings::default()
        }
    }

    /// The settings' own consistency (see [`PlanError::InvalidSettings`]).
    pub fn validate(&self) -> Result<(), PlanError> {
        let bad = |m: String| Err(PlanError::InvalidSettings(m));
        let ms = |d: Duration| d.num_milliseconds();
        if self.devices == 0 || self.devices > 1_000_000 {
            return bad(format!("devices must be 1..=1000000, got {}", self.devices));
        }
        if self.officers == 0 {
            return bad("officers must be at least 1".into());
        }
        if self.schools > 10_000 {
            return bad(format!(
                "schools must be at most 10000, got {}",
                self.schools
            ));
        }
        if self.interval <= Duration::zero() {
            return bad(format!(
                "interval must be positive, got {} ms",
                ms(self.interval)
            ));
        }
        if self.interval < Duration::milliseconds(100) || self.interval > Duration::hours(1) {
            return bad("interval must be between 100 ms and 1 h".into());
        }
        if self.interval.subsec_nanos() % 1_000_000 != 0 {
            return bad("interval must be a whole number of milliseconds".into());
        }
        if self.duration <= Duration::zero() {
            return bad(format!(
                "duration must be positive, got {} ms",
                ms(self.duration)
            ));
        }
        if self.duration > Duration::seconds(MAX_DURATION_S) {
            return bad(format!(
                "duration must be at most 12 h (the curfew opens at 22:00 local), got {} s",
                self.duration.num_seconds()
            ));
        }
        if !(self.scenario_share.is_finite() && (0.0..=1.0).contains(&self.scenario_share)) {
            return bad(format!(
                "scenario_share must be a finite number in [0, 1], got {}",
                self.scenario_share
            ));
        }
        let a = &self.area;
        let finite = a.centre.0.is_finite() && a.centre.1.is_finite();
        if !(finite && a.centre.0.abs() <= 80.0 && a.centre.1.abs() <= 170.0) {
            return bad(format!(
                "area centre must be finite, |lat| <= 80, |lon| <= 170, got {:?}",
                a.centre
            ));
        }
        if !(a.home_radius_m.is_finite() && (0.0..=10_000.0).contains(&a.home_radius_m)) {
            return bad(format!(
                "area home_radius_m must be in [0, 10000], got {}",
                a.home_radius_m
            ));
        }
        if !(a.poor_fix_share.is_finite() && (0.0..=1.0).contains(&a.poor_fix_share)) {
            return bad(format!(
                "area poor_fix_share must be in [0, 1], got {}",
                a.poor_fix_share
            ));
        }
        if self.local_start_s >= 86_400 {
            return bad(format!(
                "local_start_s must be under 86400, got {}",
                self.local_start_s
            ));
        }
        if self.confirm_fixes > 100 {
            return bad(format!(
                "confirm_fixes must be at most 100, got {}",
                self.confirm_fixes
            ));
        }
        if self.lost_contact_after_s == 0 || self.silent_lost_contact_after_s == 0 {
            return bad(
                "lost_contact_after_s and silent_lost_contact_after_s must be positive".into(),
            );
        }
        for (name, d) in [
            ("lost_contact_grace", self.lost_contact_grace),
            ("late_after", self.late_after),
            ("lag", self.lag),
        ] {
            if d < Duration::zero() || d > Duration::days(1) {
                return bad(format!(
                    "{name} must be between 0 and 1 day, got {} ms",
                    ms(d)
                ));
            }
        }
        if self.no_location_after <= self.interval * 2 + self.lag
            || self.no_location_after > Duration::days(1)
        {
            return bad(format!(
                "no_location_after must exceed 2 intervals plus lag (and be at most 1 day), got {} ms",
                ms(self.no_location_after)
            ));
        }
        // Between two reports, and from the last report to the end of the watch, geoward hears
        // nothing for up to an interval plus lag plus a few seconds.
        let allowed =
            Duration::seconds(i64::from(self.lost_contact_after_s)) + self.lost_contact_grace;
        if allowed <= self.interval + self.lag + Duration::seconds(4) {
            return bad(format!(
                "lost_contact_after_s plus lost_contact_grace ({} s) must exceed interval plus lag \
                 plus 4 s, or every supervisee loses contact",
                allowed.num_seconds()
            ));
        }
        if self.low_battery_pct > 90 {
            return bad(format!(
                "low_battery_pct must be at most 90, got {}",
                self.low_battery_pct
            ));
        }
        Ok(())
    }

    /// `confirm_fixes` as geoward reads it (0 is 1).
    pub fn confirm(&self) -> u32 {
        self.confirm_fixes.max(1)
    }
}

/// Why no plan could be built.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PlanError {
    #[error("invalid settings: {0}")]
    InvalidSettings(String),
    #[error("supervisee {index} could not be placed: {reason}")]
    Unplaceable { index: usize, reason: String },
    #[error("the plan fails its own checks ({} problems), first: {}", .0.len(), .0.first().map_or("", String::as_str))]
    CheckFailed(Vec<String>),
}

/// A start the plan's arithmetic (a day around the run, a month of orders) cannot overflow.
pub(super) fn check_start(start: DateTime<Utc>) -> Result<(), PlanError> {
    let year = chrono::Datelike::year(&start);
    if (1971..=9000).contains(&year) {
        Ok(())
    } else {
        Err(PlanError::InvalidSettings(format!(
            "start must be between the years 1971 and 9000, got {start}"
        )))
    }
}

/// Serde for `chrono::Duration` as (fractional) seconds.
mod secs {
    use chrono::Duration;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.num_milliseconds() as f64 / 1000.0)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = f64::deserialize(d)?;
        if !(s.is_finite() && s.abs() < 1e12) {
            return Err(serde::de::Error::custom("duration out of range"));
        }
        Ok(Duration::milliseconds((s * 1000.0).round() as i64))
    }
}

/// Serde for the [`Area`]: `{"centre":[lat,lon],"home_radius_m","poor_fix_share","utc_offset_s"}`.
mod area_serde {
    use chrono::FixedOffset;
    use serde::{de::Error, Deserialize, Deserializer, Serialize, Serializer};

    use crate::movement::Area;

    #[derive(Serialize, Deserialize)]
    struct Wire {
        centre: (f64, f64),
        home_radius_m: f64,
        poor_fix_share: f64,
        utc_offset_s: i32,
    }

    pub fn serialize<S: Serializer>(a: &Area, s: S) -> Result<S::Ok, S::Error> {
        Wire {
            centre: a.centre,
            home_radius_m: a.home_radius_m,
            poor_fix_share: a.poor_fix_share,
            utc_offset_s: a.utc_offset.local_minus_utc(),
        }
        .serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Area, D::Error> {
        let w = Wire::deserialize(d)?;
        Ok(Area {
            centre: w.centre,
            home_radius_m: w.home_radius_m,
            poor_fix_share: w.poor_fix_share,
            utc_offset: FixedOffset::east_opt(w.utc_offset_s)
                .ok_or_else(|| D::Error::custom("UTC offset out of range"))?,
        })
    }
}
