//! Alerts and the officers' live feed over real WebSockets, PostgreSQL and Redis: from a
//! device's fix to the right officer's screen, once per condition, across nodes, through
//! silences and outages.

#[path = "../support/mod.rs"]
mod support;

mod escalation;
mod feed;
mod lost_contact;
mod multi_node;
mod raising;

use std::collections::BTreeSet;
use std::time::Duration;

use geoward::config::Config;
use serde_json::Value;

use support::device::Device;
use support::monitored::{circle, confirm_fixes, exclusion_zone, Monitored};
use support::officer::OfficerFeed;
use support::{spawn_app_with, test_config, TestApp};

/// Centre of the test exclusion zone (Zhoukou), its radius, and a point well outside it.
pub const ZONE_LON: f64 = 114.66;
pub const ZONE_LAT: f64 = 33.63;
pub const ZONE_RADIUS_M: f64 = 200.0;
pub const AWAY: (f64, f64) = (33.63, 114.675);

/// How long a test waits for something that should happen well under a second.
pub const SOON: Duration = Duration::from_secs(5);
/// How long a test watches for something that must not happen.
pub const QUIET: Duration = Duration::from_millis(1500);

/// The defaults with alert timings short enough to watch in a test.
pub async fn alert_config() -> (Config, String) {
    let (mut config, database) = test_config().await;
    config.supervision.min_lost_contact_after_s = 1;
    let a = &mut config.alerts;
    a.sweep_interval = Duration::from_millis(200);
    a.escalation_interval = Duration::from_millis(200);
    a.lost_contact_grace = Duration::from_secs(1);
    a.outage_after = Duration::from_secs(2);
    a.outage_grace = Duration::from_secs(6);
    (config, database)
}

/// One system with an admin, a supervisor and two officers.
pub struct Rig {
    pub app: TestApp,
    pub admin: String,
    pub supervisor: String,
    pub officer_a: (String, String),
    pub officer_b: (String, String),
}

impl Rig {
    pub async fn start() -> Rig {
        let (config, database) = alert_config().await;
        Rig::with(config, database).await
    }

    pub async fn with(config: Config, database: String) -> Rig {
        let app = spawn_app_with(config, database).await;
        let admin = app.admin_token().await;
        let (_, supervisor) = app.account(&admin, "supervisor").await;
        let officer_a = app.account(&admin, "officer").await;
        let officer_b = app.account(&admin, "officer").await;
        Rig {
            app,
            admin,
            supervisor,
            officer_a,
            officer_b,
        }
    }

    /// A supervisee of officer A, under an order, with the test exclusion zone (confirm 2).
    pub async fn person(&self, lost_contact_after_s: Option<u32>) -> Monitored {
        let zone = confirm_fixes(
            exclusion_zone("Victim home", circle(ZONE_LON, ZONE_LAT, ZONE_RADIUS_M)),
            2,
        );
        self.app
            .monitored_supervisee(
                &self.admin,
                &self.officer_a.1,
                &self.officer_a.0,
                vec![zone],
                lost_contact_after_s,
            )
            .await
    }

    pub async fn feed(&self, token: &str) -> OfficerFeed {
        let mut feed = self.app.officer_feed(token, None).await;
        feed.wait_ready(SOON).await;
        feed
    }
}

/// RFC 3339 time `seconds` from now (negative: in the past).
pub fn ts(seconds: f64) -> String {
    (chrono::Utc::now() + chrono::Duration::milliseconds((seconds * 1000.0) as i64))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The alert kinds of a list of feed frames.
pub fn kinds(frames: &[Value]) -> Vec<String> {
    frames
        .iter()
        .map(|f| {
            format!(
                "{}:{}",
                f["change"].as_str().unwrap_or("?"),
                f["alert"]["kind"].as_str().unwrap_or("?")
            )
        })
        .collect()
}

/// Walks the device into the exclusion zone with seqs `first..first+3` (30 s apart, in the
/// past) and waits until the server acked them.
pub async fn enter(device: &mut Device, first: u64) {
    device
        .send_fix(first, &ts(-110.0), AWAY.0, AWAY.1, 10.0)
        .await
        .unwrap();
    device
        .send_fix(first + 1, &ts(-80.0), ZONE_LAT, ZONE_LON, 10.0)
        .await
        .unwrap();
    device
        .send_fix(first + 2, &ts(-50.0), ZONE_LAT, ZONE_LON + 0.0003, 10.0)
        .await
        .unwrap();
    let seqs: BTreeSet<u64> = (first..first + 3).collect();
    assert_eq!(device.wait_acks(&seqs, SOON).await, seqs, "fixes acked");
}

/// Walks the device out of the zone again (confirmed by two fixes outside).
pub async fn leave(device: &mut Device, first: u64) {
    device
        .send_fix(first, &ts(-40.0), ZONE_LAT, ZONE_LON, 10.0)
        .await
        .unwrap();
    device
        .send_fix(first + 1, &ts(-10.0), AWAY.0, AWAY.1, 10.0)
        .await
        .unwrap();
    device
        .send_fix(first + 2, &ts(0.0), AWAY.0, AWAY.1, 10.0)
        .await
        .unwrap();
    let seqs: BTreeSet<u64> = (first..first + 3).collect();
    assert_eq!(device.wait_acks(&seqs, SOON).await, seqs, "fixes acked");
}
