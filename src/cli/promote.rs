//! `rollgate promote`: commit a version into an environment of a GitOps repository.
//!
//! Also holds what the Git commands share: [`GitArgs`] (policy, app, remote,
//! credentials, cache, timeouts) and the mapping of errors to exit statuses.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;

use super::{Exit, OutputFormat, UsageError};
use crate::core::promotion::plan::Source;
use crate::core::promotion::policy::{EnvironmentSpec, PolicyFile, PromotionPolicy, Version};
use crate::gitops::{
    Credentials, GitError, Identity, Promoter, PromoterConfig, PromotionOutcome, PromotionResult,
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
    /// What the promotion rests on (recorded in the `Rollgate-Evidence` trailer).
    #[arg(long, value_name = "TEXT")]
    pub evidence: Option<String>,
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

/// The hook before a promotion is committed. Today it passes everything through with
/// the caller's evidence; `--require-analysis FILE [--prometheus URL]` will run the
/// analysis here and return its summary as evidence, or stop the promotion
/// (`Err(exit)`) when the analysis is not Successful.
async fn pre_check(
    args: &Args,
    _resolved: &ResolvedPromotion,
) -> anyhow::Result<Result<Option<String>, Exit>> {
    Ok(Ok(args.evidence.clone()))
}

/// Run `rollgate promote`.
///
/// # Errors
/// Bad input ([`UsageError`], exit 64) or Git failures (exit 3).
pub async fn run(args: Args) -> anyhow::Result<Exit> {
    let (file, policy) = args.git.load_policy()?;
    let env = args.git.environment(&file, &policy, &args.to)?.clone();
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
        version: version.clone(),
        source: source.clone(),
    };
    let evidence = match pre_check(&args, &resolved).await? {
        Ok(e) => e,
        Err(exit) => return Ok(exit),
    };
    let promoter = args.git.promoter(&policy).await?;
    let outcome = promoter
        .promote(&policy, &env, &version, source, evidence.as_deref())
        .await
        .map_err(git_error)?;
    match args.git.output {
        OutputFormat::Json => print_json(&outcome)?,
        OutputFormat::Text => println!("{}", describe(&outcome)),
    }
    Ok(Exit::Successful)
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
