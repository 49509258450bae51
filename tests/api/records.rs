//! Supervisees, devices, monitoring orders and approved leave.

use chrono::{Duration, Utc};
use serde_json::json;

use crate::support::{spawn_app, TestApp};

struct Setup {
    app: TestApp,
    admin: String,
    officer_id: String,
    officer: String,
    supervisee: String,
}

async fn setup() -> Setup {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let (officer_id, officer) = app.account(&admin, "officer").await;
    let supervisee = app.supervisee(&admin, &officer_id).await;
    Setup {
        app,
        admin,
        officer_id,
        officer,
        supervisee,
    }
}

#[tokio::test]
async fn a_new_supervisee_has_the_fields_asked_for_and_is_not_yet_under_supervision() {
    let s = setup().await;
    let reply = s
        .app
        .get(&format!("/v1/supervisees/{}", s.supervisee), &s.officer)
        .await
        .expect(200);
    assert_eq!(reply.body["name"], "Zhang San");
    assert_eq!(reply.body["officer_id"], s.officer_id);
    assert_eq!(reply.body["timezone"], "Asia/Shanghai");
    assert_eq!(reply.body["lost_contact_after_s"], 600);
    assert_eq!(reply.body["under_supervision"], false);
    assert_eq!(reply.body["device_id"], json!(null));
}

#[tokio::test]
async fn a_supervisee_needs_a_real_time_zone_and_an_officer_account() {
    let s = setup().await;
    let bad_tz = s
        .app
        .post(
            "/v1/supervisees",
            &s.admin,
            json!({"name": "A", "officer_id": s.officer_id, "timezone": "Asia/Atlantis"}),
        )
        .await
        .expect(422);
    assert_eq!(bad_tz.body["error"], "invalid_timezone");
    let admin_id = s.app.get("/v1/auth/me", &s.admin).await.id();
    let not_officer = s
        .app
        .post(
            "/v1/supervisees",
            &s.admin,
            json!({"name": "A", "officer_id": admin_id, "timezone": "Asia/Shanghai"}),
        )
        .await
        .expect(422);
    assert_eq!(not_officer.body["error"], "invalid_officer");
    let too_short = s.app.post("/v1/supervisees", &s.admin,
        json!({"name": "A", "officer_id": s.officer_id, "timezone": "Asia/Shanghai", "lost_contact_after_s": 5})).await.expect(422);
    assert_eq!(too_short.body["error"], "invalid_lost_contact_after_s");
}

#[tokio::test]
async fn a_device_token_is_shown_once_and_stored_hashed() {
    let s = setup().await;
    let reply = s
        .app
        .post("/v1/devices", &s.admin, json!({"serial": "ZK-0001"}))
        .await
        .expect(201);
    let token = reply.body["token"].as_str().unwrap();
    assert!(token.starts_with("gwd_"));
    let shown = s
        .app
        .get(&format!("/v1/devices/{}", reply.id()), &s.admin)
        .await
        .expect(200);
    assert!(shown.body.get("token").is_none());
    let (stored,): (Vec<u8>,) = sqlx::query_as("select token_hash from devices")
        .fetch_one(&s.app.db)
        .await
        .unwrap();
    assert_eq!(stored, geoward::credentials::hash_token(token));
    let duplicate = s
        .app
        .post("/v1/devices", &s.admin, json!({"serial": "ZK-0001"}))
        .await
        .expect(409);
    assert_eq!(duplicate.body["error"], "conflict");
}

