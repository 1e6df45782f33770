//! [`Live`]: the machinery one middleware runs on, shared with its handles and changed by
//! every request: the store calls, the counters, the flights of identical requests, the
//! background refreshes, the Vary indexes last read and the variant keys last computed.
//! Settings are apart, in [`Settings`](crate::settings::Settings). Calls only the modules of
//! its parts.

use std::sync::Arc;

use crate::flight::Flights;
use crate::refresh::Refresher;
use crate::stats::StatsCounters;
use crate::store_calls::StoreCalls;
use crate::unfinished_invalidations::UnfinishedInvalidations;
use crate::url_changes::UrlChanges;
use crate::variant_keys::VariantKeys;
use crate::vary_guesses::VaryGuesses;

/// The live parts of a cache.
#[derive(Debug)]
pub(crate) struct Live {
    pub(crate) store: StoreCalls,
    pub(crate) stats: Arc<StatsCounters>,
    pub(crate) flights: Flights,
    pub(crate) refresher: Refresher,
    /// The Vary index last read under each URL key, for lookups that wait for the store.
    pub(crate) vary_guesses: VaryGuesses,
    /// The variant key last computed under each URL key.
    pub(crate) variant_keys: VariantKeys,
    /// URLs unsafe requests (or the handle) changed, for the writes of answers to requests
    /// sent before.
    pub(crate) url_changes: Arc<UrlChanges>,
    /// URLs whose invalidation the store did not take: their older entries are not served.
    pub(crate) unfinished_invalidations: UnfinishedInvalidations,
}
