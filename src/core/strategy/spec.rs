//! The `Rollout` spec and status types (Flagger's model, Argo-style steps), free of any
//! Kubernetes client types so that the CRD wrapper in `k8s` and the CLI share them.
//!
//! Field names are the Kubernetes camelCase ones. Values that can be checked on their own
//! (weights, durations) are checked while deserialising, so a bad value is reported with
//! its path and line; cross-field rules live in [`RolloutSpec::validate`].

use std::collections::BTreeMap;
use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::time::{GoDuration, Timestamp};

/// What a `Rollout` asks for: which Deployment to roll out, how to expose it, how to
/// route traffic and which strategy to follow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RolloutSpec {
    /// The user's Deployment. It stays as Git has it; rollgate creates `<name>-primary`.
    pub target_ref: TargetRef,
    /// The Services rollgate manages: `<name>`, `<name>-primary`, `<name>-canary`.
    pub service: ServiceSpec,
    /// Where traffic weights are written (absent: Service selectors only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traffic_routing: Option<TrafficRouting>,
    /// Canary or blue-green.
    pub strategy: Strategy,
    /// Seconds a canary or primary may take to become ready before the rollout fails
    /// (Flagger's default 600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress_deadline_seconds: Option<u32>,
    /// Promote a new revision as soon as it is ready, without analysis or steps.
    #[serde(default, skip_serializing_if = "is_false")]
    pub skip_analysis: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// Flagger's default progress deadline in seconds.
pub const DEFAULT_PROGRESS_DEADLINE_SECONDS: u32 = 600;

impl RolloutSpec {
    /// The progress deadline in seconds, with Flagger's default.
    pub fn progress_deadline(&self) -> u32 {
        self.progress_deadline_seconds
            .unwrap_or(DEFAULT_PROGRESS_DEADLINE_SECONDS)
    }

    /// The Flagger webhooks of the strategy (`strategy.canary.analysis.webhooks` or
    /// `strategy.blueGreen.webhooks`).
    pub fn webhooks(&self) -> &[crate::core::hooks::HookSpec] {
        match &self.strategy {
            Strategy::Canary(c) => c.analysis.as_ref().map_or(&[], |a| a.webhooks.as_slice()),
            Strategy::BlueGreen(b) => &b.webhooks,
        }
    }

    /// The base name of the managed Services (`service.name`, else the target's name).
    pub fn service_name(&self) -> &str {
        self.service
            .name
            .as_deref()
            .unwrap_or(self.target_ref.name.as_str())
    }
}

/// The workload a Rollout controls.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TargetRef {
    /// API version of the target, `apps/v1`.
    #[serde(default = "default_api_version")]
    pub api_version: String,
    /// Kind of the target; only `Deployment` is supported.
    #[serde(default)]
    pub kind: TargetKind,
    /// Name of the Deployment in the Rollout's namespace.
    pub name: String,
}

fn default_api_version() -> String {
    "apps/v1".to_owned()
}

/// Kinds of workload a Rollout can target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub enum TargetKind {
    /// An `apps/v1` Deployment.
    #[default]
    Deployment,
}

/// The Services rollgate creates for the target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServiceSpec {
    /// Base name of the Services (default: the target's name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Port the Services expose.
    pub port: u16,
    /// Container port the Services send to (default: `port`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_port: Option<u16>,
    /// Name of the Service port (default `http`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port_name: Option<String>,
}

/// Traffic routers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TrafficRouting {
    /// Gateway API: weight the two managed backendRefs of an existing HTTPRoute.
    #[serde(
        rename = "gatewayAPI",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub gateway_api: Option<GatewayApiRouting>,
}

/// Gateway API routing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GatewayApiRouting {
    /// The user's HTTPRoute; only the backendRefs naming `<svc>-primary` and
    /// `<svc>-canary` are touched.
    pub http_route: HttpRouteRef,
}

/// A reference to an HTTPRoute.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpRouteRef {
    /// Name of the HTTPRoute.
    pub name: String,
    /// Namespace of the HTTPRoute (default: the Rollout's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// The deployment strategy: exactly one of `canary` or `blueGreen`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum Strategy {
    /// Shift traffic to the canary in steps.
    Canary(CanaryStrategy),
    /// Run the new version beside the old one, then switch all traffic.
    BlueGreen(BlueGreenStrategy),
}

