//! Canary and blue-green scenarios through `next`: steps, pauses, inline and background
//! analysis, abort, restart on a new revision, retry, deadlines, blue-green promotion.

#[path = "support/strategy.rs"]
mod support;

use rollgate::core::strategy::{
    Action, AnalysisKind, EventReason, PauseReason, Phase, Readiness, Request, RunPhase, Scale,
    SpecError, compile, next,
};
use support::{Sim, spec};

const CANARY: &str = r#"
targetRef: {name: podinfo}
service: {port: 9898}
strategy:
  canary:
    steps:
      - setWeight: 20
      - pause: {duration: 1m}
      - analysis: {templates: [{templateName: success-rate}], args: [{name: service, value: podinfo-canary}]}
      - setWeight: 50
      - pause: {}
    analysis: {templates: [{templateName: errors}], startingStep: 2}
"#;

fn has(d: &rollgate::core::strategy::Decision, reason: EventReason) -> bool {
    d.events.iter().any(|e| e.reason == reason)
}

#[test]
fn canary_happy_path_follows_every_step() {
    let mut sim = Sim::new(spec(CANARY));
    let init = sim.tick();
    assert_eq!(init.status.phase, Phase::Initialized);
    assert!(init.actions.contains(&Action::CopyTemplateToPrimary {
        revision: "rev0".into()
    }));

    sim.revision = "rev1".into();
    let start = sim.tick();
    assert_eq!(start.status.phase, Phase::Progressing);
    assert!(
        start
            .actions
            .contains(&Action::ScaleCanary { to: Scale::Up })
    );
    assert!(has(&start, EventReason::NewRevisionDetected));

    let d = sim.tick_after(5, None);
    assert_eq!(d.weights().map(|(p, c)| (p.get(), c.get())), Some((80, 20)));
    assert_eq!(
        d.status.phase,
        Phase::Progressing,
        "a timed pause is progressing"
    );
    assert_eq!(d.status.pause_reason, Some(PauseReason::CanaryPauseStep));
    assert_eq!(d.requeue_after_secs, Some(60));

    let d = sim.tick_after(30, None);
    assert!(d.actions.is_empty(), "still pausing: {:?}", d.actions);

    // Pause over: step 2 is an analysis, and the background analysis starts at step 2.
    let d = sim.tick_after(30, None);
    let created = Sim::created(&d);
    assert_eq!(created, ["podinfo-rev1-background", "podinfo-rev1-step-2"]);
    let step_run = &created[1];
    assert_eq!(d.status.current_step_index, Some(2));

    // Running: nothing moves.
    sim.runs.insert(step_run.clone(), RunPhase::Running);
    let d = sim.tick_after(60, None);
    assert!(d.weights().is_none());
    assert!(Sim::created(&d).is_empty(), "runs are created once");

    sim.runs.insert(step_run.clone(), RunPhase::Successful);
    let d = sim.tick_after(60, None);
    assert_eq!(d.weights().map(|(_, c)| c.get()), Some(50));
    assert_eq!(d.status.phase, Phase::Paused, "pause without duration");
    assert!(has(&d, EventReason::RolloutPaused));
    assert_eq!(d.requeue_after_secs, None);

    let d = sim.tick_after(3600, None);
    assert_eq!(d.status.phase, Phase::Paused, "waits until promoted");

    let d = sim.tick_after(1, Some(Request::Promote));
    assert_eq!(d.status.phase, Phase::Promoting);
    assert!(d.actions.contains(&Action::TerminateAnalysisRun {
        name: "podinfo-rev1-background".into()
    }));
    assert!(d.actions.contains(&Action::CopyTemplateToPrimary {
        revision: "rev1".into()
    }));

    sim.primary = Readiness::NotReady;
    let d = sim.tick_after(5, None);
    assert!(d.weights().is_none(), "traffic waits for the primary");
    sim.primary = Readiness::Ready;
    let d = sim.tick_after(5, None);
    assert_eq!(d.weights().map(|(p, c)| (p.get(), c.get())), Some((100, 0)));
    assert_eq!(d.status.phase, Phase::Finalising);
    let d = sim.tick_after(1, None);
    assert_eq!(d.status.phase, Phase::Succeeded);
    assert!(d.actions.contains(&Action::ScaleCanary { to: Scale::Zero }));
    assert_eq!(d.status.last_promoted_revision.as_deref(), Some("rev1"));
    assert_eq!(
        d.status.history.last().map(|h| h.phase),
        Some(Phase::Succeeded)
    );
    assert_eq!(sim.canary_weights(), [0, 20, 50, 0]);
}

