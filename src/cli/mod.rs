//! The `rollgate` command line: argument parsing and dispatch to one module per command.
//!
//! Each subcommand lives in its own module with an `Args` struct (clap derive) and an
//! async `run` that returns the process exit status. Commands that decide something take
//! `--output text|json`.

use clap::{Parser, Subcommand, ValueEnum};

pub mod analyze;
pub mod approve;
pub mod controller;
pub mod crds;
pub mod demo;
pub mod history;
pub mod judge;
pub mod metrics;
pub mod plan;
pub mod promote;
pub mod revert;
pub mod rollout;
pub mod tester;

/// Exit status of a command that renders a verdict (see the README).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Exit {
    /// The analysis, judgement or operation succeeded.
    Successful = 0,
    /// The analysis failed: the canary is bad.
    Failed = 1,
    /// The analysis could not decide.
    Inconclusive = 2,
    /// The analysis or operation ended in error (provider, Git, invalid spec).
    Error = 3,
    /// Unreadable input or bad usage (BSD `EX_USAGE`).
    Usage = 64,
}

impl From<Exit> for u8 {
    fn from(e: Exit) -> u8 {
        e as u8
    }
}

/// An error caused by the caller's input (unreadable file, malformed YAML, bad flag
/// value): `main` maps it to exit status 64 instead of 3.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// How a command prints its decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum OutputFormat {
    /// Human-readable text.
    #[default]
    Text,
    /// One JSON document on stdout.
    Json,
}

/// How logs are written to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// rollgate: progressive delivery judged on real metrics, promoted through Git.
#[derive(Debug, Parser)]
#[command(name = "rollgate", version, about, long_about = None)]
pub struct Cli {
    /// Log filter for stderr (tracing `EnvFilter` syntax, e.g. `info,rollgate=debug`).
    #[arg(long, global = true, env = "ROLLGATE_LOG", default_value = "warn")]
    pub log_level: String,
    /// Log line format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands. The README's command list is checked against this enum by a test.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run AnalysisTemplates against Prometheus until they finish (a CI quality gate).
    Analyze(analyze::Args),
    /// List or render Flagger-compatible built-in metric queries.
    #[command(subcommand)]
    Metrics(metrics::Command),
    /// Compare baseline and canary samples with a statistical judge.
    #[command(subcommand)]
    Judge(judge::Command),
    /// Commit a version into an environment of a GitOps repository.
    Promote(promote::Args),
    /// Revert the commit that brought a version into an environment.
    Revert(revert::Args),
    /// Approve a pending promotion into an environment that needs manual approval.
    Approve(approve::Args),
    /// Show, per environment, the current version and how it got there.
    History(history::Args),
    /// Print the steps a Rollout will take and the weight at each.
    Plan(plan::Args),
    /// Print rollgate's CustomResourceDefinitions as YAML.
    Crds(crds::Args),
    /// Run the controller: canary and blue-green rollouts, analysis runs, Git promotion.
    Controller(controller::Args),
    /// Ask the controller to promote, abort or retry a Rollout.
    #[command(subcommand)]
    Rollout(rollout::Command),
    /// Serve webhook smoke checks, allow-listed commands and steady load (a load tester).
    Tester(tester::Args),
    /// Run the dev → staging → prod story on one machine, with real traffic.
    Demo(demo::Args),
    /// Serve one version of the demo's application (started by `rollgate demo`).
    #[command(hide = true)]
    DemoApp(demo::AppArgs),
}

impl Command {
    /// Run the command and return its exit status.
    ///
    /// # Errors
    /// Any error the command could not turn into a verdict; `main` prints it and exits 3,
    /// or 64 when it is a [`UsageError`].
    pub async fn run(self) -> anyhow::Result<Exit> {
        match self {
            Command::Analyze(a) => analyze::run(a).await,
            Command::Metrics(c) => metrics::run(c).await,
            Command::Judge(c) => judge::run(c).await,
            Command::Promote(a) => promote::run(a).await,
            Command::Revert(a) => revert::run(a).await,
            Command::Approve(a) => approve::run(a).await,
            Command::History(a) => history::run(a).await,
            Command::Plan(a) => plan::run(a).await,
            Command::Crds(a) => crds::run(a).await,
            Command::Controller(a) => controller::run(a).await,
            Command::Rollout(c) => rollout::run(c).await,
            Command::Tester(a) => tester::run(a).await,
            Command::Demo(a) => demo::run(a).await,
            Command::DemoApp(a) => demo::run_app(a).await,
        }
    }
}
