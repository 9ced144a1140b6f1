//! Notifications from a Rollout tick: what happened to the rollout (from the decision's
//! Events and phases, and from the Git side), told to people through the configured sinks
//! ([`crate::notify::Notifier`], which queues and never blocks). Kubernetes Events are
//! published by the reconciler itself; this module only adds the sinks.
//!
//! Each message names the app (the Rollout), this controller's environment, the version
//! (the target's image tag), for a failed analysis the failing metric with its observed
//! value and bound (read from the `AnalysisRun` status and spec), and the Git commit when
//! the Git side made or reverted one in the same tick.

use crate::core::analysis::value::AnalysisPhase;
use crate::core::strategy::{Event, EventReason, Phase, RolloutStatus, RunPhase};
use crate::k8s::AnalysisRun;
use crate::notify::{EventKind, FailingMetric, Notification};

use super::promotion::GitOutcome;
use super::reasons;

/// What one tick did, as notifications see it.
pub struct TickReport<'a> {
    /// The Rollout's name (the app).
    pub app: &'a str,
    /// This controller's environment.
    pub environment: &'a str,
    /// The target's version (image tag), if it has one.
    pub version: Option<&'a str>,
    /// The status before the tick.
    pub prior: &'a RolloutStatus,
    /// The status written.
    pub status: &'a RolloutStatus,
    /// The Events of the decision.
    pub events: &'a [Event],
    /// The analysis runs of the Rollout, as listed this tick.
    pub runs: &'a [AnalysisRun],
    /// What the Git side did this tick.
    pub git: Option<&'a GitOutcome>,
}

impl TickReport<'_> {
    fn note(&self, event: EventKind, message: &str) -> Notification {
        Notification {
            event,
            app: self.app.to_owned(),
            environment: self.environment.to_owned(),
            version: self.version.unwrap_or("unknown").to_owned(),
            message: message.to_owned(),
            metric: None,
            commit: None,
        }
    }

    fn git_commit(&self, reason: &str) -> Option<String> {
        self.git
            .filter(|g| g.reason == reason)
            .and_then(|g| g.commit.clone())
    }

    /// The notifications of this tick, in the order things happened.
    #[must_use]
    pub fn notifications(&self) -> Vec<Notification> {
        let mut out = Vec::new();
        for e in self.events {
            let kind = match e.reason {
                EventReason::NewRevisionDetected | EventReason::RolloutRetried => {
                    EventKind::RolloutStarted
                }
                EventReason::TrafficWeightChanged => EventKind::StepAdvanced,
                EventReason::RolloutPaused
                | EventReason::RolloutWaiting
                | EventReason::PromotionWaiting => EventKind::WaitingForApproval,
                EventReason::RolloutCompleted => {
                    let mut n = self.note(EventKind::Promoted, &e.message);
                    n.commit = self.git_commit(reasons::PROMOTED);
                    out.push(n);
                    continue;
                }
                _ => continue,
            };
            out.push(self.note(kind, &e.message));
        }
        if self.prior.phase.is_active() && self.status.phase == Phase::Failed {
            let metric = failing_metric(self.status, self.runs);
            let kind = if metric.is_some() {
                EventKind::AnalysisFailed
            } else {
                EventKind::RolledBack
            };
            let message = self.status.message.clone().unwrap_or_default();
            let mut n = self.note(kind, &format!("Rolled back. {message}"));
            n.metric = metric;
            n.commit = self.git_commit(reasons::REVERTED);
            out.push(n);
        }
        if let Some(g) = self.git {
            let kind = match g.reason {
                r if r == reasons::REVERTED => Some(EventKind::RevertedInGit),
                r if r == reasons::AWAITING_APPROVAL || r == reasons::AWAITING_GIT_CONFIRMATION => {
                    Some(EventKind::WaitingForApproval)
                }
                r if r == reasons::PROMOTED
                    && !self
                        .events
                        .iter()
                        .any(|e| e.reason == EventReason::RolloutCompleted) =>
                {
                    Some(EventKind::Promoted)
                }
                _ => None,
            };
            if let Some(kind) = kind {
                let mut n = self.note(kind, &g.message);
                n.commit = g.commit.clone();
                out.push(n);
            }
        }
        out
    }
}

/// Queue this tick's notifications for every sink (never waits; without sinks, nothing).
pub fn send(ctx: &super::Context, report: &TickReport<'_>) {
    let Some(notifier) = &ctx.notifier else {
        return;
    };
    for n in report.notifications() {
        let accepted = notifier.notify(n);
        tracing::debug!(app = report.app, ?accepted, "notification");
    }
}

/// The first failed metric of the first failed analysis run of this rollout: its name,
/// the value of its last failed measurement, and the condition (or Flagger range) it broke.
#[must_use]
pub fn failing_metric(status: &RolloutStatus, runs: &[AnalysisRun]) -> Option<FailingMetric> {
    status
        .analysis_runs
        .iter()
        .filter(|r| matches!(r.phase, RunPhase::Failed | RunPhase::Error))
        .find_map(|r| {
            let run = runs
                .iter()
                .find(|o| o.metadata.name.as_deref() == Some(r.name.as_str()))?;
            let st = run.status.as_ref()?;
            let result = st
                .metric_results
                .iter()
                .find(|m| m.phase == AnalysisPhase::Failed)
                .or_else(|| {
                    st.metric_results
                        .iter()
                        .find(|m| m.phase == AnalysisPhase::Error)
                })?;
            let measured = result
                .measurements
                .iter()
                .rev()
                .find(|m| m.phase == AnalysisPhase::Failed)
                .or_else(|| result.measurements.last());
            let observed = measured.map_or(f64::NAN, |m| first_number(&m.value));
            let spec = run.spec.run.metrics.iter().find(|m| m.name == result.name);
            let bound = spec.map_or_else(String::new, |m| {
                if let Some(b) = m.provider.builtin.as_ref()
                    && let Some(range) = b.threshold_range.as_ref()
                {
                    let mut parts = Vec::new();
                    if let Some(min) = range.min {
                        parts.push(format!("min {min}"));
                    }
                    if let Some(max) = range.max {
                        parts.push(format!("max {max}"));
                    }
                    return format!("thresholdRange {}", parts.join(", "));
                }
                match (&m.success_condition, &m.failure_condition) {
                    (_, Some(f)) => format!("failureCondition {f}"),
                    (Some(s), None) => format!("successCondition {s}"),
                    (None, None) => String::new(),
                }
            });
            Some(FailingMetric {
                name: result.name.clone(),
                observed,
                bound,
            })
        })
}

/// The first number in a measurement value (`10`, `[10,11]`, `NaN`); NaN when none.
fn first_number(value: &str) -> f64 {
    value
        .trim()
        .trim_start_matches('[')
        .split([',', ']'])
        .next()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(f64::NAN)
}

#[cfg(test)]
mod tests {
    use super::first_number;

    #[test]
    fn values_of_every_shape_give_their_first_number() {
        assert_eq!(first_number("10"), 10.0);
        assert_eq!(first_number("[0.5,2]"), 0.5);
        assert_eq!(first_number(" [3] "), 3.0);
        assert!(first_number("[]").is_nan());
        assert!(first_number("").is_nan());
    }
}
