//! Preparing a run (argument resolution and Argo's validation) and the pure step API that
//! drives it: [`due_metrics`], [`evaluate_measurement`], [`record_measurement`], [`assess`].
//!
//! A driver loops: take the metrics due `now`, measure them (concurrently), record each
//! measurement, assess, and wait until the returned requeue time. Nothing here reads a
//! clock or does I/O.
//!
//! Asynchronous providers (Argo's `job`) take a measurement over several steps: the
//! provider's first answer is a measurement still in progress (phase Running, no
//! `finishedAt`, optionally a `resumeAt`), recorded like any other but counted only once it
//! completes. Each later step, [`in_flight_metrics`] says which of those to resume (ask the
//! provider whether it finished) or, once the run is terminating, to terminate (stop it,
//! then [`terminated_measurement`]); recording the provider's answer replaces the
//! in-progress measurement. A metric with a measurement in progress is never due for a new
//! one.

use chrono::TimeDelta;

use super::args::{args_without_secrets, resolve_metric_args};
use super::condition::{Condition, ConditionEnv};
use super::duration::parse_go_duration;
use super::model::{AnalysisRunSpec, Metric, TtlStrategy};
use super::status::{AnalysisRunStatus, Measurement, MetricResult, RunSummary, Time};
use super::value::{AnalysisPhase, Observation, Value};

/// Measurements kept per metric unless `measurementRetention` says otherwise.
pub const DEFAULT_MEASUREMENT_HISTORY_LIMIT: usize = 10;

/// Argo's retry delay after an Error measurement, whatever the metric's interval.
pub const DEFAULT_ERROR_RETRY_INTERVAL: TimeDelta = TimeDelta::seconds(10);

/// Default `consecutiveErrorLimit`.
pub const DEFAULT_CONSECUTIVE_ERROR_LIMIT: i64 = 4;

/// Longest wait before an in-progress measurement without `resumeAt` is resumed again.
/// Argo resumes such measurements (its Job provider's) only when its Job informer fires;
/// rollgate's controller also watches its Jobs, and polls at this pace in case an event is
/// lost.
pub const IN_FLIGHT_POLL_INTERVAL: TimeDelta = TimeDelta::seconds(10);

/// Why a run spec cannot run; the run ends Error with this message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RunSpecError {
    /// An `{{args.x}}` tag names no arg, or an arg has no value.
    #[error("Unable to resolve metric arguments: {0}")]
    Args(String),
    /// Argo's `ValidateMetrics`, dry-run/retention rules, or a condition that does not parse.
    #[error("Analysis spec invalid: {message}")]
    Invalid {
        /// Argo's message (`metrics[0]: multiple providers specified`).
        message: String,
        /// Index of the metric at fault, when one is.
        metric: Option<usize>,
        /// The field at fault (`interval`, `successCondition`), when known.
        field: Option<&'static str>,
    },
}

impl RunSpecError {
    fn invalid(message: String, metric: Option<usize>, field: Option<&'static str>) -> Self {
        RunSpecError::Invalid {
            message,
            metric,
            field,
        }
    }
}

/// A metric with its durations, limits and conditions read once.
#[derive(Debug, Clone)]
pub struct PreparedMetric {
    /// The metric with args substituted (secrets as a placeholder).
    pub metric: Metric,
    /// Matched by a dry-run rule.
    pub dry_run: bool,
    /// Measurements kept.
    pub retention_limit: usize,
    /// Delay between measurements.
    pub interval: Option<TimeDelta>,
    /// Delay before the first measurement.
    pub initial_delay: Option<TimeDelta>,
    /// Measurements wanted; `None` = until the run terminates.
    pub effective_count: Option<i64>,
    /// `failureLimit` (default 0, -1 disables).
    pub failure_limit: i64,
    /// `inconclusiveLimit` (default 0).
    pub inconclusive_limit: i64,
    /// `consecutiveErrorLimit` (default 4).
    pub consecutive_error_limit: i64,
    /// `consecutiveSuccessLimit` (default 0: off).
    pub consecutive_success_limit: i64,
    /// Compiled `successCondition`.
    pub success: Option<Condition>,
    /// Compiled `failureCondition`.
    pub failure: Option<Condition>,
}

fn non_empty(s: Option<&String>) -> Option<&str> {
    s.map(String::as_str).filter(|s| !s.is_empty())
}

