//! `rollgate history` (not built yet: see the open issues).

use super::Exit;

/// Arguments of `rollgate history`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Run `rollgate history`.
///
/// # Errors
/// Always, until the command is built.
pub async fn run(_args: Args) -> anyhow::Result<Exit> {
    anyhow::bail!("`rollgate history` is not built yet")
}