/// A canary rollout: either explicit `steps` (Argo Rollouts style, with an optional
/// background `analysis`) or Flagger's shorthand in `analysis` (`stepWeight`,
/// `stepWeights`, `maxWeight`, `interval`, `threshold`, `metrics`), which compiles into
/// steps.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CanaryStrategy {
    /// The steps, in order. After the last one the canary is promoted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<CanaryStep>,
    /// Background analysis (`templates`, `args`, `startingStep`) or Flagger's shorthand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis: Option<CanaryAnalysis>,
}

/// One canary step. Written as a one-key map: `- setWeight: 20`, `- pause: {}`,
/// `- pause: {duration: 5m}`, `- analysis: {templates: [...]}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum CanaryStep {
    /// Send this percentage of traffic to the canary.
    SetWeight(Weight),
    /// Wait for `duration`, or until promoted when it has none.
    Pause(PauseStep),
    /// Run an analysis and wait for its verdict.
    Analysis(AnalysisRef),
}

/// A pause step.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PauseStep {
    /// How long to wait (`30s`, `5m`, `1h30m`); absent: until promoted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<GoDuration>,
}

/// A traffic weight in percent, 0 to 100.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(try_from = "i64", into = "u8")]
pub struct Weight(pub(super) u8);

impl Weight {
    /// No traffic.
    pub const ZERO: Weight = Weight(0);
    /// All traffic.
    pub const FULL: Weight = Weight(100);

    /// A weight, or `None` above 100.
    pub fn new(percent: u8) -> Option<Weight> {
        (percent <= 100).then_some(Weight(percent))
    }

    /// The weight in percent.
    pub fn get(self) -> u8 {
        self.0
    }

    /// The complementary weight (`100 - self`).
    pub fn complement(self) -> Weight {
        Weight(100 - self.0)
    }
}

impl From<Weight> for u8 {
    fn from(w: Weight) -> u8 {
        w.0
    }
}

impl TryFrom<i64> for Weight {
    type Error = String;
    fn try_from(v: i64) -> Result<Self, Self::Error> {
        u8::try_from(v)
            .ok()
            .and_then(Weight::new)
            .ok_or_else(|| format!("weight {v} is outside 0..=100"))
    }
}

impl fmt::Display for Weight {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl JsonSchema for Weight {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Weight".into()
    }
    fn inline_schema() -> bool {
        true
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "integer",
            "minimum": 0,
            "maximum": 100,
        })
    }
}

/// A reference to analysis templates with arguments, as in an Argo Rollouts step.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AnalysisRef {
    /// The templates whose metrics the run contains.
    pub templates: Vec<TemplateRef>,
    /// Values for the templates' args.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<AnalysisArg>,
}

/// One template of an analysis.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TemplateRef {
    /// Name of the `AnalysisTemplate` (or `ClusterAnalysisTemplate` when `clusterScope`).
    pub template_name: String,
    /// The template is a `ClusterAnalysisTemplate`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub cluster_scope: bool,
}

/// One argument passed to a template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AnalysisArg {
    /// The arg's name in the template.
    pub name: String,
    /// Its value.
    pub value: String,
}

/// `strategy.canary.analysis`: a background analysis (`templates`, `args`,
/// `startingStep`), or Flagger's shorthand (`stepWeight`/`stepWeights`, `maxWeight`,
/// `interval`, `threshold`, `metrics`) that compiles into steps. The two forms do not mix.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CanaryAnalysis {
    /// Background analysis: templates run for the whole update from `startingStep`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub templates: Vec<TemplateRef>,
    /// Background analysis: args for the templates.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<AnalysisArg>,
    /// Background analysis: index of the step from which it runs (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starting_step: Option<u32>,
    /// Shorthand: time between checks and steps (default `1m`, at least `10s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<GoDuration>,
    /// Shorthand: failed checks that roll back (default 1; `<= 0` means 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<i32>,
    /// Shorthand: linear step in percent; wins over `stepWeights` when > 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_weight: Option<Weight>,
    /// Shorthand: absolute weights in order (non-linear steps).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub step_weights: Vec<Weight>,
    /// Shorthand: weight at which promotion starts (default 100; with `stepWeights`,
    /// ignored in favour of the last listed weight).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_weight: Option<Weight>,
    /// Shorthand: 0 or absent → the primary gets all traffic at once at promotion;
    /// otherwise the primary's weight grows by this much per interval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_weight_promotion: Option<Weight>,
    /// Shorthand: the checks run every interval (Flagger's `metrics`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metrics: Vec<FlaggerMetric>,
    /// Flagger's webhooks (`confirm-rollout`, `pre-rollout`, `rollout`, ...), with
    /// Flagger's semantics; allowed with explicit steps and with the shorthand.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub webhooks: Vec<crate::core::hooks::HookSpec>,
}