fn at_step_analysis() -> (Sim, String) {
    let mut sim = Sim::started(spec(CANARY));
    sim.tick_after(5, None);
    let d = sim.tick_after(60, None);
    let run = Sim::created(&d).pop().expect("step run");
    (sim, run)
}

#[test]
fn failed_or_errored_analysis_aborts_with_weight_zero_at_once() {
    for phase in [RunPhase::Failed, RunPhase::Error] {
        let (mut sim, run) = at_step_analysis();
        assert_eq!(sim.status.canary_weight, 20);
        sim.runs.insert(run.clone(), phase);
        let d = sim.tick_after(10, None);
        assert_eq!(d.status.phase, Phase::Failed);
        assert!(d.status.aborted);
        assert_eq!(d.weights().map(|(p, c)| (p.get(), c.get())), Some((100, 0)));
        assert_eq!(d.status.canary_weight, 0);
        assert!(d.actions.contains(&Action::ScaleCanary { to: Scale::Zero }));
        assert!(d.actions.contains(&Action::TerminateAnalysisRun {
            name: "podinfo-rev1-background".into()
        }));
        let ev = d
            .events
            .iter()
            .find(|e| e.reason == EventReason::RolloutAborted)
            .expect("event");
        assert!(ev.warning && ev.message.contains(&run), "{}", ev.message);
        assert_eq!(d.requeue_after_secs, None);
    }
}

#[test]
fn inconclusive_analysis_pauses_until_promoted() {
    let (mut sim, run) = at_step_analysis();
    sim.runs.insert(run, RunPhase::Inconclusive);
    let d = sim.tick_after(10, None);
    assert_eq!(d.status.phase, Phase::Paused);
    assert_eq!(
        d.status.pause_reason,
        Some(PauseReason::InconclusiveAnalysis)
    );
    assert!(has(&d, EventReason::InconclusiveAnalysisRun));
    assert!(d.weights().is_none(), "weight holds");
    let d = sim.tick_after(600, None);
    assert_eq!(d.status.phase, Phase::Paused);
    let d = sim.tick_after(1, Some(Request::Promote));
    assert_eq!(
        d.weights().map(|(_, c)| c.get()),
        Some(50),
        "promote resumes to the next step"
    );
}

#[test]
fn background_analysis_failure_aborts_and_starts_only_at_its_step() {
    let mut sim = Sim::started(spec(CANARY));
    let d = sim.tick_after(5, None);
    assert!(Sim::created(&d).is_empty(), "startingStep 2 not reached");
    let d = sim.tick_after(60, None);
    assert!(Sim::created(&d).contains(&"podinfo-rev1-background".to_owned()));
    sim.runs
        .insert("podinfo-rev1-background".into(), RunPhase::Failed);
    let d = sim.tick_after(60, None);
    assert_eq!(d.status.phase, Phase::Failed);
    assert_eq!(d.weights().map(|(_, c)| c.get()), Some(0));
    assert!(d.actions.contains(&Action::TerminateAnalysisRun {
        name: "podinfo-rev1-step-2".into()
    }));
}

#[test]
fn background_inconclusive_pauses_once_and_promote_resumes() {
    let mut sim = Sim::started(spec(CANARY));
    sim.tick_after(5, None);
    sim.tick_after(60, None);
    sim.runs
        .insert("podinfo-rev1-background".into(), RunPhase::Inconclusive);
    let d = sim.tick_after(10, None);
    assert_eq!(
        d.status.pause_reason,
        Some(PauseReason::InconclusiveAnalysis)
    );
    let d = sim.tick_after(10, Some(Request::Promote));
    assert_eq!(d.status.phase, Phase::Progressing);
    sim.runs
        .insert("podinfo-rev1-step-2".into(), RunPhase::Successful);
    let d = sim.tick_after(10, None);
    assert_eq!(
        d.weights().map(|(_, c)| c.get()),
        Some(50),
        "the acknowledged run no longer pauses"
    );
}

