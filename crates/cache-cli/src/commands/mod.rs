//! One module per subcommand; [`run`] picks one.

mod delete;
mod list;
mod show;
mod stats;
mod transfer;

use std::sync::Arc;
use std::time::SystemTime;

use reqwest_caching::{CacheHandle, CacheMiddleware, CacheStore};

use crate::cli::{Cli, Command};
use crate::error::CliError;
use crate::store_spec::{Open, StoreSpec};

/// What every command needs besides its arguments.
pub struct Context {
    /// JSON output.
    pub json: bool,
    /// The time entries are judged expired or old at.
    pub now: SystemTime,
    /// The store's name, as shown to people.
    pub name: String,
}

#[cfg(test)]
impl Context {
    /// JSON output, now, a store named `test`.
    pub(crate) fn for_tests() -> Self {
        Self {
            json: true,
            now: SystemTime::now(),
            name: "test".to_owned(),
        }
    }
}

/// Runs the command.
///
/// # Errors
///
/// The command's failure, with its exit code.
pub async fn run(cli: Cli) -> Result<(), CliError> {
    let spec: StoreSpec = cli.store.parse()?;
    let cx = Context {
        json: cli.json,
        now: SystemTime::now(),
        name: spec.to_string(),
    };
    match cli.command {
        Command::Stats => stats::run(&cx, &*spec.open(Open::ReadOnly).await?).await,
        Command::Ls { filter } => list::run(&cx, &*spec.open(Open::ReadOnly).await?, &filter).await,
        Command::Show { url, key, body } => {
            let store = spec.open(Open::ReadOnly).await?;
            show::run(&cx, &store, url.as_deref(), key.as_deref(), body.as_deref()).await
        }
        Command::Rm { url, key } => {
            let store = spec.open(Open::Existing).await?;
            delete::remove(&cx, &store, url.as_deref(), key.as_deref()).await
        }
        Command::Purge { filter, all, yes } => {
            let store = spec.open(Open::Existing).await?;
            delete::purge(&cx, &*store, &filter, all, yes).await
        }
        Command::Export { dir } => transfer::run(&cx, &spec, &StoreSpec::Fs(dir)).await,
        Command::Import { dir } => transfer::run(&cx, &StoreSpec::Fs(dir), &spec).await,
        Command::Copy { from, to } => transfer::run(&cx, &from.parse()?, &to.parse()?).await,
    }
}

/// A handle over `store`, for the key rules (a URL's keys) the middleware uses by default.
fn handle(store: &Arc<dyn CacheStore>) -> Result<CacheHandle, CliError> {
    let cache = CacheMiddleware::builder()
        .shared_store(Arc::clone(store))
        .build()?;
    Ok(cache.handle())
}
