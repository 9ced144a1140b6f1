//! `rollgate promote`: commit a version into an environment of a GitOps repository,
//! optionally gated by an analysis (`--require-analysis`) that promotes only on Successful
//! and, with `--revert-on-failure`, reverts the source environment on Failed.
//!
//! Also holds what the Git commands share: [`GitArgs`] (policy, app, remote,
//! credentials, cache, timeouts) and the mapping of errors to exit statuses.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;

use super::analyze::{self, LoadedAnalysis};
use super::{Exit, OutputFormat, UsageError};
use crate::core::analysis::status::AnalysisRunStatus;
use crate::core::analysis::value::AnalysisPhase;
use crate::core::promotion::plan::{Source, one_line};
use crate::core::promotion::policy::{EnvironmentSpec, PolicyFile, PromotionPolicy, Version};
use crate::gitops::{
    Credentials, GitError, Identity, Promoter, PromoterConfig, PromotionOutcome, PromotionResult,
    RevertOutcome,
};

/// Options every Git command takes.
#[derive(Debug, Clone, clap::Args)]
pub struct GitArgs {
    /// The PromotionPolicy file (one or more YAML documents).
    #[arg(long, value_name = "FILE")]
    pub policy: PathBuf,
    /// The application: the policy's `metadata.name`.
    #[arg(long, value_name = "APP")]
    pub app: String,
    /// Clone URL overriding the policy's `spec.repository.url`.
    #[arg(long, value_name = "URL")]
    pub repo: Option<String>,
    /// File holding an HTTPS token (else `ROLLGATE_GIT_TOKEN` / `ROLLGATE_GIT_TOKEN_FILE`).
    #[arg(long, value_name = "FILE")]
    pub git_token_file: Option<PathBuf>,
    /// File holding an HTTPS basic-auth password (else `ROLLGATE_GIT_PASSWORD(_FILE)`).
    #[arg(long, value_name = "FILE")]
    pub git_password_file: Option<PathBuf>,
    /// User name for HTTPS or SSH (else `ROLLGATE_GIT_USERNAME`).
    #[arg(long, value_name = "NAME")]
    pub git_username: Option<String>,
    /// SSH private key file (else `ROLLGATE_GIT_SSH_KEY`, else the SSH agent).
    #[arg(long, value_name = "FILE")]
    pub ssh_key: Option<PathBuf>,
    /// Directory of the bare cache clone (default: `ROLLGATE_CACHE_DIR` or
    /// `~/.cache/rollgate/git`, one clone per URL).
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Bound of each fetch and push, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    pub timeout: u64,
    /// Fetch-edit-push attempts when other promoters win the race.
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub max_attempts: u32,
    /// Commit author name (else `ROLLGATE_GIT_AUTHOR_NAME`, else `rollgate`).
    #[arg(long, env = "ROLLGATE_GIT_AUTHOR_NAME", default_value = "rollgate")]
    pub author_name: String,
    /// Commit author e-mail (else `ROLLGATE_GIT_AUTHOR_EMAIL`).
    #[arg(
        long,
        env = "ROLLGATE_GIT_AUTHOR_EMAIL",
        default_value = "rollgate@localhost"
    )]
    pub author_email: String,
    /// How to print the result.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

impl GitArgs {
    /// Read the policy file and pick the application's policy.
    ///
    /// # Errors
    /// A [`UsageError`] naming the file (unreadable, malformed, unknown app).
    pub fn load_policy(&self) -> anyhow::Result<(PolicyFile, PromotionPolicy)> {
        let name = self.policy.display().to_string();
        let text = std::fs::read_to_string(&self.policy)
            .map_err(|e| UsageError(format!("{name}: cannot read the policy file: {e}")))?;
        let file = PolicyFile::parse(&name, &text).map_err(|e| UsageError(e.to_string()))?;
        let policy = file
            .app(&self.app)
            .map_err(|e| UsageError(e.to_string()))?
            .clone();
        Ok((file, policy))
    }

