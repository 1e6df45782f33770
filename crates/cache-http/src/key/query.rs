//! A URL query (or a form body) as the key sees it: its pairs decoded once and sorted by
//! name, borrowed from the URL when nothing needs decoding (most API queries), so keying a URL
//! with a query costs one vector, whatever order its parameters come in.
//!
//! Some shapes are keyed as written rather than decoded, sorted and encoded again, so that no
//! two queries an origin may read differently share a key:
//! - a query holding a `;`. Origins that split a query at `&` only read `q=a;b=1` as one
//!   parameter `q`; others (Rack, older Python) also split at `;` and read two. Such a query
//!   is keyed in its written order (Rack takes a repeated name's last value, so sorting would
//!   merge `a=;z=2&z=1` with `z=1&a=;z=2`), each `&`-pair as written, but for what is left
//!   out ([`Treatment`]): a pair led by an ignored parameter keeps the parts after its `;`s
//!   that are not left out themselves (`utm_source=;id=5`: `id=5` is a parameter to the
//!   second kind of origin), and one led by a credential keeps only its name, and a `;` if
//!   its value held one (what follows a `;` is part of the credential to the first kind, and
//!   no credential is written: it counts by its fingerprint, value as written, and what
//!   follows its `;` is hashed into the key even when credentials do not count). A pair led
//!   by a kept parameter is kept whole (to the first kind it is one value), but for the
//!   values of its parts after a `;` named like credentials or ignored parameters (to the
//!   second kind they are those, and neither is stored): each such part keeps its name
//!   alone, and the pair's whole value is hashed into the key as a credential's tail is;
//! - a pair holding a `%` that escapes nothing (`%zz`): decoding keeps such a `%` as it is,
//!   so `a=%zz` and `a=%25zz` decode alike, while an origin may refuse the first (Go, Java)
//!   and read the second as `%zz`;
//! - a pair whose value holds a raw `]=`: Express's `qs` splits it there (`x=a]=b` sets
//!   `x=a]` to `b`), every other reader at its first `=` (`x` to `a]=b`, as `x=a%5D=b` and
//!   `x=a%5D%3Db` do to all).
//!
//! A query holding two names a framework may read as one parameter (PHP reads `page.size`
//! as `page_size`, and takes the last of the two) is decoded and encoded as usual but not
//! sorted: `page.size=1&page_size=2` and `page_size=2&page.size=1` differ to such an origin.
//! It keys apart from every sorted query: sorted, its names would be the same, so that query
//! holds them too, and is not sorted either.
//!
//! Written as they are, these key apart from every query keyed the usual way: encoding
//! writes `;` as `%3B`, `]` as `%5D` and every `%` as `%25`, so no encoded query holds a bare
//! `;`, a bare `]` or a `%` before anything but two hex digits.

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
    /// The pair's name as written (before its first `=`; all of it without one).
    fn written_name(&self) -> &[u8] {
        name_part(self.written)
    }

    /// The pair's value as written (after its first `=`; empty without one).
    fn written_value(&self) -> &[u8] {
        value_part(self.written)
    }
}

/// How the key (or the stored URL) treats a parameter, by its decoded name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Treatment {
    /// Written.
    Keep,
    /// Left out: an ignored parameter.
    Ignore,
    /// Left out: a credential (it counts by its fingerprint, when credentials do).
    Secret,
}

/// A credential value as the key's fingerprint takes it.
pub(super) enum CredentialValue<'a> {
    /// Decoded.
    Decoded(&'a [u8]),
    /// As written, for a pair keyed that way (see the module's doc).
    Written(&'a [u8]),
}

/// The pairs of a query, decoded and sorted by name (a repeated name's values keep their
/// order), or, for a query keyed as written or holding names read as one, in their order.
pub(super) struct QueryPairs<'q> {
    pairs: Vec<Pair<'q>>,
    /// Every byte is one the encoder leaves as it is (or `&`, `=`): nothing was decoded, and
    /// names and values are written back as they are.
    plain: bool,
    /// The query holds a `;` and is keyed as written (see the module's doc).
    as_written: bool,
    /// Left in their order: two names may be one parameter to the origin (see
    /// [`QueryPairs::write_kept`] for what is written then).
    folding: bool,
    /// A pair's value holds a raw `]=` (see [`QueryPairs::credential_tails`]).
    bracketed: bool,
}

