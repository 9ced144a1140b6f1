//! `rollgate history`: per environment, the current version and how it got there.

use super::promote::{GitArgs, git_error, print_json};
use super::{Exit, OutputFormat};

/// Arguments of `rollgate history`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Policy, application, remote and output options.
    #[command(flatten)]
    pub git: GitArgs,
}

/// Run `rollgate history`.
///
/// # Errors
/// Bad input ([`super::UsageError`], exit 64) or Git failures (exit 3).
pub async fn run(args: Args) -> anyhow::Result<Exit> {
    let (_, policy) = args.git.load_policy()?;
    let promoter = args.git.promoter(&policy).await?;
    let history = promoter.history(&policy).await.map_err(git_error)?;
    match args.git.output {
        OutputFormat::Json => print_json(&history)?,
        OutputFormat::Text => {
            for h in &history {
                let current = h.current.as_deref().unwrap_or("?");
                println!("{}: {} ({} in {})", h.env, current, h.field, h.file);
                if let Some(e) = &h.error {
                    println!("  error: {e}");
                }
                if let Some(s) = &h.set_by {
                    println!(
                        "  since {} by commit {} ({}){}{}",
                        s.since,
                        &s.commit[..s.commit.len().min(12)],
                        s.promotion
                            .as_deref()
                            .map_or_else(|| s.subject.clone(), |p| format!("promotion {p}")),
                        s.from
                            .as_deref()
                            .map_or_else(String::new, |f| format!(", from {f}")),
                        s.evidence
                            .as_deref()
                            .map_or_else(String::new, |e| format!(", evidence: {e}")),
                    );
                }
                for p in &h.pending {
                    println!(
                        "  pending approval: {} on branch {} since {}",
                        p.version, p.branch, p.since
                    );
                }
            }
        }
    }
    let failed = history.iter().any(|h| h.error.is_some());
    Ok(if failed {
        Exit::Error
    } else {
        Exit::Successful
    })
}