    /// The environment `env` of the policy.
    ///
    /// # Errors
    /// A [`UsageError`] naming the file and the environments it has.
    pub fn environment<'a>(
        &self,
        file: &PolicyFile,
        policy: &'a PromotionPolicy,
        env: &str,
    ) -> anyhow::Result<&'a EnvironmentSpec> {
        file.environment(&self.app, env)
            .map_err(|e| UsageError(e.to_string()))?;
        policy
            .environment(env)
            .ok_or_else(|| UsageError(format!("unknown environment {env}")).into())
    }

    /// Open a [`Promoter`] for the policy's repository (or `--repo`).
    ///
    /// # Errors
    /// Unreadable credential files ([`UsageError`]) or an unusable cache directory.
    pub async fn promoter(&self, policy: &PromotionPolicy) -> anyhow::Result<Promoter> {
        let url = self
            .repo
            .clone()
            .unwrap_or_else(|| policy.spec.repository.url.clone());
        let mut config = PromoterConfig::new(&url, &policy.spec.repository.branch);
        let mut credentials = Credentials::from_env().map_err(|e| UsageError(e.to_string()))?;
        if let Some(f) = &self.git_token_file {
            credentials = credentials
                .with_token_file(f)
                .map_err(|e| UsageError(e.to_string()))?;
        }
        if let Some(f) = &self.git_password_file {
            credentials = credentials
                .with_password_file(f)
                .map_err(|e| UsageError(e.to_string()))?;
        }
        if let Some(u) = &self.git_username {
            credentials.username = Some(u.clone());
        }
        if let Some(k) = &self.ssh_key {
            credentials.ssh_key = Some(k.clone());
        }
        config.credentials = credentials;
        if let Some(dir) = &self.cache_dir {
            config.cache_dir = dir.clone();
        }
        config.timeout = Duration::from_secs(self.timeout.max(1));
        config.max_attempts = self.max_attempts.max(1);
        config.identity = Identity {
            name: self.author_name.clone(),
            email: self.author_email.clone(),
        };
        Ok(Promoter::open(config).await?)
    }
}

/// Turn a Git-side error into the CLI's: input problems (missing file or field,
/// malformed YAML) exit 64, the rest 3.
pub fn git_error(e: GitError) -> anyhow::Error {
    if e.is_input_error() {
        UsageError(e.to_string()).into()
    } else {
        anyhow::Error::new(e)
    }
}

/// Print `value` as JSON on stdout.
///
/// # Errors
/// When serialisation fails.
pub fn print_json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    println!(
        "{}",
        serde_json::to_string_pretty(value).context("serialising the result")?
    );
    Ok(())
}

/// Arguments of `rollgate promote`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["version", "from"])))]
pub struct Args {
    /// Policy, application, remote and output options.
    #[command(flatten)]
    pub git: GitArgs,
    /// The environment to promote into.
    #[arg(long, value_name = "ENV")]
    pub to: String,
    /// The version to write.
    #[arg(long, value_name = "V")]
    pub version: Option<String>,
    /// Take the version that environment ENV has now.
    #[arg(long, value_name = "ENV")]
    pub from: Option<String>,
    /// What the promotion rests on (recorded in the `Rollgate-Evidence` trailer; with
    /// `--require-analysis`, together with the analysis summary).
    #[arg(long, value_name = "TEXT")]
    pub evidence: Option<String>,
    /// The analysis gate: run analysis files first, promote only on Successful.
    #[command(flatten)]
    pub gate: GateArgs,
}

