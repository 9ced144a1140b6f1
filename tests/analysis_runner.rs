//! The real-time runner with injected providers and paused tokio time: count/interval
//! timing, error retry, errors not consuming count, termination of siblings, dry-run,
//! unsupported providers and secret redaction.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use rollgate::core::analysis::model::{
    AnalysisRunSpec, Argument, DryRun, IntOrString, Metric, MetricProvider, SecretKeyRef,
    ValueFrom, WebMetric,
};
use rollgate::core::analysis::status::AnalysisRunStatus;
use rollgate::core::analysis::value::{AnalysisPhase, Observation, Value};
use rollgate::providers::{Provider, ProviderError};
use rollgate::runner::{RunnerEvent, RunnerOptions, run_analysis};
use tokio::time::Instant;

type Outcome = Result<f64, String>;

/// Returns scripted outcomes (the last one forever) and records when it was called.
struct Scripted {
    outcomes: Mutex<VecDeque<Outcome>>,
    calls: Mutex<Vec<Instant>>,
    metrics_seen: Mutex<Vec<Metric>>,
}

impl Scripted {
    fn new(outcomes: Vec<Outcome>) -> Arc<Self> {
        Arc::new(Self {
            outcomes: Mutex::new(outcomes.into()),
            calls: Mutex::new(Vec::new()),
            metrics_seen: Mutex::new(Vec::new()),
        })
    }

    /// Call times in seconds since `start`.
    fn call_times(&self, start: Instant) -> Vec<f64> {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .map(|t| (*t - start).as_secs_f64())
            .collect()
    }
}

impl Provider for Scripted {
    fn measure<'a>(
        &'a self,
        metric: &'a Metric,
    ) -> BoxFuture<'a, Result<Observation, ProviderError>> {
        self.calls.lock().unwrap().push(Instant::now());
        self.metrics_seen.lock().unwrap().push(metric.clone());
        let mut q = self.outcomes.lock().unwrap();
        let next = if q.len() > 1 {
            q.pop_front().unwrap()
        } else {
            q.front().cloned().unwrap()
        };
        Box::pin(async move {
            // A measurement takes a little time, as a real query does.
            tokio::time::sleep(Duration::from_millis(50)).await;
            match next {
                Ok(v) => Ok(Observation {
                    result: Value::List(vec![Value::Float(v)]),
                    value: format!("[{v}]"),
                    ..Observation::default()
                }),
                Err(e) => Err(ProviderError::new(e)),
            }
        })
    }
}

fn metric(name: &str) -> Metric {
    Metric {
        name: name.into(),
        success_condition: Some("result[0] >= 0.95".into()),
        provider: MetricProvider {
            web: Some(WebMetric {
                url: format!("http://127.0.0.1:1/{name}"),
                ..WebMetric::default()
            }),
            ..MetricProvider::default()
        },
        ..Metric::default()
    }
}

/// Runs with one scripted provider per metric name.
async fn run(
    spec: &AnalysisRunSpec,
    providers: Vec<(&str, Arc<Scripted>)>,
    options: RunnerOptions,
) -> (AnalysisRunStatus, Vec<RunnerEvent>) {
    let map: Vec<(String, Arc<Scripted>)> = providers
        .into_iter()
        .map(|(n, p)| (n.to_owned(), p))
        .collect();
    let factory = move |m: &Metric| -> Result<Arc<dyn Provider>, ProviderError> {
        map.iter()
            .find(|(n, _)| *n == m.name)
            .map(|(_, p)| p.clone() as Arc<dyn Provider>)
            .ok_or_else(|| ProviderError::new("no scripted provider"))
    };
    let mut events = Vec::new();
    let status = run_analysis(spec, &factory, &options, |e| events.push(e.clone())).await;
    (status, events)
}

fn spec(metrics: Vec<Metric>) -> AnalysisRunSpec {
    AnalysisRunSpec {
        metrics,
        ..AnalysisRunSpec::default()
    }
}

