//! The dashboards and alerting rules of `dashboards/` against a running geoward: every PromQL
//! expression names only metrics the binary exports (or Prometheus's own, such as `up`), every
//! dashboard is Grafana JSON that imports (schema version, title, uid, panels with targets),
//! and the catalogue `docs/metrics.md` lists exactly the metrics the binary exports. Also the
//! supervision gauges, followed through one alert's life.

#[path = "support/mod.rs"]
mod support;

#[path = "dashboards/files.rs"]
mod files;
#[path = "dashboards/promql.rs"]
mod promql;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::json;

use files::{dashboard_exprs, read, repo, rule_exprs};
use promql::{metric_names, PROMETHEUS_BUILTINS};
use support::monitored::{circle, confirm_fixes, exclusion_zone};
use support::{spawn_app, TestApp};

// ---------------------------------------------------------------------------------------------
// What the binary exports
// ---------------------------------------------------------------------------------------------

/// Families (`# TYPE` lines, with their type) and sample names of a text exposition.
struct Exposition {
    families: BTreeMap<String, String>,
    samples: BTreeSet<String>,
}

fn parse_exposition(text: &str) -> Exposition {
    let mut families = BTreeMap::new();
    let mut samples = BTreeSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split_whitespace();
            if let (Some(name), Some(kind)) = (parts.next(), parts.next()) {
                families.insert(name.to_owned(), kind.to_owned());
            }
        } else if !line.starts_with('#') && !line.trim().is_empty() {
            let end = line.find(['{', ' ']).unwrap_or(line.len());
            samples.insert(line[..end].to_owned());
        }
    }
    // A histogram or summary is read through these even before its first sample.
    for (name, kind) in &families {
        let suffixes: &[&str] = match kind.as_str() {
            "histogram" => &["_bucket", "_sum", "_count"],
            "summary" => &["", "_sum", "_count"],
            _ => &[""],
        };
        for suffix in suffixes {
            samples.insert(format!("{name}{suffix}"));
        }
    }
    Exposition { families, samples }
}

async fn metrics_text(app: &TestApp) -> String {
    app.call(reqwest::Method::GET, "/metrics", None, None)
        .await
        .expect(200)
        .text
}

// ---------------------------------------------------------------------------------------------
// The checks
// ---------------------------------------------------------------------------------------------

#[test]
fn the_dashboards_are_grafana_json_with_a_query_in_every_panel() {
    let exprs = dashboard_exprs();
    for file in ["geoward-operations.json", "geoward-supervision.json"] {
        assert!(
            exprs.iter().any(|e| e.file == file),
            "{file} has no expression"
        );
    }
}

#[tokio::test]
async fn every_dashboard_and_rule_expression_names_a_metric_geoward_exports() {
    let app = spawn_app().await;
    let exported = parse_exposition(&metrics_text(&app).await);
    let (rules, recorded) = rule_exprs();
    let mut exprs = dashboard_exprs();
    exprs.extend(rules);
    let mut unknown = Vec::new();
    let mut used = BTreeSet::new();
    for e in &exprs {
        let names = metric_names(&e.expr).unwrap_or_else(|err| {
            panic!("{} {}: cannot read {:?}: {err}", e.file, e.place, e.expr)
        });
        if names.is_empty() {
            unknown.push(format!(
                "{} {}: names no metric: {}",
                e.file, e.place, e.expr
            ));
        }
        for name in names {
            let known = exported.samples.contains(&name)
                || recorded.contains(&name)
                || (!name.starts_with("geoward_") && PROMETHEUS_BUILTINS.contains(&name.as_str()));
            if known {
                used.insert(name);
            } else {
                unknown.push(format!("{} {}: {name} is not exported", e.file, e.place));
            }
        }
    }
    assert!(
        unknown.is_empty(),
        "expressions naming metrics geoward does not export:\n{}",
        unknown.join("\n")
    );
    assert!(used.len() > 20, "suspiciously few metrics used: {used:?}");
}

