//! Keys of recently requested URLs: computing a key (normalizing the URL, decoding and
//! sorting its query, BLAKE3) is most of what a hit costs, and clients ask for the same URLs
//! again and again. Only GET and HEAD requests without a body are remembered, and only when
//! the method and URL alone decide their key (no matched or credential headers: see
//! [`KeyRules::url_alone_decides`]), remembered by URL, or the method, URL and credential
//! headers do (an API client sending its token with every request), remembered by a digest of
//! those ([`KeyRules::credential_fields`] under SipHash-2-4 with a 128-bit output and a key
//! drawn when the memory is made, so it lives only in this process: about half of BLAKE3's
//! cost on these few bytes; the credentials are not kept). So a remembered key
//! is exactly the one computed anew. While its table has room, a key by URL is
//! computed and remembered with its URL's group ([`KeyRules::url_group`]), made from the same
//! normalized URL for little more: a miss stores its entry under that group, and would
//! otherwise normalize the URL a second time. A full table (a working set larger than the
//! memory) takes the key alone: then hits of URLs not remembered would pay for groups never
//! asked for.
//! With a user's key function ([`key_fn`](crate::CacheMiddlewareBuilder::key_fn)), every key
//! is the function's, and none is remembered (it may read anything of the request).
//!
//! One memory for all threads, in [`SHARDS`] tables picked by the URL's hash, each behind its
//! own read-write lock, never waited for: lookups share it (any number of workers asking for
//! one hot URL at once all find it), and a request that finds its table being written computes
//! its key rather than wait, as does a new key that finds it busy (it is just not remembered).
//! Shared rather than per thread, the memory holds each URL once however many workers ask.
//!
//! A leaf: calls nothing else in the crate but [`random_sip_key`].

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::{Arc, RwLock};

use cache_core::CacheKey;
use cache_http::{KeyRequest, KeyRules};
use http::{HeaderMap, Method};
use siphasher::sip128::{Hasher128, SipHasher24};
use url::Url;

use crate::secret_key::random_sip_key;

/// Keys remembered of each kind (GET by URL, HEAD by URL, with credentials by digest): about
/// 140 bytes each by a 60-character URL (2.2 MB when full), about 90 by digest.
const URLS_REMEMBERED: usize = 16_384;

/// The longest URL remembered by its text, in bytes. A longer one is keyed anew on every
/// request: the memory holds its URLs' text, and a caller passing URLs of megabytes (a
/// proxy, a link previewer) made it hold gigabytes; now at most 64 MiB of text.
const LONGEST_REMEMBERED_URL: usize = 2048;

/// Tables the URLs are spread over: enough that two workers rarely want the same one.
const SHARDS: usize = 64;

/// URLs per table and method.
const URLS_PER_SHARD: usize = URLS_REMEMBERED / SHARDS;

/// Requests a full table answers "not remembered" before it starts over. A full table keeps
/// what it holds, so a working set larger than the memory (say 30,000 URLs asked in turn)
/// is still half answered from it, where starting over at once would answer none and pay an
/// insert and a free per request; a working set that moved on empties it after a while. No
/// bookkeeping on the hit path.
const MISSES_BEFORE_RESTART: u32 = 4 * URLS_PER_SHARD as u32;

type Table<K> = HashMap<K, Keyed, foldhash::fast::RandomState>;

/// A remembered key and, when computed with it, its URL's group.
#[derive(Clone, Copy)]
struct Keyed {
    key: CacheKey,
    group: Option<CacheKey>,
}

/// GET and HEAD keys by URL text, and keys of requests with credentials by
/// their credential fields (see [`KeyMemo::digest_of_credentials`]).
#[derive(Default)]
struct Shard {
    get: Remembered<Box<str>>,
    head: Remembered<Box<str>>,
    credentialed: Remembered<u128>,
}

impl Shard {
    fn for_method(&self, get: bool) -> &Remembered<Box<str>> {
        if get { &self.get } else { &self.head }
    }

    fn for_method_mut(&mut self, get: bool) -> &mut Remembered<Box<str>> {
        if get { &mut self.get } else { &mut self.head }
    }
}

/// One kind of keys in one shard.
struct Remembered<K> {
    keys: Table<K>,
    /// Requests not answered since `keys` filled.
    misses_while_full: u32,
}

impl<K> Default for Remembered<K> {
    fn default() -> Self {
        Self {
            keys: Table::default(),
            misses_while_full: 0,
        }
    }
}

