//! rollgate's `judge` provider: queries Prometheus for the baseline and the canary, runs
//! the chosen statistical judge and returns its verdict as the measurement's `result`.
//!
//! The queries go through the same [`PrometheusClient`] as the `prometheus` provider
//! (address, timeout, headers, authentication, error messages). Samples come from range
//! queries over `samples.lookback` ending now, one point every `samples.step`; counters
//! from instant queries. Both arms are queried concurrently. The statistics run on
//! tokio's blocking pool ([`tokio::task::spawn_blocking`]) so a large sample never stalls
//! the runtime. The decision itself is pure: [`crate::core::analysis::judge_metric`].
//!
//! `result` is a map (`result.verdict`, `result.pValue`, `result.estimate`,
//! `result.ciLow`, `result.ciHigh`, `result.score`, ...), `value` a one-line summary
//! (`Fail: shift +0.025 [0.021, 0.03] (95%), p=1.2e-9, n=31/31`).
//!
//! # Phase
//! With a `successCondition` or `failureCondition`, the conditions decide as for any
//! provider. Without conditions the verdict decides ([`Verdict::default_phase`]):
//! Pass → Successful, Fail → Failed, Marginal → Inconclusive, Continue → Successful
//! (a sequential test that has not decided yet lets the next interval look again; see
//! [`crate::core::analysis::judge_metric`] for why).
//!
//! # Errors
//! A query that fails, returns no usable samples (empty, or all NaN), fewer than
//! `minSamples`, or a counter query that does not return exactly one number is a
//! measurement Error whose message names the metric, the arm and the query.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use futures::FutureExt as _;
use futures::future::BoxFuture;
use tracing::Instrument as _;

use super::prometheus::{ClientOptions, PrometheusClient, QueryAnswer, QueryData};
use super::{Provider, ProviderError, ProviderSettings};
use crate::core::analysis::judge_metric::{
    Arm, JudgeMethod, JudgeMetric, JudgeMetricError, JudgeOutcome, Verdict, check_sample_count,
    finite_samples, judge_samples,
};
use crate::core::analysis::model::Metric;
use crate::core::analysis::value::{AnalysisPhase, Observation};

/// The `judge` provider for one metric.
#[derive(Debug, Clone)]
pub struct JudgeProvider {
    client: PrometheusClient,
    spec: JudgeMetric,
}

/// One arm's samples as fetched.
struct ArmSamples {
    values: Vec<f64>,
    warnings: Vec<String>,
}

impl JudgeProvider {
    /// Configure the provider for one metric (arguments already substituted).
    ///
    /// # Errors
    /// [`ProviderError`] for a field the method needs that is missing or out of range
    /// (`judge field samples.lookback: ...`), or a Prometheus connection that cannot be
    /// configured (see [`PrometheusClient::new`]).
    pub fn new(spec: &JudgeMetric, settings: &ProviderSettings) -> Result<Self, ProviderError> {
        spec.validate()
            .map_err(|e| ProviderError::new(e.to_string()))?;
        let client = PrometheusClient::new(
            &ClientOptions {
                address: spec.address.as_deref(),
                timeout_seconds: spec.timeout,
                insecure: spec.insecure,
                headers: &spec.headers,
                authentication: spec.authentication.as_ref(),
            },
            settings,
        )?;
        Ok(Self {
            client,
            spec: spec.clone(),
        })
    }

    /// The Prometheus client the queries go through.
    #[must_use]
    pub fn client(&self) -> &PrometheusClient {
        &self.client
    }

