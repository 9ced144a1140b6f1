//! `AnalysisTemplate`, `ClusterAnalysisTemplate` and `AnalysisRun`: the Kubernetes objects
//! around the analysis model of [`crate::core::analysis::model`], field for field the Argo
//! Rollouts model; the run's status is the core [`AnalysisRunStatus`].

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::core::analysis::model::{AnalysisRunSpec, AnalysisTemplateSpec};
/// The run's status is the core status itself (Argo's `AnalysisRun.status`), so the
/// controller writes what the assessment computed without a conversion that could drop
/// fields.
pub use crate::core::analysis::status::AnalysisRunStatus;
use crate::core::metrics::flagger::MetricTemplateSpec;

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

/// The spec of a namespaced `MetricTemplate`: Flagger's `MetricTemplate` (provider and
/// query template) under rollgate's group, for the shorthand's `metrics[].templateRef`
/// when Flagger's own CRD (`flagger.app/v1beta1`) is not installed.
#[derive(CustomResource, Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "rollgate.dev",
    version = "v1alpha1",
    kind = "MetricTemplate",
    namespaced,
    shortname = "rgmt",
    category = "rollgate",
    doc = "A Flagger-style metric query template, referenced by a Rollout's analysis.metrics[].templateRef.",
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(transparent)]
pub struct MetricTemplateBody {
    /// The template (Flagger's `spec`).
    pub template: MetricTemplateSpec,
}
