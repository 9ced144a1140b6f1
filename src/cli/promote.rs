//! `rollgate promote` (not built yet: see the open issues).

use super::Exit;

/// Arguments of `rollgate promote`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Run `rollgate promote`.
///
/// # Errors
/// Always, until the command is built.
pub async fn run(_args: Args) -> anyhow::Result<Exit> {
    anyhow::bail!("`rollgate promote` is not built yet")
}
