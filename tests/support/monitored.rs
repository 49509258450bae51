//! A supervisee under monitoring in one call, for alert tests: in an officer's caseload,
//! wearing a device, under a monitoring order in force, with zones attached.

use chrono::{Duration as ChronoDuration, Utc};
use serde_json::{json, Value};

use super::device::{ConnectError, Device};
use super::TestApp;

/// What [`TestApp::monitored_supervisee`] created.
#[derive(Debug, Clone)]
pub struct Monitored {
    pub supervisee_id: String,
    pub device_id: String,
    /// The device's token (shown once, at registration).
    pub device_token: String,
    pub order_id: String,
    /// The zones created, in the order given.
    pub zone_ids: Vec<String>,
}

impl Monitored {
    /// Connects the supervisee's device to `ws_base` (`ws://host:port`).
    pub async fn connect(&self, ws_base: &str) -> Result<Device, ConnectError> {
        Device::connect(ws_base, &self.device_token).await
    }

    /// Connects the supervisee's device, panicking when refused.
    pub async fn device(&self, ws_base: &str) -> Device {
        self.connect(ws_base)
            .await
            .unwrap_or_else(|e| panic!("device of supervisee {}: {e}", self.supervisee_id))
    }
}

impl TestApp {
    /// Creates a supervisee in `officer_id`'s caseload (as the admin, with
    /// `lost_contact_after_s` when given, else the configured default; the API accepts 60 to
    /// 604800), registers a device and puts it on them (admin), records a monitoring order from
    /// an hour ago to 30 days ahead (officer), and draws each zone body in `zones` and attaches
    /// it (officer).
    pub async fn monitored_supervisee(
        &self,
        admin_token: &str,
        officer_token: &str,
        officer_id: &str,
        zones: Vec<Value>,
        lost_contact_after_s: Option<u32>,
    ) -> Monitored {
        let mut person = json!({
            "name": "Zhang San",
            "officer_id": officer_id,
            "timezone": "Asia/Shanghai",
        });
        if let Some(seconds) = lost_contact_after_s {
            person["lost_contact_after_s"] = json!(seconds);
        }
        let supervisee_id = self
            .post("/v1/supervisees", admin_token, person)
            .await
            .expect(201)
            .id();

        let serial = format!("TAG-{}", uuid::Uuid::new_v4().simple());
        let device = self
            .post("/v1/devices", admin_token, json!({ "serial": serial }))
            .await
            .expect(201);
        let device_id = device.id();
        let device_token = device.body["token"]
            .as_str()
            .unwrap_or_else(|| panic!("no device token in {}", device.text))
            .to_owned();
        self.put(
            &format!("/v1/supervisees/{supervisee_id}/device"),
            admin_token,
            Some(json!({ "device_id": device_id })),
        )
        .await
        .expect(200);

        let starts_at = Utc::now() - ChronoDuration::hours(1);
        let order_id = self
            .post(
                &format!("/v1/supervisees/{supervisee_id}/orders"),
                officer_token,
                json!({
                    "basis": "prohibition_order_violation",
                    "starts_at": starts_at,
                    "ends_at": starts_at + ChronoDuration::days(30) + ChronoDuration::hours(1),
                    "approved_by": "Head of Chuanhui judicial office",
                }),
            )
            .await
            .expect(201)
            .id();

        let mut zone_ids = Vec::with_capacity(zones.len());
        for zone in zones {
            let zone_id = self
                .post("/v1/zones", officer_token, zone)
                .await
                .expect(201)
                .id();
            self.put(
                &format!("/v1/supervisees/{supervisee_id}/zones/{zone_id}"),
                officer_token,
                None,
            )
            .await
            .expect(204);
            zone_ids.push(zone_id);
        }

        Monitored {
            supervisee_id,
            device_id,
            device_token,
            order_id,
            zone_ids,
        }
    }
}

/// A circle zone geometry: `{"type":"Circle","coordinates":[lon,lat],"radius_m":R}` (WGS-84
/// unless the zone body says another datum; radius at most `zones.max_radius_m`, 100 km).
pub fn circle(lon: f64, lat: f64, radius_m: f64) -> Value {
    json!({ "type": "Circle", "coordinates": [lon, lat], "radius_m": radius_m })
}

/// A zone body for `POST /v1/zones` (server defaults for everything else: WGS-84, always
/// active, no buffer, `zones.default_confirm_fixes` = 2, not shared).
pub fn zone(kind: &str, name: &str, geometry: Value) -> Value {
    json!({ "name": name, "kind": kind, "geometry": geometry })
}

/// An exclusion zone body (must stay out).
pub fn exclusion_zone(name: &str, geometry: Value) -> Value {
    zone("exclusion", name, geometry)
}

/// An inclusion zone body (must stay inside).
pub fn inclusion_zone(name: &str, geometry: Value) -> Value {
    zone("inclusion", name, geometry)
}

/// `zone` needing `n` consecutive confirming fixes (1 to 100) to start or end a violation.
pub fn confirm_fixes(mut zone: Value, n: u32) -> Value {
    zone["confirm_fixes"] = json!(n);
    zone
}

/// `zone` with a weekly schedule (the `schedule` array of `POST /v1/zones`).
pub fn with_schedule(mut zone: Value, schedule: Value) -> Value {
    zone["schedule"] = schedule;
    zone
}

/// `zone` (an exclusion zone) widened by `buffer_m` metres.
pub fn with_buffer(mut zone: Value, buffer_m: f64) -> Value {
    zone["buffer_m"] = json!(buffer_m);
    zone
}