/// Options of the analysis gate (`--require-analysis`).
#[derive(Debug, Clone, clap::Args)]
pub struct GateArgs {
    /// Run these analysis files first (as `rollgate analyze -f`, composed into one run)
    /// and promote only when the run is Successful; repeat to compose templates.
    #[arg(long = "require-analysis", value_name = "FILE")]
    pub require_analysis: Vec<PathBuf>,
    /// An argument value of the analysis, overriding the template's.
    #[arg(long = "arg", value_name = "NAME=VALUE", requires = "require_analysis")]
    pub args: Vec<String>,
    /// Prometheus base URL replacing the address of every prometheus (and builtin) metric.
    #[arg(long, value_name = "URL", requires = "require_analysis")]
    pub prometheus: Option<String>,
    /// Delay before retrying a measurement that ended in Error (a Go duration).
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "10s",
        requires = "require_analysis"
    )]
    pub error_retry_interval: String,
    /// When the analysis Fails, revert the promotion commit of the version in the source
    /// environment (`--from`, else the environment before `--to`). Never on Error or
    /// Inconclusive.
    #[arg(long, requires = "require_analysis")]
    pub revert_on_failure: bool,
}

/// A promotion whose version is known, before it is carried out.
#[derive(Debug, Clone)]
pub struct ResolvedPromotion {
    /// The application.
    pub app: String,
    /// The target environment.
    pub env: String,
    /// The version.
    pub version: Version,
    /// Where it comes from.
    pub source: Source,
}

/// The analysis gate, checked before Git is touched.
struct Gate {
    analysis: LoadedAnalysis,
    error_retry_interval: Duration,
    /// The environment whose promotion is reverted when the analysis fails.
    revert_env: Option<EnvironmentSpec>,
}

impl Gate {
    /// Read the analysis files and the flags; `None` without `--require-analysis`.
    fn load(
        args: &Args,
        file: &PolicyFile,
        policy: &PromotionPolicy,
    ) -> anyhow::Result<Option<Self>> {
        let g = &args.gate;
        if g.require_analysis.is_empty() {
            return Ok(None);
        }
        let revert_env = if g.revert_on_failure {
            let env = match &args.from {
                Some(from) => args.git.environment(file, policy, from)?.clone(),
                None => policy.previous(&args.to).cloned().ok_or_else(|| {
                    UsageError(format!(
                        "--revert-on-failure: {} is the first environment of {}'s policy, so \
                         there is no source environment to revert: give --from ENV",
                        args.to,
                        policy.app()
                    ))
                })?,
            };
            Some(env)
        } else {
            None
        };
        let error_retry_interval = analyze::parse_error_retry_interval(&g.error_retry_interval)?;
        let analysis = LoadedAnalysis::from_files(&g.require_analysis, &g.args)?;
        Ok(Some(Self {
            analysis,
            error_retry_interval,
            revert_env,
        }))
    }
}

/// What `rollgate promote --require-analysis` did, as printed by `--output json`.
#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GatedPromotion {
    /// The final `AnalysisRun.status` (Argo's field names).
    pub analysis: AnalysisRunStatus,
    /// The one-line summary of the run (the promotion's or the revert's evidence).
    pub summary: String,
    /// What was done in Git.
    pub git_action: GitAction,
    /// The promotion, when the analysis was Successful.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub promotion: Option<PromotionOutcome>,
    /// The revert of the source environment, when the analysis Failed and
    /// `--revert-on-failure` was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revert: Option<RevertOutcome>,
}

/// What the gate did in Git.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum GitAction {
    /// The analysis was Successful: the promotion ran (see its result).
    Promote,
    /// The analysis Failed: the source environment's promotion was reverted (see its
    /// result).
    Revert,
    /// Nothing: the analysis was not Successful (and no revert was asked for or due).
    None,
}

