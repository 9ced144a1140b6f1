//! The `judge` provider's spec and its pure decision: compare a canary with its baseline
//! using one of the statistical judges of [`crate::core::judge`], and turn the outcome
//! into a `result` that conditions read and a default measurement phase.
//!
//! The provider at the edge ([`crate::providers::judge`]) only fetches the samples or the
//! counters from Prometheus; everything that decides lives here and takes plain data.
//!
//! # The `result` map
//! | key | type | meaning |
//! |---|---|---|
//! | `verdict` | string | `Pass`, `Fail`, `Marginal` or `Continue` ([`Verdict`]) |
//! | `score` | float or nil | Kayenta's 0–100 score (`kayenta` only; nil otherwise) |
//! | `pValue` | float | the test's p-value (anytime-valid for the sequential judges) |
//! | `estimate` | float | the change: shift canary − baseline (`mannWhitney`, `kayenta`), error-rate ratio canary/baseline (`sequentialCounts`), relative shift canary/baseline − 1 (`sequentialLatency`) |
//! | `ciLow`, `ciHigh` | float | its confidence interval (confidence sequence for the sequential judges) |
//! | `baselineCount`, `canaryCount` | int | samples used per arm (requests for `sequentialCounts`) |
//! | `method` | string | the judge (`mannWhitney`, ...) |
//!
//! # Default phase (the metric has neither `successCondition` nor `failureCondition`)
//! | verdict | phase | why |
//! |---|---|---|
//! | `Pass` | Successful | the canary is not worse than allowed |
//! | `Fail` | Failed | the canary is significantly worse, beyond the tolerance |
//! | `Marginal` | Inconclusive | as Argo's `kayenta` provider: a human decides |
//! | `Continue` | Successful | no evidence of a regression yet: the next interval looks again |
//!
//! `Continue` is Successful so that a sequential judge measured with `count` and
//! `interval` behaves as its theory wants: every look may fail the metric at once
//! (`failureLimit: 0`), and reaching `count` without a failure is a pass. Making it
//! Inconclusive would pause the rollout at the first look (`inconclusiveLimit` is 0 by
//! default). A metric that must stop only on a positive `Pass` writes its own conditions:
//! `successCondition: result.verdict == "Pass"` and `failureCondition: result.verdict ==
//! "Fail"` (then `Continue` is Inconclusive, so raise `inconclusiveLimit`).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::duration::parse_go_duration;
use super::model::{Authentication, Header};
use super::value::{AnalysisPhase, Value};
use crate::core::judge::kayenta;
use crate::core::judge::{
    self, Alternative, CountTest, CountTestConfig, Counts, Decision, JudgeError, MwuOptions,
    SequentialResult, ShiftTestConfig,
};

/// Default confidence of the `mannWhitney` judge.
pub const DEFAULT_CONFIDENCE: f64 = 0.95;
/// Default confidence of the `kayenta` judge (Kayenta's `NetflixACAJudge`).
pub const DEFAULT_KAYENTA_CONFIDENCE: f64 = 0.98;
/// Default confidence of the sequential judges (α = 1% per rollout).
pub const DEFAULT_SEQUENTIAL_CONFIDENCE: f64 = 0.99;
/// Default counting window before the first measurement of `sequentialCounts`.
pub const DEFAULT_SINCE: &str = "5m";
/// The placeholder of count queries replaced by the counting window (`[$__range]`).
pub const RANGE_PLACEHOLDER: &str = "$__range";
/// Default minimum number of samples per arm.
pub const DEFAULT_MIN_SAMPLES: u32 = 10;
/// Default lookback window of the sample range queries.
pub const DEFAULT_LOOKBACK: &str = "30m";
/// Default step of the sample range queries.
pub const DEFAULT_STEP: &str = "1m";

/// rollgate's `judge` provider: a statistical comparison of the canary with its baseline.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JudgeMetric {
    /// Which judge compares the two arms.
    pub method: JudgeMethod,
    /// Base URL of the Prometheus HTTP API (default: the run's Prometheus, `--prometheus`
    /// or `ARGO_ROLLOUTS_PROMETHEUS_ADDRESS`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Timeout of each query in seconds (default 30).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<i64>,
    /// Skip TLS verification.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub insecure: bool,
    /// Extra request headers (as the `prometheus` provider).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<Header>,
    /// Authentication (as the `prometheus` provider).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentication: Option<Authentication>,
    /// Range queries giving the samples of each arm (`mannWhitney`, `kayenta`,
    /// `sequentialLatency`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub samples: Option<SampleQueries>,
    /// Instant queries giving cumulative counters of each arm (`sequentialCounts`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counts: Option<CountQueries>,
    /// Which change of the canary is a regression (default `increase`, as for latency and
    /// error rates). The sequential judges test for an increase only.
    #[serde(default)]
    pub direction: Direction,
    /// Confidence level of the test and of the interval, strictly between 0 and 1
    /// (default 0.95 for `mannWhitney`, 0.98 for `kayenta`, 0.99 for the sequential
    /// judges, whose false-rollback rate over the whole rollout is `1 − confidence`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f64>,
    /// The change that is still acceptable. `mannWhitney`: a fraction of the baseline's
    /// median (`0.1`: the canary may be 10% slower; default 0, any significant change
    /// fails). `kayenta`: Kayenta's classifier tolerance, a fraction of the estimate
    /// (default 0.25). `sequentialCounts`: Pass once the canary's error rate is shown below
    /// `(1 + tolerance) ×` the baseline's (default 0.5). `sequentialLatency`: Pass once the
    /// canary is shown at most `tolerance` slower (default 0.05).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerance: Option<f64>,
    /// Fewest samples each arm must have after NaN values are dropped (default 10);
    /// fewer is a measurement Error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_samples: Option<u32>,
}

