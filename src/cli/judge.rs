//! `rollgate judge`: statistical canary-vs-baseline judges on sample and counter files.
//!
//! - `mann-whitney`: U, p-value, Hodges-Lehmann shift and its exact interval (exit 0).
//! - `kayenta`: the NetflixACAJudge score (exit 0 Pass, 1 Fail, 2 Marginal).
//! - `sequential`: the anytime-valid error-count test over cumulative counters
//!   (exit 0 Pass, 1 Fail, 2 Continue).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde_json::json;

use super::{Exit, OutputFormat, UsageError};
use crate::core::judge::kayenta::{self, CanaryConfig, ClassifierParams, ScoreClass};
use crate::core::judge::{
    Alternative, CountTest, CountTestConfig, Counts, Decision, Method, MwuOptions,
    SequentialResult, hodges_lehmann, mann_whitney,
};

/// `--alternative` values (scipy's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AlternativeArg {
    /// The distributions differ.
    TwoSided,
    /// The baseline is stochastically less than the canary (the canary is larger).
    Less,
    /// The baseline is stochastically greater than the canary.
    Greater,
}

/// `--method` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum MethodArg {
    /// Exact for min(n) ≤ 8 without ties, else asymptotic.
    Auto,
    /// The exact permutation null (no ties).
    Exact,
    /// The normal approximation.
    Asymptotic,
}

/// Arguments of `rollgate judge mann-whitney`.
#[derive(Debug, clap::Args)]
pub struct MannWhitneyArgs {
    /// Baseline sample: one number per line (blank lines and `#` comments are skipped).
    #[arg(long)]
    pub baseline: PathBuf,
    /// Canary sample, same format.
    #[arg(long)]
    pub canary: PathBuf,
    /// Alternative hypothesis, relative to the baseline (scipy's first sample).
    #[arg(long, value_enum, default_value_t = AlternativeArg::TwoSided)]
    pub alternative: AlternativeArg,
    /// Do not apply the continuity correction (asymptotic method).
    #[arg(long)]
    pub no_continuity: bool,
    /// How to compute the p-value.
    #[arg(long, value_enum, default_value_t = MethodArg::Auto)]
    pub method: MethodArg,
    /// Confidence of the Hodges-Lehmann interval.
    #[arg(long, default_value_t = 0.95)]
    pub confidence: f64,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

/// Arguments of `rollgate judge kayenta`.
#[derive(Debug, clap::Args)]
pub struct KayentaArgs {
    /// Canary config (YAML or JSON): Kayenta's `metrics` and `classifier.groupWeights`, plus
    /// `scoreThresholds: {pass, marginal}`.
    #[arg(long)]
    pub config: PathBuf,
    /// Baseline observations: `METRIC VALUE` per line (or just `VALUE` when the config has
    /// one metric); `NaN` allowed.
    #[arg(long)]
    pub baseline: PathBuf,
    /// Canary observations, same format.
    #[arg(long)]
    pub canary: PathBuf,
    /// Classifier tolerance (Kayenta's judge: 0.25).
    #[arg(long, default_value_t = 0.25)]
    pub tolerance: f64,
    /// Confidence of the shift interval (Kayenta's judge: 0.98).
    #[arg(long, default_value_t = 0.98)]
    pub confidence: f64,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

/// Arguments of `rollgate judge sequential`.
#[derive(Debug, clap::Args)]
pub struct SequentialArgs {
    /// Cumulative counters, one look per line:
    /// `BASELINE_ERRORS BASELINE_REQUESTS CANARY_ERRORS CANARY_REQUESTS`
    /// (whitespace or commas; blank lines and `#` comments skipped).
    #[arg(long)]
    pub counts: PathBuf,
    /// False-rollback probability over the whole rollout.
    #[arg(long, default_value_t = 0.01)]
    pub alpha: f64,
    /// The canary's share of the two arms' traffic (0.5 = equal weights).
    #[arg(long, default_value_t = 0.5)]
    pub split: f64,
    /// Prior concentration k of the Beta(kθ₀, k(1−θ₀)) mixture.
    #[arg(long, default_value_t = 2.0)]
    pub concentration: f64,
    /// Pass once the error-rate ratio's confidence sequence lies below this.
    #[arg(long, default_value_t = 1.5)]
    pub pass_ratio: f64,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

/// Subcommands of `rollgate judge`.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Mann-Whitney U test and Hodges-Lehmann shift of canary vs baseline (exit 0).
    MannWhitney(MannWhitneyArgs),
    /// Kayenta NetflixACAJudge score (exit 0 Pass, 1 Fail, 2 Marginal).
    Kayenta(KayentaArgs),
    /// Anytime-valid error-count test over cumulative counters (exit 0 Pass, 1 Fail, 2 Continue).
    Sequential(SequentialArgs),
}

/// Run `rollgate judge`.
///
/// # Errors
/// A [`UsageError`] for unreadable or malformed files and bad parameters.
pub async fn run(command: Command) -> anyhow::Result<Exit> {
    match command {
        Command::MannWhitney(a) => mann_whitney_cmd(&a),
        Command::Kayenta(a) => kayenta_cmd(&a),
        Command::Sequential(a) => sequential_cmd(&a),
    }
}

fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path)
        .map_err(|e| UsageError(format!("cannot read {}: {e}", path.display())).into())
}