/// The one-line summary of a finished run: phase, message, the objects the metrics come
/// from, and per metric its last value, phase and successful/total measurements.
fn summary(objects: &[String], status: &AnalysisRunStatus) -> String {
    let mut s = format!("analysis {}", status.phase);
    if !objects.is_empty() {
        s.push_str(&format!(" ({})", objects.join(", ")));
    }
    if !status.message.is_empty() {
        s.push_str(&format!(": {}", status.message));
    }
    let metrics: Vec<String> = status
        .metric_results
        .iter()
        .map(|r| {
            let last = r
                .measurements
                .last()
                .map(|m| m.value.as_str())
                .filter(|v| !v.is_empty())
                .map_or_else(String::new, |v| format!("={v}"));
            let dry = if r.dry_run { " dry-run" } else { "" };
            format!(
                "{}{last} ({}{dry}, {}/{} successful)",
                r.name, r.phase, r.successful, r.count
            )
        })
        .collect();
    if !metrics.is_empty() {
        s.push_str(&format!("; {}", metrics.join(", ")));
    }
    one_line(&s)
}

/// Run `rollgate promote`.
///
/// # Errors
/// Bad input ([`UsageError`], exit 64: also unreadable analysis files, before Git is
/// touched) or Git failures (exit 3).
pub async fn run(args: Args) -> anyhow::Result<Exit> {
    let (file, policy) = args.git.load_policy()?;
    let env = args.git.environment(&file, &policy, &args.to)?.clone();
    let gate = Gate::load(&args, &file, &policy)?;
    let (version, source) = match (&args.version, &args.from) {
        (Some(v), _) => (
            v.parse::<Version>()
                .map_err(|e| UsageError(format!("--version: {e}")))?,
            Source::Direct,
        ),
        (None, Some(from)) => {
            let from_env = args.git.environment(&file, &policy, from)?.clone();
            let promoter = args.git.promoter(&policy).await?;
            let v = promoter
                .current_version(&from_env)
                .await
                .map_err(git_error)?;
            drop(promoter);
            (v, Source::Environment(from.clone()))
        }
        (None, None) => return Err(UsageError("give --version or --from".into()).into()),
    };
    let resolved = ResolvedPromotion {
        app: policy.app().to_owned(),
        env: env.name.to_string(),
        version,
        source,
    };
    let Some(gate) = gate else {
        let outcome = promote(&args, &policy, &env, &resolved, args.evidence.clone()).await?;
        match args.git.output {
            OutputFormat::Json => print_json(&outcome)?,
            OutputFormat::Text => println!("{}", describe(&outcome)),
        }
        return Ok(Exit::Successful);
    };
    run_gated(&args, &policy, &env, &resolved, gate).await
}

/// Commit the resolved promotion with `evidence`.
async fn promote(
    args: &Args,
    policy: &PromotionPolicy,
    env: &EnvironmentSpec,
    resolved: &ResolvedPromotion,
    evidence: Option<String>,
) -> anyhow::Result<PromotionOutcome> {
    let promoter = args.git.promoter(policy).await?;
    promoter
        .promote(
            policy,
            env,
            &resolved.version,
            resolved.source.clone(),
            evidence.as_deref(),
        )
        .await
        .map_err(git_error)
}

