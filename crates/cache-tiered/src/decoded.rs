//! The decoded reads ([`CacheStore::get_decoded`], [`CacheStore::get_decoded_now`]) of the
//! tiered store: the only place that touches the entry codec, so a change of those
//! signatures stays here.

use cache_core::codec::EntryCodec;
use cache_core::store::DecodedEntry;
use cache_core::{CacheKey, CacheStore, StoreError};
use futures_util::FutureExt;

use crate::store::TieredStore;

impl TieredStore {
    /// A memory copy decoded (the memory store keeps the decoded form, so a hit skips
    /// decoding), when memory may answer with it now; `None` otherwise.
    pub(crate) fn decoded_from_memory(
        &self,
        key: &CacheKey,
        codec: &EntryCodec,
    ) -> Option<DecodedEntry> {
        if !self.tier.is_live() {
            return None;
        }
        let memory = self.tier.memory();
        let found = match memory.get_decoded_now(key, codec) {
            Some(found) => found,
            // Not answerable at once (it always is today): ask it the long way.
            None => memory.get_decoded(key, codec).now_or_never()?,
        };
        let found = found.ok()??;
        let meta = match &found {
            Ok(decoded) => &decoded.meta,
            Err(undecodable) => &undecodable.meta,
        };
        self.tier.serves(meta).then_some(Some(found))
    }

    /// The decoded read: memory when it may answer, else the backing store (filling memory).
    pub(crate) async fn read_decoded(
        &self,
        key: &CacheKey,
        codec: &EntryCodec,
    ) -> Result<DecodedEntry, StoreError> {
        if let Some(found) = self.decoded_from_memory(key, codec) {
            return Ok(found);
        }
        Ok(self.read_through(key).await?.map(|e| e.decode(key, codec)))
    }
}
