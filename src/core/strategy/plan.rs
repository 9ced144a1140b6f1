//! Compiling a [`RolloutSpec`] into the [`Plan`] the state machine follows: one list of
//! steps for both strategies, Flagger's shorthand expanded with Flagger's weight
//! semantics, and how promotion ends.

use serde::Serialize;

use super::spec::{
    AnalysisKind, AnalysisRef, BlueGreenStrategy, CanaryAnalysis, CanaryStep, CanaryStrategy,
    FlaggerMetric, PauseReason, RolloutSpec, Strategy, Weight,
};
use super::time::GoDuration;

/// Flagger's built-in metric names, usable without a `templateRef`.
pub const BUILTIN_METRICS: &[&str] = &["request-success-rate", "request-duration"];

/// Flagger's default and minimum check interval, in seconds.
const DEFAULT_INTERVAL_SECS: u64 = 60;
const MIN_INTERVAL_SECS: u64 = 10;

/// Why a spec cannot be compiled. Each variant names the offending field by its path
/// under `spec` (e.g. `strategy.canary.steps[2].analysis.templates`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    /// A required name (targetRef, template, arg, route) is empty.
    #[error("{field}: must not be empty")]
    Empty {
        /// Path of the field.
        field: String,
    },
    /// `steps` and Flagger's shorthand, or background and shorthand fields, are mixed.
    #[error("{field}: {message}")]
    Conflict {
        /// Path of the field.
        field: String,
        /// What conflicts with what.
        message: String,
    },
    /// A value is out of range or inconsistent (e.g. `startingStep` past the last step,
    /// `stepWeights` not increasing).
    #[error("{field}: {message}")]
    Invalid {
        /// Path of the field.
        field: String,
        /// What is wrong.
        message: String,
    },
}

impl SpecError {
    /// The path of the offending field under `spec`.
    pub fn field(&self) -> &str {
        match self {
            SpecError::Empty { field }
            | SpecError::Conflict { field, .. }
            | SpecError::Invalid { field, .. } => field,
        }
    }
}

/// Where an analysis run's metrics come from.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(
    rename_all = "camelCase",
    rename_all_fields = "camelCase",
    tag = "type"
)]
pub enum AnalysisSource {
    /// Argo Rollouts style: templates with args.
    Templates(AnalysisRef),
    /// Flagger's shorthand: these checks at the end of every `interval` (one short
    /// `AnalysisRun` per check); `threshold` failed checks over the whole rollout abort
    /// it (counted in the status, see the state machine).
    FlaggerChecks {
        /// Seconds between checks (Flagger's clamped `interval`).
        interval_secs: u64,
        /// Failed checks that fail the run (at least 1).
        threshold: u32,
        /// The checks.
        metrics: Vec<FlaggerMetric>,
    },
}

/// One step of a compiled plan.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(
    rename_all = "camelCase",
    rename_all_fields = "camelCase",
    tag = "type"
)]
pub enum PlanStep {
    /// Set the canary's weight (the primary gets the rest).
    SetWeight {
        /// Canary weight.
        weight: Weight,
    },
    /// Wait for `duration`, or until promoted.
    Pause {
        /// How long; `None` means until a manual promote.
        duration: Option<GoDuration>,
        /// What kind of pause it is.
        reason: PauseReason,
    },
    /// Run an analysis and wait for it: Successful advances, Failed/Error aborts,
    /// Inconclusive pauses until promoted.
    Analysis {
        /// Step, pre- or post-promotion.
        kind: AnalysisKind,
        /// What it measures.
        source: AnalysisSource,
    },
}

/// Analysis that runs beside the steps.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BackgroundAnalysis {
    /// Index of the first step during which it runs.
    pub starting_step: u32,
    /// What it measures.
    pub source: AnalysisSource,
}

/// How promotion ends once every step is done.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Promotion {
    /// Flagger's `stepWeightPromotion`: traffic returns to the primary in steps of this
    /// size (one per tick); `None` returns it at once.
    pub step_weight_promotion: Option<Weight>,
    /// Seconds between all traffic being on the primary and the canary scaled to zero.
    pub scale_down_delay_secs: u32,
    /// Seconds between ticks while promoting (Flagger's interval; 0 → as soon as ready).
    pub interval_secs: u64,
}

/// Which strategy a plan came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum StrategyKind {
    /// Canary.
    Canary,
    /// Blue-green.
    BlueGreen,
}

