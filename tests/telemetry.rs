//! The README's metric list cannot drift from the registry: every family the controller
//! exports is listed with its type and label names, nothing else is listed, and every value
//! a closed label takes is named in the README line.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use rollgate::core::analysis::value::AnalysisPhase;
use rollgate::core::strategy::Phase;
use rollgate::telemetry::{
    PromotionAction, PromotionEffect, PromotionFailure, QueryOutcome, ReconcileErrorReason,
    ReconcileKind, Telemetry,
};

#[derive(Debug, Default, PartialEq)]
struct Family {
    kind: String,
    labels: BTreeSet<String>,
}

/// (name as queried, type, label names) per README line, and the whole line.
fn readme_metrics() -> BTreeMap<String, (Family, String)> {
    let readme = include_str!("../README.md");
    let start = readme
        .find("<!-- metrics:")
        .expect("README has the metrics start marker");
    let end = readme[start..]
        .find("<!-- end metrics -->")
        .expect("README has the metrics end marker")
        + start;
    let mut out = BTreeMap::new();
    for line in readme[start..end].lines().filter(|l| l.starts_with("- `")) {
        let rest = &line[3..];
        let sig = &rest[..rest.find('`').expect("closing backtick")];
        let (name, labels) = match sig.split_once('{') {
            Some((n, l)) => (
                n.to_owned(),
                l.trim_end_matches('}')
                    .split(',')
                    .map(str::to_owned)
                    .collect(),
            ),
            None => (sig.to_owned(), BTreeSet::new()),
        };
        let kind = line
            .split_once("` (")
            .and_then(|(_, r)| r.split_once(')'))
            .map(|(k, _)| k.to_owned())
            .unwrap_or_else(|| panic!("README metric line without (type): {line}"));
        let prev = out.insert(name.clone(), (Family { kind, labels }, line.to_owned()));
        assert!(prev.is_none(), "{name} listed twice in the README");
    }
    out
}

/// A registry where every recording method was called once, so every family has series.
fn exercised() -> Telemetry {
    let t = Telemetry::new();
    t.reconciled(ReconcileKind::Rollout, Duration::from_millis(4));
    t.reconcile_error(ReconcileKind::Rollout, ReconcileErrorReason::Git);
    t.rollout_observed("ns", "web", Phase::Progressing, 20);
    t.rollout_phase_changed(Phase::Initialized, Phase::Progressing);
    t.canary_weight_updated();
    t.analysis_run_completed(AnalysisPhase::Successful);
    t.measurement_completed(AnalysisPhase::Successful);
    t.prometheus_query(QueryOutcome::Success, Duration::from_millis(30));
    t.prometheus_query_coalesced();
    t.promotion_succeeded(
        PromotionAction::Promote,
        PromotionEffect::Committed,
        Duration::from_secs(1),
    );
    t.promotion_failed(
        PromotionAction::Revert,
        PromotionFailure::Timeout,
        Duration::from_secs(60),
    );
    t.set_leader(true);
    t
}

/// Families in the encoded output, keyed by the name a query uses (`_total` for counters),
/// with label names, and every label value seen, keyed by `family label`.
fn encoded(text: &str) -> (BTreeMap<String, Family>, BTreeMap<String, BTreeSet<String>>) {
    let mut families = BTreeMap::new();
    let mut types = BTreeMap::new();
    for l in text.lines() {
        if let Some(rest) = l.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("# TYPE name type");
            types.insert(name.to_owned(), kind.to_owned());
        }
    }
    let mut values: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for l in text.lines().filter(|l| !l.starts_with('#')) {
        let series = l.split(' ').next().expect("a sample");
        let (sample, labels) = match series.split_once('{') {
            Some((s, l)) => (s, l.trim_end_matches('}')),
            None => (series, ""),
        };
        let family = types
            .keys()
            .filter(|f| {
                sample == f.as_str()
                    || sample.strip_prefix(f.as_str()).is_some_and(|s| {
                        ["_total", "_bucket", "_sum", "_count", "_created"].contains(&s)
                    })
            })
            .max_by_key(|f| f.len())
            .unwrap_or_else(|| panic!("sample {sample} belongs to no # TYPE"));
        let kind = &types[family];
        let key = if kind == "counter" {
            format!("{family}_total")
        } else {
            family.clone()
        };
        let entry = families.entry(key.clone()).or_insert_with(|| Family {
            kind: kind.clone(),
            labels: BTreeSet::new(),
        });
        for pair in labels.split(',').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').expect("label=value");
            if k == "le" {
                continue;
            }
            entry.labels.insert(k.to_owned());
            values
                .entry(format!("{key} {k}"))
                .or_default()
                .insert(v.trim_matches('"').to_owned());
        }
    }
    for (name, kind) in &types {
        let key = if kind == "counter" {
            format!("{name}_total")
        } else {
            name.clone()
        };
        assert!(families.contains_key(&key), "{name} has no series");
    }
    (families, values)
}

#[test]
fn readme_lists_exactly_the_exported_metrics() {
    let text = exercised().encode();
    let (actual, _) = encoded(&text);
    let listed = readme_metrics();
    let listed_names: BTreeSet<&String> = listed.keys().collect();
    let actual_names: BTreeSet<&String> = actual.keys().collect();
    assert_eq!(
        listed_names, actual_names,
        "README metric list vs the registry (left: README)"
    );
    for (name, fam) in &actual {
        assert_eq!(&listed[name].0, fam, "README entry of {name}");
    }
}

#[test]
fn readme_names_every_value_of_the_closed_labels() {
    // The registry creates the closed label sets at zero, so a fresh one shows them all.
    let (_, values) = encoded(&Telemetry::new().encode());
    let listed = readme_metrics();
    let mut checked = 0;
    for (name, (fam, line)) in &listed {
        for label in &fam.labels {
            // Open-ended by design: transitions and HTTP routes/codes (bounded, but listed
            // in their own docs rather than in one line).
            if ["from", "to", "route", "code"].contains(&label.as_str()) {
                continue;
            }
            let seen = values.get(&format!("{name} {label}")).unwrap_or_else(|| {
                panic!("{name}: label {label} has no series in a fresh registry")
            });
            for v in seen {
                assert!(
                    line.contains(&format!("`{v}`")),
                    "README line of {name} does not name the {label} value `{v}`:\n{line}"
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 30, "only {checked} label values checked");
}

#[test]
fn no_object_names_reach_the_output() {
    let t = exercised();
    t.rollout_observed("team-secret-ns", "checkout-frontend", Phase::Paused, 50);
    let text = t.encode();
    for leaked in ["team-secret-ns", "checkout-frontend", "\"ns\"", "\"web\""] {
        assert!(!text.contains(leaked), "{leaked} appears in the metrics");
    }
    assert!(text.contains("rollgate_rollouts{phase=\"Paused\"} 1"));
}