/// The statistical judge of a `judge` metric.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum JudgeMethod {
    /// Mann-Whitney U test with the Hodges-Lehmann shift and its interval: one
    /// fixed-horizon comparison of the two samples.
    #[default]
    MannWhitney,
    /// Kayenta's `NetflixACAJudge` classification and score.
    Kayenta,
    /// Anytime-valid test of the error counts (Lindon & Malek), safe to evaluate every
    /// interval.
    SequentialCounts,
    /// Anytime-valid test of a latency shift, safe to evaluate every interval.
    SequentialLatency,
}

impl JudgeMethod {
    /// The method as written in YAML.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MannWhitney => "mannWhitney",
            Self::Kayenta => "kayenta",
            Self::SequentialCounts => "sequentialCounts",
            Self::SequentialLatency => "sequentialLatency",
        }
    }
}

/// Which change of the canary counts as a regression (Kayenta's `direction`; it sets the
/// test's alternative hypothesis).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Direction {
    /// A higher canary is a regression (latency, error rate). Mann-Whitney alternative
    /// `less` (the baseline is stochastically less than the canary).
    #[default]
    Increase,
    /// A lower canary is a regression (throughput, success rate). Alternative `greater`.
    Decrease,
    /// Any change is a regression. Alternative `two-sided`.
    Either,
}

impl Direction {
    /// The Mann-Whitney alternative (scipy's, relative to the baseline) testing this
    /// direction.
    #[must_use]
    pub fn alternative(self) -> Alternative {
        match self {
            Self::Increase => Alternative::Less,
            Self::Decrease => Alternative::Greater,
            Self::Either => Alternative::TwoSided,
        }
    }

    /// Whether a change `delta` (canary − baseline) goes the regression way by more
    /// than `allowed` (≥ 0).
    #[must_use]
    pub fn beyond(self, delta: f64, allowed: f64) -> bool {
        match self {
            Self::Increase => delta > allowed,
            Self::Decrease => delta < -allowed,
            Self::Either => delta.abs() > allowed,
        }
    }
}

/// Range queries for the samples of both arms: each point of each returned series is one
/// sample (all series flattened, NaN points dropped).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SampleQueries {
    /// PromQL for the baseline (the stable version receiving the same traffic).
    pub baseline: String,
    /// PromQL for the canary.
    pub canary: String,
    /// Go duration of the window that ends now (default `30m`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lookback: Option<String>,
    /// Go duration between points (default `1m`); use at least the `rate()` window so the
    /// points are roughly independent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
}

/// Instant queries for the cumulative counters of both arms, e.g.
/// `sum(increase(http_requests_total{track="canary", code=~"5.."}[$__range]))`. Each must
/// return one number (a scalar or a one-sample vector; append `or vector(0)` where no
/// series means zero). `$__range` is replaced by the counting window: it starts `since`
/// before the metric's first measurement and grows with every measurement, so each look
/// sees the counts accumulated since the same start.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CountQueries {
    /// Failed requests of the baseline.
    pub baseline_errors: String,
    /// All requests of the baseline.
    pub baseline_requests: String,
    /// Failed requests of the canary.
    pub canary_errors: String,
    /// All requests of the canary.
    pub canary_requests: String,
    /// The canary's share of the two arms' traffic in percent (50 when baseline and canary
    /// get the same weight); default: measured, from the request counts of each look.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary_weight: Option<f64>,
    /// Go duration the counting window reaches back before the first measurement
    /// (default `5m`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
}

/// The verdict of a judge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Verdict {
    /// The canary is not worse than allowed.
    Pass,
    /// The canary is worse than allowed.
    Fail,
    /// Between the pass and the marginal score (Kayenta).
    Marginal,
    /// A sequential test has not decided yet.
    Continue,
}

