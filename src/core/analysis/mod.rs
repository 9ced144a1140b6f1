//! Analysis model and assessment with the semantics of Argo Rollouts AnalysisTemplates.
//!
//! [`model`] holds the specs (field for field Argo's), [`value`] the result values and
//! phases that providers and conditions exchange.

pub mod model;
pub mod value;
