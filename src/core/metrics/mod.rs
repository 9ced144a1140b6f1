//! Flagger's built-in metrics, pure: the query of every observer (mesh or ingress), the
//! `{{ ... }}` rendering with Flagger's whitespace collapsing, the unit conversions and
//! the `thresholdRange` check, and Flagger `MetricTemplate`s turned into metrics.
//!
//! The strings are Flagger's (`pkg/metrics/observers`): a rendered query equals,
//! character for character, what Flagger sends to Prometheus, including the one leading
//! space the collapsing of the multi-line templates leaves.

pub mod flagger;

pub use flagger::*;