impl PreparedMetric {
    /// Reads a metric's numbers, durations and conditions without Argo's validation (for
    /// assessing a metric on its own). Unparsable durations count as unset, as in Argo's
    /// assessment.
    ///
    /// # Errors
    /// `(field, message)` when a condition does not parse.
    pub fn new(metric: &Metric) -> Result<Self, (&'static str, String)> {
        let int = |v: &Option<super::model::IntOrString>, default: i64| {
            v.as_ref()
                .map_or(default, super::model::IntOrString::int_value)
        };
        let dur =
            |v: &Option<String>| non_empty(v.as_ref()).and_then(|s| parse_go_duration(s).ok());
        let compile = |field: &'static str, v: &Option<String>| match non_empty(v.as_ref()) {
            None => Ok(None),
            Some(src) => Condition::compile(src)
                .map(Some)
                .map_err(|e| (field, format!("invalid {field} \"{src}\": {e}"))),
        };
        let interval = dur(&metric.interval);
        let count = int(&metric.count, 0);
        let effective_count = if count == 0 {
            if non_empty(metric.interval.as_ref()).is_none() {
                Some(1)
            } else {
                None
            }
        } else {
            Some(count)
        };
        Ok(Self {
            metric: metric.clone(),
            dry_run: false,
            retention_limit: DEFAULT_MEASUREMENT_HISTORY_LIMIT,
            interval,
            initial_delay: dur(&metric.initial_delay),
            effective_count,
            failure_limit: int(&metric.failure_limit, 0),
            inconclusive_limit: int(&metric.inconclusive_limit, 0),
            consecutive_error_limit: int(
                &metric.consecutive_error_limit,
                DEFAULT_CONSECUTIVE_ERROR_LIMIT,
            ),
            consecutive_success_limit: int(&metric.consecutive_success_limit, 0),
            success: compile("successCondition", &metric.success_condition)?,
            failure: compile("failureCondition", &metric.failure_condition)?,
        })
    }
}

/// A run ready to step: args resolved (secrets as placeholder), validated, rules applied.
#[derive(Debug, Clone)]
pub struct PreparedRun {
    /// The metrics, in spec order.
    pub metrics: Vec<PreparedMetric>,
    /// `spec.terminate`.
    pub terminate: bool,
    /// Delay before retrying after an Error measurement (Argo: 10 s).
    pub error_retry_interval: TimeDelta,
}

/// Argo's `ValidateMetric` for one metric (messages without the `metrics[i]: ` prefix),
/// with the field at fault.
///
/// # Errors
/// The first rule the metric breaks.
pub fn validate_metric(metric: &Metric) -> Result<(), (Option<&'static str>, String)> {
    let int = |v: &Option<super::model::IntOrString>| {
        v.as_ref().map_or(0, super::model::IntOrString::int_value)
    };
    let count = int(&metric.count);
    let failure_limit = int(&metric.failure_limit);
    let csl = int(&metric.consecutive_success_limit);
    let inconclusive_limit = int(&metric.inconclusive_limit);
    let fail = |field: &'static str, m: String| Err((Some(field), m));
    if csl < 0 {
        return fail(
            "consecutiveSuccessLimit",
            "consecutiveSuccessLimit must be >= 0".into(),
        );
    }
    if failure_limit < -1 {
        return fail(
            "failureLimit",
            "failureLimit must be >= 0, or -1 to be disabled".into(),
        );
    }
    if csl == 0 && failure_limit == -1 {
        return fail(
            "failureLimit",
            "failureLimit and consecutiveSuccessLimit cannot both be disabled".into(),
        );
    }
    if inconclusive_limit < 0 {
        return fail("inconclusiveLimit", "inconclusiveLimit must be >= 0".into());
    }
    if metric
        .consecutive_error_limit
        .as_ref()
        .is_some_and(|v| v.int_value() < 0)
    {
        return fail(
            "consecutiveErrorLimit",
            "consecutiveErrorLimit must be >= 0".into(),
        );
    }
    if count > 0 {
        if failure_limit >= 0 {
            if count < failure_limit + csl {
                return fail(
                    "count",
                    format!(
                        "count ({count}) must be >= failureLimit + consecutiveSuccessLimit ({failure_limit} + {csl}) if both >= 0"
                    ),
                );
            }
        } else if count < csl {
            return fail("count", "count must be >= consecutiveSuccessLimit".into());
        }
        if count < inconclusive_limit {
            return fail("count", "count must be >= inconclusiveLimit".into());
        }
    }
    let interval = non_empty(metric.interval.as_ref());
    if count > 1 && interval.is_none() {
        return fail(
            "interval",
            "interval must be specified when count > 1".into(),
        );
    }
    if let Some(i) = interval
        && let Err(e) = parse_go_duration(i)
    {
        return fail("interval", format!("invalid interval string: {e}"));
    }
    if let Some(d) = non_empty(metric.initial_delay.as_ref())
        && let Err(e) = parse_go_duration(d)
    {
        return fail("initialDelay", format!("invalid startDelay string: {e}"));
    }
    let providers = metric.provider.names();
    if providers.is_empty() {
        return fail("provider", "no provider specified".into());
    }
    if providers.len() > 1 {
        return fail("provider", "multiple providers specified".into());
    }
    Ok(())
}

