//! The `Rollout` reconciler. One tick: resolve what the Rollout names (spec, target
//! Deployment, Services, HTTPRoute), observe (revision, readiness, run phases, a manual
//! request), ask [`next_with_plan`](crate::core::strategy::next_with_plan) for the
//! [`Decision`], carry its actions out in order, publish its Events, settle Git when the
//! revision finished, and write the status with server-side apply. The status is written only after every action succeeded, so a
//! failed or interrupted tick is simply taken again (every action is idempotent).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action as Requeue;
use kube::runtime::events::{Event as KubeEvent, EventType};
use kube::{Resource, ResourceExt};
use serde_json::json;

use super::analysis::{build_run_spec, fail_new_run};
use super::promotion::settle;
use super::workload::{
    apply_primary, desired_replicas, image_tag, readiness, scale, selector_label,
};
use super::{
    Context, Error, FIELD_MANAGER, REQUEST_ANNOTATION, REVISION_LABEL, ROLLOUT_LABEL, call,
    conditions, reasons,
};
use crate::core::analysis::value::AnalysisPhase;
use crate::core::strategy::{
    Action, Condition, ConditionStatus, Decision, EventReason, Observations, Phase, Plan,
    Readiness, Request, RolloutStatus, RunPhase, Scale, ServiceRole, Timestamp, Weight, compile,
    managed_services_at, switches_by_selector,
};
use crate::k8s::analysis::AnalysisRunBody;
use crate::k8s::{AnalysisRun, Rollout};
use crate::telemetry::ReconcileKind;
use crate::traffic::{HttpRouteRouter, TrafficError, ensure_services};

/// Look again at a Rollout that is blocked on bad input this often.
const BLOCKED_REQUEUE: Duration = Duration::from_secs(30);
/// Safety net when the decision asks for no requeue.
const IDLE_REQUEUE: Duration = Duration::from_secs(300);

/// Reconcile one `Rollout`.
///
/// # Errors
/// API failures; they are retried with backoff.
pub async fn reconcile(rollout: Arc<Rollout>, ctx: Arc<Context>) -> Result<Requeue, Error> {
    if !ctx.is_leader() {
        return Ok(Requeue::requeue(Duration::from_secs(5)));
    }
    let started = Instant::now();
    // Read the Rollout fresh: the watch cache may not show the status (or the cleared
    // request annotation) that the previous tick wrote, and acting on it twice would
    // repeat a request or a Git step.
    let api: Api<Rollout> =
        Api::namespaced(ctx.client.clone(), &rollout.namespace().unwrap_or_default());
    let name = rollout.name_any();
    let result = match call("get", &format!("Rollout {name}"), api.get_opt(&name)).await {
        Ok(Some(fresh)) => Tick::new(&fresh, &ctx).run().await,
        Ok(None) => {
            ctx.telemetry
                .rollout_deleted(&rollout.namespace().unwrap_or_default(), &name);
            Ok(Requeue::await_change())
        }
        Err(e) => Err(e),
    };
    super::record(&ctx.telemetry, ReconcileKind::Rollout, started, &result);
    result
}

/// Back off after a failed reconcile.
pub fn error_policy(rollout: Arc<Rollout>, error: &Error, _ctx: Arc<Context>) -> Requeue {
    tracing::warn!(rollout = %rollout.name_any(), %error, "rollout reconcile failed");
    Requeue::requeue(Duration::from_secs(5))
}

/// The parsed request annotation.
fn request(r: &Rollout) -> Option<Request> {
    match r.annotations().get(REQUEST_ANNOTATION).map(String::as_str) {
        Some("promote") => Some(Request::Promote),
        Some("promote-full") => Some(Request::PromoteFull),
        Some("abort") => Some(Request::Abort),
        Some("retry") => Some(Request::Retry),
        _ => None,
    }
}

fn now() -> Timestamp {
    Timestamp::from_unix(chrono::Utc::now().timestamp())
}

