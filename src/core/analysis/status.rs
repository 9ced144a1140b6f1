//! `AnalysisRun.status`, field for field Argo's, so the CLI prints Argo-shaped JSON and the
//! CRD reuses it.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::value::AnalysisPhase;

/// A point in time. The core never reads a clock: callers pass `now`.
pub type Time = chrono::DateTime<chrono::Utc>;

/// The status of an analysis run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisRunStatus {
    /// Phase of the run (Pending until the first assessment).
    #[serde(default)]
    pub phase: AnalysisPhase,
    /// Why the run ended as it did (empty while running and for a plain success).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// Set by the first assessment; `initialDelay` counts from here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub started_at: Option<Time>,
    /// Set when the run completes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub completed_at: Option<Time>,
    /// One result per metric that has been measured, in first-measurement order.
    #[serde(default)]
    pub metric_results: Vec<MetricResult>,
    /// Completed non-dry-run metrics by limit verdict.
    #[serde(default)]
    pub run_summary: RunSummary,
    /// Completed dry-run metrics by limit verdict.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dry_run_summary: Option<RunSummary>,
}

impl AnalysisRunStatus {
    /// The result of the named metric, if it was measured.
    #[must_use]
    pub fn result(&self, name: &str) -> Option<&MetricResult> {
        self.metric_results.iter().find(|r| r.name == name)
    }

    /// The result of the named metric, mutably.
    pub fn result_mut(&mut self, name: &str) -> Option<&mut MetricResult> {
        self.metric_results.iter_mut().find(|r| r.name == name)
    }
}

/// Counts of metrics by outcome (`runSummary`, `dryRunSummary`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunSummary {
    /// Metrics in the run (or in dry-run).
    pub count: i32,
    /// Completed without a tripped limit.
    pub successful: i32,
    /// Completed with `failed > failureLimit`.
    pub failed: i32,
    /// Completed with `inconclusive > inconclusiveLimit`.
    pub inconclusive: i32,
    /// Completed with `consecutiveError > consecutiveErrorLimit`.
    pub error: i32,
}

/// The measurements and counters of one metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MetricResult {
    /// Metric name.
    pub name: String,
    /// Phase of the metric; a completed phase never changes.
    pub phase: AnalysisPhase,
    /// Last measurement's message, or the dry-run verdict.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// The kept measurements (the last 10, or `measurementRetention`).
    #[serde(default)]
    pub measurements: Vec<Measurement>,
    /// Successful + failed + inconclusive measurements (errors excluded).
    #[serde(default)]
    pub count: i32,
    /// Successful measurements.
    #[serde(default)]
    pub successful: i32,
    /// Failed measurements.
    #[serde(default)]
    pub failed: i32,
    /// Inconclusive measurements.
    #[serde(default)]
    pub inconclusive: i32,
    /// Error measurements.
    #[serde(default)]
    pub error: i32,
    /// Errors in a row (reset by any other outcome).
    #[serde(default)]
    pub consecutive_error: i32,
    /// Successes in a row (reset by any other outcome).
    #[serde(default)]
    pub consecutive_success: i32,
    /// The metric is in dry-run: it never affects the run phase.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
    /// Provider metadata (Prometheus: `ResolvedPrometheusQuery`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
}

impl MetricResult {
    /// A fresh, Running result.
    #[must_use]
    pub fn new(name: impl Into<String>, dry_run: bool) -> Self {
        Self {
            name: name.into(),
            phase: AnalysisPhase::Running,
            message: String::new(),
            measurements: Vec::new(),
            count: 0,
            successful: 0,
            failed: 0,
            inconclusive: 0,
            error: 0,
            consecutive_error: 0,
            consecutive_success: 0,
            dry_run,
            metadata: BTreeMap::new(),
        }
    }
}

/// One measurement of a metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Measurement {
    /// Outcome.
    pub phase: AnalysisPhase,
    /// Error text (secrets redacted), or `Metric Terminated`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// When the provider was called.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub started_at: Option<Time>,
    /// When the measurement completed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub finished_at: Option<Time>,
    /// The measured value as text (`10`, `NaN`, `[10,11]`); empty on error.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub value: String,
    /// Provider metadata (Prometheus `warnings`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
    /// When an asynchronous measurement is to be resumed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub resume_at: Option<Time>,
}
