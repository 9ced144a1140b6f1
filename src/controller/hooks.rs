//! The webhook side of a Rollout tick: carries out what [`crate::core::hooks::gate`]
//! decides. It asks the hook types the gate names (each type's hooks in spec order,
//! stopping at the first "no"; for `rollback`, at the first "yes"), hands the answers back
//! to the gate, and fires `post-rollout` and `event` hooks in the background, so their
//! answers (logged only) never hold a reconcile up.
//!
//! Every call has the hook's own timeout and retries ([`crate::hooks::HookCaller`]); URLs
//! are only ever logged redacted.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::core::hooks::gate::{Answer, Gate};
use crate::core::hooks::{EventType, HookTarget, HookType, checksum, event_payload, payload};
use crate::core::strategy::{
    Decision, EventReason, Observations, Phase, Plan, Request, RolloutStatus, Timestamp,
    next_with_plan,
};
use crate::k8s::Rollout;
use kube::ResourceExt;

use super::Context;

/// The hooks of one Rollout, as this tick sees it.
pub struct TickHooks<'a> {
    ctx: &'a Context,
    /// What the gate decides with.
    pub gate: Gate,
    name: String,
    namespace: String,
    checksum: String,
}

impl<'a> TickHooks<'a> {
    /// The hooks of `rollout` for a tick on `revision`.
    pub fn new(ctx: &'a Context, rollout: &Rollout, revision: &str) -> Self {
        Self {
            ctx,
            gate: Gate::from_spec(&rollout.spec.spec),
            name: rollout.name_any(),
            namespace: rollout.namespace().unwrap_or_default(),
            checksum: checksum(&BTreeMap::new(), revision),
        }
    }

    fn target(&self, phase: Phase) -> HookTarget {
        HookTarget {
            name: self.name.clone(),
            namespace: self.namespace.clone(),
            phase,
            checksum: self.checksum.clone(),
        }
    }

    /// Ask every hook of `kind` in order: the first "no" decides (for `rollback`, the
    /// first "yes"); all "yes" (for `rollback`, all "no") is the answer of the type.
    pub async fn ask(&self, kind: HookType, phase: Phase) -> Answer {
        let target = self.target(phase);
        let stop_on_pass = kind == HookType::Rollback;
        for hook in self.gate.hooks(kind) {
            let (passed, message) = match &self.ctx.hooks {
                Some(caller) => {
                    let r = caller.call(hook, &payload(hook, &target)).await;
                    (r.outcome.passed(), r.message)
                }
                None => (false, "the webhook HTTP client is unavailable".to_owned()),
            };
            tracing::info!(rollout = %self.name, namespace = %self.namespace, hook = %hook.name, kind = %kind, passed, "webhook asked");
            if passed == stop_on_pass {
                return Answer {
                    kind,
                    hook: hook.name.clone(),
                    passed,
                    message,
                };
            }
        }
        Answer {
            kind,
            hook: String::new(),
            passed: !stop_on_pass,
            message: String::new(),
        }
    }

    /// Fire the `post-rollout` hooks (the rollout ended in `phase`); answers are logged.
    pub fn spawn_post_rollout(&self, phase: Phase) {
        let Some(caller) = self.ctx.hooks.clone() else {
            return;
        };
        let target = self.target(phase);
        let hooks: Vec<_> = self.gate.hooks(HookType::PostRollout).cloned().collect();
        if hooks.is_empty() {
            return;
        }
        tokio::spawn(async move {
            for hook in hooks {
                let r = caller.call(&hook, &payload(&hook, &target)).await;
                tracing::info!(rollout = %target.name, hook = %hook.name, passed = r.outcome.passed(), "post-rollout webhook: {}", r.message);
            }
        });
    }

    /// Send one Kubernetes Event to the `event` hooks; answers are ignored.
    pub fn spawn_event(&self, phase: Phase, warning: bool, message: &str) {
        let Some(caller) = self.ctx.hooks.clone() else {
            return;
        };
        let hooks: Vec<_> = self.gate.hooks(HookType::Event).cloned().collect();
        if hooks.is_empty() {
            return;
        }
        let target = self.target(phase);
        let kind = if warning {
            EventType::Warning
        } else {
            EventType::Normal
        };
        let message = message.to_owned();
        let now_ms = chrono::Utc::now().timestamp_millis();
        tokio::spawn(async move {
            for hook in hooks {
                let body = event_payload(&hook, &target, &message, kind, now_ms);
                let _ = caller.call(&hook, &body).await;
            }
        });
    }

    /// One tick's decision with the webhooks in it: the threshold and `rollback` poll
    /// (an abort request to the machine), the machine, the hooks the gate asks for, and
    /// the gate's verdict on the answers.
    pub async fn decide(
        &self,
        plan: &Plan,
        prior: &RolloutStatus,
        obs: &Observations,
        now: Timestamp,
    ) -> Decision {
        let mut answers = Vec::new();
        let mut abort: Option<(EventReason, String)> = self
            .gate
            .threshold_reached(prior)
            .map(|m| (EventReason::FailedChecksThreshold, m));
        if abort.is_none() && self.gate.rollback_due(prior, now) {
            let a = self.ask(HookType::Rollback, prior.phase).await;
            if a.passed {
                let said = if a.message.is_empty() {
                    String::new()
                } else {
                    format!(": {}", a.message)
                };
                abort = Some((
                    EventReason::RolledBackByWebhook,
                    format!("Rolling back: rollback webhook {} passed{said}", a.hook),
                ));
            }
            answers.push(a);
        }
        let decision = match &abort {
            Some((reason, message)) => {
                let mut o = obs.clone();
                o.request = Some(Request::Abort);
                let mut d = next_with_plan(plan, prior, &o, now);
                Gate::relabel_abort(&mut d, *reason, message);
                d
            }
            None => next_with_plan(plan, prior, obs, now),
        };
        let asks = self.gate.asks(prior, obs, &decision, now);
        for kind in &asks.kinds {
            let a = self.ask(*kind, prior.phase).await;
            let no = !a.passed;
            answers.push(a);
            if no {
                break;
            }
        }
        self.gate.resolve(prior, &asks, decision, &answers, now)
    }

    /// Before the commit into the next environment: `None` when every
    /// `confirm-git-promotion` hook says yes (or there is none), else the refusal's text.
    pub async fn confirm_git_promotion(&self, phase: Phase) -> Option<String> {
        if !self.gate.git_promotion_asks(true) {
            return None;
        }
        let a = self.ask(HookType::ConfirmGitPromotion, phase).await;
        (!a.passed).then(|| {
            let said = if a.message.is_empty() {
                String::new()
            } else {
                format!(": {}", a.message)
            };
            format!(
                "Git promotion waits for confirm-git-promotion webhook {}{said}",
                a.hook
            )
        })
    }

    /// How long to wait before asking again after a refusal.
    pub fn interval(&self) -> Duration {
        Duration::from_secs(self.gate.interval_secs)
    }
}
