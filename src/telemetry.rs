//! The controller's metrics: a [`Telemetry`] handle over a `prometheus-client` registry,
//! served as OpenMetrics text on `/metrics`.
//!
//! # Bounded labels
//!
//! Every label value comes from a closed set (an enum of this module or of the core), so
//! the number of series does not grow with the number of objects or with what goes wrong:
//! no object names, no namespaces, no error text, no queries, no versions. Per-rollout state
//! is exposed as aggregates instead: [`Telemetry::rollout_observed`] records each rollout's
//! phase and canary weight under its key *inside the process* (never as a label), and the
//! registry shows how many rollouts are in each phase (`rollgate_rollouts{phase}`) and in
//! each canary-weight band (`rollgate_rollouts_by_canary_weight{weight}`). Which rollout is
//! where is in the objects' status (`kubectl get rgro`) and in the status API.
//!
//! The README section *Controller endpoints and metrics* lists every family; a test
//! compares it with [`Telemetry::encode`] so the two cannot drift.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

use crate::core::analysis::value::AnalysisPhase;
use crate::core::strategy::Phase;
use crate::gitops::{ApprovalResult, GitError, PromotionResult, RevertResult};

/// The `Content-Type` of [`Telemetry::encode`]'s output.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The kind of object a reconcile was about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReconcileKind {
    /// A `Rollout`.
    Rollout,
    /// An `AnalysisRun`.
    AnalysisRun,
    /// A `PromotionPolicy`.
    PromotionPolicy,
}

impl ReconcileKind {
    /// Every kind, in a stable order.
    pub const ALL: [ReconcileKind; 3] = [
        ReconcileKind::Rollout,
        ReconcileKind::AnalysisRun,
        ReconcileKind::PromotionPolicy,
    ];

    /// The label value (the Kubernetes kind).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            ReconcileKind::Rollout => "Rollout",
            ReconcileKind::AnalysisRun => "AnalysisRun",
            ReconcileKind::PromotionPolicy => "PromotionPolicy",
        }
    }
}

/// Why a reconcile failed, as a closed set (the error text goes to logs, Events and
/// status conditions, never into a label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReconcileErrorReason {
    /// The API server refused or failed a request (other than a conflict or a timeout).
    ApiServer,
    /// An optimistic-concurrency conflict (HTTP 409): someone else changed the object.
    Conflict,
    /// An outbound call (API server, Prometheus, git remote) did not finish in time.
    Timeout,
    /// The object's spec is invalid (bad step, bad condition, unknown template argument).
    InvalidSpec,
    /// An object the spec names does not exist (Deployment, HTTPRoute, template, Secret).
    MissingReference,
    /// A metric provider failed (Prometheus unreachable, bad response).
    MetricProvider,
    /// The Git side of promotion or revert failed.
    Git,
    /// Anything else (a bug, a panicked task).
    Internal,
}

impl ReconcileErrorReason {
    /// Every reason, in a stable order.
    pub const ALL: [ReconcileErrorReason; 8] = [
        ReconcileErrorReason::ApiServer,
        ReconcileErrorReason::Conflict,
        ReconcileErrorReason::Timeout,
        ReconcileErrorReason::InvalidSpec,
        ReconcileErrorReason::MissingReference,
        ReconcileErrorReason::MetricProvider,
        ReconcileErrorReason::Git,
        ReconcileErrorReason::Internal,
    ];

    /// The label value.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            ReconcileErrorReason::ApiServer => "api_server",
            ReconcileErrorReason::Conflict => "conflict",
            ReconcileErrorReason::Timeout => "timeout",
            ReconcileErrorReason::InvalidSpec => "invalid_spec",
            ReconcileErrorReason::MissingReference => "missing_reference",
            ReconcileErrorReason::MetricProvider => "metric_provider",
            ReconcileErrorReason::Git => "git",
            ReconcileErrorReason::Internal => "internal",
        }
    }

    /// The reason of a kube client error: 409 is [`Conflict`](Self::Conflict), 404
    /// [`MissingReference`](Self::MissingReference), 422 and 400
    /// [`InvalidSpec`](Self::InvalidSpec), 408/504 [`Timeout`](Self::Timeout), anything
    /// else [`ApiServer`](Self::ApiServer).
    #[must_use]
    pub fn of_kube(e: &kube::Error) -> Self {
        match e {
            kube::Error::Api(s) => match s.code {
                409 => ReconcileErrorReason::Conflict,
                404 => ReconcileErrorReason::MissingReference,
                400 | 422 => ReconcileErrorReason::InvalidSpec,
                408 | 504 => ReconcileErrorReason::Timeout,
                _ => ReconcileErrorReason::ApiServer,
            },
            _ => ReconcileErrorReason::ApiServer,
        }
    }
}

