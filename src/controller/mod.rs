//! The controller: kube-runtime reconcilers that carry out the core's decisions.
//!
//! - [`rollout`]: one reconcile per `Rollout`: observe the target Deployment, the primary
//!   and the analysis runs, ask [`crate::core::strategy::next`] what to do, carry the
//!   [`Decision`](crate::core::strategy::Decision) out (weights, scaling, runs, template
//!   copy), then promote or revert through Git, and write the status with server-side
//!   apply.
//! - [`analysis`]: one reconcile per `AnalysisRun`: take the due measurements through the
//!   providers (identical Prometheus queries coalesced by [`coalesce`]), record and assess
//!   them with the core step API, write the status.
//! - [`promotion`]: the Git side of a finished rollout (commit to the next environment,
//!   or revert this environment's promotion commit), idempotent through commit trailers.
//! - [`workload`]: Deployments: the primary copy, readiness, scaling.
//! - [`hooks`]: Flagger's webhooks around each tick, as [`crate::core::hooks::gate`]
//!   decides; [`notify`]: what a tick tells people through the notification sinks.
//!
//! [`run`] takes the leader flag (from [`crate::leader`]), the [`Telemetry`] and the shutdown
//! signal as arguments: the reconcilers act only while the flag is true. When the
//! [`Config`] carries the HTTP server's [`Readiness`] and [`Approvals`], it marks the
//! server ready once the watch caches (Rollouts, AnalysisRuns, PromotionPolicies) have
//! synced, and keeps the approvals endpoint's policies current from the
//! PromotionPolicies it sees.

pub mod analysis;
pub mod coalesce;
pub mod hooks;
pub mod notify;
pub mod promotion;
pub mod rollout;
pub mod workload;

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use kube::api::Api;
use kube::runtime::controller::{Config as ControllerConfig, Controller};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Client, Resource, ResourceExt};
use tokio::sync::watch;

use crate::core::analysis::value::AnalysisPhase;
use crate::k8s::{AnalysisRun, PromotionPolicy, Rollout};
use crate::providers::ProviderSettings;
use crate::server::{ApprovalTarget, Approvals, Readiness};
pub use crate::telemetry::Telemetry;
use crate::telemetry::{ReconcileErrorReason, ReconcileKind};

pub use coalesce::Coalescer;

/// Annotation holding a manual request: `promote`, `promote-full`, `abort` or `retry`.
pub const REQUEST_ANNOTATION: &str = "rollgate.dev/request";
/// Annotation naming the `PromotionPolicy` of a Rollout (default: the Rollout's name).
pub const POLICY_ANNOTATION: &str = "rollgate.dev/promotion-policy";
/// Annotation on an AnalysisRun whose spec could not be built (missing template, bad
/// composition): the run ends Error with this message.
pub const BUILD_ERROR_ANNOTATION: &str = "rollgate.dev/build-error";
/// Label on every AnalysisRun naming its Rollout.
pub const ROLLOUT_LABEL: &str = "rollgate.dev/rollout";
/// Label on every AnalysisRun naming the revision it analyses.
pub const REVISION_LABEL: &str = "rollgate.dev/revision";
/// The field manager of every object and status rollgate writes.
pub const FIELD_MANAGER: &str = "rollgate";
/// Bound of every API server call.
pub const API_TIMEOUT: Duration = Duration::from_secs(10);

/// Condition types the controller sets besides the strategy's own.
pub mod conditions {
    /// `False` when the Rollout cannot be carried out (bad spec, missing target, route
    /// or template); `True` once it can.
    pub const READY: &str = "Ready";
    /// The last Git promotion or revert of this revision (`Promoted`, `AwaitingApproval`,
    /// `Reverted`, `NothingToRevert`, `GitError`); the message names the commit.
    pub const GIT_PROMOTION: &str = "GitPromotion";
}