impl Verdict {
    /// The verdict as conditions read it (`result.verdict == "Pass"`).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pass => "Pass",
            Self::Fail => "Fail",
            Self::Marginal => "Marginal",
            Self::Continue => "Continue",
        }
    }

    /// The measurement phase when the metric has no conditions (see the module docs).
    #[must_use]
    pub fn default_phase(self) -> AnalysisPhase {
        match self {
            Self::Pass | Self::Continue => AnalysisPhase::Successful,
            Self::Fail => AnalysisPhase::Failed,
            Self::Marginal => AnalysisPhase::Inconclusive,
        }
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An arm of the comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arm {
    /// The stable version.
    Baseline,
    /// The new version.
    Canary,
}

impl Arm {
    /// `baseline` or `canary`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Baseline => "baseline",
            Self::Canary => "canary",
        }
    }
}

/// Why a `judge` metric is misconfigured or could not be judged.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum JudgeMetricError {
    /// A field is missing or out of range for the chosen method.
    #[error("judge field {field}: {reason}")]
    InvalidField {
        /// The field, as written in YAML (`samples.lookback`).
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// An arm has fewer usable samples than `minSamples`.
    #[error(
        "the {arm} query returned {got} usable samples (NaN dropped: {dropped}), fewer than minSamples {need}"
    )]
    TooFewSamples {
        /// `baseline` or `canary`.
        arm: &'static str,
        /// Usable samples.
        got: usize,
        /// NaN or infinite points dropped.
        dropped: usize,
        /// `minSamples`.
        need: u32,
    },
    /// The statistics refused the data.
    #[error("{0}")]
    Judge(#[from] JudgeError),
}

/// Range bounds of the sample queries, in seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SampleWindow {
    /// How far back the window starts.
    pub lookback_seconds: f64,
    /// Distance between points.
    pub step_seconds: f64,
}

impl JudgeMetric {
    /// Check the fields the chosen method needs.
    ///
    /// # Errors
    /// [`JudgeMetricError::InvalidField`] naming the field.
    pub fn validate(&self) -> Result<(), JudgeMetricError> {
        let bad = |field, reason: String| Err(JudgeMetricError::InvalidField { field, reason });
        let confidence = self.confidence();
        if !(confidence > 0.0 && confidence < 1.0) {
            return bad(
                "confidence",
                format!("{confidence} is not strictly between 0 and 1"),
            );
        }
        let tolerance = self.tolerance();
        if !(tolerance >= 0.0 && tolerance.is_finite()) {
            return bad("tolerance", format!("{tolerance} is not a number >= 0"));
        }
        if matches!(
            self.method,
            JudgeMethod::SequentialCounts | JudgeMethod::SequentialLatency
        ) && self.direction != Direction::Increase
        {
            return bad(
                "direction",
                format!("method {} tests for an increase only", self.method.as_str()),
            );
        }
        match self.method {
            JudgeMethod::MannWhitney | JudgeMethod::Kayenta | JudgeMethod::SequentialLatency => {
                let Some(s) = &self.samples else {
                    return bad(
                        "samples",
                        format!(
                            "method {} needs samples.baseline and samples.canary",
                            self.method.as_str()
                        ),
                    );
                };
                if s.baseline.trim().is_empty() {
                    return bad("samples.baseline", "the query is empty".into());
                }
                if s.canary.trim().is_empty() {
                    return bad("samples.canary", "the query is empty".into());
                }
                self.sample_window()?;
            }
            JudgeMethod::SequentialCounts => {
                let Some(c) = &self.counts else {
                    return bad(
                        "counts",
                        "method sequentialCounts needs counts.baselineErrors, baselineRequests, canaryErrors and canaryRequests".into(),
                    );
                };
                for (field, q) in [
                    ("counts.baselineErrors", &c.baseline_errors),
                    ("counts.baselineRequests", &c.baseline_requests),
                    ("counts.canaryErrors", &c.canary_errors),
                    ("counts.canaryRequests", &c.canary_requests),
                ] {
                    if q.trim().is_empty() {
                        return bad(field, "the query is empty".into());
                    }
                }
                self.since_seconds()?;
                if let Some(w) = c.canary_weight
                    && !(w > 0.0 && w < 100.0)
                {
                    return bad(
                        "counts.canaryWeight",
                        format!("{w} is not a percentage strictly between 0 and 100"),
                    );
                }
            }
        }
        Ok(())
    }

    /// The confidence level (default by method, see the field).
    #[must_use]
    pub fn confidence(&self) -> f64 {
        self.confidence.unwrap_or(match self.method {
            JudgeMethod::MannWhitney => DEFAULT_CONFIDENCE,
            JudgeMethod::Kayenta => DEFAULT_KAYENTA_CONFIDENCE,
            JudgeMethod::SequentialCounts | JudgeMethod::SequentialLatency => {
                DEFAULT_SEQUENTIAL_CONFIDENCE
            }
        })
    }

