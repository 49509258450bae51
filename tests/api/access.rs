//! Walks the whole route table as every kind of caller and checks who gets through.
//! A route added to the table without an entry here fails `every_route_has_an_expected_rule`.

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::{json, Value};

use crate::support::{spawn_app, TestApp, ADMIN_PASSWORD, ADMIN_USER, PASSWORD};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Caller {
    Anonymous,
    Admin,
    Supervisor,
    /// An officer whose caseload holds the supervisee in the path.
    OwnOfficer,
    /// An officer of another caseload.
    OtherOfficer,
}
use Caller::*;

const CALLERS: [Caller; 5] = [Anonymous, Admin, Supervisor, OwnOfficer, OtherOfficer];
const EVERYONE: &[Caller] = &[Anonymous, Admin, Supervisor, OwnOfficer, OtherOfficer];
const LOGGED_IN: &[Caller] = &[Admin, Supervisor, OwnOfficer, OtherOfficer];
const ADMIN_ONLY: &[Caller] = &[Admin];
const ADMIN_SUPERVISOR: &[Caller] = &[Admin, Supervisor];
const RECORD_IN_CASELOAD: &[Caller] = &[Admin, Supervisor, OwnOfficer];
const LOCATION_IN_CASELOAD: &[Caller] = &[Supervisor, OwnOfficer];
const LOCATION_ROLES: &[Caller] = &[Supervisor, OwnOfficer, OtherOfficer];
/// Device routes take device tokens only: every officer token is refused with 401.
const DEVICES_ONLY: &[Caller] = &[];

/// Who may call each route. Keep in step with `geoward::api::routes::table`.
fn expected() -> Vec<(&'static str, &'static str, &'static [Caller])> {
    vec![
        ("GET", "/healthz", EVERYONE),
        ("GET", "/readyz", EVERYONE),
        ("GET", "/metrics", EVERYONE),
        ("GET", "/openapi.json", EVERYONE),
        ("POST", "/v1/auth/login", EVERYONE),
        ("POST", "/v1/auth/logout", LOGGED_IN),
        ("GET", "/v1/auth/me", LOGGED_IN),
        ("POST", "/v1/auth/ws-ticket", LOCATION_ROLES),
        ("POST", "/v1/officers", ADMIN_ONLY),
        ("GET", "/v1/officers", ADMIN_ONLY),
        ("GET", "/v1/officers/{id}", ADMIN_ONLY),
        ("POST", "/v1/devices", ADMIN_ONLY),
        ("GET", "/v1/devices", ADMIN_ONLY),
        ("GET", "/v1/devices/{id}", ADMIN_ONLY),
        ("POST", "/v1/devices/{id}/revoke", ADMIN_ONLY),
        ("POST", "/v1/supervisees", ADMIN_SUPERVISOR),
        ("GET", "/v1/supervisees", LOGGED_IN),
        ("GET", "/v1/supervisees/{id}", RECORD_IN_CASELOAD),
        ("PATCH", "/v1/supervisees/{id}", ADMIN_SUPERVISOR),
        ("PUT", "/v1/supervisees/{id}/device", ADMIN_SUPERVISOR),
        ("DELETE", "/v1/supervisees/{id}/device", ADMIN_SUPERVISOR),
        ("POST", "/v1/zones", LOCATION_ROLES),
        ("GET", "/v1/zones", LOCATION_ROLES),
        ("GET", "/v1/zones/{id}", LOCATION_IN_CASELOAD),
        ("POST", "/v1/zones/{id}/classify", LOCATION_IN_CASELOAD),
        ("GET", "/v1/supervisees/{id}/zones", LOCATION_IN_CASELOAD),
        (
            "PUT",
            "/v1/supervisees/{id}/zones/{zone_id}",
            LOCATION_IN_CASELOAD,
        ),
        (
            "DELETE",
            "/v1/supervisees/{id}/zones/{zone_id}",
            LOCATION_IN_CASELOAD,
        ),
        ("POST", "/v1/supervisees/{id}/orders", LOCATION_IN_CASELOAD),
        ("GET", "/v1/supervisees/{id}/orders", LOCATION_IN_CASELOAD),
        ("POST", "/v1/supervisees/{id}/leaves", LOCATION_IN_CASELOAD),
        ("GET", "/v1/supervisees/{id}/leaves", LOCATION_IN_CASELOAD),
        (
            "DELETE",
            "/v1/supervisees/{id}/leaves/{leave_id}",
            LOCATION_IN_CASELOAD,
        ),
        ("GET", "/v1/device/ws", DEVICES_ONLY),
        ("GET", "/v1/supervisees/{id}/track", LOCATION_IN_CASELOAD),
        ("GET", "/v1/supervisees/{id}/position", LOCATION_IN_CASELOAD),
        ("GET", "/v1/alerts", LOCATION_ROLES),
        ("GET", "/v1/alerts/{id}", LOCATION_IN_CASELOAD),
        ("POST", "/v1/alerts/{id}/acknowledge", LOCATION_IN_CASELOAD),
        ("POST", "/v1/alerts/{id}/resolve", LOCATION_IN_CASELOAD),
        // A plain GET is refused as not a WebSocket (400) once the caller is let in.
        ("GET", "/v1/officer/ws", LOCATION_ROLES),
        ("GET", "/v1/audit", ADMIN_ONLY),
    ]
}