/// Event and condition reasons the controller adds to the strategy's
/// [`EventReason`](crate::core::strategy::EventReason)s.
pub mod reasons {
    /// The spec does not compile.
    pub const INVALID_SPEC: &str = "InvalidSpec";
    /// `spec.targetRef` names a Deployment that does not exist.
    pub const TARGET_NOT_FOUND: &str = "TargetNotFound";
    /// The HTTPRoute is missing or cannot be weighted.
    pub const ROUTE_ERROR: &str = "TrafficRoutingError";
    /// An analysis template is missing or invalid.
    pub const TEMPLATE_ERROR: &str = "AnalysisTemplateError";
    /// Everything the Rollout names exists.
    pub const RESOLVED: &str = "Resolved";
    /// The version was committed to the next environment.
    pub const PROMOTED: &str = "GitPromoted";
    /// The promotion waits for a manual approval.
    pub const AWAITING_APPROVAL: &str = "GitAwaitingApproval";
    /// This environment's promotion commit was reverted.
    pub const REVERTED: &str = "GitReverted";
    /// Nothing to revert (the environment no longer holds the version).
    pub const NOTHING_TO_REVERT: &str = "GitNothingToRevert";
    /// A Git operation failed; it is retried.
    pub const GIT_ERROR: &str = "GitError";
    /// A `confirm-git-promotion` webhook said no: the commit waits.
    pub const AWAITING_GIT_CONFIRMATION: &str = "GitAwaitingConfirmation";
}

/// Why a reconcile failed; the object is retried with backoff.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An API server call failed.
    #[error("{op} {object}: {source}")]
    Api {
        /// The operation.
        op: &'static str,
        /// `kind namespace/name`.
        object: String,
        /// The client error.
        source: kube::Error,
    },
    /// An API server call did not answer within [`API_TIMEOUT`].
    #[error("{op} {object}: no answer within {API_TIMEOUT:?}")]
    Timeout {
        /// The operation.
        op: &'static str,
        /// `kind namespace/name`.
        object: String,
    },
    /// An object could not be converted (a bug or a hand-edited object).
    #[error("{object}: {message}")]
    Decode {
        /// `kind namespace/name`.
        object: String,
        /// What was wrong.
        message: String,
    },
    /// The traffic adapters failed.
    #[error(transparent)]
    Traffic(#[from] crate::traffic::TrafficError),
}

impl Error {
    /// The bounded metric label of this error.
    pub fn reason(&self) -> ReconcileErrorReason {
        match self {
            Error::Api { source, .. } => ReconcileErrorReason::of_kube(source),
            Error::Timeout { .. } => ReconcileErrorReason::Timeout,
            Error::Decode { .. } => ReconcileErrorReason::Internal,
            Error::Traffic(crate::traffic::TrafficError::Api { source, .. }) => {
                ReconcileErrorReason::of_kube(source)
            }
            Error::Traffic(crate::traffic::TrafficError::Timeout { .. }) => {
                ReconcileErrorReason::Timeout
            }
            Error::Traffic(_) => ReconcileErrorReason::MissingReference,
        }
    }
}

/// Record one reconcile's duration, or its error reason.
pub(crate) fn record<T>(
    telemetry: &Telemetry,
    kind: ReconcileKind,
    started: std::time::Instant,
    result: &Result<T, Error>,
) {
    telemetry.reconciled(kind, started.elapsed());
    if let Err(e) = result {
        telemetry.reconcile_error(kind, e.reason());
    }
}

/// Run an API call with [`API_TIMEOUT`], mapping failures to [`Error`].
pub(crate) async fn call<T>(
    op: &'static str,
    object: &str,
    fut: impl Future<Output = Result<T, kube::Error>>,
) -> Result<T, Error> {
    match tokio::time::timeout(API_TIMEOUT, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(source)) => Err(Error::Api {
            op,
            object: object.to_owned(),
            source,
        }),
        Err(_) => Err(Error::Timeout {
            op,
            object: object.to_owned(),
        }),
    }
}

/// How the controller is configured (the `rollgate controller` flags).
#[derive(Debug, Clone)]
pub struct Config {
    /// This cluster's environment in the PromotionPolicies.
    pub environment: String,
    /// Watch only this namespace (default: all).
    pub namespace: Option<String>,
    /// Prometheus settings for every metric.
    pub providers: ProviderSettings,
    /// Identical Prometheus queries within this window are sent once.
    pub coalesce_window: Duration,
    /// Where the Git cache clones live (default: [`crate::gitops::default_cache_dir`]).
    pub git_cache: Option<PathBuf>,
    /// Bound of each Git fetch or push.
    pub git_timeout: Duration,
    /// The reporting controller's instance (pod name) for Events.
    pub instance: Option<String>,
    /// Where notifications go (none: only Kubernetes Events).
    pub notify_sinks: Vec<crate::notify::Sink>,
    /// How notifications are queued, filtered and retried.
    pub notifier: crate::notify::NotifierConfig,
    /// First wait between attempts of a webhook with `retries`.
    pub hook_backoff: Duration,
    /// The HTTP server's readiness: marked once the caches have synced.
    pub readiness: Option<Readiness>,
    /// The HTTP server's approvals: fed from the PromotionPolicies the controller sees.
    pub approvals: Option<Approvals>,
    /// Rollout reconciles running at once (Argo Rollouts' `--rollout-threads`, default 10).
    pub rollout_concurrency: u16,
    /// AnalysisRun reconciles running at once (Argo Rollouts' `--analysis-threads`,
    /// default 30).
    pub analysis_concurrency: u16,
}

