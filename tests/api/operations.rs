//! Health, readiness, metrics and the OpenAPI description.

use std::collections::BTreeSet;

use reqwest::Method;

use crate::support::spawn_app;

#[tokio::test]
async fn health_and_readiness_answer_when_the_stores_are_up() {
    let app = spawn_app().await;
    let health = app
        .call(Method::GET, "/healthz", None, None)
        .await
        .expect(200);
    assert_eq!(health.body["status"], "ok");
    let ready = app
        .call(Method::GET, "/readyz", None, None)
        .await
        .expect(200);
    assert_eq!(ready.body["status"], "ready");
    assert_eq!(ready.body["postgres"], "ok");
    assert_eq!(ready.body["redis"], "ok");
}

#[tokio::test]
async fn metrics_are_prometheus_text_with_request_counts() {
    let app = spawn_app().await;
    app.call(Method::GET, "/healthz", None, None)
        .await
        .expect(200);
    let metrics = app
        .call(Method::GET, "/metrics", None, None)
        .await
        .expect(200);
    assert!(
        metrics.text.contains(
            "geoward_http_requests_total{method=\"GET\",route=\"/healthz\",status=\"2xx\"} 1"
        ),
        "{}",
        metrics.text
    );
    assert!(metrics
        .text
        .contains("# TYPE geoward_http_request_duration_seconds histogram"));
}

#[tokio::test]
async fn the_openapi_document_describes_every_route() {
    let app = spawn_app().await;
    let doc = app
        .call(Method::GET, "/openapi.json", None, None)
        .await
        .expect(200);
    assert_eq!(doc.body["openapi"], "3.1.0");
    let mut missing = BTreeSet::new();
    for spec in geoward::api::routes::specs() {
        let operation = &doc.body["paths"][spec.path][spec.method.as_str().to_lowercase()];
        if !operation.is_object() {
            missing.insert(format!("{} {}", spec.method, spec.path));
        }
    }
    assert!(
        missing.is_empty(),
        "routes missing from /openapi.json: {missing:?}"
    );
    // Every schema referenced is defined.
    let text = doc.text.clone();
    for reference in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
        let name = reference.split('"').next().unwrap();
        assert!(
            doc.body["components"]["schemas"][name].is_object(),
            "schema {name} is referenced but not defined"
        );
    }
    assert!(doc.body["paths"]["/v1/zones"]["post"]["requestBody"].is_object());
}

#[tokio::test]
async fn shutdown_stops_accepting_and_lets_the_server_exit() {
    let mut app = spawn_app().await;
    app.call(Method::GET, "/healthz", None, None)
        .await
        .expect(200);
    app.stop().await;
    let after = reqwest::Client::new()
        .get(format!("{}/healthz", app.base))
        .timeout(std::time::Duration::from_secs(2))
        .send()
        .await;
    assert!(after.is_err(), "no longer accepting connections");
}
