//! `rollgate controller`: run the Rollout and AnalysisRun reconcilers for this cluster's
//! environment until SIGTERM or Ctrl-C.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;

use super::Exit;
use crate::controller::{Config, Telemetry};
use crate::providers::ProviderSettings;

/// Arguments of `rollgate controller`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// This cluster's environment, as named in the PromotionPolicies (`dev`, `prod`).
    #[arg(long = "env", value_name = "NAME", env = "ROLLGATE_ENV")]
    pub env: String,
    /// Prometheus for every metric (overrides the metrics' own addresses).
    #[arg(long, value_name = "URL")]
    pub prometheus: Option<String>,
    /// Watch only this namespace (default: all namespaces).
    #[arg(long, short = 'n', value_name = "NS")]
    pub namespace: Option<String>,
    /// Identical Prometheus queries of different runs within this many seconds are sent
    /// once (0 turns coalescing off).
    #[arg(long, value_name = "SECONDS", default_value_t = 5)]
    pub coalesce_window: u64,
    /// Where the Git cache clones live.
    #[arg(long, value_name = "DIR")]
    pub git_cache: Option<PathBuf>,
}

/// Logs what the reconcilers record, at trace level (the Prometheus registry of
/// `server` replaces it once merged).
struct LogTelemetry;

impl Telemetry for LogTelemetry {
    fn reconciled(&self, kind: &'static str, ok: bool, seconds: f64) {
        tracing::trace!(kind, ok, seconds, "reconciled");
    }
    fn rollout(&self, phase: &'static str, weight: u8) {
        tracing::trace!(phase, weight, "rollout");
    }
    fn analysis_completed(&self, phase: &'static str) {
        tracing::trace!(phase, "analysis completed");
    }
    fn query(&self, seconds: f64, coalesced: bool) {
        tracing::trace!(seconds, coalesced, "query");
    }
    fn promotion(&self, ok: bool, seconds: f64) {
        tracing::trace!(ok, seconds, "promotion");
    }
}

/// Run `rollgate controller`.
///
/// # Errors
/// No usable kubeconfig or in-cluster configuration.
pub async fn run(args: Args) -> anyhow::Result<Exit> {
    let client = kube::Client::try_default()
        .await
        .context("connecting to the Kubernetes API (kubeconfig or in-cluster)")?;
    let mut config = Config::new(&args.env);
    config.namespace = args.namespace;
    config.providers = ProviderSettings::from_env(args.prometheus);
    config.coalesce_window = Duration::from_secs(args.coalesce_window);
    config.git_cache = args.git_cache;
    config.instance = std::env::var("POD_NAME").ok();
    // One active replica: leader election arrives with the server's lease module.
    let (_leader_tx, leader) = tokio::sync::watch::channel(true);
    let shutdown = async {
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            () = term => {}
        }
        tracing::info!("shutting down");
    };
    tracing::info!(env = %config.environment, "rollgate controller starting");
    crate::controller::run(client, config, leader, Arc::new(LogTelemetry), shutdown).await;
    Ok(Exit::Successful)
}
