//! Where Flagger's webhooks enter a rollout tick, decided without I/O.
//!
//! The strategy machine ([`crate::core::strategy::next_with_plan`]) knows nothing of
//! webhooks. A tick of the reconciler wraps it in four pure steps, and only calls hooks in
//! between:
//!
//! 1. **Before the machine**: [`Gate::threshold_reached`] (failed checks of webhooks plus
//!    the metric checks of Flagger's shorthand reached `threshold`) and
//!    [`Gate::rollback_due`] (poll the `rollback` hooks; the first that passes rolls back).
//!    Either one becomes an abort request for the machine, and [`Gate::relabel_abort`]
//!    names the real cause in the Event, the status and the history.
//! 2. **The machine decides** as it always does.
//! 3. **[`Gate::asks`]** reads the decision and says which hook types to ask, in order:
//!    `confirm-rollout` before a new revision starts from rest; on an analysed tick
//!    `pre-rollout` (the first one) or `rollout`; `confirm-traffic-increase` when the
//!    decision raises the canary's weight; `confirm-promotion` when it starts promotion.
//!    The edge asks each type's hooks in spec order and stops at the first "no"
//!    ([`Answer`]).
//! 4. **[`Gate::resolve`]** turns the decision and the answers into the decision to carry
//!    out: all yes → the machine's decision; a "no" → the decision is *held* (nothing of it
//!    is carried out; the status stays as it was, plus what the "no" means: phase
//!    `Waiting`, `failedChecks + 1`, or phase `WaitingPromotion`), and the rollout is looked
//!    at again one interval later.
//!
//! After the decision is carried out, [`Gate::post_rollout_due`] says whether the rollout
//! just ended (`post-rollout`, logged only); every Event goes to the `event` hooks, and
//! `confirm-git-promotion` ([`Gate::git_promotion_asks`]) is asked before the commit into
//! the next environment. Holding a whole decision is safe because the machine works from
//! the status alone: the same tick is simply taken again later.

use super::{HookSpec, HookType};
use crate::core::strategy::{
    Decision, Event, EventReason, Observations, Phase, Readiness, RolloutSpec, RolloutStatus,
    Strategy, Timestamp,
};

/// Flagger's default interval, used when the spec has none (explicit steps, blue-green).
pub const DEFAULT_INTERVAL_SECS: u64 = 10;

/// Webhooks of one Rollout and the numbers that go with them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gate {
    hooks: Vec<HookSpec>,
    /// Failed checks that roll back (Flagger's `threshold`, at least 1).
    pub threshold: u32,
    /// Seconds between analysed ticks (Flagger's `interval`, at least 10).
    pub interval_secs: u64,
    /// `skipAnalysis`: no hooks but `confirm-rollout`, `post-rollout`, `event`.
    pub skip_analysis: bool,
    /// A canary (`confirm-traffic-increase` is asked for canaries only).
    pub canary: bool,
}

/// What one hook type answered this tick: the first hook that said no (for `rollback`:
/// the first that said yes), or yes from all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The type asked.
    pub kind: HookType,
    /// The deciding hook's name (empty when none decided).
    pub hook: String,
    /// Whether the type said yes (for `rollback`: whether one hook passed).
    pub passed: bool,
    /// The deciding hook's response body or why there was none.
    pub message: String,
}

/// Which hooks [`Gate::asks`] wants for a decision, and what kind of tick it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Asks {
    /// Hook types to ask, in order; stop at the first "no".
    pub kinds: Vec<HookType>,
    /// This is the rollout's first analysed tick (`pre-rollout`).
    pub first_analysed_tick: bool,
}

fn starts(decision: &Decision) -> bool {
    decision.events.iter().any(|e| {
        matches!(
            e.reason,
            EventReason::NewRevisionDetected
                | EventReason::RolloutRetried
                | EventReason::RolloutRestarted
                | EventReason::RevisionAlreadyPromoted
        )
    })
}

fn in_analysis(phase: Phase) -> bool {
    matches!(phase, Phase::Progressing | Phase::WaitingPromotion)
}

