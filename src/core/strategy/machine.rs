//! The rollout state machine: `next(spec, status, observations, now) -> Decision`, one
//! tick at a time, for canary and blue-green alike (both compile into a [`Plan`]).
//!
//! The machine never performs anything: it returns the actions for the reconciler to
//! carry out, the status to write, the events to emit and when to look again.
//!
//! Order of one tick: first sight of the target initialises the primary (no analysis);
//! a revision other than `lastAppliedRevision` stops the current rollout and starts a new
//! one, unless it is `lastPromotedRevision` (a GitOps revert), which is settled without
//! analysis; a retry restarts an aborted revision; an abort request aborts; otherwise
//! the canary must be ready (or the progress deadline aborts), then the background
//! analysis and the steps are followed, at most one weight change per tick. Abort puts
//! the canary's weight to 0 at once; an aborted revision stays `Failed` until retried or
//! replaced. Promotion copies the template, waits for the primary, returns traffic to it
//! (by `stepWeightPromotion` per tick, or at once), waits `scaleDownDelaySeconds` and
//! scales the canary to zero.

use std::collections::BTreeMap;

use serde::Serialize;

use super::plan::{AnalysisSource, Plan, PlanStep, SpecError, compile};
use super::spec::{
    AnalysisKind, AnalysisRunRef, Condition, ConditionStatus, HISTORY_LIMIT, HistoryEntry,
    PauseReason, Phase, RolloutSpec, RolloutStatus, RunPhase, Weight,
};
use super::time::Timestamp;

/// How long to wait before looking again at something that is not ready yet.
pub const READINESS_POLL_SECS: u64 = 5;
/// Safety net while an analysis run is pending or running (its phase changes also
/// trigger a reconcile).
pub const ANALYSIS_POLL_SECS: u64 = 30;

/// Condition type: a rollout is under way (True), finished (False/`RolloutCompleted`)
/// or aborted (False/`RolloutAborted`).
pub const CONDITION_PROGRESSING: &str = "Progressing";
/// Condition type: the rollout waits for a manual promote.
pub const CONDITION_PAUSED: &str = "Paused";

/// Readiness of a Deployment as the reconciler saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Readiness {
    /// All updated replicas available.
    Ready,
    /// Still rolling out (retriable).
    NotReady,
    /// The Deployment reports `ProgressDeadlineExceeded` (not retriable).
    Stalled,
}

/// A manual request (annotation or `rollgate rollout promote|abort|retry`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Request {
    /// Resume past the current pause or inconclusive analysis.
    Promote,
    /// Skip every remaining step and promote now.
    PromoteFull,
    /// Abort the rollout: all traffic back to the primary at once.
    Abort,
    /// Run an aborted revision again from the first step.
    Retry,
}

/// What the reconciler observed for this tick.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observations {
    /// The Rollout's name (prefix of analysis run names).
    pub rollout_name: String,
    /// Hash of the target Deployment's pod template (and tracked configs).
    pub revision: String,
    /// Readiness of the canary Deployment (the target).
    pub canary: Readiness,
    /// Readiness of `<name>-primary`.
    pub primary: Readiness,
    /// Phases of the analysis runs that exist, by name.
    pub runs: BTreeMap<String, RunPhase>,
    /// A pending manual request, if any (the reconciler clears it after the tick).
    pub request: Option<Request>,
}

/// How to scale the canary Deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Scale {
    /// To its desired replicas.
    Up,
    /// To zero.
    Zero,
}

/// One thing for the reconciler to do, in order.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(
    rename_all = "camelCase",
    rename_all_fields = "camelCase",
    tag = "type"
)]
pub enum Action {
    /// Write these weights on the two managed backends (they add up to 100).
    SetWeights {
        /// Weight of `<svc>-primary`.
        primary: Weight,
        /// Weight of `<svc>-canary`.
        canary: Weight,
    },
    /// Scale the canary Deployment.
    ScaleCanary {
        /// Up or to zero.
        to: Scale,
    },
    /// Create an `AnalysisRun` (idempotent: it may already exist).
    CreateAnalysisRun {
        /// Its name.
        name: String,
        /// What it is for.
        kind: AnalysisKind,
        /// The step it belongs to.
        step_index: Option<u32>,
        /// What it measures.
        source: AnalysisSource,
    },
    /// Terminate a running `AnalysisRun` (it ends Successful, not Failed).
    TerminateAnalysisRun {
        /// Its name.
        name: String,
    },
    /// Copy the target's pod template to `<name>-primary`.
    CopyTemplateToPrimary {
        /// The revision copied.
        revision: String,
    },
}