#[test]
fn every_route_has_an_expected_rule() {
    let declared: BTreeSet<(String, String)> = geoward::api::routes::specs()
        .iter()
        .map(|s| (s.method.to_string(), s.path.to_owned()))
        .collect();
    let expected: BTreeSet<(String, String)> = expected()
        .iter()
        .map(|(m, p, _)| (m.to_string(), p.to_string()))
        .collect();
    let missing: Vec<_> = declared.difference(&expected).collect();
    let stale: Vec<_> = expected.difference(&declared).collect();
    assert!(
        missing.is_empty() && stale.is_empty(),
        "routes without an expected access rule: {missing:?}; expected routes that do not exist: {stale:?}"
    );
}

/// Accounts shared by every call.
struct Accounts {
    admin: String,
    supervisor: String,
    own_id: String,
    own_username: String,
    own: String,
    other: String,
    other_username: String,
    supervisor_username: String,
}

/// Fresh records for one call, so destructive routes always have something to act on.
struct World {
    supervisee: String,
    zone: String,
    shared_zone: String,
    leave: String,
    /// An open alert of the supervisee.
    alert: String,
    device: String,
    spare_device: String,
}

async fn accounts(app: &TestApp) -> Accounts {
    let admin = app.admin_token().await;
    let mut names = Vec::new();
    let mut tokens = Vec::new();
    let mut ids = Vec::new();
    for role in ["supervisor", "officer", "officer"] {
        let username = format!("{role}-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
        let id = app
            .post(
                "/v1/officers",
                &admin,
                json!({ "username": username, "password": PASSWORD, "role": role, "name": role }),
            )
            .await
            .expect(201)
            .id();
        tokens.push(app.token(&username, PASSWORD).await);
        names.push(username);
        ids.push(id);
    }
    Accounts {
        admin,
        supervisor: tokens[0].clone(),
        supervisor_username: names[0].clone(),
        own_id: ids[1].clone(),
        own: tokens[1].clone(),
        own_username: names[1].clone(),
        other: tokens[2].clone(),
        other_username: names[2].clone(),
    }
}

async fn world(app: &TestApp, a: &Accounts) -> World {
    let supervisee = app.supervisee(&a.supervisor, &a.own_id).await;
    let mut devices = Vec::new();
    for _ in 0..2 {
        let serial = format!("TAG-{}", uuid::Uuid::new_v4().simple());
        devices.push(
            app.post("/v1/devices", &a.admin, json!({ "serial": serial }))
                .await
                .expect(201)
                .id(),
        );
    }
    app.put(
        &format!("/v1/supervisees/{supervisee}/device"),
        &a.supervisor,
        Some(json!({ "device_id": devices[0] })),
    )
    .await
    .expect(200);
    let zone = app
        .post(
            "/v1/zones",
            &a.supervisor,
            json!({ "name": "Victim home", "kind": "exclusion",
                    "geometry": TestApp::square(114.65, 33.62, 0.001), "datum": "wgs84" }),
        )
        .await
        .expect(201)
        .id();
    app.put(
        &format!("/v1/supervisees/{supervisee}/zones/{zone}"),
        &a.supervisor,
        None,
    )
    .await
    .expect(204);
    let shared_zone = app
        .post(
            "/v1/zones",
            &a.supervisor,
            json!({ "name": "School", "kind": "exclusion", "shared": true,
                    "geometry": {"type": "Circle", "coordinates": [114.66, 33.63], "radius_m": 150.0} }),
        )
        .await
        .expect(201)
        .id();
    let now = chrono::Utc::now();
    let leave = app
        .post(
            &format!("/v1/supervisees/{supervisee}/leaves"),
            &a.supervisor,
            json!({ "starts_at": now + chrono::Duration::days(1), "ends_at": now + chrono::Duration::days(3),
                    "reason": "family funeral" }),
        )
        .await
        .expect(201)
        .id();
    // The access walk needs an alert to act on, not the path that raises one (tests/alerts).
    let (alert,): (i64,) = sqlx::query_as(
        "insert into alerts (supervisee_id, kind, severity, zone_id, event_at, opened_at)
         values ($1::uuid, 'exclusion_zone_entered', 'critical', $2::uuid, now(), now())
         returning id",
    )
    .bind(&supervisee)
    .bind(&zone)
    .fetch_one(&app.db)
    .await
    .expect("insert an alert");
    World {
        alert: alert.to_string(),
        supervisee,
        zone,
        shared_zone,
        leave,
        device: devices[0].clone(),
        spare_device: devices[1].clone(),
    }
}

/// The concrete path and a valid body for a route template.
fn request(method: &str, template: &str, a: &Accounts, w: &World) -> (String, Option<Value>) {
    let id = if template.starts_with("/v1/officers/") {
        a.own_id.as_str()
    } else if template.starts_with("/v1/devices/") {
        w.device.as_str()
    } else if template.starts_with("/v1/zones/") {
        w.zone.as_str()
    } else if template.starts_with("/v1/alerts/") {
        w.alert.as_str()
    } else {
        w.supervisee.as_str()
    };
    let zone_id = if method == "PUT" {
        &w.shared_zone
    } else {
        &w.zone
    };
    let path = template
        .replace("{id}", id)
        .replace("{zone_id}", zone_id)
        .replace("{leave_id}", &w.leave);
    let now = chrono::Utc::now();
    let unique = uuid::Uuid::new_v4().simple().to_string();
    let body = match (method, template) {
        ("POST", "/v1/auth/login") => {
            Some(json!({ "username": ADMIN_USER, "password": ADMIN_PASSWORD }))
        }
        ("POST", "/v1/officers") => Some(json!({
            "username": format!("new-{}", &unique[..10]), "password": PASSWORD, "role": "officer", "name": "New"
        })),
        ("POST", "/v1/devices") => Some(json!({ "serial": format!("TAG-{unique}") })),
        ("POST", "/v1/supervisees") => Some(json!({
            "name": "Li Si", "officer_id": a.own_id, "timezone": "Asia/Shanghai", "lost_contact_after_s": 600
        })),
        ("PATCH", _) => Some(json!({ "name": "Wang Wu" })),
        ("POST", "/v1/alerts/{id}/acknowledge") | ("POST", "/v1/alerts/{id}/resolve") => {
            Some(json!({ "note": "called; at the pharmacy" }))
        }
        ("POST", "/v1/zones/{id}/classify") => {
            Some(json!({ "lat": 33.62, "lon": 114.65, "acc": 10.0 }))
        }
        ("PUT", "/v1/supervisees/{id}/device") => Some(json!({ "device_id": w.spare_device })),
        ("POST", "/v1/zones") => Some(json!({
            "name": "Park", "kind": "exclusion",
            "geometry": {"type": "Circle", "coordinates": [114.64, 33.61], "radius_m": 100.0}
        })),
        ("POST", "/v1/supervisees/{id}/orders") => Some(json!({
            "basis": "left_jurisdiction_without_approval",
            "starts_at": now, "ends_at": now + chrono::Duration::days(90), "approved_by": "Director Zhao"
        })),
        ("POST", "/v1/supervisees/{id}/leaves") => Some(json!({
            "starts_at": now + chrono::Duration::days(10), "ends_at": now + chrono::Duration::days(12),
            "reason": "medical treatment in Zhengzhou"
        })),
        _ => None,
    };
    (path, body)
}

#[tokio::test]
async fn every_route_admits_exactly_the_callers_it_should() {
    let app = spawn_app().await;
    let a = accounts(&app).await;
    let mut failures = Vec::new();
    for (method, template, allowed) in expected() {
        for caller in CALLERS {
            let w = world(&app, &a).await;
            let (path, body) = request(method, template, &a, &w);
            let token = match caller {
                Anonymous => None,
                // Logout revokes the token it is called with: give it a fresh one.
                _ if template == "/v1/auth/logout" => {
                    let (user, pass) = match caller {
                        Admin => (ADMIN_USER, ADMIN_PASSWORD),
                        Supervisor => (a.supervisor_username.as_str(), PASSWORD),
                        OwnOfficer => (a.own_username.as_str(), PASSWORD),
                        _ => (a.other_username.as_str(), PASSWORD),
                    };
                    Some(app.token(user, pass).await)
                }
                Admin => Some(a.admin.clone()),
                Supervisor => Some(a.supervisor.clone()),
                OwnOfficer => Some(a.own.clone()),
                OtherOfficer => Some(a.other.clone()),
            };
            let reply = app
                .call(
                    Method::from_bytes(method.as_bytes()).unwrap(),
                    &path,
                    token.as_deref(),
                    body,
                )
                .await;
            let status = reply.status.as_u16();
            let admitted = allowed.contains(&caller);
            let upgrade_refused = template.ends_with("/ws")
                && status == 400
                && reply.body["error"] == "not_websocket";
            let ok = if admitted {
                (200..300).contains(&status) || upgrade_refused
            } else if caller == Anonymous || allowed == DEVICES_ONLY {
                status == 401
            } else {
                status == 403 || status == 404
            };
            if !ok {
                failures.push(format!(
                    "{method} {template} as {caller:?}: got {status} {}, expected {}",
                    reply.text.chars().take(200).collect::<String>(),
                    if admitted { "2xx" } else { "401/403/404" }
                ));
            }
            if !admitted && caller != Anonymous {
                assert!(
                    reply.body["error"].is_string(),
                    "error body is JSON: {}",
                    reply.text
                );
            }
        }
    }
    assert!(
        failures.is_empty(),
        "access violations:\n{}",
        failures.join("\n")
    );
}

#[tokio::test]
async fn an_officer_sees_only_their_own_caseload_in_listings() {
    let app = spawn_app().await;
    let a = accounts(&app).await;
    let w = world(&app, &a).await;
    let own = app.get("/v1/supervisees", &a.own).await.expect(200);
    let ids: Vec<&str> = own.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![w.supervisee.as_str()]);
    let other = app.get("/v1/supervisees", &a.other).await.expect(200);
    assert_eq!(other.body["items"], json!([]));
    // The other officer cannot see the private zone, only the shared one.
    let zones = app.get("/v1/zones", &a.other).await.expect(200);
    let zone_ids: Vec<&str> = zones.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|z| z["id"].as_str().unwrap())
        .collect();
    assert_eq!(zone_ids, vec![w.shared_zone.as_str()]);
    // A record outside the caseload looks exactly like one that does not exist.
    let foreign = app
        .get(&format!("/v1/supervisees/{}", w.supervisee), &a.other)
        .await
        .expect(404);
    let missing = app
        .get(
            &format!("/v1/supervisees/{}", uuid::Uuid::new_v4()),
            &a.other,
        )
        .await
        .expect(404);
    assert_eq!(foreign.body, missing.body);
}

#[tokio::test]
async fn reassigning_a_supervisee_moves_them_between_caseloads() {
    let app = spawn_app().await;
    let a = accounts(&app).await;
    let w = world(&app, &a).await;
    let other_id = app.get("/v1/auth/me", &a.other).await.expect(200).id();
    app.patch(
        &format!("/v1/supervisees/{}", w.supervisee),
        &a.supervisor,
        json!({ "officer_id": other_id }),
    )
    .await
    .expect(200);
    app.get(&format!("/v1/supervisees/{}", w.supervisee), &a.own)
        .await
        .expect(404);
    let moved = app
        .get(&format!("/v1/supervisees/{}", w.supervisee), &a.other)
        .await
        .expect(200);
    assert_eq!(moved.body["officer_id"], other_id);
}
