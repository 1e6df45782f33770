//! A URL query as the key sees it: its pairs decoded once and sorted by name, borrowed from
//! the URL when nothing needs decoding (most API queries), so keying a URL with a query costs
//! one vector, whatever order its parameters come in.

use std::borrow::Cow;

use url::form_urlencoded;

/// One `name=value` pair: its name decoded as `application/x-www-form-urlencoded` to bytes,
/// and its value.
type Pair<'q> = (Cow<'q, [u8]>, Value<'q>);

/// A pair's value, decoded, and the whole pair as written when it must be keyed that way.
struct Value<'q> {
    decoded: Cow<'q, [u8]>,
    /// The pair as written, when it holds a `%` that escapes nothing (`%zz`): decoding keeps
    /// such a `%` as it is, so `a=%zz` and `a=%25zz` decode alike, while an origin may refuse
    /// the first (Go, Java) and read the second as `%zz`. Written back verbatim, the first
    /// keys apart: encoding writes every `%` as `%25`, so no encoded pair holds a bare `%`.
    verbatim: Option<&'q [u8]>,
}

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
            .map(|pair| {
                let (name, value) = match pair.iter().position(|&b| b == b'=') {
                    Some(at) => (decode(&pair[..at]), decode(&pair[at + 1..])),
                    None => (decode(pair), Cow::Borrowed(&[][..])),
                };
                let verbatim = (escaped && escapes_nothing(pair)).then_some(pair);
                let decoded = value;
                (name, Value { decoded, verbatim })
            })
            .collect();
        super::sort_by_name(&mut pairs);
        Self { pairs, plain }
    }

    /// Each pair: the decoded name and value.
    pub(super) fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.pairs
            .iter()
            .map(|(name, value)| (&name[..], &value.decoded[..]))
    }

    /// Writes the pairs whose name `keep` accepts, encoded again and joined by `&`; false
    /// when none was written.
    ///
    /// A pair left out whose value holds a `;` is not left out whole: origins that split a
    /// query at `;` as well as `&` (Rack, older Python) read `utm_source=x;id=5` as two
    /// parameters, the second one kept, so the part from the `;` on is written, after the
    /// name and a bare `;` no encoded pair holds. Such a URL then keys apart from the URL
    /// without it and from the one with `id=5` alone (another resource to an origin splitting
    /// at `&` only), and the value before the `;` (ignored, or a credential) is still left
    /// out.
    pub(super) fn write_kept(&self, keep: impl Fn(&[u8]) -> bool, out: &mut Vec<u8>) -> bool {
        let mut written = false;
        for (name, value) in &self.pairs {
            let kept = keep(name);
            let cloaked = match kept {
                true => None,
                false => value.decoded.iter().position(|&b| b == b';'),
            };
            if !kept && cloaked.is_none() {
                continue;
            }
            if written {
                out.push(b'&');
            }
            written = true;
            if let Some(at) = cloaked {
                encode(name, out);
                out.extend_from_slice(b"=;");
                encode(&value.decoded[at + 1..], out);
            } else if let Some(pair) = value.verbatim {
                out.extend_from_slice(pair);
            } else if self.plain {
                out.extend_from_slice(name);
                out.push(b'=');
                out.extend_from_slice(&value.decoded);
            } else {
                encode(name, out);
                out.push(b'=');
                encode(&value.decoded, out);
            }
        }
        written
    }
}

/// True when `part` holds a `%` not followed by two hex digits.
fn escapes_nothing(part: &[u8]) -> bool {
    part.iter().enumerate().any(|(at, &b)| {
        b == b'%'
            && !part
                .get(at + 1..at + 3)
                .is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit))
    })
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