/// How one Prometheus query ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QueryOutcome {
    /// Prometheus answered with data.
    Success,
    /// Prometheus answered with an error, or the answer could not be read.
    Error,
    /// No answer within the timeout.
    Timeout,
}

impl QueryOutcome {
    /// Every outcome, in a stable order.
    pub const ALL: [QueryOutcome; 3] = [
        QueryOutcome::Success,
        QueryOutcome::Error,
        QueryOutcome::Timeout,
    ];

    /// The label value.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            QueryOutcome::Success => "success",
            QueryOutcome::Error => "error",
            QueryOutcome::Timeout => "timeout",
        }
    }
}

/// A Git-side action of promotion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PromotionAction {
    /// Commit a version into the next environment (or push its approval branch).
    Promote,
    /// Revert the commit that brought a failed version into an environment.
    Revert,
    /// Land a promotion that waited for manual approval.
    Approve,
}

impl PromotionAction {
    /// Every action, in a stable order.
    pub const ALL: [PromotionAction; 3] = [
        PromotionAction::Promote,
        PromotionAction::Revert,
        PromotionAction::Approve,
    ];

    /// The label value.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            PromotionAction::Promote => "promote",
            PromotionAction::Revert => "revert",
            PromotionAction::Approve => "approve",
        }
    }
}

/// What a successful promotion action changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PromotionEffect {
    /// A commit landed on the environments' branch (a promotion, a revert, an approval).
    Committed,
    /// The promotion was pushed to its approval branch and waits.
    PendingApproval,
    /// Nothing to do: already at the version, already landed or pending, not current.
    Unchanged,
}

impl PromotionEffect {
    /// Every effect, in a stable order.
    pub const ALL: [PromotionEffect; 3] = [
        PromotionEffect::Committed,
        PromotionEffect::PendingApproval,
        PromotionEffect::Unchanged,
    ];

    /// The label value.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            PromotionEffect::Committed => "committed",
            PromotionEffect::PendingApproval => "pending_approval",
            PromotionEffect::Unchanged => "unchanged",
        }
    }
}

impl From<PromotionResult> for PromotionEffect {
    fn from(r: PromotionResult) -> Self {
        match r {
            PromotionResult::Committed => PromotionEffect::Committed,
            PromotionResult::PendingApproval => PromotionEffect::PendingApproval,
            PromotionResult::AlreadyAtVersion
            | PromotionResult::AlreadyLanded
            | PromotionResult::AlreadyPending => PromotionEffect::Unchanged,
        }
    }
}

impl From<RevertResult> for PromotionEffect {
    fn from(r: RevertResult) -> Self {
        match r {
            RevertResult::Reverted => PromotionEffect::Committed,
            RevertResult::NotCurrent | RevertResult::NotFound => PromotionEffect::Unchanged,
        }
    }
}

impl From<ApprovalResult> for PromotionEffect {
    fn from(r: ApprovalResult) -> Self {
        match r {
            ApprovalResult::Landed => PromotionEffect::Committed,
            ApprovalResult::AlreadyLanded | ApprovalResult::AlreadyAtVersion => {
                PromotionEffect::Unchanged
            }
        }
    }
}

/// Why a promotion action failed, as a closed set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PromotionFailure {
    /// The remote could not be reached or refused to authenticate us.
    Remote,
    /// A fetch or push timed out.
    Timeout,
    /// The remote refused the push (hook, branch protection, permissions).
    PushRefused,
    /// Every attempt lost the race against other promoters.
    Contention,
    /// The input was wrong: missing file or field, bad version, nothing to approve.
    Input,
    /// The local cache or a blocking task failed.
    Local,
}

