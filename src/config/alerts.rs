//! The `[alerts]` section: rule tunables, lost contact and outages, severities, escalation,
//! and the bounds of the evaluation stage and the officers' feed.

use std::time::Duration;

use serde::Deserialize;

use crate::eval::Settings;

#[derive(Debug, Clone, Deserialize)]
pub struct AlertsConfig {
    pub max_speed_kmh: f64,
    #[serde(with = "humantime_serde")]
    pub no_location_after: Duration,
    pub low_battery_pct: u8,
    pub battery_hysteresis_pct: u8,
    #[serde(with = "humantime_serde")]
    pub late_after: Duration,
    #[serde(with = "humantime_serde")]
    pub crossing_max_gap: Duration,
    #[serde(with = "humantime_serde")]
    pub curfew_tick_after: Duration,
    #[serde(with = "humantime_serde")]
    pub lost_contact_grace: Duration,
    #[serde(with = "humantime_serde")]
    pub outage_after: Duration,
    #[serde(with = "humantime_serde")]
    pub outage_grace: Duration,
    #[serde(with = "humantime_serde")]
    pub sweep_interval: Duration,
    #[serde(with = "humantime_serde")]
    pub seed_interval: Duration,
    #[serde(with = "humantime_serde")]
    pub escalation_interval: Duration,
    #[serde(with = "humantime_serde")]
    pub rules_refresh: Duration,
    pub evaluators: usize,
    pub queue_capacity: usize,
    pub feed_queue: usize,
    pub max_feed_connections: usize,
    /// How often an open officer feed checks that its session still stands.
    #[serde(with = "humantime_serde")]
    pub feed_session_check: Duration,
    #[serde(with = "humantime_serde")]
    pub ticket_ttl: Duration,
    pub severity: SeverityConfig,
    pub escalate_after: EscalateAfter,
}

/// The severity of each alert kind.
#[derive(Debug, Clone, Deserialize)]
pub struct SeverityConfig {
    pub exclusion_zone_entered: Severity,
    pub exclusion_zone_crossed: Severity,
    pub inclusion_zone_left: Severity,
    pub curfew_violation: Severity,
    pub lost_contact: Severity,
    pub strap_tamper: Severity,
    pub no_location: Severity,
    pub location_jump: Severity,
    pub low_battery: Severity,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Critical,
    Serious,
    Info,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::Serious => "serious",
            Severity::Info => "info",
        }
    }
}

/// How long an alert of each severity may stay unacknowledged before it escalates ("0s":
/// never).
#[derive(Debug, Clone, Deserialize)]
pub struct EscalateAfter {
    #[serde(with = "humantime_serde")]
    pub critical: Duration,
    #[serde(with = "humantime_serde")]
    pub serious: Duration,
    #[serde(with = "humantime_serde")]
    pub info: Duration,
}

impl AlertsConfig {
    /// The severity of an alert kind (`kind` as spelled in alerts).
    pub fn severity_of(&self, kind: &str) -> Severity {
        let s = &self.severity;
        match kind {
            "exclusion_zone_entered" => s.exclusion_zone_entered,
            "exclusion_zone_crossed" => s.exclusion_zone_crossed,
            "inclusion_zone_left" => s.inclusion_zone_left,
            "curfew_violation" => s.curfew_violation,
            "lost_contact" => s.lost_contact,
            "strap_tamper" => s.strap_tamper,
            "no_location" => s.no_location,
            "location_jump" => s.location_jump,
            "low_battery" => s.low_battery,
            _ => Severity::Serious,
        }
    }

    /// After how long an unacknowledged alert of `severity` escalates (None: never).
    pub fn escalation_of(&self, severity: Severity) -> Option<Duration> {
        let after = match severity {
            Severity::Critical => self.escalate_after.critical,
            Severity::Serious => self.escalate_after.serious,
            Severity::Info => self.escalate_after.info,
        };
        (!after.is_zero()).then_some(after)
    }

