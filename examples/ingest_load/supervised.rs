//! `--supervised`: every device is worn by a supervisee under an order, with one exclusion zone
//! attached, so each fix goes through the rule engine; a few devices (the violators) walk in and
//! out of the zone, and the officers' feed is watched for the alerts (see `feed`).
//!
//! Provisioning goes through the public API only: a supervisor and an officer account (created
//! by the admin), then per device a supervisee (admin), its device (admin), an order and the
//! zone (supervisor).
//!
//! Movement never implies a `location_jump` (300 km/h beyond both accuracies): non-violators
//! stay at home with ±0.00002° of noise (under 6 m between two fixes, less than the 10–30 m of
//! their summed accuracies); violators move at 4 × 150 m per period (108 km/h at 20 s) with a
//! position computed from the fix's own timestamp.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _};
use chrono::SecondsFormat;
use futures_util::StreamExt;
use reqwest::Method;
use serde_json::{json, Value};

use crate::{login, Args, Registered, Rng};

/// The exclusion zone: about 17 km from the centre of the non-violators' homes
/// (33.62, 114.65 ± 0.05°), so none of them is anywhere near it.
pub const ZONE_LAT: f64 = 33.75;
pub const ZONE_LON: f64 = 114.80;
const ZONE_RADIUS_M: f64 = 60.0;
/// Violators move this far either side of the zone's centre.
const AMPLITUDE_M: f64 = 150.0;
const M_PER_DEG_LAT: f64 = 111_320.0;

/// How one device moves.
#[derive(Debug, Clone, Copy)]
pub enum Motion {
    /// Load mode, as before: ±0.0002° around home, acc 5–15 m (implies impossible speeds, which
    /// does not matter without rules).
    Load,
    /// Supervised, compliant: ±0.00002° around home, acc 5–15 m.
    Still,
    /// Supervised violator: a triangle wave along a straight line through the zone's centre.
    /// `(north, east)` is the line's unit direction; the period and phase are in ms.
    Line {
        north: f64,
        east: f64,
        period_ms: i64,
        phase_ms: i64,
    },
}

impl Motion {
    /// Latitude, longitude and accuracy of a fix taken at `at_ms` (Unix ms, the fix's `ts`).
    pub fn fix(&self, home: (f64, f64), at_ms: i64, rng: &mut Rng) -> (f64, f64, f64) {
        let noisy = |rng: &mut Rng, spread: f64| {
            let lat = home.0 + (rng.next() - 0.5) * spread;
            let lon = home.1 + (rng.next() - 0.5) * spread;
            (lat, lon, 5.0 + rng.next() * 10.0)
        };
        match *self {
            Motion::Load => noisy(rng, 0.0004),
            Motion::Still => noisy(rng, 0.00004),
            Motion::Line {
                north,
                east,
                period_ms,
                phase_ms,
            } => {
                let u = (at_ms + phase_ms).rem_euclid(period_ms) as f64 / period_ms as f64;
                let x = AMPLITUDE_M * (4.0 * (u - 0.5).abs() - 1.0);
                let lat = ZONE_LAT + x * north / M_PER_DEG_LAT;
                let lon = ZONE_LON + x * east / (M_PER_DEG_LAT * ZONE_LAT.to_radians().cos());
                (lat, lon, 5.0)
            }
        }
    }
}

/// What provisioning made.
pub struct Setup {
    pub supervisor_token: String,
    /// Supervisee id → whether it is a violator.
    pub supervisees: HashMap<String, bool>,
    /// One per device, in device order.
    pub motions: Vec<Motion>,
    pub violators: usize,
    pub zone_id: String,
    pub period_s: f64,
}

/// The violators: `n` device indices spread evenly over the devices (so over the send phases).
fn violator_flags(devices: usize, n: usize) -> Vec<bool> {
    let mut flags = vec![false; devices];
    for k in 0..n {
        flags[k * devices / n] = true;
    }
    flags
}

