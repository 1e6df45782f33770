//! The command line: global options and one subcommand per job.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::error::EXIT_CODES;
use crate::select::Filter;

/// The store forms, for `--help`.
const STORES: &str = "\
Stores:
  sqlite:PATH | PATH.sqlite                 SQLite file
  sled:PATH                                 sled database
  fs:DIR                                    readable directory (the export format)
  redis://[:PASSWORD@]HOST:PORT[/DB][?prefix=P]
  redis+cluster://[:PASSWORD@]HOST:PORT,HOST:PORT...[?prefix=P]
  mongodb://[USER:PASS@]HOSTS[/DB[/COLLECTION]][?OPTIONS]
  dynamodb:TABLE                            AWS_REGION, AWS_ENDPOINT_URL[_DYNAMODB],
                                            AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
                                            AWS_SESSION_TOKEN from the environment";

/// Inspect and manage a reqwest-caching cache: what is stored, how big, what expired; clean,
/// export, import and copy it between stores.
#[derive(Parser, Debug)]
#[command(name = "reqwest-caching", version, after_help = format!("{STORES}\n\n{EXIT_CODES}"))]
pub struct Cli {
    /// The cache to work on (see Stores below).
    #[arg(
        short,
        long,
        global = true,
        env = "REQWEST_CACHING_STORE",
        default_value = "http_cache.sqlite"
    )]
    pub store: String,
    /// Print JSON for scripts instead of text for people.
    #[arg(long, global = true)]
    pub json: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Entries, stored bytes, expired entries, oldest and newest, per host.
    Stats,
    /// List entries (metadata only: no value is read).
    Ls {
        /// Which entries.
        #[command(flatten)]
        filter: Filter,
    },
    /// One stored response: status, headers, times; the most recent one stored for a GET of
    /// the URL.
    Show {
        /// The URL (as requested).
        #[arg(required_unless_present = "key", conflicts_with = "key")]
        url: Option<String>,
        /// The entry under this cache key instead (as `ls` prints it).
        #[arg(long)]
        key: Option<String>,
        /// Write the response body to this file (`-`: standard output, instead of the rest).
        #[arg(long, value_name = "FILE")]
        body: Option<PathBuf>,
    },
    /// Delete every entry stored for a URL (any method, credential or variant), or one key.
    Rm {
        /// The URL (as requested).
        #[arg(required_unless_present = "key", conflicts_with = "key")]
        url: Option<String>,
        /// The entry under this cache key instead (also one the store holds but cannot
        /// read: damaged, or of a later version's format).
        #[arg(long)]
        key: Option<String>,
    },
    /// Delete entries: expired ones, older ones, of a host, matching a URL glob, or all.
    Purge {
        /// Which entries (at least one filter, or --all).
        #[command(flatten)]
        filter: Filter,
        /// Every entry.
        #[arg(long)]
        all: bool,
        /// Do not ask before deleting.
        #[arg(short, long)]
        yes: bool,
    },
    /// Copy every entry into a readable directory (created if needed), replacing an
    /// entry already there under the same key.
    Export {
        /// The directory.
        dir: PathBuf,
    },
    /// Copy every entry of a directory written by `export` into the store, replacing an
    /// entry the store holds under the same key (the directory's, even when older).
    Import {
        /// The directory.
        dir: PathBuf,
    },
    /// Copy every entry of one store into another (created if needed), replacing an entry
    /// the other holds under the same key.
    Copy {
        /// The store to read.
        from: String,
        /// The store to write.
        to: String,
    },
}