#[tokio::test]
async fn one_device_per_supervisee_and_one_supervisee_per_device() {
    let s = setup().await;
    let other = s.app.supervisee(&s.admin, &s.officer_id).await;
    let d1 = s
        .app
        .post("/v1/devices", &s.admin, json!({"serial": "ZK-1"}))
        .await
        .expect(201)
        .id();
    let d2 = s
        .app
        .post("/v1/devices", &s.admin, json!({"serial": "ZK-2"}))
        .await
        .expect(201)
        .id();
    let path = format!("/v1/supervisees/{}/device", s.supervisee);
    s.app
        .put(&path, &s.admin, Some(json!({"device_id": d1})))
        .await
        .expect(200);
    // The same device cannot be worn by a second person.
    let taken = s
        .app
        .put(
            &format!("/v1/supervisees/{other}/device"),
            &s.admin,
            Some(json!({"device_id": d1})),
        )
        .await
        .expect(409);
    assert!(taken.body["message"]
        .as_str()
        .unwrap()
        .contains("another supervisee"));
    // Assigning a second device replaces the first.
    let swapped = s
        .app
        .put(&path, &s.admin, Some(json!({"device_id": d2})))
        .await
        .expect(200);
    assert_eq!(swapped.body["device_id"], d2);
    let d1_view = s
        .app
        .get(&format!("/v1/devices/{d1}"), &s.admin)
        .await
        .expect(200);
    assert_eq!(d1_view.body["supervisee_id"], json!(null));
    s.app
        .put(
            &format!("/v1/supervisees/{other}/device"),
            &s.admin,
            Some(json!({"device_id": d1})),
        )
        .await
        .expect(200);
}

#[tokio::test]
async fn a_revoked_device_is_unassigned_and_cannot_be_assigned_again() {
    let s = setup().await;
    let d = s
        .app
        .post("/v1/devices", &s.admin, json!({"serial": "ZK-9"}))
        .await
        .expect(201)
        .id();
    let path = format!("/v1/supervisees/{}/device", s.supervisee);
    s.app
        .put(&path, &s.admin, Some(json!({"device_id": d})))
        .await
        .expect(200);
    let revoked = s
        .app
        .post(&format!("/v1/devices/{d}/revoke"), &s.admin, json!({}))
        .await
        .expect(200);
    assert!(revoked.body["revoked_at"].is_string());
    assert_eq!(revoked.body["supervisee_id"], json!(null));
    s.app
        .put(&path, &s.admin, Some(json!({"device_id": d})))
        .await
        .expect(409);
}

#[tokio::test]
async fn an_order_of_up_to_92_days_is_accepted_and_puts_the_person_under_supervision() {
    let s = setup().await;
    let start = Utc::now() - Duration::hours(1);
    let reply = s.app.post(&format!("/v1/supervisees/{}/orders", s.supervisee), &s.officer, json!({
        "basis": "prohibition_order_violation", "starts_at": start, "ends_at": start + Duration::days(92),
        "approved_by": "Head of Chuanhui judicial office"
    })).await.expect(201);
    assert_eq!(reply.body["active"], true);
    let person = s
        .app
        .get(&format!("/v1/supervisees/{}", s.supervisee), &s.officer)
        .await
        .expect(200);
    assert_eq!(person.body["under_supervision"], true);
}

#[tokio::test]
async fn an_order_longer_than_the_maximum_is_refused_and_a_renewal_is_a_new_order() {
    let s = setup().await;
    let path = format!("/v1/supervisees/{}/orders", s.supervisee);
    let start = Utc::now();
    let too_long = s.app.post(&path, &s.officer, json!({
        "basis": "pending_revocation", "starts_at": start, "ends_at": start + Duration::days(93), "approved_by": "Head"
    })).await.expect(422);
    assert_eq!(too_long.body["error"], "invalid_period");
    assert!(too_long.body["message"]
        .as_str()
        .unwrap()
        .contains("92 days"));
    let first_end = start + Duration::days(92);
    s.app.post(&path, &s.officer, json!({
        "basis": "pending_revocation", "starts_at": start, "ends_at": first_end, "approved_by": "Head"
    })).await.expect(201);
    let overlapping = s.app.post(&path, &s.officer, json!({
        "basis": "pending_revocation", "starts_at": first_end - Duration::days(1), "ends_at": first_end + Duration::days(60), "approved_by": "Head"
    })).await.expect(409);
    assert!(overlapping.body["message"]
        .as_str()
        .unwrap()
        .contains("overlaps"));
    s.app.post(&path, &s.officer, json!({
        "basis": "pending_revocation", "starts_at": first_end, "ends_at": first_end + Duration::days(92), "approved_by": "Head"
    })).await.expect(201);
    let orders = s.app.get(&path, &s.officer).await.expect(200);
    assert_eq!(orders.body["items"].as_array().unwrap().len(), 2);
    let unknown_basis = s.app.post(&path, &s.officer, json!({
        "basis": "because", "starts_at": start, "ends_at": start + Duration::days(1), "approved_by": "Head"
    })).await.expect(422);
    assert_eq!(unknown_basis.body["error"], "invalid_basis");
}

