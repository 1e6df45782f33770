//! JSON bodies as they enter the key: object keys sorted at every level, numbers compared by
//! the text written.
//!
//! `serde_json::Value` keeps numbers as `u64`, `i64` or `f64`, so two bodies differing only
//! past `f64`'s precision (`18446744073709551617` and `...616`, `0.1` and
//! `0.10000000000000000001`) would share a key. Each level is read as `RawValue`s instead,
//! which keep every number's text. `serde_json`'s `arbitrary_precision` would do it too, but it
//! changes how every crate in the build sees `serde_json` numbers; `raw_value` only adds a
//! type.

use std::collections::BTreeMap;

use serde_json::value::RawValue;

/// Nesting `serde_json::Value` refuses (its recursion limit): such a body was never parsed as
/// JSON, so it stays raw bytes here too, and the walk below never recurses deeper.
const MAX_DEPTH: usize = 127;

/// The most bytes the walk below may read: each level re-reads its own text, so a body costs
/// up to its nesting times its length (a 10 MB body nested 126 deep, 1.3 GB a key; request
/// bodies have no size limit, and keys of bodies are not remembered). A body over it enters
/// the key as raw bytes (a reordered copy of it is then a miss, never another's response).
const MAX_WALK_BYTES: usize = 32 << 20;

/// A JSON body: its top-level members (for ignored parameters and credentials), or another
/// value. `None` when the bytes are not JSON.
pub(super) enum Body<'a> {
    Object(BTreeMap<String, &'a RawValue>),
    Other(&'a RawValue),
}

impl<'a> Body<'a> {
    pub(super) fn parse(bytes: &'a [u8]) -> Option<Self> {
        let text = std::str::from_utf8(bytes).ok()?;
        let raw: &RawValue = serde_json::from_str(text).ok()?;
        // Each level below re-reads its own text, so a deep body would cost depth × length:
        // refuse what `serde_json::Value` refuses before walking it.
        let depth = nesting(raw.get());
        if depth > MAX_DEPTH || depth.saturating_mul(raw.get().len()) > MAX_WALK_BYTES {
            return None;
        }
        if raw.get().starts_with('{') {
            return members(raw.get()).map(Body::Object);
        }
        Some(Body::Other(raw))
    }
}

/// The members of the object `text`, by name; `None` when it is not one, or names a member
/// twice. Servers differ on which of two same-named members counts (the first, the last, an
/// error), so a body naming one twice is not canonical: read into a map, the last won, and
/// `{"q":1,"q":2}` shared its key with `{"q":2}` (a server taking the first value would have
/// had one request's response served for the other). Such a body enters the key as its bytes.
fn members(text: &str) -> Option<BTreeMap<String, &RawValue>> {
    serde_json::from_str::<UniqueMembers<'_>>(text)
        .ok()
        .map(|unique| unique.0)
}

/// An object's members, refused when a name comes twice.
struct UniqueMembers<'a>(BTreeMap<String, &'a RawValue>);

impl<'de: 'a, 'a> serde::Deserialize<'de> for UniqueMembers<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for Visitor<'a> {
            type Value = UniqueMembers<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object naming each member once")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Self::Value, A::Error> {
                let mut members = BTreeMap::new();
                while let Some((name, value)) = map.next_entry::<String, &'de RawValue>()? {
                    if members.insert(name, value).is_some() {
                        return Err(serde::de::Error::custom("a member named twice"));
                    }
                }
                Ok(UniqueMembers(members))
            }
        }
        deserializer.deserialize_map(Visitor(std::marker::PhantomData))
    }
}

/// How deeply arrays and objects nest in valid JSON text (one pass, strings skipped).
fn nesting(text: &str) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    let (mut in_string, mut escaped) = (false, false);
    for b in text.bytes() {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// The canonical text of a member map, as [`canonical`] writes an object.
pub(super) fn canonical_object(
    members: &BTreeMap<String, &RawValue>,
    out: &mut Vec<u8>,
) -> Option<()> {
    write_object(members, 1, out)
}

/// The canonical text of a value; `None` when it is not JSON as `serde_json::Value` reads it.
pub(super) fn canonical(value: &RawValue, out: &mut Vec<u8>) -> Option<()> {
    write_value(value, 0, out)
}

fn write_value(value: &RawValue, depth: usize, out: &mut Vec<u8>) -> Option<()> {
    let text = value.get();
    match text.as_bytes().first()? {
        b'{' => {
            let members = members(text)?;
            write_object(&members, depth + 1, out)
        }
        b'[' => {
            if depth + 1 > MAX_DEPTH {
                return None;
            }
            let items: Vec<&RawValue> = serde_json::from_str(text).ok()?;
            out.push(b'[');
            for (i, item) in items.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(item, depth + 1, out)?;
            }
            out.push(b']');
            Some(())
        }
        b'"' => {
            let s: String = serde_json::from_str(text).ok()?;
            write_string(&s, out);
            Some(())
        }
        b'-' | b'0'..=b'9' => write_number(text, out),
        // true, false, null: already in their only spelling.
        _ => {
            out.extend_from_slice(text.as_bytes());
            Some(())
        }
    }
}