impl Config {
    /// Defaults for environment `env`.
    pub fn new(environment: &str) -> Self {
        Self {
            environment: environment.to_owned(),
            namespace: None,
            providers: ProviderSettings::default(),
            coalesce_window: Duration::from_secs(5),
            git_cache: None,
            git_timeout: Duration::from_secs(60),
            instance: None,
            notify_sinks: Vec::new(),
            notifier: crate::notify::NotifierConfig::default(),
            hook_backoff: crate::hooks::DEFAULT_BACKOFF,
            readiness: None,
            approvals: None,
            rollout_concurrency: 10,
            analysis_concurrency: 30,
        }
    }
}

/// What every reconcile shares (controller-rs style).
pub struct Context {
    /// The API client.
    pub client: Client,
    /// The configuration.
    pub config: Config,
    /// Publishes Events.
    pub recorder: Recorder,
    /// Identical queries of different runs go to Prometheus once.
    pub coalescer: Arc<Coalescer>,
    /// True while this replica holds the lease.
    pub leader: watch::Receiver<bool>,
    /// Metrics (bounded labels), shared with the HTTP server.
    pub telemetry: Telemetry,
    /// Serialises Git work per remote (the cache clone is locked while in use).
    pub git_lock: tokio::sync::Mutex<()>,
    /// Calls webhooks (`None` when the HTTP client could not be built: every hook is a "no").
    pub hooks: Option<crate::hooks::HookCaller>,
    /// Sends notifications to the configured sinks (`None`: no sinks).
    pub notifier: Option<crate::notify::Notifier>,
    /// The managed Services applied recently (not re-applied at every reconcile).
    pub services: crate::traffic::AppliedServices,
}

impl Context {
    /// A context for `client` and `config`.
    pub fn new(
        client: Client,
        config: Config,
        leader: watch::Receiver<bool>,
        telemetry: Telemetry,
    ) -> Arc<Self> {
        let reporter = Reporter {
            controller: "rollgate".to_owned(),
            instance: config.instance.clone(),
        };
        let hooks = crate::hooks::HookCaller::with_backoff(config.hook_backoff)
            .map_err(|e| tracing::error!("webhooks disabled: {e}"))
            .ok();
        let notifier = if config.notify_sinks.is_empty() {
            None
        } else {
            crate::notify::Notifier::start(
                config.notify_sinks.clone(),
                config.notifier.clone(),
                telemetry.clone(),
            )
            .map_err(|e| tracing::error!("notifications disabled: {e}"))
            .ok()
        };
        Arc::new(Self {
            hooks,
            notifier,
            recorder: Recorder::new(client.clone(), reporter),
            coalescer: Arc::new(Coalescer::new(config.coalesce_window, telemetry.clone())),
            client,
            config,
            leader,
            telemetry,
            git_lock: tokio::sync::Mutex::new(()),
            services: crate::traffic::AppliedServices::default(),
        })
    }

    /// Whether this replica may act now.
    pub fn is_leader(&self) -> bool {
        *self.leader.borrow()
    }
}

/// Maps a changed `AnalysisRun` to its Rollout only when the run's phase changed (or the
/// run is new to this process). A run writes its status at every measurement and the
/// Rollout looks only at phases: reconciling the Rollout on every write (what `owns` does)
/// costs N / interval Rollout reconciles a second, each with its API calls, which at 1,000
/// Rollouts was most of the controller's work (`benches/controller_scale.rs`). A deleted
/// run is seen at the Rollout's next poll.
fn run_phase_changes() -> impl Fn(AnalysisRun) -> Option<ObjectRef<Rollout>> + Send + Sync + 'static
{
    /// Forget every phase beyond this many runs (a spurious reconcile is harmless).
    const MAX_TRACKED: usize = 100_000;
    let seen: Mutex<HashMap<String, Option<AnalysisPhase>>> = Mutex::default();
    move |run: AnalysisRun| {
        let owner = run.owner_references().iter().find(|o| {
            o.controller == Some(true)
                && o.kind == "Rollout"
                && o.api_version == Rollout::api_version(&())
        })?;
        let rollout = ObjectRef::new(&owner.name).within(&run.namespace()?);
        let phase = run.status.as_ref().map(|s| s.phase);
        let mut seen = seen.lock().unwrap_or_else(PoisonError::into_inner);
        if seen.len() >= MAX_TRACKED {
            seen.clear();
        }
        let key = run.uid()?;
        (seen.insert(key, phase) != Some(phase)).then_some(rollout)
    }
}

