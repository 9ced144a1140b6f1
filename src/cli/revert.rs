//! `rollgate revert`: revert the commit that brought a version into an environment.

use super::promote::{GitArgs, git_error, print_json};
use super::{Exit, OutputFormat, UsageError};
use crate::core::promotion::policy::Version;
use crate::gitops::{RevertOutcome, RevertResult};

/// Arguments of `rollgate revert`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Policy, application, remote and output options.
    #[command(flatten)]
    pub git: GitArgs,
    /// The environment.
    #[arg(long, value_name = "ENV")]
    pub env: String,
    /// The version to take out of the environment.
    #[arg(long, value_name = "V")]
    pub version: String,
    /// Why (recorded in the message and the `Rollgate-Reason` trailer).
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
    /// What the revert rests on (default: the reverted promotion's evidence).
    #[arg(long, value_name = "TEXT")]
    pub evidence: Option<String>,
}

/// Run `rollgate revert`.
///
/// # Errors
/// Bad input ([`UsageError`], exit 64) or Git failures (exit 3).
pub async fn run(args: Args) -> anyhow::Result<Exit> {
    let (file, policy) = args.git.load_policy()?;
    let env = args.git.environment(&file, &policy, &args.env)?.clone();
    let version: Version = args
        .version
        .parse()
        .map_err(|e| UsageError(format!("--version: {e}")))?;
    let promoter = args.git.promoter(&policy).await?;
    let outcome = promoter
        .revert(
            &policy,
            &env,
            &version,
            args.reason.as_deref(),
            args.evidence.as_deref(),
        )
        .await
        .map_err(git_error)?;
    match args.git.output {
        OutputFormat::Json => print_json(&outcome)?,
        OutputFormat::Text => println!("{}", describe(&outcome)),
    }
    Ok(Exit::Successful)
}

fn describe(o: &RevertOutcome) -> String {
    match o.result {
        RevertResult::Reverted => format!(
            "reverted {} {} in {}: commit {} restores {} ({}; reverted commit {})",
            o.app,
            o.version,
            o.env,
            o.commit.as_deref().unwrap_or("-"),
            o.restored.as_deref().unwrap_or("-"),
            match o.mode {
                Some(crate::core::promotion::plan::RevertMode::FieldOnly) =>
                    "only the field: later commits touched the file",
                _ => "whole change",
            },
            o.reverted.as_deref().unwrap_or("-"),
        ),
        RevertResult::NotCurrent => format!(
            "nothing to revert: {} has {} {}, not {}",
            o.env,
            o.app,
            o.current.as_deref().unwrap_or("-"),
            o.version
        ),
        RevertResult::NotFound => format!(
            "nothing to revert: no commit brought {} into {}",
            o.version, o.env
        ),
    }
}
