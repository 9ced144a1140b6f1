//! Drives one analysis run in real time: measures the due metrics concurrently through
//! [`Provider`]s, records, assesses and sleeps until the next due time, as Argo's
//! controller reconciles an `AnalysisRun`. The decisions are the pure step API of
//! [`crate::core::analysis::run`]; this module only owns the clock and the I/O.
//!
//! Time is tokio's, so tests run whole analyses under `tokio::time::pause` in
//! milliseconds of real time.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::TimeDelta;

use crate::core::analysis::args::{SECRET_PLACEHOLDER, redact, resolve_metric_args};
use crate::core::analysis::model::{AnalysisRunSpec, Argument, Metric};
use crate::core::analysis::run::{
    AnalysisEvent, DEFAULT_ERROR_RETRY_INTERVAL, assess, due_metrics, evaluate_measurement,
    prepare, record_measurement,
};
use crate::core::analysis::status::{AnalysisRunStatus, Measurement, Time};
use crate::core::analysis::value::AnalysisPhase;
use crate::providers::{Provider, ProviderError};

/// The providers rollgate implements; any other provider makes the run Error up front.
pub const SUPPORTED_PROVIDERS: &[&str] = &["prometheus", "web", "builtin", "judge"];

/// Builds the provider of a metric (arguments substituted). Implemented for closures, so
/// tests inject providers and the CLI passes [`crate::providers::build`].
pub trait ProviderFactory: Send + Sync {
    /// The provider for `metric`.
    ///
    /// # Errors
    /// [`ProviderError`] when the provider is misconfigured; each measurement of the
    /// metric is then Error with this message, as in Argo.
    fn provider(&self, metric: &Metric) -> Result<Arc<dyn Provider>, ProviderError>;
}

impl<F> ProviderFactory for F
where
    F: Fn(&Metric) -> Result<Arc<dyn Provider>, ProviderError> + Send + Sync,
{
    fn provider(&self, metric: &Metric) -> Result<Arc<dyn Provider>, ProviderError> {
        self(metric)
    }
}

/// A metric's provider, or why it could not be built.
type BuiltProvider = Result<Arc<dyn Provider>, ProviderError>;

/// How the runner behaves.
#[derive(Debug, Clone)]
pub struct RunnerOptions {
    /// Delay before retrying after an Error measurement (Argo: 10 s).
    pub error_retry_interval: Duration,
    /// Values of the `secretKeyRef` args, by arg name. They are substituted only into the
    /// metric given to the provider and redacted (`*****`) from messages and metadata.
    pub secrets: BTreeMap<String, String>,
}

impl Default for RunnerOptions {
    fn default() -> Self {
        Self {
            error_retry_interval: DEFAULT_ERROR_RETRY_INTERVAL
                .to_std()
                .unwrap_or(Duration::from_secs(10)),
            secrets: BTreeMap::new(),
        }
    }
}

/// What the runner reports while it runs (for a live view).
#[derive(Debug, Clone, PartialEq)]
pub enum RunnerEvent {
    /// A measurement completed (secrets already redacted).
    Measured {
        /// Metric name.
        metric: String,
        /// The measurement.
        measurement: Measurement,
    },
    /// A metric or the run completed.
    Assessed(AnalysisEvent),
}

/// The run's clock: wall time at the start plus tokio's elapsed time, so paused tokio
/// time gives exact, repeatable timestamps.
struct Clock {
    wall: Time,
    start: tokio::time::Instant,
}

impl Clock {
    fn now(&self) -> Time {
        let elapsed = TimeDelta::from_std(self.start.elapsed()).unwrap_or(TimeDelta::MAX);
        self.wall + elapsed
    }

    fn instant(&self, t: Time) -> tokio::time::Instant {
        let offset = (t - self.wall).to_std().unwrap_or(Duration::ZERO);
        self.start + offset
    }
}

fn error_status(message: String) -> AnalysisRunStatus {
    AnalysisRunStatus {
        phase: AnalysisPhase::Error,
        message,
        ..AnalysisRunStatus::default()
    }
}

/// Args as the provider sees them: secret args carry their values.
fn args_with_secrets(
    args: &[Argument],
    secrets: &BTreeMap<String, String>,
) -> Result<Vec<Argument>, String> {
    args.iter()
        .map(|a| {
            let Some(r) = a
                .value_from
                .as_ref()
                .and_then(|v| v.secret_key_ref.as_ref())
            else {
                return Ok(a.clone());
            };
            let value = secrets
                .get(&a.name)
                .ok_or_else(|| format!("key '{}' does not exist in secret '{}'", r.key, r.name))?;
            Ok(Argument {
                name: a.name.clone(),
                value: Some(value.clone()),
                value_from: None,
            })
        })
        .collect()
}