/// Argo's `ValidateMetrics`: at least one metric, unique names, each metric valid.
///
/// # Errors
/// The first failure, worded as Argo words it (`metrics[1]: duplicate name 'x'`), with the
/// metric index and field.
pub fn validate_metrics(
    metrics: &[Metric],
) -> Result<(), (String, Option<usize>, Option<&'static str>)> {
    if metrics.is_empty() {
        return Err(("no metrics specified".into(), None, None));
    }
    let mut seen = std::collections::HashSet::new();
    for (i, m) in metrics.iter().enumerate() {
        if !seen.insert(m.name.as_str()) {
            return Err((
                format!("metrics[{i}]: duplicate name '{}'", m.name),
                Some(i),
                Some("name"),
            ));
        }
        validate_metric(m)
            .map_err(|(field, msg)| (format!("metrics[{i}]: {msg}"), Some(i), field))?;
    }
    Ok(())
}

/// Unanchored RE2-style match; an invalid pattern (a bare `*`) matches nothing, as in Argo.
fn rule_matches(pattern: &str, name: &str) -> bool {
    regex::Regex::new(pattern).is_ok_and(|re| re.is_match(name))
}

/// Resolves args (secrets as placeholder), validates, applies dry-run and retention
/// rules, and compiles the conditions: everything Argo checks before the first
/// measurement, plus the conditions' syntax.
///
/// # Errors
/// [`RunSpecError`], whose text is the run's message.
pub fn prepare(spec: &AnalysisRunSpec) -> Result<PreparedRun, RunSpecError> {
    let args = args_without_secrets(&spec.args);
    let resolved = spec
        .metrics
        .iter()
        .map(|m| resolve_metric_args(m, &args))
        .collect::<Result<Vec<_>, _>>()
        .map_err(RunSpecError::Args)?;
    validate_metrics(&resolved).map_err(|(m, i, f)| RunSpecError::invalid(m, i, f))?;
    let mut prepared = Vec::with_capacity(resolved.len());
    for (i, m) in resolved.iter().enumerate() {
        let p = PreparedMetric::new(m).map_err(|(field, msg)| {
            RunSpecError::invalid(format!("metrics[{i}]: {msg}"), Some(i), Some(field))
        })?;
        prepared.push(p);
    }
    for (i, rule) in spec.dry_run.iter().enumerate() {
        let mut matched = false;
        for p in &mut prepared {
            if rule_matches(&rule.metric_name, &p.metric.name) {
                p.dry_run = true;
                matched = true;
            }
        }
        if !matched {
            return Err(RunSpecError::invalid(
                format!("dryRun[{i}]: Rule didn't match any metric name(s)"),
                None,
                Some("dryRun"),
            ));
        }
    }
    for (i, rule) in spec.measurement_retention.iter().enumerate() {
        let mut matched = false;
        for p in &mut prepared {
            if rule_matches(&rule.metric_name, &p.metric.name) {
                if let Ok(limit) = usize::try_from(rule.limit)
                    && limit > 0
                {
                    p.retention_limit = limit;
                } else {
                    p.retention_limit = DEFAULT_MEASUREMENT_HISTORY_LIMIT;
                }
                matched = true;
            }
        }
        if !matched {
            return Err(RunSpecError::invalid(
                format!("measurementRetention[{i}]: Rule didn't match any metric name(s)"),
                None,
                Some("measurementRetention"),
            ));
        }
    }
    Ok(PreparedRun {
        metrics: prepared,
        terminate: spec.terminate,
        error_retry_interval: DEFAULT_ERROR_RETRY_INTERVAL,
    })
}