fn run_phase(p: Option<AnalysisPhase>) -> RunPhase {
    match p {
        None | Some(AnalysisPhase::Pending) => RunPhase::Pending,
        Some(AnalysisPhase::Running) => RunPhase::Running,
        Some(AnalysisPhase::Successful) => RunPhase::Successful,
        Some(AnalysisPhase::Failed) => RunPhase::Failed,
        Some(AnalysisPhase::Error) => RunPhase::Error,
        Some(AnalysisPhase::Inconclusive) => RunPhase::Inconclusive,
    }
}

/// Set a condition; true when it changed (status, reason or message).
fn set_condition(
    status: &mut RolloutStatus,
    type_: &str,
    value: ConditionStatus,
    reason: &str,
    message: &str,
) -> bool {
    let t = now();
    match status.conditions.iter_mut().find(|c| c.type_ == type_) {
        Some(c) => {
            if c.status == value && c.reason == reason && c.message == message {
                return false;
            }
            if c.status != value {
                c.last_transition_time = t;
            }
            c.status = value;
            reason.clone_into(&mut c.reason);
            message.clone_into(&mut c.message);
            true
        }
        None => {
            status.conditions.push(Condition {
                type_: type_.to_owned(),
                status: value,
                reason: reason.to_owned(),
                message: message.to_owned(),
                last_transition_time: t,
            });
            true
        }
    }
}

struct Tick<'a> {
    r: &'a Rollout,
    ctx: &'a Context,
    ns: String,
    name: String,
    status: RolloutStatus,
}

impl<'a> Tick<'a> {
    fn new(r: &'a Rollout, ctx: &'a Context) -> Self {
        Self {
            r,
            ctx,
            ns: r.namespace().unwrap_or_default(),
            name: r.name_any(),
            status: r.status.clone().map(|s| s.status).unwrap_or_default(),
        }
    }

    fn spec(&self) -> &crate::core::strategy::RolloutSpec {
        &self.r.spec.spec
    }

    async fn publish(&self, warning: bool, reason: &str, note: String) {
        super::hooks::TickHooks::new(
            self.ctx,
            self.r,
            self.status.last_applied_revision.as_deref().unwrap_or(""),
        )
        .spawn_event(self.status.phase, warning, &note);
        let ev = KubeEvent {
            type_: if warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: reason.to_owned(),
            note: Some(note),
            action: "Reconcile".to_owned(),
            secondary: None,
        };
        let reference = self.r.object_ref(&());
        match tokio::time::timeout(
            super::API_TIMEOUT,
            self.ctx.recorder.publish(&ev, &reference),
        )
        .await
        {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(rollout = %self.name, error = %e, "publishing an event"),
            Err(_) => tracing::warn!(rollout = %self.name, "publishing an event timed out"),
        }
    }

    async fn write_status(&self, status: &RolloutStatus) -> Result<(), Error> {
        let api: Api<Rollout> = Api::namespaced(self.ctx.client.clone(), &self.ns);
        let body = json!({
            "apiVersion": Rollout::api_version(&()),
            "kind": Rollout::kind(&()),
            "status": status,
        });
        call(
            "apply status",
            &format!("Rollout {}/{}", self.ns, self.name),
            api.patch_status(
                &self.name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(body),
            ),
        )
        .await?;
        Ok(())
    }

    /// The Rollout cannot be carried out: say why (condition and Event once), put any
    /// shifted traffic back on the primary, and look again later.
    async fn blocked(mut self, reason: &'static str, message: String) -> Result<Requeue, Error> {
        let mut status = self.status.clone();
        let changed = set_condition(
            &mut status,
            conditions::READY,
            ConditionStatus::False,
            reason,
            &message,
        );
        if status.canary_weight != 0
            && let Some((route_ns, route)) = self.route()
        {
            let (p, c) = self.backend_names();
            let router = HttpRouteRouter::new(self.ctx.client.clone());
            if router
                .set(&route_ns, &route, &p, &c, Weight::FULL, Weight::ZERO)
                .await
                .is_ok()
            {
                status.canary_weight = 0;
            }
        }
        if changed {
            self.publish(true, reason, message).await;
        }
        if status != self.status {
            self.write_status(&status).await?;
            self.status = status;
        }
        Ok(Requeue::requeue(BLOCKED_REQUEUE))
    }

