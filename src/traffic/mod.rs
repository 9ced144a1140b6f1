//! Traffic adapters: Gateway API `HTTPRoute` weights and the Services a Rollout manages.
//!
//! The decisions (which weights, which selectors) come from
//! [`crate::core::strategy::router`] and [`crate::core::strategy::services`]; this module
//! reads the objects, skips writes whose desired state already holds, and writes the rest,
//! every call bounded by a timeout.

pub mod httproute;
pub mod services;

use std::time::Duration;

pub use httproute::HttpRouteRouter;
pub use services::{AppliedServices, ensure_services};

/// Bound of every API server call made by the traffic adapters.
pub const API_TIMEOUT: Duration = Duration::from_secs(10);

/// Why traffic could not be shifted or the Services kept.
#[derive(Debug, thiserror::Error)]
pub enum TrafficError {
    /// The HTTPRoute named by `spec.trafficRouting.gatewayAPI.httpRoute` does not exist.
    #[error("HTTPRoute {namespace}/{name} not found")]
    RouteNotFound {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
    },
    /// The route exists but cannot be weighted (no rule holds both managed backends).
    #[error(transparent)]
    Route(#[from] crate::core::strategy::RouteError),
    /// The weights read back after the write are not the ones written (someone else
    /// changed the route in between).
    #[error(
        "HTTPRoute {namespace}/{name}: weights read back {found:?}, expected ({primary}, {canary})"
    )]
    NotApplied {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// What was read back.
        found: Option<(u64, u64)>,
        /// Primary weight written.
        primary: u8,
        /// Canary weight written.
        canary: u8,
    },
    /// The API server refused or failed a call.
    #[error("{op} {object}: {source}")]
    Api {
        /// The operation.
        op: &'static str,
        /// `kind namespace/name`.
        object: String,
        /// The client error.
        source: kube::Error,
    },
    /// The API server did not answer within [`API_TIMEOUT`].
    #[error("{op} {object}: no answer within {API_TIMEOUT:?}")]
    Timeout {
        /// The operation.
        op: &'static str,
        /// `kind namespace/name`.
        object: String,
    },
}

/// Run an API call with [`API_TIMEOUT`], mapping failures to [`TrafficError`].
pub(crate) async fn call<T>(
    op: &'static str,
    object: &str,
    fut: impl std::future::Future<Output = Result<T, kube::Error>>,
) -> Result<T, TrafficError> {
    match tokio::time::timeout(API_TIMEOUT, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(source)) => Err(TrafficError::Api {
            op,
            object: object.to_owned(),
            source,
        }),
        Err(_) => Err(TrafficError::Timeout {
            op,
            object: object.to_owned(),
        }),
    }
}