/// Ends a run that cannot run: phase Error with the spec error as message.
pub fn fail_run(status: &mut AnalysisRunStatus, error: &RunSpecError) {
    status.phase = AnalysisPhase::Error;
    status.message = error.to_string();
}

/// Whether the run is terminating: `spec.terminate`, or a non-dry-run metric already
/// Failed, Error or Inconclusive.
#[must_use]
pub fn is_terminating(terminate: bool, status: &AnalysisRunStatus) -> bool {
    terminate
        || status.metric_results.iter().any(|r| {
            !r.dry_run
                && matches!(
                    r.phase,
                    AnalysisPhase::Failed | AnalysisPhase::Error | AnalysisPhase::Inconclusive
                )
        })
}

/// Indexes (into `run.metrics`) of the metrics to measure `now` (Argo's
/// `generateMetricTasks`): never while terminating; the first measurement once
/// `initialDelay` has passed since `startedAt`; later ones when
/// `now > last.finishedAt + interval` (or the error retry interval after an Error), until
/// the effective count is reached.
#[must_use]
pub fn due_metrics(run: &PreparedRun, status: &AnalysisRunStatus, now: Time) -> Vec<usize> {
    if status.phase.is_completed() || is_terminating(run.terminate, status) {
        return Vec::new();
    }
    let mut due = Vec::new();
    for (i, m) in run.metrics.iter().enumerate() {
        let result = status.result(&m.metric.name);
        if result.is_some_and(|r| r.phase.is_completed()) {
            continue;
        }
        let last = result.and_then(|r| r.measurements.last());
        let Some(last) = last else {
            if let Some(delay) = m.initial_delay {
                match status.started_at {
                    Some(started) if started + delay <= now => {}
                    _ => continue,
                }
            }
            due.push(i);
            continue;
        };
        let Some(finished) = last.finished_at else {
            continue;
        };
        if let (Some(count), Some(r)) = (m.effective_count, result)
            && i64::from(r.count) >= count
        {
            continue;
        }
        if now > finished + wait_after(run, m, last) {
            due.push(i);
        }
    }
    due
}

/// What to do with a measurement that is still in progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InFlightAction {
    /// Ask the provider whether the measurement finished (Argo's `Resume`).
    Resume,
    /// The run is terminating: stop the measurement (Argo's `Terminate`) and record it
    /// through [`terminated_measurement`].
    Terminate,
}

/// Whether a measurement is still in progress (an asynchronous provider's, not finished).
#[must_use]
pub fn is_in_progress(m: &Measurement) -> bool {
    !m.phase.is_completed()
}

/// Indexes (into `run.metrics`) of the metrics whose last measurement is in progress, with
/// what to do `now`: Terminate while the run is terminating; otherwise Resume once its
/// `resumeAt` has passed, or at every step when it has none. Nothing once the run
/// completed.
#[must_use]
pub fn in_flight_metrics(
    run: &PreparedRun,
    status: &AnalysisRunStatus,
    now: Time,
) -> Vec<(usize, InFlightAction)> {
    if status.phase.is_completed() {
        return Vec::new();
    }
    let terminating = is_terminating(run.terminate, status);
    let mut out = Vec::new();
    for (i, m) in run.metrics.iter().enumerate() {
        let Some(last) = status
            .result(&m.metric.name)
            .and_then(|r| r.measurements.last())
        else {
            continue;
        };
        if !is_in_progress(last) {
            continue;
        }
        if terminating {
            out.push((i, InFlightAction::Terminate));
        } else if last.resume_at.is_none_or(|t| t <= now) {
            out.push((i, InFlightAction::Resume));
        }
    }
    out
}

/// A measurement its provider stopped because the run is terminating: as in Argo, one that
/// the provider reports Successful or Inconclusive reads `Metric Terminated`.
#[must_use]
pub fn terminated_measurement(mut measurement: Measurement) -> Measurement {
    if matches!(
        measurement.phase,
        AnalysisPhase::Successful | AnalysisPhase::Inconclusive
    ) {
        measurement.message = "Metric Terminated".to_owned();
    }
    measurement
}

fn wait_after(run: &PreparedRun, m: &PreparedMetric, last: &Measurement) -> TimeDelta {
    if last.phase == AnalysisPhase::Error {
        run.error_retry_interval
    } else {
        m.interval.unwrap_or(run.error_retry_interval)
    }
}

