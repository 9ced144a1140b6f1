//! `rollgate analyze`: run AnalysisTemplates (Argo Rollouts or rollgate) to their end in real
//! time, as a CI quality gate. Live measurements go to stderr, the final
//! `AnalysisRun.status` to stdout; the exit status is the run's phase.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use super::{Exit, OutputFormat, UsageError};
use crate::core::analysis::documents::{Composition, compose, parse_documents};
use crate::core::analysis::duration::parse_go_duration;
use crate::core::analysis::model::{Argument, Metric};
use crate::core::analysis::run::{RunSpecError, prepare};
use crate::core::analysis::status::AnalysisRunStatus;
use crate::core::analysis::value::AnalysisPhase;
use crate::providers::{self, Provider, ProviderError, ProviderSettings};
use crate::runner::{RunnerEvent, RunnerOptions, run_analysis};

/// Arguments of `rollgate analyze`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A YAML file of AnalysisTemplates, ClusterAnalysisTemplates or one AnalysisRun
    /// (`argoproj.io/v1alpha1` or `rollgate.dev/v1alpha1`); repeat to compose templates.
    #[arg(short = 'f', long = "filename", value_name = "FILE", required = true)]
    pub files: Vec<PathBuf>,
    /// An argument value, overriding the template's (also the value of a secretKeyRef arg).
    #[arg(long = "arg", value_name = "NAME=VALUE")]
    pub args: Vec<String>,
    /// Prometheus base URL replacing the address of every prometheus (and builtin) metric.
    #[arg(long, value_name = "URL")]
    pub prometheus: Option<String>,
    /// Delay before retrying a measurement that ended in Error (a Go duration).
    #[arg(long, value_name = "DURATION", default_value = "10s")]
    pub error_retry_interval: String,
    /// How to print the final status.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

/// The exit status of a completed run's phase.
#[must_use]
pub fn exit_for(phase: AnalysisPhase) -> Exit {
    match phase {
        AnalysisPhase::Successful => Exit::Successful,
        AnalysisPhase::Failed => Exit::Failed,
        AnalysisPhase::Inconclusive => Exit::Inconclusive,
        AnalysisPhase::Error | AnalysisPhase::Pending | AnalysisPhase::Running => Exit::Error,
    }
}

fn usage(message: String) -> anyhow::Error {
    anyhow::Error::new(UsageError(message))
}

fn parse_args(raw: &[String]) -> anyhow::Result<Vec<Argument>> {
    raw.iter()
        .map(|a| {
            let (name, value) = a
                .split_once('=')
                .ok_or_else(|| usage(format!("--arg {a}: expected NAME=VALUE")))?;
            if name.is_empty() {
                return Err(usage(format!("--arg {a}: the name is empty")));
            }
            Ok(Argument {
                name: name.to_owned(),
                value: Some(value.to_owned()),
                value_from: None,
            })
        })
        .collect()
}

/// Reads and composes the files; secret and field args must come from `--arg`.
fn load(
    files: &[PathBuf],
    incoming: &[Argument],
) -> anyhow::Result<(Composition, BTreeMap<String, String>)> {
    let mut objects = Vec::new();
    for file in files {
        let name = file.display().to_string();
        let text = std::fs::read_to_string(file)
            .map_err(|e| usage(format!("{name}: cannot read: {e}")))?;
        // Flagger MetricTemplates become AnalysisTemplates, rendered for the --arg values.
        let given: BTreeMap<String, String> = incoming
            .iter()
            .filter_map(|a| Some((a.name.clone(), a.value.clone()?)))
            .collect();
        let text = crate::core::metrics::convert_metric_templates(&name, &text, &given)
            .map_err(|e| usage(e.to_string()))?
            .unwrap_or(text);
        objects.extend(parse_documents(&name, &text).map_err(|e| usage(e.to_string()))?);
    }
    let composition = compose(&objects, incoming).map_err(|e| usage(e.to_string()))?;
    let mut secrets = BTreeMap::new();
    for a in &composition.spec.args {
        let given = incoming.iter().find(|i| i.name == a.name);
        let Some(from) = &a.value_from else { continue };
        if let Some(r) = &from.secret_key_ref {
            let Some(given) = given.and_then(|g| g.value.clone()) else {
                return Err(usage(format!(
                    "args.{}: its value comes from Secret \"{}\" key \"{}\", which rollgate cannot read outside a cluster: pass --arg {}=VALUE",
                    a.name, r.name, r.key, a.name
                )));
            };
            secrets.insert(a.name.clone(), given);
        } else if given.is_none() && a.value.is_none() {
            return Err(usage(format!(
                "args.{}: its value comes from the owning object (valueFrom), which rollgate does not have outside a cluster: pass --arg {}=VALUE",
                a.name, a.name
            )));
        }
    }
    for i in incoming {
        if !composition.spec.args.iter().any(|a| a.name == i.name) {
            tracing::warn!(arg = %i.name, "--arg {} matches no argument of the templates; ignored", i.name);
        }
    }
    Ok((composition, secrets))
}