/// What a rollout of a new revision will do, step by step.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    /// Canary or blue-green.
    pub strategy: StrategyKind,
    /// Promote as soon as the canary is ready (`skipAnalysis`).
    pub skip_analysis: bool,
    /// The steps in order.
    pub steps: Vec<PlanStep>,
    /// Analysis beside the steps.
    pub background: Option<BackgroundAnalysis>,
    /// How promotion ends.
    pub promotion: Promotion,
    /// Progress deadline in seconds.
    pub progress_deadline_secs: u32,
}

impl Plan {
    /// The canary weight after each step (the weight in force while the step runs).
    pub fn weights(&self) -> Vec<Weight> {
        let mut w = Weight::ZERO;
        self.steps
            .iter()
            .map(|s| {
                if let PlanStep::SetWeight { weight } = s {
                    w = *weight;
                }
                w
            })
            .collect()
    }

    /// The highest canary weight the steps reach (before promotion).
    pub fn final_weight(&self) -> Weight {
        self.weights().into_iter().max().unwrap_or(Weight::ZERO)
    }

    /// The canary weights while promoting, after the steps: each tick of
    /// `stepWeightPromotion` down to 0.
    pub fn promotion_weights(&self) -> Vec<Weight> {
        let start = self.weights().last().copied().unwrap_or(Weight::ZERO).get();
        promotion_sequence(start, self.promotion.step_weight_promotion)
    }

    /// Seconds the steps take at least (timed pauses; analyses and untimed pauses not
    /// counted).
    pub fn minimum_secs(&self) -> u64 {
        self.steps
            .iter()
            .map(|s| match s {
                PlanStep::Pause {
                    duration: Some(d), ..
                } => d.as_secs_ceil(),
                _ => 0,
            })
            .sum()
    }
}

/// Canary weights while promoting from `start`: down by `step` per tick, or straight to 0.
pub fn promotion_sequence(start: u8, step: Option<Weight>) -> Vec<Weight> {
    match step.map(Weight::get).filter(|s| *s > 0) {
        None => vec![Weight::ZERO],
        Some(step) => {
            let mut out = Vec::new();
            let mut w = start;
            while w > 0 {
                w = w.saturating_sub(step);
                out.push(Weight::new(w).unwrap_or(Weight::ZERO));
            }
            if out.is_empty() {
                out.push(Weight::ZERO);
            }
            out
        }
    }
}

/// Flagger's canary weight sequence (`nextStepWeight` / `runCanary`): the weight after
/// each analysed tick, ending with the first weight at or above the maximum, after which
/// the canary is promoted.
///
/// - `stepWeight > 0`: add the step until `maxWeight` (default 100) is reached; each
///   weight is capped at 100, not at `maxWeight`, so 20/50 gives 20, 40, 60.
/// - else `stepWeights`: the listed weights, each step capped at `100 - current`, with
///   `maxWeight = min(100, last)`; a current weight not in the list jumps to 100.
/// - neither: empty (Flagger would never move the weight; [`compile`] rejects this).
pub fn flagger_weights(
    step_weight: Option<Weight>,
    step_weights: &[Weight],
    max_weight: Option<Weight>,
) -> Vec<Weight> {
    let mut out = Vec::new();
    let step = step_weight.map(Weight::get).unwrap_or(0);
    if step > 0 {
        let max = max_weight
            .map(Weight::get)
            .filter(|m| *m > 0)
            .unwrap_or(100);
        let mut w: u8 = 0;
        while w < max {
            w = w.saturating_add(step).min(100);
            out.push(Weight(w));
        }
    } else if let Some(last) = step_weights.last() {
        let max = last.get().min(100);
        let mut w: u8 = 0;
        while w < max {
            let next = if w == 0 {
                step_weights[0].get()
            } else {
                match step_weights.iter().position(|s| s.get() == w) {
                    Some(i) if i + 1 < step_weights.len() => step_weights[i + 1].get(),
                    _ => 100,
                }
            };
            let delta = next.saturating_sub(w).min(100 - w);
            if delta == 0 {
                // Non-increasing lists are rejected by `compile`; never loop forever.
                break;
            }
            w += delta;
            out.push(Weight(w));
        }
    }
    out
}