/// Run the analysis, then promote (Successful), revert the source environment (Failed
/// with `--revert-on-failure`) or leave Git alone. Error never reverts: an unreachable
/// Prometheus is no evidence against the version.
async fn run_gated(
    args: &Args,
    policy: &PromotionPolicy,
    env: &EnvironmentSpec,
    resolved: &ResolvedPromotion,
    gate: Gate,
) -> anyhow::Result<Exit> {
    tracing::info!(
        app = %resolved.app,
        env = %resolved.env,
        version = %resolved.version,
        "running the analysis before promoting"
    );
    let status = gate
        .analysis
        .run(
            args.gate.prometheus.clone(),
            gate.error_retry_interval,
            analyze::live,
        )
        .await;
    let summary = summary(&gate.analysis.objects(), &status);
    let exit = analyze::exit_for(status.phase);
    let mut report = GatedPromotion {
        analysis: status,
        summary,
        git_action: GitAction::None,
        promotion: None,
        revert: None,
    };
    let mut failure = None;
    match report.analysis.phase {
        AnalysisPhase::Successful => {
            let evidence = match &args.evidence {
                Some(given) => format!("{given}; {}", report.summary),
                None => report.summary.clone(),
            };
            report.git_action = GitAction::Promote;
            match promote(args, policy, env, resolved, Some(evidence)).await {
                Ok(o) => report.promotion = Some(o),
                Err(e) => failure = Some(e),
            }
        }
        AnalysisPhase::Failed => {
            if let Some(source) = &gate.revert_env {
                report.git_action = GitAction::Revert;
                let reason = if report.analysis.message.is_empty() {
                    "analysis Failed".to_owned()
                } else {
                    format!("analysis Failed: {}", report.analysis.message)
                };
                let reverted = async {
                    let promoter = args.git.promoter(policy).await?;
                    promoter
                        .revert(
                            policy,
                            source,
                            &resolved.version,
                            Some(&reason),
                            Some(&report.summary),
                        )
                        .await
                        .map_err(git_error)
                }
                .await;
                match reverted {
                    Ok(o) => report.revert = Some(o),
                    Err(e) => failure = Some(e),
                }
            }
        }
        // Inconclusive: a person decides. Error (unreachable Prometheus, invalid spec,
        // unsupported provider): not evidence against the version, so never a revert.
        _ => {}
    }
    match args.git.output {
        OutputFormat::Json => print_json(&report)?,
        OutputFormat::Text => println!("{}", describe_gated(resolved, &report)),
    }
    if let Some(e) = failure {
        // The analysis verdict is on stdout; the Git step it asked for did not happen.
        return Err(e.context(match report.git_action {
            GitAction::Revert => "the analysis Failed but reverting the source environment failed",
            _ => "the analysis was Successful but the promotion failed",
        }));
    }
    Ok(exit)
}

fn describe_gated(resolved: &ResolvedPromotion, r: &GatedPromotion) -> String {
    let mut lines = vec![r.summary.clone()];
    match (&r.promotion, &r.revert) {
        (Some(p), _) => lines.push(describe(p)),
        (None, Some(rv)) => lines.push(super::revert::describe(rv)),
        (None, None) => lines.push(match (r.git_action, r.analysis.phase) {
            (GitAction::Promote | GitAction::Revert, _) => {
                "the Git step did not complete (see the error below)".to_owned()
            }
            (GitAction::None, AnalysisPhase::Failed) => format!(
                "not promoted: {} {} stays out of {} (give --revert-on-failure to revert it in the source environment)",
                resolved.app, resolved.version, resolved.env
            ),
            (GitAction::None, AnalysisPhase::Error) => format!(
                "not promoted: the analysis ended in Error, which is no verdict on {} {}; nothing reverted",
                resolved.app, resolved.version
            ),
            (GitAction::None, _) => format!(
                "not promoted: {} {} stays out of {}; nothing changed in Git",
                resolved.app, resolved.version, resolved.env
            ),
        }),
    }
    lines.join("\n")
}

fn describe(o: &PromotionOutcome) -> String {
    let commit = o.commit.as_deref().unwrap_or("-");
    match o.result {
        PromotionResult::Committed => format!(
            "promoted {} {} to {}: commit {} on {} (was {})",
            o.app,
            o.version,
            o.env,
            commit,
            o.branch,
            o.previous.as_deref().unwrap_or("-")
        ),
        PromotionResult::PendingApproval => format!(
            "promotion {} waits for approval on branch {} (commit {}): run `rollgate approve` or merge the branch",
            o.id, o.branch, commit
        ),
        PromotionResult::AlreadyAtVersion => format!(
            "nothing to commit: {} already has {} {}",
            o.env, o.app, o.version
        ),
        PromotionResult::AlreadyLanded => format!(
            "nothing to commit: promotion {} is already on {} (commit {})",
            o.id, o.branch, commit
        ),
        PromotionResult::AlreadyPending => format!(
            "nothing to push: promotion {} already waits for approval on branch {} (commit {})",
            o.id, o.branch, commit
        ),
    }
}