    fn route(&self) -> Option<(String, String)> {
        let gw = self.spec().traffic_routing.as_ref()?.gateway_api.as_ref()?;
        Some((
            gw.http_route
                .namespace
                .clone()
                .unwrap_or_else(|| self.ns.clone()),
            gw.http_route.name.clone(),
        ))
    }

    /// The primary and canary Service names (the backendRefs rollgate weights).
    fn backend_names(&self) -> (String, String) {
        let svc = self.spec().service_name();
        let canary = match &self.spec().strategy {
            crate::core::strategy::Strategy::BlueGreen(b) => b
                .preview_service
                .clone()
                .unwrap_or_else(|| format!("{svc}-canary")),
            crate::core::strategy::Strategy::Canary(_) => format!("{svc}-canary"),
        };
        (format!("{svc}-primary"), canary)
    }

    async fn run(self) -> Result<Requeue, Error> {
        let plan: Plan = match compile(self.spec()) {
            Ok(p) => p,
            Err(e) => {
                let message = format!("Rollout {}/{}: spec.{}: {e}", self.ns, self.name, e.field());
                return self.blocked(reasons::INVALID_SPEC, message).await;
            }
        };
        let deployments: Api<Deployment> = Api::namespaced(self.ctx.client.clone(), &self.ns);
        let target_name = self.spec().target_ref.name.clone();
        let target = call(
            "get",
            &format!("Deployment {}/{target_name}", self.ns),
            deployments.get_opt(&target_name),
        )
        .await?;
        let Some(target) = target else {
            let message = format!(
                "spec.targetRef: Deployment {}/{target_name} not found",
                self.ns
            );
            return self.blocked(reasons::TARGET_NOT_FOUND, message).await;
        };
        let Some(label) = selector_label(&target) else {
            let message = format!(
                "spec.targetRef: Deployment {}/{target_name} has no spec.selector.matchLabels",
                self.ns
            );
            return self.blocked(reasons::INVALID_SPEC, message).await;
        };
        let owner = self.r.controller_owner_ref(&());
        let services = managed_services_at(
            self.spec(),
            &label.0,
            &label.1,
            Weight::new(self.status.canary_weight).unwrap_or(Weight::ZERO),
        );
        if self.ctx.services.due(&self.ns, &services, owner.as_ref()) {
            ensure_services(&self.ctx.client, &self.ns, &services, owner.clone()).await?;
            self.ctx
                .services
                .record(&self.ns, &services, owner.as_ref());
        }
        let router = HttpRouteRouter::new(self.ctx.client.clone());
        if let Some((route_ns, route)) = self.route()
            && router.get(&route_ns, &route).await?.is_none()
        {
            let message = format!(
                "spec.trafficRouting.gatewayAPI.httpRoute: HTTPRoute {route_ns}/{route} not found"
            );
            return self.blocked(reasons::ROUTE_ERROR, message).await;
        }
        let primary_name = format!("{target_name}-primary");
        let primary = call(
            "get",
            &format!("Deployment {}/{primary_name}", self.ns),
            deployments.get_opt(&primary_name),
        )
        .await?;
        let runs_api: Api<AnalysisRun> = Api::namespaced(self.ctx.client.clone(), &self.ns);
        let run_list = call(
            "list",
            &format!("AnalysisRuns of Rollout {}/{}", self.ns, self.name),
            runs_api.list(&ListParams::default().labels(&format!("{ROLLOUT_LABEL}={}", self.name))),
        )
        .await?
        .items;
        let runs: BTreeMap<String, RunPhase> = run_list
            .iter()
            .map(|run| {
                (
                    run.name_any(),
                    run_phase(run.status.as_ref().map(|s| s.phase)),
                )
            })
            .collect();
        let revision = super::workload::revision(&target);
        let obs = Observations {
            rollout_name: self.name.clone(),
            revision: revision.clone(),
            canary: readiness(&target),
            primary: primary.as_ref().map_or(Readiness::NotReady, readiness),
            runs,
            request: request(self.r),
        };
        let hooks = super::hooks::TickHooks::new(self.ctx, self.r, &revision);
        let decision: Decision = hooks.decide(&plan, &self.status, &obs, now()).await;
        let replicas = desired_replicas(primary.as_ref(), &target);
        let mut blocked: Option<(&'static str, String)> = None;
        for action in &decision.actions {
            match action {
                Action::SetWeights { primary, canary } => {
                    if let Some((route_ns, route)) = self.route() {
                        let (p, c) = self.backend_names();
                        match router
                            .set(&route_ns, &route, &p, &c, *primary, *canary)
                            .await
                        {
                            Ok(_) => {}
                            Err(
                                e @ (TrafficError::Route(_) | TrafficError::RouteNotFound { .. }),
                            ) => {
                                blocked = Some((reasons::ROUTE_ERROR, e.to_string()));
                                break;
                            }
                            Err(e) => return Err(e.into()),
                        }
                    } else if switches_by_selector(self.spec()) {
                        // Blue-green without a router: the active Service is the switch.
                        let active: Vec<_> =
                            managed_services_at(self.spec(), &label.0, &label.1, *canary)
                                .into_iter()
                                .filter(|s| s.role == ServiceRole::Apex)
                                .collect();
                        ensure_services(&self.ctx.client, &self.ns, &active, owner.clone()).await?;
                    }
                }
                Action::ScaleCanary { to } => {
                    let n = match to {
                        Scale::Up => replicas,
                        Scale::Zero => 0,
                    };
                    scale(&deployments, &target, n).await?;
                }
                Action::CopyTemplateToPrimary { .. } => {
                    let Some(owner) = owner.clone() else {
                        return Err(Error::Decode {
                            object: format!("Rollout {}/{}", self.ns, self.name),
                            message: "no uid yet".to_owned(),
                        });
                    };
                    apply_primary(
                        &deployments,
                        &target,
                        &primary_name,
                        &label,
                        replicas,
                        owner,
                    )
                    .await?;
                }
                Action::CreateAnalysisRun { name, source, .. } => {
                    if let Some(message) = self
                        .create_run(&runs_api, name, &revision, &target_name, source)
                        .await?
                    {
                        blocked = Some((reasons::TEMPLATE_ERROR, message));
                    }
                }
                Action::TerminateAnalysisRun { name } => {
                    call(
                        "terminate",
                        &format!("AnalysisRun {}/{name}", self.ns),
                        runs_api.patch(
                            name,
                            &PatchParams::default(),
                            &Patch::Merge(json!({"spec": {"terminate": true}})),
                        ),
                    )
                    .await
                    .map(|_| ())
                    .or_else(|e| match e {
                        Error::Api {
                            source: kube::Error::Api(ref s),
                            ..
                        } if s.code == 404 => Ok(()),
                        e => Err(e),
                    })?;
                }
            }
        }
        if let Some((reason, message)) = &blocked
            && *reason == reasons::ROUTE_ERROR
        {
            let message = message.clone();
            return self.blocked(reasons::ROUTE_ERROR, message).await;
        }
        for ev in &decision.events {
            self.publish(ev.warning, ev.reason.as_str(), ev.message.clone())
                .await;
        }
        let mut status = decision.status.clone();
        match blocked {
            Some((reason, message)) => {
                if set_condition(
                    &mut status,
                    conditions::READY,
                    ConditionStatus::False,
                    reason,
                    &message,
                ) {
                    self.publish(true, reason, message).await;
                }
            }
            None => {
                // A template error stays reported until a new rollout of the target starts.
                let restarted = decision.events.iter().any(|e| {
                    matches!(
                        e.reason,
                        EventReason::NewRevisionDetected
                            | EventReason::RolloutRetried
                            | EventReason::RolloutRestarted
                    )
                });
                let template_error = status
                    .conditions
                    .iter()
                    .any(|c| c.type_ == conditions::READY && c.reason == reasons::TEMPLATE_ERROR);
                if restarted || !template_error {
                    set_condition(
                        &mut status,
                        conditions::READY,
                        ConditionStatus::True,
                        reasons::RESOLVED,
                        "",
                    );
                }
            }
        }
        let mut requeue = decision.requeue_after_secs.map(Duration::from_secs);
        let mut git = None;
        if let Some(wait) = self
            .settle_git(&mut status, &target, &hooks, &mut git)
            .await
        {
            requeue = Some(requeue.map_or(wait, |r| r.min(wait)));
        }
        if status != self.status {
            self.write_status(&status).await?;
        }
        if hooks.gate.post_rollout_due(&self.status, &decision) {
            hooks.spawn_post_rollout(status.phase);
        }
        super::notify::send(
            self.ctx,
            &super::notify::TickReport {
                app: &self.name,
                environment: &self.ctx.config.environment,
                version: image_tag(&target).as_deref(),
                prior: &self.status,
                status: &status,
                events: &decision.events,
                runs: &run_list,
                git: git.as_ref(),
            },
        );
        if status.phase != self.status.phase {
            self.ctx
                .telemetry
                .rollout_phase_changed(self.status.phase, status.phase);
        }
        self.ctx.telemetry.rollout_observed(
            &self.ns,
            &self.name,
            status.phase,
            status.canary_weight,
        );
        if obs.request.is_some() {
            let api: Api<Rollout> = Api::namespaced(self.ctx.client.clone(), &self.ns);
            call(
                "clear request",
                &format!("Rollout {}/{}", self.ns, self.name),
                api.patch(
                    &self.name,
                    &PatchParams::default(),
                    &Patch::Merge(json!({"metadata": {"annotations": {REQUEST_ANNOTATION: null}}})),
                ),
            )
            .await?;
        }
        Ok(match requeue {
            Some(d) => Requeue::requeue(d.max(Duration::from_millis(100))),
            None => Requeue::requeue(IDLE_REQUEUE),
        })
    }

    /// Create a run (idempotent). A run whose spec cannot be built is created in phase
    /// Error, so the decision aborts the rollout; the message is returned.
    async fn create_run(
        &self,
        api: &Api<AnalysisRun>,
        name: &str,
        revision: &str,
        target: &str,
        source: &crate::core::strategy::AnalysisSource,
    ) -> Result<Option<String>, Error> {
        if call(
            "get",
            &format!("AnalysisRun {}/{name}", self.ns),
            api.get_opt(name),
        )
        .await?
        .is_some()
        {
            return Ok(None);
        }
        let (spec, failure) = match build_run_spec(self.ctx, &self.ns, target, source).await {
            Ok(spec) => (spec, None),
            Err(super::analysis::BuildError::Api(e)) => return Err(e),
            Err(e) => (
                Default::default(),
                Some(format!(
                    "Rollout {}/{}: analysis run {name}: {e}",
                    self.ns, self.name
                )),
            ),
        };
        let mut run = AnalysisRun::new(name, AnalysisRunBody { run: spec });
        run.metadata.namespace = Some(self.ns.clone());
        run.metadata.labels = Some(
            [
                (ROLLOUT_LABEL.to_owned(), self.name.clone()),
                (
                    REVISION_LABEL.to_owned(),
                    revision.chars().take(63).collect(),
                ),
            ]
            .into_iter()
            .collect(),
        );
        run.metadata.owner_references = self.r.controller_owner_ref(&()).map(|o| vec![o]);
        if let Some(message) = &failure {
            run.metadata.annotations = Some(
                [(super::BUILD_ERROR_ANNOTATION.to_owned(), message.clone())]
                    .into_iter()
                    .collect(),
            );
        }
        match tokio::time::timeout(super::API_TIMEOUT, api.create(&PostParams::default(), &run))
            .await
        {
            Ok(Ok(_)) => {}
            Ok(Err(kube::Error::Api(s))) if s.code == 409 => return Ok(None),
            Ok(Err(source)) => {
                return Err(Error::Api {
                    op: "create",
                    object: format!("AnalysisRun {}/{name}", self.ns),
                    source,
                });
            }
            Err(_) => {
                return Err(Error::Timeout {
                    op: "create",
                    object: format!("AnalysisRun {}/{name}", self.ns),
                });
            }
        }
        if let Some(message) = &failure {
            fail_new_run(api, name, message).await?;
        }
        Ok(failure)
    }

    /// When the current revision has just finished here (Succeeded or Failed, with a
    /// history entry), carry out the Git side once: the `GitPromotion` condition records
    /// it per revision, and the Git side itself is idempotent, so a crash between the
    /// commit and the status write commits nothing twice. Returns a retry delay after a
    /// Git failure.
    async fn settle_git(
        &self,
        status: &mut RolloutStatus,
        target: &Deployment,
        hooks: &super::hooks::TickHooks<'_>,
        git: &mut Option<super::promotion::GitOutcome>,
    ) -> Option<Duration> {
        let rev = status.last_applied_revision.clone()?;
        let last = status.history.last()?;
        if last.revision != rev
            || last.phase != status.phase
            || !matches!(status.phase, Phase::Succeeded | Phase::Failed)
        {
            return None;
        }
        let succeeded = status.phase == Phase::Succeeded;
        let prefix = format!("revision {rev} {}:", status.phase.as_str());
        let done = status
            .conditions
            .iter()
            .any(|c| c.type_ == conditions::GIT_PROMOTION && c.message.starts_with(&prefix));
        if done {
            return None;
        }
        let Some(version) = image_tag(target) else {
            set_condition(
                status,
                conditions::GIT_PROMOTION,
                ConditionStatus::False,
                "NoVersion",
                &format!(
                    "{prefix} the target's first container image has no tag; nothing promoted"
                ),
            );
            return None;
        };
        let evidence = status
            .analysis_runs
            .iter()
            .map(|r| format!("{}={:?}", r.name, r.phase))
            .collect::<Vec<_>>()
            .join(", ");
        let evidence = format!(
            "rollout {}/{} revision {rev} {} in {}; analysis: {}",
            self.ns,
            self.name,
            status.phase.as_str(),
            self.ctx.config.environment,
            if evidence.is_empty() {
                "-".to_owned()
            } else {
                evidence
            }
        );
        if succeeded && let Some(message) = hooks.confirm_git_promotion(status.phase).await {
            if set_condition(
                status,
                conditions::GIT_PROMOTION,
                ConditionStatus::False,
                reasons::AWAITING_GIT_CONFIRMATION,
                &message,
            ) {
                *git = Some(super::promotion::GitOutcome {
                    reason: reasons::AWAITING_GIT_CONFIRMATION,
                    message: message.clone(),
                    commit: None,
                });
                self.publish(false, reasons::AWAITING_GIT_CONFIRMATION, message)
                    .await;
            }
            return Some(hooks.interval());
        }
        match settle(self.ctx, self.r, &version, succeeded, &evidence).await {
            Ok(Some(out)) => {
                *git = Some(out.clone());
                let message = format!("{prefix} {}", out.message);
                set_condition(
                    status,
                    conditions::GIT_PROMOTION,
                    ConditionStatus::True,
                    out.reason,
                    &message,
                );
                self.publish(false, out.reason, out.message).await;
                None
            }
            Ok(None) => {
                set_condition(
                    status,
                    conditions::GIT_PROMOTION,
                    ConditionStatus::True,
                    "NothingToDo",
                    &format!(
                        "{prefix} no Git change for environment {}",
                        self.ctx.config.environment
                    ),
                );
                None
            }
            Err(e) => {
                let message = format!("Git for revision {rev}: {e}");
                if set_condition(
                    status,
                    conditions::GIT_PROMOTION,
                    ConditionStatus::False,
                    reasons::GIT_ERROR,
                    &message,
                ) {
                    self.publish(true, reasons::GIT_ERROR, message).await;
                }
                Some(Duration::from_secs(15))
            }
        }
    }
}
