//! Property tests of the state machine over random plans and random observation
//! sequences: weights only move as the steps say and never exceed the final weight; an
//! aborted rollout stays aborted until retried; a promoted revision is never analysed
//! again.

use std::collections::BTreeMap;

use proptest::prelude::*;
use rollgate::core::strategy::{
    Action, AnalysisRef, AnalysisSource, BlueGreenStrategy, CanaryAnalysis, CanaryStep,
    CanaryStrategy, Decision, EventReason, FlaggerMetric, GoDuration, Observations, PauseStep,
    Phase, PlanStep, Readiness, Request, RolloutSpec, RolloutStatus, RunPhase, ServiceSpec,
    Strategy as RolloutStrategy, TargetKind, TargetRef, TemplateRef, Timestamp, Weight, compile,
    next,
};

fn template(name: &str) -> AnalysisRef {
    AnalysisRef {
        templates: vec![TemplateRef {
            template_name: name.into(),
            cluster_scope: false,
        }],
        args: vec![],
    }
}

fn weight() -> impl Strategy<Value = Weight> {
    (0u8..=100).prop_map(|w| Weight::new(w).expect("<= 100"))
}

fn step() -> impl Strategy<Value = CanaryStep> {
    prop_oneof![
        3 => weight().prop_map(CanaryStep::SetWeight),
        2 => proptest::option::of(1u64..300).prop_map(|d| CanaryStep::Pause(PauseStep {
            duration: d.map(GoDuration::from_secs),
        })),
        2 => Just(CanaryStep::Analysis(template("step"))),
    ]
}

fn canary_with_steps() -> impl Strategy<Value = Strategy_> {
    (
        proptest::collection::vec(step(), 1..8),
        proptest::option::of(0u32..8),
    )
        .prop_map(|(steps, bg)| {
            let analysis = bg.map(|s| CanaryAnalysis {
                starting_step: Some(s.min(u32::try_from(steps.len()).expect("small"))),
                ..CanaryAnalysis {
                    templates: template("bg").templates,
                    ..CanaryAnalysis::default()
                }
            });
            Strategy_(RolloutStrategy::Canary(CanaryStrategy { steps, analysis }))
        })
}

fn flagger_shorthand() -> impl Strategy<Value = Strategy_> {
    (
        1u8..=100,
        proptest::option::of(1u8..=100),
        proptest::option::of(1u8..=100),
        proptest::option::of(-1i32..4),
    )
        .prop_map(|(step, max, promo, threshold)| {
            let w = |n: u8| Weight::new(n).expect("<= 100");
            Strategy_(RolloutStrategy::Canary(CanaryStrategy {
                steps: vec![],
                analysis: Some(CanaryAnalysis {
                    interval: Some(GoDuration::from_secs(30)),
                    step_weight: Some(w(step)),
                    max_weight: max.map(w),
                    step_weight_promotion: promo.map(w),
                    threshold,
                    metrics: threshold
                        .map(|_| FlaggerMetric {
                            name: "request-success-rate".into(),
                            interval: None,
                            threshold_range: None,
                            template_ref: None,
                            template_variables: Default::default(),
                        })
                        .into_iter()
                        .collect(),
                    ..CanaryAnalysis::default()
                }),
            }))
        })
}

fn blue_green() -> impl Strategy<Value = Strategy_> {
    (
        any::<bool>(),
        any::<bool>(),
        proptest::option::of(any::<bool>()),
        proptest::option::of(0u32..200),
        0u32..60,
    )
        .prop_map(|(pre, post, auto, secs, delay)| {
            Strategy_(RolloutStrategy::BlueGreen(BlueGreenStrategy {
                pre_promotion_analysis: pre.then(|| template("pre")),
                post_promotion_analysis: post.then(|| template("post")),
                auto_promotion_enabled: auto,
                auto_promotion_seconds: secs,
                scale_down_delay_seconds: Some(delay),
                ..BlueGreenStrategy::default()
            }))
        })
}

/// Newtype so the strategy enum can be a proptest value without clashing names.
#[derive(Debug, Clone)]
struct Strategy_(RolloutStrategy);

