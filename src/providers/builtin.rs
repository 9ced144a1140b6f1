//! The `builtin` provider: Flagger's built-in metrics (and Flagger `MetricTemplate`s)
//! measured against Prometheus and checked Flagger's way.
//!
//! The query comes from [`crate::core::metrics`], rendered exactly as Flagger renders it.
//! The provider decides the measurement phase itself ([`Observation::phase`]), because
//! Flagger's check is not a condition:
//!
//! | Flagger | rollgate measurement |
//! |---|---|
//! | value within `thresholdRange` (bounds pass) | Successful, `result` = the value in its unit |
//! | value outside the range | Failed, message `Halt <target>.<ns> advancement ...` |
//! | no data (empty vector or NaN) | Failed, message `Halt advancement no values found ...` |
//! | query error (Prometheus down, PromQL error, timeout) | Failed, message `Prometheus query failed: ...` |
//!
//! A failed check counts against `failureLimit` (Flagger's `threshold` N is
//! `failureLimit: N-1`), never against `consecutiveErrorLimit`. Only a metric that
//! cannot be configured (unknown mesh or metric name, no address) is a provider error.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::FutureExt as _;
use futures::future::BoxFuture;

use super::prometheus::{ClientOptions, PrometheusClient, QueryData, format_go_float};
use super::{Provider, ProviderError, ProviderSettings};
use crate::core::analysis::model::{BuiltinMetric, Metric};
use crate::core::analysis::value::{AnalysisPhase, Observation, Value};
use crate::core::metrics::{
    BuiltinName, MESHES, Observer, TemplateModel, check, last_value, no_values_message,
};

/// Flagger's Prometheus client timeout, seconds.
pub const FLAGGER_QUERY_TIMEOUT_SECONDS: i64 = 5;

/// What a builtin metric measures.
#[derive(Debug, Clone, PartialEq)]
enum Kind {
    /// A built-in metric of an observer.
    Builtin(Observer, BuiltinName),
    /// A rendered MetricTemplate query: raw value.
    Custom,
}

/// The `builtin` provider for one metric.
#[derive(Debug, Clone)]
pub struct BuiltinProvider {
    client: PrometheusClient,
    kind: Kind,
    query: String,
}

/// The model of a builtin metric: Flagger's defaults (service, ingress, route and name
/// are the target; the interval is `1m`).
#[must_use]
pub fn model_of(b: &BuiltinMetric) -> TemplateModel {
    let mut m = TemplateModel::new(&b.namespace, &b.target);
    if let Some(s) = b.service.as_ref().filter(|s| !s.is_empty()) {
        s.clone_into(&mut m.service);
    }
    if let Some(s) = b.ingress.as_ref().filter(|s| !s.is_empty()) {
        s.clone_into(&mut m.ingress);
    }
    if let Some(s) = b.route.as_ref().filter(|s| !s.is_empty()) {
        s.clone_into(&mut m.route);
    }
    if let Some(s) = b.window.as_ref().filter(|s| !s.is_empty()) {
        s.clone_into(&mut m.interval);
    }
    m
}

