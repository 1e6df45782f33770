//! Fuzzes every public decoder of stored entries with whatever bytes a store could hand back.
//!
//! ```sh
//! cargo install cargo-fuzz
//! cargo +nightly fuzz run decode_entry                       # until stopped or a crash
//! cargo +nightly fuzz run decode_entry -- -max_total_time=300 -max_len=1048576 -rss_limit_mb=2048
//! ```
//!
//! `-max_len=1048576` lets inputs grow to 1 MiB (libFuzzer's default is 4 KiB), so lengths and
//! counts can be consistent with what follows them; `decode_shaped` reaches large entries
//! faster by describing them.
//!
//! The checks are in `checks.rs`. It also fails on an allocation over libFuzzer's limit (a
//! damaged length must not ask for gigabytes).
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;

mod checks;

fuzz_target!(|data: &[u8]| {
    checks::check(Bytes::copy_from_slice(data));
    // The same bytes behind the magic and the current version, so the fuzzer spends its time
    // on the kind, flags, head length, head and body rather than on finding the magic.
    let mut prefixed = b"RQCE".to_vec();
    prefixed.push(cache_core::codec::FORMAT_VERSION);
    prefixed.extend_from_slice(data);
    checks::check(Bytes::from(prefixed));
});
