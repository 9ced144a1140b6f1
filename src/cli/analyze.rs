//! `rollgate analyze` (not built yet: see the open issues).

use super::Exit;

/// Arguments of `rollgate analyze`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Run `rollgate analyze`.
///
/// # Errors
/// Always, until the command is built.
pub async fn run(_args: Args) -> anyhow::Result<Exit> {
    anyhow::bail!("`rollgate analyze` is not built yet")
}