/// Says where an invalid spec is wrong: file, line, object, metric and field.
fn explain_invalid(composition: &Composition, error: &RunSpecError) -> Option<String> {
    let RunSpecError::Invalid {
        message,
        metric: Some(i),
        field,
    } = error
    else {
        return None;
    };
    let origin = composition.origins.get(*i)?;
    let field = field.map_or_else(String::new, |f| format!(" field `{f}`"));
    Some(format!(
        "{}:{}: {}: metric \"{}\"{field}: {message}",
        origin.source, origin.line, origin.object, origin.metric
    ))
}

/// Says where a `job` metric is, which only the controller can measure.
fn explain_job(composition: &Composition) -> Option<String> {
    let i = composition
        .spec
        .metrics
        .iter()
        .position(|m| m.provider.job.is_some())?;
    let origin = composition.origins.get(i)?;
    Some(format!(
        "{}:{}: {}: metric \"{}\" field `provider.job`: {}",
        origin.source,
        origin.line,
        origin.object,
        origin.metric,
        crate::providers::job::NEEDS_CONTROLLER
    ))
}

/// The live view: one line per measurement and per completed metric or run, on stderr.
pub fn live(event: &RunnerEvent) {
    let mut err = std::io::stderr().lock();
    let line = match event {
        RunnerEvent::Measured {
            metric,
            measurement: m,
        } => {
            let at = m
                .finished_at
                .map(|t| t.format("%H:%M:%S").to_string())
                .unwrap_or_default();
            let mut s = format!("{at} {metric}: measurement {}", m.phase);
            if !m.value.is_empty() {
                s.push_str(&format!(" value={}", m.value));
            }
            if !m.message.is_empty() {
                s.push_str(&format!(" ({})", m.message));
            }
            s
        }
        RunnerEvent::Assessed(crate::core::analysis::run::AnalysisEvent::MetricCompleted {
            name,
            phase,
        }) => format!("Metric '{name}' Completed. Result: {phase}"),
        RunnerEvent::Assessed(crate::core::analysis::run::AnalysisEvent::RunCompleted {
            phase,
        }) => {
            format!("Analysis Completed. Result: {phase}")
        }
    };
    let _ = writeln!(err, "{line}");
}

fn print_text(status: &AnalysisRunStatus) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "Phase:   {}", status.phase)?;
    if !status.message.is_empty() {
        writeln!(out, "Message: {}", status.message)?;
    }
    if !status.metric_results.is_empty() {
        let label = |r: &crate::core::analysis::status::MetricResult| {
            if r.dry_run {
                format!("{} (dry-run)", r.name)
            } else {
                r.name.clone()
            }
        };
        let width = status
            .metric_results
            .iter()
            .map(|r| label(r).len())
            .max()
            .unwrap_or(6)
            .max(6);
        writeln!(
            out,
            "{:width$}  {:12}  {:>5}  {:>10}  {:>6}  {:>12}  {:>5}  LAST VALUE",
            "METRIC", "PHASE", "COUNT", "SUCCESSFUL", "FAILED", "INCONCLUSIVE", "ERROR",
        )?;
        for r in &status.metric_results {
            let name = label(r);
            let last = r.measurements.last().map_or("", |m| m.value.as_str());
            writeln!(
                out,
                "{name:width$}  {:12}  {:>5}  {:>10}  {:>6}  {:>12}  {:>5}  {last}",
                r.phase.as_str(),
                r.count,
                r.successful,
                r.failed,
                r.inconclusive,
                r.error
            )?;
            if !r.message.is_empty() {
                writeln!(out, "{:width$}  {}", "", r.message)?;
            }
        }
    }
    Ok(())
}