impl Gate {
    /// The gate of `spec`: its webhooks, Flagger's `threshold` (`<= 0` → 1, default 1) and
    /// `interval` (default and minimum 10 s here, as explicit steps have no interval).
    #[must_use]
    pub fn from_spec(spec: &RolloutSpec) -> Gate {
        let (threshold, interval) = match &spec.strategy {
            Strategy::Canary(c) => match c.analysis.as_ref().filter(|a| a.is_shorthand()) {
                Some(a) => (
                    a.threshold.unwrap_or(1),
                    a.interval
                        .as_ref()
                        .map_or(60, crate::core::strategy::GoDuration::as_secs_ceil),
                ),
                None => (1, DEFAULT_INTERVAL_SECS),
            },
            Strategy::BlueGreen(_) => (1, DEFAULT_INTERVAL_SECS),
        };
        Gate {
            hooks: spec.webhooks().to_vec(),
            threshold: u32::try_from(threshold.max(1)).unwrap_or(1),
            interval_secs: interval.max(DEFAULT_INTERVAL_SECS),
            skip_analysis: spec.skip_analysis,
            canary: matches!(spec.strategy, Strategy::Canary(_)),
        }
    }

    /// The hooks of one type, in spec order.
    pub fn hooks(&self, kind: HookType) -> impl Iterator<Item = &HookSpec> {
        self.hooks.iter().filter(move |h| h.kind == kind)
    }

    /// Whether the spec has a hook of this type.
    #[must_use]
    pub fn has(&self, kind: HookType) -> bool {
        self.hooks(kind).next().is_some()
    }

    fn interval_due(&self, prior: &RolloutStatus, now: Timestamp) -> bool {
        prior
            .hooks_checked_at
            .is_none_or(|t| now.secs_since(t) >= self.interval_secs)
    }

    /// Before the machine: the failed checks of this rollout reached the threshold while
    /// it is in analysis → the message of the rollback. `failedChecks` is the one count of
    /// Flagger's checks: the machine adds a failed check run of the shorthand `metrics`,
    /// [`Gate::resolve`] a failed `pre-rollout`/`rollout` webhook; the machine also aborts
    /// at the threshold when a metric check reaches it, so this catches the webhooks' share.
    #[must_use]
    pub fn threshold_reached(&self, prior: &RolloutStatus) -> Option<String> {
        (in_analysis(prior.phase) && prior.failed_checks >= self.threshold).then(|| {
            format!(
                "Rolling back: failed checks threshold reached {} (threshold {})",
                prior.failed_checks, self.threshold
            )
        })
    }

    /// Before the machine: poll the `rollback` hooks now (phase `Progressing`,
    /// `WaitingPromotion` or `Paused`, once per interval).
    #[must_use]
    pub fn rollback_due(&self, prior: &RolloutStatus, now: Timestamp) -> bool {
        self.has(HookType::Rollback)
            && !self.skip_analysis
            && (in_analysis(prior.phase) || prior.phase == Phase::Paused)
            && self.interval_due(prior, now)
    }

    /// After an abort request made for `reason`: the machine's abort decision, with the
    /// Event, the status message, the condition and the history entry naming the cause.
    pub fn relabel_abort(decision: &mut Decision, reason: EventReason, message: &str) {
        let mut found = false;
        for e in &mut decision.events {
            if e.reason == EventReason::RolloutAborted {
                e.reason = reason;
                message.clone_into(&mut e.message);
                found = true;
            }
        }
        if !found {
            decision.events.push(Event {
                reason,
                warning: true,
                message: message.to_owned(),
            });
        }
        let st = &mut decision.status;
        if st.phase == Phase::Failed {
            st.message = Some(message.to_owned());
            if let Some(h) = st.history.last_mut() {
                h.message = Some(message.to_owned());
            }
            for c in &mut st.conditions {
                if c.reason == EventReason::RolloutAborted.as_str() {
                    reason.as_str().clone_into(&mut c.reason);
                    message.clone_into(&mut c.message);
                }
            }
        }
    }

