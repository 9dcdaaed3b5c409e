//! The Grafana dashboard in deploy/grafana only queries metrics blastdoor
//! actually exports.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::PathBuf;

use blastdoor_telemetry::Metrics;
use serde_json::Value;

fn dashboard() -> Value {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy/grafana/blastdoor.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()))
}

/// Every panel, rows' nested panels included.
fn panels(dashboard: &Value) -> Vec<&Value> {
    fn walk<'a>(list: &'a Value, out: &mut Vec<&'a Value>) {
        for p in list.as_array().into_iter().flatten() {
            out.push(p);
            if let Some(nested) = p.get("panels") {
                walk(nested, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(&dashboard["panels"], &mut out);
    out
}

/// Every PromQL expression: panel targets and query variables.
fn exprs(dashboard: &Value) -> Vec<String> {
    let mut out: Vec<String> = panels(dashboard)
        .iter()
        .flat_map(|p| p["targets"].as_array().into_iter().flatten())
        .filter_map(|t| t["expr"].as_str().map(str::to_string))
        .collect();
    for var in dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if var["type"] != "query" {
            continue;
        }
        for q in [&var["query"], &var["query"]["query"], &var["definition"]] {
            if let Some(q) = q.as_str() {
                out.push(q.to_string());
            }
        }
    }
    out
}

/// Identifiers starting with `blastdoor_` in a PromQL expression.
fn metric_names(expr: &str) -> Vec<String> {
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    let mut names = Vec::new();
    let mut rest = expr;
    while let Some(at) = rest.find("blastdoor_") {
        let before = rest[..at].chars().next_back();
        let tail = &rest[at..];
        let len = tail.find(|c| !is_ident(c)).unwrap_or(tail.len());
        if !before.is_some_and(is_ident) {
            names.push(tail[..len].to_string());
        }
        rest = &tail[len..];
    }
    names
}

/// The sample names a scrape of blastdoor can contain, from the `# TYPE`
/// lines of the exposition with every family holding at least one series:
/// counters as `<family>_total`, histograms as `_bucket`/`_sum`/`_count`,
/// gauges as the family name. (A family without series has no `# TYPE`
/// line, so every one gets a series here.)
fn exposed_names() -> BTreeSet<String> {
    let m = Metrics::new();
    let svc = m.service("svc", &["tokens".to_string()], &["op".to_string()]);
    svc.observe(200, Some(0), 0.01, Some(0.001));
    let tokens = std::collections::BTreeMap::from([("tokens".to_string(), 10u64)]);
    svc.spend.add("ads", "", 0.5, tokens.iter());
    svc.unpriced.inc();
    svc.retries.inc();
    svc.rejected_overload.inc();
    let up = m.upstream("svc", "http://127.0.0.1:1");
    up.duration.observe(0.01);
    up.healthy.set(1);
    up.ejections.inc();
    m.budget_remaining("team", "t", 1.0);
    m.budget_alert("team", "t", 80);
    m.contract_violation("svc", "op", "request");
    m.undocumented("svc");
    m.reload(true);
    m.api_keys.set(1);
    m.store_queries.set(1);
    m.redis_errors.inc();
    m.ledger.written.inc();
    m.ledger.dropped.inc();
    m.ledger.write_errors.inc();
    m.ledger.spool_bytes.set(1);
    let text = m.encode();

    let samples: BTreeSet<&str> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| l.split(['{', ' ']).next().unwrap())
        .collect();
    let mut names = BTreeSet::new();
    for line in text.lines() {
        let Some(decl) = line.strip_prefix("# TYPE ") else {
            continue;
        };
        let (family, kind) = decl.split_once(' ').expect("# TYPE <name> <type>");
        let suffixes: &[&str] = match kind {
            "counter" => &["_total"],
            "histogram" => &["_bucket", "_sum", "_count"],
            "gauge" => &[""],
            other => panic!("unexpected metric type {other} of {family}"),
        };
        for suffix in suffixes {
            let name = format!("{family}{suffix}");
            assert!(
                samples.contains(name.as_str()),
                "{name} (from `{line}`) has no sample; give it a series above\n{text}"
            );
            names.insert(name);
        }
    }
    names
}

#[test]
fn every_panel_has_a_title_and_a_query() {
    let dashboard = dashboard();
    let panels = panels(&dashboard);
    assert!(!panels.is_empty(), "the dashboard has no panels");
    for p in panels {
        let title = p["title"].as_str().unwrap_or_default();
        assert!(!title.trim().is_empty(), "panel without a title: {p}");
        if p["type"] == "row" {
            continue;
        }
        let targets = p["targets"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        assert!(
            targets
                .iter()
                .any(|t| t["expr"].as_str().is_some_and(|e| !e.trim().is_empty())),
            "panel {title:?} has no query"
        );
    }
}

#[test]
fn the_service_variable_lists_services() {
    let dashboard = dashboard();
    let vars = dashboard["templating"]["list"].as_array().unwrap();
    let service = vars
        .iter()
        .find(|v| v["name"] == "service")
        .expect("a `service` template variable");
    assert!(
        exprs(&dashboard)
            .iter()
            .any(|e| e == "label_values(blastdoor_requests_total, service)"),
        "`service` should come from label_values(blastdoor_requests_total, service): {service}"
    );
}

#[test]
fn every_queried_metric_is_exported() {
    let dashboard = dashboard();
    let exposed = exposed_names();
    let mut used = BTreeSet::new();
    for expr in exprs(&dashboard) {
        for name in metric_names(&expr) {
            assert!(
                exposed.contains(&name),
                "the dashboard queries {name}, which blastdoor does not export (in `{expr}`)\nexported: {exposed:#?}"
            );
            used.insert(name);
        }
    }
    assert!(!used.is_empty(), "no blastdoor_ metric in any query");
}

#[test]
fn metric_names_are_found_in_promql() {
    assert_eq!(
        metric_names(
            "histogram_quantile(0.99, sum by (le) (rate(blastdoor_a_bucket{x=\"y\"}[5m]))) / blastdoor_b + xblastdoor_c"
        ),
        ["blastdoor_a_bucket", "blastdoor_b"]
    );
}
