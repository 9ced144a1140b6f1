//! `rollgate plan`: print the steps a Rollout will take and the traffic weight at each,
//! without a cluster.
//!
//! Bad input is a [`UsageError`] (exit 64) naming the file, the line and the field:
//! serde's own errors carry their position; for rules checked after parsing
//! ([`SpecError`]) the line is found by walking the YAML to the field's path.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

use super::{Exit, OutputFormat, UsageError};
use crate::core::strategy::plan::{AnalysisSource, BackgroundAnalysis, StrategyKind};
use crate::core::strategy::{PauseReason, Plan, PlanStep, RolloutSpec, SpecError, compile};

/// The `apiVersion` of rollgate's Rollout.
pub const API_VERSION: &str = "rollgate.dev/v1alpha1";

/// Arguments of `rollgate plan`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The Rollout manifest (YAML, `kind: Rollout`); `-` reads standard input.
    #[arg(short = 'f', long = "file", value_name = "PATH")]
    pub file: PathBuf,
    /// Print as text or as one JSON document.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

/// A Rollout manifest as written in a file.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Manifest {
    api_version: String,
    kind: String,
    metadata: Metadata,
    spec: RolloutSpec,
    #[serde(default)]
    #[allow(dead_code)]
    status: Option<serde_yaml::Value>,
}

#[derive(Debug, Deserialize)]
struct Metadata {
    name: String,
    #[serde(default)]
    namespace: Option<String>,
}

/// Run `rollgate plan`.
///
/// # Errors
/// A [`UsageError`] when the file cannot be read, is not YAML, is not a Rollout, or
/// its spec is invalid (with file, line and field); an I/O error writing stdout.
pub async fn run(args: Args) -> anyhow::Result<Exit> {
    let read = if args.file.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin())
    } else {
        std::fs::read_to_string(&args.file)
    };
    let text = read.map_err(|e| {
        UsageError(format!(
            "{}: cannot read the Rollout: {e}",
            args.file.display()
        ))
    })?;
    let (manifest, plan) = load(&args.file, &text)?;
    let out = match args.output {
        OutputFormat::Text => render_text(&manifest, &plan),
        OutputFormat::Json => {
            let mut s = serde_json::to_string_pretty(&PlanReport::new(&manifest, &plan))?;
            s.push('\n');
            s
        }
    };
    print!("{out}");
    Ok(Exit::Successful)
}

fn load(file: &Path, text: &str) -> Result<(Manifest, Plan), UsageError> {
    let f = file.display();
    let manifest: Manifest = serde_yaml::with::singleton_map_recursive::deserialize(
        serde_yaml::Deserializer::from_str(text),
    )
    .map_err(|e| UsageError(yaml_error(&f.to_string(), &e)))?;
    if manifest.kind != "Rollout" {
        let at = locate(text, &["kind"]);
        return Err(UsageError(format!(
            "{f}{at}: kind: expected Rollout, found {:?}",
            manifest.kind
        )));
    }
    if manifest.api_version != API_VERSION {
        let at = locate(text, &["apiVersion"]);
        return Err(UsageError(format!(
            "{f}{at}: apiVersion: expected {API_VERSION}, found {:?}",
            manifest.api_version
        )));
    }
    let plan =
        compile(&manifest.spec).map_err(|e| spec_error(&f.to_string(), text, &manifest, &e))?;
    Ok((manifest, plan))
}

/// `file:line:column: path: message` from serde_yaml's error.
fn yaml_error(file: &str, e: &serde_yaml::Error) -> String {
    let msg = e.to_string();
    // serde_yaml appends " at line L column C"; the position goes in front instead.
    let msg = msg
        .rfind(" at line ")
        .map_or(msg.as_str(), |i| &msg[..i])
        .to_owned();
    match e.location() {
        Some(l) => format!("{file}:{}:{}: {msg}", l.line(), l.column()),
        None => format!("{file}: {msg}"),
    }
}

fn spec_error(file: &str, text: &str, m: &Manifest, e: &SpecError) -> UsageError {
    let path = format!("spec.{}", e.field());
    let segments: Vec<&str> = path.split('.').collect();
    let at = locate(text, &segments);
    UsageError(format!("{file}{at}: Rollout {}: spec.{e}", m.metadata.name))
}

