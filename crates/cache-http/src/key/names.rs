//! Sets of parameter and header names, matched case-insensitively (ASCII), as bytes.
//!
//! Every query parameter of every request is checked against the ignored and credential
//! names, and almost none matches. So a set also keeps which name lengths it holds, and a
//! name of any other length is answered with one bit test, not a comparison per name.

use std::collections::{HashMap, HashSet};

/// Names compared without ASCII case, with a filter on their lengths.
#[derive(Clone, Debug, Default)]
pub(super) struct NameSet {
    /// Lowercased, as given.
    names: Vec<Box<str>>,
    /// Bit `n` set when a name of `n` bytes is held; bit 63 stands for every longer one.
    lengths: u64,
}

impl NameSet {
    pub(super) fn new<I, S>(names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut set = Self::default();
        set.extend(names);
        set
    }

    pub(super) fn extend<I, S>(&mut self, names: I)
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        for name in names {
            let name = name.as_ref().to_ascii_lowercase();
            self.lengths |= length_bit(name.len());
            self.names.push(name.into_boxed_str());
        }
    }

    /// True when `name` is one of the names, ignoring ASCII case.
    pub(super) fn contains(&self, name: &[u8]) -> bool {
        holds(self.lengths, &self.names, name)
    }
}

/// The names always treated as credentials ([`super::CREDENTIAL_NAMES`]), with the same
/// length filter computed at compile time.
pub(super) fn is_builtin_credential(name: &[u8]) -> bool {
    const LENGTHS: u64 = lengths_of(super::CREDENTIAL_NAMES);
    holds(LENGTHS, super::CREDENTIAL_NAMES, name)
}

/// `name` as frameworks that fold parameter names read it, where that differs from `name`:
/// - PHP cuts a name at a NUL, skips its leading spaces, reads `name[]` and `name[k]` as the
///   array `name`, and `.`, ` ` (a `+` decoded) and a `[` no `]` follows as `_`: `api.key`,
///   `api+key` and `api[key` are `api_key` to it;
/// - Rack skips leading brackets and ends a name at the next one (`[api_key]`, `api_key]`
///   and `api_key[x` are `api_key`), as `qs` reads `[api_key]`.
///
/// Callers check [`may_fold`] first: nearly no name folds, and this builds both readings.
pub(super) fn folds(name: &[u8]) -> impl Iterator<Item = Vec<u8>> + '_ {
    [php_fold(name), rack_fold(name)]
        .into_iter()
        .filter(move |folded| folded != name)
}

/// True when two different names among `names` may be read as one parameter (a name of one
/// is a name or a [fold](folds) of the other): PHP takes the last of `page.size=1&page_size=2`
/// as `page_size`, so the order of such names decides what the origin reads, and sorting them
/// would give `page_size=2&page.size=1` the same key. Arrays count by their name
/// (`filter=x&filter[a]=1` are one parameter to PHP), which holds for more than it must
/// (`filter[a]` and `filter[b]` do not collide), never less. Every query is asked: a scan for
/// a name that [may fold](may_fold) first (nearly none does), and only then a pass that
/// folds those names.
pub(super) fn any_read_as_one<'a>(names: impl Iterator<Item = &'a [u8]> + Clone) -> bool {
    !read_as_another(names).is_empty()
}

/// The names among `names` that another of them (one not equal to it) may be read as by
/// some framework, as [`any_read_as_one`] tells of a whole query: a scan for a name that
/// [may fold](may_fold) first (nearly none does: then none, allocating nothing), and only
/// then one pass and one map.
pub(super) fn read_as_another<'a>(
    names: impl Iterator<Item = &'a [u8]> + Clone,
) -> HashSet<&'a [u8]> {
    let mut found = HashSet::new();
    if !names.clone().any(may_fold) {
        return found;
    }
    let mut readers: HashMap<Vec<u8>, &'a [u8]> = HashMap::new();
    for name in names {
        let folded = may_fold(name).then(|| folds(name)).into_iter().flatten();
        for reading in std::iter::once(name.to_vec()).chain(folded) {
            match readers.get(&reading) {
                Some(other) if *other != name => {
                    found.insert(*other);
                    found.insert(name);
                }
                Some(_) => {}
                None => {
                    readers.insert(reading, name);
                }
            }
        }
    }
    found
}

/// True when `name` holds a byte some framework folds (see [`folds`]): one table lookup a
/// byte, as every parameter of every request is checked.
pub(super) fn may_fold(name: &[u8]) -> bool {
    static FOLDED: [bool; 256] = {
        let mut folded = [false; 256];
        folded[b'.' as usize] = true;
        folded[b' ' as usize] = true;
        folded[b'[' as usize] = true;
        folded[b']' as usize] = true;
        folded[0] = true;
        folded
    };
    name.iter().any(|&b| FOLDED[usize::from(b)])
}

/// `name` as PHP registers it (see [`folds`]).
fn php_fold(name: &[u8]) -> Vec<u8> {
    let name = &name[..name.iter().position(|&b| b == 0).unwrap_or(name.len())];
    let start = name.iter().position(|&b| b != b' ').unwrap_or(name.len());
    let name = &name[start..];
    // An array's name ends at the first `[` that a `]` follows.
    let base = match name.iter().position(|&b| b == b'[') {
        Some(open) if name[open..].contains(&b']') => &name[..open],
        _ => name,
    };
    base.iter()
        .map(|&b| match b {
            b'.' | b' ' | b'[' => b'_',
            other => other,
        })
        .collect()
}

