//! Why a command failed, and the exit code each kind of failure gives scripts.

use std::fmt::Write as _;

use reqwest_caching::StoreError;

/// The exit codes, as `--help` and the README list them.
pub const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  no such entry (show, rm)
  2  usage: bad arguments, a store name of no known form, missing AWS settings
  3  store unreachable, missing or failing
  4  the cache holds entries of a newer format than this build reads (nothing was changed)
  5  the entry is unreadable (corrupt, or of an old format); it was left in place
  6  deletion not confirmed (purge without --yes, answered no or not on a terminal)
  7  a local file could not be written (show --body)";

/// A failed command. Each variant has its own exit code (see [`EXIT_CODES`]).
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// No entry matched.
    #[error("{0}")]
    NotFound(String),
    /// The arguments do not make sense (a store name of no known form, say).
    #[error("{0}")]
    Usage(String),
    /// The store could not be opened or an operation on it failed.
    #[error("{context}")]
    Store {
        /// What was being done, with the store's name.
        context: String,
        /// The store's error.
        #[source]
        source: StoreError,
    },
    /// A store that must already exist does not.
    #[error("{0}")]
    MissingStore(String),
    /// Entries of a format version this build does not read: a newer reqwest-caching
    /// wrote them. Nothing was changed.
    #[error(
        "{count} entr{ies} written in format version {version}, newer than the version {ours} \
         this build reads (first: {shown}); nothing was changed: use a newer reqwest-caching command",
        ies = if *count == 1 { "y" } else { "ies" },
        shown = crate::output::printable(url)
    )]
    NewerFormat {
        /// The newest version met.
        version: u8,
        /// The version this build reads.
        ours: u8,
        /// How many entries have a newer format.
        count: u64,
        /// The URL of one of them.
        url: String,
    },
    /// The entry does not decode (corrupt, truncated, an old format).
    // Stored text, shown with its control characters escaped: it goes to the terminal.
    #[error(
        "the entry for {} is unreadable ({}); it was left in place",
        crate::output::printable(.url),
        crate::output::printable(.reason)
    )]
    Unreadable {
        /// The entry's URL.
        url: String,
        /// Why it does not decode.
        reason: String,
    },
    /// A purge was not confirmed.
    #[error("{0}")]
    NotConfirmed(String),
    /// Writing a local file failed.
    #[error("{context}")]
    Io {
        /// What was being written.
        context: String,
        /// The system's error.
        #[source]
        source: std::io::Error,
    },
}

impl CliError {
    /// A store failure while doing `context`.
    pub fn store(context: impl Into<String>, source: StoreError) -> Self {
        Self::Store {
            context: context.into(),
            source,
        }
    }

    /// The process exit code for this failure.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::NotFound(_) => 1,
            Self::Usage(_) => 2,
            Self::Store { .. } | Self::MissingStore(_) => 3,
            Self::NewerFormat { .. } => 4,
            Self::Unreadable { .. } => 5,
            Self::NotConfirmed(_) => 6,
            Self::Io { .. } => 7,
        }
    }

    /// True when standard output was closed by its reader (`ls | head -1`, `show --body - |
    /// head -c 100`): it asked for no more, which is no failure; the command ends quietly.
    pub fn is_closed_output(&self) -> bool {
        matches!(self, Self::Io { source, .. } if source.kind() == std::io::ErrorKind::BrokenPipe)
    }

    /// The message with every cause, `a: b: c`, so a driver's reason (connection refused,
    /// no such host) reaches the operator.
    pub fn report(&self) -> String {
        let mut out = self.to_string();
        let mut source = std::error::Error::source(self);
        while let Some(cause) = source {
            // Drivers often repeat their source in their own message: say it once.
            let cause_text = cause.to_string();
            if !out.ends_with(&cause_text) {
                let _ = write!(out, ": {cause_text}");
            }
            source = cause.source();
        }
        out
    }
}

impl From<reqwest_caching::Error> for CliError {
    fn from(error: reqwest_caching::Error) -> Self {
        match error {
            reqwest_caching::Error::Store(source) => Self::store("the store failed", source),
            other => Self::Usage(
                std::iter::successors(Some(&other as &dyn std::error::Error), |e| e.source())
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(": "),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Stored URLs reach the terminal in these messages: a control character (an escape
    /// sequence planted in a shared store or an exported directory) is shown escaped.
    #[test]
    fn stored_text_in_messages_is_escaped() {
        let url = "http://e.test/\u{1b}[2J\u{7}".to_owned();
        let messages = [
            CliError::Unreadable {
                url: url.clone(),
                reason: "bad\u{1b}]0;title\u{7}".to_owned(),
            }
            .to_string(),
            CliError::NewerFormat {
                version: 9,
                ours: 1,
                count: 1,
                url,
            }
            .to_string(),
        ];
        for message in messages {
            assert!(!message.chars().any(char::is_control), "{message:?}");
            assert!(message.contains("http://e.test/"), "{message:?}");
        }
    }
}