/// Reasons of Kubernetes Events, one place for all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum EventReason {
    /// The primary was created from the target; no rollout.
    RolloutInitialized,
    /// A new revision starts a rollout.
    NewRevisionDetected,
    /// A new revision arrived mid-rollout; the old one's traffic and runs are stopped.
    RolloutRestarted,
    /// The target went back to the revision already on the primary; nothing to analyse.
    RevisionAlreadyPromoted,
    /// Canary weight changed by a step.
    TrafficWeightChanged,
    /// Waiting for a manual promote.
    RolloutPaused,
    /// A manual promote resumed the rollout.
    RolloutResumed,
    /// An analysis run was created.
    AnalysisRunCreated,
    /// An analysis run ended Inconclusive; paused until promoted.
    InconclusiveAnalysisRun,
    /// Aborted: failed analysis or manual abort.
    RolloutAborted,
    /// The canary or primary did not become ready in time.
    ProgressDeadlineExceeded,
    /// `skipAnalysis`: promoted without steps.
    SkippedAnalysis,
    /// Promotion started (template copied to the primary).
    RolloutPromoting,
    /// The primary failed while promoting; traffic left on the canary.
    PromotionFailed,
    /// The revision runs on the primary.
    RolloutCompleted,
    /// An aborted revision is retried.
    RolloutRetried,
    /// A `confirm-rollout` webhook said no: the new revision waits.
    RolloutWaiting,
    /// A `pre-rollout` or `rollout` webhook failed: one failed check, the tick ends.
    WebhookCheckFailed,
    /// A `confirm-traffic-increase` webhook said no: the weight stays.
    TrafficIncreaseHeld,
    /// A `confirm-promotion` webhook said no: `WaitingPromotion`, checks continue.
    PromotionWaiting,
    /// A `rollback` webhook passed: the canary was rolled back.
    RolledBackByWebhook,
    /// Failed checks reached the threshold: the canary was rolled back.
    FailedChecksThreshold,
    /// One of Flagger's checks failed below `threshold`; the weight is held for
    /// another interval.
    AnalysisCheckFailed,
}

impl EventReason {
    /// The reason string of the Event.
    pub fn as_str(self) -> &'static str {
        match self {
            EventReason::RolloutInitialized => "RolloutInitialized",
            EventReason::NewRevisionDetected => "NewRevisionDetected",
            EventReason::RolloutRestarted => "RolloutRestarted",
            EventReason::RevisionAlreadyPromoted => "RevisionAlreadyPromoted",
            EventReason::TrafficWeightChanged => "TrafficWeightChanged",
            EventReason::RolloutPaused => "RolloutPaused",
            EventReason::RolloutResumed => "RolloutResumed",
            EventReason::AnalysisRunCreated => "AnalysisRunCreated",
            EventReason::InconclusiveAnalysisRun => "InconclusiveAnalysisRun",
            EventReason::RolloutAborted => "RolloutAborted",
            EventReason::ProgressDeadlineExceeded => "ProgressDeadlineExceeded",
            EventReason::SkippedAnalysis => "SkippedAnalysis",
            EventReason::RolloutPromoting => "RolloutPromoting",
            EventReason::PromotionFailed => "PromotionFailed",
            EventReason::RolloutCompleted => "RolloutCompleted",
            EventReason::RolloutRetried => "RolloutRetried",
            EventReason::RolloutWaiting => "RolloutWaiting",
            EventReason::WebhookCheckFailed => "WebhookCheckFailed",
            EventReason::TrafficIncreaseHeld => "TrafficIncreaseHeld",
            EventReason::PromotionWaiting => "PromotionWaiting",
            EventReason::RolledBackByWebhook => "RolledBackByWebhook",
            EventReason::FailedChecksThreshold => "FailedChecksThreshold",
            EventReason::AnalysisCheckFailed => "AnalysisCheckFailed",
        }
    }
}

/// An Event to emit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// Constant reason.
    pub reason: EventReason,
    /// `Warning` rather than `Normal`.
    pub warning: bool,
    /// Human-readable message.
    pub message: String,
}

