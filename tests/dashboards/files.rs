//! The files under `dashboards/`: Grafana dashboards (checked to import: schema version,
//! title, uid, a Prometheus data-source input, panels with targets) and Prometheus rule files,
//! each turned into the PromQL expressions it holds.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

/// A path in the repository.
pub fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// Files in `dir` whose name ends with `suffix`, sorted.
pub fn files(dir: &str, suffix: &str) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(repo(dir))
        .unwrap_or_else(|e| panic!("cannot list {dir}: {e}"))
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    found.sort();
    found
}

pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// One PromQL expression and where it is.
pub struct Expr {
    pub file: String,
    pub place: String,
    pub expr: String,
}

/// A dashboard's panels, rows' nested panels included.
fn panels(dashboard: &Value) -> Vec<&Value> {
    let mut all = Vec::new();
    for panel in dashboard["panels"].as_array().into_iter().flatten() {
        all.push(panel);
        all.extend(panel["panels"].as_array().into_iter().flatten());
    }
    all
}

/// Every dashboard's expressions, after checking it is Grafana JSON that imports.
pub fn dashboard_exprs() -> Vec<Expr> {
    let paths = files("dashboards", ".json");
    assert!(
        paths.len() >= 2,
        "expected the operations and supervision dashboards"
    );
    let mut exprs = Vec::new();
    let mut problems = Vec::new();
    let mut uids = BTreeSet::new();
    for path in paths {
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        let dashboard: Value = serde_json::from_str(&read(&path))
            .unwrap_or_else(|e| panic!("{file} is not valid JSON: {e}"));
        let mut problem = |what: String| problems.push(format!("{file}: {what}"));
        if !dashboard["schemaVersion"].is_u64() {
            problem("no numeric schemaVersion".into());
        }
        for key in ["title", "uid"] {
            if dashboard[key].as_str().map_or(true, str::is_empty) {
                problem(format!("no {key}"));
            }
        }
        let uid = dashboard["uid"].as_str().unwrap_or_default();
        if uid.len() > 40 || !uids.insert(uid.to_owned()) {
            problem(format!(
                "uid {uid:?} is longer than 40 characters or not unique"
            ));
        }
        let asks_for_prometheus = dashboard["__inputs"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|i| i["pluginId"] == "prometheus" && i["type"] == "datasource");
        if !asks_for_prometheus {
            problem("no __inputs entry asking for the Prometheus data source".into());
        }
        let all = panels(&dashboard);
        if all.is_empty() {
            problem("no panels".into());
        }
        let mut ids = BTreeSet::new();
        for panel in all {
            let title = panel["title"].as_str().unwrap_or("(untitled)").to_owned();
            if !panel["id"].as_u64().is_some_and(|id| ids.insert(id)) {
                problem(format!("panel {title:?} has no id or a duplicate one"));
            }
            if !panel["gridPos"].is_object() {
                problem(format!("panel {title:?} has no gridPos"));
            }
            if panel["type"] == "row" {
                continue;
            }
            let targets = panel["targets"].as_array().cloned().unwrap_or_default();
            if targets.is_empty() {
                problem(format!("panel {title:?} has no target"));
            }
            for target in targets {
                match target["expr"].as_str().filter(|e| !e.trim().is_empty()) {
                    Some(expr) => exprs.push(Expr {
                        file: file.clone(),
                        place: format!("panel {title:?}"),
                        expr: expr.to_owned(),
                    }),
                    None => problem(format!("panel {title:?} has a target without expr")),
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "dashboards that would not import:\n{}",
        problems.join("\n")
    );
    exprs
}

#[derive(Deserialize)]
struct RuleFile {
    groups: Vec<RuleGroup>,
}

#[derive(Deserialize)]
struct RuleGroup {
    name: String,
    rules: Vec<Rule>,
}

#[derive(Deserialize)]
struct Rule {
    alert: Option<String>,
    record: Option<String>,
    expr: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

/// Every rule's expression, and the names recording rules define.
pub fn rule_exprs() -> (Vec<Expr>, BTreeSet<String>) {
    let paths = files("dashboards/prometheus", ".rules.yml");
    assert!(!paths.is_empty(), "no dashboards/prometheus/*.rules.yml");
    let mut exprs = Vec::new();
    let mut recorded = BTreeSet::new();
    let mut problems = Vec::new();
    for path in paths {
        let file = format!("prometheus/{}", path.file_name().unwrap().to_string_lossy());
        let rules: RuleFile = serde_yaml_ng::from_str(&read(&path))
            .unwrap_or_else(|e| panic!("{file} is not a Prometheus rule file: {e}"));
        for group in rules.groups {
            for rule in group.rules {
                let name = rule
                    .alert
                    .clone()
                    .or(rule.record.clone())
                    .unwrap_or_default();
                if let Some(record) = &rule.record {
                    recorded.insert(record.clone());
                }
                if rule.alert.is_some() {
                    if !["critical", "warning", "info"]
                        .contains(&rule.labels.get("severity").map_or("", String::as_str))
                    {
                        problems.push(format!("{file}: {name} has no severity label"));
                    }
                    for key in ["summary", "description"] {
                        if !rule.annotations.contains_key(key) {
                            problems.push(format!("{file}: {name} has no {key} annotation"));
                        }
                    }
                }
                exprs.push(Expr {
                    file: file.clone(),
                    place: format!("group {:?} rule {name}", group.name),
                    expr: rule.expr,
                });
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    (exprs, recorded)
}