impl<'q> QueryPairs<'q> {
    /// Empty pairs (`a=1&&b=2`) are skipped, but in a query keyed as written; a pair without
    /// `=` has an empty value.
    pub(super) fn parse(query: &'q [u8]) -> Self {
        let as_written = query.contains(&b';');
        // Most queries have nothing to decode or encode: one scan of the whole query says so,
        // and then no part is scanned again.
        let plain = query
            .iter()
            .all(|&b| unchanged_by_encoding(b) || b == b'&' || b == b'=');
        let escaped = !plain && query.iter().any(|&b| b == b'%' || b == b'+');
        let mut bracketed = false;
        let mut pairs: Vec<Pair<'q>> = query
            .split(|&b| b == b'&')
            .filter(|pair| as_written || !pair.is_empty())
            .map(|pair| {
                let bracket = splits_at_a_bracket(pair);
                bracketed |= bracket;
                let verbatim = as_written || (escaped && escapes_nothing(pair)) || bracket;
                decoded_pair(pair, escaped, verbatim)
            })
            .collect();
        // Kept in their order when two names may be one parameter to the origin (PHP's
        // `page.size` and `page_size`): which comes last is what it reads.
        let folding =
            !as_written && super::names::any_read_as_one(pairs.iter().map(|(name, _)| &name[..]));
        if !as_written && !folding {
            super::sort_by_name(&mut pairs);
        }
        Self {
            pairs,
            plain,
            as_written,
            folding,
            bracketed,
        }
    }

    /// The credentials' candidates: each pair's decoded name with its value as a credential's
    /// fingerprint takes it; in a query keyed as written, also the parts after a `;` of a
    /// pair led by a parameter `treat` leaves out (parameters of their own to an origin
    /// splitting at `;`).
    pub(super) fn credential_values(
        &self,
        treat: impl Fn(&[u8]) -> Treatment,
    ) -> Vec<(Cow<'_, [u8]>, CredentialValue<'_>)> {
        let mut found = Vec::new();
        for (name, value) in &self.pairs {
            let taken = match value.verbatim {
                true => CredentialValue::Written(value.written_value()),
                false => CredentialValue::Decoded(&value.decoded),
            };
            found.push((Cow::Borrowed(&name[..]), taken));
            if self.as_written && treat(name) == Treatment::Ignore {
                for part in value.written.split(|&b| b == b';').skip(1) {
                    let name = decode(name_part(part));
                    found.push((name, CredentialValue::Written(value_part(part))));
                }
            }
        }
        found
    }

    /// In a query keyed as written, the part after the first `;` of each pair led by a
    /// credential (in its value, or in its name), as written, with the credential's decoded
    /// name. Not written into the key's text (to an origin splitting at `&` only it is part
    /// of the credential), but to one splitting at `;` it holds parameters of their own: the
    /// key hashes it whether or not credentials count. Likewise the whole of each kept pair
    /// with a part named like a credential or an ignored parameter after a `;` (in its name
    /// or its value), which is written without those parts' values (see
    /// `write_as_written`): to an origin splitting at `&` only they are the pair's own. And,
    /// in any query, the whole of a pair led by a credential or an ignored parameter whose
    /// value holds a raw `]=`: to Express's `qs` it is another parameter (`api_key=x]=1`
    /// sets `api_key=x]`).
    pub(super) fn credential_tails(
        &self,
        treat: impl Fn(&[u8]) -> Treatment,
    ) -> impl Iterator<Item = (&[u8], &[u8])> {
        let pairs = if self.as_written || self.bracketed {
            &self.pairs[..]
        } else {
            &[]
        };
        pairs
            .iter()
            .filter_map(move |(name, value)| match treat(name) {
                Treatment::Secret | Treatment::Ignore if splits_at_a_bracket(value.written) => {
                    Some((&name[..], value.written))
                }
                // After the pair's first `;`, in its value or its name (`api_key[;x=1` is
                // `api_key` to Rack reading names as arrays, and `x=1` a parameter of its own
                // to Rack splitting at `;`).
                Treatment::Secret if self.as_written => {
                    let written = value.written;
                    let at = written.iter().position(|&b| b == b';')?;
                    Some((&name[..], &written[at + 1..]))
                }
                Treatment::Keep
                    if self.as_written && holds_left_out_parts(value.written, &treat) =>
                {
                    Some((&name[..], value.written))
                }
                _ => None,
            })
    }

