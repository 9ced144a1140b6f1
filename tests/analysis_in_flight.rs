//! The pure step API with asynchronous measurements (Argo's `job` provider): a measurement
//! in progress is recorded but not counted, blocks new measurements of its metric, is
//! resumed (at once, or at its `resumeAt`) until it completes, and is terminated with the
//! run; recording the provider's answer replaces it.

#[path = "support/analysis.rs"]
mod support;

use chrono::TimeDelta;
use rollgate::core::analysis::model::{
    AnalysisRunSpec, IntOrString, JobMetric, Metric, MetricProvider, WebMetric,
};
use rollgate::core::analysis::run::{
    IN_FLIGHT_POLL_INTERVAL, InFlightAction, PreparedRun, assess, due_metrics, in_flight_metrics,
    prepare, record_measurement, terminated_measurement,
};
use rollgate::core::analysis::status::{AnalysisRunStatus, Measurement, Time};
use rollgate::core::analysis::value::AnalysisPhase;
use support::t0;

fn job_metric(name: &str) -> Metric {
    Metric {
        name: name.into(),
        provider: MetricProvider {
            job: Some(JobMetric {
                metadata: None,
                spec: serde_json::json!({"template": {"spec": {"containers": []}}}),
            }),
            ..MetricProvider::default()
        },
        ..Metric::default()
    }
}

