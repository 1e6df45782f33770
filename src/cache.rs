//! [`Cache`]: what a middleware and its handles share, its settings (fixed) beside its live
//! machinery. Every step of a request takes it by reference; background refreshes hold it
//! weakly, so dropping the middleware and its handles ends them.
//!
//! Calls `live`, `settings`, `url_changes`, `unsettled_writes`, `unfinished_invalidations`
//! (nothing that calls it).

use crate::live::Live;
use crate::settings::Settings;

/// One cache: the rules it follows and the machinery it runs on.
#[derive(Debug)]
pub(crate) struct Cache {
    pub(crate) settings: Settings,
    pub(crate) live: Live,
}

impl Cache {
    /// Marks `url` as changed, before its entries are deleted: a response for it on its way
    /// to the store is not stored after (see [`url_changes`](crate::url_changes)).
    /// Returns the URL's group.
    pub(crate) fn mark_changed(&self, url: &url::Url) -> cache_core::CacheKey {
        let url_group = self.settings.keys.url_group(url);
        self.live.url_changes.changed(&url_group);
        url_group
    }

    /// Holds `url_group` back (see [`unfinished_invalidations`](crate::unfinished_invalidations))
    /// when a write of it whose outcome is unknown may land after the change just made to it
    /// (see [`unsettled_writes`](crate::unsettled_writes)): landing, it was served as fresh.
    pub(crate) fn hold_back_if_unsettled(&self, url_group: cache_core::CacheKey) {
        let unsettled = &self.live.store.unsettled;
        if unsettled.may_land(&url_group, std::time::Instant::now()) {
            let now = self.settings.clock.now();
            self.live.unfinished_invalidations.note(url_group, now);
        }
    }
}
