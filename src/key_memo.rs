//! Keys of recently requested URLs, remembered per thread: computing a key (normalizing the
//! URL, decoding and sorting its query, BLAKE3) is most of what a hit costs, and clients ask
//! for the same URLs again and again. Only requests whose key the method and URL alone decide
//! are remembered (no body, no matched or credential headers: see
//! [`KeyRules::url_alone_decides`]), so a remembered key is exactly the one computed anew.
//! One table per thread: no lock, nothing shared between the runtime's workers.
//! With a user's key function ([`key_fn`](crate::CacheMiddlewareBuilder::key_fn)), every key
//! is the function's, and none is remembered (it may read anything of the request).
//!
//! A leaf: calls nothing else in the crate.

use std::cell::RefCell;
use std::collections::HashMap;

use cache_core::CacheKey;

use std::sync::Arc;

use cache_http::{KeyRequest, KeyRules};
use http::{HeaderMap, Method};
use thread_local::ThreadLocal;
use url::Url;

/// URLs remembered per thread and method; the table starts over when full (a bounded size
/// with no bookkeeping on the hit path; a working set larger than this just computes keys).
const URLS_PER_THREAD: usize = 2_048;

type Table = HashMap<Box<str>, CacheKey, foldhash::fast::RandomState>;

/// GET and HEAD keys by URL text.
#[derive(Default)]
struct Tables {
    get: Table,
    head: Table,
}

/// A user's key function.
pub(crate) type KeyFn = dyn Fn(&KeyRequest<'_>) -> CacheKey + Send + Sync;

/// The key rules with a per-thread memory of the keys they gave.
pub(crate) struct KeyMemo {
    rules: KeyRules,
    custom: Option<Arc<KeyFn>>,
    tables: ThreadLocal<RefCell<Tables>>,
}

impl KeyMemo {
    pub(crate) fn new(rules: KeyRules, custom: Option<Arc<KeyFn>>) -> Self {
        Self {
            rules,
            custom,
            tables: ThreadLocal::new(),
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
        if !no_body || !self.rules.url_alone_decides(headers) {
            return compute();
        }
        let cell = self.tables.get_or_default();
        // Never borrowed twice (nothing below calls back here); if it were, compute.
        let Ok(mut tables) = cell.try_borrow_mut() else {
            return compute();
        };
        let table = match *method {
            Method::GET => &mut tables.get,
            Method::HEAD => &mut tables.head,
            _ => return compute(),
        };
        if let Some(key) = table.get(url.as_str()) {
            return *key;
        }
        let key = compute();
        if table.len() >= URLS_PER_THREAD {
            table.clear();
        }
        table.insert(url.as_str().into(), key);
        key
    }
}

/// Everything else (URL groups, redaction) is the rules' own.
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
        let mut urls: Vec<String> = [
            "https://h.test/a?b=2&a=1",
            "https://h.test/a?a=1&b=2",
            "https://h.test/a?api_key=1",
            "https://h.test/a?api_key=2",
            "https://u:p@h.test/a",
            "https://h.test/a",
        ]
        .map(String::from)
        .to_vec();
        urls.extend((0..URLS_PER_THREAD + 10).map(|i| format!("https://h.test/n?i={i}")));
        for rules in rule_sets {
            let memo = KeyMemo::new(rules.clone(), None);
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
                            }
                        }
                    }
                }
            }
        }
    }

    /// A credential header is never answered with the key remembered for the URL without
    /// it: the entries of two users stay apart.
    #[test]
    fn a_credential_header_is_not_answered_from_memory() {
        let memo = KeyMemo::new(KeyRules::default(), None);
        let u = url("https://h.test/me");
        let anonymous = memo.key(&Method::GET, &u, &HeaderMap::new(), None);
        let mut auth = HeaderMap::new();
        auth.insert("authorization", HeaderValue::from_static("Bearer a"));
        assert_ne!(memo.key(&Method::GET, &u, &auth, None), anonymous);
        assert_eq!(
            memo.key(&Method::GET, &u, &HeaderMap::new(), None),
            anonymous
        );
    }
}