/// The outcome of one tick.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Decision {
    /// The status to write.
    pub status: RolloutStatus,
    /// What to do, in order.
    pub actions: Vec<Action>,
    /// Events to emit.
    pub events: Vec<Event>,
    /// Look again after this many seconds (0: at once); `None`: only on a change.
    pub requeue_after_secs: Option<u64>,
}

impl Decision {
    /// The weights this decision writes last, if any.
    pub fn weights(&self) -> Option<(Weight, Weight)> {
        self.actions.iter().rev().find_map(|a| match a {
            Action::SetWeights { primary, canary } => Some((*primary, *canary)),
            _ => None,
        })
    }
}

/// Decide one tick of a rollout.
///
/// # Errors
/// [`SpecError`] when the spec does not compile (see [`compile`]); the status is then
/// left as it is and the reconciler reports the field.
pub fn next(
    spec: &RolloutSpec,
    status: &RolloutStatus,
    observations: &Observations,
    now: Timestamp,
) -> Result<Decision, SpecError> {
    let plan = compile(spec)?;
    Ok(next_with_plan(&plan, status, observations, now))
}

/// Decide one tick with an already compiled plan (see [`next`]).
pub fn next_with_plan(
    plan: &Plan,
    status: &RolloutStatus,
    observations: &Observations,
    now: Timestamp,
) -> Decision {
    let mut m = Machine {
        plan,
        obs: observations,
        now,
        d: Decision {
            status: status.clone(),
            actions: Vec::new(),
            events: Vec::new(),
            requeue_after_secs: None,
        },
    };
    m.tick();
    m.d
}

/// What a Flagger check allows at the end of an interval.
enum CheckOutcome {
    /// Passed (or there are no checks): advance.
    Passed,
    /// Running, failed below the threshold, or aborted: end the tick.
    Wait,
}

struct Machine<'a> {
    plan: &'a Plan,
    obs: &'a Observations,
    now: Timestamp,
    d: Decision,
}

