//! `rollgate plan` (not built yet: see the open issues).

use super::Exit;

/// Arguments of `rollgate plan`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Run `rollgate plan`.
///
/// # Errors
/// Always, until the command is built.
pub async fn run(_args: Args) -> anyhow::Result<Exit> {
    anyhow::bail!("`rollgate plan` is not built yet")
}
