//! PromQL, read just enough to list the metric names an expression uses: label matchers,
//! label lists, strings, ranges, numbers and Grafana variables are skipped; a word followed by
//! `(` must be a PromQL function.

use std::collections::BTreeSet;

/// Aggregations, set operators and modifiers: words of the language, not metrics.
const KEYWORDS: &[&str] = &[
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
    "limitk",
    "limit_ratio",
    "and",
    "or",
    "unless",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "offset",
    "bool",
    "inf",
    "nan",
    "atan2",
];

/// Keywords followed by a parenthesised list of label names.
const LABEL_LISTS: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];

/// PromQL functions (Prometheus 2.x).
const FUNCTIONS: &[&str] = &[
    "abs",
    "absent",
    "absent_over_time",
    "acos",
    "acosh",
    "asin",
    "asinh",
    "atan",
    "atanh",
    "avg_over_time",
    "ceil",
    "changes",
    "clamp",
    "clamp_max",
    "clamp_min",
    "cos",
    "cosh",
    "count_over_time",
    "day_of_month",
    "day_of_week",
    "day_of_year",
    "days_in_month",
    "deg",
    "delta",
    "deriv",
    "end",
    "exp",
    "floor",
    "histogram_count",
    "histogram_fraction",
    "histogram_quantile",
    "histogram_stddev",
    "histogram_stdvar",
    "histogram_sum",
    "holt_winters",
    "hour",
    "idelta",
    "increase",
    "irate",
    "label_join",
    "label_replace",
    "last_over_time",
    "ln",
    "log10",
    "log2",
    "mad_over_time",
    "max_over_time",
    "min_over_time",
    "minute",
    "month",
    "pi",
    "predict_linear",
    "present_over_time",
    "quantile_over_time",
    "rad",
    "rate",
    "resets",
    "round",
    "scalar",
    "sgn",
    "sin",
    "sinh",
    "sort",
    "sort_by_label",
    "sort_by_label_desc",
    "sort_desc",
    "sqrt",
    "start",
    "stddev_over_time",
    "stdvar_over_time",
    "sum_over_time",
    "tan",
    "tanh",
    "time",
    "timestamp",
    "vector",
    "year",
];

/// Series that Prometheus itself records for every target or rule; allowed in expressions.
pub const PROMETHEUS_BUILTINS: &[&str] = &[
    "up",
    "scrape_duration_seconds",
    "scrape_samples_scraped",
    "scrape_samples_post_metric_relabeling",
    "scrape_series_added",
    "ALERTS",
    "ALERTS_FOR_STATE",
];

/// The metric names `expr` reads, or what is wrong with it (an unknown function, an
/// unterminated string or bracket). Label matchers, label lists, strings, ranges, numbers and
/// Grafana variables (`$__rate_interval`, `${...}`) are skipped.
pub fn metric_names(expr: &str) -> Result<BTreeSet<String>, String> {
    let chars: Vec<char> = expr.chars().collect();
    let mut names = BTreeSet::new();
    let mut depth = 0i32;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '"' || c == '\'' || c == '`' {
            i = skip_string(&chars, i)?;
        } else if c == '{' {
            i = skip_group(&chars, i, '{', '}')?;
        } else if c == '[' {
            i = skip_group(&chars, i, '[', ']')?;
        } else if c == '#' {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '$' {
            i += 1;
            if chars.get(i) == Some(&'{') {
                i = skip_group(&chars, i, '{', '}')?;
            } else {
                while i < chars.len() && is_word(chars[i]) {
                    i += 1;
                }
            }
        } else if c.is_ascii_digit()
            || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit))
        {
            // Numbers, durations (`5m`), exponents (`1e-9`), hex.
            while i < chars.len() {
                let d = chars[i];
                let exponent_sign = (d == '-' || d == '+')
                    && matches!(chars[i - 1], 'e' | 'E')
                    && chars.get(i + 1).is_some_and(char::is_ascii_digit);
                if is_word(d) || d == '.' || exponent_sign {
                    i += 1;
                } else {
                    break;
                }
            }
        } else if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let start = i;
            while i < chars.len() && (is_word(chars[i]) || chars[i] == ':') {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let mut next = i;
            while next < chars.len() && chars[next].is_whitespace() {
                next += 1;
            }
            let lower = word.to_ascii_lowercase();
            if LABEL_LISTS.contains(&lower.as_str()) {
                if chars.get(next) == Some(&'(') {
                    i = skip_group(&chars, next, '(', ')')?;
                }
            } else if KEYWORDS.contains(&lower.as_str()) {
                // an operator or aggregation: what follows is parsed as usual
            } else if chars.get(next) == Some(&'(') {
                if !FUNCTIONS.contains(&word.as_str()) {
                    return Err(format!("unknown PromQL function {word}()"));
                }
            } else {
                names.insert(word);
            }
        } else {
            match c {
                '(' => depth += 1,
                ')' if depth == 0 => return Err(format!("unmatched ) at {i}")),
                ')' => depth -= 1,
                _ => {}
            }
            i += 1;
        }
    }
    if depth != 0 {
        return Err("unclosed (".into());
    }
    Ok(names)
}

