//! The `AnalysisRun` reconciler: each reconcile takes the measurements that are due,
//! through the providers (Prometheus answers shared by the [`Coalescer`](super::Coalescer)),
//! records and assesses them with the core step API
//! ([`crate::core::analysis::run`]), writes the status with server-side apply and
//! requeues at the next due time. Termination (`spec.terminate`) and measurement
//! retention are the core's. Job metrics go to the [`JobProvider`], whose measurements stay
//! in progress across reconciles until their Job finishes.
//!
//! Also here: building a run's spec from (Cluster)AnalysisTemplates and a Rollout's args,
//! or from Flagger's shorthand checks; and reading `secretKeyRef` args from Secrets at
//! measurement time (as Argo does: the values are never stored in the run, and are
//! replaced by `*****` in every message and metadata the run records).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};
use serde_json::json;

use super::{Context, Error, FIELD_MANAGER, call};
use crate::core::analysis::args::{flatten_templates, merge_args, redact, resolve_metric_args};
use crate::core::analysis::model::{
    AnalysisRunSpec, AnalysisTemplateSpec, Argument, BuiltinMetric, IntOrString, Metric,
    MetricProvider, ThresholdRange,
};
use crate::core::analysis::run::{
    PreparedRun, assess, due_metrics, evaluate_measurement, in_flight_metrics, prepare,
    record_measurement, ttl_expiry,
};
use crate::core::analysis::status::AnalysisRunStatus as CoreStatus;
use crate::core::analysis::value::AnalysisPhase;
use crate::core::metrics::flagger::MetricTemplateSpec;
use crate::core::strategy::{AnalysisSource, FlaggerMetric};
use crate::k8s::{AnalysisRun, AnalysisTemplate, ClusterAnalysisTemplate};
use crate::providers::ProviderError;
use crate::providers::job::{JobProvider, RunRef};
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
        return expire(ctx, run, &status).await;
    }
    let before = status.clone();
    let built = match run.annotations().get(super::BUILD_ERROR_ANNOTATION) {
        Some(message) => Err(message.clone()),
        None => match prepare(&run.spec.run) {
            Err(e) => Err(e.to_string()),
            Ok(prepared) => match secret_args(ctx, run).await {
                Ok(secrets) => with_secrets(run, prepared, &secrets).map(|(p, m)| (p, m, secrets)),
                Err(SecretArgError::Api(e)) => return Err(e),
                Err(e) => Err(format!("Unable to resolve metric arguments: {e}")),
            },
        },
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
        Ok((prepared, with_values, secrets)) => {
            let secret_values: Vec<String> = secrets.into_values().collect();
            let now = Utc::now();
            let due = due_metrics(&prepared, &status, now);
            let in_flight = in_flight_metrics(&prepared, &status, now);
            let jobs = JobProvider::new(ctx.client.clone(), run_ref(run));
            let job_steps = jobs.step(&prepared, &status, &due, &in_flight, now).await;
            let due: Vec<usize> = due
                .into_iter()
                .filter(|&i| prepared.metrics[i].metric.provider.job.is_none())
                .collect();
            let settings = &ctx.config.providers;
            let outcomes = futures::future::join_all(due.iter().map(|&i| {
                let metric = with_values
                    .as_ref()
                    .and_then(|m| m.get(i))
                    .unwrap_or(&prepared.metrics[i].metric);
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
            let redact_map = |m: &BTreeMap<String, String>| -> BTreeMap<String, String> {
                m.iter()
                    .map(|(k, v)| (k.clone(), redact(v, &secret_values)))
                    .collect()
            };
            for (i, started, finished, outcome) in outcomes {
                let mut measurement =
                    evaluate_measurement(&prepared.metrics[i], &outcome, started, finished);
                ctx.telemetry.measurement_completed(measurement.phase);
                if !secret_values.is_empty() {
                    measurement.metadata = redact_map(&measurement.metadata);
                }
                let metadata = outcome
                    .as_ref()
                    .map(|o| redact_map(&o.metric_metadata))
                    .unwrap_or_default();
                record_measurement(
                    &prepared,
                    &mut status,
                    i,
                    measurement,
                    &metadata,
                    &secret_values,
                );
            }
            let job_metrics: Vec<usize> = job_steps.iter().map(|(i, _)| *i).collect();
            for (i, measurement) in job_steps {
                if measurement.phase.is_completed() {
                    ctx.telemetry.measurement_completed(measurement.phase);
                }
                record_measurement(
                    &prepared,
                    &mut status,
                    i,
                    measurement,
                    &Default::default(),
                    &[],
                );
            }
            jobs.collect_garbage(&prepared, &status, &job_metrics).await;
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
        return expire(ctx, run, &status).await;
    }
    let wait = next
        .map(|t| (t - Utc::now()).to_std().unwrap_or(Duration::ZERO))
        .unwrap_or(Duration::from_secs(10));
    Ok(Action::requeue(wait + Duration::from_millis(5)))
}

/// The run as the owner of its Jobs.
fn run_ref(run: &AnalysisRun) -> RunRef {
    RunRef {
        api_version: AnalysisRun::api_version(&()).into_owned(),
        kind: AnalysisRun::kind(&()).into_owned(),
        namespace: run.namespace().unwrap_or_default(),
        name: run.name_any(),
        uid: run.uid().unwrap_or_default(),
    }
}

/// A completed run: delete it once its `ttlStrategy` has expired (strictly after the
/// deadline, as Argo), or look again at the deadline; without a TTL, wait for a change.
async fn expire(ctx: &Context, run: &AnalysisRun, status: &CoreStatus) -> Result<Action, Error> {
    let Some(deadline) = ttl_expiry(
        run.spec.run.ttl_strategy.as_ref(),
        status.phase,
        status.completed_at,
    ) else {
        return Ok(Action::await_change());
    };
    let now = Utc::now();
    if now <= deadline {
        let wait = (deadline - now).to_std().unwrap_or(Duration::ZERO);
        return Ok(Action::requeue(wait + Duration::from_millis(50)));
    }
    let ns = run.namespace().unwrap_or_default();
    let name = run.name_any();
    let api: Api<AnalysisRun> = Api::namespaced(ctx.client.clone(), &ns);
    match call(
        "delete",
        &format!("AnalysisRun {ns}/{name}"),
        api.delete(&name, &kube::api::DeleteParams::default()),
    )
    .await
    {
        Ok(_) => {
            tracing::info!(run = %name, namespace = %ns, phase = status.phase.as_str(), "AnalysisRun deleted by its ttlStrategy");
            Ok(Action::await_change())
        }
        Err(Error::Api {
            source: kube::Error::Api(ref s),
            ..
        }) if s.code == 404 => Ok(Action::await_change()),
        Err(e) => Err(e),
    }
}

/// Back off after a failed reconcile.
pub fn error_policy(run: Arc<AnalysisRun>, error: &Error, _ctx: Arc<Context>) -> Action {
    tracing::warn!(run = %run.name_any(), %error, "analysis run reconcile failed");
    Action::requeue(Duration::from_secs(5))
}

/// Why a `secretKeyRef` arg could not be read; the run ends Error with this text (which
/// names the run, the arg and the Secret, never a value).
#[derive(Debug, thiserror::Error)]
pub enum SecretArgError {
    /// The Secret does not exist in the run's namespace.
    #[error("{run}: arg \"{arg}\": Secret {namespace}/{secret} not found")]
    SecretNotFound {
        /// `Rollout ns/name, AnalysisRun name` (or `AnalysisRun ns/name`).
        run: String,
        /// The arg's name.
        arg: String,
        /// The run's namespace.
        namespace: String,
        /// The Secret's name.
        secret: String,
    },
    /// The Secret has no such key.
    #[error("{run}: arg \"{arg}\": key '{key}' does not exist in Secret {namespace}/{secret}")]
    KeyNotFound {
        /// As in [`SecretArgError::SecretNotFound`].
        run: String,
        /// The arg's name.
        arg: String,
        /// The key.
        key: String,
        /// The run's namespace.
        namespace: String,
        /// The Secret's name.
        secret: String,
    },
    /// The controller may not read the Secret (RBAC).
    #[error(
        "{run}: arg \"{arg}\": the controller may not read Secret {namespace}/{secret} (grant its ServiceAccount get on it)"
    )]
    Forbidden {
        /// As in [`SecretArgError::SecretNotFound`].
        run: String,
        /// The arg's name.
        arg: String,
        /// The run's namespace.
        namespace: String,
        /// The Secret's name.
        secret: String,
    },
    /// The key's value is not UTF-8 text.
    #[error("{run}: arg \"{arg}\": key '{key}' of Secret {namespace}/{secret} is not UTF-8 text")]
    NotText {
        /// As in [`SecretArgError::SecretNotFound`].
        run: String,
        /// The arg's name.
        arg: String,
        /// The key.
        key: String,
        /// The run's namespace.
        namespace: String,
        /// The Secret's name.
        secret: String,
    },
    /// The API server failed (retried).
    #[error(transparent)]
    Api(#[from] Error),
}

/// The values of `run`'s `secretKeyRef` args by arg name, read now from Secrets in the
/// run's namespace (empty when it has none).
///
/// # Errors
/// [`SecretArgError`]: a missing Secret or key, a non-text value, an API failure.
pub async fn secret_args(
    ctx: &Context,
    run: &AnalysisRun,
) -> Result<BTreeMap<String, String>, SecretArgError> {
    let mut out = BTreeMap::new();
    let refs: Vec<_> = run
        .spec
        .run
        .args
        .iter()
        .filter_map(|a| {
            a.value_from
                .as_ref()
                .and_then(|v| v.secret_key_ref.as_ref())
                .map(|r| (a.name.as_str(), r))
        })
        .collect();
    if refs.is_empty() {
        return Ok(out);
    }
    let ns = run.namespace().unwrap_or_default();
    let who = match run.labels().get(super::ROLLOUT_LABEL) {
        Some(r) => format!("Rollout {ns}/{r}, AnalysisRun {}", run.name_any()),
        None => format!("AnalysisRun {ns}/{}", run.name_any()),
    };
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), &ns);
    for (arg, r) in refs {
        let object = format!("Secret {ns}/{}", r.name);
        let secret = match call("get", &object, api.get_opt(&r.name)).await {
            Ok(s) => s,
            Err(Error::Api {
                source: kube::Error::Api(ref s),
                ..
            }) if s.code == 403 => {
                return Err(SecretArgError::Forbidden {
                    run: who,
                    arg: arg.to_owned(),
                    namespace: ns,
                    secret: r.name.clone(),
                });
            }
            Err(e) => return Err(e.into()),
        };
        let Some(secret) = secret else {
            return Err(SecretArgError::SecretNotFound {
                run: who,
                arg: arg.to_owned(),
                namespace: ns,
                secret: r.name.clone(),
            });
        };
        let Some(bytes) = secret.data.as_ref().and_then(|d| d.get(&r.key)) else {
            return Err(SecretArgError::KeyNotFound {
                run: who,
                arg: arg.to_owned(),
                key: r.key.clone(),
                namespace: ns,
                secret: r.name.clone(),
            });
        };
        let Ok(value) = String::from_utf8(bytes.0.clone()) else {
            return Err(SecretArgError::NotText {
                run: who,
                arg: arg.to_owned(),
                key: r.key.clone(),
                namespace: ns,
                secret: r.name.clone(),
            });
        };
        out.insert(arg.to_owned(), value);
    }
    Ok(out)
}