fn web_metric(name: &str) -> Metric {
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

fn running(started: Time, resume_at: Option<Time>) -> Measurement {
    Measurement {
        phase: AnalysisPhase::Running,
        message: String::new(),
        started_at: Some(started),
        finished_at: None,
        value: String::new(),
        metadata: [("job-name".to_owned(), "j-1".to_owned())].into(),
        resume_at,
    }
}

fn finished(mut m: Measurement, phase: AnalysisPhase, at: Time) -> Measurement {
    m.phase = phase;
    m.finished_at = Some(at);
    m
}

fn record(run: &PreparedRun, status: &mut AnalysisRunStatus, i: usize, m: Measurement) {
    record_measurement(run, status, i, m, &Default::default(), &[]);
}

fn prepared(metrics: Vec<Metric>) -> PreparedRun {
    prepare(&AnalysisRunSpec {
        metrics,
        ..AnalysisRunSpec::default()
    })
    .expect("valid")
}

#[test]
fn a_running_measurement_is_not_counted_and_is_resumed_until_it_completes() {
    let run = prepared(vec![job_metric("smoke")]);
    let mut status = AnalysisRunStatus::default();
    assert_eq!(due_metrics(&run, &status, t0()), vec![0]);
    assert!(in_flight_metrics(&run, &status, t0()).is_empty());

    record(&run, &mut status, 0, running(t0(), None));
    let a = assess(&run, &mut status, t0());
    let r = status.result("smoke").expect("result");
    assert_eq!(
        (r.phase, r.count, r.measurements.len()),
        (AnalysisPhase::Running, 0, 1)
    );
    assert_eq!(status.phase, AnalysisPhase::Running);
    // Without resumeAt it is polled: the run is requeued within the poll interval.
    assert_eq!(a.next_requeue, Some(t0() + IN_FLIGHT_POLL_INTERVAL));
    // Never due for a second measurement while one is in progress, however late.
    let later = t0() + TimeDelta::hours(1);
    assert!(due_metrics(&run, &status, later).is_empty());
    assert_eq!(
        in_flight_metrics(&run, &status, t0()),
        vec![(0, InFlightAction::Resume)]
    );

    // Still running: the provider's answer replaces it, nothing is counted.
    record(&run, &mut status, 0, running(t0(), None));
    assess(&run, &mut status, t0() + TimeDelta::seconds(3));
    let r = status.result("smoke").expect("result");
    assert_eq!((r.count, r.measurements.len()), (0, 1));

    // Completed: replaced once more and counted once.
    let done = t0() + TimeDelta::seconds(5);
    record(
        &run,
        &mut status,
        0,
        finished(running(t0(), None), AnalysisPhase::Successful, done),
    );
    let a = assess(&run, &mut status, done);
    let r = status.result("smoke").expect("result");
    assert_eq!(r.measurements.len(), 1);
    assert_eq!((r.count, r.successful), (1, 1));
    assert_eq!(r.measurements[0].metadata["job-name"], "j-1");
    assert_eq!(status.phase, AnalysisPhase::Successful);
    assert_eq!(a.next_requeue, None);
    assert!(in_flight_metrics(&run, &status, done).is_empty());
}

#[test]
fn a_failed_job_fails_the_metric_and_the_run() {
    let run = prepared(vec![job_metric("smoke")]);
    let mut status = AnalysisRunStatus::default();
    record(&run, &mut status, 0, running(t0(), None));
    assess(&run, &mut status, t0());
    let mut failed = finished(running(t0(), None), AnalysisPhase::Failed, t0());
    failed.message = "Job j-1 failed: BackoffLimitExceeded".into();
    record(&run, &mut status, 0, failed);
    assess(&run, &mut status, t0());
    assert_eq!(status.phase, AnalysisPhase::Failed);
    assert_eq!(
        status.message,
        "Metric \"smoke\" assessed Failed due to failed (1) > failureLimit (0): \"Error Message: Job j-1 failed: BackoffLimitExceeded\""
    );
}

#[test]
fn resume_at_delays_the_resumption_and_sets_the_requeue() {
    let run = prepared(vec![job_metric("smoke")]);
    let mut status = AnalysisRunStatus::default();
    let resume = t0() + TimeDelta::seconds(30);
    record(&run, &mut status, 0, running(t0(), Some(resume)));
    let a = assess(&run, &mut status, t0());
    assert_eq!(a.next_requeue, Some(resume));
    assert!(in_flight_metrics(&run, &status, resume - TimeDelta::seconds(1)).is_empty());
    assert_eq!(
        in_flight_metrics(&run, &status, resume),
        vec![(0, InFlightAction::Resume)]
    );
}

#[test]
fn the_poll_never_delays_an_earlier_due_sibling() {
    let mut web = web_metric("rate");
    web.interval = Some("2s".into());
    let run = prepared(vec![job_metric("smoke"), web]);
    let mut status = AnalysisRunStatus::default();
    record(&run, &mut status, 0, running(t0(), None));
    record(
        &run,
        &mut status,
        1,
        finished(running(t0(), None), AnalysisPhase::Successful, t0()),
    );
    let a = assess(&run, &mut status, t0());
    assert_eq!(a.next_requeue, Some(t0() + TimeDelta::seconds(2)));
}

#[test]
fn terminating_terminates_the_measurement_in_progress() {
    let mut spec = AnalysisRunSpec {
        metrics: vec![job_metric("smoke")],
        ..AnalysisRunSpec::default()
    };
    let run = prepare(&spec).expect("valid");
    let mut status = AnalysisRunStatus::default();
    record(&run, &mut status, 0, running(t0(), None));
    assess(&run, &mut status, t0());
    spec.terminate = true;
    let run = prepare(&spec).expect("valid");
    let now = t0() + TimeDelta::seconds(4);
    assert!(due_metrics(&run, &status, now).is_empty());
    assert_eq!(
        in_flight_metrics(&run, &status, now),
        vec![(0, InFlightAction::Terminate)]
    );
    let stopped = terminated_measurement(finished(
        running(t0(), None),
        AnalysisPhase::Successful,
        now,
    ));
    assert_eq!(stopped.message, "Metric Terminated");
    record(&run, &mut status, 0, stopped);
    assess(&run, &mut status, now);
    assert_eq!(status.phase, AnalysisPhase::Successful);
    assert_eq!(status.message, "Run Terminated");
    let r = status.result("smoke").expect("result");
    assert_eq!((r.successful, r.measurements.len()), (1, 1));
    // A provider that could not stop it reports Error, which keeps its own message.
    let error = terminated_measurement(Measurement {
        message: "delete Job j-1: forbidden".into(),
        ..finished(running(t0(), None), AnalysisPhase::Error, now)
    });
    assert_eq!(error.message, "delete Job j-1: forbidden");
}

#[test]
fn a_failing_sibling_terminates_the_job_at_the_next_step() {
    let run = prepared(vec![job_metric("smoke"), web_metric("rate")]);
    let mut status = AnalysisRunStatus::default();
    record(&run, &mut status, 0, running(t0(), None));
    record(
        &run,
        &mut status,
        1,
        finished(running(t0(), None), AnalysisPhase::Failed, t0()),
    );
    let a = assess(&run, &mut status, t0());
    assert_eq!(status.phase, AnalysisPhase::Running);
    assert_eq!(a.next_requeue, Some(t0()));
    assert_eq!(
        in_flight_metrics(&run, &status, t0()),
        vec![(0, InFlightAction::Terminate)]
    );
    record(
        &run,
        &mut status,
        0,
        terminated_measurement(finished(
            running(t0(), None),
            AnalysisPhase::Successful,
            t0(),
        )),
    );
    assess(&run, &mut status, t0());
    assert_eq!(status.phase, AnalysisPhase::Failed);
    assert_eq!(
        status.result("smoke").map(|r| r.phase),
        Some(AnalysisPhase::Successful)
    );
}

#[test]
fn the_next_job_is_due_an_interval_after_the_last_one_finished() {
    let mut m = job_metric("smoke");
    m.interval = Some("1m".into());
    m.count = Some(IntOrString::Int(2));
    let run = prepared(vec![m]);
    let mut status = AnalysisRunStatus::default();
    record(&run, &mut status, 0, running(t0(), None));
    assess(&run, &mut status, t0());
    let done = t0() + TimeDelta::seconds(20);
    record(
        &run,
        &mut status,
        0,
        finished(running(t0(), None), AnalysisPhase::Successful, done),
    );
    let a = assess(&run, &mut status, done);
    assert_eq!(a.next_requeue, Some(done + TimeDelta::minutes(1)));
    assert!(due_metrics(&run, &status, done + TimeDelta::minutes(1)).is_empty());
    assert_eq!(
        due_metrics(&run, &status, done + TimeDelta::seconds(61)),
        vec![0]
    );
    // The second measurement is appended, not put in place of the first.
    record(
        &run,
        &mut status,
        0,
        running(done + TimeDelta::seconds(61), None),
    );
    assert_eq!(
        status.result("smoke").map(|r| r.measurements.len()),
        Some(2)
    );
}
