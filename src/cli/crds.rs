//! `rollgate crds` (not built yet: see the open issues).

use super::Exit;

/// Arguments of `rollgate crds`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Run `rollgate crds`.
///
/// # Errors
/// Always, until the command is built.
pub async fn run(_args: Args) -> anyhow::Result<Exit> {
    anyhow::bail!("`rollgate crds` is not built yet")
}
