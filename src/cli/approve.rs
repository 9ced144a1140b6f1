//! `rollgate approve`: land a promotion that waits for manual approval.

use super::promote::{GitArgs, git_error, print_json};
use super::{Exit, OutputFormat, UsageError};
use crate::core::promotion::policy::Version;
use crate::gitops::{ApprovalOutcome, ApprovalResult};

/// Arguments of `rollgate approve`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Policy, application, remote and output options.
    #[command(flatten)]
    pub git: GitArgs,
    /// The environment the promotion enters.
    #[arg(long, value_name = "ENV")]
    pub env: String,
    /// The version waiting for approval.
    #[arg(long, value_name = "V")]
    pub version: String,
}

/// Run `rollgate approve`.
///
/// # Errors
/// Bad input ([`UsageError`], exit 64), nothing to approve or Git failures (exit 3).
pub async fn run(args: Args) -> anyhow::Result<Exit> {
    let (file, policy) = args.git.load_policy()?;
    let env = args.git.environment(&file, &policy, &args.env)?.clone();
    let version: Version = args
        .version
        .parse()
        .map_err(|e| UsageError(format!("--version: {e}")))?;
    let promoter = args.git.promoter(&policy).await?;
    let outcome = promoter
        .approve(&policy, &env, &version)
        .await
        .map_err(git_error)?;
    match args.git.output {
        OutputFormat::Json => print_json(&outcome)?,
        OutputFormat::Text => println!("{}", describe(&outcome)),
    }
    Ok(Exit::Successful)
}

fn describe(o: &ApprovalOutcome) -> String {
    let commit = o.commit.as_deref().unwrap_or("-");
    let deleted = if o.branch_deleted {
        format!("; branch {} deleted", o.approval_branch)
    } else {
        String::new()
    };
    match o.result {
        ApprovalResult::Landed => format!("approved {}: commit {commit}{deleted}", o.id),
        ApprovalResult::AlreadyLanded => format!(
            "already approved: {} is on the branch (commit {commit}){deleted}",
            o.id
        ),
        ApprovalResult::AlreadyAtVersion => format!(
            "nothing to commit: the environment already has the version of {}{deleted}",
            o.id
        ),
    }
}