#[test]
fn manual_abort_and_abort_stays_until_retry() {
    let (mut sim, run) = at_step_analysis();
    let d = sim.tick_after(1, Some(Request::Abort));
    assert_eq!(d.status.phase, Phase::Failed);
    assert!(
        d.actions
            .contains(&Action::TerminateAnalysisRun { name: run })
    );
    assert_eq!(d.weights().map(|(_, c)| c.get()), Some(0));
    for req in [
        None,
        Some(Request::Promote),
        Some(Request::PromoteFull),
        Some(Request::Abort),
    ] {
        let d = sim.tick_after(600, req);
        assert_eq!(d.status.phase, Phase::Failed, "{req:?}");
        assert!(d.actions.is_empty(), "{req:?}: {:?}", d.actions);
    }
    let d = sim.tick_after(1, Some(Request::Retry));
    assert!(has(&d, EventReason::RolloutRetried));
    assert_eq!(d.status.phase, Phase::Progressing);
    assert_eq!(d.status.current_step_index, Some(0));
    sim.tick_after(5, None);
    let d = sim.tick_after(60, None);
    assert_eq!(
        Sim::created(&d),
        ["podinfo-rev1-background-r1", "podinfo-rev1-step-2-r1"],
        "a retry never reuses a finished run"
    );
}

#[test]
fn new_revision_mid_rollout_restarts() {
    let (mut sim, run) = at_step_analysis();
    sim.revision = "rev2".into();
    let d = sim.tick_after(1, None);
    assert!(has(&d, EventReason::RolloutRestarted));
    assert!(
        d.actions
            .contains(&Action::TerminateAnalysisRun { name: run })
    );
    assert_eq!(d.weights().map(|(p, c)| (p.get(), c.get())), Some((100, 0)));
    assert_eq!(d.status.phase, Phase::Progressing);
    assert_eq!(d.status.current_step_index, Some(0));
    assert_eq!(d.status.last_applied_revision.as_deref(), Some("rev2"));
    assert!(d.status.analysis_runs.is_empty());
}

#[test]
fn reverting_to_the_promoted_revision_is_not_analysed() {
    let (mut sim, run) = at_step_analysis();
    sim.runs.insert(run, RunPhase::Failed);
    sim.tick_after(1, None);
    // GitOps revert: the target goes back to the promoted revision.
    sim.revision = "rev0".into();
    let d = sim.tick_after(30, None);
    assert!(has(&d, EventReason::RevisionAlreadyPromoted));
    assert_eq!(d.status.phase, Phase::Succeeded);
    assert!(!d.status.aborted);
    assert!(Sim::created(&d).is_empty());
    assert!(
        !d.actions
            .iter()
            .any(|a| matches!(a, Action::CopyTemplateToPrimary { .. })),
        "primary already runs rev0"
    );
    for _ in 0..5 {
        let d = sim.tick_after(60, None);
        assert!(d.actions.is_empty());
    }
}

#[test]
fn full_promotion_skips_remaining_steps() {
    let mut sim = Sim::started(spec(CANARY));
    sim.tick_after(5, None);
    let d = sim.tick_after(1, Some(Request::PromoteFull));
    assert_eq!(d.status.phase, Phase::Promoting);
    assert!(Sim::created(&d).is_empty());
}

#[test]
fn progress_deadline_aborts_a_canary_that_never_gets_ready() {
    let yaml = CANARY.replace(
        "service: {port: 9898}",
        "service: {port: 9898}\nprogressDeadlineSeconds: 60",
    );
    let mut sim = Sim::started(spec(&yaml));
    sim.canary = Readiness::NotReady;
    let d = sim.tick_after(5, None);
    assert_eq!(d.status.phase, Phase::Progressing);
    assert!(d.status.not_ready_since.is_some());
    let d = sim.tick_after(30, None);
    assert_eq!(d.status.phase, Phase::Progressing);
    let d = sim.tick_after(31, None);
    assert_eq!(d.status.phase, Phase::Failed);
    assert!(has(&d, EventReason::ProgressDeadlineExceeded));

    let mut sim = Sim::started(spec(CANARY));
    sim.canary = Readiness::Stalled;
    let d = sim.tick_after(1, None);
    assert_eq!(
        d.status.phase,
        Phase::Failed,
        "a stalled Deployment fails at once"
    );
}

const BLUE_GREEN: &str = r#"
targetRef: {name: podinfo}
service: {port: 9898}
strategy:
  blueGreen:
    prePromotionAnalysis: {templates: [{templateName: smoke}]}
    autoPromotionSeconds: 120
    postPromotionAnalysis: {templates: [{templateName: success-rate}]}
    scaleDownDelaySeconds: 30
"#;