/// The metrics as the providers see them, with the secret values substituted (`None`
/// when the run has no secret args: the prepared metrics are already final).
type ProviderMetrics = Option<Vec<Metric>>;

/// Substitute the secret values into `run`'s metrics for the providers.
fn with_secrets(
    run: &AnalysisRun,
    prepared: PreparedRun,
    secrets: &BTreeMap<String, String>,
) -> Result<(PreparedRun, ProviderMetrics), String> {
    if secrets.is_empty() {
        return Ok((prepared, None));
    }
    let args: Vec<Argument> = run
        .spec
        .run
        .args
        .iter()
        .map(|a| match secrets.get(&a.name) {
            Some(v) => Argument {
                name: a.name.clone(),
                value: Some(v.clone()),
                value_from: None,
            },
            None => a.clone(),
        })
        .collect();
    let values: Vec<String> = secrets.values().cloned().collect();
    let metrics = run
        .spec
        .run
        .metrics
        .iter()
        .map(|m| resolve_metric_args(m, &args))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            format!(
                "Unable to resolve metric arguments: {}",
                redact(&e, &values)
            )
        })?;
    Ok((prepared, Some(metrics)))
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
            let mut out = Vec::with_capacity(metrics.len());
            for m in metrics {
                out.push(match &m.template_ref {
                    None => flagger_metric(m, namespace, target, *interval_secs)?,
                    Some(r) => {
                        template_metric(ctx, m, r, namespace, target, *interval_secs).await?
                    }
                });
            }
            let metrics = out;
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