    /// Writes the pairs `treat` keeps, encoded again (or as written: see the module's doc)
    /// and joined by `&`; false when nothing was written.
    pub(super) fn write_kept(&self, treat: impl Fn(&[u8]) -> Treatment, out: &mut Vec<u8>) -> bool {
        if self.as_written {
            self.write_as_written(treat, out);
            return true;
        }
        let kept = self
            .pairs
            .iter()
            .filter(|(name, _)| treat(name) == Treatment::Keep);
        if !self.folding {
            return self.write_pairs(kept.map(|pair| (pair, false)), out);
        }
        // Names an origin may read as one: which of them comes last is what it reads. So the
        // query keeps its order, and a left-out one among them keeps its name in place (its
        // value left out, as the stored URL keeps it: see `KeyRules::redact_url`).
        let shared = super::names::read_as_another(self.pairs.iter().map(|(name, _)| &name[..]));
        let written = self.pairs.iter().filter_map(|pair| match treat(&pair.0) {
            Treatment::Keep => Some((pair, false)),
            _ => shared.contains(&pair.0[..]).then_some((pair, true)),
        });
        self.write_pairs(written, out)
    }

    /// Writes `pairs` (of this query) joined by `&`, each a name alone where said so; false
    /// when there was none.
    fn write_pairs<'p>(
        &self,
        pairs: impl Iterator<Item = (&'p Pair<'q>, bool)>,
        out: &mut Vec<u8>,
    ) -> bool
    where
        'q: 'p,
    {
        let mut written = false;
        for ((name, value), name_alone) in pairs {
            if written {
                out.push(b'&');
            }
            written = true;
            if name_alone {
                // As written when its name holds a `%` escaping nothing (`a[%zz]` is not
                // `a[%25zz]`), as the stored URL keeps it: see `KeyRules::redact_url`.
                let written = value.written_name();
                if escapes_nothing(written) {
                    out.extend_from_slice(written);
                } else if self.plain {
                    out.extend_from_slice(name);
                } else {
                    encode(name, out);
                }
                out.push(b'=');
            } else if value.verbatim {
                out.extend_from_slice(value.written);
            } else if self.plain {
                out.extend_from_slice(name);
                out.push(b'=');
                out.extend_from_slice(&value.decoded);
            } else {
                encode(name, out);
                out.push(b'=');
                encode_value(&value.decoded, out);
            }
        }
        written
    }

    /// [`QueryPairs::write_kept`] of a query keyed as written (see the module's doc).
    fn write_as_written(&self, treat: impl Fn(&[u8]) -> Treatment, out: &mut Vec<u8>) {
        for (at, (name, value)) in self.pairs.iter().enumerate() {
            if at > 0 {
                out.push(b'&');
            }
            match treat(name) {
                Treatment::Keep if holds_left_out_parts(value.written, &treat) => {
                    let mut parts = value.written.split(|&b| b == b';');
                    out.extend_from_slice(parts.next().unwrap_or_default());
                    // Only the values of parts left out go (the key hashes them whole, as a
                    // tail): to an origin splitting at `&` only, the rest is the kept value.
                    write_parts(parts, |part| part == Treatment::Keep, &treat, out);
                }
                Treatment::Keep => out.extend_from_slice(value.written),
                Treatment::Secret => {
                    out.extend_from_slice(value.written_name());
                    out.push(b'=');
                    // A bare `;` says one was there: the stored URL, written the same, is
                    // still a query keyed as written, and keys as the request did.
                    if value.written_value().contains(&b';') {
                        out.push(b';');
                    }
                }
                Treatment::Ignore => {
                    let mut parts = value.written.split(|&b| b == b';');
                    write_name_alone(parts.next().unwrap_or_default(), out);
                    write_parts(parts, |part| part == Treatment::Keep, &treat, out);
                }
            }
        }
    }
}

