//! Keys for the digests that stand in for request fields in this process's memories (the key
//! memory's credentials, the variant keys' header values). A leaf.

use std::hash::BuildHasher;

/// 128 bits from the OS's randomness, as std's hash maps draw theirs (the outputs of two of
/// its keyed hashes, unpredictable without the key): the digests under it never leave the
/// process, so no one can search for a collision.
pub(crate) fn random_sip_key() -> (u64, u64) {
    let state = std::hash::RandomState::new();
    (state.hash_one(0_u8), state.hash_one(1_u8))
}