    /// The tolerance (default by method, see the field).
    #[must_use]
    pub fn tolerance(&self) -> f64 {
        self.tolerance.unwrap_or(match self.method {
            JudgeMethod::MannWhitney => 0.0,
            JudgeMethod::Kayenta => 0.25,
            JudgeMethod::SequentialCounts => 0.5,
            JudgeMethod::SequentialLatency => 0.05,
        })
    }

    /// How far the counting window of `sequentialCounts` reaches back before the first
    /// measurement, in seconds.
    ///
    /// # Errors
    /// [`JudgeMetricError::InvalidField`] when `counts.since` is not a positive Go duration.
    pub fn since_seconds(&self) -> Result<f64, JudgeMetricError> {
        let text = self
            .counts
            .as_ref()
            .and_then(|c| c.since.as_deref())
            .unwrap_or(DEFAULT_SINCE);
        let bad = |reason: String| JudgeMetricError::InvalidField {
            field: "counts.since",
            reason,
        };
        let secs = parse_go_duration(text)
            .map_err(|e| bad(e.to_string()))?
            .as_seconds_f64();
        if secs > 0.0 {
            Ok(secs)
        } else {
            Err(bad(format!("\"{text}\" is not a positive duration")))
        }
    }

    /// The minimum samples per arm (default 10).
    #[must_use]
    pub fn min_samples(&self) -> u32 {
        self.min_samples.unwrap_or(DEFAULT_MIN_SAMPLES)
    }

    /// The lookback and step of the sample range queries.
    ///
    /// # Errors
    /// [`JudgeMetricError::InvalidField`] for a missing `samples`, a lookback or step that
    /// is not a positive Go duration, or a step longer than the lookback.
    pub fn sample_window(&self) -> Result<SampleWindow, JudgeMetricError> {
        let bad = |field, reason: String| JudgeMetricError::InvalidField { field, reason };
        let s = self
            .samples
            .as_ref()
            .ok_or_else(|| bad("samples", "missing".into()))?;
        let seconds = |field, text: &str| {
            let d = parse_go_duration(text).map_err(|e| bad(field, e.to_string()))?;
            let secs = d.as_seconds_f64();
            if secs > 0.0 {
                Ok(secs)
            } else {
                Err(bad(field, format!("\"{text}\" is not a positive duration")))
            }
        };
        let lookback_seconds = seconds(
            "samples.lookback",
            s.lookback.as_deref().unwrap_or(DEFAULT_LOOKBACK),
        )?;
        let step_seconds = seconds("samples.step", s.step.as_deref().unwrap_or(DEFAULT_STEP))?;
        if step_seconds > lookback_seconds {
            return Err(bad(
                "samples.step",
                "the step is longer than the lookback window".into(),
            ));
        }
        Ok(SampleWindow {
            lookback_seconds,
            step_seconds,
        })
    }
}

/// What a judge concluded about one measurement.
#[derive(Debug, Clone, PartialEq)]
pub struct JudgeOutcome {
    /// The judge.
    pub method: JudgeMethod,
    /// The verdict.
    pub verdict: Verdict,
    /// Kayenta's score (0–100), for judges that score.
    pub score: Option<f64>,
    /// The p-value.
    pub p_value: f64,
    /// The estimated change, canary − baseline.
    pub estimate: f64,
    /// Lower end of its interval.
    pub ci_low: f64,
    /// Upper end of its interval.
    pub ci_high: f64,
    /// Samples (or requests) of the baseline.
    pub baseline_count: u64,
    /// Samples (or requests) of the canary.
    pub canary_count: u64,
    /// The confidence level of the test.
    pub confidence: f64,
}

impl JudgeOutcome {
    /// The `result` conditions read (see the module docs for the keys).
    #[must_use]
    pub fn result(&self) -> Value {
        let mut m = BTreeMap::new();
        let int = |n: u64| Value::Int(i64::try_from(n).unwrap_or(i64::MAX));
        m.insert(
            "verdict".into(),
            Value::String(self.verdict.as_str().into()),
        );
        m.insert("score".into(), self.score.map_or(Value::Nil, Value::Float));
        m.insert("pValue".into(), Value::Float(self.p_value));
        m.insert("estimate".into(), Value::Float(self.estimate));
        m.insert("ciLow".into(), Value::Float(self.ci_low));
        m.insert("ciHigh".into(), Value::Float(self.ci_high));
        m.insert("baselineCount".into(), int(self.baseline_count));
        m.insert("canaryCount".into(), int(self.canary_count));
        m.insert("method".into(), Value::String(self.method.as_str().into()));
        Value::Map(m)
    }

