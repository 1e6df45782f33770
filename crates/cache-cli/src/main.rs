//! `reqwest-caching`: inspect and manage a reqwest-caching store from the command line.
//!
//! Every command reads the store directly, never through the middleware's request path, so
//! an entry it cannot decode is reported and left in place (the middleware would delete it).

#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod cli;
mod commands;
mod entry_format;
mod error;
mod output;
mod progress;
mod scan;
mod select;
mod store_spec;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // Usage errors exit with 2, `--help` and `--version` with 0 (clap's convention).
    let cli = cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let json = cli.json;
    match runtime.block_on(commands::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) if error.is_closed_output() => ExitCode::SUCCESS,
        Err(error) => {
            if json {
                let report = serde_json::json!({
                    "error": error.report(),
                    "exit_code": error.exit_code(),
                });
                eprintln!("{report}");
            } else {
                eprintln!("error: {}", error.report());
            }
            ExitCode::from(error.exit_code())
        }
    }
}