/// Lines that carry data: `(1-based line number, trimmed text)`.
fn data_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
}

fn parse_number(path: &Path, line: usize, field: &str) -> anyhow::Result<f64> {
    field.parse::<f64>().map_err(|_| {
        UsageError(format!(
            "{}:{line}: {field:?} is not a number",
            path.display()
        ))
        .into()
    })
}

/// One finite number per line.
fn read_sample(path: &Path) -> anyhow::Result<Vec<f64>> {
    let text = read(path)?;
    let mut out = Vec::new();
    for (line, l) in data_lines(&text) {
        let v = parse_number(path, line, l)?;
        if !v.is_finite() {
            return Err(
                UsageError(format!("{}:{line}: {l:?} is not finite", path.display())).into(),
            );
        }
        out.push(v);
    }
    if out.is_empty() {
        return Err(UsageError(format!("{}: no numbers", path.display())).into());
    }
    Ok(out)
}

fn mann_whitney_cmd(a: &MannWhitneyArgs) -> anyhow::Result<Exit> {
    let baseline = read_sample(&a.baseline)?;
    let canary = read_sample(&a.canary)?;
    if !(a.confidence > 0.0 && a.confidence < 1.0) {
        return Err(UsageError(format!(
            "--confidence {} is not strictly between 0 and 1",
            a.confidence
        ))
        .into());
    }
    let options = MwuOptions {
        alternative: match a.alternative {
            AlternativeArg::TwoSided => Alternative::TwoSided,
            AlternativeArg::Less => Alternative::Less,
            AlternativeArg::Greater => Alternative::Greater,
        },
        continuity: !a.no_continuity,
        method: match a.method {
            MethodArg::Auto => Method::Auto,
            MethodArg::Exact => Method::Exact,
            MethodArg::Asymptotic => Method::Asymptotic,
        },
    };
    let r = mann_whitney(&baseline, &canary, options).map_err(|e| UsageError(e.to_string()))?;
    let hl = hodges_lehmann(&baseline, &canary, a.confidence).context("Hodges-Lehmann shift")?;
    match a.output {
        OutputFormat::Json => {
            let doc = json!({
                "u": r.u,
                "p_value": r.p_value,
                "hl_shift": hl.estimate,
                "ci_low": hl.low,
                "ci_high": hl.high,
                "u_canary": r.u_canary,
                "alternative": options.alternative,
                "method": r.method,
                "z": r.z,
                "sigma": r.sigma,
                "has_ties": r.has_ties,
                "n_baseline": r.n_baseline,
                "n_canary": r.n_canary,
                "confidence": hl.confidence,
                "achieved_confidence": hl.achieved_confidence,
                "ci_method": hl.method,
            });
            println!("{doc}");
        }
        OutputFormat::Text => {
            println!(
                "U = {} (baseline), p = {} ({:?}, {:?})",
                r.u, r.p_value, options.alternative, r.method
            );
            println!(
                "shift canary − baseline = {} [{}, {}] at {:.1}% (achieved {:.4})",
                hl.estimate,
                hl.low,
                hl.high,
                100.0 * hl.confidence,
                hl.achieved_confidence.unwrap_or(f64::NAN)
            );
        }
    }
    Ok(Exit::Successful)
}

/// `METRIC VALUE` lines (or bare values for a single-metric config) into samples.
fn read_metric_samples(
    path: &Path,
    single: Option<&str>,
) -> anyhow::Result<BTreeMap<String, Vec<f64>>> {
    let text = read(path)?;
    let mut out: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for (line, l) in data_lines(&text) {
        let fields: Vec<&str> = l
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|f| !f.is_empty())
            .collect();
        let (name, value) = match (fields.as_slice(), single) {
            ([v], Some(name)) => (name.to_owned(), *v),
            ([name, v], _) => ((*name).to_owned(), *v),
            _ => {
                return Err(UsageError(format!(
                    "{}:{line}: expected `METRIC VALUE`, got {l:?}",
                    path.display()
                ))
                .into());
            }
        };
        let v = parse_number(path, line, value)?;
        out.entry(name).or_default().push(v);
    }
    Ok(out)
}