impl CanaryAnalysis {
    /// True when any of Flagger's shorthand fields is set.
    pub fn is_shorthand(&self) -> bool {
        self.interval.is_some()
            || self.threshold.is_some()
            || self.step_weight.is_some()
            || !self.step_weights.is_empty()
            || self.max_weight.is_some()
            || self.step_weight_promotion.is_some()
            || !self.metrics.is_empty()
    }

    /// True when any background-analysis field is set.
    pub fn is_background(&self) -> bool {
        !self.templates.is_empty() || !self.args.is_empty() || self.starting_step.is_some()
    }
}

/// One of Flagger's `analysis.metrics[]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FlaggerMetric {
    /// Metric name: a built-in (`request-success-rate`, `request-duration`) or any name
    /// when `templateRef` is given.
    pub name: String,
    /// Query window (default `1m`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<GoDuration>,
    /// Pass range; the bounds themselves pass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold_range: Option<ThresholdRange>,
    /// The analysis template that holds the query.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_ref: Option<MetricTemplateRef>,
    /// Variables for the template.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub template_variables: BTreeMap<String, String>,
}

/// Flagger's `thresholdRange`.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ThresholdRange {
    /// Fail below this value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    /// Fail above this value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
}

/// Flagger's `templateRef`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MetricTemplateRef {
    /// Template name.
    pub name: String,
    /// Template namespace (default: the Rollout's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// A blue-green rollout. The primary is the active (blue) side; the canary Deployment
/// is the preview (green). Names: Argo's `activeService`/`previewService` are accepted as
/// the Services to use; by default they are `<svc>` / `<svc>-primary` and `<svc>-canary`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BlueGreenStrategy {
    /// Service that always selects the live pods (default `<svc>`).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "primaryService"
    )]
    pub active_service: Option<String>,
    /// Service that selects the new version before the switch (default `<svc>-canary`).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "canaryService"
    )]
    pub preview_service: Option<String>,
    /// Analysis of the preview before any live traffic reaches it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre_promotion_analysis: Option<AnalysisRef>,
    /// Switch automatically once the preview is ready and analysed (default true). When
    /// false, wait for a manual promote.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_promotion_enabled: Option<bool>,
    /// With auto-promotion, wait this many seconds with the preview ready (and analysed)
    /// before switching; ignored when `autoPromotionEnabled` is false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_promotion_seconds: Option<u32>,
    /// Analysis after the switch; failure switches back at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_promotion_analysis: Option<AnalysisRef>,
    /// Seconds the old version stays scaled up after the switch (default 30).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_down_delay_seconds: Option<u32>,
    /// Flagger's webhooks, as in `strategy.canary.analysis.webhooks`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub webhooks: Vec<crate::core::hooks::HookSpec>,
}

/// Argo Rollouts' default `scaleDownDelaySeconds`.
pub const DEFAULT_SCALE_DOWN_DELAY_SECONDS: u32 = 30;

impl BlueGreenStrategy {
    /// Whether the switch happens without a manual promote (default true).
    pub fn auto_promotion(&self) -> bool {
        self.auto_promotion_enabled.unwrap_or(true)
    }

    /// The scale-down delay in seconds, with its default.
    pub fn scale_down_delay(&self) -> u32 {
        self.scale_down_delay_seconds
            .unwrap_or(DEFAULT_SCALE_DOWN_DELAY_SECONDS)
    }
}

// ---------------------------------------------------------------------------------------
// Status
// ---------------------------------------------------------------------------------------