    /// After the machine: the hook types to ask before carrying `decision` out.
    #[must_use]
    pub fn asks(
        &self,
        prior: &RolloutStatus,
        obs: &Observations,
        decision: &Decision,
        now: Timestamp,
    ) -> Asks {
        let mut out = Asks::default();
        let next = &decision.status;
        if starts(decision) {
            let from_rest = !prior.phase.is_active();
            let retry = decision
                .events
                .iter()
                .any(|e| e.reason == EventReason::RolloutRetried);
            if from_rest && !retry && next.phase == Phase::Progressing {
                out.kinds.push(HookType::ConfirmRollout);
            }
            out.kinds.retain(|k| self.has(*k));
            return out;
        }
        if self.skip_analysis
            || !in_analysis(prior.phase)
            || obs.canary != Readiness::Ready
            || next.phase == Phase::Failed
        {
            return out;
        }
        let raises = next.canary_weight > prior.canary_weight && next.phase == Phase::Progressing;
        let promotes = next.phase == Phase::Promoting;
        if !prior.pre_rollout_passed {
            out.first_analysed_tick = true;
            out.kinds.push(HookType::PreRollout);
        } else if raises || promotes || self.interval_due(prior, now) {
            out.kinds.push(HookType::Rollout);
        }
        if raises && self.canary {
            out.kinds.push(HookType::ConfirmTrafficIncrease);
        }
        if promotes {
            out.kinds.push(HookType::ConfirmPromotion);
        }
        out.kinds.retain(|k| self.has(*k));
        out
    }

    /// The decision to carry out, given the answers to [`Gate::asks`] (and to the
    /// `rollback` poll, which only records that the hooks were asked).
    #[must_use]
    pub fn resolve(
        &self,
        prior: &RolloutStatus,
        asks: &Asks,
        mut decision: Decision,
        answers: &[Answer],
        now: Timestamp,
    ) -> Decision {
        if starts(&decision) {
            let st = &mut decision.status;
            st.failed_checks = 0;
            st.pre_rollout_passed = false;
            st.hooks_checked_at = None;
        } else if prior.phase == Phase::Waiting && decision.status.phase == Phase::Waiting {
            // The target went back to the revision before the one that waited: nothing
            // waits any more; the phase is the one that revision ended in.
            let st = &mut decision.status;
            st.phase = prior
                .history
                .last()
                .filter(|h| Some(&h.revision) == prior.last_applied_revision.as_ref())
                .map_or(Phase::Initialized, |h| h.phase);
            st.message = Some("No new revision waits for confirm-rollout any more".to_owned());
        }
        let checked = answers.iter().any(|a| {
            matches!(
                a.kind,
                HookType::Rollback | HookType::Rollout | HookType::PreRollout
            )
        });
        let refusal = answers
            .iter()
            .find(|a| a.kind != HookType::Rollback && !a.passed);
        let Some(no) = refusal else {
            if checked {
                decision.status.hooks_checked_at = Some(now);
            }
            if asks.first_analysed_tick {
                decision.status.pre_rollout_passed = true;
            }
            if decision.status.phase.is_active()
                && (self.has(HookType::Rollout) || self.has(HookType::Rollback))
            {
                let i = self.interval_secs;
                decision.requeue_after_secs =
                    Some(decision.requeue_after_secs.map_or(i, |r| r.min(i)));
            }
            return decision;
        };
        let mut held = Decision {
            status: prior.clone(),
            actions: Vec::new(),
            events: Vec::new(),
            requeue_after_secs: Some(self.interval_secs),
        };
        if checked {
            held.status.hooks_checked_at = Some(now);
        }
        let said = if no.message.is_empty() {
            String::new()
        } else {
            format!(": {}", no.message)
        };
        let (reason, warning, message) = match no.kind {
            HookType::ConfirmRollout => {
                held.status.phase = Phase::Waiting;
                (
                    EventReason::RolloutWaiting,
                    false,
                    format!(
                        "Halt rollout: confirm-rollout webhook {} did not confirm{said}",
                        no.hook
                    ),
                )
            }
            HookType::PreRollout | HookType::Rollout => {
                held.status.failed_checks = prior.failed_checks.saturating_add(1);
                (
                    EventReason::WebhookCheckFailed,
                    true,
                    format!(
                        "Halt advancement: {} webhook {} failed{said} (failed checks {}/{})",
                        no.kind, no.hook, held.status.failed_checks, self.threshold
                    ),
                )
            }
            HookType::ConfirmTrafficIncrease => (
                EventReason::TrafficIncreaseHeld,
                false,
                format!(
                    "Halt traffic increase: confirm-traffic-increase webhook {} did not confirm{said}; weight stays {}%",
                    no.hook, prior.canary_weight
                ),
            ),
            HookType::ConfirmPromotion => {
                held.status.phase = Phase::WaitingPromotion;
                held.status.pause_reason = None;
                (
                    EventReason::PromotionWaiting,
                    false,
                    format!(
                        "Halt promotion: confirm-promotion webhook {} did not confirm{said}; analysis continues",
                        no.hook
                    ),
                )
            }
            HookType::PostRollout
            | HookType::Rollback
            | HookType::Event
            | HookType::ConfirmGitPromotion => return decision,
        };
        held.status.message = Some(message.clone());
        // A repeated "no" is not news: one Event when the rollout starts waiting, one per
        // failed check.
        if prior.message.as_deref() != Some(message.as_str())
            || reason == EventReason::WebhookCheckFailed
        {
            held.events.push(Event {
                reason,
                warning,
                message,
            });
        }
        held
    }

