//! `rollgate demo`: the dev → staging → prod story on one machine (see [`crate::demo`]),
//! and `rollgate demo-app`, one version of the demo's application.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;

use super::{Exit, OutputFormat, UsageError};
use crate::demo::app::{AppConfig, serve};
use crate::demo::netns;
use crate::demo::report;
use crate::demo::run::{Options, run as run_demo};

/// Arguments of `rollgate demo`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// No live view: events as lines (on stderr with `--output json`), then the summary.
    #[arg(long)]
    pub headless: bool,
    /// How to print the summary (`json`: one document on stdout; implies `--headless`).
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    /// Where the JSON event log (one event per line) goes.
    #[arg(
        long,
        value_name = "FILE",
        default_value = "rollgate-demo-events.jsonl"
    )]
    pub event_log: PathBuf,
    /// The directory holding kube-apiserver, etcd and kubectl (default: what
    /// `scripts/k8s-test-env bin-dir` prints in the source tree).
    #[arg(long, value_name = "DIR", env = "ROLLGATE_K8S_BIN_DIR")]
    pub k8s_bin_dir: Option<PathBuf>,
    /// The Traefik binary (default: what `scripts/traefik-build path` prints).
    #[arg(long, value_name = "FILE", env = "ROLLGATE_TRAEFIK")]
    pub traefik: Option<PathBuf>,
    /// Keep logs, the deploy repository and Prometheus' data in this directory (default:
    /// a temporary one, removed after a successful run).
    #[arg(long, value_name = "DIR")]
    pub work_dir: Option<PathBuf>,
    /// Requests per second per environment.
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub rate: u32,
}

/// Run `rollgate demo`.
///
/// # Errors
/// A missing tool or a part that did not come up (exit 3); a story that stopped early
/// also exits 3, after printing the report.
pub async fn run(args: Args) -> anyhow::Result<Exit> {
    if !netns::inside() {
        let code = netns::reexec(std::env::args_os().skip(1).collect()).await?;
        return Ok(match code {
            0 => Exit::Successful,
            1 => Exit::Failed,
            64 => Exit::Usage,
            _ => Exit::Error,
        });
    }
    if args.rate == 0 {
        return Err(UsageError("--rate must be at least 1".into()).into());
    }
    let json = args.output == OutputFormat::Json;
    let event_log = std::path::absolute(&args.event_log)
        .with_context(|| format!("--event-log {}", args.event_log.display()))?;
    let report = run_demo(Options {
        // The live view would mix with the JSON document on stdout.
        headless: args.headless || json,
        json,
        event_log: event_log.clone(),
        k8s_bin_dir: args.k8s_bin_dir,
        traefik: args.traefik,
        work_dir: args.work_dir,
        rate: args.rate,
    })
    .await?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).context("serialising the report")?
        );
    } else {
        print!("{}", report::text(&report));
        println!("\nevent log: {}", event_log.display());
    }
    Ok(if report.completed {
        Exit::Successful
    } else {
        Exit::Error
    })
}

/// Arguments of `rollgate demo-app`.
#[derive(Debug, clap::Args)]
pub struct AppArgs {
    /// The version it reports.
    #[arg(long, value_name = "V")]
    pub version: String,
    /// Address to listen on.
    #[arg(long, value_name = "ADDR")]
    pub listen: String,
    /// Every n-th request fails with 500 and the injected-error header (0: never).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub error_every: u64,
    /// Milliseconds spent on each request.
    #[arg(long, value_name = "MS", default_value_t = 5)]
    pub latency_ms: u64,
}

/// Run `rollgate demo-app` until SIGTERM.
///
/// # Errors
/// The address cannot be bound.
pub async fn run_app(args: AppArgs) -> anyhow::Result<Exit> {
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .map_err(|e| UsageError(format!("--listen {}: {e}", args.listen)))?;
    let shutdown = crate::shutdown::Shutdown::new();
    shutdown
        .listen_for_signals()
        .context("installing the signal handlers")?;
    serve(
        listener,
        AppConfig {
            version: args.version,
            error_every: args.error_every,
            latency: Duration::from_millis(args.latency_ms),
        },
        shutdown.wait(),
    )
    .await
    .context("serving")?;
    Ok(Exit::Successful)
}
