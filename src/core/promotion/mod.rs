//! Promotion pipelines: plans of a promotion or a revert across environments.
