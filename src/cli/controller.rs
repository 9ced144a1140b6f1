//! `rollgate controller`: run the Rollout and AnalysisRun reconcilers for this cluster's
//! environment, behind a Lease (only the leader acts), with the HTTP server (health,
//! readiness, metrics, status and approvals), until SIGTERM or Ctrl-C.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;

use super::{Exit, UsageError};
use crate::controller::Config;
use crate::leader::{LeaderElection, LeaseConfig, default_identity};
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
