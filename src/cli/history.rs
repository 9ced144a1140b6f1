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
                        utc(s.since),
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
                        p.version,
                        p.branch,
                        utc(p.since)
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

/// `YYYY-MM-DDTHH:MM:SSZ` of a Unix time (civil-from-days, proleptic Gregorian).
fn utc(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats_utc() {
        assert_eq!(super::utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::utc(1_795_000_000), "2026-11-18T11:06:40Z");
        assert_eq!(super::utc(951_782_400), "2000-02-29T00:00:00Z");
    }
}