fn is_nil_or_empty(v: &Value) -> bool {
    match v {
        Value::Nil => true,
        Value::List(l) => l.is_empty(),
        _ => false,
    }
}

/// The phase a result gets from the metric's conditions (§3), or the Error message.
///
/// # Errors
/// `could not evaluate successCondition "<expr>": <cause>` (or failureCondition), the cause
/// replaced by `metric result is nil or empty: ...` when the result is nil or an empty list.
pub fn evaluate_conditions(
    metric: &PreparedMetric,
    result: &Value,
) -> Result<AnalysisPhase, String> {
    if metric.success.is_none() && metric.failure.is_none() {
        return Ok(AnalysisPhase::Successful);
    }
    let env = ConditionEnv::new(result);
    let eval = |c: &Condition, kind: &str| {
        c.evaluate(&env).map_err(|cause| {
            let cause = if is_nil_or_empty(result) {
                "metric result is nil or empty: no data returned from the metric provider"
                    .to_owned()
            } else {
                cause
            };
            format!("could not evaluate {kind} \"{}\": {cause}", c.source())
        })
    };
    let success = metric
        .success
        .as_ref()
        .map(|c| eval(c, "successCondition"))
        .transpose()?;
    let failure = metric
        .failure
        .as_ref()
        .map(|c| eval(c, "failureCondition"))
        .transpose()?;
    let (success, failure) = match (success, failure) {
        (Some(s), None) => (s, !s),
        (None, Some(f)) => (!f, f),
        (Some(s), Some(f)) => (s, f),
        (None, None) => (true, false),
    };
    Ok(if failure {
        AnalysisPhase::Failed
    } else if !success {
        AnalysisPhase::Inconclusive
    } else {
        AnalysisPhase::Successful
    })
}

/// Turns a provider's outcome into a completed measurement (§3): a provider error is
/// Error with its message; a provider-decided phase is kept; otherwise the conditions
/// decide. The value is dropped when the measurement is Error.
#[must_use]
pub fn evaluate_measurement(
    metric: &PreparedMetric,
    outcome: &Result<Observation, String>,
    started_at: Time,
    finished_at: Time,
) -> Measurement {
    let mut m = Measurement {
        phase: AnalysisPhase::Error,
        message: String::new(),
        started_at: Some(started_at),
        finished_at: Some(finished_at),
        value: String::new(),
        metadata: std::collections::BTreeMap::new(),
        resume_at: None,
    };
    match outcome {
        Err(message) => m.message.clone_from(message),
        Ok(obs) => {
            m.metadata.clone_from(&obs.measurement_metadata);
            let phase = match obs.phase {
                Some(p) => Ok(p),
                None => evaluate_conditions(metric, &obs.result),
            };
            match phase {
                Ok(p) => {
                    m.phase = p;
                    m.value.clone_from(&obs.value);
                    if let Some(msg) = &obs.message {
                        m.message.clone_from(msg);
                    }
                }
                Err(msg) => m.message = msg,
            }
        }
    }
    m
}

/// Records a measurement of metric `index` (§4): creates the metric's result on its first
/// measurement, updates the counters when the measurement is completed, redacts secrets
/// from its message, merges the provider's metric metadata, and appends it — or, when the
/// metric's last measurement is still in progress, replaces that one (it is the same
/// measurement, resumed or terminated).
pub fn record_measurement(
    run: &PreparedRun,
    status: &mut AnalysisRunStatus,
    index: usize,
    mut measurement: Measurement,
    metric_metadata: &std::collections::BTreeMap<String, String>,
    secrets: &[String],
) {
    let Some(m) = run.metrics.get(index) else {
        return;
    };
    measurement.message = super::args::redact(&measurement.message, secrets);
    let pos = match status
        .metric_results
        .iter()
        .position(|r| r.name == m.metric.name)
    {
        Some(p) => p,
        None => {
            status
                .metric_results
                .push(MetricResult::new(m.metric.name.clone(), m.dry_run));
            status.metric_results.len() - 1
        }
    };
    let r = &mut status.metric_results[pos];
    for (k, v) in metric_metadata {
        r.metadata.insert(k.clone(), v.clone());
    }
    match measurement.phase {
        AnalysisPhase::Successful => {
            r.successful += 1;
            r.count += 1;
            r.consecutive_error = 0;
            r.consecutive_success += 1;
        }
        AnalysisPhase::Failed => {
            r.failed += 1;
            r.count += 1;
            r.consecutive_error = 0;
            r.consecutive_success = 0;
        }
        AnalysisPhase::Inconclusive => {
            r.inconclusive += 1;
            r.count += 1;
            r.consecutive_error = 0;
            r.consecutive_success = 0;
        }
        AnalysisPhase::Error => {
            r.error += 1;
            r.consecutive_error += 1;
            r.consecutive_success = 0;
        }
        AnalysisPhase::Pending | AnalysisPhase::Running => {}
    }
    match r.measurements.last_mut() {
        Some(last) if is_in_progress(last) => *last = measurement,
        _ => r.measurements.push(measurement),
    }
}

