//! Canary and blue-green rollout state machines.
//!
//! - [`spec`]: the `Rollout` spec and status types (no Kubernetes client types).
//! - [`time`]: Go-style durations and RFC 3339 timestamps, with no clock.

pub mod spec;
pub mod time;

pub use spec::*;
pub use time::{GoDuration, Timestamp};