    async fn run(&self, metric: &Metric) -> Result<Observation, ProviderError> {
        let fail = |e: JudgeMetricError| {
            ProviderError::new(format!("judge metric \"{}\": {e}", metric.name))
        };
        let (outcome, warnings, metric_metadata) = match self.spec.method {
            JudgeMethod::SequentialCounts => {
                return Err(fail(JudgeMetricError::Unavailable("sequentialCounts")));
            }
            JudgeMethod::MannWhitney | JudgeMethod::Kayenta | JudgeMethod::SequentialLatency => {
                let queries = self
                    .spec
                    .samples
                    .as_ref()
                    .ok_or_else(|| ProviderError::new("judge field samples: missing"))?;
                let window = self.spec.sample_window().map_err(fail)?;
                let end = now_seconds();
                #[allow(clippy::cast_possible_truncation)]
                let (start, end) = (
                    (end - window.lookback_seconds).floor() as i64,
                    end.floor() as i64,
                );
                let (baseline, canary) = futures::join!(
                    self.samples(
                        metric,
                        Arm::Baseline,
                        &queries.baseline,
                        start,
                        end,
                        window.step_seconds
                    ),
                    self.samples(
                        metric,
                        Arm::Canary,
                        &queries.canary,
                        start,
                        end,
                        window.step_seconds
                    ),
                );
                let (baseline, canary) = (baseline?, canary?);
                let spec = self.spec.clone();
                let mut warnings = baseline.warnings;
                warnings.extend(canary.warnings);
                let outcome = tokio::task::spawn_blocking(move || {
                    judge_samples(&spec, &baseline.values, &canary.values)
                })
                .await
                .map_err(|e| {
                    ProviderError::new(format!(
                        "judge metric \"{}\": the judge did not finish: {e}",
                        metric.name
                    ))
                })?
                .map_err(fail)?;
                let mut meta = BTreeMap::new();
                meta.insert("ResolvedBaselineQuery".to_owned(), queries.baseline.clone());
                meta.insert("ResolvedCanaryQuery".to_owned(), queries.canary.clone());
                (outcome, warnings, meta)
            }
        };
        tracing::debug!(
            verdict = outcome.verdict.as_str(),
            p_value = outcome.p_value,
            "judged"
        );
        Ok(observation(metric, &outcome, &warnings, metric_metadata))
    }

    /// Fetch one arm's samples: the range query's points, NaN dropped, at least
    /// `minSamples` of them.
    async fn samples(
        &self,
        metric: &Metric,
        arm: Arm,
        query: &str,
        start: i64,
        end: i64,
        step: f64,
    ) -> Result<ArmSamples, ProviderError> {
        let in_arm = |cause: String| {
            ProviderError::new(format!(
                "judge metric \"{}\", {} query \"{query}\": {cause}",
                metric.name,
                arm.as_str()
            ))
        };
        let answer: QueryAnswer =
            self.client
                .range(query, start, end, step)
                .await
                .map_err(|e| {
                    ProviderError::new(format!(
                        "judge metric \"{}\", {} arm: {e}",
                        metric.name,
                        arm.as_str()
                    ))
                })?;
        let points: Vec<f64> = match answer.data {
            QueryData::Matrix(series) => series.into_iter().flatten().collect(),
            QueryData::Vector(v) => v,
            QueryData::Scalar(f) => vec![f],
            QueryData::Other(kind) => {
                return Err(in_arm(format!("result type {kind} is not supported")));
            }
        };
        let (values, dropped) = finite_samples(points);
        if values.is_empty() {
            return Err(in_arm(format!(
                "no data (no samples in the last {}s{})",
                end - start,
                if dropped > 0 {
                    format!(", {dropped} NaN points dropped")
                } else {
                    String::new()
                }
            )));
        }
        check_sample_count(&self.spec, arm, values.len(), dropped)
            .map_err(|e| in_arm(e.to_string()))?;
        Ok(ArmSamples {
            values,
            warnings: answer.warnings,
        })
    }
}

/// The observation of a judged measurement: the result map, the summary as `value`, and
/// the verdict's phase when the metric has no conditions.
fn observation(
    metric: &Metric,
    outcome: &JudgeOutcome,
    warnings: &[String],
    metric_metadata: BTreeMap<String, String>,
) -> Observation {
    let has_conditions = [&metric.success_condition, &metric.failure_condition]
        .iter()
        .any(|c| c.as_deref().is_some_and(|c| !c.trim().is_empty()));
    let summary = outcome.summary();
    let (phase, message) = if has_conditions {
        (None, None)
    } else {
        let phase = outcome.verdict.default_phase();
        let message = matches!(outcome.verdict, Verdict::Fail | Verdict::Marginal)
            .then(|| format!("judge {}: {summary}", outcome.method.as_str()));
        debug_assert!(phase != AnalysisPhase::Error);
        (Some(phase), message)
    };
    let mut measurement_metadata = BTreeMap::new();
    if !warnings.is_empty() {
        measurement_metadata.insert(
            "warnings".to_owned(),
            warnings
                .iter()
                .map(|w| format!("\"{w}\""))
                .collect::<Vec<_>>()
                .join(", "),
        );
    }
    Observation {
        result: outcome.result(),
        value: summary,
        measurement_metadata,
        metric_metadata,
        phase,
        message,
    }
}

impl Provider for JudgeProvider {
    fn measure<'a>(
        &'a self,
        metric: &'a Metric,
    ) -> BoxFuture<'a, Result<Observation, ProviderError>> {
        let span = tracing::debug_span!(
            "judge.evaluate",
            metric = %metric.name,
            method = self.spec.method.as_str()
        );
        self.run(metric).instrument(span).boxed()
    }
}

fn now_seconds() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}
