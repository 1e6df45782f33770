//! A URL query as the key sees it: its pairs decoded once and sorted by name, borrowed from
//! the URL when nothing needs decoding (most API queries), so keying a URL with a query costs
//! one vector, whatever order its parameters come in.

use std::borrow::Cow;

use url::form_urlencoded;

/// One `name=value` pair, decoded as `application/x-www-form-urlencoded` to bytes.
type Pair<'q> = (Cow<'q, [u8]>, Cow<'q, [u8]>);

/// The pairs of a query, decoded and sorted by name; a repeated name's values keep their order.
pub(super) struct QueryPairs<'q> {
    pairs: Vec<Pair<'q>>,
    /// Every byte is one the encoder leaves as it is (or `&`, `=`): nothing was decoded, and
    /// names and values are written back as they are.
    plain: bool,
}

impl<'q> QueryPairs<'q> {
    /// Empty pairs (`a=1&&b=2`) are skipped; a pair without `=` has an empty value.
    pub(super) fn parse(query: &'q str) -> Self {
        // Most queries have nothing to decode or encode: one scan of the whole query says so,
        // and then no part is scanned again.
        let plain = query
            .bytes()
            .all(|b| unchanged_by_encoding(b) || b == b'&' || b == b'=');
        let escaped = !plain && query.bytes().any(|b| b == b'%' || b == b'+');
        let decode = |part: &'q [u8]| {
            if escaped {
                decode(part)
            } else {
                Cow::Borrowed(part)
            }
        };
        let mut pairs: Vec<Pair<'q>> = query
            .as_bytes()
            .split(|&b| b == b'&')
            .filter(|pair| !pair.is_empty())
            .map(|pair| match pair.iter().position(|&b| b == b'=') {
                Some(at) => (decode(&pair[..at]), decode(&pair[at + 1..])),
                None => (decode(pair), Cow::Borrowed(&[][..])),
            })
            .collect();
        super::sort_by_name(&mut pairs);
        Self { pairs, plain }
    }

    /// Each pair: the decoded name and value.
    pub(super) fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.pairs
            .iter()
            .map(|(name, value)| (&name[..], &value[..]))
    }

    /// Writes the pairs whose name `keep` accepts, encoded again and joined by `&`; false
    /// when none was kept (then nothing was written).
    pub(super) fn write_kept(&self, keep: impl Fn(&[u8]) -> bool, out: &mut Vec<u8>) -> bool {
        let mut written = false;
        for (name, value) in &self.pairs {
            if !keep(name) {
                continue;
            }
            if written {
                out.push(b'&');
            }
            written = true;
            if self.plain {
                out.extend_from_slice(name);
                out.push(b'=');
                out.extend_from_slice(value);
            } else {
                encode(name, out);
                out.push(b'=');
                encode(value, out);
            }
        }
        written
    }
}

/// `+` is a space, then percent-decoding; borrowed when neither occurs.
fn decode(part: &[u8]) -> Cow<'_, [u8]> {
    if part.contains(&b'+') {
        let spaced: Vec<u8> = part
            .iter()
            .map(|&b| if b == b'+' { b' ' } else { b })
            .collect();
        Cow::Owned(percent_encoding::percent_decode(&spaced).collect())
    } else {
        Cow::from(percent_encoding::percent_decode(part))
    }
}

/// As `form_urlencoded::byte_serialize` encodes (spaces as `+`).
fn encode(bytes: &[u8], out: &mut Vec<u8>) {
    if bytes.iter().all(|&b| unchanged_by_encoding(b)) {
        out.extend_from_slice(bytes);
        return;
    }
    for chunk in form_urlencoded::byte_serialize(bytes) {
        out.extend_from_slice(chunk.as_bytes());
    }
}

/// The bytes `form_urlencoded::byte_serialize` leaves as they are; most names and values hold
/// no other.
fn unchanged_by_encoding(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'*' | b'-' | b'.' | b'_')
}
