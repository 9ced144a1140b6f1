//! `rollgate revert` (not built yet: see the open issues).

use super::Exit;

/// Arguments of `rollgate revert`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Run `rollgate revert`.
///
/// # Errors
/// Always, until the command is built.
pub async fn run(_args: Args) -> anyhow::Result<Exit> {
    anyhow::bail!("`rollgate revert` is not built yet")
}