impl PromotionFailure {
    /// Every failure, in a stable order.
    pub const ALL: [PromotionFailure; 6] = [
        PromotionFailure::Remote,
        PromotionFailure::Timeout,
        PromotionFailure::PushRefused,
        PromotionFailure::Contention,
        PromotionFailure::Input,
        PromotionFailure::Local,
    ];

    /// The label value.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            PromotionFailure::Remote => "remote",
            PromotionFailure::Timeout => "timeout",
            PromotionFailure::PushRefused => "push_refused",
            PromotionFailure::Contention => "contention",
            PromotionFailure::Input => "input",
            PromotionFailure::Local => "local",
        }
    }
}

impl From<&GitError> for PromotionFailure {
    fn from(e: &GitError) -> Self {
        match e {
            GitError::Remote { .. } | GitError::BranchMissing { .. } => PromotionFailure::Remote,
            GitError::Timeout { .. } => PromotionFailure::Timeout,
            GitError::PushRefused { .. } => PromotionFailure::PushRefused,
            GitError::Contention { .. } => PromotionFailure::Contention,
            GitError::Plan(_)
            | GitError::BadSourceVersion { .. }
            | GitError::NoPendingPromotion { .. }
            | GitError::ApprovalBranchTaken { .. } => PromotionFailure::Input,
            GitError::Cache { .. } | GitError::Local { .. } | GitError::Task(_) => {
                PromotionFailure::Local
            }
        }
    }
}

/// Canary-weight bands of `rollgate_rollouts_by_canary_weight` (label `weight`).
const WEIGHT_BANDS: [&str; 7] = ["0", "1-10", "11-25", "26-50", "51-75", "76-99", "100"];

fn weight_band(weight: u8) -> &'static str {
    match weight {
        0 => WEIGHT_BANDS[0],
        1..=10 => WEIGHT_BANDS[1],
        11..=25 => WEIGHT_BANDS[2],
        26..=50 => WEIGHT_BANDS[3],
        51..=75 => WEIGHT_BANDS[4],
        76..=99 => WEIGHT_BANDS[5],
        _ => WEIGHT_BANDS[6],
    }
}

const PHASES: [Phase; 9] = [
    Phase::Initialized,
    Phase::Waiting,
    Phase::Progressing,
    Phase::Paused,
    Phase::WaitingPromotion,
    Phase::Promoting,
    Phase::Finalising,
    Phase::Succeeded,
    Phase::Failed,
];

const VERDICTS: [AnalysisPhase; 4] = [
    AnalysisPhase::Successful,
    AnalysisPhase::Failed,
    AnalysisPhase::Error,
    AnalysisPhase::Inconclusive,
];

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct KindReasonLabels {
    kind: &'static str,
    reason: &'static str,
}

/// A notification sink's kind, as a label (never its name or URL).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NotificationSink {
    /// A Slack-compatible incoming webhook.
    Slack,
    /// A Microsoft Teams incoming webhook.
    Teams,
    /// A generic signed JSON webhook.
    Webhook,
}

impl NotificationSink {
    /// Every sink kind, in a stable order.
    pub const ALL: [NotificationSink; 3] = [
        NotificationSink::Slack,
        NotificationSink::Teams,
        NotificationSink::Webhook,
    ];

    /// The label value.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            NotificationSink::Slack => "slack",
            NotificationSink::Teams => "teams",
            NotificationSink::Webhook => "webhook",
        }
    }
}

/// Why a notification was not queued for delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NotificationDrop {
    /// The same notification was sent within the de-duplication window.
    Duplicate,
    /// Over the per-minute limit.
    RateLimited,
    /// A sink's queue was full.
    QueueFull,
}

impl NotificationDrop {
    /// Every reason, in a stable order.
    pub const ALL: [NotificationDrop; 3] = [
        NotificationDrop::Duplicate,
        NotificationDrop::RateLimited,
        NotificationDrop::QueueFull,
    ];

