//! Pure decision logic: no I/O, no clock, no async runtime.
//!
//! Everything here takes time and observations as arguments and returns values, so it is
//! tested with plain data. Adapters in [`crate::providers`], [`crate::gitops`] and
//! [`crate::k8s`] carry the decisions out.

pub mod analysis;
pub mod hooks;
pub mod judge;
pub mod metrics;
pub mod names;
pub mod promotion;
pub mod strategy;