    /// The rule engine's settings.
    pub fn settings(&self, default_confirm_fixes: u32) -> Settings {
        let d = |d: Duration, fallback: chrono::Duration| {
            chrono::Duration::from_std(d).unwrap_or(fallback)
        };
        let base = Settings::default();
        Settings {
            max_speed_kmh: self.max_speed_kmh,
            no_location_after: d(self.no_location_after, base.no_location_after),
            low_battery_pct: self.low_battery_pct,
            battery_hysteresis_pct: self.battery_hysteresis_pct,
            default_confirm_fixes,
            late_after: d(self.late_after, base.late_after),
            crossing_max_gap: d(self.crossing_max_gap, base.crossing_max_gap),
            curfew_tick_after: d(self.curfew_tick_after, base.curfew_tick_after),
        }
    }

    /// Every problem with the section.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let mut check = |ok: bool, message: &str| {
            if !ok {
                problems.push(format!("alerts.{message}"));
            }
        };
        check(
            self.max_speed_kmh.is_finite() && self.max_speed_kmh > 0.0,
            "max_speed_kmh: must be positive",
        );
        check(self.low_battery_pct <= 100, "low_battery_pct: 0 to 100");
        check(
            !self.sweep_interval.is_zero() && !self.escalation_interval.is_zero(),
            "sweep_interval, escalation_interval: must be positive",
        );
        check(
            !self.seed_interval.is_zero() && !self.rules_refresh.is_zero(),
            "seed_interval, rules_refresh: must be positive",
        );
        check(
            self.outage_after > self.sweep_interval,
            "outage_after: must be longer than sweep_interval",
        );
        check(self.queue_capacity >= 1, "queue_capacity: at least 1");
        check((1..=64).contains(&self.evaluators), "evaluators: 1 to 64");
        check(self.feed_queue >= 16, "feed_queue: at least 16");
        check(
            self.max_feed_connections >= 1,
            "max_feed_connections: at least 1",
        );
        check(
            self.feed_session_check >= Duration::from_millis(100)
                && self.feed_session_check <= Duration::from_secs(300),
            "feed_session_check: between 100ms and 5m",
        );
        check(!self.ticket_ttl.is_zero(), "ticket_ttl: must be positive");
        problems
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    #[test]
    fn every_alert_kind_has_its_default_severity_and_escalation() {
        let alerts = Config::defaults().alerts;
        assert_eq!(
            alerts.severity_of("exclusion_zone_entered").as_str(),
            "critical"
        );
        assert_eq!(alerts.severity_of("lost_contact").as_str(), "critical");
        assert_eq!(alerts.severity_of("curfew_violation").as_str(), "serious");
        assert_eq!(alerts.severity_of("low_battery").as_str(), "info");
        let critical = alerts.escalation_of(super::Severity::Critical);
        assert_eq!(critical, Some(std::time::Duration::from_secs(300)));
        assert_eq!(
            alerts.escalation_of(super::Severity::Info),
            None,
            "0s never escalates"
        );
        assert!(alerts.problems().is_empty());
    }

    #[test]
    fn an_outage_window_shorter_than_a_sweep_is_refused() {
        let mut alerts = Config::defaults().alerts;
        alerts.outage_after = alerts.sweep_interval;
        alerts.feed_queue = 1;
        let problems = alerts.problems();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].starts_with("alerts.outage_after"));
    }

    #[test]
    fn engine_settings_follow_the_section() {
        let mut alerts = Config::defaults().alerts;
        alerts.max_speed_kmh = 120.0;
        alerts.late_after = std::time::Duration::from_secs(60);
        let settings = alerts.settings(3);
        assert_eq!(settings.max_speed_kmh, 120.0);
        assert_eq!(settings.late_after, chrono::Duration::seconds(60));
        assert_eq!(settings.default_confirm_fixes, 3);
    }
}