/// A stream that yields each time the leader flag turns true (reconcile everything on
/// taking over).
fn on_leadership(leader: watch::Receiver<bool>) -> impl futures::Stream<Item = ()> + Send {
    futures::stream::unfold(leader, |mut rx| async move {
        loop {
            if rx.changed().await.is_err() {
                return None;
            }
            if *rx.borrow_and_update() {
                return Some(((), rx));
            }
        }
    })
}

/// Run both reconcilers until `shutdown` resolves (then finish in-flight reconciles).
///
/// The reconcilers act only while `leader` is true; on becoming leader every object is
/// reconciled again.
pub async fn run(
    client: Client,
    config: Config,
    leader: watch::Receiver<bool>,
    telemetry: Telemetry,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let ctx = Context::new(client.clone(), config.clone(), leader.clone(), telemetry);
    let (rollouts, runs, deployments): (Api<Rollout>, Api<AnalysisRun>, Api<Deployment>) =
        match &config.namespace {
            Some(ns) => (
                Api::namespaced(client.clone(), ns),
                Api::namespaced(client.clone(), ns),
                Api::namespaced(client.clone(), ns),
            ),
            None => (
                Api::all(client.clone()),
                Api::all(client.clone()),
                Api::all(client.clone()),
            ),
        };
    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };

    // Bounded concurrency: unbounded, a start-up with 1,000 Rollouts sends every reconcile's
    // API calls at once, they time out, fail and are retried, and the controller never
    // catches up (measured by `benches/controller_scale.rs`).
    let rollout_controller = Controller::new(rollouts, watcher::Config::default())
        .with_config(ControllerConfig::default().concurrency(config.rollout_concurrency))
        .watches(
            runs.clone(),
            watcher::Config::default(),
            run_phase_changes(),
        );
    let store = rollout_controller.store();
    let rollout_store = store.clone();
    let rollout_controller = rollout_controller
        .watches(
            deployments,
            watcher::Config::default(),
            move |d: Deployment| {
                let ns = d.namespace();
                let name = d.name_any();
                store
                    .state()
                    .into_iter()
                    .filter(|r| r.namespace() == ns && r.spec.spec.target_ref.name == name)
                    .map(|r| ObjectRef::from_obj(&*r))
                    .collect::<Vec<_>>()
            },
        )
        .reconcile_all_on(on_leadership(leader.clone()))
        .graceful_shutdown_on(stopped(stop_rx.clone()))
        .run(rollout::reconcile, rollout::error_policy, ctx.clone())
        .for_each(|r| async move {
            if let Err(e) = r {
                tracing::debug!(error = %e, "rollout controller");
            }
        });
    // A run's Jobs (job metrics) wake it when they change.
    let jobs: Api<Job> = match &config.namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let run_controller = Controller::new(runs, watcher::Config::default())
        .with_config(ControllerConfig::default().concurrency(config.analysis_concurrency))
        .owns(
            jobs,
            watcher::Config::default().labels(crate::providers::job::RUN_UID_LABEL),
        );
    let run_store = run_controller.store();
    let (policies_synced_tx, mut policies_synced) = watch::channel(config.approvals.is_none());
    let policies = {
        let ctx = ctx.clone();
        let stop = stopped(stop_rx.clone());
        async move {
            if config.approvals.is_some() {
                tokio::select! {
                    () = feed_approvals(&ctx, policies_synced_tx) => {}
                    () = stop => {}
                }
            }
        }
    };
    let ready = {
        let readiness = config.readiness.clone();
        async move {
            let Some(readiness) = readiness else { return };
            let synced = async {
                rollout_store.wait_until_ready().await.is_ok()
                    && run_store.wait_until_ready().await.is_ok()
                    && policies_synced.wait_for(|s| *s).await.is_ok()
            };
            if synced.await {
                tracing::info!("caches synced: ready");
                readiness.caches_synced();
            }
        }
    };
    let run_controller = run_controller
        .reconcile_all_on(on_leadership(leader))
        .graceful_shutdown_on(stopped(stop_rx))
        .run(analysis::reconcile, analysis::error_policy, ctx)
        .for_each(|r| async move {
            if let Err(e) = r {
                tracing::debug!(error = %e, "analysis run controller");
            }
        });
    let signal = async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    };
    tokio::join!(rollout_controller, run_controller, signal, policies, ready);
}

