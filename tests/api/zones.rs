//! Drawing zones: validation errors by name, datum conversion, attachment.

use serde_json::{json, Value};

use crate::support::{spawn_app, TestApp};
use geoward::domain::datum::{wgs84_to_bd09, wgs84_to_gcj02};

async fn officer(app: &TestApp) -> (String, String, String) {
    let admin = app.admin_token().await;
    let (id, token) = app.account(&admin, "officer").await;
    (admin, id, token)
}

async fn draw(app: &TestApp, token: &str, geometry: Value, datum: &str) -> crate::support::Reply {
    app.post(
        "/v1/zones",
        token,
        json!({ "name": "Zone", "kind": "exclusion", "geometry": geometry, "datum": datum }),
    )
    .await
}

#[tokio::test]
async fn each_broken_zone_gets_a_422_naming_the_problem() {
    let app = spawn_app().await;
    let (_, _, token) = officer(&app).await;
    let cases = [
        (
            "open ring",
            json!({"type": "Polygon", "coordinates": [[[114.0, 33.0], [114.1, 33.0], [114.1, 33.1], [114.0, 33.1]]]}),
            "wgs84",
            "ring_not_closed",
        ),
        (
            "latitude out of range",
            json!({"type": "Polygon", "coordinates": [[[114.0, 33.0], [114.1, 33.0], [114.1, 91.2], [114.0, 33.0]]]}),
            "wgs84",
            "coordinate_out_of_range",
        ),
        (
            "bow tie",
            json!({"type": "Polygon", "coordinates": [[[114.0, 33.0], [114.1, 33.1], [114.1, 33.0], [114.0, 33.1], [114.0, 33.0]]]}),
            "wgs84",
            "self_intersection",
        ),
        (
            "zero radius",
            json!({"type": "Circle", "coordinates": [114.0, 33.0], "radius_m": 0}),
            "wgs84",
            "radius_not_positive",
        ),
        (
            "negative radius",
            json!({"type": "Circle", "coordinates": [114.0, 33.0], "radius_m": -5}),
            "wgs84",
            "radius_not_positive",
        ),
        (
            "unknown datum",
            json!({"type": "Circle", "coordinates": [114.0, 33.0], "radius_m": 50}),
            "osgb36",
            "unknown_datum",
        ),
        (
            "a point is no zone",
            json!({"type": "Point", "coordinates": [114.0, 33.0]}),
            "wgs84",
            "unknown_geometry_type",
        ),
        (
            "hole outside shell",
            json!({"type": "Polygon", "coordinates": [
            [[114.0, 33.0], [114.1, 33.0], [114.1, 33.1], [114.0, 33.1], [114.0, 33.0]],
            [[115.0, 33.0], [115.01, 33.0], [115.01, 33.01], [115.0, 33.0]]]}),
            "wgs84",
            "hole_outside_shell",
        ),
    ];
    for (what, geometry, datum, code) in cases {
        let reply = draw(&app, &token, geometry, datum).await;
        assert_eq!(reply.status.as_u16(), 422, "{what}: {}", reply.text);
        assert_eq!(reply.body["error"], code, "{what}: {}", reply.text);
        assert!(!reply.body["message"].as_str().unwrap().is_empty());
    }
}

#[tokio::test]
async fn a_gcj02_zone_is_stored_in_wgs84_matching_a_published_coordinate_pair() {
    let app = spawn_app().await;
    let (_, _, token) = officer(&app).await;
    // Published pair: WGS-84 (116.404, 39.915) is GCJ-02 (116.41024449916938, 39.91640428150164).
    let reply = draw(&app, &token, json!({"type": "Circle", "coordinates": [116.41024449916938, 39.91640428150164], "radius_m": 100}), "gcj02")
        .await
        .expect(201);
    let center = &reply.body["geometry"]["coordinates"];
    assert!(
        (center[0].as_f64().unwrap() - 116.404).abs() < 1e-7,
        "{center}"
    );
    assert!(
        (center[1].as_f64().unwrap() - 39.915).abs() < 1e-7,
        "{center}"
    );
    assert_eq!(reply.body["datum"], "gcj02");
    assert_eq!(
        reply.body["source_geometry"]["coordinates"][0],
        116.41024449916938
    );
}