/// Flagger's `MetricTemplate` named by a shorthand metric's `templateRef`: rollgate's
/// own kind (`metrictemplates.rollgate.dev`) first, then Flagger's
/// (`metrictemplates.flagger.app/v1beta1`, when that CRD is installed), in the
/// `templateRef`'s namespace (default: the Rollout's).
async fn metric_template(
    ctx: &Context,
    namespace: &str,
    name: &str,
) -> Result<Option<MetricTemplateSpec>, BuildError> {
    let api: Api<crate::k8s::MetricTemplate> = Api::namespaced(ctx.client.clone(), namespace);
    let object = format!("MetricTemplate {namespace}/{name}");
    match call("get", &object, api.get(name)).await {
        Ok(t) => return Ok(Some(t.spec.template)),
        // Not there, or rollgate's MetricTemplate CRD is not installed: try Flagger's.
        Err(Error::Api {
            source: kube::Error::Api(ref s),
            ..
        }) if s.code == 404 => {}
        Err(e) => return Err(e.into()),
    }
    let gvk = kube::api::GroupVersionKind::gvk("flagger.app", "v1beta1", "MetricTemplate");
    let resource = kube::api::ApiResource::from_gvk_with_plural(&gvk, "metrictemplates");
    let api: Api<kube::api::DynamicObject> =
        Api::namespaced_with(ctx.client.clone(), namespace, &resource);
    // A 404 is both "no such object" and "Flagger's CRD is not installed" (the latter
    // without a Status body, so `get_opt` would not see it as absent).
    let obj = match call("get", &object, api.get(name)).await {
        Ok(obj) => obj,
        Err(Error::Api {
            source: kube::Error::Api(ref s),
            ..
        }) if s.code == 404 => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let spec = obj.data.get("spec").cloned().unwrap_or_default();
    serde_json::from_value(spec).map(Some).map_err(|e| {
        BuildError::Invalid(format!(
            "MetricTemplate {namespace}/{name} (flagger.app): spec: {e}"
        ))
    })
}

/// One Flagger check from a `MetricTemplate`: the query rendered for the Rollout
/// (`{{ namespace }}`, `{{ target }}`, `{{ interval }}`, `{{ variables.KEY }}` ...),
/// checked Flagger's way against `thresholdRange`, measured once per check run.
async fn template_metric(
    ctx: &Context,
    m: &FlaggerMetric,
    r: &crate::core::strategy::MetricTemplateRef,
    namespace: &str,
    target: &str,
    interval_secs: u64,
) -> Result<Metric, BuildError> {
    let template_ns = r.namespace.as_deref().unwrap_or(namespace);
    let Some(spec) = metric_template(ctx, template_ns, &r.name).await? else {
        return Err(BuildError::TemplateNotFound {
            kind: "MetricTemplate",
            name: format!(
                "{template_ns}/{} (analysis.metrics {:?}.templateRef)",
                r.name, m.name
            ),
        });
    };
    if spec.provider.secret_ref.is_some() {
        return Err(BuildError::Invalid(format!(
            "MetricTemplate {template_ns}/{}: spec.provider.secretRef is not supported by the controller; give the credentials in the address",
            r.name
        )));
    }
    let template = crate::core::metrics::MetricTemplate {
        api_version: String::new(),
        kind: String::new(),
        metadata: crate::core::metrics::TemplateMetadata {
            name: r.name.clone(),
            namespace: Some(template_ns.to_owned()),
        },
        spec,
    };
    let mut model = crate::core::metrics::TemplateModel::new(namespace, target);
    if let Some(i) = &m.interval {
        model.interval = i.as_str().to_owned();
    }
    model.variables = m.template_variables.clone();
    let usage = crate::core::metrics::TemplateUse {
        metric_name: Some(m.name.clone()),
        model,
        threshold_range: m.threshold_range.map(|t| ThresholdRange {
            min: t.min,
            max: t.max,
        }),
    };
    let mut metric = template
        .to_metric(&usage)
        .map_err(|e| BuildError::Invalid(e.to_string()))?;
    metric.interval = Some(format!("{interval_secs}s"));
    metric.count = Some(IntOrString::Int(1));
    metric.failure_limit = Some(IntOrString::Int(0));
    Ok(metric)
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
