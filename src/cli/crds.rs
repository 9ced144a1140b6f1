//! `rollgate crds`: print rollgate's CustomResourceDefinitions as one multi-document YAML
//! stream (`rollgate crds | kubectl apply --server-side -f -`), or write one file per CRD.

use std::path::PathBuf;

use anyhow::Context as _;

use super::{Exit, UsageError};

/// Arguments of `rollgate crds`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Write one file per CRD (`<plural>.rollgate.dev.yaml`) into this directory instead of
    /// printing them (how `crds/` and `charts/rollgate/crds/` are regenerated).
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
}

/// Run `rollgate crds`.
///
/// # Errors
/// A CRD that cannot be generated (a bug), or a directory that cannot be written (usage).
pub async fn run(args: Args) -> anyhow::Result<Exit> {
    match args.out_dir {
        None => {
            let yaml = crate::k8s::crds_yaml().context("generating the CRDs")?;
            print!("{yaml}");
        }
        Some(dir) => {
            std::fs::create_dir_all(&dir)
                .map_err(|e| UsageError(format!("cannot create {}: {e}", dir.display())))?;
            for crd in crate::k8s::crds().context("generating the CRDs")? {
                let path = dir.join(crate::k8s::file_name(&crd));
                let yaml = crate::k8s::to_yaml(&crd).context("generating the CRDs")?;
                std::fs::write(&path, format!("---\n{yaml}"))
                    .map_err(|e| UsageError(format!("cannot write {}: {e}", path.display())))?;
            }
        }
    }
    Ok(Exit::Successful)
}
