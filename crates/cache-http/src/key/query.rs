//! A URL query (or a form body) as the key sees it: its pairs decoded once and sorted by
//! name, borrowed from the URL when nothing needs decoding (most API queries), so keying a URL
//! with a query costs one vector, whatever order its parameters come in.
//!
//! Two shapes are keyed as written rather than decoded, sorted and encoded again, so that no
//! two queries an origin may read differently share a key:
//! - a query holding a `;`: origins that split a query at `;` as well as `&` (Rack, older
//!   Python) read `utm_source=x;id=5` as two parameters, where others read one. Such a query
//!   is keyed whole, in its written order, each of its segments (split at `&` and `;`) as
//!   written, except that a left-out parameter keeps only its name (`utm_source=;id=5`): for
//!   either kind of origin, two queries keyed alike say the same but for left-out values.
//!   Sorting would not do: Rack takes a repeated name's last value, and `a=;z=2&z=1` and
//!   `z=1&a=;z=2` would sort alike;
//! - a pair holding a `%` that escapes nothing (`%zz`): decoding keeps such a `%` as it is,
//!   so `a=%zz` and `a=%25zz` decode alike, while an origin may refuse the first (Go, Java)
//!   and read the second as `%zz`.
//!
//! Written as they are, both key apart from every query keyed the usual way: encoding writes
//! `;` as `%3B` and every `%` as `%25`, so no encoded query holds a bare `;` or a `%` before
//! anything but two hex digits.

use std::borrow::Cow;

use url::form_urlencoded;

/// One `name=value` pair (or segment): its name decoded as
/// `application/x-www-form-urlencoded` to bytes, and its value.
type Pair<'q> = (Cow<'q, [u8]>, Value<'q>);

/// A pair's value, decoded, and the pair as written.
struct Value<'q> {
    decoded: Cow<'q, [u8]>,
    /// The whole pair as written.
    written: &'q [u8],
    /// Keyed as written (see the module's doc).
    verbatim: bool,
    /// In a query keyed as written: the `&` or `;` written before this segment (none for
    /// the first).
    after: Option<u8>,
}

impl Value<'_> {
    /// The pair's name as written (before its first `=`; all of it without one).
    fn written_name(&self) -> &[u8] {
        let end = self.written.iter().position(|&b| b == b'=');
        &self.written[..end.unwrap_or(self.written.len())]
    }

    /// The pair's value as written (after its first `=`; empty without one).
    fn written_value(&self) -> &[u8] {
        match self.written.iter().position(|&b| b == b'=') {
            Some(at) => &self.written[at + 1..],
            None => &[],
        }
    }
}

/// A credential value as the key's fingerprint takes it.
pub(super) enum CredentialValue<'a> {
    /// Decoded.
    Decoded(&'a [u8]),
    /// As written, for a pair keyed that way (see the module's doc).
    Written(&'a [u8]),
}

/// The pairs of a query, decoded and sorted by name (a repeated name's values keep their
/// order), or, for a query keyed as written, its segments in their order.
pub(super) struct QueryPairs<'q> {
    pairs: Vec<Pair<'q>>,
    /// Every byte is one the encoder leaves as it is (or `&`, `=`): nothing was decoded, and
    /// names and values are written back as they are.
    plain: bool,
    /// The query holds a `;` and is keyed as written (see the module's doc).
    as_written: bool,
}

impl<'q> QueryPairs<'q> {
    /// Empty pairs (`a=1&&b=2`) are skipped; a pair without `=` has an empty value.
    pub(super) fn parse(query: &'q [u8]) -> Self {
        if query.contains(&b';') {
            return Self::segments(query);
        }
        // Most queries have nothing to decode or encode: one scan of the whole query says so,
        // and then no part is scanned again.
        let plain = query
            .iter()
            .all(|&b| unchanged_by_encoding(b) || b == b'&' || b == b'=');
        let escaped = !plain && query.iter().any(|&b| b == b'%' || b == b'+');
        let mut pairs: Vec<Pair<'q>> = query
            .split(|&b| b == b'&')
            .filter(|pair| !pair.is_empty())
            .map(|pair| {
                let verbatim = escaped && escapes_nothing(pair);
                decoded_pair(pair, escaped, verbatim, None)
            })
            .collect();
        super::sort_by_name(&mut pairs);
        Self {
            pairs,
            plain,
            as_written: false,
        }
    }

    /// A query holding a `;`: its segments split at `&` and `;`, empty ones too, in their
    /// order, each after the separator written before it.
    fn segments(query: &'q [u8]) -> Self {
        let mut pairs = Vec::new();
        let (mut rest, mut after) = (query, None);
        loop {
            let end = rest.iter().position(|&b| b == b'&' || b == b';');
            let segment = &rest[..end.unwrap_or(rest.len())];
            pairs.push(decoded_pair(segment, true, true, after));
            let Some(end) = end else { break };
            after = Some(rest[end]);
            rest = &rest[end + 1..];
        }
        Self {
            pairs,
            plain: false,
            as_written: true,
        }
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

    /// Writes the pairs whose name `keep` accepts, encoded again (or as written: see the
    /// module's doc) and joined by `&`; false when nothing was written. A query keyed as
    /// written is written whole, the value of a pair `keep` refuses left out (its name and
    /// `=` stay).
    pub(super) fn write_kept(&self, keep: impl Fn(&[u8]) -> bool, out: &mut Vec<u8>) -> bool {
        if self.as_written {
            for (name, value) in &self.pairs {
                out.extend(value.after);
                if keep(name) {
                    out.extend_from_slice(value.written);
                } else {
                    out.extend_from_slice(value.written_name());
                    out.push(b'=');
                }
            }
            return true;
        }
        let mut written = false;
        for (name, value) in &self.pairs {
            if !keep(name) {
                continue;
            }
            if written {
                out.push(b'&');
            }
            written = true;
            if value.verbatim {
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

/// `pair` split at its first `=` and decoded (when `escaped`: otherwise its parts are
/// borrowed as they are).
fn decoded_pair(pair: &[u8], escaped: bool, verbatim: bool, after: Option<u8>) -> Pair<'_> {
    let decode = |part| {
        if escaped {
            decode(part)
        } else {
            Cow::Borrowed(part)
        }
    };
    let (name, decoded) = match pair.iter().position(|&b| b == b'=') {
        Some(at) => (decode(&pair[..at]), decode(&pair[at + 1..])),
        None => (decode(pair), Cow::Borrowed(&[][..])),
    };
    let value = Value {
        decoded,
        written: pair,
        verbatim,
        after,
    };
    (name, value)
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
