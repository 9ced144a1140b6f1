//! `rollgate controller`: run the Rollout and AnalysisRun reconcilers for this cluster's
//! environment, behind a Lease (only the leader acts), with the HTTP server (health,
//! readiness, metrics, status and approvals), until SIGTERM or Ctrl-C.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;

use super::{Exit, UsageError};
use crate::controller::Config;
use crate::leader::{LeaderElection, LeaseConfig, default_identity};
use crate::notify::{Sink, SinkKind};
use crate::providers::ProviderSettings;
use crate::server::{ServerState, serve};
use crate::shutdown::Shutdown;
use crate::telemetry::Telemetry;

/// Arguments of `rollgate controller`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// This cluster's environment, as named in the PromotionPolicies (`dev`, `prod`).
    #[arg(long = "env", value_name = "NAME", env = "ROLLGATE_ENVIRONMENT")]
    pub env: String,
    /// Prometheus for every metric (overrides the metrics' own addresses).
    #[arg(long, value_name = "URL", env = "ROLLGATE_PROMETHEUS_ADDRESS")]
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
    /// Address of the HTTP server (/healthz, /readyz, /metrics, status and approval API).
    #[arg(
        long,
        value_name = "ADDR",
        default_value = "0.0.0.0:8080",
        env = "ROLLGATE_HTTP_ADDRESS"
    )]
    pub metrics_addr: String,
    /// Namespace of the leader-election Lease (default: `POD_NAMESPACE`, else `default`).
    #[arg(long, value_name = "NS", env = "POD_NAMESPACE")]
    pub lease_namespace: Option<String>,
    /// Name of the leader-election Lease.
    #[arg(
        long,
        value_name = "NAME",
        default_value = "rollgate-controller",
        env = "ROLLGATE_LEASE_NAME"
    )]
    pub lease_name: String,
    /// File holding a Slack-compatible incoming-webhook URL: notifications go there.
    #[arg(long, value_name = "FILE", env = "ROLLGATE_NOTIFY_SLACK_URL_FILE")]
    pub notify_slack_url_file: Option<PathBuf>,
    /// File holding a Microsoft Teams incoming-webhook URL.
    #[arg(long, value_name = "FILE", env = "ROLLGATE_NOTIFY_TEAMS_URL_FILE")]
    pub notify_teams_url_file: Option<PathBuf>,
    /// File holding the URL of a generic JSON webhook.
    #[arg(long, value_name = "FILE", env = "ROLLGATE_NOTIFY_WEBHOOK_URL_FILE")]
    pub notify_webhook_url_file: Option<PathBuf>,
    /// File holding the HMAC-SHA256 key that signs the generic webhook's body
    /// (`X-Rollgate-Signature`); unsigned without it.
    #[arg(long, value_name = "FILE", env = "ROLLGATE_NOTIFY_WEBHOOK_SECRET_FILE")]
    pub notify_webhook_secret_file: Option<PathBuf>,
    /// At most this many notifications a minute (the rest are dropped and counted).
    #[arg(
        long,
        value_name = "N",
        default_value_t = 60,
        env = "ROLLGATE_NOTIFY_MAX_PER_MINUTE"
    )]
    pub notify_max_per_minute: usize,
}

/// The first line of a secret file, trimmed; the error names the flag and the file, never
/// the content.
fn read_secret(flag: &str, path: &std::path::Path) -> Result<String, UsageError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| UsageError(format!("{flag} {}: {e}", path.display())))?;
    let value = text.trim().to_owned();
    if value.is_empty() {
        return Err(UsageError(format!(
            "{flag} {}: the file is empty",
            path.display()
        )));
    }
    Ok(value)
}

/// The notification sinks the flags name.
///
/// # Errors
/// [`UsageError`] when a file cannot be read or is empty, or a secret is given without a
/// webhook URL.
pub fn sinks(args: &Args) -> Result<Vec<Sink>, UsageError> {
    let mut out = Vec::new();
    for (flag, path, name, kind) in [
        (
            "--notify-slack-url-file",
            &args.notify_slack_url_file,
            "slack",
            SinkKind::Slack,
        ),
        (
            "--notify-teams-url-file",
            &args.notify_teams_url_file,
            "teams",
            SinkKind::Teams,
        ),
        (
            "--notify-webhook-url-file",
            &args.notify_webhook_url_file,
            "webhook",
            SinkKind::Webhook,
        ),
    ] {
        let Some(path) = path else { continue };
        let url = read_secret(flag, path)?;
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(UsageError(format!(
                "{flag} {}: not an http(s) URL",
                path.display()
            )));
        }
        let secret = match (&kind, &args.notify_webhook_secret_file) {
            (SinkKind::Webhook, Some(p)) => Some(read_secret("--notify-webhook-secret-file", p)?),
            _ => None,
        };
        out.push(Sink {
            name: name.to_owned(),
            kind,
            url,
            secret,
        });
    }
    if args.notify_webhook_secret_file.is_some() && args.notify_webhook_url_file.is_none() {
        return Err(UsageError(
            "--notify-webhook-secret-file needs --notify-webhook-url-file".to_owned(),
        ));
    }
    Ok(out)
}

/// Run `rollgate controller`.
///
/// # Errors
/// No usable kubeconfig or in-cluster configuration.
pub async fn run(args: Args) -> anyhow::Result<Exit> {
    let notify_sinks = sinks(&args)?;
    let client = kube::Client::try_default()
        .await
        .context("connecting to the Kubernetes API (kubeconfig or in-cluster)")?;
    let mut config = Config::new(&args.env);
    config.namespace = args.namespace;
    config.providers = ProviderSettings::from_env(args.prometheus);
    config.coalesce_window = Duration::from_secs(args.coalesce_window);
    config.git_cache = args.git_cache;
    config.instance = std::env::var("POD_NAME").ok();
    config.notify_sinks = notify_sinks;
    config.notifier.max_per_minute = args.notify_max_per_minute;
    let shutdown = Shutdown::new();
    shutdown
        .listen_for_signals()
        .context("installing the SIGTERM/SIGINT handlers")?;
    let telemetry = Telemetry::new();
    let lease = LeaseConfig::new(
        args.lease_namespace.as_deref().unwrap_or("default"),
        &args.lease_name,
        &default_identity(),
    );
    let election = LeaderElection::new(client.clone(), lease)
        .map_err(|e| UsageError(format!("--lease-namespace/--lease-name: {e}")))?
        .with_telemetry(telemetry.clone());
    let leader = election.subscribe();
    let election = tokio::spawn(election.run(shutdown.wait()));
    let listener = tokio::net::TcpListener::bind(&args.metrics_addr)
        .await
        .map_err(|e| UsageError(format!("--metrics-addr {}: {e}", args.metrics_addr)))?;
    let state = ServerState::new(client.clone(), telemetry.clone());
    let readiness = state.readiness.clone();
    let http = tokio::spawn(serve(listener, state, shutdown.wait()));
    tracing::info!(env = %config.environment, "rollgate controller starting");
    readiness.caches_synced();
    crate::controller::run(client, config, leader, telemetry, shutdown.wait()).await;
    election.await.context("leader election task")?;
    http.await
        .context("HTTP server task")?
        .context("HTTP server")?;
    Ok(Exit::Successful)
}