    /// The measurement's `value` text, one line:
    /// `Fail: shift +0.025 [0.021, 0.03] (95%), p=1.2e-9, n=31/31` (`error-rate ratio` or
    /// `relative shift` for the sequential judges; `n` counts requests for
    /// `sequentialCounts`).
    #[must_use]
    pub fn summary(&self) -> String {
        let score = self
            .score
            .map(|s| format!(" score={}", short(s)))
            .unwrap_or_default();
        let what = match self.method {
            JudgeMethod::MannWhitney | JudgeMethod::Kayenta => "shift",
            JudgeMethod::SequentialCounts => "error-rate ratio",
            JudgeMethod::SequentialLatency => "relative shift",
        };
        let sign = if self.estimate > 0.0 && self.method != JudgeMethod::SequentialCounts {
            "+"
        } else {
            ""
        };
        format!(
            "{}:{score} {what} {sign}{} [{}, {}] ({}%), p={}, n={}/{}",
            self.verdict,
            short(self.estimate),
            short(self.ci_low),
            short(self.ci_high),
            short(self.confidence * 100.0),
            short_p(self.p_value),
            self.baseline_count,
            self.canary_count
        )
    }
}

/// Four significant digits, without trailing zeros.
fn short(v: f64) -> String {
    if !v.is_finite() || v == 0.0 {
        return format!("{v}");
    }
    let digits = 3 - v.abs().log10().floor() as i32;
    let text = if digits > 0 {
        format!("{v:.*}", usize::try_from(digits).unwrap_or(0))
    } else {
        format!("{v:.0}")
    };
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        text
    }
}

fn short_p(p: f64) -> String {
    if p.is_finite() && p > 0.0 && p < 1e-4 {
        format!("{p:.2e}")
    } else {
        short(p)
    }
}

/// Drop NaN and infinite points; returns the finite values and how many were dropped.
#[must_use]
pub fn finite_samples(values: impl IntoIterator<Item = f64>) -> (Vec<f64>, usize) {
    let mut dropped = 0;
    let kept = values
        .into_iter()
        .filter(|v| {
            let ok = v.is_finite();
            dropped += usize::from(!ok);
            ok
        })
        .collect();
    (kept, dropped)
}

/// Check that an arm has at least `minSamples` usable samples.
///
/// # Errors
/// [`JudgeMetricError::TooFewSamples`] naming the arm.
pub fn check_sample_count(
    spec: &JudgeMetric,
    arm: Arm,
    got: usize,
    dropped: usize,
) -> Result<(), JudgeMetricError> {
    let need = spec.min_samples().max(1);
    if got < need as usize {
        return Err(JudgeMetricError::TooFewSamples {
            arm: arm.as_str(),
            got,
            dropped,
            need,
        });
    }
    Ok(())
}

/// Judge two samples with the spec's method (finite values, checked by the caller with
/// [`check_sample_count`]). Cost: O(n log n) for `mannWhitney`.
///
/// # Errors
/// [`JudgeMetricError::InvalidField`] for a sequential method (those keep state: see
/// [`judge_counts`] and [`shift_test_config`]); [`JudgeMetricError::Judge`] when the
/// statistics refuse the data.
pub fn judge_samples(
    spec: &JudgeMetric,
    baseline: &[f64],
    canary: &[f64],
) -> Result<JudgeOutcome, JudgeMetricError> {
    match spec.method {
        JudgeMethod::MannWhitney => mann_whitney(spec, baseline, canary),
        JudgeMethod::Kayenta => kayenta_judge(spec, baseline, canary),
        JudgeMethod::SequentialLatency | JudgeMethod::SequentialCounts => {
            Err(JudgeMetricError::InvalidField {
                field: "method",
                reason: format!(
                    "{} is sequential: it keeps state between measurements",
                    spec.method.as_str()
                ),
            })
        }
    }
}

/// Mann-Whitney U with the Hodges-Lehmann shift: Fail when the test is significant at
/// `1 − confidence` in the regression direction AND the shift estimate exceeds
/// `tolerance × |median(baseline)|` that way; Pass otherwise.
fn mann_whitney(
    spec: &JudgeMetric,
    baseline: &[f64],
    canary: &[f64],
) -> Result<JudgeOutcome, JudgeMetricError> {
    let confidence = spec.confidence();
    let test = judge::mann_whitney(
        baseline,
        canary,
        MwuOptions {
            alternative: spec.direction.alternative(),
            ..MwuOptions::default()
        },
    )?;
    let shift = judge::hodges_lehmann(baseline, canary, confidence)?;
    let allowed = spec.tolerance() * median(baseline).abs();
    // p is NaN only without continuity correction, which is not used here; treat it as
    // "not significant" all the same.
    let significant = test.p_value < 1.0 - confidence;
    let verdict = if significant && spec.direction.beyond(shift.estimate, allowed) {
        Verdict::Fail
    } else {
        Verdict::Pass
    };
    Ok(JudgeOutcome {
        method: JudgeMethod::MannWhitney,
        verdict,
        score: None,
        p_value: test.p_value,
        estimate: shift.estimate,
        ci_low: shift.low,
        ci_high: shift.high,
        baseline_count: baseline.len() as u64,
        canary_count: canary.len() as u64,
        confidence,
    })
}