impl<K: std::hash::Hash + Eq> Remembered<K> {
    /// Keeps `keyed` under `at`, room permitting (see [`MISSES_BEFORE_RESTART`]).
    fn remember(&mut self, at: impl Into<K>, keyed: Keyed) {
        if self.keys.len() < URLS_PER_SHARD {
            self.keys.insert(at.into(), keyed);
            return;
        }
        self.misses_while_full += 1;
        if self.misses_while_full >= MISSES_BEFORE_RESTART {
            self.keys.clear();
            self.misses_while_full = 0;
            self.keys.insert(at.into(), keyed);
        }
    }
}

/// A user's key function.
pub(crate) type KeyFn = dyn Fn(&KeyRequest<'_>) -> CacheKey + Send + Sync;

/// The key rules with a memory of the keys they gave.
pub(crate) struct KeyMemo {
    rules: KeyRules,
    custom: Option<Arc<KeyFn>>,
    shards: Box<[RwLock<Shard>]>,
    /// Picks a URL's shard.
    spread: foldhash::fast::RandomState,
    /// The key of the credentials' digest, drawn for this memory.
    digest_key: (u64, u64),
}

impl KeyMemo {
    pub(crate) fn new(rules: KeyRules, custom: Option<Arc<KeyFn>>) -> Self {
        Self {
            rules,
            custom,
            shards: (0..SHARDS).map(|_| RwLock::default()).collect(),
            spread: foldhash::fast::RandomState::default(),
            digest_key: random_sip_key(),
        }
    }

    /// [`KeyRules::key`], remembered where the method and URL alone decide it.
    pub(crate) fn key(
        &self,
        method: &Method,
        url: &Url,
        headers: &HeaderMap,
        body: Option<&[u8]>,
    ) -> CacheKey {
        if let Some(custom) = &self.custom {
            return custom(&KeyRequest::new(&self.rules, method, url, headers, body));
        }
        let compute = || self.rules.key(method, url, headers, body);
        let no_body = body.is_none_or(<[u8]>::is_empty);
        let remembered = matches!(*method, Method::GET | Method::HEAD);
        if !remembered || !no_body {
            return compute();
        }
        if !self.rules.url_alone_decides(headers) {
            return match self.digest_of_credentials(method, url, headers) {
                Some(digest) => self.credentialed_key(digest, compute),
                None => compute(),
            };
        }
        let text = url.as_str();
        if text.len() > LONGEST_REMEMBERED_URL {
            return compute();
        }
        let get = *method == Method::GET;
        let shard = self.shard(text);
        // Being written, or poisoned: compute rather than wait.
        let mut room = false;
        if let Ok(tables) = shard.try_read() {
            let remembered = &tables.for_method(get).keys;
            if let Some(keyed) = remembered.get(text) {
                return keyed.key;
            }
            room = remembered.len() < URLS_PER_SHARD;
        }
        let (key, group) = if room {
            let (key, group) = self.rules.key_and_url_group(method, url, headers, body);
            (key, Some(group))
        } else {
            (compute(), None)
        };
        if let Ok(mut tables) = shard.try_write() {
            tables
                .for_method_mut(get)
                .remember(text, Keyed { key, group });
        }
        key
    }

    /// The digest of the fields [`KeyRules::credential_fields`] gives (each framed by its
    /// length) under this memory's key; `None` where more than those decides the key.
    /// Equal digests mean equal fields but for a chance of 2⁻¹²⁸ per pair: the key is secret
    /// and the digests never leave the process, so no one can search for a collision.
    fn digest_of_credentials(
        &self,
        method: &Method,
        url: &Url,
        headers: &HeaderMap,
    ) -> Option<u128> {
        let (k0, k1) = self.digest_key;
        let mut hasher = SipHasher24::new_with_keys(k0, k1);
        let digested = self.rules.credential_fields(method, url, headers, |field| {
            hasher.write_u64(field.len() as u64);
            hasher.write(field);
        });
        digested.then(|| hasher.finish128().as_u128())
    }

    /// The key of a request with credentials whose digest is `digest`, remembered by that
    /// digest (not by the credentials).
    fn credentialed_key(&self, digest: u128, compute: impl FnOnce() -> CacheKey) -> CacheKey {
        let shard = &self.shards[digest as usize % SHARDS];
        if let Ok(tables) = shard.try_read() {
            if let Some(keyed) = tables.credentialed.keys.get(&digest) {
                return keyed.key;
            }
        }
        let key = compute();
        if let Ok(mut tables) = shard.try_write() {
            let keyed = Keyed { key, group: None };
            tables.credentialed.remember(digest, keyed);
        }
        key
    }

    /// [`KeyRules::url_group`], from memory when a key of the URL is remembered.
    pub(crate) fn url_group(&self, url: &Url) -> CacheKey {
        let text = url.as_str();
        if let Ok(tables) = self.shard(text).try_read() {
            let remembered = [&tables.get, &tables.head]
                .into_iter()
                .find_map(|method| method.keys.get(text)?.group);
            if let Some(group) = remembered {
                return group;
            }
        }
        self.rules.url_group(url)
    }

    /// The table `url` belongs in.
    fn shard(&self, url: &str) -> &RwLock<Shard> {
        &self.shards[self.spread.hash_one(url) as usize % SHARDS]
    }
}

/// Everything else (redaction, the rules' settings) is the rules' own.
impl std::ops::Deref for KeyMemo {
    type Target = KeyRules;

    fn deref(&self) -> &KeyRules {
        &self.rules
    }
}

impl std::fmt::Debug for KeyMemo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyMemo")
            .field("rules", &self.rules)
            .field(
                "custom",
                &self.custom.as_ref().map(|_| "Fn(&KeyRequest) -> CacheKey"),
            )
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cache_http::MatchHeaders;
    use http::HeaderValue;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    /// Every request, asked twice (the second answer remembered where allowed), gets exactly
    /// the key computed anew: credentials in headers or the query, matched headers, bodies,
    /// methods, and more URLs than a table holds.
    #[test]
    fn remembered_keys_are_the_computed_keys() {
        let mut auth = HeaderMap::new();
        auth.insert("authorization", HeaderValue::from_static("Bearer a"));
        let mut other_auth = HeaderMap::new();
        other_auth.insert("authorization", HeaderValue::from_static("Bearer b"));
        let mut accept = HeaderMap::new();
        accept.insert("accept", HeaderValue::from_static("text/html"));
        let none = HeaderMap::new();
        let rule_sets = [
            KeyRules::default(),
            KeyRules::default().per_credential(false),
            KeyRules::default().match_headers(MatchHeaders::All),
            KeyRules::default().credential_headers(["accept"]),
        ];
        let urls: Vec<String> = [
            "https://h.test/a?b=2&a=1",
            "https://h.test/a?a=1&b=2",
            "https://h.test/a?api_key=1",
            "https://h.test/a?api_key=2",
            "https://u:p@h.test/a",
            "https://h.test/a",
        ]
        .map(String::from)
        .to_vec();
        for rules in rule_sets {
            let memo = KeyMemo::new(rules.clone(), None);
            // More URLs than the memory holds, so that tables fill and start over.
            for _ in 0..2 {
                for i in 0..URLS_REMEMBERED * 2 {
                    let u = url(&format!("https://h.test/n?i={i}"));
                    for headers in [&none, &auth] {
                        assert_eq!(
                            memo.key(&Method::GET, &u, headers, None),
                            rules.key(&Method::GET, &u, headers, None),
                            "{rules:?} {u} {headers:?}"
                        );
                        assert_eq!(memo.url_group(&u), rules.url_group(&u), "{rules:?} {u}");
                    }
                }
            }
            for _ in 0..2 {
                for u in &urls {
                    let u = url(u);
                    for method in [Method::GET, Method::HEAD, Method::POST] {
                        for headers in [&none, &auth, &other_auth, &accept] {
                            for body in [None, Some(&b""[..]), Some(&b"x"[..])] {
                                assert_eq!(
                                    memo.key(&method, &u, headers, body),
                                    rules.key(&method, &u, headers, body),
                                    "{rules:?} {method} {u} {headers:?} {body:?}"
                                );
                                assert_eq!(memo.url_group(&u), rules.url_group(&u), "{u}");
                            }
                        }
                    }
                }
            }
        }
    }

    /// A URL longer than [`LONGEST_REMEMBERED_URL`] is keyed anew each time and never held;
    /// one at the limit is remembered.
    #[test]
    fn long_urls_are_not_held() {
        let rules = KeyRules::default();
        let memo = KeyMemo::new(rules.clone(), None);
        let none = HeaderMap::new();
        let base = "https://h.test/long?q=";
        let at_limit = url(&format!(
            "{base}{}",
            "a".repeat(LONGEST_REMEMBERED_URL - base.len())
        ));
        let over = url(&format!("{base}{}", "b".repeat(LONGEST_REMEMBERED_URL)));
        assert_eq!(at_limit.as_str().len(), LONGEST_REMEMBERED_URL);
        for u in [&at_limit, &over] {
            for _ in 0..2 {
                assert_eq!(
                    memo.key(&Method::GET, u, &none, None),
                    rules.key(&Method::GET, u, &none, None)
                );
            }
        }
        let held = |u: &Url| {
            memo.shard(u.as_str())
                .read()
                .unwrap()
                .get
                .keys
                .contains_key(u.as_str())
        };
        assert!(held(&at_limit));
        assert!(!held(&over), "a URL over the limit is not held");
    }

    /// A request whose table another worker holds computes its key instead of waiting for
    /// it (with a blocking lock this test would never end), and it is the right key.
    #[test]
    fn a_busy_table_is_passed_by_not_waited_for() {
        let rules = KeyRules::default();
        let memo = KeyMemo::new(rules.clone(), None);
        let u = url("https://h.test/busy?a=1");
        let none = HeaderMap::new();
        let shard = memo.shard(u.as_str());
        let held = shard.write().unwrap();
        assert_eq!(
            memo.key(&Method::GET, &u, &none, None),
            rules.key(&Method::GET, &u, &none, None)
        );
        drop(held);
        // Free again: remembered from now on, and found while others read the table.
        memo.key(&Method::GET, &u, &none, None);
        let reading = shard.read().unwrap();
        assert!(reading.get.keys.contains_key(u.as_str()));
        assert_eq!(
            memo.key(&Method::GET, &u, &none, None),
            rules.key(&Method::GET, &u, &none, None)
        );
        drop(reading);
    }

    /// A full table keeps its URLs through a burst of others, and starts over (taking new
    /// ones) only after [`MISSES_BEFORE_RESTART`] of them.
    #[test]
    fn a_full_table_keeps_its_urls_until_they_stop_being_asked_for() {
        let key = KeyRules::default().key(
            &Method::GET,
            &url("https://h.test/"),
            &HeaderMap::new(),
            None,
        );
        let key = Keyed {
            key,
            group: Some(key),
        };
        let mut table = Remembered::<Box<str>>::default();
        for i in 0..URLS_PER_SHARD {
            table.remember(format!("u{i}"), key);
        }
        for i in 0..MISSES_BEFORE_RESTART - 1 {
            table.remember(format!("other{i}"), key);
        }
        assert_eq!(table.keys.len(), URLS_PER_SHARD);
        assert!(table.keys.contains_key("u0") && !table.keys.contains_key("other0"));
        table.remember("newest", key);
        assert_eq!(table.keys.len(), 1);
        assert!(table.keys.contains_key("newest"));
    }

    /// While its table has room, a key is remembered with its URL's group (the miss path
    /// finds it there); a URL keyed while its table is full gets its key alone.
    #[test]
    fn groups_are_remembered_while_tables_have_room() {
        let rules = KeyRules::default();
        let memo = KeyMemo::new(rules.clone(), None);
        let none = HeaderMap::new();
        let first = url("https://h.test/g?b=2&a=1");
        memo.key(&Method::GET, &first, &none, None);
        let remembered = |u: &Url| {
            let tables = memo.shard(u.as_str()).read().unwrap();
            tables.get.keys.get(u.as_str()).map(|keyed| keyed.group)
        };
        assert_eq!(remembered(&first), Some(Some(rules.url_group(&first))));
        // Ask for URLs of the first URL's table until it has filled and started over: the
        // URL it starts over with was keyed while the table was full, so without its group.
        let shard = memo.shard(first.as_str());
        let mut restarted_with = None;
        for i in 0.. {
            let u = url(&format!("https://h.test/g?i={i}"));
            if !std::ptr::eq(memo.shard(u.as_str()), shard) {
                continue;
            }
            memo.key(&Method::GET, &u, &none, None);
            if shard.read().unwrap().get.keys.len() == 1 {
                restarted_with = Some(u);
                break;
            }
        }
        let restarted_with = restarted_with.unwrap();
        assert_eq!(remembered(&restarted_with), Some(None));
        assert_eq!(
            memo.url_group(&restarted_with),
            rules.url_group(&restarted_with)
        );
    }

    /// The memory's digest of a request's credentials stands for the fields
    /// [`KeyRules::credential_fields`] gives (equal fields, equal keys): it is made exactly
    /// where they are, and two requests' digests are equal exactly when their fields are.
    /// Includes fields that run together alike unless each is framed by its length.
    #[test]
    fn the_memory_s_digest_is_equal_where_the_fields_are() {
        let with = |pairs: &[(&'static str, &'static str)]| {
            let mut headers = HeaderMap::new();
            for (name, value) in pairs {
                headers.append(*name, HeaderValue::from_static(value));
            }
            headers
        };
        let header_sets = [
            with(&[]),
            with(&[("authorization", "Bearer a")]),
            with(&[("authorization", "Bearer b")]),
            with(&[("authorization", "Bearer a"), ("accept", "text/html")]),
            with(&[("authorization", "Bearer a"), ("cookie", "s=1")]),
            with(&[("cookie", "s=1"), ("authorization", "Bearer a")]),
            with(&[("authorization", "Bearer a"), ("authorization", "Bearer b")]),
            // Run together, its fields are those of `Bearer a` with `cookie: s=1`.
            with(&[("authorization", "Bearer acookies=1")]),
            with(&[
                ("authorization", "Bearer a"),
                ("x-http-method-override", "PUT"),
            ]),
        ];
        let urls = [url("https://h.test/me"), url("https://h.test/me?page=2")];
        for rules in [
            KeyRules::default(),
            KeyRules::default().credential_headers(["x-api-key"]),
            KeyRules::default().match_headers(MatchHeaders::All),
        ] {
            let memo = KeyMemo::new(rules.clone(), None);
            let mut requests = Vec::new();
            for u in &urls {
                for method in [Method::GET, Method::HEAD] {
                    for headers in &header_sets {
                        let digest = memo.digest_of_credentials(&method, u, headers);
                        let mut fields = Vec::new();
                        let given = rules.credential_fields(&method, u, headers, |field| {
                            fields.push(field.to_vec())
                        });
                        assert_eq!(digest.is_some(), given, "{method} {u} {headers:?}");
                        requests.push((digest, fields));
                    }
                }
            }
            for (i, a) in requests.iter().enumerate() {
                for b in &requests[i + 1..] {
                    if a.0.is_some() && b.0.is_some() {
                        assert_eq!(a.0 == b.0, a.1 == b.1);
                    }
                }
            }
        }
    }

    /// A request with a credential header is never answered with the key remembered for the
    /// URL without it, nor with another credential's: the entries of two users stay apart.
    /// Its own key is remembered by the digest of its credentials, and a header the key does
    /// not hold (`Accept`) finds it there.
    #[test]
    fn credentials_are_remembered_apart() {
        let rules = KeyRules::default();
        let memo = KeyMemo::new(rules.clone(), None);
        let u = url("https://h.test/me?page=2");
        let with = |pairs: &[(&'static str, &'static str)]| {
            let mut headers = HeaderMap::new();
            for (name, value) in pairs {
                headers.append(*name, HeaderValue::from_static(value));
            }
            headers
        };
        let anonymous = memo.key(&Method::GET, &u, &HeaderMap::new(), None);
        let a = with(&[("authorization", "Bearer a")]);
        let a_html = with(&[("authorization", "Bearer a"), ("accept", "text/html")]);
        let b = with(&[("authorization", "Bearer b")]);
        let a_and_cookie = with(&[("authorization", "Bearer a"), ("cookie", "s=1")]);
        let remembered = || {
            memo.shards
                .iter()
                .map(|shard| shard.read().unwrap().credentialed.keys.len())
                .sum::<usize>()
        };
        for round in 0..2 {
            for headers in [&a, &a_html, &b, &a_and_cookie] {
                for method in [Method::GET, Method::HEAD] {
                    assert_eq!(
                        memo.key(&method, &u, headers, None),
                        rules.key(&method, &u, headers, None),
                        "round {round}: {method} {headers:?}"
                    );
                }
            }
            // a and a with Accept share a digest: 3 credential sets × 2 methods.
            assert_eq!(remembered(), 6);
        }
        let key_a = memo.key(&Method::GET, &u, &a, None);
        assert_ne!(key_a, anonymous);
        assert_ne!(key_a, memo.key(&Method::GET, &u, &b, None));
        assert_ne!(key_a, memo.key(&Method::GET, &u, &a_and_cookie, None));
        assert_eq!(memo.key(&Method::GET, &u, &a_html, None), key_a);
        assert_eq!(
            memo.key(&Method::GET, &u, &HeaderMap::new(), None),
            anonymous
        );
        // A body or another method is never remembered.
        assert_eq!(
            memo.key(&Method::GET, &u, &a, Some(b"x")),
            rules.key(&Method::GET, &u, &a, Some(b"x"))
        );
        memo.key(&Method::POST, &u, &a, None);
        assert_eq!(remembered(), 6);
    }
}
