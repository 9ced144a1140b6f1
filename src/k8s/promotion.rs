//! `PromotionPolicy`: the Kubernetes object around [`crate::core::promotion::policy`]
//! (one per application: the GitOps repository, the ordered environments, approvals,
//! what to do on failure), plus what the controller records in its status.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::core::promotion::policy::PromotionPolicySpec;

/// The spec of a `PromotionPolicy`: the core spec, unchanged.
#[derive(CustomResource, Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "rollgate.dev",
    version = "v1alpha1",
    kind = "PromotionPolicy",
    plural = "promotionpolicies",
    namespaced,
    shortname = "rgpp",
    category = "rollgate",
    status = "PromotionPolicyStatus",
    doc = "The promotion pipeline of one application through the environments of a GitOps repository.",
    printcolumn = r#"{"name":"Repository","type":"string","jsonPath":".spec.repository.url"}"#,
    printcolumn = r#"{"name":"On-Failure","type":"string","jsonPath":".spec.onFailure"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(transparent)]
pub struct PromotionPolicyBody {
    /// The policy.
    pub spec: PromotionPolicySpec,
}

/// What the controller of this cluster's environment knows about the policy.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PromotionPolicyStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// One entry per environment the controller has seen, in promotion order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub environments: Vec<EnvironmentStatus>,
    /// Conditions (`Ready`, `RepositoryReachable`, ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// Where one environment stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EnvironmentStatus {
    /// The environment's name.
    pub name: String,
    /// The version its file holds on the branch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Where the last promotion into it stands.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promotion: Option<PromotionPhase>,
    /// The commit of the last promotion or revert.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// When the last promotion or revert happened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<Time>,
}

/// Where the last promotion into an environment stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum PromotionPhase {
    /// Committed on the branch.
    Promoted,
    /// Committed on a promotion branch, waiting for a manual approval.
    AwaitingApproval,
    /// Reverted after a failed check.
    Reverted,
    /// Promotion or revert failed (Git error); see the conditions.
    Failed,
}
