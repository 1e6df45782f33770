//! A URL query (or a form body) as the key sees it: its pairs decoded once and sorted by
//! name, borrowed from the URL when nothing needs decoding (most API queries), so keying a URL
//! with a query costs one vector, whatever order its parameters come in.
//!
//! Two kinds of pair are keyed as written rather than decoded and encoded again, so that no
//! two queries an origin may read differently share a key:
//! - a pair holding a `;`: origins that split a query at `;` as well as `&` (Rack, older
//!   Python) read `id=5;x=1` as two parameters and `id=5%3Bx%3D1` as one;
//! - a pair holding a `%` that escapes nothing (`%zz`): decoding keeps such a `%` as it is,
//!   so `a=%zz` and `a=%25zz` decode alike, while an origin may refuse the first (Go, Java)
//!   and read the second as `%zz`.
//!
//! Written as they are, both kinds key apart from every other pair: encoding writes `;` as
//! `%3B` and every `%` as `%25`, so no encoded pair holds a bare `;` or a `%` before anything
//! but two hex digits.

use std::borrow::Cow;

use url::form_urlencoded;

/// One `name=value` pair: its name decoded as `application/x-www-form-urlencoded` to bytes,
/// and its value.
type Pair<'q> = (Cow<'q, [u8]>, Value<'q>);

/// A pair's value, decoded, and the pair as written.
struct Value<'q> {
    decoded: Cow<'q, [u8]>,
    /// The whole pair as written.
    written: &'q [u8],
    /// Keyed as written (see the module's doc).
    verbatim: bool,
}

impl Value<'_> {
    /// The value as written (after the pair's first `=`; empty without one).
    fn written_value(&self) -> &[u8] {
        match self.written.iter().position(|&b| b == b'=') {
            Some(at) => &self.written[at + 1..],
            None => &[],
        }
    }
}

/// How the key treats a parameter, by its name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Treatment {
    /// In the key's text.
    Keep,
    /// Left out (an ignored parameter), but not what follows a `;` in its value as written:
    /// origins splitting at `;` read `utm_source=x;id=5` as two parameters, the second one
    /// not ignored. That part is written after the name and a bare `;`, so the URL keys apart
    /// from the URL without it and from the one with `id=5` alone (another resource to an
    /// origin splitting at `&` only).
    Ignore,
    /// Left out whole (a credential: it counts by its fingerprint, when credentials do).
    Secret,
}

/// A credential value as the key's fingerprint takes it.
pub(super) enum CredentialValue<'a> {
    /// Decoded.
    Decoded(&'a [u8]),
    /// As written, for a pair keyed that way (see the module's doc).
    Written(&'a [u8]),
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
    pub(super) fn parse(query: &'q [u8]) -> Self {
        // Most queries have nothing to decode or encode: one scan of the whole query says so,
        // and then no part is scanned again.
        let plain = query
            .iter()
            .all(|&b| unchanged_by_encoding(b) || b == b'&' || b == b'=');
        let escaped = !plain && query.iter().any(|&b| b == b'%' || b == b'+');
        let decode = |part: &'q [u8]| {
            if escaped {
                decode(part)
            } else {
                Cow::Borrowed(part)
            }
        };
        let mut pairs: Vec<Pair<'q>> = query
            .split(|&b| b == b'&')
            .filter(|pair| !pair.is_empty())
            .map(|pair| {
                let (name, decoded) = match pair.iter().position(|&b| b == b'=') {
                    Some(at) => (decode(&pair[..at]), decode(&pair[at + 1..])),
                    None => (decode(pair), Cow::Borrowed(&[][..])),
                };
                let verbatim = !plain && (pair.contains(&b';') || escapes_nothing(pair));
                let value = Value {
                    decoded,
                    written: pair,
                    verbatim,
                };
                (name, value)
            })
            .collect();
        super::sort_by_name(&mut pairs);
        Self { pairs, plain }
    }

    /// Each pair: the decoded name and the value as a credential's fingerprint takes it.
    pub(super) fn credential_values(&self) -> impl Iterator<Item = (&[u8], CredentialValue<'_>)> {
        self.pairs.iter().map(|(name, value)| {
            let taken = match value.verbatim {
                true => CredentialValue::Written(value.written_value()),
                false => CredentialValue::Decoded(&value.decoded),
            };
            (&name[..], taken)
        })
    }

    /// Writes the pairs as `treat` says of each name, encoded again (or as written: see the
    /// module's doc) and joined by `&`; false when none was written.
    pub(super) fn write_kept(&self, treat: impl Fn(&[u8]) -> Treatment, out: &mut Vec<u8>) -> bool {
        let mut written = false;
        for (name, value) in &self.pairs {
            let cloaked = match treat(name) {
                Treatment::Keep => None,
                Treatment::Secret => continue,
                Treatment::Ignore => {
                    let written_value = value.written_value();
                    match written_value.iter().position(|&b| b == b';') {
                        Some(at) => Some(&written_value[at + 1..]),
                        None => continue,
                    }
                }
            };
            if written {
                out.push(b'&');
            }
            written = true;
            if let Some(rest) = cloaked {
                encode(name, out);
                out.extend_from_slice(b"=;");
                out.extend_from_slice(rest);
            } else if value.verbatim {
                out.extend_from_slice(value.written);
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

/// What an ignored pair as written keeps in a stored URL: its name as written and the part of
/// its value from the first `;` on (`utm_source=x;id=5` keeps `utm_source=;id=5`, which keys
/// as the pair does: see [`Treatment::Ignore`]); `None` when its value holds no `;`.
pub(super) fn ignored_pair_kept(pair: &str) -> Option<String> {
    let (name, value) = pair.split_once('=')?;
    let at = value.find(';')?;
    Some(format!("{name}={}", &value[at..]))
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
