//! `rollgate judge` (not built yet: see the open issues).

use super::Exit;

/// Subcommands of `rollgate judge`.
#[derive(Debug, clap::Subcommand)]
pub enum Command {}

/// Run `rollgate judge`.
///
/// # Errors
/// Always, until the command is built.
pub async fn run(command: Command) -> anyhow::Result<Exit> {
    match command {}
}
