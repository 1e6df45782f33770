//! Optional LZ4 compression of entry bodies.
//!
//! LZ4 (the pure-Rust `lz4_flex`, safe encoder and decoder) because a hit pays for the
//! decompression: it decodes at several GB/s where zstd decodes at about one, and compresses
//! text bodies (HTML, JSON) to a third or less. A body is stored compressed only when that
//! saves at least a tenth of it, so images and already-encoded bodies stay raw and zero-copy.

use bytes::Bytes;

use super::DecodeError;

/// `body` compressed (its length first, u32 LE), or `None` when that would not save a tenth.
pub(super) fn compress(body: &[u8]) -> Option<Vec<u8>> {
    let compressed = lz4_flex::block::compress_prepend_size(body);
    (compressed.len() <= body.len() - body.len() / 10).then_some(compressed)
}

/// The body from its compressed form. The announced length is checked against what LZ4 can
/// produce from the input before anything is allocated, so a damaged entry cannot ask for
/// gigabytes.
pub(super) fn decompress(stored: &[u8], limit: Option<usize>) -> Result<Bytes, DecodeError> {
    let invalid = || DecodeError::Invalid {
        field: "compressed body",
    };
    let (announced, block) = lz4_flex::block::uncompressed_size(stored).map_err(|_| invalid())?;
    // LZ4 expands at most ~255× (one literal-length byte per 255 output bytes).
    let possible = block.len().saturating_mul(255).saturating_add(16);
    if announced > possible.min(limit.unwrap_or(usize::MAX)) {
        return Err(invalid());
    }
    let body = lz4_flex::block::decompress(block, announced).map_err(|_| invalid())?;
    if body.len() != announced {
        return Err(invalid());
    }
    Ok(Bytes::from(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_compresses_and_comes_back() {
        let body = b"{\"name\": \"value\", \"n\": 1}, ".repeat(200);
        let compressed = compress(&body).expect("repetitive text compresses");
        assert!(compressed.len() < body.len() / 4);
        assert_eq!(&decompress(&compressed, None).unwrap()[..], &body[..]);
        assert!(
            decompress(&compressed, Some(body.len() - 1)).is_err(),
            "over the limit"
        );
        assert!(decompress(&compressed, Some(body.len())).is_ok());
    }

    #[test]
    fn incompressible_bodies_stay_raw() {
        // A xorshift sequence: no repeats for LZ4 to find.
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let noise: Vec<u8> = (0..4096)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        assert!(compress(&noise).is_none());
        assert!(compress(b"").is_none());
    }

    #[test]
    fn damaged_or_inflated_input_is_an_error() {
        let compressed = compress(&b"abc".repeat(1000)).unwrap();
        assert!(decompress(&compressed[..compressed.len() - 3], None).is_err());
        assert!(decompress(&[0xff, 0xff, 0xff, 0x7f, 0x00], None).is_err());
        assert!(decompress(&[1, 2], None).is_err());
    }
}