fn near(got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "calls at {got:?}, wanted {want:?}");
    for (g, w) in got.iter().zip(want) {
        assert!((g - w).abs() < 0.5, "calls at {got:?}, wanted {want:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn count_and_interval_space_measurements_from_the_previous_finish() {
    let mut m = metric("rate");
    m.count = Some(IntOrString::Int(3));
    m.interval = Some("30s".into());
    let p = Scripted::new(vec![Ok(0.99)]);
    let start = Instant::now();
    let (status, events) = run(
        &spec(vec![m]),
        vec![("rate", p.clone())],
        RunnerOptions::default(),
    )
    .await;
    assert_eq!(status.phase, AnalysisPhase::Successful);
    assert!(status.message.is_empty());
    let times = p.call_times(start);
    // Each measurement takes 50 ms; the next one is due strictly after finish + 30 s.
    near(&times, &[0.0, 30.05, 60.1]);
    assert!(times[1] - times[0] > 30.05 && times[2] - times[1] > 30.05);
    let r = &status.metric_results[0];
    assert_eq!((r.count, r.successful, r.measurements.len()), (3, 3, 3));
    assert!(status.started_at.is_some() && status.completed_at.is_some());
    let measured = events
        .iter()
        .filter(|e| matches!(e, RunnerEvent::Measured { .. }))
        .count();
    assert_eq!(measured, 3);
}

#[tokio::test(start_paused = true)]
async fn errors_retry_after_ten_seconds_and_do_not_consume_count() {
    let mut m = metric("rate");
    m.interval = Some("5m".into());
    m.count = Some(IntOrString::Int(2));
    let p = Scripted::new(vec![Err("boom".into()), Err("boom".into()), Ok(0.99)]);
    let start = Instant::now();
    let (status, _) = run(
        &spec(vec![m]),
        vec![("rate", p.clone())],
        RunnerOptions::default(),
    )
    .await;
    assert_eq!(status.phase, AnalysisPhase::Successful);
    // Two errors retried 10 s after each, then the second measurement 5 min later.
    near(&p.call_times(start), &[0.0, 10.05, 20.1, 320.15]);
    let r = &status.metric_results[0];
    assert_eq!(
        (r.count, r.error, r.successful, r.consecutive_error),
        (2, 2, 2, 0)
    );
}

#[tokio::test(start_paused = true)]
async fn five_consecutive_errors_error_the_run_with_argos_message() {
    let p = Scripted::new(vec![Err("Provider Error".into())]);
    let start = Instant::now();
    let (status, _) = run(
        &spec(vec![metric("rate")]),
        vec![("rate", p.clone())],
        RunnerOptions::default(),
    )
    .await;
    assert_eq!(status.phase, AnalysisPhase::Error);
    assert_eq!(
        status.message,
        "Metric \"rate\" assessed Error due to consecutiveErrors (5) > consecutiveErrorLimit (4): \"Error Message: Provider Error\""
    );
    near(&p.call_times(start), &[0.0, 10.05, 20.1, 30.15, 40.2]);
    assert_eq!(status.run_summary.error, 1);
}

#[tokio::test(start_paused = true)]
async fn the_error_retry_interval_is_configurable() {
    let p = Scripted::new(vec![Err("down".into()), Ok(0.99)]);
    let start = Instant::now();
    let options = RunnerOptions {
        error_retry_interval: Duration::from_secs(2),
        ..RunnerOptions::default()
    };
    let (status, _) = run(
        &spec(vec![metric("rate")]),
        vec![("rate", p.clone())],
        options,
    )
    .await;
    assert_eq!(status.phase, AnalysisPhase::Successful);
    near(&p.call_times(start), &[0.0, 2.05]);
}

#[tokio::test(start_paused = true)]
async fn a_failing_metric_terminates_its_siblings() {
    let mut background = metric("background");
    background.interval = Some("1m".into());
    let ok = Scripted::new(vec![Ok(0.99)]);
    let bad = Scripted::new(vec![Ok(0.5)]);
    let start = Instant::now();
    let (status, _) = run(
        &spec(vec![background, metric("canary")]),
        vec![("background", ok.clone()), ("canary", bad.clone())],
        RunnerOptions::default(),
    )
    .await;
    assert_eq!(status.phase, AnalysisPhase::Failed);
    assert_eq!(
        status.message,
        "Metric \"canary\" assessed Failed due to failed (1) > failureLimit (0)"
    );
    // The unbounded sibling measured once and ended Successful, cut short at once.
    assert_eq!(ok.call_times(start).len(), 1);
    let bg = status.result("background").unwrap();
    assert_eq!(bg.phase, AnalysisPhase::Successful);
    assert!(Instant::now() - start < Duration::from_secs(1));
    assert_eq!(status.run_summary.count, 2);
    assert_eq!(
        (status.run_summary.failed, status.run_summary.successful),
        (1, 1)
    );
}

#[tokio::test(start_paused = true)]
async fn dry_run_metrics_never_decide_the_run() {
    let mut s = spec(vec![metric("experimental-latency"), metric("rate")]);
    s.dry_run = vec![DryRun {
        metric_name: "latency".into(),
    }];
    let (status, _) = run(
        &s,
        vec![
            ("experimental-latency", Scripted::new(vec![Ok(0.1)])),
            ("rate", Scripted::new(vec![Ok(0.99)])),
        ],
        RunnerOptions::default(),
    )
    .await;
    assert_eq!(status.phase, AnalysisPhase::Successful);
    let dry = status.result("experimental-latency").unwrap();
    assert!(dry.dry_run);
    assert_eq!(dry.phase, AnalysisPhase::Failed);
    assert_eq!(
        dry.message,
        "Metric assessed Failed due to failed (1) > failureLimit (0)"
    );
    let summary = status.dry_run_summary.unwrap();
    assert_eq!((summary.count, summary.failed), (1, 1));
    assert_eq!(
        (status.run_summary.count, status.run_summary.successful),
        (1, 1)
    );
}

#[tokio::test(start_paused = true)]
async fn initial_delay_postpones_the_first_measurement() {
    let mut m = metric("rate");
    m.initial_delay = Some("1m30s".into());
    let p = Scripted::new(vec![Ok(0.99)]);
    let start = Instant::now();
    let (status, _) = run(
        &spec(vec![m]),
        vec![("rate", p.clone())],
        RunnerOptions::default(),
    )
    .await;
    assert_eq!(status.phase, AnalysisPhase::Successful);
    near(&p.call_times(start), &[90.0]);
}

#[tokio::test(start_paused = true)]
async fn unsupported_argo_providers_error_the_run_naming_metric_and_provider() {
    let mut m = metric("load-test");
    m.provider = MetricProvider {
        job: Some(rollgate::core::analysis::model::JobMetric {
            metadata: None,
            spec: serde_json::json!({}),
        }),
        ..MetricProvider::default()
    };
    let (status, _) = run(&spec(vec![m]), vec![], RunnerOptions::default()).await;
    assert_eq!(status.phase, AnalysisPhase::Error);
    assert!(
        status.message.contains("\"load-test\"") && status.message.contains("provider job"),
        "{}",
        status.message
    );
}

#[tokio::test(start_paused = true)]
async fn invalid_specs_end_as_error_runs_without_measuring() {
    let mut m = metric("rate");
    m.count = Some(IntOrString::Int(3));
    let p = Scripted::new(vec![Ok(0.99)]);
    let (status, _) = run(
        &spec(vec![m]),
        vec![("rate", p.clone())],
        RunnerOptions::default(),
    )
    .await;
    assert_eq!(status.phase, AnalysisPhase::Error);
    assert_eq!(
        status.message,
        "Analysis spec invalid: metrics[0]: interval must be specified when count > 1"
    );
    assert!(p.calls.lock().unwrap().is_empty());
}

#[tokio::test(start_paused = true)]
async fn secrets_reach_the_provider_but_never_the_status() {
    let mut m = metric("rate");
    m.provider.web.as_mut().unwrap().url = "http://127.0.0.1:1/?token={{args.token}}".into();
    let mut s = spec(vec![m]);
    s.args = vec![Argument {
        name: "token".into(),
        value: None,
        value_from: Some(ValueFrom {
            secret_key_ref: Some(SecretKeyRef {
                name: "creds".into(),
                key: "token".into(),
            }),
            ..ValueFrom::default()
        }),
    }];
    let p = Scripted::new(vec![Err(
        "GET http://127.0.0.1:1/?token=s3cr3t failed".into()
    )]);
    let options = RunnerOptions {
        secrets: [("token".to_owned(), "s3cr3t".to_owned())].into(),
        ..RunnerOptions::default()
    };
    let (status, events) = run(&s, vec![("rate", p.clone())], options).await;
    let url = p.metrics_seen.lock().unwrap()[0]
        .provider
        .web
        .as_ref()
        .unwrap()
        .url
        .clone();
    assert_eq!(url, "http://127.0.0.1:1/?token=s3cr3t");
    let json = serde_json::to_string(&status).unwrap();
    assert!(!json.contains("s3cr3t"), "{json}");
    assert!(json.contains("token=*****"), "{json}");
    assert!(!format!("{events:?}").contains("s3cr3t"));
    // A missing secret is Argo's error.
    let (status, _) = run(&s, vec![("rate", p.clone())], RunnerOptions::default()).await;
    assert_eq!(
        status.message,
        "Unable to resolve metric arguments: key 'token' does not exist in secret 'creds'"
    );
}

#[tokio::test(start_paused = true)]
async fn unbounded_metrics_keep_the_last_ten_measurements() {
    let mut m = metric("rate");
    m.interval = Some("10s".into());
    m.count = Some(IntOrString::Int(12));
    let (status, _) = run(
        &spec(vec![m]),
        vec![("rate", Scripted::new(vec![Ok(0.99)]))],
        RunnerOptions::default(),
    )
    .await;
    let r = &status.metric_results[0];
    assert_eq!((r.count, r.measurements.len()), (12, 10));
}
