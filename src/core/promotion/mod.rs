//! Promotion pipelines: plans of a promotion or a revert across environments.
//!
//! Everything here is pure: the Git side (`crate::gitops`) reads files and history and
//! hands them in as values; this module decides what changes, and says why.

pub mod edit;
pub mod plan;
pub mod policy;