pub async fn provision(
    http: &reqwest::Client,
    base: &str,
    admin: &str,
    args: &Args,
    run_id: &str,
    devices: &[Registered],
) -> anyhow::Result<Setup> {
    let started = Instant::now();
    let api = Api { http, base };
    let n = args
        .violators
        .unwrap_or((devices.len() as f64 * 0.05).round() as usize)
        .min(devices.len());
    let period_ms = (args.violation_period_s * 1000.0).round() as i64;
    if period_ms < 1000 {
        bail!("--violation-period-s must be at least 1");
    }
    let password = format!("load-{run_id}-password");
    let account = |role: &str| {
        let username = format!("load-{role}-{run_id}");
        let body = json!({ "username": username, "password": password, "role": role,
                           "name": format!("Load {role}") });
        (username, body)
    };
    let (supervisor_name, body) = account("supervisor");
    api.create("/v1/officers", admin, &body).await?;
    let (officer_name, body) = account("officer");
    let officer_id = api.create("/v1/officers", admin, &body).await?;
    let supervisor = login(http, base, &format!("{supervisor_name}:{password}")).await?;
    // The officer's session is not used; logging in checks the account works.
    login(http, base, &format!("{officer_name}:{password}")).await?;
    let geometry = json!({ "type": "Circle", "coordinates": [ZONE_LON, ZONE_LAT],
                           "radius_m": ZONE_RADIUS_M });
    let zone = json!({ "name": "Load zone", "kind": "exclusion", "geometry": geometry,
                       "confirm_fixes": 2 });
    let zone_id = api.create("/v1/zones", &supervisor, &zone).await?;

    let now = chrono::Utc::now();
    let rfc3339 = |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(SecondsFormat::Secs, true);
    let order = json!({
        "basis": "prohibition_order_violation",
        "starts_at": rfc3339(now - chrono::Duration::hours(1)),
        "ends_at": rfc3339(now + chrono::Duration::days(30)),
        "approved_by": "Load test",
    });
    let flags = violator_flags(devices.len(), n);
    let done = AtomicU64::new(0);
    let one = |i: usize, device_id: String| {
        let (api, supervisor, officer_id, order, zone_id, done) =
            (&api, &supervisor, &officer_id, &order, &zone_id, &done);
        let violator = flags[i];
        async move {
            let body = json!({ "name": format!("Load {run_id} {i}"), "officer_id": officer_id,
                               "timezone": "Asia/Shanghai", "lost_contact_after_s": 600 });
            let id = api.create("/v1/supervisees", admin, &body).await?;
            let path = format!("/v1/supervisees/{id}");
            let body = json!({ "device_id": device_id });
            let device_path = format!("{path}/device");
            api.call(Method::PUT, &device_path, admin, Some(&body), 200)
                .await?;
            let orders_path = format!("{path}/orders");
            api.call(Method::POST, &orders_path, supervisor, Some(order), 201)
                .await?;
            let zone_path = format!("{path}/zones/{zone_id}");
            api.call(Method::PUT, &zone_path, supervisor, None, 204)
                .await?;
            let k = done.fetch_add(1, Ordering::Relaxed) + 1;
            if k % 500 == 0 {
                eprintln!("provisioned {k}/{}", devices.len());
            }
            anyhow::Ok((id, violator))
        }
    };
    let results: Vec<anyhow::Result<(String, bool)>> =
        futures_util::stream::iter(devices.iter().enumerate())
            .map(|(i, device)| one(i, device.id.clone()))
            .buffer_unordered(args.register_concurrency.max(1))
            .collect()
            .await;
    let supervisees = results
        .into_iter()
        .collect::<anyhow::Result<HashMap<_, _>>>()?;

    let mut rng = Rng::new(args.seed ^ 0x5eed_5eed, 0);
    let motions = flags
        .iter()
        .map(|&violator| {
            if !violator {
                return Motion::Still;
            }
            let bearing = rng.next() * std::f64::consts::PI;
            Motion::Line {
                north: bearing.cos(),
                east: bearing.sin(),
                period_ms,
                phase_ms: (rng.next() * period_ms as f64) as i64,
            }
        })
        .collect();
    eprintln!(
        "provisioned {} supervisees ({n} violators), zone {zone_id}, in {:.1} s",
        supervisees.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(Setup {
        supervisor_token: supervisor,
        supervisees,
        motions,
        violators: n,
        zone_id,
        period_s: args.violation_period_s,
    })
}

/// The officer API, as the provisioning uses it.
struct Api<'a> {
    http: &'a reqwest::Client,
    base: &'a str,
}

impl Api<'_> {
    /// `POST path` expecting 201; the new record's id.
    async fn create(&self, path: &str, token: &str, body: &Value) -> anyhow::Result<String> {
        let created = self
            .call(Method::POST, path, token, Some(body), 201)
            .await?;
        created["id"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| anyhow!("POST {path}: no id in {created}"))
    }

    /// One call expecting `expect`, tried up to three times. A retried call that finds its
    /// first attempt done (409: the order exists) counts as done.
    async fn call(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<&Value>,
        expect: u16,
    ) -> anyhow::Result<Value> {
        let url = format!("{}{path}", self.base);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = async {
                let mut request = self.http.request(method.clone(), &url).bearer_auth(token);
                if let Some(body) = body {
                    request = request.json(body);
                }
                let response = request
                    .send()
                    .await
                    .with_context(|| format!("{method} {path}"))?;
                let status = response.status().as_u16();
                let value: Value = response.json().await.unwrap_or_default();
                if status == expect || (attempt > 1 && status == 409) {
                    return Ok(value);
                }
                bail!("{method} {path}: {status} {value}")
            }
            .await;
            match result {
                Ok(value) => return Ok(value),
                Err(err) if attempt >= 3 => return Err(err),
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    }
}
