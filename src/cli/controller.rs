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
    /// Act only while holding the Lease (`false`: act at once, for a single replica).
    #[arg(
        long,
        value_name = "BOOL",
        default_value_t = true,
        action = clap::ArgAction::Set,
        env = "ROLLGATE_LEADER_ELECTION"
    )]
    pub leader_election: bool,
    /// Seconds a Lease holder stays leader without renewing.
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = 15,
        env = "ROLLGATE_LEASE_DURATION_SECONDS"
    )]
    pub lease_duration_seconds: u64,
    /// Seconds the leader keeps trying to renew before it stops acting (below the
    /// Lease duration).
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = 10,
        env = "ROLLGATE_LEASE_RENEW_DEADLINE_SECONDS"
    )]
    pub lease_renew_deadline_seconds: u64,
    /// This replica's name, for Events and the Lease holder (the chart sets it from the
    /// pod name; default: the host name).
    #[arg(long, value_name = "NAME", env = "POD_NAME")]
    pub instance: Option<String>,
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
    config.notify_sinks = notify_sinks;
    config.notifier.max_per_minute = args.notify_max_per_minute;
    config.instance = args.instance.clone().filter(|s| !s.is_empty());
    let shutdown = Shutdown::new();
    shutdown
        .listen_for_signals()
        .context("installing the SIGTERM/SIGINT handlers")?;
    let telemetry = Telemetry::new();
    let (leader, election) = if args.leader_election {
        let mut lease = LeaseConfig::new(
            args.lease_namespace.as_deref().unwrap_or("default"),
            &args.lease_name,
            &default_identity(),
        );
        lease.lease_duration = Duration::from_secs(args.lease_duration_seconds);
        lease.renew_deadline = Duration::from_secs(args.lease_renew_deadline_seconds);
        // Retries and API calls must fit in the renew deadline.
        lease.retry_period = lease.retry_period.min(lease.renew_deadline / 3);
        lease.api_timeout = lease.api_timeout.min(lease.renew_deadline / 2);
        let election = LeaderElection::new(client.clone(), lease)
            .map_err(|e| {
                UsageError(format!(
                    "--lease-namespace/--lease-name/--lease-duration-seconds/--lease-renew-deadline-seconds: {e}"
                ))
            })?
            .with_telemetry(telemetry.clone());
        let leader = election.subscribe();
        (leader, Some(tokio::spawn(election.run(shutdown.wait()))))
    } else {
        // No election: this replica acts from the start (the chart refuses more than one
        // replica without it). The flag keeps its value after the sender is gone.
        let (_always, leader) = tokio::sync::watch::channel(true);
        (leader, None)
    };
    let listener = tokio::net::TcpListener::bind(&args.metrics_addr)
        .await
        .map_err(|e| UsageError(format!("--metrics-addr {}: {e}", args.metrics_addr)))?;
    let state = ServerState::new(client.clone(), telemetry.clone());
    // Ready once the reconcilers' caches have synced; approvals follow the policies seen.
    config.readiness = Some(state.readiness.clone());
    config.approvals = Some(state.approvals.clone());
    let http = tokio::spawn(serve(listener, state, shutdown.wait()));
    tracing::info!(env = %config.environment, "rollgate controller starting");
    crate::controller::run(client, config, leader, telemetry, shutdown.wait()).await;
    if let Some(election) = election {
        election.await.context("leader election task")?;
    }
    http.await
        .context("HTTP server task")?
        .context("HTTP server")?;
    Ok(Exit::Successful)
}
