//! The tag's side of a person: its plan carries exactly the scenario's device events, and the
//! gaps between receptions stay under the lost-contact threshold until the run settles.

use chrono::{DateTime, Utc};

use crate::ledger::Window;
use crate::plan::clock::{add_ms, ms, Ticks};
use crate::plan::scenarios::Kind;
use crate::plan::{PersonPlan, ZoneRef, NETWORK_S};

use super::Checker;

impl Checker {
    /// The tag carries exactly its scenario's events.
    pub(super) fn device(&self, p: &PersonPlan, kind: Kind, who: &str, errs: &mut Vec<String>) {
        let d = &p.device;
        let low = self.s.low_battery_pct;
        let mut bad = |what: &str| errs.push(format!("{who}: {what}"));
        if kind == Kind::LowBattery {
            if d.battery_start_pct < low.saturating_add(10)
                || d.battery_drop_at.is_none()
                || d.battery_low_pct >= low
            {
                bad("battery does not start at low + 10 and fall below low");
            }
        } else if d.battery_start_pct < low
            || (d.battery_drop_at.is_some() && d.battery_low_pct < low)
        {
            bad("battery below the low-battery threshold");
        }
        if d.battery_start_pct > 100 {
            bad("battery above 100%");
        }
        let pairs = [
            (d.strap_open_at.is_some(), Kind::StrapTamper, "strap"),
            (d.jump_at.is_some(), Kind::LocationJump, "jump"),
            (d.silent_from.is_some(), Kind::GoSilent, "silence"),
            (
                d.offline.is_some(),
                Kind::OfflineThenBufferedUpload,
                "offline window",
            ),
            (p.leave.is_some(), Kind::ApprovedLeave, "leave"),
        ];
        for (has, k, what) in pairs {
            if has != (kind == k) {
                bad(&format!("{what} does not match the scenario"));
            }
        }
        if !d.quiet.is_empty() && kind != Kind::PassThroughSchoolZone {
            bad("quiet windows without a pass");
        }
        if let Some(z) = p.scenario.zone {
            if !p.zones.contains(&z) {
                bad("the scenario's zone is not attached");
            }
        }
        let barred = p.zones.iter().any(|z| matches!(z, ZoneRef::School(_)));
        if barred && !matches!(kind, Kind::Compliant | Kind::PassThroughSchoolZone) {
            bad("barred from schools with a scenario");
        }
    }

    /// Gaps in what geoward receives stay under the lost-contact threshold until
    /// `settle_until` (the silent person: until they fall silent).
    pub fn contact(&self, p: &PersonPlan, settle_until: DateTime<Utc>) -> Vec<String> {
        let ticks = Ticks::of(&self.s, self.start, p.index);
        let lag = self.s.lag.num_milliseconds().max(0);
        let net = NETWORK_S * 1000;
        let allowed = i64::from(p.lost_contact_after_s) * 1000
            + self.s.lost_contact_grace.num_milliseconds()
            - 1000;
        let overlaps = |w: &Window, t: i64| ms(w.from) <= t + lag && t <= ms(w.to);
        let mut last: Option<i64> = None;
        let mut errs = Vec::new();
        let who = format!("supervisee {}", p.index);
        let mut first_hi = None;
        for k in 0..ticks.count() {
            let t = ticks.at_ms(k);
            if p.device.silent_from.is_some_and(|s| t + lag >= ms(s)) {
                break;
            }
            if p.device.quiet.iter().any(|w| overlaps(w, t))
                || p.device.offline.as_ref().is_some_and(|w| overlaps(w, t))
            {
                continue;
            }
            let hi = t + lag + net;
            first_hi.get_or_insert(hi);
            if let Some(lo) = last {
                if hi - lo >= allowed {
                    errs.push(format!(
                        "{who}: nothing received between {} and {}: lost contact",
                        crate::plan::clock::from_ms(lo),
                        crate::plan::clock::from_ms(hi)
                    ));
                    return errs;
                }
            }
            last = Some(t);
        }
        if first_hi.is_some_and(|hi| hi - ms(self.start) >= allowed) {
            errs.push(format!(
                "{who}: first report too late for the lost-contact threshold"
            ));
        }
        match (last, p.device.silent_from) {
            (None, _) => errs.push(format!("{who}: never reports")),
            (Some(lo), None) if ms(settle_until) - lo >= allowed => errs.push(format!(
                "{who}: loses contact at {} before the run settles",
                add_ms(crate::plan::clock::from_ms(lo), allowed)
            )),
            _ => {}
        }
        errs
    }
}
