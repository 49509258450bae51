//! Health, readiness, metrics and the OpenAPI description.

use std::collections::BTreeSet;

use reqwest::Method;

use geoward::app::{Application, StartError};

use crate::support::{spawn_app, spawn_app_with, test_config};

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

/// The GET /healthz requests counted by the node that answered this /metrics reply.
fn healthz_served(metrics: &str) -> u64 {
    metrics
        .lines()
        .find_map(|line| {
            line.strip_prefix(
                "geoward_http_requests_total{method=\"GET\",route=\"/healthz\",status=\"2xx\"} ",
            )
        })
        .map_or(0, |count| count.trim().parse().expect("a counter value"))
}

#[tokio::test]
async fn nodes_with_listen_reuse_port_share_one_port_and_both_accept() {
    const CHECKS: u64 = 120;
    let (mut config, database) = test_config().await;
    config.listen_reuse_port = true;
    let mut first = spawn_app_with(config, database).await;
    let addr = first.addr;

    // A node that does not ask to share the address cannot bind it; the error names it.
    let mut alone = first.config.clone();
    alone.listen = addr.to_string();
    alone.listen_reuse_port = false;
    let err = match Application::build(alone).await {
        Ok(_) => panic!("a second socket without SO_REUSEPORT bound {addr}"),
        Err(err) => err,
    };
    let StartError::Bind {
        addr: failed,
        reuse_port,
        source,
    } = &err
    else {
        panic!("expected a bind error, got {err:?}");
    };
    assert_eq!(*failed, addr);
    assert!(!reuse_port);
    assert_eq!(source.kind(), std::io::ErrorKind::AddrInUse);
    let message = err.to_string();
    assert!(message.contains(&addr.to_string()), "{message}");
    assert!(message.contains("listen_reuse_port"), "{message}");

    // A second node that shares it binds the very same address.
    let mut shared = first.config.clone();
    shared.listen = addr.to_string();
    let mut second = first.node_with(shared).await;
    assert_eq!(second.addr, addr);

    // Every request on its own connection: the kernel spreads the connections over both.
    let fresh = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .unwrap();
    let get = |path: &'static str| {
        let fresh = fresh.clone();
        async move {
            let response = fresh
                .get(format!("http://{addr}{path}"))
                .header("connection", "close")
                .send()
                .await
                .unwrap_or_else(|e| panic!("GET {path} on the shared port: {e}"));
            assert_eq!(response.status(), 200, "GET {path}");
            response.text().await.unwrap()
        }
    };
    for _ in 0..CHECKS {
        get("/healthz").await;
    }
    // Each node counts only the requests it served itself: a node that served some but not
    // all of them proves the other served the rest.
    let mut seen = Vec::new();
    for _ in 0..20 {
        let served = healthz_served(&get("/metrics").await);
        seen.push(served);
        if served > 0 && served < CHECKS {
            break;
        }
    }
    assert!(
        seen.iter().any(|&served| served > 0 && served < CHECKS),
        "both nodes should have served some of {CHECKS} health checks; nodes answering \
         /metrics had served {seen:?}"
    );

    // The first node leaves: the second alone now accepts every connection on the port.
    first.stop().await;
    for _ in 0..CHECKS {
        get("/healthz").await;
    }
    let served = healthz_served(&get("/metrics").await);
    assert!(
        served >= CHECKS,
        "the remaining node served {served} health checks, fewer than the {CHECKS} sent to it"
    );
    second.stop().await;
}
