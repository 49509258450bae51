//! Supervision records' rules: monitoring order bases, periods and leave windows.
//!
//! A monitoring order (PRC Community Corrections Law art. 29) has one of five legal bases and
//! a period of at most the configured maximum; renewals are new orders. Periods are half-open
//! `[starts_at, ends_at)`, so an order ending at 00:00 and its renewal starting at 00:00 do not
//! overlap.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The legal grounds on which an electronic positioning device may be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderBasis {
    ProhibitionOrderViolation,
    LeftJurisdictionWithoutApproval,
    RefusedToReportAfterWarning,
    PublicSecurityPenalty,
    PendingRevocation,
}

impl OrderBasis {
    pub const ALL: [OrderBasis; 5] = [
        OrderBasis::ProhibitionOrderViolation,
        OrderBasis::LeftJurisdictionWithoutApproval,
        OrderBasis::RefusedToReportAfterWarning,
        OrderBasis::PublicSecurityPenalty,
        OrderBasis::PendingRevocation,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OrderBasis::ProhibitionOrderViolation => "prohibition_order_violation",
            OrderBasis::LeftJurisdictionWithoutApproval => "left_jurisdiction_without_approval",
            OrderBasis::RefusedToReportAfterWarning => "refused_to_report_after_warning",
            OrderBasis::PublicSecurityPenalty => "public_security_penalty",
            OrderBasis::PendingRevocation => "pending_revocation",
        }
    }
}

impl fmt::Display for OrderBasis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for OrderBasis {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        OrderBasis::ALL
            .into_iter()
            .find(|b| b.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = OrderBasis::ALL.iter().map(|b| b.as_str()).collect();
                format!("unknown basis {s:?}: expected one of {}", names.join(", "))
            })
    }
}

/// A half-open period `[starts_at, ends_at)`, never empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
}

impl Period {
    /// A period of positive length no longer than `max_days`.
    pub fn new(
        starts_at: DateTime<Utc>,
        ends_at: DateTime<Utc>,
        max_days: u32,
    ) -> Result<Period, String> {
        if ends_at <= starts_at {
            return Err("ends_at must be after starts_at".into());
        }
        let max = chrono::Duration::days(i64::from(max_days));
        if ends_at - starts_at > max {
            return Err(format!(
                "the period may last at most {max_days} days; a longer one needs a renewal"
            ));
        }
        Ok(Period { starts_at, ends_at })
    }

    pub fn overlaps(&self, other: &Period) -> bool {
        self.starts_at < other.ends_at && other.starts_at < self.ends_at
    }

    pub fn contains(&self, instant: DateTime<Utc>) -> bool {
        self.starts_at <= instant && instant < self.ends_at
    }
}

/// Parses an IANA time zone name such as `Asia/Shanghai`.
pub fn parse_timezone(name: &str) -> Result<chrono_tz::Tz, String> {
    name.parse::<chrono_tz::Tz>().map_err(|_| {
        format!("unknown time zone {name:?}: expected an IANA name like Asia/Shanghai")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(day: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + chrono::Duration::days(i64::from(day))
    }

    #[test]
    fn a_period_of_exactly_the_maximum_is_accepted_and_one_second_more_is_not() {
        assert!(Period::new(at(0), at(92), 92).is_ok());
        let err = Period::new(at(0), at(92) + chrono::Duration::seconds(1), 92).unwrap_err();
        assert!(err.contains("92 days"));
    }

    #[test]
    fn a_renewal_starting_when_the_order_ends_does_not_overlap() {
        let first = Period::new(at(0), at(92), 92).unwrap();
        let renewal = Period::new(at(92), at(180), 92).unwrap();
        assert!(!first.overlaps(&renewal));
        assert!(first.overlaps(&Period::new(at(91), at(100), 92).unwrap()));
    }

    #[test]
    fn an_empty_or_reversed_period_is_rejected() {
        assert!(Period::new(at(1), at(1), 92).is_err());
        assert!(Period::new(at(2), at(1), 92).is_err());
    }

    #[test]
    fn every_basis_round_trips_through_its_name() {
        for basis in OrderBasis::ALL {
            assert_eq!(basis.as_str().parse::<OrderBasis>(), Ok(basis));
        }
        assert!("curiosity".parse::<OrderBasis>().is_err());
    }

    #[test]
    fn time_zones_are_iana_names() {
        assert!(parse_timezone("Asia/Shanghai").is_ok());
        assert!(parse_timezone("Mars/Olympus").is_err());
    }
}