fn kayenta_cmd(a: &KayentaArgs) -> anyhow::Result<Exit> {
    let text = read(&a.config)?;
    let config: CanaryConfig = serde_yaml::from_str(&text).map_err(|e| {
        UsageError(format!(
            "{}: invalid canary config: {e}",
            a.config.display()
        ))
    })?;
    if config.metrics.is_empty() {
        return Err(UsageError(format!("{}: no metrics", a.config.display())).into());
    }
    let single = (config.metrics.len() == 1).then(|| config.metrics[0].name.as_str());
    let baseline = read_metric_samples(&a.baseline, single)?;
    let canary = read_metric_samples(&a.canary, single)?;
    for (file, samples) in [(&a.baseline, &baseline), (&a.canary, &canary)] {
        if let Some(unknown) = samples
            .keys()
            .find(|k| !config.metrics.iter().any(|m| &m.name == *k))
        {
            return Err(UsageError(format!(
                "{}: metric {unknown:?} is not in the config {}",
                file.display(),
                a.config.display()
            ))
            .into());
        }
    }
    let data: BTreeMap<String, (Vec<f64>, Vec<f64>)> = config
        .metrics
        .iter()
        .map(|m| {
            let b = baseline.get(&m.name).cloned().unwrap_or_default();
            let c = canary.get(&m.name).cloned().unwrap_or_default();
            (m.name.clone(), (b, c))
        })
        .collect();
    let params = ClassifierParams {
        tolerance: a.tolerance,
        confidence: a.confidence,
    };
    let j = kayenta::judge(&config, &data, params);
    match a.output {
        OutputFormat::Json => {
            let metrics: Vec<_> = j
                .metrics
                .iter()
                .map(|(s, c)| {
                    json!({
                        "name": s.name,
                        "classification": s.label,
                        "critical": s.critical,
                        "groups": s.groups,
                        "deviation": c.deviation,
                        "estimate": c.interval.map(|i| i.0),
                        "ci_low": c.interval.map(|i| i.1),
                        "ci_high": c.interval.map(|i| i.2),
                        "reason": c.reason,
                    })
                })
                .collect();
            let doc = json!({
                "verdict": j.class,
                "score": j.score.score,
                "groups": j.score.groups,
                "failure_reason": j.score.failure_reason,
                "metrics": metrics,
            });
            println!("{doc}");
        }
        OutputFormat::Text => {
            println!("{:?}: score {}", j.class, j.score.score);
            if let Some(reason) = &j.score.failure_reason {
                println!("{reason}");
            }
            for (s, c) in &j.metrics {
                println!(
                    "  {}: {:?}{} (deviation {})",
                    s.name,
                    s.label,
                    if s.critical { ", critical" } else { "" },
                    c.deviation
                );
            }
        }
    }
    Ok(match j.class {
        ScoreClass::Pass => Exit::Successful,
        ScoreClass::Fail => Exit::Failed,
        ScoreClass::Marginal => Exit::Inconclusive,
    })
}

fn read_counts(path: &Path) -> anyhow::Result<Vec<(usize, Counts)>> {
    let text = read(path)?;
    let mut out = Vec::new();
    for (line, l) in data_lines(&text) {
        let fields: Vec<&str> = l
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|f| !f.is_empty())
            .collect();
        let parsed: Result<Vec<u64>, _> = fields.iter().map(|f| f.parse::<u64>()).collect();
        match parsed {
            Ok(v) if v.len() == 4 => out.push((
                line,
                Counts {
                    baseline_errors: v[0],
                    baseline_requests: v[1],
                    canary_errors: v[2],
                    canary_requests: v[3],
                },
            )),
            _ => {
                return Err(UsageError(format!(
                    "{}:{line}: expected four non-negative integers `BASELINE_ERRORS BASELINE_REQUESTS CANARY_ERRORS CANARY_REQUESTS`, got {l:?}",
                    path.display()
                ))
                .into());
            }
        }
    }
    if out.is_empty() {
        return Err(UsageError(format!("{}: no counter lines", path.display())).into());
    }
    Ok(out)
}

fn sequential_cmd(a: &SequentialArgs) -> anyhow::Result<Exit> {
    let looks = read_counts(&a.counts)?;
    let mut test = CountTest::new(CountTestConfig {
        alpha: a.alpha,
        split: a.split,
        concentration: a.concentration,
        pass_ratio: a.pass_ratio,
    })
    .map_err(|e| UsageError(e.to_string()))?;
    // a sequential test stops at its first decision
    let mut last: Option<(usize, SequentialResult)> = None;
    for (i, (line, counts)) in looks.iter().enumerate() {
        let r = test
            .observe(*counts)
            .map_err(|e| UsageError(format!("{}:{line}: {e}", a.counts.display())))?;
        last = Some((i + 1, r));
        if r.decision != Decision::Continue {
            break;
        }
    }
    let Some((look, r)) = last else {
        return Err(UsageError(format!("{}: no counter lines", a.counts.display())).into());
    };
    let c = test.counts();
    match a.output {
        OutputFormat::Json => {
            let doc = json!({
                "decision": r.decision,
                "p_value": r.p_value,
                "e_value": r.e_value,
                "estimate": r.estimate,
                "cs_low": r.confidence_sequence.low,
                "cs_high": r.confidence_sequence.high,
                "look": look,
                "looks": looks.len(),
                "alpha": a.alpha,
                "split": a.split,
                "counts": c,
            });
            println!("{doc}");
        }
        OutputFormat::Text => {
            println!(
                "{:?} at look {look}/{}: error-rate ratio {} [{}, {}], anytime p = {}",
                r.decision,
                looks.len(),
                r.estimate,
                r.confidence_sequence.low,
                r.confidence_sequence.high,
                r.p_value
            );
        }
    }
    Ok(match r.decision {
        Decision::Pass => Exit::Successful,
        Decision::Fail => Exit::Failed,
        Decision::Continue => Exit::Inconclusive,
    })
}