/// Compile a spec into its plan.
///
/// # Errors
/// [`SpecError`] naming the field when names are empty, forms are mixed (steps with
/// Flagger's shorthand, background with shorthand), `startingStep` is past the steps,
/// `stepWeights` are not strictly increasing, the shorthand has no weights, or a metric
/// is neither built-in nor backed by a template.
pub fn compile(spec: &RolloutSpec) -> Result<Plan, SpecError> {
    if spec.target_ref.name.trim().is_empty() {
        return Err(SpecError::Empty {
            field: "targetRef.name".into(),
        });
    }
    let route_name = spec
        .traffic_routing
        .as_ref()
        .and_then(|t| t.gateway_api.as_ref())
        .map(|gw| gw.http_route.name.trim());
    if route_name.is_some_and(str::is_empty) {
        return Err(SpecError::Empty {
            field: "trafficRouting.gatewayAPI.httpRoute.name".into(),
        });
    }
    let mut plan = match &spec.strategy {
        Strategy::Canary(c) => compile_canary(c)?,
        Strategy::BlueGreen(b) => compile_blue_green(b)?,
    };
    plan.skip_analysis = spec.skip_analysis;
    plan.progress_deadline_secs = spec.progress_deadline();
    Ok(plan)
}

fn check_ref(r: &AnalysisRef, field: &str) -> Result<(), SpecError> {
    if r.templates.is_empty() {
        return Err(SpecError::Empty {
            field: format!("{field}.templates"),
        });
    }
    for (i, t) in r.templates.iter().enumerate() {
        if t.template_name.trim().is_empty() {
            return Err(SpecError::Empty {
                field: format!("{field}.templates[{i}].templateName"),
            });
        }
    }
    for (i, a) in r.args.iter().enumerate() {
        if a.name.trim().is_empty() {
            return Err(SpecError::Empty {
                field: format!("{field}.args[{i}].name"),
            });
        }
    }
    Ok(())
}

fn compile_canary(c: &CanaryStrategy) -> Result<Plan, SpecError> {
    let base = "strategy.canary";
    let mut plan = Plan {
        strategy: StrategyKind::Canary,
        skip_analysis: false,
        steps: Vec::new(),
        background: None,
        promotion: Promotion {
            step_weight_promotion: None,
            scale_down_delay_secs: 0,
            interval_secs: 0,
        },
        progress_deadline_secs: 0,
    };
    let analysis = c.analysis.as_ref();
    if let Some(a) = analysis.filter(|a| a.is_shorthand()) {
        if a.is_background() {
            return Err(SpecError::Conflict {
                field: format!("{base}.analysis"),
                message: "templates/args/startingStep (background analysis) cannot be mixed with Flagger's shorthand (stepWeight, stepWeights, maxWeight, interval, threshold, metrics)".into(),
            });
        }
        if !c.steps.is_empty() {
            return Err(SpecError::Conflict {
                field: format!("{base}.steps"),
                message: "give either steps or Flagger's shorthand in analysis (stepWeight/stepWeights), not both".into(),
            });
        }
        return compile_shorthand(a, plan);
    }
    for (i, step) in c.steps.iter().enumerate() {
        let field = format!("{base}.steps[{i}]");
        plan.steps.push(match step {
            CanaryStep::SetWeight(w) => PlanStep::SetWeight { weight: *w },
            CanaryStep::Pause(p) => PlanStep::Pause {
                duration: p.duration.clone(),
                reason: PauseReason::CanaryPauseStep,
            },
            CanaryStep::Analysis(r) => {
                check_ref(r, &format!("{field}.analysis"))?;
                PlanStep::Analysis {
                    kind: AnalysisKind::Step,
                    source: AnalysisSource::Templates(r.clone()),
                }
            }
        });
    }
    if let Some(a) = analysis.filter(|a| a.is_background()) {
        let field = format!("{base}.analysis");
        let r = AnalysisRef {
            templates: a.templates.clone(),
            args: a.args.clone(),
        };
        check_ref(&r, &field)?;
        let starting_step = a.starting_step.unwrap_or(0);
        if starting_step as usize > plan.steps.len() {
            return Err(SpecError::Invalid {
                field: format!("{field}.startingStep"),
                message: format!(
                    "step {starting_step} does not exist: the canary has {} steps",
                    plan.steps.len()
                ),
            });
        }
        plan.background = Some(BackgroundAnalysis {
            starting_step,
            source: AnalysisSource::Templates(r),
        });
    }
    Ok(plan)
}

/// Flagger's `interval`: default 60s, at least 10s.
fn flagger_interval(a: &CanaryAnalysis) -> u64 {
    a.interval
        .as_ref()
        .map(GoDuration::as_secs_ceil)
        .unwrap_or(DEFAULT_INTERVAL_SECS)
        .max(MIN_INTERVAL_SECS)
}

