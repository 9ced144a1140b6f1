//! The `AnalysisRun` reconciler: each reconcile takes the measurements that are due,
//! through the providers (Prometheus answers shared by the [`Coalescer`](super::Coalescer)),
//! records and assesses them with the core step API
//! ([`crate::core::analysis::run`]), writes the status with server-side apply and
//! requeues at the next due time. Termination (`spec.terminate`) and measurement
//! retention are the core's.
//!
//! Also here: building a run's spec from (Cluster)AnalysisTemplates and a Rollout's args,
//! or from Flagger's shorthand checks.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};
use serde_json::json;

use super::{Context, Error, FIELD_MANAGER, call};
use crate::core::analysis::args::{flatten_templates, merge_args};
use crate::core::analysis::model::{
    AnalysisRunSpec, AnalysisTemplateSpec, Argument, BuiltinMetric, IntOrString, Metric,
    MetricProvider, ThresholdRange,
};
use crate::core::analysis::run::{
    assess, due_metrics, evaluate_measurement, prepare, record_measurement,
};
use crate::core::analysis::status::AnalysisRunStatus as CoreStatus;
use crate::core::analysis::value::AnalysisPhase;
use crate::core::strategy::{AnalysisSource, FlaggerMetric};
use crate::k8s::{AnalysisRun, AnalysisTemplate, ClusterAnalysisTemplate};
use crate::providers::ProviderError;
use crate::telemetry::ReconcileKind;

/// Longest a single measurement may take (providers have their own, shorter timeouts).
const MEASUREMENT_TIMEOUT: Duration = Duration::from_secs(60);

/// The status of a run (absent status: Pending, nothing measured).
#[must_use]
pub fn core_status(run: &AnalysisRun) -> CoreStatus {
    run.status.clone().unwrap_or_default()
}

/// Write a run's status with server-side apply.
///
/// # Errors
/// API errors and timeouts.
pub async fn write_status(
    api: &Api<AnalysisRun>,
    name: &str,
    status: &CoreStatus,
) -> Result<(), Error> {
    let object = format!("AnalysisRun {name}");
    let body = json!({
        "apiVersion": AnalysisRun::api_version(&()),
        "kind": AnalysisRun::kind(&()),
        "status": status,
    });
    call(
        "apply status",
        &object,
        api.patch_status(
            name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(body),
        ),
    )
    .await?;
    Ok(())
}

/// Reconcile one `AnalysisRun`.
///
/// # Errors
/// API failures; measurement failures are measurement outcomes, not errors.
pub async fn reconcile(run: Arc<AnalysisRun>, ctx: Arc<Context>) -> Result<Action, Error> {
    if !ctx.is_leader() {
        return Ok(Action::requeue(Duration::from_secs(5)));
    }
    let started = Instant::now();
    let span = tracing::debug_span!("analysis.reconcile", run = %run.name_any());
    let result = tracing::Instrument::instrument(reconcile_inner(&run, &ctx), span).await;
    super::record(&ctx.telemetry, ReconcileKind::AnalysisRun, started, &result);
    result
}

async fn reconcile_inner(run: &AnalysisRun, ctx: &Context) -> Result<Action, Error> {
    let ns = run.namespace().unwrap_or_default();
    let name = run.name_any();
    let mut status = core_status(run);
    if status.phase.is_completed() {
        return Ok(Action::await_change());
    }
    let before = status.clone();
    let built = match run.annotations().get(super::BUILD_ERROR_ANNOTATION) {
        Some(message) => Err(message.clone()),
        None => prepare(&run.spec.run).map_err(|e| e.to_string()),
    };
    let next = match built {
        Err(message) => {
            let now = Utc::now();
            status.phase = AnalysisPhase::Error;
            status.message = message;
            status.started_at.get_or_insert(now);
            status.completed_at = Some(now);
            None
        }
        Ok(prepared) => {
            let now = Utc::now();
            let due = due_metrics(&prepared, &status, now);
            let settings = &ctx.config.providers;
            let outcomes = futures::future::join_all(due.iter().map(|&i| {
                let metric = &prepared.metrics[i].metric;
                async move {
                    let started = Utc::now();
                    let outcome = match ctx.coalescer.provider(metric, settings) {
                        Ok(p) => {
                            match tokio::time::timeout(MEASUREMENT_TIMEOUT, p.measure(metric)).await
                            {
                                Ok(r) => r,
                                Err(_) => Err(ProviderError::new(format!(
                                    "metric \"{}\": no answer within {MEASUREMENT_TIMEOUT:?}",
                                    metric.name
                                ))),
                            }
                        }
                        Err(e) => Err(e),
                    }
                    .map_err(|e| e.message);
                    (i, started, Utc::now(), outcome)
                }
            }))
            .await;
            for (i, started, finished, outcome) in outcomes {
                let measurement =
                    evaluate_measurement(&prepared.metrics[i], &outcome, started, finished);
                ctx.telemetry.measurement_completed(measurement.phase);
                let metadata = outcome
                    .as_ref()
                    .map(|o| o.metric_metadata.clone())
                    .unwrap_or_default();
                record_measurement(&prepared, &mut status, i, measurement, &metadata, &[]);
            }
            let assessment = assess(&prepared, &mut status, Utc::now());
            assessment.next_requeue
        }
    };
    if status != before {
        let api: Api<AnalysisRun> = Api::namespaced(ctx.client.clone(), &ns);
        write_status(&api, &name, &status).await?;
        if status.phase.is_completed() {
            ctx.telemetry.analysis_run_completed(status.phase);
        }
    }
    if status.phase.is_completed() {
        return Ok(Action::await_change());
    }
    let wait = next
        .map(|t| (t - Utc::now()).to_std().unwrap_or(Duration::ZERO))
        .unwrap_or(Duration::from_secs(10));
    Ok(Action::requeue(wait + Duration::from_millis(5)))
}