/// The limit verdict of a metric (§5.3): Failed, Inconclusive or Error with Argo's message
/// (`failed (1) > failureLimit (0)`), later checks overriding earlier ones; `None` when no
/// limit is exceeded.
#[must_use]
pub fn limit_verdict(
    metric: &PreparedMetric,
    result: &MetricResult,
) -> Option<(AnalysisPhase, String)> {
    let mut verdict = None;
    let failed = i64::from(result.failed);
    if metric.failure_limit >= 0 && failed > metric.failure_limit {
        verdict = Some((
            AnalysisPhase::Failed,
            format!(
                "failed ({failed}) > failureLimit ({})",
                metric.failure_limit
            ),
        ));
    }
    let inconclusive = i64::from(result.inconclusive);
    if inconclusive > metric.inconclusive_limit {
        verdict = Some((
            AnalysisPhase::Inconclusive,
            format!(
                "inconclusive ({inconclusive}) > inconclusiveLimit ({})",
                metric.inconclusive_limit
            ),
        ));
    }
    let errors = i64::from(result.consecutive_error);
    if errors > metric.consecutive_error_limit {
        verdict = Some((
            AnalysisPhase::Error,
            format!(
                "consecutiveErrors ({errors}) > consecutiveErrorLimit ({})",
                metric.consecutive_error_limit
            ),
        ));
    }
    verdict
}

/// The phase of one metric (§5, Argo's `assessMetricStatus`).
#[must_use]
pub fn assess_metric(
    metric: &PreparedMetric,
    result: &MetricResult,
    terminating: bool,
) -> AnalysisPhase {
    if result.phase.is_completed() {
        return result.phase;
    }
    let Some(last) = result.measurements.last() else {
        return if terminating {
            AnalysisPhase::Successful
        } else {
            AnalysisPhase::Pending
        };
    };
    if !last.phase.is_completed() {
        return AnalysisPhase::Running;
    }
    if let Some((phase, _)) = limit_verdict(metric, result) {
        return phase;
    }
    let csl = metric.consecutive_success_limit;
    if csl > 0 && i64::from(result.consecutive_success) >= csl {
        return AnalysisPhase::Successful;
    }
    if let Some(count) = metric.effective_count
        && i64::from(result.count) >= count
    {
        let failure_applicable = metric.failure_limit >= 0;
        let success_applicable = csl > 0;
        return if failure_applicable && success_applicable {
            AnalysisPhase::Inconclusive
        } else if success_applicable {
            AnalysisPhase::Failed
        } else {
            AnalysisPhase::Successful
        };
    }
    if terminating {
        AnalysisPhase::Successful
    } else {
        AnalysisPhase::Running
    }
}

/// Argo's ordering of phases, best to worst.
fn severity(p: AnalysisPhase) -> usize {
    match p {
        AnalysisPhase::Successful => 0,
        AnalysisPhase::Running => 1,
        AnalysisPhase::Pending => 2,
        AnalysisPhase::Inconclusive => 3,
        AnalysisPhase::Error => 4,
        AnalysisPhase::Failed => 5,
    }
}

/// Something an assessment changed, for logs, events and live views.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnalysisEvent {
    /// A metric completed (`Metric '<name>' Completed. Result: <Phase>`).
    MetricCompleted {
        /// Metric name.
        name: String,
        /// Its final phase.
        phase: AnalysisPhase,
    },
    /// The run completed (`Analysis Completed. Result: <Phase>`).
    RunCompleted {
        /// The run's final phase.
        phase: AnalysisPhase,
    },
}

/// What [`assess`] decided besides the new status.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Assessment {
    /// When to step the run next; `None` once it completed (or nothing is scheduled).
    pub next_requeue: Option<Time>,
    /// Completions that happened in this assessment.
    pub events: Vec<AnalysisEvent>,
}