    /// After the tick: the rollout just ended (`Succeeded` or `Failed`), so the
    /// `post-rollout` hooks are due.
    #[must_use]
    pub fn post_rollout_due(&self, prior: &RolloutStatus, done: &Decision) -> bool {
        self.has(HookType::PostRollout)
            && prior.phase.is_active()
            && matches!(done.status.phase, Phase::Succeeded | Phase::Failed)
    }

    /// Whether `confirm-git-promotion` hooks are asked before this Git step (only before a
    /// promotion commit, not before a revert).
    #[must_use]
    pub fn git_promotion_asks(&self, succeeded: bool) -> bool {
        succeeded && self.has(HookType::ConfirmGitPromotion)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::strategy::{Readiness, next};
    use std::collections::BTreeMap;

    fn spec(hooks: &str) -> RolloutSpec {
        let yaml = format!(
            r#"
targetRef: {{name: app}}
service: {{port: 80}}
strategy:
  canary:
    analysis:
      interval: 10s
      threshold: 2
      stepWeight: 50
      webhooks: {hooks}
"#
        );
        serde_yaml::with::singleton_map_recursive::deserialize(serde_yaml::Deserializer::from_str(
            &yaml,
        ))
        .expect("spec")
    }

    fn obs(rev: &str) -> Observations {
        Observations {
            rollout_name: "app".into(),
            revision: rev.into(),
            canary: Readiness::Ready,
            primary: Readiness::Ready,
            runs: BTreeMap::new(),
            request: None,
        }
    }

    fn answer(kind: HookType, passed: bool) -> Answer {
        Answer {
            kind,
            hook: "h".into(),
            passed,
            message: "body".into(),
        }
    }

    const ALL: &str = "[{name: a, type: confirm-rollout, url: 'http://x/'}, {name: b, type: pre-rollout, url: 'http://x/'}, {name: c, type: rollout, url: 'http://x/'}, {name: d, type: confirm-traffic-increase, url: 'http://x/'}, {name: e, type: confirm-promotion, url: 'http://x/'}, {name: f, type: rollback, url: 'http://x/'}]";

    /// Tick the machine and the gate with all answers `yes` except `no`.
    fn tick(
        s: &RolloutSpec,
        st: &RolloutStatus,
        o: &Observations,
        t: i64,
        no: Option<HookType>,
    ) -> (Decision, Asks) {
        let g = Gate::from_spec(s);
        let now = Timestamp::from_unix(t);
        let d = next(s, st, o, now).expect("compiles");
        let asks = g.asks(st, o, &d, now);
        let answers: Vec<Answer> = asks
            .kinds
            .iter()
            .map(|k| answer(*k, Some(*k) != no))
            .collect();
        (g.resolve(st, &asks, d, &answers, now), asks)
    }

    fn initialised(s: &RolloutSpec) -> RolloutStatus {
        next(
            s,
            &RolloutStatus::default(),
            &obs("r1"),
            Timestamp::from_unix(0),
        )
        .expect("compiles")
        .status
    }

    #[test]
    fn confirm_rollout_no_waits_without_a_failed_check_and_yes_starts() {
        let s = spec(ALL);
        let st = initialised(&s);
        let (d, asks) = tick(&s, &st, &obs("r2"), 10, Some(HookType::ConfirmRollout));
        assert_eq!(asks.kinds, [HookType::ConfirmRollout]);
        assert_eq!(d.status.phase, Phase::Waiting);
        assert_eq!(d.status.failed_checks, 0);
        assert!(d.actions.is_empty(), "nothing scaled up: {:?}", d.actions);
        assert_eq!(d.status.last_applied_revision.as_deref(), Some("r1"));
        let (d, _) = tick(&s, &d.status, &obs("r2"), 20, None);
        assert_eq!(d.status.phase, Phase::Progressing);
        assert_eq!(d.status.last_applied_revision.as_deref(), Some("r2"));
    }

    #[test]
    fn a_target_back_on_its_revision_stops_waiting() {
        let s = spec(ALL);
        let st = initialised(&s);
        let (d, _) = tick(&s, &st, &obs("r2"), 10, Some(HookType::ConfirmRollout));
        assert_eq!(d.status.phase, Phase::Waiting);
        let (d, asks) = tick(&s, &d.status, &obs("r1"), 20, None);
        assert!(asks.kinds.is_empty());
        assert_eq!(d.status.phase, Phase::Initialized);
    }

    fn progressing(s: &RolloutSpec) -> RolloutStatus {
        let st = initialised(s);
        tick(s, &st, &obs("r2"), 10, None).0.status
    }

    #[test]
    fn pre_rollout_runs_once_first_and_its_failure_counts_then_rolls_back_at_threshold() {
        let s = spec(ALL);
        let st = progressing(&s);
        let (d, asks) = tick(&s, &st, &obs("r2"), 20, Some(HookType::PreRollout));
        assert!(asks.first_analysed_tick);
        assert_eq!(
            asks.kinds,
            [HookType::PreRollout, HookType::ConfirmTrafficIncrease]
        );
        assert_eq!(d.status.failed_checks, 1);
        assert_eq!(d.status.canary_weight, 0, "the tick ends: no weight change");
        assert_eq!(d.status.phase, Phase::Progressing);
        let g = Gate::from_spec(&s);
        assert_eq!(g.threshold_reached(&d.status), None, "1 of 2");
        let (d, _) = tick(&s, &d.status, &obs("r2"), 30, Some(HookType::PreRollout));
        assert_eq!(d.status.failed_checks, 2);
        assert!(g.threshold_reached(&d.status).is_some());
        // Passing now: weight moves to the first step and pre-rollout is never asked again.
        let (d, _) = tick(&s, &st, &obs("r2"), 20, None);
        assert_eq!(d.status.canary_weight, 50);
        assert!(d.status.pre_rollout_passed);
        let (_, asks) = tick(&s, &d.status, &obs("r2"), 31, None);
        assert!(!asks.kinds.contains(&HookType::PreRollout));
    }

    #[test]
    fn confirm_traffic_increase_no_keeps_the_weight_without_a_failed_check() {
        let s = spec(ALL);
        let st = progressing(&s);
        let (d, _) = tick(&s, &st, &obs("r2"), 20, None);
        assert_eq!(d.status.canary_weight, 50);
        // After the 10s pause the next step raises the weight to 100.
        let (held, asks) = tick(
            &s,
            &d.status,
            &obs("r2"),
            31,
            Some(HookType::ConfirmTrafficIncrease),
        );
        assert_eq!(
            asks.kinds,
            [HookType::Rollout, HookType::ConfirmTrafficIncrease]
        );
        assert_eq!(held.status.canary_weight, 50);
        assert_eq!(held.status.failed_checks, 0);
        assert!(held.actions.is_empty());
        assert_eq!(held.requeue_after_secs, Some(10));
        assert_eq!(held.events.len(), 1);
        // The same "no" again: no new Event.
        let (again, _) = tick(
            &s,
            &held.status,
            &obs("r2"),
            42,
            Some(HookType::ConfirmTrafficIncrease),
        );
        assert!(again.events.is_empty(), "{:?}", again.events);
    }

    #[test]
    fn rollout_failure_counts_and_confirm_promotion_no_waits_with_checks_going_on() {
        let s = spec(ALL);
        let mut st = progressing(&s);
        for t in [20, 31] {
            st = tick(&s, &st, &obs("r2"), t, None).0.status;
        }
        assert_eq!(st.canary_weight, 100);
        // Next: promotion, guarded by confirm-promotion.
        let (d, asks) = tick(&s, &st, &obs("r2"), 42, Some(HookType::ConfirmPromotion));
        assert_eq!(asks.kinds, [HookType::Rollout, HookType::ConfirmPromotion]);
        assert_eq!(d.status.phase, Phase::WaitingPromotion);
        assert_eq!(d.status.canary_weight, 100);
        // While waiting, rollout hooks keep running and a failure counts.
        let (d2, asks) = tick(&s, &d.status, &obs("r2"), 53, Some(HookType::Rollout));
        assert_eq!(asks.kinds[0], HookType::Rollout);
        assert_eq!(d2.status.failed_checks, 1);
        assert_eq!(d2.status.phase, Phase::WaitingPromotion);
        let g = Gate::from_spec(&s);
        assert!(g.rollback_due(&d2.status, Timestamp::from_unix(63)));
        assert!(
            !g.rollback_due(&d2.status, Timestamp::from_unix(55)),
            "once per interval"
        );
        // Confirmed: promotes.
        let (d3, _) = tick(&s, &d.status, &obs("r2"), 64, None);
        assert_eq!(d3.status.phase, Phase::Promoting);
    }

    #[test]
    fn an_abort_request_is_relabelled_with_the_hook() {
        let s = spec(ALL);
        let st = progressing(&s);
        let mut o = obs("r2");
        o.request = Some(crate::core::strategy::Request::Abort);
        let mut d = next(&s, &st, &o, Timestamp::from_unix(20)).expect("compiles");
        Gate::relabel_abort(
            &mut d,
            EventReason::RolledBackByWebhook,
            "rollback webhook f passed",
        );
        assert_eq!(d.status.phase, Phase::Failed);
        assert_eq!(
            d.status.message.as_deref(),
            Some("rollback webhook f passed")
        );
        assert!(
            d.events
                .iter()
                .any(|e| e.reason == EventReason::RolledBackByWebhook)
        );
        assert!(
            !d.events
                .iter()
                .any(|e| e.reason == EventReason::RolloutAborted)
        );
        let g = Gate::from_spec(&s);
        assert!(g.post_rollout_due(&st, &d) == g.has(HookType::PostRollout));
    }

    #[test]
    fn webhook_and_metric_failures_share_the_threshold() {
        let yaml = r#"
targetRef: {name: app}
service: {port: 80}
strategy:
  canary:
    analysis:
      interval: 30s
      threshold: 3
      stepWeight: 50
      metrics: [{name: request-success-rate, thresholdRange: {min: 99}}]
      webhooks: [{name: c, type: rollout, url: 'http://x/'}]
"#;
        let s: RolloutSpec = serde_yaml::with::singleton_map_recursive::deserialize(
            serde_yaml::Deserializer::from_str(yaml),
        )
        .expect("spec");
        let g = Gate::from_spec(&s);
        assert_eq!((g.threshold, g.interval_secs), (3, 30));
        let mut st = progressing(&s);
        // One counter: a failed metric check (added by the machine) and a failed webhook
        // (added by the gate) both land in failedChecks.
        st.failed_checks = 2;
        st.pre_rollout_passed = true;
        assert_eq!(g.threshold_reached(&st), None, "2 < 3");
        let (d, _) = tick(&s, &st, &obs("r2"), 40, Some(HookType::Rollout));
        assert_eq!(
            d.status.failed_checks, 3,
            "the webhook's failure adds to the metrics'"
        );
        let m = g.threshold_reached(&d.status).expect("3 reaches 3");
        assert!(m.contains("threshold reached 3"), "{m}");
        let mut done = d.status.clone();
        done.phase = Phase::Succeeded;
        assert_eq!(g.threshold_reached(&done), None, "only while in analysis");
    }

    #[test]
    fn no_hooks_means_the_machine_decides_alone() {
        let s = spec("[]");
        let st = progressing(&s);
        let o = obs("r2");
        let now = Timestamp::from_unix(20);
        let d = next(&s, &st, &o, now).expect("compiles");
        let g = Gate::from_spec(&s);
        let asks = g.asks(&st, &o, &d, now);
        assert!(asks.kinds.is_empty());
        let r = g.resolve(&st, &asks, d.clone(), &[], now);
        assert_eq!(r.actions, d.actions);
        assert_eq!(r.status.canary_weight, 50);
    }
}