#[tokio::test]
async fn a_bd09_zone_is_stored_in_wgs84() {
    let app = spawn_app().await;
    let (_, _, token) = officer(&app).await;
    // Published pair: GCJ-02 (116.404, 39.915) is BD-09 (116.41036949371029, 39.92133699351021);
    // its WGS-84 point is about (116.39775550, 39.91359572).
    let reply = draw(&app, &token, json!({"type": "Circle", "coordinates": [116.41036949371029, 39.92133699351021], "radius_m": 100}), "bd09")
        .await
        .expect(201);
    let lon = reply.body["geometry"]["coordinates"][0].as_f64().unwrap();
    let lat = reply.body["geometry"]["coordinates"][1].as_f64().unwrap();
    assert!(
        (lon - 116.3977555).abs() < 2e-5 && (lat - 39.9135957).abs() < 2e-5,
        "{lon} {lat}"
    );
    let (back_lon, back_lat) = wgs84_to_bd09(lon, lat);
    assert!(
        (back_lon - 116.41036949371029).abs() < 1e-6 && (back_lat - 39.92133699351021).abs() < 1e-6
    );
}

#[tokio::test]
async fn a_polygon_drawn_on_amap_near_zhoukou_moves_by_hundreds_of_metres() {
    let app = spawn_app().await;
    let (_, _, token) = officer(&app).await;
    let (glon, glat) = wgs84_to_gcj02(114.65, 33.62);
    let reply = draw(&app, &token, TestApp::square(glon, glat, 0.001), "gcj02")
        .await
        .expect(201);
    let corner = &reply.body["geometry"]["coordinates"][0][0];
    let (lon, lat) = (corner[0].as_f64().unwrap(), corner[1].as_f64().unwrap());
    assert!(
        (lon - (114.65 - 0.001)).abs() < 2e-5 && (lat - (33.62 - 0.001)).abs() < 2e-5,
        "{corner}"
    );
}

#[tokio::test]
async fn only_exclusion_zones_take_a_buffer_and_only_supervisors_share_zones() {
    let app = spawn_app().await;
    let (admin, _, token) = officer(&app).await;
    let circle = json!({"type": "Circle", "coordinates": [114.6, 33.6], "radius_m": 100});
    let inclusion = app
        .post(
            "/v1/zones",
            &token,
            json!({"name": "Home", "kind": "inclusion", "geometry": circle, "buffer_m": 50}),
        )
        .await
        .expect(422);
    assert_eq!(inclusion.body["error"], "invalid_buffer");
    let kind = app
        .post(
            "/v1/zones",
            &token,
            json!({"name": "Home", "kind": "inside", "geometry": circle}),
        )
        .await
        .expect(422);
    assert_eq!(kind.body["error"], "invalid_kind");
    app.post(
        "/v1/zones",
        &token,
        json!({"name": "Schools", "kind": "exclusion", "geometry": circle, "shared": true}),
    )
    .await
    .expect(403);
    let (_, supervisor) = app.account(&admin, "supervisor").await;
    let shared = app.post("/v1/zones", &supervisor, json!({"name": "Schools", "kind": "exclusion", "geometry": circle, "shared": true, "buffer_m": 30})).await.expect(201);
    assert_eq!(shared.body["shared"], true);
    assert_eq!(shared.body["confirm_fixes"], 2);
    assert_eq!(shared.body["datum"], "wgs84");
}

#[tokio::test]
async fn a_schedule_is_validated_and_kept() {
    let app = spawn_app().await;
    let (_, _, token) = officer(&app).await;
    let circle = json!({"type": "Circle", "coordinates": [114.6, 33.6], "radius_m": 100});
    let good = app.post("/v1/zones", &token, json!({"name": "Curfew", "kind": "inclusion", "geometry": circle,
        "schedule": [{"days": ["mon", "tue", "wed", "thu", "fri"], "start": "22:00", "end": "06:00"}]})).await.expect(201);
    assert_eq!(good.body["schedule"][0]["start"], "22:00");
    assert_eq!(good.body["schedule"][0]["days"][0], "mon");
    let bad_day = app
        .post(
            "/v1/zones",
            &token,
            json!({"name": "Curfew", "kind": "inclusion", "geometry": circle,
        "schedule": [{"days": ["funday"], "start": "22:00", "end": "06:00"}]}),
        )
        .await
        .expect(422);
    assert_eq!(bad_day.body["error"], "unknown_day");
    let bad_time = app
        .post(
            "/v1/zones",
            &token,
            json!({"name": "Curfew", "kind": "inclusion", "geometry": circle,
        "schedule": [{"days": ["mon"], "start": "25:00", "end": "06:00"}]}),
        )
        .await
        .expect(422);
    assert_eq!(bad_time.body["error"], "invalid_time");
}