    /// The label value.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            NotificationDrop::Duplicate => "duplicate",
            NotificationDrop::RateLimited => "rate_limited",
            NotificationDrop::QueueFull => "queue_full",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct PhaseLabels {
    phase: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct TransitionLabels {
    from: &'static str,
    to: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct WeightLabels {
    weight: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ActionLabels {
    action: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ActionResultLabels {
    action: &'static str,
    result: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ActionReasonLabels {
    action: &'static str,
    reason: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct HttpLabels {
    route: &'static str,
    code: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct SinkLabels {
    sink: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct SinkResultLabels {
    sink: &'static str,
    result: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct DropLabels {
    reason: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn reconcile_buckets() -> Histogram {
    // 1 ms .. ~16 s
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
        0.001, 2.0, 15,
    ))
}

fn query_buckets() -> Histogram {
    // 5 ms .. ~20 s
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
        0.005, 2.0, 13,
    ))
}

fn promotion_buckets() -> Histogram {
    // 50 ms .. ~100 s
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
        0.05, 2.0, 12,
    ))
}

struct Metrics {
    reconciles: Family<KindLabels, Counter>,
    reconcile_duration: HistogramFamily<KindLabels>,
    reconcile_errors: Family<KindReasonLabels, Counter>,
    rollouts: Family<PhaseLabels, Gauge>,
    phase_transitions: Family<TransitionLabels, Counter>,
    rollouts_by_weight: Family<WeightLabels, Gauge>,
    weight_updates: Counter,
    analysis_runs: Family<PhaseLabels, Counter>,
    measurements: Family<PhaseLabels, Counter>,
    query_duration: HistogramFamily<OutcomeLabels>,
    queries_coalesced: Counter,
    promotion_duration: HistogramFamily<ActionLabels>,
    promotions: Family<ActionResultLabels, Counter>,
    promotion_failures: Family<ActionReasonLabels, Counter>,
    leader: Gauge,
    http_requests: Family<HttpLabels, Counter>,
    notifications: Family<SinkResultLabels, Counter>,
    notification_retries: Family<SinkLabels, Counter>,
    notifications_dropped: Family<DropLabels, Counter>,
}

struct Inner {
    registry: Registry,
    metrics: Metrics,
    /// Phase and canary weight of each rollout, by (namespace, name): kept here, not as
    /// labels, so the gauges can be aggregates that stay right when a rollout changes or
    /// goes away.
    rollouts: Mutex<HashMap<(String, String), (Phase, u8)>>,
}

/// The controller's metrics registry. Cheap to clone (all clones share one registry).
///
/// The controller calls the recording methods; [`Telemetry::encode`] renders every
/// family for `/metrics`. Every family is present from the start (series of closed label
/// sets are created at zero), so dashboards and alerts see zeros rather than gaps.
#[derive(Clone)]
pub struct Telemetry {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Telemetry").finish_non_exhaustive()
    }
}

impl Default for Telemetry {
    fn default() -> Self {
        Self::new()
    }
}

impl Telemetry {
    /// A registry with every rollgate family registered (prefix `rollgate_`).
    #[must_use]
    pub fn new() -> Self {
        let m = Metrics {
            reconciles: Family::default(),
            reconcile_duration: Family::new_with_constructor(reconcile_buckets),
            reconcile_errors: Family::default(),
            rollouts: Family::default(),
            phase_transitions: Family::default(),
            rollouts_by_weight: Family::default(),
            weight_updates: Counter::default(),
            analysis_runs: Family::default(),
            measurements: Family::default(),
            query_duration: Family::new_with_constructor(query_buckets),
            queries_coalesced: Counter::default(),
            promotion_duration: Family::new_with_constructor(promotion_buckets),
            promotions: Family::default(),
            promotion_failures: Family::default(),
            leader: Gauge::default(),
            http_requests: Family::default(),
            notifications: Family::default(),
            notification_retries: Family::default(),
            notifications_dropped: Family::default(),
        };
        let mut r = Registry::with_prefix("rollgate");
        r.register(
            "reconciles",
            "Reconciles finished, by kind",
            m.reconciles.clone(),
        );
        r.register_with_unit(
            "reconcile_duration",
            "Time one reconcile took, by kind",
            Unit::Seconds,
            m.reconcile_duration.clone(),
        );
        r.register(
            "reconcile_errors",
            "Reconciles that failed, by kind and reason",
            m.reconcile_errors.clone(),
        );
        r.register(
            "rollouts",
            "Rollouts known to this controller, by phase",
            m.rollouts.clone(),
        );
        r.register(
            "rollout_phase_transitions",
            "Rollout phase changes, by previous and new phase",
            m.phase_transitions.clone(),
        );
        r.register(
            "rollouts_by_canary_weight",
            "Rollouts by the band their canary weight (percent) is in",
            m.rollouts_by_weight.clone(),
        );
        r.register(
            "canary_weight_updates",
            "Canary weights written to traffic routes",
            m.weight_updates.clone(),
        );
        r.register(
            "analysis_runs",
            "Analysis runs completed, by verdict",
            m.analysis_runs.clone(),
        );
        r.register(
            "analysis_measurements",
            "Analysis measurements completed, by phase",
            m.measurements.clone(),
        );
        r.register_with_unit(
            "prometheus_query_duration",
            "Time of one Prometheus query, by outcome",
            Unit::Seconds,
            m.query_duration.clone(),
        );
        r.register(
            "prometheus_queries_coalesced",
            "Queries answered by an identical query of the same interval instead of Prometheus",
            m.queries_coalesced.clone(),
        );
        r.register_with_unit(
            "promotion_duration",
            "Time of one Git promotion action (promote, revert, approve), by action",
            Unit::Seconds,
            m.promotion_duration.clone(),
        );
        r.register(
            "promotions",
            "Git promotion actions that succeeded, by action and effect",
            m.promotions.clone(),
        );
        r.register(
            "promotion_failures",
            "Git promotion actions that failed, by action and reason",
            m.promotion_failures.clone(),
        );
        r.register(
            "leader",
            "1 while this replica holds the leader Lease, else 0",
            m.leader.clone(),
        );
        r.register(
            "http_requests",
            "HTTP requests served, by route template and status code",
            m.http_requests.clone(),
        );
        r.register(
            "notifications",
            "Notifications delivered or given up, by sink kind and result",
            m.notifications.clone(),
        );
        r.register(
            "notification_retries",
            "Failed notification attempts that were retried, by sink kind",
            m.notification_retries.clone(),
        );
        r.register(
            "notifications_dropped",
            "Notifications not queued, by reason",
            m.notifications_dropped.clone(),
        );

        // Closed label sets start at zero.
        for k in ReconcileKind::ALL {
            let kind = k.as_str();
            let _ = m.reconciles.get_or_create(&KindLabels { kind });
            let _ = m.reconcile_duration.get_or_create(&KindLabels { kind });
            for reason in ReconcileErrorReason::ALL {
                let _ = m.reconcile_errors.get_or_create(&KindReasonLabels {
                    kind,
                    reason: reason.as_str(),
                });
            }
        }
        for p in PHASES {
            let _ = m.rollouts.get_or_create(&PhaseLabels { phase: p.as_str() });
        }
        for w in WEIGHT_BANDS {
            let _ = m
                .rollouts_by_weight
                .get_or_create(&WeightLabels { weight: w });
        }
        for v in VERDICTS {
            let _ = m
                .analysis_runs
                .get_or_create(&PhaseLabels { phase: v.as_str() });
            let _ = m
                .measurements
                .get_or_create(&PhaseLabels { phase: v.as_str() });
        }
        for a in PromotionAction::ALL {
            let action = a.as_str();
            let _ = m.promotion_duration.get_or_create(&ActionLabels { action });
            for e in PromotionEffect::ALL {
                let _ = m.promotions.get_or_create(&ActionResultLabels {
                    action,
                    result: e.as_str(),
                });
            }
            for f in PromotionFailure::ALL {
                let _ = m.promotion_failures.get_or_create(&ActionReasonLabels {
                    action,
                    reason: f.as_str(),
                });
            }
        }

        for o in QueryOutcome::ALL {
            let _ = m.query_duration.get_or_create(&OutcomeLabels {
                outcome: o.as_str(),
            });
        }
        for route in crate::server::routes::ALL {
            let _ = m
                .http_requests
                .get_or_create(&HttpLabels { route, code: "200" });
        }

        for k in NotificationSink::ALL {
            let sink = k.as_str();
            let _ = m.notification_retries.get_or_create(&SinkLabels { sink });
            for result in ["sent", "failed"] {
                let _ = m
                    .notifications
                    .get_or_create(&SinkResultLabels { sink, result });
            }
        }
        for d in NotificationDrop::ALL {
            let _ = m
                .notifications_dropped
                .get_or_create(&DropLabels { reason: d.as_str() });
        }

        Self {
            inner: Arc::new(Inner {
                registry: r,
                metrics: m,
                rollouts: Mutex::new(HashMap::new()),
            }),
        }
    }

    fn m(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// A reconcile of `kind` finished (successfully or not) after `duration`.
    pub fn reconciled(&self, kind: ReconcileKind, duration: Duration) {
        let l = KindLabels {
            kind: kind.as_str(),
        };
        self.m().reconciles.get_or_create(&l).inc();
        self.m()
            .reconcile_duration
            .get_or_create(&l)
            .observe(duration.as_secs_f64());
    }

    /// A reconcile of `kind` failed for `reason` (call it in addition to
    /// [`Telemetry::reconciled`]).
    pub fn reconcile_error(&self, kind: ReconcileKind, reason: ReconcileErrorReason) {
        self.m()
            .reconcile_errors
            .get_or_create(&KindReasonLabels {
                kind: kind.as_str(),
                reason: reason.as_str(),
            })
            .inc();
    }

    /// The controller moved a rollout from phase `from` to `to` (counts the transition;
    /// call it once per change the controller writes to status, not on every reconcile).
    pub fn rollout_phase_changed(&self, from: Phase, to: Phase) {
        self.m()
            .phase_transitions
            .get_or_create(&TransitionLabels {
                from: from.as_str(),
                to: to.as_str(),
            })
            .inc();
    }

    /// The rollout `namespace/name` is in `phase` with `canary_weight` percent on the
    /// canary. Idempotent: call it on every reconcile with the status as written. The key
    /// stays inside the process; the registry shows only the counts per phase and per
    /// weight band.
    pub fn rollout_observed(&self, namespace: &str, name: &str, phase: Phase, canary_weight: u8) {
        let mut map = self
            .inner
            .rollouts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let key = (namespace.to_owned(), name.to_owned());
        let new = (phase, canary_weight.min(100));
        let old = map.insert(key, new);
        if old == Some(new) {
            return;
        }
        if let Some(old) = old {
            self.count_rollout(old, -1);
        }
        self.count_rollout(new, 1);
    }

    /// The rollout `namespace/name` was deleted: it no longer counts in the gauges.
    pub fn rollout_deleted(&self, namespace: &str, name: &str) {
        let mut map = self
            .inner
            .rollouts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(old) = map.remove(&(namespace.to_owned(), name.to_owned())) {
            self.count_rollout(old, -1);
        }
    }

    fn count_rollout(&self, (phase, weight): (Phase, u8), delta: i64) {
        self.m()
            .rollouts
            .get_or_create(&PhaseLabels {
                phase: phase.as_str(),
            })
            .inc_by(delta);
        self.m()
            .rollouts_by_weight
            .get_or_create(&WeightLabels {
                weight: weight_band(weight),
            })
            .inc_by(delta);
    }

    /// The controller wrote a new canary weight to a traffic route.
    pub fn canary_weight_updated(&self) {
        self.m().weight_updates.inc();
    }

    /// An analysis run completed with `verdict` (`Successful`, `Failed`, `Error` or
    /// `Inconclusive`; `Pending` and `Running` are not verdicts and are ignored).
    pub fn analysis_run_completed(&self, verdict: AnalysisPhase) {
        if verdict.is_completed() {
            self.m()
                .analysis_runs
                .get_or_create(&PhaseLabels {
                    phase: verdict.as_str(),
                })
                .inc();
        }
    }

    /// One measurement completed with `phase` (`Pending` and `Running` are ignored).
    pub fn measurement_completed(&self, phase: AnalysisPhase) {
        if phase.is_completed() {
            self.m()
                .measurements
                .get_or_create(&PhaseLabels {
                    phase: phase.as_str(),
                })
                .inc();
        }
    }

    /// One query went to Prometheus and ended with `outcome` after `duration`.
    pub fn prometheus_query(&self, outcome: QueryOutcome, duration: Duration) {
        self.m()
            .query_duration
            .get_or_create(&OutcomeLabels {
                outcome: outcome.as_str(),
            })
            .observe(duration.as_secs_f64());
    }

    /// A measurement was answered by an identical query of the same interval, without a
    /// request to Prometheus.
    pub fn prometheus_query_coalesced(&self) {
        self.m().queries_coalesced.inc();
    }

    /// A promotion action succeeded with `effect` after `duration`.
    pub fn promotion_succeeded(
        &self,
        action: PromotionAction,
        effect: PromotionEffect,
        duration: Duration,
    ) {
        let a = action.as_str();
        self.m()
            .promotion_duration
            .get_or_create(&ActionLabels { action: a })
            .observe(duration.as_secs_f64());
        self.m()
            .promotions
            .get_or_create(&ActionResultLabels {
                action: a,
                result: effect.as_str(),
            })
            .inc();
    }

    /// A promotion action failed for `reason` after `duration` (see
    /// `PromotionFailure::from(&GitError)`).
    pub fn promotion_failed(
        &self,
        action: PromotionAction,
        reason: PromotionFailure,
        duration: Duration,
    ) {
        let a = action.as_str();
        self.m()
            .promotion_duration
            .get_or_create(&ActionLabels { action: a })
            .observe(duration.as_secs_f64());
        self.m()
            .promotion_failures
            .get_or_create(&ActionReasonLabels {
                action: a,
                reason: reason.as_str(),
            })
            .inc();
    }

    /// Whether this replica holds the leader Lease (set by [`crate::leader`]).
    pub fn set_leader(&self, leader: bool) {
        self.m().leader.set(i64::from(leader));
    }

    /// An HTTP request to `route` (a route template of [`crate::server`], never a raw path)
    /// was answered with status `code`.
    pub(crate) fn http_request(&self, route: &'static str, code: u16) {
        self.m()
            .http_requests
            .get_or_create(&HttpLabels {
                route,
                code: status_label(code),
            })
            .inc();
    }

    /// A notification to a `sink` was delivered (`sent`) or given up after its retries
    /// (`failed`).
    pub fn notification_delivered(&self, sink: NotificationSink, sent: bool) {
        self.m()
            .notifications
            .get_or_create(&SinkResultLabels {
                sink: sink.as_str(),
                result: if sent { "sent" } else { "failed" },
            })
            .inc();
    }

    /// An attempt to deliver to a `sink` failed and will be retried.
    pub fn notification_retried(&self, sink: NotificationSink) {
        self.m()
            .notification_retries
            .get_or_create(&SinkLabels {
                sink: sink.as_str(),
            })
            .inc();
    }

    /// A notification was not queued, for `reason`.
    pub fn notification_dropped(&self, reason: NotificationDrop) {
        self.m()
            .notifications_dropped
            .get_or_create(&DropLabels {
                reason: reason.as_str(),
            })
            .inc();
    }

    /// Every family as OpenMetrics text (ends with `# EOF`), for `/metrics`; serve it with
    /// [`OPENMETRICS_CONTENT_TYPE`].
    #[must_use]
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.inner.registry).is_err() {
            // Writing to a String cannot fail; keep the output well-formed regardless.
            out.clear();
            let _ = writeln!(out, "# EOF");
        }
        out
    }
}

/// Status codes as static label values (a closed set: anything unusual is `other`).
fn status_label(code: u16) -> &'static str {
    match code {
        200 => "200",
        201 => "201",
        204 => "204",
        400 => "400",
        401 => "401",
        403 => "403",
        404 => "404",
        405 => "405",
        409 => "409",
        413 => "413",
        415 => "415",
        422 => "422",
        500 => "500",
        502 => "502",
        503 => "503",
        504 => "504",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(text: &str, prefix: &str) -> Option<f64> {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    }

    #[test]
    fn rollout_gauges_are_aggregates_that_follow_changes_and_deletions() {
        let t = Telemetry::new();
        t.rollout_observed("a", "shopfront-x1", Phase::Progressing, 10);
        t.rollout_observed("a", "shopfront-x1", Phase::Progressing, 10); // idempotent
        t.rollout_observed("b", "shopfront-x1", Phase::Progressing, 30);
        t.rollout_observed("a", "checkout-x2", Phase::Succeeded, 0);
        let out = t.encode();
        assert_eq!(
            line(&out, "rollgate_rollouts{phase=\"Progressing\"}"),
            Some(2.0)
        );
        assert_eq!(
            line(&out, "rollgate_rollouts{phase=\"Succeeded\"}"),
            Some(1.0)
        );
        assert_eq!(
            line(&out, "rollgate_rollouts_by_canary_weight{weight=\"1-10\"}"),
            Some(1.0)
        );
        assert_eq!(
            line(&out, "rollgate_rollouts_by_canary_weight{weight=\"26-50\"}"),
            Some(1.0)
        );
        assert_eq!(
            line(&out, "rollgate_rollouts_by_canary_weight{weight=\"0\"}"),
            Some(1.0)
        );
        assert!(
            !out.contains("shopfront-x1") && !out.contains("checkout-x2"),
            "object names leaked: {out}"
        );

        t.rollout_observed("a", "shopfront-x1", Phase::Failed, 0);
        t.rollout_deleted("b", "shopfront-x1");
        t.rollout_deleted("b", "shopfront-x1"); // twice: no negative counts
        let out = t.encode();
        assert_eq!(
            line(&out, "rollgate_rollouts{phase=\"Progressing\"}"),
            Some(0.0)
        );
        assert_eq!(line(&out, "rollgate_rollouts{phase=\"Failed\"}"), Some(1.0));
        assert_eq!(
            line(&out, "rollgate_rollouts_by_canary_weight{weight=\"0\"}"),
            Some(2.0)
        );
        assert_eq!(
            line(&out, "rollgate_rollouts_by_canary_weight{weight=\"1-10\"}"),
            Some(0.0)
        );
        assert_eq!(
            line(&out, "rollgate_rollouts_by_canary_weight{weight=\"26-50\"}"),
            Some(0.0)
        );
    }

    #[test]
    fn weight_bands_cover_every_weight() {
        assert_eq!(weight_band(0), "0");
        assert_eq!(weight_band(1), "1-10");
        assert_eq!(weight_band(10), "1-10");
        assert_eq!(weight_band(11), "11-25");
        assert_eq!(weight_band(50), "26-50");
        assert_eq!(weight_band(51), "51-75");
        assert_eq!(weight_band(99), "76-99");
        assert_eq!(weight_band(100), "100");
        assert_eq!(weight_band(255), "100");
    }

    #[test]
    fn counters_and_histograms_record_under_their_labels() {
        let t = Telemetry::new();
        t.reconciled(ReconcileKind::Rollout, Duration::from_millis(3));
        t.reconciled(ReconcileKind::Rollout, Duration::from_millis(5));
        t.reconcile_error(ReconcileKind::AnalysisRun, ReconcileErrorReason::Timeout);
        t.rollout_phase_changed(Phase::Progressing, Phase::Failed);
        t.analysis_run_completed(AnalysisPhase::Inconclusive);
        t.analysis_run_completed(AnalysisPhase::Running); // not a verdict
        t.prometheus_query(QueryOutcome::Success, Duration::from_millis(12));
        t.prometheus_query_coalesced();
        t.promotion_failed(
            PromotionAction::Revert,
            PromotionFailure::PushRefused,
            Duration::from_secs(1),
        );
        t.set_leader(true);
        let out = t.encode();
        assert_eq!(
            line(&out, "rollgate_reconciles_total{kind=\"Rollout\"}"),
            Some(2.0)
        );
        assert_eq!(
            line(
                &out,
                "rollgate_reconcile_duration_seconds_count{kind=\"Rollout\"}"
            ),
            Some(2.0)
        );
        assert_eq!(
            line(
                &out,
                "rollgate_reconcile_errors_total{kind=\"AnalysisRun\",reason=\"timeout\"}"
            ),
            Some(1.0)
        );
        assert_eq!(
            line(
                &out,
                "rollgate_rollout_phase_transitions_total{from=\"Progressing\",to=\"Failed\"}"
            ),
            Some(1.0)
        );
        assert_eq!(
            line(&out, "rollgate_analysis_runs_total{phase=\"Inconclusive\"}"),
            Some(1.0)
        );
        assert!(!out.contains("phase=\"Running\""));
        assert_eq!(
            line(
                &out,
                "rollgate_prometheus_query_duration_seconds_count{outcome=\"success\"}"
            ),
            Some(1.0)
        );
        assert_eq!(
            line(&out, "rollgate_prometheus_queries_coalesced_total"),
            Some(1.0)
        );
        assert_eq!(
            line(
                &out,
                "rollgate_promotion_failures_total{action=\"revert\",reason=\"push_refused\"}"
            ),
            Some(1.0)
        );
        assert_eq!(line(&out, "rollgate_leader"), Some(1.0));
        assert!(out.ends_with("# EOF\n"));
    }
}