#[test]
fn blue_green_preview_analysis_switch_post_analysis_and_scale_down_delay() {
    let mut sim = Sim::started(spec(BLUE_GREEN));
    sim.canary = Readiness::NotReady;
    let d = sim.tick_after(5, None);
    assert!(
        Sim::created(&d).is_empty(),
        "analysis waits for the preview to be ready"
    );
    sim.canary = Readiness::Ready;
    let d = sim.tick_after(5, None);
    assert_eq!(Sim::created(&d), ["podinfo-rev1-pre-0"]);
    assert!(d.actions.iter().any(|a| matches!(
        a,
        Action::CreateAnalysisRun {
            kind: AnalysisKind::PrePromotion,
            ..
        }
    )));
    sim.runs
        .insert("podinfo-rev1-pre-0".into(), RunPhase::Successful);
    let d = sim.tick_after(5, None);
    assert_eq!(d.status.pause_reason, Some(PauseReason::BlueGreenPause));
    assert_eq!(d.requeue_after_secs, Some(120));
    assert!(d.weights().is_none(), "no live traffic before the switch");
    let d = sim.tick_after(120, None);
    assert_eq!(
        d.weights().map(|(p, c)| (p.get(), c.get())),
        Some((0, 100)),
        "switch"
    );
    assert_eq!(Sim::created(&d), ["podinfo-rev1-post-3"]);
    sim.runs
        .insert("podinfo-rev1-post-3".into(), RunPhase::Successful);
    let d = sim.tick_after(60, None);
    assert_eq!(d.status.phase, Phase::Promoting);
    assert!(d.actions.contains(&Action::CopyTemplateToPrimary {
        revision: "rev1".into()
    }));
    let d = sim.tick_after(5, None);
    assert_eq!(d.weights().map(|(p, c)| (p.get(), c.get())), Some((100, 0)));
    assert_eq!(d.status.phase, Phase::Finalising);
    assert_eq!(d.requeue_after_secs, Some(30));
    let d = sim.tick_after(10, None);
    assert!(d.actions.is_empty(), "scale-down delay not over");
    let d = sim.tick_after(20, None);
    assert_eq!(d.status.phase, Phase::Succeeded);
    assert!(d.actions.contains(&Action::ScaleCanary { to: Scale::Zero }));
}

#[test]
fn blue_green_failing_analyses() {
    // Pre-promotion failure: live traffic never reached the preview.
    let mut sim = Sim::started(spec(BLUE_GREEN));
    sim.tick_after(5, None);
    sim.runs
        .insert("podinfo-rev1-pre-0".into(), RunPhase::Failed);
    let d = sim.tick_after(5, None);
    assert_eq!(d.status.phase, Phase::Failed);
    assert!(sim.canary_weights().iter().all(|w| *w == 0));

    // Post-promotion failure: straight back to the primary, which still runs rev0.
    let mut sim = Sim::started(spec(BLUE_GREEN));
    sim.tick_after(5, None);
    sim.runs
        .insert("podinfo-rev1-pre-0".into(), RunPhase::Successful);
    sim.tick_after(5, None);
    sim.tick_after(120, None);
    sim.runs
        .insert("podinfo-rev1-post-3".into(), RunPhase::Error);
    let d = sim.tick_after(60, None);
    assert_eq!(d.status.phase, Phase::Failed);
    assert_eq!(d.weights().map(|(p, c)| (p.get(), c.get())), Some((100, 0)));
    assert_eq!(d.status.primary_revision.as_deref(), Some("rev0"));
    assert!(
        sim.log
            .iter()
            .all(|d| !d.actions.contains(&Action::CopyTemplateToPrimary {
                revision: "rev1".into()
            }))
    );
}

#[test]
fn blue_green_without_auto_promotion_waits_for_promote() {
    let yaml = "targetRef: {name: podinfo}\nservice: {port: 9898}\nstrategy: {blueGreen: {autoPromotionEnabled: false, autoPromotionSeconds: 5}}\n";
    let mut sim = Sim::started(spec(yaml));
    let d = sim.tick_after(5, None);
    assert_eq!(d.status.phase, Phase::Paused);
    let d = sim.tick_after(3600, None);
    assert_eq!(
        d.status.phase,
        Phase::Paused,
        "autoPromotionSeconds ignored without auto-promotion"
    );
    let d = sim.tick_after(1, Some(Request::Promote));
    assert_eq!(d.weights().map(|(_, c)| c.get()), Some(100));
}

