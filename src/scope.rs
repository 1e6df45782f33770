//! Settings for every request made inside an async block: the Rust answer to requests-cache's
//! `install_cache()` / `disabled()` / `uninstall_cache()`.
//!
//! Calls `mode` (nothing that calls it).

use std::future::Future;

use cache_http::Expiration;

use crate::mode::CacheMode;

tokio::task_local! {
    static CURRENT_SCOPE: CacheScope;
}

/// Cache settings applied to every request made inside [`CacheScope::run`].
///
/// Scopes nest: an inner scope overrides the settings it sets and inherits the rest. A
/// per-request setting beats the scope's. The scope follows the future, not the thread: a task
/// spawned inside with `tokio::spawn` does not inherit it (wrap that task's future too).
///
/// ```no_run
/// use reqwest_caching::{CacheMode, CacheScope, Expiration};
/// use std::time::Duration;
///
/// # async fn run(client: reqwest_middleware::ClientWithMiddleware) -> reqwest_middleware::Result<()> {
/// // Everything in this block expires after a minute and is refreshed first.
/// CacheScope::new()
///     .expire_after(Duration::from_secs(60))
///     .mode(CacheMode::Refresh)
///     .run(async {
///         client.get("https://example.com/a").send().await?;
///         client.get("https://example.com/b").send().await
///     })
///     .await?;
///
/// // No caching at all in here.
/// reqwest_caching::disabled(client.get("https://example.com/live").send()).await?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[must_use]
pub struct CacheScope {
    disabled: Option<bool>,
    expire_after: Option<Expiration>,
    mode: Option<CacheMode>,
}

impl CacheScope {
    /// A scope that changes nothing until told.
    pub fn new() -> Self {
        Self::default()
    }

    /// Turns the cache off (`true`) or back on inside an outer disabled scope (`false`).
    pub fn disabled(mut self, disabled: bool) -> Self {
        self.disabled = Some(disabled);
        self
    }

    /// The expiration for responses stored inside the scope.
    pub fn expire_after(mut self, expiration: impl Into<Expiration>) -> Self {
        self.expire_after = Some(expiration.into());
        self
    }

    /// The cache mode for requests inside the scope.
    pub fn mode(mut self, mode: CacheMode) -> Self {
        self.mode = Some(mode);
        self
    }

    /// Runs `future` with this scope's settings over any enclosing scope's.
    pub async fn run<F: Future>(self, future: F) -> F::Output {
        let merged = match current() {
            Some(outer) => Self {
                disabled: self.disabled.or(outer.disabled),
                expire_after: self.expire_after.or(outer.expire_after),
                mode: self.mode.or(outer.mode),
            },
            None => self,
        };
        CURRENT_SCOPE.scope(merged, future).await
    }

    pub(crate) fn is_disabled(&self) -> bool {
        self.disabled.unwrap_or(false)
    }

    pub(crate) fn expiration(&self) -> Option<Expiration> {
        self.expire_after
    }

    pub(crate) fn cache_mode(&self) -> Option<CacheMode> {
        self.mode
    }
}

/// The scope the current task runs in, if any.
pub(crate) fn current() -> Option<CacheScope> {
    CURRENT_SCOPE.try_with(Clone::clone).ok()
}

/// Runs `future` with the cache turned off: requests inside neither read nor store
/// responses, as requests-cache's `with session.cache_disabled():` (a successful unsafe
/// request still invalidates what is stored for its URL).
pub async fn disabled<F: Future>(future: F) -> F::Output {
    CacheScope::new().disabled(true).run(future).await
}