/// Kayenta's `NetflixACAJudge` on this one metric: the Mann-Whitney classifier (its
/// tolerance and confidence are `tolerance` and `confidence`), scored as a one-metric
/// canary config (100 when the metric passes, 0 when it is High/Low in the failing
/// direction), classified with Kayenta's usual thresholds pass 75 / marginal 50.
/// `pValue` is the Mann-Whitney p-value in the regression direction (Kayenta itself
/// never computes one).
fn kayenta_judge(
    spec: &JudgeMetric,
    baseline: &[f64],
    canary: &[f64],
) -> Result<JudgeOutcome, JudgeMetricError> {
    let settings = kayenta::MetricSettings {
        direction: match spec.direction {
            Direction::Increase => kayenta::Direction::Increase,
            Direction::Decrease => kayenta::Direction::Decrease,
            Direction::Either => kayenta::Direction::Either,
        },
        ..kayenta::MetricSettings::default()
    };
    let params = kayenta::ClassifierParams {
        tolerance: spec.tolerance(),
        confidence: spec.confidence(),
    };
    let (b, c) = (
        kayenta::transform(baseline, &settings),
        kayenta::transform(canary, &settings),
    );
    let classification = kayenta::classify(&b, &c, &settings, params);
    let scored = kayenta::ScoredMetric {
        name: "metric".into(),
        label: classification.label,
        critical: classification.critical,
        groups: vec!["metric".into()],
        reason: classification.reason.clone(),
    };
    let score = kayenta::score(&[scored], &BTreeMap::new()).score;
    let thresholds = kayenta::ScoreThresholds {
        pass: 75.0,
        marginal: 50.0,
    };
    let verdict = match kayenta::classify_score(score, thresholds) {
        kayenta::ScoreClass::Pass => Verdict::Pass,
        kayenta::ScoreClass::Marginal => Verdict::Marginal,
        kayenta::ScoreClass::Fail => Verdict::Fail,
    };
    let test = judge::mann_whitney(
        baseline,
        canary,
        MwuOptions {
            alternative: spec.direction.alternative(),
            ..MwuOptions::default()
        },
    )?;
    let (estimate, ci_low, ci_high) = classification.interval.unwrap_or((0.0, 0.0, 0.0));
    Ok(JudgeOutcome {
        method: JudgeMethod::Kayenta,
        verdict,
        score: Some(score),
        p_value: test.p_value,
        estimate,
        ci_low,
        ci_high,
        baseline_count: baseline.len() as u64,
        canary_count: canary.len() as u64,
        confidence: spec.confidence(),
    })
}

/// The settings of the sequential latency test: α = `1 − confidence`, Pass once the
/// canary is shown at most `tolerance` slower, decisions only after `minSamples` points
/// per arm (accumulated over the looks).
#[must_use]
pub fn shift_test_config(spec: &JudgeMetric) -> ShiftTestConfig {
    ShiftTestConfig {
        alpha: 1.0 - spec.confidence(),
        max_shift: spec.tolerance().max(f64::MIN_POSITIVE),
        min_samples: u64::from(spec.min_samples()),
        ..ShiftTestConfig::default()
    }
}

/// The outcome of a sequential test at one look.
#[must_use]
pub fn sequential_outcome(
    spec: &JudgeMetric,
    result: &SequentialResult,
    baseline_count: u64,
    canary_count: u64,
) -> JudgeOutcome {
    JudgeOutcome {
        method: spec.method,
        verdict: match result.decision {
            Decision::Pass => Verdict::Pass,
            Decision::Fail => Verdict::Fail,
            Decision::Continue => Verdict::Continue,
        },
        score: None,
        p_value: result.p_value,
        estimate: result.estimate,
        ci_low: result.confidence_sequence.low,
        ci_high: result.confidence_sequence.high,
        baseline_count,
        canary_count,
        confidence: spec.confidence(),
    }
}