/// Where a rollout stands. Written only by the controller, from [`super::Decision`]s.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RolloutStatus {
    /// The phase.
    #[serde(default)]
    pub phase: Phase,
    /// Why the rollout is paused, while it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pause_reason: Option<PauseReason>,
    /// Index of the current step of the compiled plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_step_index: Option<u32>,
    /// When the current step (or blue-green stage) started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_started_at: Option<Timestamp>,
    /// Percentage of traffic on the canary.
    #[serde(default)]
    pub canary_weight: u8,
    /// Pod-template revision under rollout (or last seen).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_applied_revision: Option<String>,
    /// Revision last promoted to the primary; never analysed again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_promoted_revision: Option<String>,
    /// Revision whose pod template the primary runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_revision: Option<String>,
    /// The rollout was aborted (failed analysis, manual abort, deadline); it stays
    /// aborted for this revision until a retry or a new revision.
    #[serde(default, skip_serializing_if = "is_false")]
    pub aborted: bool,
    /// Analysis runs of the current revision.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub analysis_runs: Vec<AnalysisRunRef>,
    /// Flagger's `failedChecks`: checks that failed during this rollout — a check run of
    /// the shorthand `metrics` (one per interval, however many metrics failed) or a
    /// `pre-rollout`/`rollout` webhook. Never decremented by a passing check; reset when a
    /// rollout starts. The rollout aborts when it reaches `threshold`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub failed_checks: u32,
    /// Since when the canary (or, while promoting, the primary) has been seen not ready;
    /// the rollout aborts once this is older than the progress deadline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_ready_since: Option<Timestamp>,
    /// How many times this revision was retried after an abort (part of run names, so a
    /// retry never reuses a finished run).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub retries: u32,
    /// The `pre-rollout` webhooks passed for this rollout (the first analysed tick is over).
    #[serde(default, skip_serializing_if = "is_false")]
    pub pre_rollout_passed: bool,
    /// When the `rollout`/`rollback` webhooks were last asked (once per interval).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hooks_checked_at: Option<Timestamp>,
    /// When the canary may be scaled down (blue-green scale-down delay).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_down_at: Option<Timestamp>,
    /// Human-readable detail of the phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Conditions (`Progressing`, `Paused`, `Promoted`, `Aborted` ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The last promotions and aborts, newest last (at most [`HISTORY_LIMIT`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<HistoryEntry>,
}

/// How many entries `status.history` keeps.
pub const HISTORY_LIMIT: usize = 10;

/// The phase of a rollout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, JsonSchema)]
pub enum Phase {
    /// Seen, primary set up, no rollout yet.
    #[default]
    Initialized,
    /// A new revision waits for its `confirm-rollout` webhooks (Flagger's `Waiting`).
    Waiting,
    /// A new revision is being rolled out (steps, analysis).
    Progressing,
    /// Waiting: a pause step, an inconclusive analysis, or a blue-green preview.
    Paused,
    /// All steps done; waiting for the primary to be ready with the new template, or
    /// for a manual promote.
    WaitingPromotion,
    /// The pod template was copied to the primary; traffic returns to it.
    Promoting,
    /// Traffic is on the primary; the canary is being scaled down.
    Finalising,
    /// The revision runs on the primary.
    Succeeded,
    /// The rollout was aborted; traffic is on the primary.
    Failed,
}

impl Phase {
    /// The phase name as written in status.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Initialized => "Initialized",
            Phase::Waiting => "Waiting",
            Phase::Progressing => "Progressing",
            Phase::Paused => "Paused",
            Phase::WaitingPromotion => "WaitingPromotion",
            Phase::Promoting => "Promoting",
            Phase::Finalising => "Finalising",
            Phase::Succeeded => "Succeeded",
            Phase::Failed => "Failed",
        }
    }

    /// A rollout is under way (not idle, not finished).
    pub fn is_active(self) -> bool {
        !matches!(
            self,
            Phase::Initialized | Phase::Waiting | Phase::Succeeded | Phase::Failed
        )
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a rollout is paused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum PauseReason {
    /// A `pause` step (timed or until promoted).
    CanaryPauseStep,
    /// An analysis ended Inconclusive; waiting for a manual promote.
    InconclusiveAnalysis,
    /// Blue-green: the preview waits for a promote (or `autoPromotionSeconds`).
    BlueGreenPause,
}

/// An analysis run created for the current revision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisRunRef {
    /// Name of the `AnalysisRun`.
    pub name: String,
    /// What the run is for.
    pub kind: AnalysisKind,
    /// The step it belongs to (inline step analysis).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_index: Option<u32>,
    /// Last phase seen.
    #[serde(default)]
    pub phase: RunPhase,
    /// A manual promote resumed the rollout past this run's Inconclusive verdict, so
    /// it no longer pauses the rollout.
    #[serde(default, skip_serializing_if = "is_false")]
    pub resumed: bool,
}

