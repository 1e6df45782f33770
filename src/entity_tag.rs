//! Entity tags (RFC 9110 §8.8.3) and their two comparisons (§8.8.3.2): the strong one,
//! where both tags must be strong and the same, and the weak one, where their opaque parts
//! must be the same.
//!
//! A leaf: calls nothing else in the crate.

/// An entity tag's opaque part, for the weak comparison: without `W/` and the quotes
/// (tolerating a lowercase `w/` and missing quotes, which senders get wrong).
pub(crate) fn opaque(tag: &[u8]) -> &[u8] {
    let tag = tag.trim_ascii();
    let tag = weak_part(tag).unwrap_or(tag);
    tag.strip_prefix(b"\"")
        .and_then(|t| t.strip_suffix(b"\""))
        .unwrap_or(tag)
}

/// True for a weak tag (`W/"..."`).
pub(crate) fn is_weak(tag: &[u8]) -> bool {
    weak_part(tag.trim_ascii()).is_some()
}

fn weak_part(tag: &[u8]) -> Option<&[u8]> {
    tag.strip_prefix(b"W/").or_else(|| tag.strip_prefix(b"w/"))
}

/// The strong comparison: both tags strong, their opaque parts the same.
pub(crate) fn strong_match(a: &[u8], b: &[u8]) -> bool {
    !is_weak(a) && !is_weak(b) && opaque(a) == opaque(b)
}

/// The weak comparison: their opaque parts the same, weak or not.
pub(crate) fn weak_match(a: &[u8], b: &[u8]) -> bool {
    opaque(a) == opaque(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strong_and_weak_comparisons_follow_rfc_9110() {
        // RFC 9110 §8.8.3.2's table.
        let cases: [(&[u8], &[u8], bool, bool); 4] = [
            (b"W/\"1\"", b"W/\"1\"", false, true),
            (b"W/\"1\"", b"W/\"2\"", false, false),
            (b"W/\"1\"", b"\"1\"", false, true),
            (b"\"1\"", b"\"1\"", true, true),
        ];
        for (a, b, strong, weak) in cases {
            assert_eq!(strong_match(a, b), strong, "{a:?} {b:?}");
            assert_eq!(weak_match(a, b), weak, "{a:?} {b:?}");
        }
        assert!(is_weak(b" w/\"x\"") && !is_weak(b"\"x\""));
        assert_eq!(opaque(b" \"abc\" "), b"abc");
    }
}
