//! Metric providers: Prometheus, web (HTTP JSON) and Flagger built-in metrics, and Argo's
//! asynchronous `job` provider ([`job`], driven by the controller only).
//!
//! A provider takes one measurement of a metric whose arguments are already substituted
//! and returns an [`Observation`] or a [`ProviderError`] (which makes the measurement
//! Error, retried after the error retry interval). [`build`] picks the provider a metric
//! names and configures it; callers build one per metric (as Argo does per measurement,
//! building once is enough because the metric is resolved before it is measured).

use std::sync::Arc;

use futures::future::BoxFuture;

use crate::core::analysis::model::Metric;
use crate::core::analysis::value::Observation;

pub mod builtin;
pub mod duration;
pub mod job;
pub mod judge;
pub mod prometheus;
pub mod web;

/// The environment variable Argo Rollouts reads when a prometheus metric has no address.
pub const PROMETHEUS_ADDRESS_ENV: &str = "ARGO_ROLLOUTS_PROMETHEUS_ADDRESS";

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

/// Settings that apply to every provider of a run (from the command line or the
/// controller), as opposed to the fields of one metric.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProviderSettings {
    /// `--prometheus`: replaces the address of every `prometheus` and `builtin` metric.
    pub prometheus_address: Option<String>,
    /// The address used when a metric has none and no override is given; [`build`] fills
    /// it from `ARGO_ROLLOUTS_PROMETHEUS_ADDRESS` when this is `None`.
    pub default_prometheus_address: Option<String>,
}

impl ProviderSettings {
    /// Settings with the `--prometheus` override (if any) and the default address taken
    /// from `ARGO_ROLLOUTS_PROMETHEUS_ADDRESS`.
    #[must_use]
    pub fn from_env(prometheus_address: Option<String>) -> Self {
        Self {
            prometheus_address,
            default_prometheus_address: std::env::var(PROMETHEUS_ADDRESS_ENV)
                .ok()
                .filter(|a| !a.is_empty()),
        }
    }

    /// The Prometheus address for a metric whose own address is `own`: the override,
    /// else `own`, else the default, else the environment variable.
    #[must_use]
    pub fn prometheus_address_for(&self, own: Option<&str>) -> Option<String> {
        let pick = |a: Option<&str>| a.filter(|a| !a.is_empty()).map(str::to_owned);
        pick(self.prometheus_address.as_deref())
            .or_else(|| pick(own))
            .or_else(|| pick(self.default_prometheus_address.as_deref()))
            .or_else(|| pick(std::env::var(PROMETHEUS_ADDRESS_ENV).ok().as_deref()))
    }
}

/// The provider kind a metric names (exactly one must be set; validation reports the
/// others).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKind {
    /// `prometheus`.
    Prometheus,
    /// `web`.
    Web,
    /// `builtin` (Flagger's built-in metrics and MetricTemplates).
    Builtin,
}

impl ProviderKind {
    /// The kind of the (first) supported provider set on `metric`, or `None`.
    #[must_use]
    pub fn of(metric: &Metric) -> Option<Self> {
        let p = &metric.provider;
        if p.prometheus.is_some() {
            Some(Self::Prometheus)
        } else if p.web.is_some() {
            Some(Self::Web)
        } else if p.builtin.is_some() {
            Some(Self::Builtin)
        } else {
            None
        }
    }

    /// The provider's name as written in YAML (also Argo's `type` label).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Prometheus => "prometheus",
            Self::Web => "web",
            Self::Builtin => "builtin",
        }
    }
}

/// The name of the unsupported Argo provider set on `metric`, if any.
#[must_use]
pub fn unsupported_provider(metric: &Metric) -> Option<String> {
    let p = &metric.provider;
    let named = [
        ("kayenta", p.kayenta.is_some()),
        ("datadog", p.datadog.is_some()),
        ("wavefront", p.wavefront.is_some()),
        ("newRelic", p.new_relic.is_some()),
        ("cloudWatch", p.cloud_watch.is_some()),
        ("graphite", p.graphite.is_some()),
        ("influxdb", p.influxdb.is_some()),
        ("skywalking", p.skywalking.is_some()),
    ];
    if let Some((name, _)) = named.iter().find(|(_, set)| *set) {
        return Some((*name).to_owned());
    }
    p.plugin
        .as_ref()
        .and_then(|m| m.keys().next())
        .map(|k| format!("plugin {k}"))
}

/// Build the provider for `metric` (arguments already substituted).
///
/// # Errors
/// [`ProviderError`] when the metric names no supported provider, or its provider is
/// misconfigured: an address that is not a URL (`prometheus address is not is url
/// format`), no address at all (`prometheus address is not configured`), a negative
/// timeout, incomplete basic auth, an invalid header.
pub fn build(
    metric: &Metric,
    settings: &ProviderSettings,
) -> Result<Arc<dyn Provider>, ProviderError> {
    let p = &metric.provider;
    if let Some(prom) = &p.prometheus {
        return Ok(Arc::new(prometheus::PrometheusProvider::new(
            prom, settings,
        )?));
    }
    if let Some(web) = &p.web {
        return Ok(Arc::new(web::WebProvider::new(web)?));
    }
    if let Some(b) = &p.builtin {
        return Ok(Arc::new(builtin::BuiltinProvider::new(b, settings)?));
    }
    if let Some(j) = &p.judge {
        return Ok(Arc::new(judge::JudgeProvider::new(j, settings)?));
    }
    if p.job.is_some() {
        return Err(ProviderError::new(format!(
            "metric \"{}\": {}",
            metric.name,
            job::NEEDS_CONTROLLER
        )));
    }
    match unsupported_provider(metric) {
        Some(name) => Err(ProviderError::new(format!(
            "metric \"{}\": provider {name} is not supported by rollgate",
            metric.name
        ))),
        None => Err(ProviderError::new(format!(
            "metric \"{}\": no provider specified",
            metric.name
        ))),
    }
}