#[tokio::test]
async fn the_catalogue_lists_exactly_the_metrics_geoward_exports() {
    let app = spawn_app().await;
    let exported = parse_exposition(&metrics_text(&app).await);
    let catalogue = read(&repo("docs/metrics.md"));
    let documented: BTreeSet<String> = catalogue
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("geoward_") && w.len() > "geoward_".len())
        .map(str::to_owned)
        .collect();
    let families: BTreeSet<&String> = exported
        .families
        .keys()
        .filter(|n| n.starts_with("geoward_"))
        .collect();
    assert!(families.len() > 25, "too few families: {families:?}");
    let missing: Vec<&&String> = families
        .iter()
        .filter(|f| !documented.contains(f.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "metrics exported but not in docs/metrics.md: {missing:?}"
    );
    let stale: Vec<&String> = documented
        .iter()
        .filter(|d| !exported.samples.contains(*d) && !exported.families.contains_key(*d))
        .collect();
    assert!(
        stale.is_empty(),
        "docs/metrics.md names metrics geoward does not export: {stale:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// The supervision gauges through one alert's life
// ---------------------------------------------------------------------------------------------

/// The value of one series (`name{labels}` exactly as exported), if present.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

/// A series and what its value must satisfy.
type Check<'a> = (&'a str, fn(f64) -> bool);

/// Polls `/metrics` until every check holds, or fails showing the values.
async fn wait_for(app: &TestApp, what: &str, checks: &[Check<'_>]) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let text = metrics_text(app).await;
        if checks
            .iter()
            .all(|(series, ok)| sample(&text, series).is_some_and(ok))
        {
            return text;
        }
        if tokio::time::Instant::now() > deadline {
            let seen: Vec<String> = checks
                .iter()
                .map(|(series, _)| format!("{series} = {:?}", sample(&text, series)))
                .collect();
            panic!("{what}: not reached within 10 s:\n{}", seen.join("\n"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

const UNACKED_CRITICAL: &str = "geoward_alerts_unacknowledged{severity=\"critical\"}";
const OPEN_CRITICAL: &str = "geoward_alerts_open{severity=\"critical\"}";
const OLDEST_CRITICAL: &str =
    "geoward_alerts_oldest_unacknowledged_age_seconds{severity=\"critical\"}";
const ACK_TIMES: &str = "geoward_alert_acknowledge_duration_seconds_count{severity=\"critical\"}";

#[tokio::test]
async fn the_supervision_gauges_follow_an_alert_from_opening_to_acknowledgement() {
    let app = spawn_app().await;
    wait_for(
        &app,
        "a fresh system",
        &[
            (UNACKED_CRITICAL, |v| v == 0.0),
            (OPEN_CRITICAL, |v| v == 0.0),
            (ACK_TIMES, |v| v == 0.0),
        ],
    )
    .await;
    let admin = app.admin_token().await;
    let (officer_id, officer) = app.account(&admin, "officer").await;
    let (lon, lat) = (114.66, 33.63);
    let zone = confirm_fixes(exclusion_zone("Victim home", circle(lon, lat, 200.0)), 2);
    let person = app
        .monitored_supervisee(&admin, &officer, &officer_id, vec![zone], None)
        .await;
    let mut device = person.device(&app.ws_base()).await;
    let ts = |s: i64| {
        (chrono::Utc::now() + chrono::Duration::seconds(s))
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    };
    // Walking in from outside, 30 s apart; two fixes inside confirm the entry.
    for (seq, at, (lat, lon)) in [
        (1, -110, (33.63, 114.675)),
        (2, -80, (lat, lon)),
        (3, -50, (lat, lon + 0.0003)),
    ] {
        device.send_fix(seq, &ts(at), lat, lon, 10.0).await.unwrap();
    }
    let seqs: BTreeSet<u64> = (1..=3).collect();
    assert_eq!(device.wait_acks(&seqs, Duration::from_secs(5)).await, seqs);

    let raised = wait_for(
        &app,
        "the exclusion-zone alert counted as open and unacknowledged",
        &[
            (UNACKED_CRITICAL, |v| v == 1.0),
            (OPEN_CRITICAL, |v| v == 1.0),
            (OLDEST_CRITICAL, |v| v >= 0.0),
        ],
    )
    .await;
    assert_eq!(
        sample(
            &raised,
            "geoward_alerts_raised_total{kind=\"exclusion_zone_entered\",severity=\"critical\"}"
        ),
        Some(1.0)
    );
    for series in [
        "geoward_store_call_duration_seconds_count{operation=\"insert_fixes\",store=\"postgres\"}",
        "geoward_store_call_duration_seconds_count{operation=\"alert_transaction\",store=\"postgres\"}",
        "geoward_store_call_duration_seconds_count{operation=\"script\",store=\"redis\"}",
    ] {
        assert!(
            sample(&raised, series).is_some_and(|n| n >= 1.0),
            "{series} = {:?}",
            sample(&raised, series)
        );
    }

    let listed = app.get("/v1/alerts", &officer).await.expect(200);
    let id = listed.body["alerts"][0]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no alert listed: {}", listed.text))
        .to_owned();
    app.post(
        &format!("/v1/alerts/{id}/acknowledge"),
        &officer,
        json!({ "note": "calling the supervisee" }),
    )
    .await
    .expect(200);
    let acknowledged = wait_for(
        &app,
        "the alert acknowledged: still open, no longer unacknowledged, its time observed",
        &[
            (UNACKED_CRITICAL, |v| v == 0.0),
            (OPEN_CRITICAL, |v| v == 1.0),
            (OLDEST_CRITICAL, |v| v == 0.0),
            (ACK_TIMES, |v| v == 1.0),
        ],
    )
    .await;
    assert_eq!(
        sample(
            &acknowledged,
            "geoward_store_call_duration_seconds_count{operation=\"alert_step\",store=\"postgres\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &acknowledged,
            "geoward_alert_acknowledge_duration_seconds_count{severity=\"serious\"}"
        ),
        Some(0.0)
    );
}