/// Members in key order (a `BTreeMap`: sorted, and the last of duplicate keys wins, as in
/// `serde_json::Value`).
fn write_object(
    members: &BTreeMap<String, &RawValue>,
    depth: usize,
    out: &mut Vec<u8>,
) -> Option<()> {
    if depth > MAX_DEPTH {
        return None;
    }
    out.push(b'{');
    for (i, (name, value)) in members.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_string(name, out);
        out.push(b':');
        write_value(value, depth, out)?;
    }
    out.push(b'}');
    Some(())
}

pub(super) fn write_string(s: &str, out: &mut Vec<u8>) {
    // Serializing a string into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

/// A number as `serde_json` prints it when that is exactly the number written (so keys of
/// ordinary bodies are what they were when numbers went through `f64`), otherwise its exact
/// value as `<digits>e<exponent>`. Either text denotes the number's exact value, so two
/// different numbers never print the same.
fn write_number(text: &str, out: &mut Vec<u8>) -> Option<()> {
    let number: serde_json::Number = serde_json::from_str(text).ok()?;
    let exact = Decimal::parse(text)?;
    let printed = if number.is_f64() {
        // Rust's parse rounds correctly, so the choice depends on the value, not its spelling.
        let nearest = text
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64);
        nearest
            .map(|n| n.to_string())
            .filter(|p| Decimal::parse(p).as_ref() == Some(&exact))
    } else {
        // Integers within u64 / i64 are exact.
        Some(number.to_string())
    };
    match printed {
        Some(printed) => out.extend_from_slice(printed.as_bytes()),
        None => exact.write(out),
    }
    Some(())
}

/// A decimal number's exact value: `digits × 10^exponent`, `digits` without leading or
/// trailing zeros (empty for zero, which has no sign).
#[derive(Debug, PartialEq, Eq)]
struct Decimal {
    negative: bool,
    digits: String,
    exponent: i64,
}

impl Decimal {
    /// Parses JSON number syntax (and `serde_json`'s output, which is JSON number syntax).
    fn parse(text: &str) -> Option<Self> {
        let (negative, rest) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let (mantissa, exponent) = match rest.find(['e', 'E']) {
            Some(at) => (&rest[..at], parse_exponent(&rest[at + 1..])?),
            None => (rest, 0),
        };
        let (int, frac) = match mantissa.split_once('.') {
            Some((_, "")) => return None,
            Some(parts) => parts,
            None => (mantissa, ""),
        };
        let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if int.is_empty() || !all_digits(int) || !all_digits(frac) {
            return None;
        }
        let frac_len = i64::try_from(frac.len()).unwrap_or(i64::MAX);
        let joined = format!("{int}{frac}");
        let significant = joined.trim_start_matches('0');
        let trimmed = significant.trim_end_matches('0');
        let trailing = i64::try_from(significant.len() - trimmed.len()).unwrap_or(i64::MAX);
        if trimmed.is_empty() {
            return Some(Self {
                negative: false,
                digits: String::new(),
                exponent: 0,
            });
        }
        Some(Self {
            negative,
            digits: trimmed.to_owned(),
            exponent: exponent.saturating_sub(frac_len).saturating_add(trailing),
        })
    }

    fn write(&self, out: &mut Vec<u8>) {
        if self.digits.is_empty() {
            out.push(b'0');
            return;
        }
        if self.negative {
            out.push(b'-');
        }
        out.extend_from_slice(self.digits.as_bytes());
        out.push(b'e');
        out.extend_from_slice(self.exponent.to_string().as_bytes());
    }
}

/// An exponent's digits, saturating: a number whose exponent does not fit an `i64` has
/// failed `serde_json`'s range check already, unless its digits are all zero.
fn parse_exponent(text: &str) -> Option<i64> {
    let (negative, digits) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let magnitude = digits.bytes().fold(0i64, |acc, b| {
        acc.saturating_mul(10).saturating_add(i64::from(b - b'0'))
    });
    Some(if negative { -magnitude } else { magnitude })
}

#[cfg(test)]
mod tests {
    use super::Decimal;

    #[test]
    fn decimals_are_exact_values() {
        let d = |s: &str| Decimal::parse(s).unwrap();
        assert_eq!(d("1.50"), d("15e-1"));
        assert_eq!(d("0.0"), d("-0"));
        assert_eq!(d("1250"), d("1.25E+3"));
        assert_ne!(d("0.1"), d("0.10000000000000000001"));
        assert_ne!(d("-1"), d("1"));
        for bad in ["", "-", "1.", ".5", "1e", "1e+", "a", "1.5.5"] {
            assert!(Decimal::parse(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn nesting_skips_strings() {
        assert_eq!(super::nesting(r#"[{"a":"[[[\"{{"},[]]"#), 2);
        assert_eq!(super::nesting("1"), 0);
    }
}