#[test]
fn bad_specs_name_the_field() {
    let cases = [
        (
            "strategy: {canary: {steps: [{setWeight: 10}], analysis: {stepWeight: 10}}}",
            "strategy.canary.steps",
        ),
        (
            "strategy: {canary: {analysis: {stepWeight: 10, templates: [{templateName: a}]}}}",
            "strategy.canary.analysis",
        ),
        (
            "strategy: {canary: {steps: [{setWeight: 10}], analysis: {templates: [{templateName: a}], startingStep: 5}}}",
            "strategy.canary.analysis.startingStep",
        ),
        (
            "strategy: {canary: {analysis: {stepWeights: [10, 5]}}}",
            "strategy.canary.analysis.stepWeights[1]",
        ),
        (
            "strategy: {canary: {analysis: {interval: 1m}}}",
            "strategy.canary.analysis.stepWeight",
        ),
        (
            "strategy: {canary: {analysis: {stepWeight: 5, metrics: [{name: custom}]}}}",
            "strategy.canary.analysis.metrics[0].templateRef",
        ),
        (
            "strategy: {canary: {steps: [{analysis: {templates: []}}]}}",
            "strategy.canary.steps[0].analysis.templates",
        ),
        (
            "strategy: {blueGreen: {prePromotionAnalysis: {templates: [{templateName: ''}]}}}",
            "strategy.blueGreen.prePromotionAnalysis.templates[0].templateName",
        ),
        (
            "strategy: {blueGreen: {activeService: a, previewService: a}}",
            "strategy.blueGreen.previewService",
        ),
    ];
    for (strategy, field) in cases {
        let s = spec(&format!(
            "targetRef: {{name: podinfo}}\nservice: {{port: 9898}}\n{strategy}\n"
        ));
        let err: SpecError = compile(&s).expect_err(strategy);
        assert_eq!(err.field(), field, "{strategy}: {err}");
        assert!(err.to_string().starts_with(field), "{err}");
        let sim = Sim::new(s.clone());
        assert!(next(&s, &sim.status, &sim.observations(None), sim.now).is_err());
    }
}

#[test]
fn history_keeps_the_last_ten_and_conditions_follow_the_phase() {
    let yaml = "targetRef: {name: podinfo}\nservice: {port: 9898}\nstrategy: {canary: {steps: [{setWeight: 50}]}}\n";
    let mut sim = Sim::new(spec(yaml));
    sim.tick();
    for n in 1..=12 {
        sim.revision = format!("rev{n}");
        sim.tick_after(10, None);
        sim.run_until_done(10, 10);
        assert_eq!(sim.status.phase, Phase::Succeeded);
    }
    let revs: Vec<&str> = sim
        .status
        .history
        .iter()
        .map(|h| h.revision.as_str())
        .collect();
    assert_eq!(
        revs,
        [
            "rev3", "rev4", "rev5", "rev6", "rev7", "rev8", "rev9", "rev10", "rev11", "rev12"
        ]
    );
    let progressing = sim
        .status
        .conditions
        .iter()
        .find(|c| c.type_ == "Progressing")
        .expect("condition");
    assert_eq!(progressing.reason, "RolloutCompleted");

    let (mut sim, run) = at_step_analysis();
    sim.runs.insert(run, RunPhase::Failed);
    let d = sim.tick_after(1, None);
    let c = d
        .status
        .conditions
        .iter()
        .find(|c| c.type_ == "Progressing")
        .expect("condition");
    assert_eq!(
        (c.reason.as_str(), c.last_transition_time),
        ("RolloutAborted", sim.now)
    );
}

#[test]
fn a_new_revision_after_a_failed_promotion_starts_from_the_primary() {
    let mut sim = Sim::started(spec(
        "targetRef: {name: podinfo}\nservice: {port: 9898}\nstrategy: {canary: {steps: [{setWeight: 40}]}}\n",
    ));
    let d = sim.tick();
    assert_eq!(d.weights().map(|(_, c)| c.get()), Some(40));
    assert_eq!(
        sim.status.phase,
        Phase::Promoting,
        "no step left after the weight"
    );
    sim.primary = Readiness::Stalled;
    let d = sim.tick();
    assert_eq!(
        (d.status.phase, d.status.canary_weight),
        (Phase::Failed, 100)
    );
    sim.primary = Readiness::Ready;
    sim.revision = "rev2".into();
    let d = sim.tick();
    assert_eq!(d.status.phase, Phase::Progressing);
    assert_eq!(d.weights().map(|(p, c)| (p.get(), c.get())), Some((100, 0)));
    let d = sim.tick();
    assert_eq!(d.weights().map(|(_, c)| c.get()), Some(40));
}