/// `name` as Rack reads it (see [`folds`]).
fn rack_fold(name: &[u8]) -> Vec<u8> {
    let bracket = |b: &u8| matches!(*b, b'[' | b']');
    let start = name.iter().position(|b| !bracket(b)).unwrap_or(name.len());
    let rest = &name[start..];
    rest[..rest.iter().position(bracket).unwrap_or(rest.len())].to_vec()
}

/// True when `name` is one of `names` (ignoring ASCII case), whose lengths are `lengths`.
fn holds<S: AsRef<str>>(lengths: u64, names: &[S], name: &[u8]) -> bool {
    lengths & length_bit(name.len()) != 0
        && names
            .iter()
            .any(|held| held.as_ref().as_bytes().eq_ignore_ascii_case(name))
}

/// A decoded query or body name as the sets see it: its bytes when they are UTF-8, else its
/// lossy text (so a name that is not UTF-8 matches exactly what its text would).
///
/// The bytes are tried first, for every name: bytes equal (but for ASCII case) to a held
/// name, which is text, are text themselves, so a name that is not UTF-8 never matches by
/// its bytes, and the lossy form is made only for such names (never for ASCII ones).
pub(super) fn matches_lossy(name: &[u8], matches: impl Fn(&[u8]) -> bool) -> bool {
    matches(name)
        || (!name.is_ascii()
            && std::str::from_utf8(name).is_err()
            && matches(String::from_utf8_lossy(name).as_bytes()))
}

const fn length_bit(len: usize) -> u64 {
    if len < 63 { 1 << len } else { 1 << 63 }
}

const fn lengths_of(names: &[&str]) -> u64 {
    let mut lengths = 0;
    let mut at = 0;
    while at < names.len() {
        lengths |= length_bit(names[at].len());
        at += 1;
    }
    lengths
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The quick check never hides a fold: every name that folds to another holds a byte it
    /// looks for, whatever the bytes around it.
    #[test]
    fn may_fold_finds_every_name_that_folds() {
        let bytes = [b'a', b'_', b'.', b' ', b'[', b']', 0, b'%', 0xff];
        let mut names: Vec<Vec<u8>> = vec![Vec::new()];
        for _ in 0..4 {
            let longer: Vec<Vec<u8>> = names
                .iter()
                .flat_map(|name| bytes.iter().map(move |&b| [name.as_slice(), &[b]].concat()))
                .collect();
            names.extend(longer);
        }
        for name in &names {
            if folds(name).next().is_some() {
                assert!(may_fold(name), "{name:?}");
            }
        }
        assert_eq!(folds(b"api.key").collect::<Vec<_>>(), [b"api_key".to_vec()]);
        assert_eq!(
            folds(b"[api_key]").collect::<Vec<_>>(),
            [Vec::new(), b"api_key".to_vec()]
        );
        assert!(!may_fold(b"api_key"));
    }

    /// The length filter never hides a name: every length from 0 to past 63, names with
    /// non-ASCII bytes, and case differences answer as a plain scan of the list would.
    #[test]
    fn a_set_answers_as_a_scan_of_its_names() {
        let long = "n".repeat(63);
        let longer = "m".repeat(90);
        let held = ["", "a", "Api_Key", "ключ", long.as_str(), longer.as_str()];
        let set = NameSet::new(held);
        let mut asked: Vec<String> = held.iter().map(|n| n.to_ascii_uppercase()).collect();
        asked.extend((0..100).map(|n| "n".repeat(n)));
        asked.extend((0..100).map(|n| "m".repeat(n)));
        asked.extend(["api_keY", "api-key", "КЛЮЧ", "ключ", "b"].map(String::from));
        for name in &asked {
            let scan = held.iter().any(|h| h.eq_ignore_ascii_case(name));
            assert_eq!(set.contains(name.as_bytes()), scan, "{name:?}");
        }
        assert!(!NameSet::default().contains(b""));
    }

    #[test]
    fn builtin_credentials_answer_as_a_scan() {
        for name in super::super::CREDENTIAL_NAMES {
            assert!(is_builtin_credential(name.as_bytes()));
            assert!(is_builtin_credential(name.to_ascii_uppercase().as_bytes()));
            assert!(!is_builtin_credential(format!("{name}x").as_bytes()));
        }
        assert!(!is_builtin_credential(b"page"));
    }

    #[test]
    fn names_that_are_not_utf8_match_by_their_lossy_text() {
        let set = NameSet::new(["a\u{fffd}", "Ä"]);
        let contains = |n: &[u8]| set.contains(n);
        assert!(matches_lossy(b"a\x80", contains));
        assert!(matches_lossy(b"A\xff", contains));
        assert!(matches_lossy("Ä".as_bytes(), contains));
        assert!(!matches_lossy("ä".as_bytes(), contains));
        assert!(!matches_lossy(b"a", contains));
        assert!(matches_lossy(b"plain", |n| n == b"plain"));
        // As the lossy text alone would answer, for every name of up to two bytes.
        for first in 0..=255u8 {
            for second in [None, Some(b'a'), Some(0x80), Some(0xbf), Some(0xff)] {
                let name: Vec<u8> = std::iter::once(first).chain(second).collect();
                let lossy = String::from_utf8_lossy(&name).into_owned();
                let set = NameSet::new([lossy.as_str(), "x\u{fffd}"]);
                assert!(matches_lossy(&name, |n| set.contains(n)), "{name:?}");
                let other = NameSet::new(["zz\u{fffd}"]);
                assert_eq!(
                    matches_lossy(&name, |n| other.contains(n)),
                    other.contains(lossy.as_bytes()),
                    "{name:?}"
                );
            }
        }
    }
}
