//! The pure step API on its own: strict due times, requeue times, initial delay, error
//! retry, and the immediate requeue that lets a failure terminate siblings.

#[path = "support/analysis.rs"]
mod support;

use chrono::TimeDelta;
use rollgate::core::analysis::model::{
    AnalysisRunSpec, IntOrString, Metric, MetricProvider, WebMetric,
};
use rollgate::core::analysis::run::{
    AnalysisEvent, PreparedRun, assess, due_metrics, prepare, record_measurement,
};
use rollgate::core::analysis::status::{AnalysisRunStatus, Measurement};
use rollgate::core::analysis::value::AnalysisPhase;
use support::t0;

fn metric(name: &str) -> Metric {
    Metric {
        name: name.into(),
        provider: MetricProvider {
            web: Some(WebMetric {
                url: "http://127.0.0.1:1/".into(),
                ..WebMetric::default()
            }),
            ..MetricProvider::default()
        },
        ..Metric::default()
    }
}

fn measured(
    run: &PreparedRun,
    status: &mut AnalysisRunStatus,
    i: usize,
    phase: AnalysisPhase,
    at: chrono::DateTime<chrono::Utc>,
) {
    let m = Measurement {
        phase,
        message: String::new(),
        started_at: Some(at),
        finished_at: Some(at),
        value: String::new(),
        metadata: Default::default(),
        resume_at: None,
    };
    record_measurement(run, status, i, m, &Default::default(), &[]);
}

#[test]
fn due_is_strictly_after_finish_plus_interval() {
    let mut m = metric("m");
    m.interval = Some("30s".into());
    m.count = Some(IntOrString::Int(2));
    let run = prepare(&AnalysisRunSpec {
        metrics: vec![m],
        ..AnalysisRunSpec::default()
    })
    .expect("valid");
    let mut status = AnalysisRunStatus::default();
    assert_eq!(due_metrics(&run, &status, t0()), vec![0]);
    measured(&run, &mut status, 0, AnalysisPhase::Successful, t0());
    let a = assess(&run, &mut status, t0());
    let due = t0() + TimeDelta::seconds(30);
    assert_eq!(a.next_requeue, Some(due));
    assert!(
        due_metrics(&run, &status, due).is_empty(),
        "not at the due time itself"
    );
    assert_eq!(
        due_metrics(&run, &status, due + TimeDelta::nanoseconds(1)),
        vec![0]
    );
    // An Error measurement is retried 10 s after it finished, whatever the interval.
    let later = due + TimeDelta::seconds(1);
    measured(&run, &mut status, 0, AnalysisPhase::Error, later);
    let a = assess(&run, &mut status, later);
    assert_eq!(a.next_requeue, Some(later + TimeDelta::seconds(10)));
    measured(
        &run,
        &mut status,
        0,
        AnalysisPhase::Successful,
        later + TimeDelta::seconds(11),
    );
    let a = assess(&run, &mut status, later + TimeDelta::seconds(11));
    assert_eq!(status.phase, AnalysisPhase::Successful);
    assert_eq!(a.next_requeue, None);
    assert_eq!(
        a.events,
        vec![
            AnalysisEvent::MetricCompleted {
                name: "m".into(),
                phase: AnalysisPhase::Successful
            },
            AnalysisEvent::RunCompleted {
                phase: AnalysisPhase::Successful
            }
        ]
    );
    assert!(due_metrics(&run, &status, later + TimeDelta::hours(1)).is_empty());
}

#[test]
fn initial_delay_counts_from_started_at() {
    let mut m = metric("late");
    m.initial_delay = Some("1m".into());
    let run = prepare(&AnalysisRunSpec {
        metrics: vec![metric("now"), m],
        ..AnalysisRunSpec::default()
    })
    .expect("valid");
    let mut status = AnalysisRunStatus::default();
    // Not started yet: only the metric without delay is due.
    assert_eq!(due_metrics(&run, &status, t0()), vec![0]);
    measured(&run, &mut status, 0, AnalysisPhase::Successful, t0());
    let a = assess(&run, &mut status, t0());
    assert_eq!(status.started_at, Some(t0()));
    assert_eq!(status.phase, AnalysisPhase::Running);
    assert_eq!(a.next_requeue, Some(t0() + TimeDelta::minutes(1)));
    assert!(due_metrics(&run, &status, t0() + TimeDelta::seconds(59)).is_empty());
    assert_eq!(
        due_metrics(&run, &status, t0() + TimeDelta::minutes(1)),
        vec![1]
    );
}

#[test]
fn a_failure_requeues_at_once_and_the_next_step_terminates() {
    let mut background = metric("background");
    background.interval = Some("1m".into());
    let run = prepare(&AnalysisRunSpec {
        metrics: vec![background, metric("canary")],
        ..AnalysisRunSpec::default()
    })
    .expect("valid");
    let mut status = AnalysisRunStatus::default();
    measured(&run, &mut status, 0, AnalysisPhase::Successful, t0());
    measured(&run, &mut status, 1, AnalysisPhase::Failed, t0());
    let a = assess(&run, &mut status, t0());
    // Terminating is decided from the phases stored before this step.
    assert_eq!(status.phase, AnalysisPhase::Running);
    assert_eq!(a.next_requeue, Some(t0()));
    assert!(due_metrics(&run, &status, t0() + TimeDelta::hours(1)).is_empty());
    assess(&run, &mut status, t0());
    assert_eq!(status.phase, AnalysisPhase::Failed);
    assert_eq!(status.completed_at, Some(t0()));
    assert_eq!(
        status.result("background").map(|r| r.phase),
        Some(AnalysisPhase::Successful)
    );
}

#[test]
fn spec_terminate_ends_successfully_with_run_terminated() {
    let mut m = metric("m");
    m.interval = Some("1m".into());
    let mut spec = AnalysisRunSpec {
        metrics: vec![m],
        ..AnalysisRunSpec::default()
    };
    let run = prepare(&spec).expect("valid");
    let mut status = AnalysisRunStatus::default();
    measured(&run, &mut status, 0, AnalysisPhase::Successful, t0());
    assess(&run, &mut status, t0());
    spec.terminate = true;
    let run = prepare(&spec).expect("valid");
    assess(&run, &mut status, t0() + TimeDelta::seconds(5));
    assert_eq!(status.phase, AnalysisPhase::Successful);
    assert_eq!(status.message, "Run Terminated");
}
