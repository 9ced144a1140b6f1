//! Flagger's public vectors (weights, state machine, Gateway API router, Services) driven
//! through the strategy's public API. Vectors for features rollgate's strategy does not
//! have (A/B iterations, session affinity, Deployment readiness, Service finalisers) are
//! named in `NOT_STRATEGY` and counted, so none is silently skipped.

#[path = "support/strategy.rs"]
mod support;

use rollgate::core::strategy::{
    Action, Phase, Readiness, Scale, ServiceRole, Weight, compile, flagger_weights,
    managed_services, set_weights,
};
use serde_json::{Value, json};
use support::{Sim, spec};

fn vectors() -> Value {
    // The shared vectors sit beside the checkout (`../shared`), in CI as for developers.
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/vectors/flagger-cases.json"
    );
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{path}: {e} (the shared vectors must sit beside the repo)"));
    serde_json::from_str(&text).expect("json")
}

fn w(n: u64) -> Weight {
    Weight::new(u8::try_from(n).expect("small")).expect("<= 100")
}

/// A canary spec using Flagger's shorthand from a vector's fields.
fn shorthand(case: &Value) -> String {
    let mut fields = Vec::new();
    for key in [
        "stepWeight",
        "maxWeight",
        "stepWeightPromotion",
        "threshold",
    ] {
        if let Some(v) = case.get(key) {
            fields.push(format!("{key}: {v}"));
        }
    }
    if let Some(v) = case.get("stepWeights") {
        fields.push(format!("stepWeights: {v}"));
    }
    if let Some(v) = case.get("interval") {
        fields.push(format!("interval: {v}"));
    }
    format!(
        "targetRef: {{name: podinfo}}\nservice: {{port: 9898}}\nstrategy:\n  canary:\n    analysis: {{{}}}\n",
        fields.join(", ")
    )
}

fn ints(v: &Value) -> Vec<u8> {
    v.as_array()
        .expect("list")
        .iter()
        .map(|x| u8::try_from(x.as_u64().expect("int")).expect("small"))
        .collect()
}

#[test]
fn weight_vectors_compile_and_run_with_flaggers_sequence() {
    let v = vectors();
    let mut used = 0;
    for case in v["weights"].as_array().expect("weights") {
        if case.get("iterations").is_some() {
            // A/B iterations: not a canary weight sequence (NOT_STRATEGY below).
            continue;
        }
        used += 1;
        let spec = spec(&shorthand(case));
        let plan = compile(&spec).expect("compiles");
        let expected = ints(&case["expected_sequence"]);
        let mut distinct: Vec<u8> = plan.weights().iter().map(|w| w.get()).collect();
        distinct.dedup();
        assert_eq!(distinct, expected, "{}", case["source"]);

        // Through the state machine, one tick per interval.
        let mut sim = Sim::started(spec);
        sim.run_until_done(60, 100);
        assert_eq!(sim.status.phase, Phase::Succeeded, "{}", case["source"]);
        let seen = sim.canary_weights();
        // First write is the initialisation (100/0); then the steps, then promotion.
        assert_eq!(seen[0], 0);
        assert_eq!(
            &seen[1..=expected.len()],
            expected.as_slice(),
            "{}",
            case["source"]
        );
        if let Some(primary) = case.get("expected_primary_sequence") {
            let primaries: Vec<u8> = sim
                .log
                .iter()
                .flat_map(|d| d.actions.iter())
                .filter_map(|a| match a {
                    Action::SetWeights { primary, .. } => Some(primary.get()),
                    _ => None,
                })
                .collect();
            assert_eq!(
                &primaries[..3],
                ints(primary).as_slice(),
                "{}",
                case["source"]
            );
        }
        if let Some(promo) = case.get("expected_promotion_canary_sequence") {
            assert_eq!(
                &seen[1 + expected.len()..],
                ints(promo).as_slice(),
                "{}",
                case["source"]
            );
        } else {
            assert_eq!(seen[1 + expected.len()..], [0], "{}", case["source"]);
        }
    }
    assert_eq!(used, 3, "weight vectors exercised");
}

/// The examples of flagger-semantics §3 (overshoot, stepWeights capping).
#[test]
fn flagger_weight_semantics_of_the_reference() {
    /// stepWeight, stepWeights, maxWeight, expected weights.
    type Row = (Option<u8>, &'static [u8], Option<u8>, &'static [u8]);
    let table: &[Row] = &[
        (Some(20), &[], Some(50), &[20, 40, 60]),
        (Some(10), &[], Some(50), &[10, 20, 30, 40, 50]),
        (Some(50), &[], Some(100), &[50, 100]),
        (Some(30), &[], None, &[30, 60, 90, 100]),
        (None, &[1, 2, 10, 80], None, &[1, 2, 10, 80]),
        (None, &[1, 2, 10, 80], Some(20), &[1, 2, 10, 80]),
        (None, &[1, 2, 10, 100], None, &[1, 2, 10, 100]),
        (Some(25), &[1, 2], None, &[25, 50, 75, 100]),
        (None, &[], None, &[]),
    ];
    for (step, steps, max, expected) in table {
        let steps: Vec<Weight> = steps.iter().map(|s| w(u64::from(*s))).collect();
        let got: Vec<u8> = flagger_weights(
            step.map(|s| w(u64::from(s))),
            &steps,
            max.map(|m| w(u64::from(m))),
        )
        .iter()
        .map(|x| x.get())
        .collect();
        assert_eq!(
            &got, expected,
            "stepWeight {step:?} stepWeights {steps:?} maxWeight {max:?}"
        );
    }
    // stepWeights above 100 cannot be written (Weight is 0..=100); the capping rule is
    // seen with a last weight the cap reaches: [1, 2, 10, 100] above, and through YAML:
    let bad = "targetRef: {name: p}\nservice: {port: 1}\nstrategy: {canary: {analysis: {stepWeights: [1, 2, 10, 200]}}}\n";
    let err = support::try_spec(bad).unwrap_err().to_string();
    assert!(err.contains("stepWeights") && err.contains("200"), "{err}");
}