/// `:line:column` of the value at `path` (keys, with `name[i]` for list items), or of
/// its deepest existing ancestor; empty when not even the first key is found.
fn locate(text: &str, path: &[&str]) -> String {
    let mut segs = Vec::new();
    for p in path {
        let (key, rest) = p.split_once('[').unwrap_or((p, ""));
        segs.push(Seg::Key(key.to_owned()));
        for idx in rest.split('[') {
            if let Ok(i) = idx.trim_end_matches(']').parse::<usize>() {
                segs.push(Seg::Index(i));
            }
        }
    }
    for n in (1..=segs.len()).rev() {
        let finder = Finder {
            target: &segs[..n],
            depth: 0,
        };
        if let Err(e) = finder.deserialize(serde_yaml::Deserializer::from_str(text))
            && e.to_string().contains(FOUND)
            && let Some(l) = e.location()
        {
            return format!(":{}:{}", l.line(), l.column());
        }
    }
    String::new()
}

const FOUND: &str = "rollgate-plan-found-it";

#[derive(Debug)]
enum Seg {
    Key(String),
    Index(usize),
}

/// Walks a YAML document along `target` and fails with [`FOUND`] on reaching it, so
/// that serde_yaml reports the position of that value.
struct Finder<'a> {
    target: &'a [Seg],
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for Finder<'_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Finder<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        if self.depth == self.target.len() {
            return Err(de::Error::custom(FOUND));
        }
        while let Some(key) = map.next_key::<serde_yaml::Value>()? {
            let hit = matches!(&self.target[self.depth], Seg::Key(k) if key.as_str() == Some(k));
            if hit {
                map.next_value_seed(Finder {
                    target: self.target,
                    depth: self.depth + 1,
                })?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        if self.depth == self.target.len() {
            return Err(de::Error::custom(FOUND));
        }
        let mut i = 0;
        loop {
            let hit = matches!(self.target[self.depth], Seg::Index(n) if n == i);
            let more = if hit {
                seq.next_element_seed(Finder {
                    target: self.target,
                    depth: self.depth + 1,
                })?
            } else {
                seq.next_element::<IgnoredAny>()?.map(|_| ())
            };
            if more.is_none() {
                return Ok(());
            }
            i += 1;
        }
    }

    fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<(), A::Error> {
        // A tagged value (`!tag x`): only the tag position is known.
        if self.depth == self.target.len() {
            return Err(de::Error::custom(FOUND));
        }
        let (_, v): (IgnoredAny, _) = data.variant()?;
        de::VariantAccess::newtype_variant::<IgnoredAny>(v).map(|_| ())
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        self.scalar()
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        self.scalar()
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        self.scalar()
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        self.scalar()
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        self.scalar()
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.scalar()
    }
}

impl Finder<'_> {
    fn scalar<E: de::Error>(&self) -> Result<(), E> {
        if self.depth == self.target.len() {
            Err(E::custom(FOUND))
        } else {
            Ok(())
        }
    }
}

/// `rollgate plan --output json`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct PlanReport<'a> {
    rollout: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    namespace: Option<&'a str>,
    strategy: StrategyKind,
    skip_analysis: bool,
    steps: Vec<StepReport<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    background: Option<&'a BackgroundAnalysis>,
    promotion: PromotionReport,
    progress_deadline_seconds: u32,
    minimum_seconds: u64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct StepReport<'a> {
    index: usize,
    step: &'a PlanStep,
    canary_weight: u8,
    primary_weight: u8,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct PromotionReport {
    /// Canary weights while traffic returns to the primary (ends at 0).
    canary_weights: Vec<u8>,
    scale_down_delay_seconds: u32,
}

impl<'a> PlanReport<'a> {
    fn new(m: &'a Manifest, plan: &'a Plan) -> PlanReport<'a> {
        let weights = plan.weights();
        PlanReport {
            rollout: &m.metadata.name,
            namespace: m.metadata.namespace.as_deref(),
            strategy: plan.strategy,
            skip_analysis: plan.skip_analysis,
            steps: plan
                .steps
                .iter()
                .zip(&weights)
                .enumerate()
                .map(|(index, (step, w))| StepReport {
                    index,
                    step,
                    canary_weight: w.get(),
                    primary_weight: w.complement().get(),
                })
                .collect(),
            background: plan.background.as_ref(),
            promotion: PromotionReport {
                canary_weights: plan.promotion_weights().iter().map(|w| w.get()).collect(),
                scale_down_delay_seconds: plan.promotion.scale_down_delay_secs,
            },
            progress_deadline_seconds: plan.progress_deadline_secs,
            minimum_seconds: plan.minimum_secs(),
        }
    }
}