fn spec() -> impl Strategy<Value = RolloutSpec> {
    (
        prop_oneof![canary_with_steps(), flagger_shorthand(), blue_green()],
        any::<bool>(),
    )
        .prop_map(|(s, skip)| RolloutSpec {
            target_ref: TargetRef {
                api_version: "apps/v1".into(),
                kind: TargetKind::Deployment,
                name: "podinfo".into(),
            },
            service: ServiceSpec {
                name: None,
                port: 9898,
                target_port: None,
                port_name: None,
            },
            traffic_routing: None,
            strategy: s.0,
            progress_deadline_seconds: Some(600),
            skip_analysis: skip,
        })
}

#[derive(Debug, Clone)]
struct Tick {
    dt: u64,
    revision: usize,
    canary: Readiness,
    primary: Readiness,
    run_phases: [RunPhase; 3],
    request: Option<Request>,
}

fn readiness() -> impl Strategy<Value = Readiness> {
    prop_oneof![8 => Just(Readiness::Ready), 3 => Just(Readiness::NotReady), 1 => Just(Readiness::Stalled)]
}

fn run_phase() -> impl Strategy<Value = RunPhase> {
    prop_oneof![
        2 => Just(RunPhase::Pending),
        2 => Just(RunPhase::Running),
        6 => Just(RunPhase::Successful),
        1 => Just(RunPhase::Failed),
        1 => Just(RunPhase::Error),
        1 => Just(RunPhase::Inconclusive),
    ]
}

fn tick() -> impl Strategy<Value = Tick> {
    (
        0u64..400,
        prop_oneof![6 => Just(1usize), 1 => Just(0usize), 1 => Just(2usize)],
        readiness(),
        readiness(),
        [run_phase(), run_phase(), run_phase()],
        prop_oneof![
            10 => Just(None),
            2 => Just(Some(Request::Promote)),
            1 => Just(Some(Request::PromoteFull)),
            1 => Just(Some(Request::Abort)),
            2 => Just(Some(Request::Retry)),
        ],
    )
        .prop_map(
            |(dt, revision, canary, primary, run_phases, request)| Tick {
                dt,
                revision,
                canary,
                primary,
                run_phases,
                request,
            },
        )
}

const REVISIONS: [&str; 3] = ["rev0", "rev1", "rev2"];