fn is_word(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The index just past the string starting at `start`.
fn skip_string(chars: &[char], start: usize) -> Result<usize, String> {
    let quote = chars[start];
    let mut i = start + 1;
    while i < chars.len() {
        if chars[i] == '\\' && quote != '`' {
            i += 2;
            continue;
        }
        if chars[i] == quote {
            return Ok(i + 1);
        }
        i += 1;
    }
    Err(format!("unterminated string starting at {start}"))
}

/// The index just past the group opened at `start` (nesting and strings respected).
fn skip_group(chars: &[char], start: usize, open: char, close: char) -> Result<usize, String> {
    let mut depth = 0;
    let mut i = start;
    while i < chars.len() {
        let c = chars[i];
        if c == '"' || c == '\'' || c == '`' {
            i = skip_string(chars, i)?;
            continue;
        }
        if c == open {
            depth += 1;
        } else if c == close {
            depth -= 1;
            if depth == 0 {
                return Ok(i + 1);
            }
        }
        i += 1;
    }
    Err(format!("unclosed {open} at {start}"))
}

fn names(expr: &str) -> Vec<String> {
    metric_names(expr)
        .unwrap_or_else(|e| panic!("{expr}: {e}"))
        .into_iter()
        .collect()
}

#[test]
fn metric_names_are_read_from_promql_and_nothing_else() {
    assert_eq!(
        names(
            r#"histogram_quantile(0.99, sum by (le, route) (rate(geoward_http_request_duration_seconds_bucket{route!~"/v1/.*", status="5xx"}[$__rate_interval])))"#
        ),
        ["geoward_http_request_duration_seconds_bucket"]
    );
    assert_eq!(
        names(
            "sum(up{job=\"geoward\"}) > 0\nand\n(sum(rate(geoward_a_total[5m] offset 1h)) + sum(rate(geoward_b_total[5m]))) == 0"
        ),
        ["geoward_a_total", "geoward_b_total", "up"]
    );
    assert_eq!(
        names("x / on(instance) group_left(kind, le) y * 1e-9 > bool 2.5 unless z"),
        ["x", "y", "z"]
    );
    assert_eq!(
        names("max by (severity) (geoward_alerts_open) # by (not_a_metric)\n"),
        ["geoward_alerts_open"]
    );
    assert_eq!(
        names("sum without (instance) (rate(a:b_total[${__range}])) / clamp_min(c, 1e-9)"),
        ["a:b_total", "c"]
    );
    assert_eq!(names("SUM BY (le) (x_bucket) * inf"), ["x_bucket"]);
    assert!(metric_names("rated(geoward_x_total[5m])").is_err());
    assert!(metric_names("sum(x{job=\"a})").is_err());
    assert!(metric_names("sum(rate(x[5m])").is_err());
    assert!(metric_names("sum(x))").is_err());
}