/// Resolve a built-in metric to its observer, name and rendered query.
///
/// # Errors
/// An unknown metric name or mesh, a missing namespace or target.
pub fn resolve(b: &BuiltinMetric) -> Result<(Observer, BuiltinName, String), ProviderError> {
    let name = BuiltinName::parse(&b.metric).ok_or_else(|| {
        ProviderError::new(format!(
            "builtin metric \"{}\" is not a built-in metric (request-success-rate, request-duration)",
            b.metric
        ))
    })?;
    let observer = Observer::for_provider(&b.mesh).ok_or_else(|| {
        ProviderError::new(format!(
            "builtin mesh \"{}\" is unknown; use one of {}",
            b.mesh,
            MESHES
                .iter()
                .map(|(n, _)| *n)
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })?;
    for (field, value) in [("namespace", &b.namespace), ("target", &b.target)] {
        if value.is_empty() {
            return Err(ProviderError::new(format!(
                "builtin metric \"{}\": field {field} is required",
                b.metric
            )));
        }
    }
    let query = observer
        .render(name, &model_of(b))
        .map_err(|e| ProviderError::new(format!("rendering query failed: {e}")))?;
    Ok((observer, name, query))
}

impl BuiltinProvider {
    /// Configure the provider for one metric.
    ///
    /// # Errors
    /// See [`resolve`] and [`PrometheusClient::new`].
    pub fn new(b: &BuiltinMetric, settings: &ProviderSettings) -> Result<Self, ProviderError> {
        let (kind, query) = match &b.query {
            Some(q) => (Kind::Custom, q.clone()),
            None => {
                let (observer, name, query) = resolve(b)?;
                (Kind::Builtin(observer, name), query)
            }
        };
        let client = PrometheusClient::new(
            &ClientOptions {
                address: b.address.as_deref(),
                timeout_seconds: Some(FLAGGER_QUERY_TIMEOUT_SECONDS),
                insecure: b.insecure,
                headers: &[],
                authentication: None,
            },
            settings,
        )?;
        Ok(Self {
            client,
            kind,
            query,
        })
    }

    /// The query this provider sends.
    #[must_use]
    pub fn query(&self) -> &str {
        &self.query
    }

    /// The request timeout.
    #[must_use]
    pub fn timeout(&self) -> Duration {
        self.client.timeout()
    }

    async fn run(&self, metric: &Metric) -> Result<Observation, ProviderError> {
        let Some(b) = &metric.provider.builtin else {
            return Err(ProviderError::new(format!(
                "metric \"{}\" has no builtin provider",
                metric.name
            )));
        };
        let mut metric_metadata = BTreeMap::new();
        metric_metadata.insert("ResolvedPrometheusQuery".to_owned(), self.query.clone());
        let failed = |message: String| Observation {
            result: Value::Nil,
            value: String::new(),
            measurement_metadata: BTreeMap::new(),
            metric_metadata: metric_metadata.clone(),
            phase: Some(AnalysisPhase::Failed),
            message: Some(message),
        };
        let answer = match self.client.instant(&self.query).await {
            Ok(a) => a,
            Err(e) => {
                return Ok(failed(match &self.kind {
                    Kind::Builtin(..) => {
                        format!("Prometheus query failed: running query failed: {e}")
                    }
                    Kind::Custom => format!("Metric query failed for {}: {e}", metric.name),
                }));
            }
        };
        let samples = match &answer.data {
            QueryData::Vector(v) => v.clone(),
            QueryData::Matrix(_) => {
                return Ok(failed(
                    "Prometheus query failed: running query failed: query returned multiple values"
                        .to_owned(),
                ));
            }
            QueryData::Scalar(_) | QueryData::Other(_) => {
                return Ok(failed(
                    "Prometheus query failed: running query failed: error unmarshaling result: the answer is not a vector"
                        .to_owned(),
                ));
            }
        };
        let provider_label = b.mesh.as_str();
        let Some(raw) = last_value(&samples) else {
            return Ok(failed(match &self.kind {
                Kind::Builtin(..) => {
                    no_values_message(provider_label, &b.metric, &b.target, &b.namespace)
                }
                Kind::Custom => format!(
                    "Halt advancement no values found for custom metric: {}: no values found",
                    metric.name
                ),
            }));
        };
        let canary = format!("{}.{}", b.target, b.namespace);
        let (value, outcome) = match &self.kind {
            Kind::Builtin(observer, name) => {
                let value = observer.to_unit(*name, raw);
                (
                    value,
                    check(*name, value, b.threshold_range.as_ref(), &canary),
                )
            }
            Kind::Custom => (raw, check_custom(&metric.name, raw, b, &canary)),
        };
        let mut measurement_metadata = BTreeMap::new();
        if !answer.warnings.is_empty() {
            measurement_metadata.insert(
                "warnings".to_owned(),
                answer
                    .warnings
                    .iter()
                    .map(|w| format!("\"{w}\""))
                    .collect::<Vec<_>>()
                    .join(", "),
            );
        }
        Ok(Observation {
            result: Value::Float(value),
            value: format_go_float(value),
            measurement_metadata,
            metric_metadata,
            phase: Some(if outcome.passed {
                AnalysisPhase::Successful
            } else {
                AnalysisPhase::Failed
            }),
            message: (!outcome.passed).then_some(outcome.message),
        })
    }
}

/// Flagger's check of a custom (MetricTemplate) metric: `thresholdRange` bounds pass;
/// without a range, nothing to compare (the legacy threshold of 0 fails any positive
/// value, as for durations).
fn check_custom(
    name: &str,
    value: f64,
    b: &BuiltinMetric,
    canary: &str,
) -> crate::core::metrics::CheckOutcome {
    let (min, max) = match &b.threshold_range {
        Some(r) => (r.min, r.max),
        None => (None, Some(0.0)),
    };
    if let Some(min) = min
        && value < min
    {
        return crate::core::metrics::CheckOutcome {
            passed: false,
            message: format!(
                "Halt {canary} advancement {name} {value:.2} < {}",
                format_go_float(min)
            ),
        };
    }
    if let Some(max) = max
        && value > max
    {
        return crate::core::metrics::CheckOutcome {
            passed: false,
            message: format!(
                "Halt {canary} advancement {name} {value:.2} > {}",
                format_go_float(max)
            ),
        };
    }
    crate::core::metrics::CheckOutcome {
        passed: true,
        message: String::new(),
    }
}

impl Provider for BuiltinProvider {
    fn measure<'a>(
        &'a self,
        metric: &'a Metric,
    ) -> BoxFuture<'a, Result<Observation, ProviderError>> {
        self.run(metric).boxed()
    }
}