/// Analysis files read and composed with their `--arg` values, ready to run.
#[derive(Debug, Clone)]
pub struct LoadedAnalysis {
    composition: Composition,
    secrets: BTreeMap<String, String>,
}

impl LoadedAnalysis {
    /// Read the files (AnalysisTemplates, ClusterAnalysisTemplates, one AnalysisRun, or
    /// Flagger MetricTemplates) and compose them with `raw_args` (`NAME=VALUE`, which
    /// override the templates' values and give secret args theirs).
    ///
    /// # Errors
    /// A [`UsageError`] naming the file, object and field: an unreadable file, malformed
    /// YAML, a bad `--arg`, templates that cannot be composed, or an arg whose value only
    /// a cluster has and no `--arg` gives.
    pub fn from_files(files: &[PathBuf], raw_args: &[String]) -> anyhow::Result<Self> {
        let incoming = parse_args(raw_args)?;
        let (composition, secrets) = load(files, &incoming)?;
        Ok(Self {
            composition,
            secrets,
        })
    }

    /// The objects the metrics come from (`AnalysisTemplate "name"`, ...), each once, in
    /// order.
    #[must_use]
    pub fn objects(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for o in &self.composition.origins {
            if !out.contains(&o.object) {
                out.push(o.object.clone());
            }
        }
        out
    }

    /// Run the analysis to its end in real time. `prometheus` replaces the address of every
    /// prometheus (and builtin) metric; each event goes to `on_event` (e.g. [`live`]). An
    /// invalid spec is not an error but an Error run, explained on stderr with file and line.
    pub async fn run<F>(
        &self,
        prometheus: Option<String>,
        error_retry_interval: Duration,
        on_event: F,
    ) -> AnalysisRunStatus
    where
        F: FnMut(&RunnerEvent),
    {
        if let Err(e) = prepare(&self.composition.spec)
            && let Some(where_) = explain_invalid(&self.composition, &e)
        {
            eprintln!("error: {where_}");
        }
        if let Some(where_) = explain_job(&self.composition) {
            eprintln!("error: {where_}");
        }
        let settings = ProviderSettings::from_env(prometheus);
        let factory = move |m: &Metric| -> Result<Arc<dyn Provider>, ProviderError> {
            providers::build(m, &settings)
        };
        let options = RunnerOptions {
            error_retry_interval,
            secrets: self.secrets.clone(),
        };
        run_analysis(&self.composition.spec, &factory, &options, on_event).await
    }
}

/// The `--error-retry-interval` value: a non-negative Go duration.
///
/// # Errors
/// A [`UsageError`] naming the flag.
pub fn parse_error_retry_interval(text: &str) -> anyhow::Result<Duration> {
    let retry =
        parse_go_duration(text).map_err(|e| usage(format!("--error-retry-interval: {e}")))?;
    retry
        .to_std()
        .map_err(|_| usage("--error-retry-interval must not be negative".into()))
}

/// Run `rollgate analyze`.
///
/// # Errors
/// A [`UsageError`] (exit 64) for an unreadable file, malformed YAML, a bad `--arg` or
/// duration, or templates that cannot be composed; an invalid spec is not an error but an
/// Error run (exit 3).
pub async fn run(args: Args) -> anyhow::Result<Exit> {
    let retry = parse_error_retry_interval(&args.error_retry_interval)?;
    let analysis = LoadedAnalysis::from_files(&args.files, &args.args)?;
    let status = analysis.run(args.prometheus.clone(), retry, live).await;
    match args.output {
        OutputFormat::Json => {
            let json = serde_json::to_string_pretty(&status).context("printing the status")?;
            println!("{json}");
        }
        OutputFormat::Text => print_text(&status)?,
    }
    Ok(exit_for(status.phase))
}