/// Keep the approvals endpoint's policies current: every PromotionPolicy seen is
/// registered with a Promoter of its own (a separate Git clone, so an approval never
/// waits for the reconcilers' clone), a deleted one is forgotten. `synced` turns true
/// after the first complete list.
async fn feed_approvals(ctx: &Context, synced: watch::Sender<bool>) {
    let Some(approvals) = ctx.config.approvals.clone() else {
        return;
    };
    let api: Api<PromotionPolicy> = match &ctx.config.namespace {
        Some(ns) => Api::namespaced(ctx.client.clone(), ns),
        None => Api::all(ctx.client.clone()),
    };
    let mut stream = std::pin::pin!(kube::runtime::WatchStreamExt::default_backoff(watcher(
        api,
        watcher::Config::default()
    )));
    while let Some(event) = stream.next().await {
        match event {
            Ok(watcher::Event::Apply(p) | watcher::Event::InitApply(p)) => {
                register_policy(ctx, &approvals, &p).await;
            }
            Ok(watcher::Event::Delete(p)) => approvals.remove(&p.name_any()),
            Ok(watcher::Event::Init) => {}
            Ok(watcher::Event::InitDone) => {
                let _ = synced.send(true);
            }
            Err(e) => tracing::warn!(error = %e, "watching PromotionPolicies"),
        }
    }
}

/// Register one PromotionPolicy for approvals; a policy that cannot be used (bad name,
/// missing Secret, unusable cache) is logged and left out (its approvals answer 404).
async fn register_policy(ctx: &Context, approvals: &Approvals, p: &PromotionPolicy) {
    let ns = p.namespace().unwrap_or_default();
    let name = p.name_any();
    if let Some(known) = approvals.get(&name)
        && known.namespace == ns
        && known.policy.spec == p.spec.spec
    {
        // Unchanged (a status update): keep the open clone.
        return;
    }
    // An open clone is locked: let go of the old one before opening it again.
    approvals.remove(&name);
    let target = async {
        let policy = promotion::core_policy(&ns, &name, p.spec.spec.clone())?;
        let config = promotion::promoter_config(ctx, &ns, &policy, "-approvals").await?;
        let promoter = crate::gitops::Promoter::open(config).await?;
        Ok::<_, promotion::PromotionError>(ApprovalTarget {
            policy,
            promoter: Arc::new(promoter),
            namespace: ns.clone(),
            object: name.clone(),
        })
    };
    match target.await {
        Ok(t) => approvals.insert(t),
        Err(e) => {
            approvals.remove(&name);
            tracing::warn!(policy = %format!("{ns}/{name}"), error = %e, "PromotionPolicy not usable for approvals");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::analysis::status::AnalysisRunStatus;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

    fn run(uid: &str, owner: Option<&str>, phase: Option<AnalysisPhase>) -> AnalysisRun {
        let mut r = AnalysisRun::new("r", Default::default());
        r.metadata.namespace = Some("ns".into());
        r.metadata.uid = Some(uid.into());
        r.metadata.owner_references = owner.map(|name| {
            vec![OwnerReference {
                api_version: Rollout::api_version(&()).into_owned(),
                kind: "Rollout".into(),
                name: name.into(),
                uid: "u".into(),
                controller: Some(true),
                ..OwnerReference::default()
            }]
        });
        r.status = phase.map(|phase| AnalysisRunStatus {
            phase,
            ..AnalysisRunStatus::default()
        });
        r
    }

    #[test]
    fn a_run_triggers_its_rollout_only_when_its_phase_changes() {
        let map = run_phase_changes();
        let want = Some(ObjectRef::<Rollout>::new("web").within("ns"));
        assert_eq!(map(run("1", Some("web"), None)), want, "a new run");
        assert_eq!(map(run("1", Some("web"), None)), None, "unchanged");
        let running = Some(AnalysisPhase::Running);
        assert_eq!(
            map(run("1", Some("web"), running)),
            want,
            "Pending to Running"
        );
        assert_eq!(map(run("1", Some("web"), running)), None, "a measurement");
        let done = Some(AnalysisPhase::Successful);
        assert_eq!(map(run("1", Some("web"), done)), want, "finished");
        assert_eq!(map(run("2", Some("web"), done)), want, "another run");
        assert_eq!(map(run("3", None, done)), None, "not a Rollout's run");
    }
}