#[tokio::test]
async fn leaves_of_one_supervisee_may_not_overlap_but_may_touch() {
    let s = setup().await;
    let path = format!("/v1/supervisees/{}/leaves", s.supervisee);
    let start = Utc::now() + Duration::days(1);
    let first = s.app.post(&path, &s.officer, json!({
        "starts_at": start, "ends_at": start + Duration::days(2), "reason": "funeral in Luoyang"
    })).await.expect(201);
    assert_eq!(first.body["status"], "approved");
    let overlap = s.app.post(&path, &s.officer, json!({
        "starts_at": start + Duration::days(1), "ends_at": start + Duration::days(3), "reason": "x"
    })).await.expect(409);
    assert!(overlap.body["message"]
        .as_str()
        .unwrap()
        .contains("overlaps"));
    s.app.post(&path, &s.officer, json!({
        "starts_at": start + Duration::days(2), "ends_at": start + Duration::days(3), "reason": "onward trip"
    })).await.expect(201);
    // Once cancelled, a leave no longer blocks its window.
    s.app
        .delete(&format!("{path}/{}", first.id()), &s.officer)
        .await
        .expect(200);
    s.app
        .post(
            &path,
            &s.officer,
            json!({
                "starts_at": start, "ends_at": start + Duration::days(1), "reason": "rebooked"
            }),
        )
        .await
        .expect(201);
}

#[tokio::test]
async fn a_leave_in_the_past_reversed_or_too_long_is_refused() {
    let s = setup().await;
    let path = format!("/v1/supervisees/{}/leaves", s.supervisee);
    let now = Utc::now();
    for (starts, ends) in [
        (now - Duration::days(3), now - Duration::days(2)),
        (now + Duration::days(2), now + Duration::days(1)),
        (now, now + Duration::days(32)),
    ] {
        let reply = s
            .app
            .post(
                &path,
                &s.officer,
                json!({"starts_at": starts, "ends_at": ends, "reason": "trip"}),
            )
            .await
            .expect(422);
        assert_eq!(reply.body["error"], "invalid_period");
    }
}

#[tokio::test]
async fn a_leave_destination_is_validated_and_stored_in_wgs84() {
    let s = setup().await;
    let path = format!("/v1/supervisees/{}/leaves", s.supervisee);
    let start = Utc::now() + Duration::days(1);
    let reply = s.app.post(&path, &s.officer, json!({
        "starts_at": start, "ends_at": start + Duration::days(1), "reason": "hospital",
        "destination": {"type": "Circle", "coordinates": [113.65, 34.75], "radius_m": 2000.0}, "datum": "gcj02"
    })).await.expect(201);
    let lon = reply.body["destination"]["coordinates"][0]
        .as_f64()
        .unwrap();
    assert!((lon - 113.65).abs() > 1e-4, "converted from GCJ-02");
    let bad = s.app.post(&path, &s.officer, json!({
        "starts_at": start + Duration::days(5), "ends_at": start + Duration::days(6), "reason": "x",
        "destination": {"type": "Circle", "coordinates": [113.65, 34.75], "radius_m": 0}
    })).await.expect(422);
    assert_eq!(bad.body["error"], "radius_not_positive");
}