impl Machine<'_> {
    fn st(&mut self) -> &mut RolloutStatus {
        &mut self.d.status
    }

    fn rev(&self) -> &str {
        &self.obs.revision
    }

    fn event(&mut self, reason: EventReason, warning: bool, message: impl Into<String>) {
        self.d.events.push(Event {
            reason,
            warning,
            message: message.into(),
        });
    }

    fn requeue(&mut self, secs: u64) {
        self.d.requeue_after_secs = Some(match self.d.requeue_after_secs {
            Some(s) => s.min(secs),
            None => secs,
        });
    }

    fn set_weights(&mut self, canary: Weight) {
        self.d.actions.push(Action::SetWeights {
            primary: canary.complement(),
            canary,
        });
        self.st().canary_weight = canary.get();
    }

    fn set_condition(&mut self, type_: &str, status: ConditionStatus, reason: EventReason) {
        let now = self.now;
        let message = self.d.status.message.clone().unwrap_or_default();
        let conditions = &mut self.st().conditions;
        match conditions.iter_mut().find(|c| c.type_ == type_) {
            Some(c) => {
                if c.status != status {
                    c.last_transition_time = now;
                }
                c.status = status;
                c.reason = reason.as_str().to_owned();
                c.message = message;
            }
            None => conditions.push(Condition {
                type_: type_.to_owned(),
                status,
                reason: reason.as_str().to_owned(),
                message,
                last_transition_time: now,
            }),
        }
    }

    fn tick(&mut self) {
        let rev = self.rev().to_owned();
        if self.d.status.primary_revision.is_none() {
            self.initialize(&rev);
            return;
        }
        let same_revision = self.d.status.last_applied_revision.as_deref() == Some(rev.as_str());
        if !same_revision {
            if self.d.status.phase.is_active() {
                self.stop_runs();
                self.event(
                    EventReason::RolloutRestarted,
                    false,
                    format!("New revision {rev} detected mid-rollout; restarting analysis"),
                );
            }
            if self.d.status.last_promoted_revision.as_deref() == Some(rev.as_str()) {
                self.settle_promoted(&rev);
            } else {
                self.st().retries = 0;
                self.event(
                    EventReason::NewRevisionDetected,
                    false,
                    format!("New revision {rev} detected; starting rollout"),
                );
                self.start(&rev);
            }
            return;
        }
        if self.obs.request == Some(Request::Retry)
            && self.d.status.phase == Phase::Failed
            && self.d.status.aborted
        {
            self.st().retries += 1;
            self.event(
                EventReason::RolloutRetried,
                false,
                format!("Retrying revision {rev}"),
            );
            self.start(&rev);
            return;
        }
        match self.d.status.phase {
            Phase::Initialized | Phase::Waiting | Phase::Succeeded | Phase::Failed => {}
            Phase::Promoting | Phase::Finalising => self.promote_tick(),
            Phase::Progressing | Phase::Paused | Phase::WaitingPromotion => {
                if self.obs.request == Some(Request::Abort) {
                    self.abort(
                        EventReason::RolloutAborted,
                        "Rollout aborted by request".to_owned(),
                    );
                } else {
                    self.progress_tick();
                }
            }
        }
    }

    fn initialize(&mut self, rev: &str) {
        self.d.actions.push(Action::CopyTemplateToPrimary {
            revision: rev.to_owned(),
        });
        self.set_weights(Weight::ZERO);
        self.d.actions.push(Action::ScaleCanary { to: Scale::Zero });
        let st = self.st();
        st.primary_revision = Some(rev.to_owned());
        st.last_promoted_revision = Some(rev.to_owned());
        st.last_applied_revision = Some(rev.to_owned());
        st.phase = Phase::Initialized;
        st.message = Some(format!("Primary initialised with revision {rev}"));
        self.event(
            EventReason::RolloutInitialized,
            false,
            format!("Initialised primary with revision {rev}; no analysis"),
        );
    }

    /// The target is back on the promoted revision: no analysis, traffic to the primary.
    fn settle_promoted(&mut self, rev: &str) {
        if self.d.status.primary_revision.as_deref() != Some(rev) {
            self.d.actions.push(Action::CopyTemplateToPrimary {
                revision: rev.to_owned(),
            });
        }
        if self.d.status.canary_weight != 0 || self.d.status.phase.is_active() {
            self.set_weights(Weight::ZERO);
        }
        self.d.actions.push(Action::ScaleCanary { to: Scale::Zero });
        let st = self.st();
        st.primary_revision = Some(rev.to_owned());
        st.last_applied_revision = Some(rev.to_owned());
        st.phase = Phase::Succeeded;
        st.pause_reason = None;
        st.aborted = false;
        st.retries = 0;
        st.current_step_index = None;
        st.not_ready_since = None;
        st.scale_down_at = None;
        st.analysis_runs.clear();
        st.message = Some(format!(
            "Revision {rev} is already promoted; not analysed again"
        ));
        self.event(
            EventReason::RevisionAlreadyPromoted,
            false,
            format!("Revision {rev} is the promoted one; traffic stays on the primary"),
        );
        self.set_condition(
            CONDITION_PROGRESSING,
            ConditionStatus::False,
            EventReason::RevisionAlreadyPromoted,
        );
    }

    fn start(&mut self, rev: &str) {
        // Every rollout begins with all traffic on the primary (also after a restart or a
        // failed promotion that left traffic on the canary).
        if self.d.status.canary_weight != 0 {
            self.set_weights(Weight::ZERO);
        }
        let now = self.now;
        let st = self.st();
        st.phase = Phase::Progressing;
        st.pause_reason = None;
        st.current_step_index = Some(0);
        st.step_started_at = Some(now);
        st.last_applied_revision = Some(rev.to_owned());
        st.aborted = false;
        st.analysis_runs.clear();
        st.failed_checks = 0;
        st.not_ready_since = None;
        st.scale_down_at = None;
        st.message = Some(format!("Rolling out revision {rev}"));
        self.d.actions.push(Action::ScaleCanary { to: Scale::Up });
        self.set_condition(
            CONDITION_PROGRESSING,
            ConditionStatus::True,
            EventReason::NewRevisionDetected,
        );
        self.set_condition(
            CONDITION_PAUSED,
            ConditionStatus::False,
            EventReason::NewRevisionDetected,
        );
        self.requeue(READINESS_POLL_SECS);
    }

    fn run_name(&self, kind: AnalysisKind, step: Option<u32>) -> String {
        let rev: String = self.obs.revision.chars().take(10).collect();
        let mut name = format!("{}-{}-{}", self.obs.rollout_name, rev, kind.as_str());
        if let Some(i) = step {
            name.push_str(&format!("-{i}"));
        }
        if self.d.status.retries > 0 {
            name.push_str(&format!("-r{}", self.d.status.retries));
        }
        name.to_lowercase()
    }

    /// The phase of a run: as observed, else as last recorded, else Pending.
    fn run_phase(&self, name: &str) -> RunPhase {
        self.obs
            .runs
            .get(name)
            .copied()
            .or_else(|| {
                self.d
                    .status
                    .analysis_runs
                    .iter()
                    .find(|r| r.name == name)
                    .map(|r| r.phase)
            })
            .unwrap_or_default()
    }

    /// Create the run if it is not recorded yet; return its phase (Pending when new).
    fn ensure_run(
        &mut self,
        kind: AnalysisKind,
        step: Option<u32>,
        source: &AnalysisSource,
    ) -> (String, RunPhase) {
        let name = self.run_name(kind, step);
        self.ensure_named_run(name, kind, step, source)
    }

    /// [`Self::ensure_run`] with the run's name given.
    fn ensure_named_run(
        &mut self,
        name: String,
        kind: AnalysisKind,
        step: Option<u32>,
        source: &AnalysisSource,
    ) -> (String, RunPhase) {
        if !self.d.status.analysis_runs.iter().any(|r| r.name == name) {
            self.d.actions.push(Action::CreateAnalysisRun {
                name: name.clone(),
                kind,
                step_index: step,
                source: source.clone(),
            });
            self.st().analysis_runs.push(AnalysisRunRef {
                name: name.clone(),
                kind,
                step_index: step,
                phase: RunPhase::Pending,
                resumed: false,
            });
            self.event(
                EventReason::AnalysisRunCreated,
                false,
                format!("Created {} analysis run {name}", kind.as_str()),
            );
            return (name, RunPhase::Pending);
        }
        let phase = self.run_phase(&name);
        if let Some(r) = self.st().analysis_runs.iter_mut().find(|r| r.name == name) {
            r.phase = phase;
        }
        (name, phase)
    }

    fn stop_runs(&mut self) {
        let names: Vec<String> = self
            .d
            .status
            .analysis_runs
            .iter()
            .filter(|r| !self.run_phase(&r.name).is_completed())
            .map(|r| r.name.clone())
            .collect();
        for name in names {
            self.d
                .actions
                .push(Action::TerminateAnalysisRun { name: name.clone() });
        }
    }

    fn finish(&mut self, phase: Phase, message: String) {
        let now = self.now;
        let rev = self.rev().to_owned();
        let st = self.st();
        st.phase = phase;
        st.pause_reason = None;
        st.not_ready_since = None;
        st.scale_down_at = None;
        st.message = Some(message.clone());
        st.history.push(HistoryEntry {
            revision: rev,
            phase,
            finished_at: now,
            message: Some(message),
        });
        let excess = st.history.len().saturating_sub(HISTORY_LIMIT);
        st.history.drain(..excess);
    }

    fn abort(&mut self, reason: EventReason, message: String) {
        self.stop_runs();
        self.set_weights(Weight::ZERO);
        self.d.actions.push(Action::ScaleCanary { to: Scale::Zero });
        self.st().aborted = true;
        self.finish(Phase::Failed, message.clone());
        self.event(reason, true, message);
        self.set_condition(CONDITION_PROGRESSING, ConditionStatus::False, reason);
        self.set_condition(CONDITION_PAUSED, ConditionStatus::False, reason);
        self.d.requeue_after_secs = None;
    }

    /// Check a Deployment's readiness; `Some(true)` ready, `Some(false)` wait, `None`
    /// when the deadline is exceeded (the caller fails).
    fn ready(&mut self, r: Readiness) -> Option<bool> {
        let deadline = u64::from(self.plan.progress_deadline_secs);
        match r {
            Readiness::Ready => {
                self.st().not_ready_since = None;
                Some(true)
            }
            Readiness::Stalled => None,
            Readiness::NotReady => {
                let now = self.now;
                let since = *self.st().not_ready_since.get_or_insert(now);
                if now.secs_since(since) > deadline {
                    None
                } else {
                    self.requeue(READINESS_POLL_SECS);
                    Some(false)
                }
            }
        }
    }

    fn pause(&mut self, reason: PauseReason, message: String) {
        let newly = self.d.status.phase != Phase::Paused;
        let st = self.st();
        st.phase = Phase::Paused;
        st.pause_reason = Some(reason);
        st.message = Some(message.clone());
        if newly {
            let ev = match reason {
                PauseReason::InconclusiveAnalysis => EventReason::InconclusiveAnalysisRun,
                _ => EventReason::RolloutPaused,
            };
            self.event(ev, reason == PauseReason::InconclusiveAnalysis, message);
            self.set_condition(CONDITION_PAUSED, ConditionStatus::True, ev);
        }
    }

    fn advance(&mut self) {
        let now = self.now;
        let was_paused = self.d.status.phase == Phase::Paused;
        let st = self.st();
        st.current_step_index = Some(st.current_step_index.unwrap_or(0) + 1);
        st.step_started_at = Some(now);
        st.phase = Phase::Progressing;
        st.pause_reason = None;
        if was_paused {
            self.set_condition(
                CONDITION_PAUSED,
                ConditionStatus::False,
                EventReason::RolloutResumed,
            );
        }
    }

    fn progress_tick(&mut self) {
        match self.ready(self.obs.canary) {
            None => {
                let deadline = self.plan.progress_deadline_secs;
                self.abort(
                    EventReason::ProgressDeadlineExceeded,
                    format!("Canary did not become ready within {deadline}s"),
                );
                return;
            }
            Some(false) => return,
            Some(true) => {}
        }
        if self.plan.skip_analysis {
            self.event(
                EventReason::SkippedAnalysis,
                false,
                "skipAnalysis: promoting without steps",
            );
            self.begin_promotion();
            return;
        }
        let mut promote = self.obs.request == Some(Request::Promote);
        if self.obs.request == Some(Request::PromoteFull) {
            self.event(
                EventReason::RolloutResumed,
                false,
                "Full promotion requested: skipping the remaining steps",
            );
            self.begin_promotion();
            return;
        }
        let mut weight_set = false;
        for _ in 0..=self.plan.steps.len() + 1 {
            if !self.background(&mut promote) {
                return;
            }
            let i = self.d.status.current_step_index.unwrap_or(0);
            let Some(step) = self.plan.steps.get(i as usize) else {
                self.begin_promotion();
                return;
            };
            match step {
                PlanStep::SetWeight { weight } => {
                    if weight_set {
                        // One weight change per tick, so each one is applied and seen.
                        self.requeue(0);
                        return;
                    }
                    weight_set = true;
                    let w = *weight;
                    self.set_weights(w);
                    self.event(
                        EventReason::TrafficWeightChanged,
                        false,
                        format!("Canary weight {w}% (step {i})"),
                    );
                    self.advance();
                }
                PlanStep::Pause { duration, reason } => {
                    if promote {
                        promote = false;
                        self.event(EventReason::RolloutResumed, false, "Promoted past a pause");
                        self.advance();
                        continue;
                    }
                    let started = self.d.status.step_started_at.unwrap_or(self.now);
                    match duration {
                        Some(d) => {
                            let waited = self.now.secs_since(started);
                            let secs = d.as_secs_ceil();
                            if waited >= secs {
                                match self.flagger_check(i, secs) {
                                    CheckOutcome::Passed => self.advance(),
                                    CheckOutcome::Wait => return,
                                }
                            } else {
                                // A timed pause is part of progressing (Flagger's interval).
                                let st = self.st();
                                st.phase = Phase::Progressing;
                                st.pause_reason = Some(*reason);
                                st.message = Some(format!("Step {i}: waiting {d}"));
                                self.requeue(secs - waited);
                                return;
                            }
                        }
                        None => {
                            self.pause(*reason, format!("Step {i}: paused until promoted"));
                            return;
                        }
                    }
                }
                PlanStep::Analysis { kind, source } => {
                    let (name, phase) = self.ensure_run(*kind, Some(i), source);
                    match phase {
                        RunPhase::Successful => self.advance(),
                        RunPhase::Failed | RunPhase::Error => {
                            self.abort(
                                EventReason::RolloutAborted,
                                format!("Analysis run {name} ended {phase:?}"),
                            );
                            return;
                        }
                        RunPhase::Inconclusive => {
                            if promote {
                                promote = false;
                                self.event(
                                    EventReason::RolloutResumed,
                                    false,
                                    format!("Promoted past inconclusive analysis run {name}"),
                                );
                                self.advance();
                            } else {
                                self.pause(
                                    PauseReason::InconclusiveAnalysis,
                                    format!(
                                        "Analysis run {name} is inconclusive; paused until promoted"
                                    ),
                                );
                                return;
                            }
                        }
                        RunPhase::Pending | RunPhase::Running => {
                            let st = self.st();
                            st.phase = Phase::Progressing;
                            st.pause_reason = None;
                            st.message = Some(format!("Step {i}: waiting for analysis run {name}"));
                            self.requeue(ANALYSIS_POLL_SECS);
                            return;
                        }
                    }
                }
            }
        }
    }

    /// Flagger's check at the end of interval step `i` (`interval_secs` long), when the
    /// plan has the shorthand's `metrics`; [`CheckOutcome::Passed`] otherwise.
    ///
    /// Design: each check is its own short `AnalysisRun` (every metric measured once,
    /// `failureLimit` 0), created when the interval ends, and the count of failed checks
    /// lives in [`RolloutStatus::failed_checks`]. This is Flagger's `failedChecks`
    /// exactly: a check fails when any metric fails (one increment per interval, however
    /// many metrics failed), failures accumulate over the whole rollout and a passing
    /// check does not reset them, a failed check holds the weight for another interval,
    /// and the rollout aborts when the count reaches `threshold`. One long background run
    /// with `failureLimit = threshold - 1` was rejected: Argo's limits count per metric
    /// (two metrics failing once each would never reach a threshold of 2) and the weight
    /// would advance after a failed check.
    fn flagger_check(&mut self, i: u32, interval_secs: u64) -> CheckOutcome {
        let Some(bg) = &self.plan.background else {
            return CheckOutcome::Passed;
        };
        let AnalysisSource::FlaggerChecks { threshold, .. } = &bg.source else {
            return CheckOutcome::Passed;
        };
        if i < bg.starting_step {
            return CheckOutcome::Passed;
        }
        let threshold = (*threshold).max(1);
        let source = bg.source.clone();
        let failed = self.d.status.failed_checks;
        let name = format!("{}-c{failed}", self.run_name(AnalysisKind::Check, Some(i)));
        let (name, phase) = self.ensure_named_run(name, AnalysisKind::Check, Some(i), &source);
        match phase {
            RunPhase::Successful => CheckOutcome::Passed,
            RunPhase::Pending | RunPhase::Running => {
                let st = self.st();
                st.phase = Phase::Progressing;
                st.message = Some(format!("Step {i}: waiting for check run {name}"));
                self.requeue(ANALYSIS_POLL_SECS);
                CheckOutcome::Wait
            }
            RunPhase::Failed | RunPhase::Error | RunPhase::Inconclusive => {
                let failed = failed + 1;
                self.st().failed_checks = failed;
                if failed >= threshold {
                    self.abort(
                        EventReason::RolloutAborted,
                        format!(
                            "Failed checks threshold reached {failed}: check run {name} ended {phase:?}"
                        ),
                    );
                } else {
                    let now = self.now;
                    let st = self.st();
                    st.step_started_at = Some(now);
                    st.phase = Phase::Progressing;
                    st.message = Some(format!(
                        "Step {i}: check run {name} ended {phase:?} ({failed} of {threshold} failed checks); holding the weight for another interval"
                    ));
                    let message = st.message.clone().unwrap_or_default();
                    self.event(EventReason::AnalysisCheckFailed, true, message);
                    self.requeue(interval_secs);
                }
                CheckOutcome::Wait
            }
        }
    }

    /// Start or follow the background analysis. False when the tick must end (abort or
    /// pause).
    fn background(&mut self, promote: &mut bool) -> bool {
        let Some(bg) = &self.plan.background else {
            return true;
        };
        if matches!(bg.source, AnalysisSource::FlaggerChecks { .. }) {
            // Flagger's checks gate the intervals instead (see `flagger_check`).
            return true;
        }
        let i = self.d.status.current_step_index.unwrap_or(0);
        if i < bg.starting_step || i as usize > self.plan.steps.len() {
            return true;
        }
        let (name, phase) = self.ensure_run(AnalysisKind::Background, None, &bg.source);
        match phase {
            RunPhase::Failed | RunPhase::Error => {
                self.abort(
                    EventReason::RolloutAborted,
                    format!("Background analysis run {name} ended {phase:?}"),
                );
                false
            }
            RunPhase::Inconclusive => {
                let resumed = self
                    .d
                    .status
                    .analysis_runs
                    .iter()
                    .any(|r| r.name == name && r.resumed);
                if resumed {
                    return true;
                }
                if *promote {
                    *promote = false;
                    if let Some(r) = self.st().analysis_runs.iter_mut().find(|r| r.name == name) {
                        r.resumed = true;
                    }
                    self.event(
                        EventReason::RolloutResumed,
                        false,
                        format!("Promoted past inconclusive background analysis run {name}"),
                    );
                    let st = self.st();
                    st.phase = Phase::Progressing;
                    st.pause_reason = None;
                    true
                } else {
                    self.pause(
                        PauseReason::InconclusiveAnalysis,
                        format!(
                            "Background analysis run {name} is inconclusive; paused until promoted"
                        ),
                    );
                    false
                }
            }
            _ => true,
        }
    }

    fn begin_promotion(&mut self) {
        self.stop_runs();
        let rev = self.rev().to_owned();
        let now = self.now;
        let steps = u32::try_from(self.plan.steps.len()).unwrap_or(u32::MAX);
        self.d.actions.push(Action::CopyTemplateToPrimary {
            revision: rev.clone(),
        });
        let st = self.st();
        st.primary_revision = Some(rev.clone());
        st.phase = Phase::Promoting;
        st.pause_reason = None;
        st.current_step_index = Some(steps);
        st.step_started_at = Some(now);
        st.not_ready_since = None;
        st.message = Some(format!("Promoting revision {rev} to the primary"));
        self.event(
            EventReason::RolloutPromoting,
            false,
            format!("Copying revision {rev} to the primary"),
        );
        self.set_condition(
            CONDITION_PAUSED,
            ConditionStatus::False,
            EventReason::RolloutPromoting,
        );
        self.requeue(READINESS_POLL_SECS);
    }

    fn promote_tick(&mut self) {
        if self.d.status.phase == Phase::Finalising {
            let due = self.d.status.scale_down_at.unwrap_or(self.now);
            if self.now >= due {
                self.d.actions.push(Action::ScaleCanary { to: Scale::Zero });
                let rev = self.rev().to_owned();
                self.st().last_promoted_revision = Some(rev.clone());
                self.finish(Phase::Succeeded, format!("Revision {rev} promoted"));
                self.event(
                    EventReason::RolloutCompleted,
                    false,
                    format!("Revision {rev} promoted; canary scaled to zero"),
                );
                self.set_condition(
                    CONDITION_PROGRESSING,
                    ConditionStatus::False,
                    EventReason::RolloutCompleted,
                );
            } else {
                self.requeue(due.secs_since(self.now));
            }
            return;
        }
        match self.ready(self.obs.primary) {
            None => {
                self.fail_forward();
                return;
            }
            Some(false) => return,
            Some(true) => {}
        }
        let cw = self.d.status.canary_weight;
        let next = match self.plan.promotion.step_weight_promotion {
            Some(step) if cw > 0 => cw.saturating_sub(step.get()),
            _ => 0,
        };
        self.set_weights(Weight::new(next).unwrap_or(Weight::ZERO));
        if next > 0 {
            self.requeue(self.plan.promotion.interval_secs);
            return;
        }
        let delay = u64::from(self.plan.promotion.scale_down_delay_secs);
        let due = self.now.plus_secs(delay);
        let st = self.st();
        st.phase = Phase::Finalising;
        st.scale_down_at = Some(due);
        st.message = Some(format!(
            "All traffic on the primary; canary scaled down in {delay}s"
        ));
        self.requeue(delay);
    }

    /// Flagger's behaviour when the primary fails while promoting: traffic to the
    /// canary (which runs the new version), rollout Failed, canary left running.
    fn fail_forward(&mut self) {
        self.set_weights(Weight::FULL);
        self.st().aborted = true;
        let deadline = self.plan.progress_deadline_secs;
        let message = format!(
            "Primary did not become ready within {deadline}s while promoting; traffic left on the canary"
        );
        self.finish(Phase::Failed, message.clone());
        self.event(EventReason::PromotionFailed, true, message);
        self.set_condition(
            CONDITION_PROGRESSING,
            ConditionStatus::False,
            EventReason::PromotionFailed,
        );
        self.d.requeue_after_secs = None;
    }
}