/// Run the ticks, checking the three properties after each one.
fn check(spec: &RolloutSpec, ticks: &[Tick]) -> Result<(), TestCaseError> {
    let plan = compile(spec).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let threshold = plan.background.as_ref().and_then(|b| match &b.source {
        AnalysisSource::FlaggerChecks { threshold, .. } => Some(*threshold),
        AnalysisSource::Templates(_) => None,
    });
    let final_weight = plan.final_weight().get();
    let mut status = RolloutStatus::default();
    let mut now = Timestamp::from_unix(1_800_000_000);
    // The first tick initialises the primary with rev0.
    let first = Observations {
        rollout_name: "podinfo".into(),
        revision: "rev0".into(),
        canary: Readiness::Ready,
        primary: Readiness::Ready,
        runs: BTreeMap::new(),
        request: None,
    };
    status = next(spec, &status, &first, now).expect("compiles").status;
    for t in ticks {
        now = now.plus_secs(t.dt);
        let runs = status
            .analysis_runs
            .iter()
            .enumerate()
            .map(|(i, r)| (r.name.clone(), t.run_phases[i % 3]))
            .collect();
        let obs = Observations {
            rollout_name: "podinfo".into(),
            revision: REVISIONS[t.revision].into(),
            canary: t.canary,
            primary: t.primary,
            runs,
            request: t.request,
        };
        let prev = status.clone();
        let d: Decision = next(spec, &prev, &obs, now).expect("compiles");
        let fail_forward = d
            .events
            .iter()
            .any(|e| e.reason == EventReason::PromotionFailed);
        let same_revision = prev.last_applied_revision.as_deref() == Some(obs.revision.as_str());

        // 1. Weights only move as the steps say and never exceed the final weight.
        for a in &d.actions {
            if let Action::SetWeights { primary, canary } = a {
                prop_assert_eq!(u16::from(primary.get()) + u16::from(canary.get()), 100);
                if !fail_forward {
                    prop_assert!(
                        canary.get() <= final_weight,
                        "weight {} above final {}",
                        canary,
                        final_weight
                    );
                }
                let stepped = d
                    .events
                    .iter()
                    .any(|e| e.reason == EventReason::TrafficWeightChanged);
                if stepped && canary.get() > 0 {
                    let from = prev.current_step_index.unwrap_or(0) as usize;
                    let to = d.status.current_step_index.unwrap_or(0) as usize;
                    let setters: Vec<PlanStep> = plan.steps[from.min(to)..to]
                        .iter()
                        .filter(|s| matches!(s, PlanStep::SetWeight { .. }))
                        .cloned()
                        .collect();
                    prop_assert_eq!(
                        setters,
                        vec![PlanStep::SetWeight { weight: *canary }],
                        "one step's weight per tick"
                    );
                } else if canary.get() > 0 && !fail_forward {
                    // Otherwise traffic only goes back towards the primary while promoting.
                    prop_assert!(
                        prev.phase == Phase::Promoting,
                        "weight {} raised outside a step in {:?}",
                        canary,
                        prev.phase
                    );
                    prop_assert!(canary.get() < prev.canary_weight);
                }
            }
        }
        prop_assert_eq!(
            d.weights().map_or(prev.canary_weight, |(_, c)| c.get()),
            d.status.canary_weight
        );

        // 2. An aborted rollout stays aborted until retried (or a new revision).
        if prev.phase == Phase::Failed
            && prev.aborted
            && same_revision
            && t.request != Some(Request::Retry)
        {
            prop_assert_eq!(d.status.phase, Phase::Failed);
            prop_assert!(d.status.aborted);
            prop_assert!(
                d.actions.is_empty(),
                "aborted rollout acted: {:?}",
                d.actions
            );
        }

        // 3. A promoted revision is never analysed again.
        if prev.last_promoted_revision.as_deref() == Some(obs.revision.as_str()) {
            prop_assert!(
                !d.actions
                    .iter()
                    .any(|a| matches!(a, Action::CreateAnalysisRun { .. })),
                "analysed the promoted revision {}",
                obs.revision
            );
            prop_assert!(d.weights().is_none_or(|(_, c)| c.get() == 0));
        }
        // 4. Flagger's failed checks accumulate over a rollout (a passing check never
        //    lowers them), grow by at most one per tick, and abort exactly at the threshold.
        let restarted = d.events.iter().any(|e| {
            matches!(
                e.reason,
                EventReason::NewRevisionDetected | EventReason::RolloutRetried
            )
        });
        if !restarted {
            prop_assert!(d.status.failed_checks >= prev.failed_checks);
            prop_assert!(d.status.failed_checks <= prev.failed_checks + 1);
        }
        match threshold {
            Some(t) => {
                if d.status.failed_checks > prev.failed_checks && !restarted {
                    let reached = d.status.failed_checks >= t;
                    prop_assert_eq!(reached, d.status.phase == Phase::Failed);
                    prop_assert_eq!(
                        reached,
                        d.events
                            .iter()
                            .any(|e| e.reason == EventReason::RolloutAborted)
                    );
                }
                if d.status.phase.is_active() {
                    prop_assert!(d.status.failed_checks < t.max(1));
                }
            }
            None => prop_assert_eq!(d.status.failed_checks, 0),
        }
        status = d.status;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn rollout_invariants_hold(spec in spec(), ticks in proptest::collection::vec(tick(), 1..80)) {
        check(&spec, &ticks)?;
    }
}

/// The properties are not vacuous: a failing analysis does abort, and the abort holds.
#[test]
fn the_property_harness_sees_aborts_and_promotions() {
    let spec = RolloutSpec {
        target_ref: TargetRef {
            api_version: "apps/v1".into(),
            kind: TargetKind::Deployment,
            name: "p".into(),
        },
        service: ServiceSpec {
            name: None,
            port: 80,
            target_port: None,
            port_name: None,
        },
        traffic_routing: None,
        strategy: RolloutStrategy::Canary(CanaryStrategy {
            steps: vec![
                CanaryStep::SetWeight(Weight::new(30).expect("w")),
                CanaryStep::Analysis(template("t")),
            ],
            analysis: None,
        }),
        progress_deadline_seconds: None,
        skip_analysis: false,
    };
    let t = |revision, phase, request| Tick {
        dt: 10,
        revision,
        canary: Readiness::Ready,
        primary: Readiness::Ready,
        run_phases: [phase; 3],
        request,
    };
    let ticks = vec![
        t(1, RunPhase::Running, None),
        t(1, RunPhase::Running, None),
        t(1, RunPhase::Failed, None),
        t(1, RunPhase::Successful, Some(Request::Promote)),
        t(1, RunPhase::Successful, Some(Request::Retry)),
    ];
    check(&spec, &ticks).expect("properties hold");
}