#[test]
fn state_machine_phases_with_step_weight_promotion() {
    let v = vectors();
    let case = &v["state_machine"][0];
    let spec = spec(&shorthand(&case["given"]["analysis"]));
    let mut sim = Sim::new(spec);
    sim.primary = Readiness::NotReady;
    // Flagger's first tick only creates the primary (no phase yet); ours initialises it.
    sim.tick();
    sim.primary = Readiness::Ready;
    let mut phases = vec![sim.tick()];
    sim.revision = "rev1".into();
    sim.canary = Readiness::NotReady;
    phases.push(sim.tick_after(60, None));
    sim.canary = Readiness::Ready;
    for _ in 0..5 {
        phases.push(sim.tick_after(60, None));
    }
    let expected = case["expected"]["after_ticks"].as_array().expect("ticks");
    assert_eq!(phases.len(), expected.len());
    for (i, (d, e)) in phases.iter().zip(expected).enumerate() {
        assert_eq!(d.status.phase.as_str(), e["phase"], "tick {i}");
        if let Some(cw) = e.get("canaryWeight") {
            assert_eq!(
                u64::from(d.status.canary_weight),
                cw.as_u64().expect("int"),
                "tick {i}"
            );
        }
    }
}

#[test]
fn first_analysed_tick_moves_weight_to_the_first_step() {
    let v = vectors();
    let case = &v["state_machine"][1];
    let mut sim = Sim::started(spec(&shorthand(&case["given"]["analysis"])));
    assert_eq!(sim.status.phase.as_str(), case["given"]["status"]["phase"]);
    assert_eq!(sim.status.canary_weight, 0);
    let d = sim.tick_after(60, None);
    let routes = &case["expected"]["routes"];
    let (p, c) = d.weights().expect("weights set");
    assert_eq!(u64::from(p.get()), routes["primary"].as_u64().expect("int"));
    assert_eq!(u64::from(c.get()), routes["canary"].as_u64().expect("int"));
}

#[test]
fn primary_stalled_while_promoting_fails_forward() {
    let v = vectors();
    let case = &v["state_machine"][2];
    let mut sim = Sim::started(spec(
        "targetRef: {name: podinfo}\nservice: {port: 9898}\nstrategy: {canary: {steps: [{setWeight: 50}]}}\n",
    ));
    sim.tick();
    assert_eq!(sim.status.phase.as_str(), case["given"]["status"]["phase"]);
    sim.primary = Readiness::Stalled;
    let d = sim.tick();
    let e = &case["expected"];
    assert_eq!(d.status.phase.as_str(), e["phase"]);
    let (p, c) = d.weights().expect("routes set");
    assert_eq!(
        u64::from(p.get()),
        e["routes"]["primary"].as_u64().expect("int")
    );
    assert_eq!(
        u64::from(c.get()),
        e["routes"]["canary"].as_u64().expect("int")
    );
    assert_eq!(
        u64::from(d.status.canary_weight),
        e["status.canaryWeight"].as_u64().expect("int")
    );
    assert_eq!(e["canary_replicas"], "unchanged");
    assert!(
        !d.actions
            .iter()
            .any(|a| matches!(a, Action::ScaleCanary { .. }))
    );
}

#[test]
fn skip_analysis_promotes_without_steps() {
    let v = vectors();
    let case = &v["state_machine"][3];
    assert_eq!(case["given"]["spec"]["skipAnalysis"], true);
    let mut sim = Sim::started(spec(
        "targetRef: {name: podinfo}\nservice: {port: 9898}\nskipAnalysis: true\nstrategy: {canary: {steps: [{setWeight: 10}, {analysis: {templates: [{templateName: t}]}}]}}\n",
    ));
    sim.run_until_done(1, 10);
    assert_eq!(sim.status.phase.as_str(), case["expected"]["phase"]);
    assert!(
        sim.log.iter().all(|d| Sim::created(d).is_empty()),
        "no analysis run"
    );
    assert!(
        sim.canary_weights().iter().all(|w| *w == 0),
        "no canary traffic"
    );
    assert!(
        sim.log
            .iter()
            .flat_map(|d| &d.events)
            .any(|e| e.reason.as_str() == "SkippedAnalysis")
    );
}