/// When a completed run expires under `ttl` (Argo's `ttlStrategy`): `completedAt` plus
/// `secondsAfterFailure` for a Failed run, `secondsAfterSuccess` for a Successful one,
/// else `secondsAfterCompletion`. The run is deleted once the time is strictly past the
/// returned instant. `None`: no TTL applies (no strategy, not completed, no matching
/// value, or no `completedAt`). Negative values count as 0.
#[must_use]
pub fn ttl_expiry(
    ttl: Option<&TtlStrategy>,
    phase: AnalysisPhase,
    completed_at: Option<Time>,
) -> Option<Time> {
    let ttl = ttl?;
    if !phase.is_completed() {
        return None;
    }
    let completed = completed_at?;
    let secs = match phase {
        AnalysisPhase::Failed => ttl.seconds_after_failure,
        AnalysisPhase::Successful => ttl.seconds_after_success,
        _ => None,
    }
    .or(ttl.seconds_after_completion)?;
    Some(completed + TimeDelta::seconds(i64::from(secs.max(0))))
}

/// Assesses the run at `now` (§5–§8, Argo's `assessRunStatus`, measurement trimming and
/// `calculateNextReconcileTime`): updates metric phases and messages, run phase, message,
/// summaries, `startedAt`/`completedAt`, trims measurement history, and returns the next
/// requeue time (immediately when the run has just started terminating).
pub fn assess(run: &PreparedRun, status: &mut AnalysisRunStatus, now: Time) -> Assessment {
    let mut out = Assessment::default();
    if status.phase.is_completed() {
        return out;
    }
    let terminating = is_terminating(run.terminate, status);
    if status.started_at.is_none() {
        status.started_at = Some(now);
    }
    let mut worst: Option<AnalysisPhase> = None;
    let mut worst_message = if run.terminate {
        "Run Terminated".to_owned()
    } else {
        String::new()
    };
    let mut everything_completed = true;
    let mut run_summary = RunSummary::default();
    let mut dry_summary = RunSummary::default();
    for m in &run.metrics {
        if m.dry_run {
            dry_summary.count += 1;
        } else {
            run_summary.count += 1;
        }
        let Some(result) = status.result_mut(&m.metric.name) else {
            everything_completed = false;
            continue;
        };
        let phase = assess_metric(m, result, terminating);
        if result.phase != phase {
            if phase.is_completed() {
                out.events.push(AnalysisEvent::MetricCompleted {
                    name: m.metric.name.clone(),
                    phase,
                });
            }
            if let Some(last) = result.measurements.last() {
                result.message.clone_from(&last.message);
            }
            result.phase = phase;
        }
        if !phase.is_completed() {
            everything_completed = false;
            continue;
        }
        let verdict = limit_verdict(m, result);
        let (limit_phase, message) = verdict.map_or((None, String::new()), |(p, s)| (Some(p), s));
        let summary = if m.dry_run {
            if worst.is_none() {
                worst = Some(AnalysisPhase::Successful);
            }
            if !message.is_empty() {
                result.message = format!("Metric assessed {phase} due to {message}");
            }
            &mut dry_summary
        } else {
            if worst.is_none_or(|w| severity(phase) > severity(w)) {
                worst = Some(phase);
                if !message.is_empty() {
                    worst_message = format!(
                        "Metric \"{}\" assessed {phase} due to {message}",
                        m.metric.name
                    );
                    if !result.message.is_empty() {
                        worst_message.push_str(&format!(": \"Error Message: {}\"", result.message));
                    }
                }
            }
            &mut run_summary
        };
        match limit_phase {
            Some(AnalysisPhase::Error) => summary.error += 1,
            Some(AnalysisPhase::Failed) => summary.failed += 1,
            Some(AnalysisPhase::Inconclusive) => summary.inconclusive += 1,
            _ => summary.successful += 1,
        }
    }
    let worst_message = worst_message.trim().to_owned();
    status.run_summary = run_summary;
    status.dry_run_summary = Some(dry_summary);
    let (phase, message) = if terminating {
        (worst.unwrap_or(AnalysisPhase::Successful), worst_message)
    } else {
        match worst {
            Some(w) if everything_completed => (w, worst_message),
            _ => (AnalysisPhase::Running, String::new()),
        }
    };
    if phase != status.phase {
        status.phase = phase;
        status.message = message;
        if phase.is_completed() {
            out.events.push(AnalysisEvent::RunCompleted { phase });
            if status.completed_at.is_none() {
                status.completed_at = Some(now);
            }
        }
    }
    for m in &run.metrics {
        if let Some(r) = status.result_mut(&m.metric.name) {
            let len = r.measurements.len();
            if len > m.retention_limit {
                r.measurements.drain(..len - m.retention_limit);
            }
        }
    }
    if !status.phase.is_completed() {
        out.next_requeue = if is_terminating(run.terminate, status) {
            // A status change requeues the run at once in Argo; the next step terminates.
            Some(now)
        } else {
            let next = next_reconcile_time(run, status);
            let poll = has_unscheduled_in_flight(run, status)
                .then_some(now + IN_FLIGHT_POLL_INTERVAL)
                .filter(|p| next.is_none_or(|n| *p < n));
            poll.or(next)
        };
    }
    out
}