/// Judge cumulative error counts with Lindon & Malek's anytime-valid test: α =
/// `1 − confidence`, the split from `counts.canaryWeight` or else from the request counts,
/// Pass once the error-rate ratio canary/baseline is shown below `1 + tolerance`.
/// `previous_p` is the p-value of the previous look (1 at the first); the returned
/// p-value never exceeds it, so it stays anytime-valid across measurements.
///
/// # Errors
/// [`JudgeMetricError::Judge`] for inconsistent counts (more errors than requests, no
/// requests at all in an arm while the split is measured).
pub fn judge_counts(
    spec: &JudgeMetric,
    counts: Counts,
    previous_p: f64,
) -> Result<JudgeOutcome, JudgeMetricError> {
    let total = counts
        .baseline_requests
        .saturating_add(counts.canary_requests);
    let split = match spec.counts.as_ref().and_then(|c| c.canary_weight) {
        Some(w) => w / 100.0,
        None => {
            for (arm, n) in [
                ("baseline", counts.baseline_requests),
                ("canary", counts.canary_requests),
            ] {
                if n == 0 {
                    return Err(JudgeMetricError::Judge(JudgeError::InvalidParameter {
                        name: "split",
                        reason: format!(
                            "the {arm} arm has no requests yet, so the traffic split cannot be measured (set counts.canaryWeight)"
                        ),
                    }));
                }
            }
            counts.canary_requests as f64 / total as f64
        }
    };
    let mut test = CountTest::new(CountTestConfig {
        alpha: 1.0 - spec.confidence(),
        split,
        pass_ratio: 1.0 + spec.tolerance(),
        ..CountTestConfig::default()
    })?;
    let mut result = test.observe(counts)?;
    result.p_value = result.p_value.min(previous_p);
    Ok(sequential_outcome(
        spec,
        &result,
        counts.baseline_requests,
        counts.canary_requests,
    ))
}

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_unstable_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        v[n / 2]
    } else {
        v[n / 2 - 1] + (v[n / 2] - v[n / 2 - 1]) / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(direction: Direction, tolerance: f64) -> JudgeMetric {
        JudgeMetric {
            method: JudgeMethod::MannWhitney,
            samples: Some(SampleQueries {
                baseline: "b".into(),
                canary: "c".into(),
                ..SampleQueries::default()
            }),
            direction,
            tolerance: Some(tolerance),
            ..JudgeMetric::default()
        }
    }

    fn ramp(n: usize, offset: f64) -> Vec<f64> {
        (0..n).map(|i| 100.0 + (i % 10) as f64 + offset).collect()
    }

    #[test]
    fn identical_samples_pass() {
        let b = ramp(30, 0.0);
        let out = judge_samples(&spec(Direction::Increase, 0.0), &b, &b).unwrap();
        assert_eq!(out.verdict, Verdict::Pass);
        assert_eq!(out.estimate, 0.0);
        assert!(out.p_value > 0.4, "{}", out.p_value);
    }

    #[test]
    fn slower_canary_fails_only_in_the_regression_direction() {
        let (b, c) = (ramp(30, 0.0), ramp(30, 20.0));
        let inc = judge_samples(&spec(Direction::Increase, 0.0), &b, &c).unwrap();
        assert_eq!(inc.verdict, Verdict::Fail);
        assert_eq!(inc.estimate, 20.0);
        assert!(inc.ci_low <= 20.0 && inc.ci_high >= 20.0);
        assert!(inc.p_value < 1e-6, "{}", inc.p_value);
        let dec = judge_samples(&spec(Direction::Decrease, 0.0), &b, &c).unwrap();
        assert_eq!(dec.verdict, Verdict::Pass);
        let either = judge_samples(&spec(Direction::Either, 0.0), &b, &c).unwrap();
        assert_eq!(either.verdict, Verdict::Fail);
    }

    #[test]
    fn significant_shift_within_tolerance_passes() {
        // +20 on a median of ~104.5 is 19%: fails at 10% tolerance, passes at 25%.
        let (b, c) = (ramp(30, 0.0), ramp(30, 20.0));
        let tight = judge_samples(&spec(Direction::Increase, 0.1), &b, &c).unwrap();
        assert_eq!(tight.verdict, Verdict::Fail);
        let loose = judge_samples(&spec(Direction::Increase, 0.25), &b, &c).unwrap();
        assert_eq!(loose.verdict, Verdict::Pass);
        assert!(loose.p_value < 1e-6);
    }

    #[test]
    fn result_map_and_summary() {
        let (b, c) = (ramp(30, 0.0), ramp(30, 20.0));
        let out = judge_samples(&spec(Direction::Increase, 0.0), &b, &c).unwrap();
        let Value::Map(m) = out.result() else {
            panic!("not a map")
        };
        assert_eq!(m["verdict"], Value::String("Fail".into()));
        assert_eq!(m["score"], Value::Nil);
        assert_eq!(m["estimate"], Value::Float(20.0));
        assert_eq!(m["baselineCount"], Value::Int(30));
        assert!(
            out.summary().starts_with("Fail: shift +20 ["),
            "{}",
            out.summary()
        );
    }

    fn counts_spec(weight: Option<f64>) -> JudgeMetric {
        JudgeMetric {
            method: JudgeMethod::SequentialCounts,
            counts: Some(CountQueries {
                baseline_errors: "be".into(),
                baseline_requests: "br".into(),
                canary_errors: "ce".into(),
                canary_requests: "cr".into(),
                canary_weight: weight,
                since: None,
            }),
            ..JudgeMetric::default()
        }
    }

    fn counts(be: u64, br: u64, ce: u64, cr: u64) -> Counts {
        Counts {
            baseline_errors: be,
            baseline_requests: br,
            canary_errors: ce,
            canary_requests: cr,
        }
    }

    #[test]
    fn counts_fail_a_worse_canary_and_pass_an_equal_one() {
        let s = counts_spec(None);
        assert!(s.validate().is_ok());
        let bad = judge_counts(&s, counts(90, 18_000, 360, 18_000), 1.0).unwrap();
        assert_eq!(bad.verdict, Verdict::Fail);
        assert!((bad.estimate - 4.0).abs() < 1e-9, "{}", bad.estimate);
        let equal = judge_counts(&s, counts(900, 180_000, 900, 180_000), 1.0).unwrap();
        assert_eq!(equal.verdict, Verdict::Pass, "{equal:?}");
        let early = judge_counts(&s, counts(2, 400, 3, 400), 1.0).unwrap();
        assert_eq!(early.verdict, Verdict::Continue, "{early:?}");
        assert_eq!(early.verdict.default_phase(), AnalysisPhase::Successful);
        // The canary gets a tenth of the traffic: the same error counts mean a 9x ratio.
        let split =
            judge_counts(&counts_spec(Some(10.0)), counts(90, 18_000, 90, 2_000), 1.0).unwrap();
        assert!((split.estimate - 9.0).abs() < 1e-9, "{}", split.estimate);
        assert_eq!(split.verdict, Verdict::Fail);
    }

    #[test]
    fn counts_p_value_never_increases_and_errors_name_the_arm() {
        let s = counts_spec(None);
        let out = judge_counts(&s, counts(10, 1000, 10, 1000), 0.2).unwrap();
        assert!(out.p_value <= 0.2);
        let e = judge_counts(&s, counts(0, 0, 1, 10), 1.0).unwrap_err();
        assert!(
            e.to_string()
                .contains("the baseline arm has no requests yet"),
            "{e}"
        );
        let e = judge_counts(&s, counts(11, 10, 1, 10), 1.0).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the baseline arm reports 11 errors out of 10 requests"
        );
        let mut bad_weight = counts_spec(Some(100.0));
        assert!(matches!(
            bad_weight.validate(),
            Err(JudgeMetricError::InvalidField {
                field: "counts.canaryWeight",
                ..
            })
        ));
        bad_weight.counts.as_mut().unwrap().canary_weight = None;
        bad_weight.direction = Direction::Either;
        assert!(matches!(
            bad_weight.validate(),
            Err(JudgeMetricError::InvalidField {
                field: "direction",
                ..
            })
        ));
        bad_weight.direction = Direction::Increase;
        bad_weight.counts.as_mut().unwrap().since = Some("0s".into());
        assert!(matches!(
            bad_weight.validate(),
            Err(JudgeMetricError::InvalidField {
                field: "counts.since",
                ..
            })
        ));
    }

    #[test]
    fn verdict_phases() {
        assert_eq!(Verdict::Pass.default_phase(), AnalysisPhase::Successful);
        assert_eq!(Verdict::Fail.default_phase(), AnalysisPhase::Failed);
        assert_eq!(
            Verdict::Marginal.default_phase(),
            AnalysisPhase::Inconclusive
        );
        assert_eq!(Verdict::Continue.default_phase(), AnalysisPhase::Successful);
    }

    #[test]
    fn validation_names_the_field() {
        let mut s = spec(Direction::Increase, 0.0);
        s.confidence = Some(1.5);
        assert!(matches!(
            s.validate(),
            Err(JudgeMetricError::InvalidField {
                field: "confidence",
                ..
            })
        ));
        let mut s = spec(Direction::Increase, 0.0);
        s.samples.as_mut().unwrap().lookback = Some("1d".into());
        assert!(matches!(
            s.validate(),
            Err(JudgeMetricError::InvalidField {
                field: "samples.lookback",
                ..
            })
        ));
        let s = JudgeMetric {
            method: JudgeMethod::SequentialCounts,
            ..JudgeMetric::default()
        };
        assert!(matches!(
            s.validate(),
            Err(JudgeMetricError::InvalidField {
                field: "counts",
                ..
            })
        ));
        assert!(spec(Direction::Increase, 0.0).validate().is_ok());
    }

    #[test]
    fn too_few_samples_names_the_arm() {
        let s = spec(Direction::Increase, 0.0);
        let e = check_sample_count(&s, Arm::Baseline, 0, 3).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the baseline query returned 0 usable samples (NaN dropped: 3), fewer than minSamples 10"
        );
    }

    #[test]
    fn yaml_is_camel_case() {
        let s: JudgeMetric = serde_yaml::from_str(
            "method: mannWhitney\nsamples: {baseline: b, canary: c, lookback: 10m, step: 30s}\ndirection: either\nminSamples: 5\n",
        )
        .unwrap();
        assert_eq!(s.direction, Direction::Either);
        assert_eq!(s.min_samples(), 5);
        assert_eq!(
            s.sample_window().unwrap(),
            SampleWindow {
                lookback_seconds: 600.0,
                step_seconds: 30.0
            }
        );
        assert!(serde_yaml::from_str::<JudgeMetric>("method: tTest\n").is_err());
    }
}