fn compile_shorthand(a: &CanaryAnalysis, mut plan: Plan) -> Result<Plan, SpecError> {
    let field = "strategy.canary.analysis";
    let uses_step_weight = a.step_weight.is_some_and(|w| w.get() > 0);
    if !uses_step_weight {
        if a.step_weights.is_empty() {
            return Err(SpecError::Invalid {
                field: format!("{field}.stepWeight"),
                message: "Flagger's shorthand needs stepWeight > 0 or stepWeights, otherwise the weight never moves".into(),
            });
        }
        for (i, pair) in a.step_weights.windows(2).enumerate() {
            if pair[1] <= pair[0] {
                return Err(SpecError::Invalid {
                    field: format!("{field}.stepWeights[{}]", i + 1),
                    message: format!("stepWeights must increase: {} follows {}", pair[1], pair[0]),
                });
            }
        }
        if a.step_weights[0].get() == 0 {
            return Err(SpecError::Invalid {
                field: format!("{field}.stepWeights[0]"),
                message: "the first step weight must be above 0".into(),
            });
        }
    }
    for (i, m) in a.metrics.iter().enumerate() {
        if m.name.trim().is_empty() {
            return Err(SpecError::Empty {
                field: format!("{field}.metrics[{i}].name"),
            });
        }
        if m.template_ref.is_none() && !BUILTIN_METRICS.contains(&m.name.as_str()) {
            return Err(SpecError::Invalid {
                field: format!("{field}.metrics[{i}].templateRef"),
                message: format!(
                    "metric {:?} is not built-in ({}) and has no templateRef",
                    m.name,
                    BUILTIN_METRICS.join(", ")
                ),
            });
        }
    }
    let interval = flagger_interval(a);
    let interval_d = GoDuration::from_secs(interval);
    for w in flagger_weights(a.step_weight, &a.step_weights, a.max_weight) {
        plan.steps.push(PlanStep::SetWeight { weight: w });
        plan.steps.push(PlanStep::Pause {
            duration: Some(interval_d.clone()),
            reason: PauseReason::CanaryPauseStep,
        });
    }
    if !a.metrics.is_empty() {
        plan.background = Some(BackgroundAnalysis {
            starting_step: 0,
            source: AnalysisSource::FlaggerChecks {
                interval_secs: interval,
                threshold: u32::try_from(a.threshold.unwrap_or(1).max(1)).unwrap_or(1),
                metrics: a.metrics.clone(),
            },
        });
    }
    plan.promotion.step_weight_promotion = a.step_weight_promotion.filter(|w| w.get() > 0);
    plan.promotion.interval_secs = interval;
    Ok(plan)
}

fn compile_blue_green(b: &BlueGreenStrategy) -> Result<Plan, SpecError> {
    let base = "strategy.blueGreen";
    for (name, v) in [
        ("activeService", &b.active_service),
        ("previewService", &b.preview_service),
    ] {
        if v.as_deref().is_some_and(|s| s.trim().is_empty()) {
            return Err(SpecError::Empty {
                field: format!("{base}.{name}"),
            });
        }
    }
    if b.active_service.is_some() && b.active_service == b.preview_service {
        return Err(SpecError::Conflict {
            field: format!("{base}.previewService"),
            message: "the preview Service must differ from the active Service".into(),
        });
    }
    let mut steps = Vec::new();
    if let Some(r) = &b.pre_promotion_analysis {
        check_ref(r, &format!("{base}.prePromotionAnalysis"))?;
        steps.push(PlanStep::Analysis {
            kind: AnalysisKind::PrePromotion,
            source: AnalysisSource::Templates(r.clone()),
        });
    }
    if !b.auto_promotion() {
        steps.push(PlanStep::Pause {
            duration: None,
            reason: PauseReason::BlueGreenPause,
        });
    } else if let Some(secs) = b.auto_promotion_seconds.filter(|s| *s > 0) {
        steps.push(PlanStep::Pause {
            duration: Some(GoDuration::from_secs(u64::from(secs))),
            reason: PauseReason::BlueGreenPause,
        });
    }
    steps.push(PlanStep::SetWeight {
        weight: Weight::FULL,
    });
    if let Some(r) = &b.post_promotion_analysis {
        check_ref(r, &format!("{base}.postPromotionAnalysis"))?;
        steps.push(PlanStep::Analysis {
            kind: AnalysisKind::PostPromotion,
            source: AnalysisSource::Templates(r.clone()),
        });
    }
    Ok(Plan {
        strategy: StrategyKind::BlueGreen,
        skip_analysis: false,
        steps,
        background: None,
        promotion: Promotion {
            step_weight_promotion: None,
            scale_down_delay_secs: b.scale_down_delay(),
            interval_secs: 0,
        },
        progress_deadline_secs: 0,
    })
}
