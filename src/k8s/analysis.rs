//! `AnalysisTemplate`, `ClusterAnalysisTemplate` and `AnalysisRun`: the Kubernetes objects
//! around the analysis model of [`crate::core::analysis::model`], field for field the Argo
//! Rollouts model, plus the run's status.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::core::analysis::model::{AnalysisRunSpec, AnalysisTemplateSpec};
use crate::core::analysis::value::AnalysisPhase;

/// The spec of a namespaced `AnalysisTemplate`: the core template spec, unchanged.
#[derive(CustomResource, Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "rollgate.dev",
    version = "v1alpha1",
    kind = "AnalysisTemplate",
    namespaced,
    shortname = "rgat",
    category = "rollgate",
    doc = "A reusable set of metrics, measured by AnalysisRuns (Argo Rollouts' model).",
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(transparent)]
pub struct AnalysisTemplateBody {
    /// The template.
    pub template: AnalysisTemplateSpec,
}

/// The spec of a cluster-scoped `ClusterAnalysisTemplate`: the same as a template.
#[derive(CustomResource, Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "rollgate.dev",
    version = "v1alpha1",
    kind = "ClusterAnalysisTemplate",
    shortname = "rgcat",
    category = "rollgate",
    doc = "An AnalysisTemplate that every namespace can use.",
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(transparent)]
pub struct ClusterAnalysisTemplateBody {
    /// The template.
    pub template: AnalysisTemplateSpec,
}

/// The spec of an `AnalysisRun`: resolved metrics and run-level controls.
#[derive(CustomResource, Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "rollgate.dev",
    version = "v1alpha1",
    kind = "AnalysisRun",
    namespaced,
    shortname = "rgar",
    category = "rollgate",
    status = "AnalysisRunStatus",
    doc = "One execution of analysis metrics; its status holds every measurement.",
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Message","type":"string","jsonPath":".status.message","priority":1}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(transparent)]
pub struct AnalysisRunBody {
    /// The run.
    pub run: AnalysisRunSpec,
}

/// What an `AnalysisRun` has measured so far.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisRunStatus {
    /// The run's phase; absent until the controller first looks at the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<AnalysisPhase>,
    /// Why the run is in its phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// When the first measurement started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Time>,
    /// When the run completed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<Time>,
    /// One entry per metric.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metric_results: Vec<MetricResultStatus>,
    /// Counts of dry-run metrics by outcome.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dry_run_summary: Option<RunSummary>,
    /// Counts of metrics by outcome.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_summary: Option<RunSummary>,
}

/// The state of one metric of a run (Argo's `MetricResult`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MetricResultStatus {
    /// The metric's name.
    pub name: String,
    /// The metric's phase.
    pub phase: AnalysisPhase,
    /// Measurements taken, errors excluded.
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
    /// Measurements that ended in error.
    #[serde(default)]
    pub error: i32,
    /// Errors in a row.
    #[serde(default)]
    pub consecutive_error: i32,
    /// Successes in a row.
    #[serde(default)]
    pub consecutive_success: i32,
    /// The metric only reports: it never changes the run's phase.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
    /// Why the metric is in its phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The retained measurements, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub measurements: Vec<MeasurementStatus>,
}

/// One measurement of a metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MeasurementStatus {
    /// The measurement's phase.
    pub phase: AnalysisPhase,
    /// The value as text (a number, a list, or JSON).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Why the measurement is in its phase (provider errors).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// When the measurement started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Time>,
    /// When the measurement finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Time>,
}

/// Metrics counted by outcome.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunSummary {
    /// Metrics in the run.
    #[serde(default)]
    pub count: i32,
    /// Successful metrics.
    #[serde(default)]
    pub successful: i32,
    /// Failed metrics.
    #[serde(default)]
    pub failed: i32,
    /// Inconclusive metrics.
    #[serde(default)]
    pub inconclusive: i32,
    /// Metrics in error.
    #[serde(default)]
    pub error: i32,
}
