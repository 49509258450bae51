//! The officer console's static side, over real HTTP: the page and every asset it loads are
//! served from the binary with the right types and a strict security policy, an unknown asset
//! is the API's JSON 404, and the page carries the DOM contract the browser tests drive.
//! (The page's behaviour is tested in a real browser by `tests/console/`.)

#[path = "support/mod.rs"]
mod support;

use std::collections::BTreeSet;

use reqwest::header::{self, HeaderMap};
use reqwest::StatusCode;

use support::{spawn_app, TestApp};

/// Fetches a path; status, headers and body text.
async fn fetch(app: &TestApp, path: &str) -> (StatusCode, HeaderMap, String) {
    let response = app
        .http
        .get(format!("{}{path}", app.base))
        .send()
        .await
        .expect("request sent");
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.text().await.expect("body read");
    (status, headers, body)
}

fn header(headers: &HeaderMap, name: header::HeaderName) -> &str {
    headers
        .get(&name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("no {name} header in {headers:?}"))
}

fn assert_hardened(path: &str, headers: &HeaderMap) {
    let csp = header(headers, header::CONTENT_SECURITY_POLICY);
    for directive in [
        "default-src 'self'",
        "script-src 'self'",
        "connect-src 'self' ws: wss:",
        "img-src 'self' data:",
        "frame-ancestors 'none'",
    ] {
        assert!(
            csp.contains(directive),
            "{path}: CSP {csp:?} lacks {directive:?}"
        );
    }
    assert!(
        !csp.contains("unsafe-inline"),
        "{path}: CSP allows inline code"
    );
    assert!(!csp.contains("unsafe-eval"), "{path}: CSP allows eval");
    assert_eq!(
        header(headers, header::X_CONTENT_TYPE_OPTIONS),
        "nosniff",
        "{path}"
    );
    assert!(
        !header(headers, header::CACHE_CONTROL).is_empty(),
        "{path}: no Cache-Control"
    );
}

/// The quoted values following `marker` in `text` (`src="` → every src attribute).
fn quoted_after(text: &str, marker: &str, quote: char) -> Vec<String> {
    text.match_indices(marker)
        .filter_map(|(i, _)| {
            let rest = &text[i + marker.len()..];
            rest.find(quote).map(|end| rest[..end].to_owned())
        })
        .collect()
}

fn expected_type(path: &str) -> &'static str {
    match path.rsplit('.').next() {
        Some("js") => "text/javascript",
        Some("css") => "text/css",
        Some("svg") => "image/svg+xml",
        Some("html") => "text/html",
        other => panic!("unexpected asset type {other:?} for {path}"),
    }
}

#[tokio::test]
async fn the_page_is_served_at_both_addresses_with_a_strict_policy() {
    let app = spawn_app().await;
    for path in ["/console", "/console/"] {
        let (status, headers, body) = fetch(&app, path).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        assert!(
            header(&headers, header::CONTENT_TYPE).starts_with("text/html"),
            "{path}"
        );
        assert_hardened(path, &headers);
        assert!(
            body.contains("<title>geoward"),
            "{path}: not the console page"
        );
        assert!(
            !body.contains("<script>") && !body.contains(" style="),
            "{path}: inline script or style (the policy would block it)"
        );
    }
}

