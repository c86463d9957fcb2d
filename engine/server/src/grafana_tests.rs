//! The Grafana dashboard in `docs/grafana/ivr-dashboard.json` reads only metrics the engine
//! exports: every metric name in a panel's or a variable's query is one `/metrics` has
//! (from [`Status`]'s registry, filled with a sample of each family), and every label it
//! selects or groups by is one that metric carries. A metric renamed here fails this test
//! until the dashboard follows.

use super::*;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

const DASHBOARD: &str = include_str!("../../../docs/grafana/ivr-dashboard.json");

/// Labels Prometheus adds when it scrapes (not in the exposition).
const SCRAPE_LABELS: [&str; 2] = ["instance", "job"];

/// The exposition of a status with a sample in every family: metric name (as queried,
/// counters with `_total`) -> its label names.
fn exported() -> BTreeMap<String, BTreeSet<String>> {
    use ivr_voicemail::calls::{CallRecord, CallStep};
    let s = Status::new("menus.yaml".into(), SystemTime::UNIX_EPOCH);
    s.call_started(0);
    s.call_ended(EndReason::CallerHungUp, 0);
    s.menu_entered("main");
    s.call_record(&CallRecord {
        steps: vec![CallStep {
            menu: "main".into(),
            outcome: "key".into(),
            key: Some("1".into()),
            prompt: "full".into(),
            at_ms: 0,
        }],
        exit: Some("voicemail".into()),
        ..Default::default()
    });
    s.queues(
        &[("support".into(), 1)],
        &[("alice".into(), ivr_queues::AgentState::Available)],
    );
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in s.prometheus().lines().filter(|l| !l.starts_with('#')) {
        let name_end = line.find(['{', ' ']).unwrap_or(line.len());
        let labels = out.entry(line[..name_end].to_string()).or_default();
        if let Some(set) = line[name_end..]
            .strip_prefix('{')
            .and_then(|r| r.split('}').next())
        {
            for pair in set.split(',') {
                if let Some((k, _)) = pair.split_once('=') {
                    labels.insert(k.to_string());
                }
            }
        }
    }
    out
}

/// Every query of the dashboard: panel targets' `expr` and variables' queries.
fn queries(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                match (k.as_str(), v) {
                    ("expr" | "definition", Value::String(q)) => out.push(q.clone()),
                    ("query", Value::String(q)) if q.contains('(') => out.push(q.clone()),
                    _ => queries(v, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|v| queries(v, out)),
        _ => {}
    }
}

/// Identifiers of a query outside quotes, each with what follows it.
fn words(q: &str) -> Vec<(&str, &str)> {
    let mut out = Vec::new();
    let b = q.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                    i += 1;
                }
                out.push((&q[start..i], &q[i..]));
            }
            _ => i += 1,
        }
    }
    out
}

#[test]
fn the_dashboard_queries_only_metrics_and_labels_the_engine_exports() {
    let metrics = exported();
    for name in [
        "ivr_calls_active",
        "ivr_menu_keys_total",
        "ivr_menu_exits_total",
    ] {
        assert!(metrics.contains_key(name), "{name} not in {metrics:?}");
    }
    let dash: Value = serde_json::from_str(DASHBOARD).expect("the dashboard is JSON");
    assert!(dash["schemaVersion"].as_u64().unwrap() >= 38, "Grafana 10+");
    let vars = dash["templating"]["list"].as_array().unwrap();
    assert!(
        vars.iter()
            .any(|v| v["type"] == "datasource" && v["query"] == "prometheus"),
        "a Prometheus data source variable"
    );
    let mut all = Vec::new();
    queries(&dash, &mut all);
    let mut used = BTreeSet::new();
    for q in &all {
        let (open, close) = (q.matches('(').count(), q.matches(')').count());
        assert_eq!(open, close, "unbalanced parentheses in {q}");
        assert_eq!(q.matches('{').count(), q.matches('}').count(), "{q}");
        let names: Vec<&str> = words(q)
            .into_iter()
            .map(|(w, _)| w)
            .filter(|w| w.starts_with("ivr_"))
            .collect();
        assert!(!names.is_empty(), "a query with no ivr metric: {q}");
        let mut labels: BTreeSet<&str> = BTreeSet::new();
        for n in &names {
            let Some(l) = metrics.get(*n) else {
                panic!("{n} (in {q}) is not a metric the engine exports: {metrics:?}");
            };
            labels.extend(l.iter().map(String::as_str));
            used.insert(n.to_string());
        }
        labels.extend(SCRAPE_LABELS);
        // Labels matched in selectors and grouped by: each one a metric of the query has.
        for (w, rest) in words(q) {
            let rest = rest.trim_start();
            let matched = ["=~", "!~", "!=", "="]
                .iter()
                .any(|op| rest.starts_with(op))
                && !w.starts_with("ivr_");
            if matched && !labels.contains(w) {
                panic!("label {w} (in {q}) is on none of its metrics");
            }
        }
        for part in q.split(" by (").skip(1) {
            for l in part.split(')').next().unwrap_or("").split(',') {
                let l = l.trim();
                assert!(labels.contains(l), "by ({l}) in {q}: no metric has it");
            }
        }
    }
    // Panels: each with a query, all on the data source variable.
    let panels = dash["panels"].as_array().unwrap();
    let mut ids = BTreeSet::new();
    for p in panels {
        assert!(ids.insert(p["id"].as_u64().unwrap()), "ids are unique");
        if p["type"] == "row" {
            continue;
        }
        let targets = p["targets"].as_array().unwrap();
        assert!(!targets.is_empty(), "{}", p["title"]);
        assert_eq!(p["datasource"]["uid"], "${datasource}", "{}", p["title"]);
    }
    for needed in [
        "ivr_calls_active",
        "ivr_calls_total",
        "ivr_menu_keys_total",
        "ivr_menu_exits_total",
        "ivr_queue_waiting",
        "ivr_agents",
        "ivr_callback_requests_total",
        "ivr_sip_source_bans_total",
    ] {
        assert!(used.contains(needed), "the dashboard shows {needed}");
    }
}

/// The check itself catches a renamed metric and a wrong label.
#[test]
fn a_renamed_metric_or_label_is_caught() {
    let metrics = exported();
    let known = |q: &str| {
        words(q)
            .into_iter()
            .filter(|(w, _)| w.starts_with("ivr_"))
            .all(|(w, _)| metrics.contains_key(w))
    };
    assert!(known("sum(rate(ivr_calls_total[5m]))"));
    assert!(!known("sum(rate(ivr_calls_started_total[5m]))"));
    assert!(!known("ivr_calls_active_total"));
    assert!(metrics["ivr_menu_exits_total"].contains("reason"));
    assert!(!metrics["ivr_menu_exits_total"].contains("key"));
    assert_eq!(
        words(r#"x{a="ivr_not_a_metric"}"#)
            .iter()
            .map(|w| w.0)
            .collect::<Vec<_>>(),
        ["x", "a"],
        "quoted text is no name"
    );
}