fn redact_map(map: &BTreeMap<String, String>, secrets: &[String]) -> BTreeMap<String, String> {
    map.iter()
        .map(|(k, v)| (k.clone(), redact(v, secrets)))
        .collect()
}

/// Runs the analysis to its end and returns the final status.
///
/// An invalid spec ends at once: Error with `Unable to resolve metric arguments: ...` or
/// `Analysis spec invalid: ...`. A metric whose provider rollgate does not implement
/// (kayenta, datadog, ...), or a `job` metric (which needs the controller), ends the run
/// Error naming the metric and the provider.
pub async fn run_analysis<F>(
    spec: &AnalysisRunSpec,
    factory: &dyn ProviderFactory,
    options: &RunnerOptions,
    mut on_event: F,
) -> AnalysisRunStatus
where
    F: FnMut(&RunnerEvent),
{
    let clock = Clock {
        wall: chrono::Utc::now(),
        start: tokio::time::Instant::now(),
    };
    let mut run = match prepare(spec) {
        Ok(r) => r,
        Err(e) => return error_status(e.to_string()),
    };
    run.error_retry_interval =
        TimeDelta::from_std(options.error_retry_interval).unwrap_or(DEFAULT_ERROR_RETRY_INTERVAL);
    for m in &run.metrics {
        if let Some(p) = m
            .metric
            .provider
            .names()
            .into_iter()
            .find(|n| !SUPPORTED_PROVIDERS.contains(&n.as_str()))
        {
            if p == "job" {
                return error_status(format!(
                    "Metric \"{}\": provider job is not supported by rollgate analyze: {}",
                    m.metric.name,
                    crate::providers::job::NEEDS_CONTROLLER
                ));
            }
            return error_status(format!(
                "Metric \"{}\": provider {p} is not supported by rollgate (supported: {})",
                m.metric.name,
                SUPPORTED_PROVIDERS.join(", ")
            ));
        }
    }
    let secret_values: Vec<String> = options
        .secrets
        .values()
        .filter(|v| !v.is_empty() && v.as_str() != SECRET_PLACEHOLDER)
        .cloned()
        .collect();
    let args = match args_with_secrets(&spec.args, &options.secrets) {
        Ok(a) => a,
        Err(e) => return error_status(format!("Unable to resolve metric arguments: {e}")),
    };
    // The metric as the provider sees it, and its provider (or why there is none).
    let mut measured: Vec<(Metric, BuiltProvider)> = Vec::new();
    for m in &spec.metrics {
        let resolved = match resolve_metric_args(m, &args) {
            Ok(r) => r,
            Err(e) => {
                return error_status(format!(
                    "Unable to resolve metric arguments: {}",
                    redact(&e, &secret_values)
                ));
            }
        };
        let provider = factory.provider(&resolved);
        measured.push((resolved, provider));
    }

    let mut status = AnalysisRunStatus::default();
    loop {
        let now = clock.now();
        let due = due_metrics(&run, &status, now);
        let outcomes = futures::future::join_all(due.iter().map(|&i| {
            let (metric, provider) = &measured[i];
            let clock = &clock;
            async move {
                let started = clock.now();
                let outcome = match provider {
                    Ok(p) => p.measure(metric).await.map_err(|e| e.message),
                    Err(e) => Err(e.message.clone()),
                };
                (i, started, clock.now(), outcome)
            }
        }))
        .await;
        for (i, started, finished, outcome) in outcomes {
            let metric = &run.metrics[i];
            let mut measurement = evaluate_measurement(metric, &outcome, started, finished);
            measurement.message = redact(&measurement.message, &secret_values);
            measurement.metadata = redact_map(&measurement.metadata, &secret_values);
            let metric_metadata = outcome
                .as_ref()
                .map(|o| redact_map(&o.metric_metadata, &secret_values))
                .unwrap_or_default();
            on_event(&RunnerEvent::Measured {
                metric: metric.metric.name.clone(),
                measurement: measurement.clone(),
            });
            record_measurement(
                &run,
                &mut status,
                i,
                measurement,
                &metric_metadata,
                &secret_values,
            );
        }
        let now = clock.now();
        let assessment = assess(&run, &mut status, now);
        for e in assessment.events {
            on_event(&RunnerEvent::Assessed(e));
        }
        if status.phase.is_completed() {
            return status;
        }
        // Due means strictly after the due time: wake just past it.
        let next = assessment
            .next_requeue
            .unwrap_or(now + run.error_retry_interval);
        let wake = clock.instant(next.max(now)) + Duration::from_millis(1);
        tokio::time::sleep_until(wake).await;
    }
}
