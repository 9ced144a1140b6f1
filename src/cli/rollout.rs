//! `rollgate rollout promote|abort|retry NAME`: ask the controller for a manual step by
//! setting the Rollout's `rollgate.dev/request` annotation (the controller clears it once
//! it acted on it).

use anyhow::Context as _;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use super::{Exit, UsageError};
use crate::controller::REQUEST_ANNOTATION;
use crate::k8s::Rollout;

/// The manual requests.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Resume past the current pause or inconclusive analysis (`--full`: skip every
    /// remaining step).
    Promote {
        /// The Rollout.
        #[command(flatten)]
        target: Target,
        /// Skip every remaining step and promote now.
        #[arg(long)]
        full: bool,
    },
    /// Abort the rollout: all traffic back to the primary at once.
    Abort {
        /// The Rollout.
        #[command(flatten)]
        target: Target,
    },
    /// Run an aborted revision again from the first step.
    Retry {
        /// The Rollout.
        #[command(flatten)]
        target: Target,
    },
}

/// Which Rollout.
#[derive(Debug, clap::Args)]
pub struct Target {
    /// The Rollout's name.
    pub name: String,
    /// Its namespace (default: the kubeconfig's).
    #[arg(long, short = 'n')]
    pub namespace: Option<String>,
}

/// Run `rollgate rollout ...`.
///
/// # Errors
/// No kubeconfig; the Rollout does not exist (usage).
pub async fn run(cmd: Command) -> anyhow::Result<Exit> {
    let (target, value) = match cmd {
        Command::Promote { target, full } => {
            (target, if full { "promote-full" } else { "promote" })
        }
        Command::Abort { target } => (target, "abort"),
        Command::Retry { target } => (target, "retry"),
    };
    let client = kube::Client::try_default()
        .await
        .context("connecting to the Kubernetes API (kubeconfig)")?;
    let ns = target
        .namespace
        .unwrap_or_else(|| client.default_namespace().to_owned());
    let api: Api<Rollout> = Api::namespaced(client, &ns);
    let patch = json!({"metadata": {"annotations": {REQUEST_ANNOTATION: value}}});
    match tokio::time::timeout(
        std::time::Duration::from_secs(30),
        api.patch(&target.name, &PatchParams::default(), &Patch::Merge(patch)),
    )
    .await
    {
        Ok(Ok(_)) => {
            println!("rollout {ns}/{}: {value} requested", target.name);
            Ok(Exit::Successful)
        }
        Ok(Err(kube::Error::Api(s))) if s.code == 404 => {
            Err(UsageError(format!("Rollout {ns}/{} not found", target.name)).into())
        }
        Ok(Err(e)) => Err(e).context(format!("annotating Rollout {ns}/{}", target.name)),
        Err(_) => anyhow::bail!(
            "annotating Rollout {ns}/{}: no answer within 30s",
            target.name
        ),
    }
}
