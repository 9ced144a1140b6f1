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
use std::sync::{Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use futures::FutureExt as _;
use futures::future::BoxFuture;
use tracing::Instrument as _;

use super::prometheus::{ClientOptions, PrometheusClient, QueryAnswer, QueryData};
use super::{Provider, ProviderError, ProviderSettings};
use crate::core::analysis::judge_metric::{
    Arm, JudgeMethod, JudgeMetric, JudgeMetricError, JudgeOutcome, RANGE_PLACEHOLDER, Verdict,
    check_sample_count, finite_samples, judge_counts, judge_samples, sequential_outcome,
    shift_test_config,
};
use crate::core::analysis::model::Metric;
use crate::core::analysis::value::{AnalysisPhase, Observation};
use crate::core::judge::{Counts, ShiftTest};

/// The `judge` provider for one metric. Build one per metric and run (as the runner
/// does): the sequential judges keep their state here between measurements.
#[derive(Debug)]
pub struct JudgeProvider {
    client: PrometheusClient,
    spec: JudgeMetric,
    state: Mutex<SequentialState>,
}

/// What a sequential judge remembers between measurements of one metric.
#[derive(Debug, Default)]
struct SequentialState {
    /// Unix seconds where the counting window of `sequentialCounts` starts.
    window_start: Option<f64>,
    /// The smallest p-value so far (anytime-valid p-values never increase).
    p_value: Option<f64>,
    /// `sequentialLatency`: the test fed with every point so far.
    shift: Option<ShiftTest>,
    /// `sequentialLatency`: the end of the last range fetched (Unix seconds).
    last_end: Option<i64>,
    /// `sequentialLatency`: points fed so far per arm.
    fed: (u64, u64),
}

/// The bounds of a range query: Unix seconds and step seconds.
#[derive(Debug, Clone, Copy)]
struct Window {
    start: i64,
    end: i64,
    step: f64,
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
            state: Mutex::new(SequentialState::default()),
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
            JudgeMethod::SequentialCounts => self.counts(metric).await?,
            JudgeMethod::SequentialLatency => self.latency(metric).await?,
            JudgeMethod::MannWhitney | JudgeMethod::Kayenta => {
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
                let step = window.step_seconds;
                let (baseline, canary) = futures::join!(
                    self.samples(
                        metric,
                        Arm::Baseline,
                        &queries.baseline,
                        Window { start, end, step },
                        true
                    ),
                    self.samples(
                        metric,
                        Arm::Canary,
                        &queries.canary,
                        Window { start, end, step },
                        true
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
                (
                    outcome,
                    warnings,
                    sample_metadata(&queries.baseline, &queries.canary),
                )
            }
        };
        tracing::debug!(
            verdict = outcome.verdict.as_str(),
            p_value = outcome.p_value,
            "judged"
        );
        Ok(observation(metric, &outcome, &warnings, metric_metadata))
    }

    /// `sequentialCounts`: the four counters over the counting window, judged with the
    /// anytime-valid count test.
    async fn counts(&self, metric: &Metric) -> Result<Judged, ProviderError> {
        let fail = |e: JudgeMetricError| {
            ProviderError::new(format!("judge metric \"{}\": {e}", metric.name))
        };
        let queries = self
            .spec
            .counts
            .as_ref()
            .ok_or_else(|| ProviderError::new("judge field counts: missing"))?;
        let now = now_seconds();
        let since = self.spec.since_seconds().map_err(fail)?;
        let (window_start, previous_p) = {
            let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            (
                state.window_start.unwrap_or(now - since),
                state.p_value.unwrap_or(1.0),
            )
        };
        #[allow(clippy::cast_possible_truncation)]
        let range = format!("{}s", ((now - window_start).round() as i64).max(1));
        let resolve = |q: &str| q.replace(RANGE_PLACEHOLDER, &range);
        let q = [
            ("baseline errors", resolve(&queries.baseline_errors)),
            ("baseline requests", resolve(&queries.baseline_requests)),
            ("canary errors", resolve(&queries.canary_errors)),
            ("canary requests", resolve(&queries.canary_requests)),
        ];
        let (be, br, ce, cr) = futures::join!(
            self.count(metric, q[0].0, &q[0].1),
            self.count(metric, q[1].0, &q[1].1),
            self.count(metric, q[2].0, &q[2].1),
            self.count(metric, q[3].0, &q[3].1),
        );
        let ((be, w1), (br, w2), (ce, w3), (cr, w4)) = (be?, br?, ce?, cr?);
        let counts = Counts {
            baseline_errors: be,
            baseline_requests: br,
            canary_errors: ce,
            canary_requests: cr,
        };
        let spec = self.spec.clone();
        let outcome = tokio::task::spawn_blocking(move || judge_counts(&spec, counts, previous_p))
            .await
            .map_err(|e| {
                ProviderError::new(format!(
                    "judge metric \"{}\": the judge did not finish: {e}",
                    metric.name
                ))
            })?
            .map_err(fail)?;
        {
            let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            state.window_start = Some(window_start);
            state.p_value = Some(outcome.p_value);
        }
        let mut meta = BTreeMap::new();
        for (key, (_, query)) in [
            "ResolvedBaselineErrorsQuery",
            "ResolvedBaselineRequestsQuery",
            "ResolvedCanaryErrorsQuery",
            "ResolvedCanaryRequestsQuery",
        ]
        .into_iter()
        .zip(q)
        {
            meta.insert(key.to_owned(), query);
        }
        Ok((outcome, [w1, w2, w3, w4].concat(), meta))
    }

    /// One counter: an instant query that must give one finite, non-negative number.
    async fn count(
        &self,
        metric: &Metric,
        what: &str,
        query: &str,
    ) -> Result<(u64, Vec<String>), ProviderError> {
        let in_arm = |cause: String| {
            ProviderError::new(format!(
                "judge metric \"{}\", {what} query \"{query}\": {cause}",
                metric.name
            ))
        };
        let answer = self.client.instant(query).await.map_err(|e| {
            ProviderError::new(format!("judge metric \"{}\", {what}: {e}", metric.name))
        })?;
        let value = match &answer.data {
            QueryData::Scalar(f) => *f,
            QueryData::Vector(v) if v.len() == 1 => v[0],
            QueryData::Vector(v) if v.is_empty() => {
                return Err(in_arm(
                    "no data (append `or vector(0)` if no series means zero)".to_owned(),
                ));
            }
            QueryData::Vector(v) => {
                return Err(in_arm(format!(
                    "{} series returned, expected one number (aggregate with sum())",
                    v.len()
                )));
            }
            QueryData::Matrix(_) | QueryData::Other(_) => {
                return Err(in_arm(
                    "expected one number (a scalar or a one-sample vector)".to_owned(),
                ));
            }
        };
        if !(value.is_finite() && value >= 0.0) {
            return Err(in_arm(format!("{value} is not a count")));
        }
        // Counters through increase() are extrapolated, hence fractional.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        Ok((value.round() as u64, answer.warnings))
    }

    /// `sequentialLatency`: the points since the last measurement (the lookback window at
    /// the first), added to the running test.
    async fn latency(&self, metric: &Metric) -> Result<Judged, ProviderError> {
        let fail = |e: JudgeMetricError| {
            ProviderError::new(format!("judge metric \"{}\": {e}", metric.name))
        };
        let queries = self
            .spec
            .samples
            .as_ref()
            .ok_or_else(|| ProviderError::new("judge field samples: missing"))?;
        let window = self.spec.sample_window().map_err(fail)?;
        let now = now_seconds();
        #[allow(clippy::cast_possible_truncation)]
        let (end, start) = {
            let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            let start = match state.last_end {
                Some(last) => last + (window.step_seconds.ceil() as i64).max(1),
                None => (now - window.lookback_seconds).floor() as i64,
            };
            (now.floor() as i64, start)
        };
        if start > end {
            return Err(ProviderError::new(format!(
                "judge metric \"{}\": no new points since the last measurement (make the metric's interval at least samples.step)",
                metric.name
            )));
        }
        let step = window.step_seconds;
        let (baseline, canary) = futures::join!(
            self.samples(
                metric,
                Arm::Baseline,
                &queries.baseline,
                Window { start, end, step },
                false
            ),
            self.samples(
                metric,
                Arm::Canary,
                &queries.canary,
                Window { start, end, step },
                false
            ),
        );
        let (baseline, canary) = (baseline?, canary?);
        let test = {
            let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            match state.shift.take() {
                Some(t) => t,
                None => {
                    ShiftTest::new(shift_test_config(&self.spec)).map_err(|e| fail(e.into()))?
                }
            }
        };
        let (fed_b, fed_c) = (baseline.values.len() as u64, canary.values.len() as u64);
        let (b_values, c_values) = (baseline.values, canary.values);
        let (test, result) = tokio::task::spawn_blocking(move || {
            let mut test = test;
            let result = test.observe(&b_values, &c_values);
            (test, result)
        })
        .await
        .map_err(|e| {
            ProviderError::new(format!(
                "judge metric \"{}\": the judge did not finish: {e}",
                metric.name
            ))
        })?;
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        // A refused look adds nothing to the test: keep it and fetch the same window again.
        state.shift = Some(test);
        let result = result.map_err(|e| fail(e.into()))?;
        state.last_end = Some(end);
        state.fed = (state.fed.0 + fed_b, state.fed.1 + fed_c);
        let outcome = sequential_outcome(&self.spec, &result, state.fed.0, state.fed.1);
        drop(state);
        let mut warnings = baseline.warnings;
        warnings.extend(canary.warnings);
        Ok((
            outcome,
            warnings,
            sample_metadata(&queries.baseline, &queries.canary),
        ))
    }

    /// Fetch one arm's samples: the range query's points, NaN dropped, at least
    /// `minSamples` of them.
    async fn samples(
        &self,
        metric: &Metric,
        arm: Arm,
        query: &str,
        range: Window,
        enforce_min: bool,
    ) -> Result<ArmSamples, ProviderError> {
        let Window { start, end, step } = range;
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
        if enforce_min {
            check_sample_count(&self.spec, arm, values.len(), dropped)
                .map_err(|e| in_arm(e.to_string()))?;
        }
        Ok(ArmSamples {
            values,
            warnings: answer.warnings,
        })
    }
}

/// A judged look: the outcome, the server's warnings, the metric metadata.
type Judged = (JudgeOutcome, Vec<String>, BTreeMap<String, String>);

fn sample_metadata(baseline: &str, canary: &str) -> BTreeMap<String, String> {
    let mut meta = BTreeMap::new();
    meta.insert("ResolvedBaselineQuery".to_owned(), baseline.to_owned());
    meta.insert("ResolvedCanaryQuery".to_owned(), canary.to_owned());
    meta
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
