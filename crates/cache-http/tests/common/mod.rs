//! What the property tests share: their configuration and the HTTP strategies both use.

use http::Method;
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;

/// 256 cases per property unless `PROPTEST_CASES` says otherwise.
pub fn config() -> ProptestConfig {
    // `ProptestConfig::default()` reads PROPTEST_CASES (and the other PROPTEST_* variables).
    let mut config = ProptestConfig {
        // Failures are saved beside the test file (proptest cannot find a lib.rs for a test
        // target).
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
        ..ProptestConfig::default()
    };
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = 256;
    }
    // A long run rejects more cases (`prop_assume!`) in all: allow it in proportion.
    config.max_global_rejects = config.max_global_rejects.max(config.cases);
    config
}

/// The standard methods, and extension methods (any token, case kept).
pub fn method() -> impl Strategy<Value = Method> {
    prop_oneof![
        prop::sample::select(vec![
            Method::GET,
            Method::HEAD,
            Method::POST,
            Method::PUT,
            Method::DELETE,
            Method::PATCH,
            Method::OPTIONS,
        ]),
        "[A-Za-z0-9!#$%&'*+.^_`|~-]{1,16}"
            .prop_map(|m| Method::from_bytes(m.as_bytes()).expect("a token")),
    ]
}

/// Any byte a header value may hold: HTAB, visible ASCII, space, and obs-text (0x80-0xFF).
pub fn header_value_byte() -> impl Strategy<Value = u8> {
    prop_oneof![Just(b'\t'), 0x20u8..=0x7e, 0x80u8..=0xff]
}
