//! Entity tags (RFC 9110 §8.8.3) and their comparisons (§8.8.3.2): the weak one, where two
//! tags match when their opaque parts are the same, weak or not (what `If-None-Match` uses,
//! and what the cache uses to tell whether a `304` confirms the stored response), and the
//! strong one, where both must be strong and the same (what `If-Range` uses, and what
//! selects a stored response for update by a `304` the cache did not ask for).
//!
//! A leaf: calls nothing else in the crate.

/// An entity tag's opaque part, for the weak comparison: without `W/` and the quotes
/// (tolerating a lowercase `w/` and missing quotes, which senders get wrong).
fn opaque(tag: &[u8]) -> &[u8] {
    let tag = tag.trim_ascii();
    let tag = weak_part(tag).unwrap_or(tag);
    tag.strip_prefix(b"\"")
        .and_then(|t| t.strip_suffix(b"\""))
        .unwrap_or(tag)
}

fn weak_part(tag: &[u8]) -> Option<&[u8]> {
    tag.strip_prefix(b"W/").or_else(|| tag.strip_prefix(b"w/"))
}

/// The weak comparison: their opaque parts the same, weak or not.
pub(crate) fn weak_match(a: &[u8], b: &[u8]) -> bool {
    opaque(a) == opaque(b)
}

/// The strong comparison: neither weak, and the same.
pub(crate) fn strong_match(a: &[u8], b: &[u8]) -> bool {
    let (a, b) = (a.trim_ascii(), b.trim_ascii());
    weak_part(a).is_none() && weak_part(b).is_none() && a == b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_weak_comparison_follows_rfc_9110() {
        // RFC 9110 §8.8.3.2's table, the weak column.
        let cases: [(&[u8], &[u8], bool); 4] = [
            (b"W/\"1\"", b"W/\"1\"", true),
            (b"W/\"1\"", b"W/\"2\"", false),
            (b"W/\"1\"", b"\"1\"", true),
            (b"\"1\"", b"\"1\"", true),
        ];
        for (a, b, weak) in cases {
            assert_eq!(weak_match(a, b), weak, "{a:?} {b:?}");
        }
        // The strong column.
        let cases: [(&[u8], &[u8], bool); 5] = [
            (b"W/\"1\"", b"W/\"1\"", false),
            (b"W/\"1\"", b"W/\"2\"", false),
            (b"W/\"1\"", b"\"1\"", false),
            (b"\"1\"", b"\"1\"", true),
            (b"w/\"1\"", b"w/\"1\"", false),
        ];
        for (a, b, strong) in cases {
            assert_eq!(strong_match(a, b), strong, "{a:?} {b:?}");
        }
        assert!(
            weak_match(b" w/\"x\"", b"x"),
            "a lowercase w/ and missing quotes"
        );
        assert_eq!(opaque(b" \"abc\" "), b"abc");
    }
}