#[tokio::test]
async fn every_asset_the_page_loads_is_served_with_its_type_and_unchanged_ones_cost_a_304() {
    let app = spawn_app().await;
    let (_, _, page) = fetch(&app, "/console").await;
    let mut pending: Vec<String> = quoted_after(&page, "src=\"", '"')
        .into_iter()
        .chain(quoted_after(&page, "href=\"", '"'))
        .filter(|p| p.starts_with("/console/assets/"))
        .collect();
    assert!(
        pending.iter().any(|p| p.ends_with("/app.js"))
            && pending.iter().any(|p| p.ends_with(".css")),
        "the page loads no script or style: {pending:?}"
    );
    let mut seen = BTreeSet::new();
    while let Some(path) = pending.pop() {
        if !seen.insert(path.clone()) {
            continue;
        }
        let (status, headers, body) = fetch(&app, &path).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        let content_type = header(&headers, header::CONTENT_TYPE);
        assert!(
            content_type.starts_with(expected_type(&path)),
            "{path}: Content-Type {content_type}"
        );
        assert_hardened(&path, &headers);
        if path.ends_with(".js") {
            // Module imports are relative to the importing module (./x.js).
            for import in quoted_after(&body, "from './", '\'') {
                pending.push(format!("/console/assets/{import}"));
            }
            for sink in [
                "innerHTML",
                "outerHTML",
                "insertAdjacentHTML",
                "document.write",
                "eval(",
            ] {
                assert!(
                    !body.contains(sink),
                    "{path} uses {sink}: API strings must go through textContent"
                );
            }
        }
    }
    assert!(seen.len() >= 5, "too few assets found: {seen:?}");

    let etag = {
        let (_, headers, _) = fetch(&app, "/console/assets/app.js").await;
        header(&headers, header::ETAG).to_owned()
    };
    let response = app
        .http
        .get(format!("{}/console/assets/app.js", app.base))
        .header(header::IF_NONE_MATCH, &etag)
        .send()
        .await
        .expect("request sent");
    assert_eq!(response.status(), StatusCode::NOT_MODIFIED);
}

#[tokio::test]
async fn an_unknown_asset_is_a_json_404() {
    let app = spawn_app().await;
    for path in [
        "/console/assets/nothing.js",
        "/console/assets/index.html",
        "/console/assets/..%2F..%2FCargo.toml",
        "/console/other",
    ] {
        let (status, headers, body) = fetch(&app, path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
        assert!(
            header(&headers, header::CONTENT_TYPE).starts_with("application/json"),
            "{path}"
        );
        let json: serde_json::Value = serde_json::from_str(&body).expect("a JSON error");
        assert_eq!(json["error"], "not_found", "{path}: {body}");
    }
}

#[tokio::test]
async fn the_page_and_its_scripts_carry_the_dom_contract() {
    let app = spawn_app().await;
    let (_, _, page) = fetch(&app, "/console").await;
    for needle in [
        r#"<form id="login-form""#,
        r#"name="username""#,
        r#"name="password""#,
        r#"type="submit""#,
        r#"id="login-error""#,
        r#"id="console""#,
        r#"id="whoami""#,
        r#"id="logout""#,
        r#"id="feed-status" data-state="#,
        r#"id="alerts""#,
        r#"aria-live="#,
        r#"<select id="alert-filter">"#,
        r#"<option value="active" selected>"#,
        r#"<option value="all">"#,
        r#"<dialog id="resolve-dialog""#,
        r#"name="note""#,
        r#"data-action="confirm-resolve""#,
        r#"id="resolve-error""#,
        r#"<svg id="map""#,
        r#"<select id="track-supervisee">"#,
        r#"id="track-from" type="datetime-local""#,
        r#"id="track-to" type="datetime-local""#,
        r#"id="track-load""#,
        r#"id="track-slider" type="range""#,
        r#"id="track-status""#,
    ] {
        assert!(page.contains(needle), "the page lacks {needle}");
    }
    let mut scripts = String::new();
    for name in ["alerts.js", "map.js", "feed.js", "track.js"] {
        let (status, _, body) = fetch(&app, &format!("/console/assets/{name}")).await;
        assert_eq!(status, StatusCode::OK, "{name}");
        scripts.push_str(&body);
    }
    for needle in [
        "'data-alert-id'",
        "'data-kind'",
        "'data-severity'",
        "'data-status'",
        "'data-action': 'acknowledge'",
        "'data-action': 'resolve'",
        "class: `zone zone-",
        "'data-zone-id'",
        "'data-zone-kind'",
        "class: 'position', 'data-supervisee-id'",
        "class: 'track'",
        "class: 'track-cursor'",
        "'/v1/auth/ws-ticket'",
        "/v1/officer/ws?",
        "type: 'subscribe', positions: true",
    ] {
        assert!(scripts.contains(needle), "the scripts lack {needle}");
    }
}