/// Back off after a failed reconcile.
pub fn error_policy(run: Arc<AnalysisRun>, error: &Error, _ctx: Arc<Context>) -> Action {
    tracing::warn!(run = %run.name_any(), %error, "analysis run reconcile failed");
    Action::requeue(Duration::from_secs(5))
}

/// Why a run spec could not be built; the run is created in phase Error with this text.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// A named template does not exist.
    #[error("{kind} {name} not found")]
    TemplateNotFound {
        /// `AnalysisTemplate` or `ClusterAnalysisTemplate`.
        kind: &'static str,
        /// Its name.
        name: String,
    },
    /// Templates do not compose, or an arg is left unresolved.
    #[error("{0}")]
    Invalid(String),
    /// The API server failed.
    #[error(transparent)]
    Api(#[from] Error),
}

/// The spec of a run for `source` in `namespace` (templates fetched and composed, the
/// Rollout's args merged in; Flagger's checks turned into built-in metrics).
///
/// # Errors
/// [`BuildError`]: a missing template, a composition conflict, an unresolved arg.
pub async fn build_run_spec(
    ctx: &Context,
    namespace: &str,
    target: &str,
    source: &AnalysisSource,
) -> Result<AnalysisRunSpec, BuildError> {
    match source {
        AnalysisSource::Templates(r) => {
            let mut templates: Vec<AnalysisTemplateSpec> = Vec::new();
            for t in &r.templates {
                let spec = if t.cluster_scope {
                    let api: Api<ClusterAnalysisTemplate> = Api::all(ctx.client.clone());
                    let object = format!("ClusterAnalysisTemplate {}", t.template_name);
                    call("get", &object, api.get_opt(&t.template_name))
                        .await?
                        .map(|x| x.spec.template)
                        .ok_or_else(|| BuildError::TemplateNotFound {
                            kind: "ClusterAnalysisTemplate",
                            name: t.template_name.clone(),
                        })?
                } else {
                    let api: Api<AnalysisTemplate> = Api::namespaced(ctx.client.clone(), namespace);
                    let object = format!("AnalysisTemplate {namespace}/{}", t.template_name);
                    call("get", &object, api.get_opt(&t.template_name))
                        .await?
                        .map(|x| x.spec.template)
                        .ok_or_else(|| BuildError::TemplateNotFound {
                            kind: "AnalysisTemplate",
                            name: t.template_name.clone(),
                        })?
                };
                templates.push(spec);
            }
            let refs: Vec<&AnalysisTemplateSpec> = templates.iter().collect();
            let flat = flatten_templates(&refs).map_err(BuildError::Invalid)?;
            let incoming: Vec<Argument> = r
                .args
                .iter()
                .map(|a| Argument {
                    name: a.name.clone(),
                    value: Some(a.value.clone()),
                    value_from: None,
                })
                .collect();
            let args = merge_args(&incoming, &flat.args).map_err(BuildError::Invalid)?;
            Ok(AnalysisRunSpec {
                metrics: flat.metrics,
                args,
                terminate: false,
                dry_run: flat.dry_run,
                measurement_retention: flat.measurement_retention,
                ttl_strategy: None,
            })
        }
        AnalysisSource::FlaggerChecks {
            interval_secs,
            metrics,
            ..
        } => {
            let metrics = metrics
                .iter()
                .map(|m| flagger_metric(m, namespace, target, *interval_secs))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(AnalysisRunSpec {
                metrics,
                ..AnalysisRunSpec::default()
            })
        }
    }
}

/// One Flagger check as a built-in metric measured once per run (each step's run is one
/// of Flagger's checks).
fn flagger_metric(
    m: &FlaggerMetric,
    namespace: &str,
    target: &str,
    interval_secs: u64,
) -> Result<Metric, BuildError> {
    if m.template_ref.is_some() {
        return Err(BuildError::Invalid(format!(
            "analysis.metrics {}: templateRef (Flagger MetricTemplate) is not supported by the controller yet",
            m.name
        )));
    }
    Ok(Metric {
        name: m.name.clone(),
        interval: Some(format!("{interval_secs}s")),
        count: Some(IntOrString::Int(1)),
        failure_limit: Some(IntOrString::Int(0)),
        provider: MetricProvider {
            builtin: Some(BuiltinMetric {
                metric: m.name.clone(),
                mesh: "gatewayapi:v1".to_owned(),
                namespace: namespace.to_owned(),
                target: target.to_owned(),
                window: m.interval.as_ref().map(|i| i.as_str().to_owned()),
                threshold_range: m.threshold_range.map(|t| ThresholdRange {
                    min: t.min,
                    max: t.max,
                }),
                ..BuiltinMetric::default()
            }),
            ..MetricProvider::default()
        },
        ..Metric::default()
    })
}

/// Mark a just-created run as Error with `message` (a run that cannot be built still
/// exists, so the Rollout's decision sees it fail and aborts).
///
/// # Errors
/// API errors.
pub async fn fail_new_run(api: &Api<AnalysisRun>, name: &str, message: &str) -> Result<(), Error> {
    let now = Utc::now();
    let status = CoreStatus {
        phase: AnalysisPhase::Error,
        message: message.to_owned(),
        started_at: Some(now),
        completed_at: Some(now),
        ..CoreStatus::default()
    };
    write_status(api, name, &status).await
}
