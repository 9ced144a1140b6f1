//! `Rollout`: the Kubernetes object around the strategy spec and status of
//! [`crate::core::strategy`] (Flagger's model: `spec.targetRef` names the user's
//! Deployment, which stays as Git has it).

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::core::strategy::{RolloutSpec, RolloutStatus};

/// The spec of a `Rollout`: the core spec, unchanged.
#[derive(CustomResource, Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "rollgate.dev",
    version = "v1alpha1",
    kind = "Rollout",
    namespaced,
    shortname = "rgro",
    category = "rollgate",
    status = "RolloutStatusBody",
    doc = "A progressive rollout of a Deployment: canary steps or a blue-green switch, judged by analysis.",
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Step","type":"integer","jsonPath":".status.currentStepIndex"}"#,
    printcolumn = r#"{"name":"Weight","type":"integer","jsonPath":".status.canaryWeight"}"#,
    printcolumn = r#"{"name":"Message","type":"string","jsonPath":".status.message","priority":1}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(transparent)]
pub struct RolloutBody {
    /// The rollout's spec.
    pub spec: RolloutSpec,
}

/// The status of a `Rollout`: the core status, written only by the controller.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct RolloutStatusBody {
    /// The rollout's status.
    pub status: RolloutStatus,
}