#[test]
fn gateway_api_reconcile_vector_sets_primary_100_canary_0() {
    let v = vectors();
    let case = &v["gateway_api_router"][0];
    let route = json!({
        "metadata": {"name": "podinfo"},
        "spec": {"rules": [{"backendRefs": [
            {"name": "podinfo-primary", "port": 9898, "weight": 50},
            {"name": "podinfo-canary", "port": 9898, "weight": 50}
        ]}]}
    });
    let up = set_weights(
        &route,
        "podinfo-primary",
        "podinfo-canary",
        Weight::FULL,
        Weight::ZERO,
    )
    .expect("managed rule");
    let rules = up.route["spec"]["rules"].as_array().expect("rules");
    assert_eq!(
        rules.len() as u64,
        case["expected"]["rules"].as_u64().expect("int")
    );
    for (got, want) in rules[0]["backendRefs"]
        .as_array()
        .expect("refs")
        .iter()
        .zip(case["expected"]["backendRefs"].as_array().expect("refs"))
    {
        assert_eq!(got["name"], want["name"]);
        assert_eq!(got["weight"], want["weight"]);
    }
}

#[test]
fn kubernetes_services_vector() {
    let v = vectors();
    let case = &v["kubernetes_services"][0];
    let spec = spec(&format!(
        "targetRef: {{name: {}}}\nservice: {}\nstrategy: {{canary: {{steps: [{{setWeight: 10}}]}}}}\n",
        case["given"]["targetRef"].as_str().expect("name"),
        case["given"]["service"]
    ));
    let services = managed_services(&spec, "app", "podinfo");
    let expected = case["expected"]["services"].as_object().expect("services");
    assert_eq!(services.len(), expected.len());
    for s in &services {
        let want = &expected[&s.name]["selector"]["app"];
        assert_eq!(s.selector.0, "app");
        assert_eq!(json!(s.selector.1), *want, "{}", s.name);
        assert_eq!(s.port, 9898);
        assert_eq!(json!(s.port_name), case["expected"]["port_name"]);
    }
    assert_eq!(
        services
            .iter()
            .filter(|s| s.role == ServiceRole::Apex)
            .count(),
        1
    );
}

/// Vectors outside the strategy layer, by key and index, with the reason.
const NOT_STRATEGY: &[(&str, usize, &str)] = &[
    (
        "weights",
        3,
        "A/B iterations (no `match`/`iterations` in rollgate's Rollout)",
    ),
    ("state_machine", 4, "A/B testing routes"),
    (
        "state_machine",
        5,
        "Deployment readiness is computed by the reconciler",
    ),
    (
        "gateway_api_router",
        1,
        "session affinity cookies are not supported",
    ),
    (
        "kubernetes_services",
        1,
        "revertOnDeletion is a reconciler finaliser",
    ),
];

#[test]
fn every_vector_is_used_or_named() {
    let v = vectors();
    let used: &[(&str, &[usize])] = &[
        ("weights", &[0, 1, 2]),
        ("state_machine", &[0, 1, 2, 3]),
        ("gateway_api_router", &[0]),
        ("kubernetes_services", &[0]),
    ];
    for (key, idx) in used {
        let n = v[*key].as_array().expect("list").len();
        let named = NOT_STRATEGY.iter().filter(|(k, _, _)| k == key).count();
        assert_eq!(idx.len() + named, n, "{key}: every case used or named");
    }
    let _ = Scale::Zero;
}

/// flagger-semantics §1: interval default 60s, below 10s → 10s; threshold <= 0 → 1;
/// maxWeight 0 → 100.
#[test]
fn flagger_analysis_defaults() {
    use rollgate::core::strategy::{AnalysisSource, PlanStep};
    let plan_of = |analysis: &str| {
        compile(&spec(&format!(
            "targetRef: {{name: p}}\nservice: {{port: 1}}\nstrategy: {{canary: {{analysis: {{{analysis}}}}}}}\n"
        )))
        .expect("compiles")
    };
    let pause_secs = |plan: &rollgate::core::strategy::Plan| match &plan.steps[1] {
        PlanStep::Pause {
            duration: Some(d), ..
        } => d.as_secs_ceil(),
        other => panic!("not a timed pause: {other:?}"),
    };
    assert_eq!(pause_secs(&plan_of("stepWeight: 50")), 60);
    assert_eq!(pause_secs(&plan_of("stepWeight: 50, interval: 5s")), 10);
    assert_eq!(pause_secs(&plan_of("stepWeight: 50, interval: 2m")), 120);
    let p = plan_of(
        "stepWeight: 50, maxWeight: 0, threshold: -3, metrics: [{name: request-success-rate}]",
    );
    assert_eq!(p.weights().last().map(|w| w.get()), Some(100));
    match &p.background.as_ref().expect("checks").source {
        AnalysisSource::FlaggerChecks { threshold, .. } => assert_eq!(*threshold, 1),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        plan_of("stepWeight: 25").minimum_secs(),
        4 * 60,
        "interval × maxWeight/stepWeight"
    );
}