/// Writes `parts` (a pair's parts after its first `;`), each after a `;`: whole when `whole`
/// says so of its treatment (by its own decoded name), else its name alone.
fn write_parts<'p>(
    parts: impl Iterator<Item = &'p [u8]>,
    whole: impl Fn(Treatment) -> bool,
    treat: &impl Fn(&[u8]) -> Treatment,
    out: &mut Vec<u8>,
) {
    for part in parts {
        out.push(b';');
        if whole(treat(&decode(name_part(part)))) {
            out.extend_from_slice(part);
        } else {
            write_name_alone(part, out);
        }
    }
}

/// Writes the name of `part`, and its `=` only if it had one: an `=` it had not would move
/// the first `=` of the pair it is in, and so the pair's name to an origin splitting at `&`
/// only (`q;utm_source;x=1` is named `q;utm_source;x`, `q;utm_source=;x=1` is not).
fn write_name_alone(part: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(name_part(part));
    if part.contains(&b'=') {
        out.push(b'=');
    }
}

/// True when a part of `pair` after one of its `;`s is named like a credential or an ignored
/// parameter: to an origin splitting at `;` (Rack, older Python) it is one.
fn holds_left_out_parts(pair: &[u8], treat: &impl Fn(&[u8]) -> Treatment) -> bool {
    pair.split(|&b| b == b';')
        .skip(1)
        .any(|part| treat(&decode(name_part(part))) != Treatment::Keep)
}

/// `pair` split at its first `=` and decoded (when `escaped`: otherwise its parts are
/// borrowed as they are).
fn decoded_pair(pair: &[u8], escaped: bool, verbatim: bool) -> Pair<'_> {
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
    };
    (name, value)
}

/// A pair's name as written: before its first `=`, all of it without one.
fn name_part(pair: &[u8]) -> &[u8] {
    &pair[..pair.iter().position(|&b| b == b'=').unwrap_or(pair.len())]
}

/// A pair's value as written: after its first `=`, empty without one.
fn value_part(pair: &[u8]) -> &[u8] {
    match pair.iter().position(|&b| b == b'=') {
        Some(at) => &pair[at + 1..],
        None => &[],
    }
}

/// True when the value of `pair` holds a raw `]=`: Express's `qs` splits the pair there
/// (`x=a]=b` is `x=a]` set to `b`), where every other reader splits at the first `=`
/// (`x` set to `a]=b`, as `x=a%5D=b` is to all).
fn splits_at_a_bracket(pair: &[u8]) -> bool {
    value_part(pair).windows(2).any(|w| w == b"]=")
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

/// [`encode`] of a value, but for its `=`s, written as they are: a pair splits at its first
/// `=` (or, to `qs`, at a raw `]=`, which keeps a pair as written: see the module's doc), so
/// a value's own reads back the same either way, and a plain query (written as it is: see
/// [`QueryPairs::write_kept`]) writes them so. Encoded, `x=a=b` keyed apart from itself
/// beside a parameter that needed decoding, and a stored URL without that parameter (a
/// credential) was in another URL group than its request.
fn encode_value(bytes: &[u8], out: &mut Vec<u8>) {
    if !bytes.contains(&b'=') {
        return encode(bytes, out);
    }
    // `byte_serialize` writes each byte it escapes as a `%XX` of its own (and `%` as `%25`),
    // so a `%3D` it writes is an `=`.
    for chunk in form_urlencoded::byte_serialize(bytes) {
        let chunk = if chunk == "%3D" { "=" } else { chunk };
        out.extend_from_slice(chunk.as_bytes());
    }
}

/// The bytes `form_urlencoded::byte_serialize` leaves as they are; most names and values hold
/// no other.
fn unchanged_by_encoding(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'*' | b'-' | b'.' | b'_')
}
