//! Metric providers: Prometheus, web (HTTP JSON) and Flagger built-in metrics.
//!
//! A provider takes one measurement of a metric whose arguments are already substituted
//! and returns an [`Observation`] or a [`ProviderError`] (which makes the measurement
//! Error, retried after the error retry interval).

use futures::future::BoxFuture;

use crate::core::analysis::model::Metric;
use crate::core::analysis::value::Observation;

/// A measurement the provider could not take: transport failure, HTTP status, a PromQL
/// error, an unsupported result type. The message becomes the measurement's message, so
/// it must name what failed and must never contain a secret.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct ProviderError {
    /// Human-readable cause, free of secrets.
    pub message: String,
}

impl ProviderError {
    /// An error with this message.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

/// Something that measures metrics.
pub trait Provider: Send + Sync {
    /// Take one measurement of `metric`.
    ///
    /// # Errors
    /// [`ProviderError`] when no value could be obtained; the measurement becomes Error.
    fn measure<'a>(
        &'a self,
        metric: &'a Metric,
    ) -> BoxFuture<'a, Result<Observation, ProviderError>>;
}
