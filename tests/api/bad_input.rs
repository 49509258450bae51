//! Bad input anywhere gets a 4xx with a JSON error body: never a 500, a panic or plain text.

use reqwest::Method;
use serde_json::json;

use crate::support::spawn_app;

#[tokio::test]
async fn malformed_json_wrong_types_and_unknown_fields_get_400_json() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let malformed = app
        .http
        .post(format!("{}/v1/devices", app.base))
        .bearer_auth(&admin)
        .header("content-type", "application/json")
        .body("{\"serial\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), 400);
    let body: serde_json::Value = malformed.json().await.unwrap();
    assert_eq!(body["error"], "malformed_json");

    let wrong_type = app
        .post("/v1/devices", &admin, json!({"serial": 17}))
        .await
        .expect(400);
    assert_eq!(wrong_type.body["error"], "invalid_body");
    assert!(wrong_type.body["message"]
        .as_str()
        .unwrap()
        .contains("serial"));

    let unknown = app
        .post(
            "/v1/devices",
            &admin,
            json!({"serial": "A-1", "colour": "red"}),
        )
        .await
        .expect(400);
    assert!(unknown.body["message"].as_str().unwrap().contains("colour"));

    let missing = app
        .post("/v1/officers", &admin, json!({"username": "abc"}))
        .await
        .expect(400);
    assert_eq!(missing.body["error"], "invalid_body");
}

#[tokio::test]
async fn a_body_that_is_not_json_gets_415_and_an_oversized_body_gets_413() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let plain = app
        .http
        .post(format!("{}/v1/devices", app.base))
        .bearer_auth(&admin)
        .body("serial=1")
        .send()
        .await
        .unwrap();
    assert_eq!(plain.status(), 415);
    let body: serde_json::Value = plain.json().await.unwrap();
    assert_eq!(body["error"], "unsupported_media_type");

    let huge = "x".repeat(app.config.http.max_body_bytes + 10);
    let oversized = app
        .http
        .post(format!("{}/v1/devices", app.base))
        .bearer_auth(&admin)
        .header("content-type", "application/json")
        .body(format!("{{\"serial\": \"{huge}\"}}"))
        .send()
        .await
        .unwrap();
    assert_eq!(oversized.status(), 413);
    let body: serde_json::Value = oversized.json().await.unwrap();
    assert_eq!(body["error"], "payload_too_large");
}

#[tokio::test]
async fn unknown_routes_bad_ids_bad_queries_and_wrong_methods_get_json_errors() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let nowhere = app.get("/v1/nowhere", &admin).await.expect(404);
    assert_eq!(nowhere.body["error"], "not_found");
    app.get("/v1/supervisees/not-an-id", &admin)
        .await
        .expect(404);
    let query = app.get("/v1/supervisees?limit=0", &admin).await.expect(400);
    assert_eq!(query.body["error"], "invalid_query");
    let typo = app.get("/v1/supervisees?limt=5", &admin).await.expect(400);
    assert_eq!(typo.body["error"], "invalid_query");
    let cursor = app
        .get("/v1/supervisees?after=xyz", &admin)
        .await
        .expect(400);
    assert_eq!(cursor.body["error"], "invalid_query");
    let wrong = app
        .call(Method::DELETE, "/v1/officers", Some(&admin), None)
        .await
        .expect(405);
    assert_eq!(wrong.body["error"], "method_not_allowed");
}

#[tokio::test]
async fn hostile_geometry_is_refused_without_harm() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let (_, officer) = app.account(&admin, "officer").await;
    let deep = (0..200).fold(json!([114.0, 33.0]), |inner, _| json!([inner]));
    for geometry in [
        json!("Polygon"),
        json!({"type": "Polygon", "coordinates": deep}),
        json!({"type": "Polygon", "coordinates": [[["a", "b"]]]}),
        json!({"type": "Polygon"}),
        json!({"type": "Circle", "coordinates": [114.0], "radius_m": 10}),
        json!({"type": "Circle", "coordinates": [114.0, 33.0], "radius_m": "far"}),
    ] {
        let reply = app
            .post(
                "/v1/zones",
                &officer,
                json!({"name": "Z", "kind": "exclusion", "geometry": geometry}),
            )
            .await;
        assert!(
            reply.status.is_client_error(),
            "{geometry}: {} {}",
            reply.status,
            reply.text
        );
        assert!(reply.body["error"].is_string(), "{}", reply.text);
    }
    app.get("/healthz", &officer).await.expect(200);
}
