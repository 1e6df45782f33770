//! [`ReadIndex`]: a Vary index as a read found it under a URL key, kept as the store handed it
//! out. A leaf: calls nothing else in the crate.

use std::sync::Arc;

use cache_core::{Decoded, Entry, EntryMeta, VaryIndex};

/// A Vary index as read, with its metadata: the decoded entry itself, shared with a store
/// that keeps entries decoded. A hit on a varying response reads the index and passes it
/// along, and copying it out (its URL and header list) cost a memory hit about 1.0 k
/// instructions of 20.5 k (callgrind, `profile-hits memory api`).
#[derive(Clone, Debug)]
pub(crate) struct ReadIndex(Arc<Decoded>);

/// What [`ReadIndex::index`] gives for an entry that is not an index, which it never holds.
static NO_INDEX: VaryIndex = VaryIndex {
    headers: Vec::new(),
    generation: 0,
};

impl ReadIndex {
    /// The index in `decoded`, when it holds one; else `decoded` back.
    pub(crate) fn of(decoded: Arc<Decoded>) -> Result<Self, Arc<Decoded>> {
        match decoded.entry {
            Entry::VaryIndex(_) => Ok(Self(decoded)),
            _ => Err(decoded),
        }
    }

    pub(crate) fn meta(&self) -> &EntryMeta {
        &self.0.meta
    }

    pub(crate) fn index(&self) -> &VaryIndex {
        match &self.0.entry {
            Entry::VaryIndex(index) => index,
            // Never: `of` keeps only indexes. An empty list rather than a panic, should that
            // ever change.
            _ => &NO_INDEX,
        }
    }
}
