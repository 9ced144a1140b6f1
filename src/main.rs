//! The `rollgate` binary: parse arguments, set up logging, run one command, exit with
//! its status (0 Successful, 1 Failed, 2 Inconclusive, 3 Error, 64 bad usage).

use std::process::ExitCode;

use clap::Parser;
use clap::error::ErrorKind;
use rollgate::cli::{Cli, Exit, LogFormat, UsageError};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            // clap exits 2 on usage errors, which would read as "Inconclusive".
            let code = match err.kind() {
                ErrorKind::DisplayHelp
                | ErrorKind::DisplayVersion
                | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => 0,
                _ => Exit::Usage as u8,
            };
            let _ = err.print();
            return ExitCode::from(code);
        }
    };
    init_logging(&cli.log_level, cli.log_format);

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::from(Exit::Error as u8);
        }
    };
    match runtime.block_on(cli.command.run()) {
        Ok(exit) => ExitCode::from(exit as u8),
        Err(err) => {
            eprintln!("error: {err:#}");
            let usage = err
                .chain()
                .any(|e| e.downcast_ref::<UsageError>().is_some());
            ExitCode::from(if usage { Exit::Usage } else { Exit::Error } as u8)
        }
    }
}

fn init_logging(filter: &str, format: LogFormat) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