fn describe_source(source: &AnalysisSource) -> String {
    match source {
        AnalysisSource::Templates(r) => {
            let names: Vec<&str> = r
                .templates
                .iter()
                .map(|t| t.template_name.as_str())
                .collect();
            let mut s = names.join(", ");
            if !r.args.is_empty() {
                let args: Vec<String> = r
                    .args
                    .iter()
                    .map(|a| format!("{}={}", a.name, a.value))
                    .collect();
                let _ = write!(s, " ({})", args.join(", "));
            }
            s
        }
        AnalysisSource::FlaggerChecks {
            interval_secs,
            threshold,
            metrics,
        } => {
            let names: Vec<&str> = metrics.iter().map(|m| m.name.as_str()).collect();
            format!(
                "{} every {interval_secs}s, rollback after {threshold} failed check(s)",
                names.join(", ")
            )
        }
    }
}

fn describe(strategy: StrategyKind, step: &PlanStep) -> String {
    match step {
        PlanStep::SetWeight { .. } if strategy == StrategyKind::BlueGreen => {
            "switch: all traffic to the new version".to_owned()
        }
        PlanStep::SetWeight { weight } => format!("setWeight {weight}"),
        PlanStep::Pause {
            duration: Some(d),
            reason: PauseReason::BlueGreenPause,
        } => format!("preview: wait {d}, then switch (autoPromotionSeconds)"),
        PlanStep::Pause {
            duration: None,
            reason: PauseReason::BlueGreenPause,
        } => "preview: wait until promoted".to_owned(),
        PlanStep::Pause {
            duration: Some(d), ..
        } => format!("pause {d}"),
        PlanStep::Pause { duration: None, .. } => "pause until promoted".to_owned(),
        PlanStep::Analysis { kind, source } => {
            format!("analysis ({}) {}", kind.as_str(), describe_source(source))
        }
    }
}

fn render_text(m: &Manifest, plan: &Plan) -> String {
    let mut out = String::new();
    let strategy = match plan.strategy {
        StrategyKind::Canary => "canary",
        StrategyKind::BlueGreen => "blue-green",
    };
    let ns = m
        .metadata
        .namespace
        .as_deref()
        .map(|n| format!(" in {n}"))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "Rollout {}{ns}: {strategy}, target Deployment {}",
        m.metadata.name, m.spec.target_ref.name
    );
    if plan.skip_analysis {
        let _ = writeln!(
            out,
            "skipAnalysis: the new revision is promoted as soon as it is ready; the steps below are not run"
        );
    }
    let _ = writeln!(
        out,
        "{:>3}  {:<60} {:>6} {:>7}",
        "#", "step", "canary", "primary"
    );
    let weights = plan.weights();
    for (i, (step, w)) in plan.steps.iter().zip(&weights).enumerate() {
        let _ = writeln!(
            out,
            "{i:>3}  {:<60} {:>5}% {:>6}%",
            describe(plan.strategy, step),
            w.get(),
            w.complement().get()
        );
    }
    if let Some(bg) = &plan.background {
        let _ = writeln!(
            out,
            "background analysis from step {} until promotion: {}",
            bg.starting_step,
            describe_source(&bg.source)
        );
    }
    let svc = m.spec.service_name();
    let _ = writeln!(
        out,
        "promote: copy the pod template to {}-primary and wait until it is ready",
        m.spec.target_ref.name
    );
    for w in plan.promotion_weights() {
        let _ = writeln!(
            out,
            "{:>3}  {:<60} {:>5}% {:>6}%",
            "",
            format!("traffic to {svc}-primary"),
            w.get(),
            w.complement().get()
        );
    }
    let delay = plan.promotion.scale_down_delay_secs;
    if delay > 0 {
        let _ = writeln!(out, "finalise: scale the canary to zero after {delay}s");
    } else {
        let _ = writeln!(out, "finalise: scale the canary to zero");
    }
    let _ = writeln!(
        out,
        "abort (failed analysis or request): canary 0% at once, canary scaled to zero, phase Failed"
    );
    let _ = writeln!(
        out,
        "minimum time: {}s of timed pauses; progress deadline {}s",
        plan.minimum_secs(),
        plan.progress_deadline_secs
    );
    out
}