/// What an analysis run is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum AnalysisKind {
    /// An `analysis` step; blocks the step.
    Step,
    /// Runs beside the steps from `startingStep` until promotion.
    Background,
    /// Blue-green: on the preview before the switch.
    PrePromotion,
    /// Blue-green: after the switch.
    PostPromotion,
    /// One of Flagger's checks (shorthand `metrics`): every metric measured once at the
    /// end of an interval; a failure counts towards `threshold`.
    Check,
}

impl AnalysisKind {
    /// The suffix used in run names.
    pub fn as_str(self) -> &'static str {
        match self {
            AnalysisKind::Step => "step",
            AnalysisKind::Background => "background",
            AnalysisKind::PrePromotion => "pre",
            AnalysisKind::PostPromotion => "post",
            AnalysisKind::Check => "check",
        }
    }
}

/// The phase of an analysis run as the strategy sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, JsonSchema)]
pub enum RunPhase {
    /// Created, not measured yet.
    #[default]
    Pending,
    /// Measuring.
    Running,
    /// Passed.
    Successful,
    /// Failed: abort.
    Failed,
    /// Could not measure: abort.
    Error,
    /// Neither passed nor failed: pause until promoted.
    Inconclusive,
}

impl RunPhase {
    /// The run has finished.
    pub fn is_completed(self) -> bool {
        !matches!(self, RunPhase::Pending | RunPhase::Running)
    }
}

/// A status condition, Kubernetes style.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// Condition type (one of the `CONDITION_*` constants).
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: ConditionStatus,
    /// Machine-readable reason (an event reason).
    pub reason: String,
    /// Human-readable message.
    #[serde(default)]
    pub message: String,
    /// When the status last changed.
    pub last_transition_time: Timestamp,
}

/// Status of a condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ConditionStatus {
    /// It holds.
    True,
    /// It does not hold.
    False,
    /// Not known.
    Unknown,
}

/// One finished rollout, kept in `status.history`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HistoryEntry {
    /// The revision.
    pub revision: String,
    /// `Succeeded` or `Failed`.
    pub phase: Phase,
    /// When it finished.
    pub finished_at: Timestamp,
    /// Why it ended so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// YAML writes enum variants as one-key maps, as Kubernetes JSON does.
    fn parse(yaml: &str) -> Result<RolloutSpec, serde_yaml::Error> {
        serde_yaml::with::singleton_map_recursive::deserialize(serde_yaml::Deserializer::from_str(
            yaml,
        ))
    }

    #[test]
    fn argo_style_steps_and_flagger_shorthand_deserialise() {
        let yaml = r#"
targetRef: {name: podinfo}
service: {port: 9898}
trafficRouting: {gatewayAPI: {httpRoute: {name: podinfo, namespace: web}}}
strategy:
  canary:
    steps:
      - setWeight: 10
      - pause: {duration: 1m}
      - analysis: {templates: [{templateName: success-rate}], args: [{name: svc, value: podinfo}]}
      - pause: {}
    analysis: {templates: [{templateName: latency}], startingStep: 1}
"#;
        let spec = parse(yaml).unwrap();
        let Strategy::Canary(c) = &spec.strategy else {
            panic!("not canary")
        };
        assert_eq!(c.steps.len(), 4);
        assert_eq!(c.steps[0], CanaryStep::SetWeight(Weight::new(10).unwrap()));
        assert_eq!(spec.progress_deadline(), 600);
        assert_eq!(spec.target_ref.kind, TargetKind::Deployment);

        let bad = "targetRef: {name: a}\nservice: {port: 1}\nstrategy: {canary: {steps: [{setWeight: 101}]}}\n";
        let err = parse(bad).unwrap_err().to_string();
        assert!(err.contains("outside 0..=100"), "{err}");
    }

    #[test]
    fn status_round_trips_and_schema_generates() {
        let status = RolloutStatus {
            phase: Phase::Progressing,
            step_started_at: Some(Timestamp::from_unix(60)),
            ..RolloutStatus::default()
        };
        let json = serde_json::to_value(&status).unwrap();
        assert_eq!(json["stepStartedAt"], "1970-01-01T00:01:00Z");
        assert_eq!(json["phase"], "Progressing");
        let back: RolloutStatus = serde_json::from_value(json).unwrap();
        assert_eq!(back, status);
        let schema = serde_json::to_value(schemars::schema_for!(RolloutSpec)).unwrap();
        assert!(schema["properties"]["strategy"].is_object(), "{schema}");
    }
}