/// Flagger's shorthand: five intervals of 60s at weights 20, 40, 60 with a check at the
/// end of each interval.
fn shorthand(threshold: i32) -> String {
    format!(
        r#"
targetRef: {{name: podinfo}}
service: {{port: 9898}}
strategy:
  canary:
    analysis:
      interval: 1m
      threshold: {threshold}
      stepWeight: 20
      maxWeight: 60
      metrics: [{{name: request-success-rate, thresholdRange: {{min: 99}}}}]
"#
    )
}

/// Weight 20 set, then the first interval ends: returns the first check's name.
fn first_check(sim: &mut Sim) -> String {
    let d = sim.tick_after(5, None);
    assert_eq!(d.weights().map(|(_, c)| c.get()), Some(20));
    assert!(
        Sim::created(&d).is_empty(),
        "no check at weight 0 or before the interval"
    );
    let d = sim.tick_after(60, None);
    let created = Sim::created(&d);
    assert_eq!(created, ["podinfo-rev1-check-1-c0"]);
    assert_eq!(d.weights(), None, "the weight waits for the check");
    created[0].clone()
}

#[test]
fn flagger_threshold_two_holds_the_weight_after_one_failed_check() {
    let mut sim = Sim::started(spec(&shorthand(2)));
    let c0 = first_check(&mut sim);
    sim.runs.insert(c0, RunPhase::Failed);
    let d = sim.tick_after(10, None);
    assert_eq!(d.status.phase, Phase::Progressing);
    assert_eq!(d.status.failed_checks, 1);
    assert!(has(&d, EventReason::AnalysisCheckFailed));
    assert_eq!(d.weights(), None, "a failed check does not advance");
    assert_eq!(
        d.requeue_after_secs,
        Some(60),
        "next check one interval later"
    );
    let d = sim.tick_after(30, None);
    assert!(Sim::created(&d).is_empty(), "the interval is not over");
    let d = sim.tick_after(30, None);
    assert_eq!(Sim::created(&d), ["podinfo-rev1-check-1-c1"]);
    sim.runs
        .insert("podinfo-rev1-check-1-c1".into(), RunPhase::Successful);
    let d = sim.tick_after(5, None);
    assert_eq!(d.weights().map(|(_, c)| c.get()), Some(40));
    assert_eq!(
        d.status.failed_checks, 1,
        "a passing check does not reset it"
    );
    // A second failure later in the rollout reaches the threshold.
    let d = sim.tick_after(60, None);
    assert_eq!(Sim::created(&d), ["podinfo-rev1-check-3-c1"]);
    sim.runs
        .insert("podinfo-rev1-check-3-c1".into(), RunPhase::Failed);
    let d = sim.tick_after(5, None);
    assert_eq!(d.status.phase, Phase::Failed);
    assert_eq!(d.status.failed_checks, 2);
    assert_eq!(d.weights().map(|(_, c)| c.get()), Some(0));
    assert!(
        d.events
            .iter()
            .any(|e| e.reason == EventReason::RolloutAborted
                && e.message.contains("Failed checks threshold reached 2"))
    );
}

#[test]
fn flagger_threshold_one_aborts_on_the_first_failed_check() {
    let mut sim = Sim::started(spec(&shorthand(1)));
    let c0 = first_check(&mut sim);
    sim.runs.insert(c0, RunPhase::Error);
    let d = sim.tick_after(5, None);
    assert_eq!(d.status.phase, Phase::Failed);
    assert_eq!(d.weights().map(|(_, c)| c.get()), Some(0));
}

#[test]
fn flagger_checks_pass_to_promotion_and_a_new_rollout_resets_the_count() {
    let mut sim = Sim::started(spec(&shorthand(3)));
    let c0 = first_check(&mut sim);
    sim.runs.insert(c0, RunPhase::Failed);
    sim.tick_after(5, None);
    for _ in 0..12 {
        let d = sim.tick_after(60, None);
        for name in Sim::created(&d) {
            sim.runs.insert(name, RunPhase::Successful);
        }
        if !sim.tick_after(1, None).status.phase.is_active() {
            break;
        }
    }
    assert_eq!(sim.status.phase, Phase::Succeeded);
    assert_eq!(sim.canary_weights(), [0, 20, 40, 60, 0]);
    assert_eq!(sim.status.failed_checks, 1);
    sim.revision = "rev2".into();
    let d = sim.tick();
    assert_eq!(d.status.failed_checks, 0, "a new rollout starts from zero");
}