/// Whether a metric's last measurement is in progress with no `resumeAt` (polled at
/// [`IN_FLIGHT_POLL_INTERVAL`]).
fn has_unscheduled_in_flight(run: &PreparedRun, status: &AnalysisRunStatus) -> bool {
    run.metrics.iter().any(|m| {
        status
            .result(&m.metric.name)
            .and_then(|r| r.measurements.last())
            .is_some_and(|last| is_in_progress(last) && last.resume_at.is_none())
    })
}

/// The earliest time a metric becomes due (Argo's `calculateNextReconcileTime`).
#[must_use]
pub fn next_reconcile_time(run: &PreparedRun, status: &AnalysisRunStatus) -> Option<Time> {
    let mut next: Option<Time> = None;
    let mut consider = |t: Time| {
        if next.is_none_or(|n| t < n) {
            next = Some(t);
        }
    };
    for m in &run.metrics {
        let result = status.result(&m.metric.name);
        if result.is_some_and(|r| r.phase.is_completed()) {
            continue;
        }
        let Some(last) = result.and_then(|r| r.measurements.last()) else {
            if let (Some(delay), Some(started)) = (m.initial_delay, status.started_at) {
                consider(started + delay);
            }
            continue;
        };
        let Some(finished) = last.finished_at else {
            if let Some(resume) = last.resume_at {
                consider(resume);
            }
            continue;
        };
        if let (Some(count), Some(r)) = (m.effective_count, result)
            && i64::from(r.count) >= count
        {
            continue;
        }
        if last.phase != AnalysisPhase::Error && m.interval.is_none() {
            continue;
        }
        consider(finished + wait_after(run, m, last));
    }
    next
}

#[cfg(test)]
mod ttl_tests {
    use super::*;

    fn t(secs: i64) -> Time {
        chrono::DateTime::from_timestamp(1_800_000_000 + secs, 0).expect("time")
    }

    #[test]
    fn ttl_follows_argo_precedence() {
        let all = TtlStrategy {
            seconds_after_completion: Some(30),
            seconds_after_failure: Some(10),
            seconds_after_success: Some(20),
        };
        let only_completion = TtlStrategy {
            seconds_after_completion: Some(30),
            ..TtlStrategy::default()
        };
        let cases = [
            (Some(&all), AnalysisPhase::Failed, Some(t(10))),
            (Some(&all), AnalysisPhase::Successful, Some(t(20))),
            (Some(&all), AnalysisPhase::Error, Some(t(30))),
            (Some(&all), AnalysisPhase::Inconclusive, Some(t(30))),
            (Some(&all), AnalysisPhase::Running, None),
            (Some(&only_completion), AnalysisPhase::Failed, Some(t(30))),
            (Some(&TtlStrategy::default()), AnalysisPhase::Failed, None),
            (None, AnalysisPhase::Successful, None),
        ];
        for (ttl, phase, want) in cases {
            assert_eq!(
                ttl_expiry(ttl, phase, Some(t(0))),
                want,
                "{phase:?} {ttl:?}"
            );
        }
        assert_eq!(ttl_expiry(Some(&all), AnalysisPhase::Failed, None), None);
        let negative = TtlStrategy {
            seconds_after_completion: Some(-5),
            ..TtlStrategy::default()
        };
        assert_eq!(
            ttl_expiry(Some(&negative), AnalysisPhase::Failed, Some(t(0))),
            Some(t(0))
        );
    }
}
