//! Custom resource types (group `rollgate.dev`, version `v1alpha1`) and CRD generation.
//!
//! Each kind wraps a pure spec from [`crate::core`] (the analysis model, the Rollout
//! strategy, the promotion policy) and adds the Kubernetes parts: status subresources,
//! printer columns, short names. [`crds`] returns the CustomResourceDefinitions with
//! schemas the API server accepts as structural; `rollgate crds` prints them and `crds/`
//! holds them as files (a test fails when the files drift from the types).

pub mod analysis;
pub mod promotion;
pub mod rollout;
pub mod schema;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

pub use analysis::{AnalysisRun, AnalysisTemplate, ClusterAnalysisTemplate, MetricTemplate};
pub use promotion::PromotionPolicy;
pub use rollout::Rollout;

/// The API group of every rollgate kind.
pub const GROUP: &str = "rollgate.dev";
/// The served and stored version.
pub const VERSION: &str = "v1alpha1";

/// Why the CRDs could not be produced.
#[derive(Debug, thiserror::Error)]
pub enum CrdError {
    /// A generated CRD could not be converted to or from JSON (a bug in a type's schema).
    #[error("CRD {name}: {source}")]
    Json {
        /// The CRD's name.
        name: String,
        /// The serde error.
        source: serde_json::Error,
    },
    /// The CRDs could not be written as YAML.
    #[error("CRD {name} as YAML: {source}")]
    Yaml {
        /// The CRD's name.
        name: String,
        /// The serde error.
        source: serde_yaml::Error,
    },
}

/// Every rollgate CRD, with structural schemas, in a stable order.
///
/// # Errors
/// [`CrdError::Json`] if a generated schema cannot be rewritten (a bug in a type).
pub fn crds() -> Result<Vec<CustomResourceDefinition>, CrdError> {
    [
        Rollout::crd(),
        AnalysisTemplate::crd(),
        ClusterAnalysisTemplate::crd(),
        AnalysisRun::crd(),
        PromotionPolicy::crd(),
        MetricTemplate::crd(),
    ]
    .into_iter()
    .map(schema::structural)
    .collect()
}

/// The file name of a CRD in `crds/`: `<plural>.<group>.yaml`.
#[must_use]
pub fn file_name(crd: &CustomResourceDefinition) -> String {
    format!("{}.yaml", crd.metadata.name.as_deref().unwrap_or("unnamed"))
}

/// One CRD as a YAML document (no leading `---`).
///
/// # Errors
/// [`CrdError::Yaml`] if serialization fails.
pub fn to_yaml(crd: &CustomResourceDefinition) -> Result<String, CrdError> {
    serde_yaml::to_string(crd).map_err(|source| CrdError::Yaml {
        name: crd.metadata.name.clone().unwrap_or_default(),
        source,
    })
}

/// All CRDs as one multi-document YAML stream, each document starting with `---`.
///
/// # Errors
/// As [`crds`] and [`to_yaml`].
pub fn crds_yaml() -> Result<String, CrdError> {
    let mut out = String::new();
    for crd in crds()? {
        out.push_str("---\n");
        out.push_str(&to_yaml(&crd)?);
    }
    Ok(out)
}