#[tokio::test]
async fn one_zone_serves_many_supervisees_and_detaching_removes_only_one_link() {
    let app = spawn_app().await;
    let (admin, officer_id, token) = officer(&app).await;
    let first = app.supervisee(&admin, &officer_id).await;
    let second = app.supervisee(&admin, &officer_id).await;
    let zone = draw(
        &app,
        &token,
        json!({"type": "Circle", "coordinates": [114.6, 33.6], "radius_m": 200}),
        "wgs84",
    )
    .await
    .expect(201)
    .id();
    for s in [&first, &second] {
        app.put(&format!("/v1/supervisees/{s}/zones/{zone}"), &token, None)
            .await
            .expect(204);
    }
    // Attaching twice changes nothing.
    app.put(
        &format!("/v1/supervisees/{first}/zones/{zone}"),
        &token,
        None,
    )
    .await
    .expect(204);
    app.delete(&format!("/v1/supervisees/{first}/zones/{zone}"), &token)
        .await
        .expect(204);
    app.delete(&format!("/v1/supervisees/{first}/zones/{zone}"), &token)
        .await
        .expect(404);
    let first_zones = app
        .get(&format!("/v1/supervisees/{first}/zones"), &token)
        .await
        .expect(200);
    assert_eq!(first_zones.body["items"], json!([]));
    let second_zones = app
        .get(&format!("/v1/supervisees/{second}/zones"), &token)
        .await
        .expect(200);
    assert_eq!(second_zones.body["items"][0]["id"], zone);
}

#[tokio::test]
async fn classify_answers_inside_outside_or_uncertain_with_the_distance_to_the_border() {
    let app = spawn_app().await;
    let (_, _, token) = officer(&app).await;
    // A 200 m circle; 0.001 degrees of latitude is about 111 m.
    let zone = draw(
        &app,
        &token,
        json!({"type": "Circle", "coordinates": [114.65, 33.62], "radius_m": 200.0}),
        "wgs84",
    )
    .await
    .expect(201)
    .id();
    let path = format!("/v1/zones/{zone}/classify");
    let centre = app
        .post(
            &path,
            &token,
            json!({"lat": 33.62, "lon": 114.65, "acc": 10.0}),
        )
        .await
        .expect(200);
    assert_eq!(centre.body["class"], "inside");
    assert!(
        (centre.body["distance_m"].as_f64().unwrap() - 200.0).abs() < 1.0,
        "{}",
        centre.text
    );
    let far = app
        .post(
            &path,
            &token,
            json!({"lat": 33.63, "lon": 114.65, "acc": 10.0}),
        )
        .await
        .expect(200);
    assert_eq!(far.body["class"], "outside");
    // ~1109 m from the centre, ~909 m from the border.
    assert!(
        (far.body["distance_m"].as_f64().unwrap() - 909.0).abs() < 5.0,
        "{}",
        far.text
    );
    // 20 m inside the border with 50 m accuracy: the circle straddles the border.
    let near = app
        .post(
            &path,
            &token,
            json!({"lat": 33.62 + 180.0 / 111_000.0, "lon": 114.65, "acc": 50.0}),
        )
        .await
        .expect(200);
    assert_eq!(near.body["class"], "uncertain");
    let same_point_precise = app
        .post(
            &path,
            &token,
            json!({"lat": 33.62 + 180.0 / 111_000.0, "lon": 114.65, "acc": 5.0}),
        )
        .await
        .expect(200);
    assert_eq!(same_point_precise.body["class"], "inside");
    let bad = app
        .post(&path, &token, json!({"lat": 95.0, "lon": 114.65}))
        .await
        .expect(422);
    assert_eq!(bad.body["error"], "invalid_fix");
    app.post(
        &format!("/v1/zones/{}/classify", uuid::Uuid::new_v4()),
        &token,
        json!({"lat": 33.6, "lon": 114.6}),
    )
    .await
    .expect(404);
}

#[tokio::test]
async fn classify_uses_the_exclusion_buffer_and_a_polygon_border() {
    let app = spawn_app().await;
    let (_, _, token) = officer(&app).await;
    let square = TestApp::square(114.65, 33.62, 0.001);
    let plain = draw(&app, &token, square.clone(), "wgs84")
        .await
        .expect(201)
        .id();
    let buffered = app
        .post(
            "/v1/zones",
            &token,
            json!({"name": "School", "kind": "exclusion", "geometry": square, "buffer_m": 50.0}),
        )
        .await
        .expect(201)
        .id();
    // 30 m east of the square's east edge (0.001 deg of longitude at 33.62 N is ~92.7 m).
    let lon = 114.651 + 30.0 / 92_700.0;
    let point = json!({"lat": 33.62, "lon": lon, "acc": 5.0});
    let outside = app
        .post(
            &format!("/v1/zones/{plain}/classify"),
            &token,
            point.clone(),
        )
        .await
        .expect(200);
    assert_eq!(outside.body["class"], "outside");
    assert!(
        (outside.body["distance_m"].as_f64().unwrap() - 30.0).abs() < 1.0,
        "{}",
        outside.text
    );
    let inside_buffer = app
        .post(&format!("/v1/zones/{buffered}/classify"), &token, point)
        .await
        .expect(200);
    assert_eq!(inside_buffer.body["class"], "inside");
}
