//! Analysis model and assessment with the semantics of Argo Rollouts AnalysisTemplates.
//!
//! [`model`] holds the specs (field for field Argo's), [`value`] the result values and
//! phases that providers and conditions exchange, [`status`] Argo's `AnalysisRun.status`.
//! [`condition`] is the condition language, [`duration`] Go durations, [`args`] argument
//! merging and substitution, [`run`] validation and the pure step API (due metrics,
//! measurement phase, counters, metric and run assessment), [`documents`] the YAML loader.

pub mod args;
pub mod condition;
pub mod documents;
pub mod duration;
pub mod model;
pub mod run;
pub mod status;
pub mod value;
