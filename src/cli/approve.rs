//! `rollgate approve` (not built yet: see the open issues).

use super::Exit;

/// Arguments of `rollgate approve`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Run `rollgate approve`.
///
/// # Errors
/// Always, until the command is built.
pub async fn run(_args: Args) -> anyhow::Result<Exit> {
    anyhow::bail!("`rollgate approve` is not built yet")
}
