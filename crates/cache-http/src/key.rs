//! Cache keys: how a request becomes a stable [`CacheKey`].
//!
//! The key is a BLAKE3 hash (truncated to 128 bits) over a length-prefixed encoding of the
//! normalized request:
//!
//! - the method, and the `X-HTTP-Method-Override` header when the request carries one (as
//!   requests-cache keys it: a `POST` overridden to `PATCH` is not the same request as one
//!   overridden to `DELETE`), and `X-HTTP-Method` and `X-Method-Override` likewise;
//!   requests without them keep the keys they always had;
//! - the URL with scheme and host lowercased, the default port, user info and fragment dropped,
//!   ignored query parameters removed and the rest sorted by name (a repeated name's values
//!   keep their order: frameworks read them in order), unless two names may be one parameter
//!   to a framework (PHP reads `page.size` as `page_size` and keeps the last; Rack reads
//!   `[id]` as `id`): then the query keeps its order, and a left-out one among them its name
//!   in place (`api_key=&api.key=`); a value's own `=` is written as it is; a pair holding a
//!   `%` that escapes nothing is kept as written (`a=%zz` is not `a=%25zz`), as is one whose
//!   value holds a raw `]=` (Express's `qs` splits there); and a query holding a `;` is kept
//!   as written, in its order, left-out parameters reduced to their names (origins that split
//!   at `;` read `utm_source=x;id=5` as two parameters, others as one), as are the parts of a
//!   kept pair after a `;` named like credentials or ignored parameters (`k=1;api_key=`; the
//!   pair's value is hashed apart);
//! - the matched request headers ([`MatchHeaders`]), ignored ones left out;
//! - the body (an empty one counts as none): JSON re-serialized with sorted object keys,
//!   numbers compared by their text and ignored top-level keys removed, form bodies sorted
//!   like the query, anything else as is; with the normalization named, so a form's `a=1`
//!   and the same bytes sent raw are different requests;
//! - with [`KeyRules::per_credential`] (the default), a fingerprint of the credentials the
//!   request carries ([`CREDENTIAL_NAMES`], declared ones, user info), so a response
//!   fetched with one credential is never served to another, though the credential itself
//!   never enters the store.
//!
//! The same request gives the same key in every process and every release of this crate with
//! the same key version (`v1`); the tests pin exact keys.

use std::borrow::Cow;

use cache_core::CacheKey;

use http::{HeaderMap, HeaderName, Method};
use url::Url;

/// Names always treated as credentials (case-insensitive), as request headers, query
/// parameters and top-level JSON or form body keys (a parameter's name also as frameworks
/// fold it: `api.key`, `api+key` and `api_key[]` are `api_key` to PHP, and the last to Rack
/// and `qs`): never stored, and with
/// [`KeyRules::per_credential`] (the default) fingerprinted into the key, so a response fetched
/// with one credential is not served to another. Declare more with
/// [`KeyRules::credential_headers`] and [`KeyRules::credential_parameters`].
pub const CREDENTIAL_NAMES: &[&str] = &[
    "Authorization",
    "Proxy-Authorization",
    "Cookie",
    "X-API-Key",
    "X-API-Token",
    "X-Auth-Token",
    "X-Access-Token",
    "Private-Token",
    "X-Amz-Security-Token",
    "access_token",
    "api_key",
    "apikey",
    "api-key",
    "client_secret",
];

/// Parameters left out of the key and redacted from stored requests unless told otherwise:
/// the [`CREDENTIAL_NAMES`]. Matched case-insensitively, in headers, query parameters and
/// JSON/form bodies.
pub const DEFAULT_IGNORED_PARAMETERS: &[&str] = CREDENTIAL_NAMES;

/// Domain separation for the key hash; bump it only with a deliberate key format change.
const KEY_VERSION_TAG: &[u8] = b"reqwest-caching/key/v1";

/// The header some APIs read the real method from (a `POST` tunnelling `PATCH` or `DELETE`).
pub const METHOD_OVERRIDE: &str = "x-http-method-override";

/// [`METHOD_OVERRIDE`] as a header name: a lookup by a `&str` parses the name each time.
static METHOD_OVERRIDE_NAME: HeaderName = HeaderName::from_static(METHOD_OVERRIDE);

/// The other headers APIs read the real method from (Google's and Microsoft's), each entering
/// the key under its own name when present.
static OTHER_METHOD_OVERRIDES: [HeaderName; 2] = [
    HeaderName::from_static("x-http-method"),
    HeaderName::from_static("x-method-override"),
];

/// Whether a header named `name` overrides the request's method.
fn is_method_override(name: &str) -> bool {
    name == METHOD_OVERRIDE || OTHER_METHOD_OVERRIDES.iter().any(|other| other == name)
}

/// Domain separation for URL groups: a group never equals a request's key.
const URL_GROUP_TAG: &[u8] = b"reqwest-caching/url-group/v1";

/// The first of [`KeyRules::credential_fields`]: a digest of them never equals one of other
/// bytes hashed the same way.
const CREDENTIALS_DIGEST_TAG: &[u8] = b"reqwest-caching/credentials-digest";

/// Which request headers become part of the key.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum MatchHeaders {
    /// None (the default): requests differing only in headers share an entry.
    #[default]
    None,
    /// Every header the request carries, except ignored parameters.
    All,
    /// Only these headers (absent ones count as absent).
    Only(Vec<HeaderName>),
}

/// The rules that turn a request into a [`CacheKey`] and redact what gets stored.
///
/// ```
/// use cache_http::{KeyRules, MatchHeaders};
/// use http::{HeaderMap, Method};
/// use url::Url;
///
/// let rules = KeyRules::default().ignored_parameters(["session"]);
/// let a = Url::parse("https://Example.com:443/p?b=2&a=1&session=x").unwrap();
/// let b = Url::parse("https://example.com/p?a=1&b=2&session=y").unwrap();
/// let h = HeaderMap::new();
/// assert_eq!(rules.key(&Method::GET, &a, &h, None), rules.key(&Method::GET, &b, &h, None));
/// ```
#[derive(Clone, Debug)]
pub struct KeyRules {
    ignored: NameSet,
    /// Credential names declared beyond [`CREDENTIAL_NAMES`].
    credential_headers: NameSet,
    credential_parameters: NameSet,
    match_headers: MatchHeaders,
    per_credential: bool,
}

impl Default for KeyRules {
    fn default() -> Self {
        Self {
            ignored: NameSet::new(DEFAULT_IGNORED_PARAMETERS),
            credential_headers: NameSet::default(),
            credential_parameters: NameSet::default(),
            match_headers: MatchHeaders::None,
            per_credential: true,
        }
    }
}

impl KeyRules {
    /// Replaces the ignored parameters (default [`DEFAULT_IGNORED_PARAMETERS`]): names of query
    /// parameters, headers and top-level JSON or form body keys that are left out of the key and
    /// removed from the stored request. Credentials stay redacted whatever this list says.
    #[must_use]
    pub fn ignored_parameters<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.ignored = NameSet::new(names);
        self
    }

    /// Declares more request headers as credentials, in addition to [`CREDENTIAL_NAMES`]
    /// (case-insensitive; each call adds to the list). Like the built-in ones they are
    /// never stored, left out of the key's text, and fingerprinted into the key unless
    /// [`per_credential`](Self::per_credential) is off.
    #[must_use]
    pub fn credential_headers<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.credential_headers.extend(names);
        self
    }

    /// Declares more query parameters and top-level JSON or form body keys as credentials,
    /// in addition to [`CREDENTIAL_NAMES`]; otherwise as
    /// [`credential_headers`](Self::credential_headers).
    #[must_use]
    pub fn credential_parameters<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.credential_parameters.extend(names);
        self
    }

    /// Which request headers are part of the key (default: none).
    #[must_use]
    pub fn match_headers(mut self, match_headers: MatchHeaders) -> Self {
        self.match_headers = match match_headers {
            // Sorted once so the order the user listed them in does not change keys.
            MatchHeaders::Only(mut names) => {
                names.sort_by(|a, b| a.as_str().cmp(b.as_str()));
                names.dedup();
                MatchHeaders::Only(names)
            }
            other => other,
        };
        self
    }

    /// Whether requests carrying different credentials get different entries (default `true`).
    ///
    /// Turn it off only when every credential sees the same data: then a response fetched
    /// with one token is served to requests with another, as requests-cache does.
    #[must_use]
    pub fn per_credential(mut self, on: bool) -> Self {
        self.per_credential = on;
        self
    }

    /// True when `name` is an ignored parameter (case-insensitive).
    pub fn is_ignored(&self, name: &str) -> bool {
        self.ignored.contains(name.as_bytes())
    }

    /// True when `name` must not be stored: ignored or a credential (as a header or a
    /// parameter).
    pub fn is_redacted(&self, name: &str) -> bool {
        self.is_ignored(name)
            || self.is_credential_header(name)
            || self.is_credential_parameter(name)
    }

    /// True when a request header of this name is a credential.
    pub fn is_credential_header(&self, name: &str) -> bool {
        is_builtin_credential(name.as_bytes()) || self.credential_headers.contains(name.as_bytes())
    }

    /// True when a query parameter or top-level body key of this name is a credential.
    pub fn is_credential_parameter(&self, name: &str) -> bool {
        self.is_credential_parameter_bytes(name.as_bytes())
    }

    /// [`is_credential_parameter`](Self::is_credential_parameter) of a decoded name that
    /// may not be UTF-8 (then of its lossy text).
    fn is_credential_parameter_bytes(&self, name: &[u8]) -> bool {
        names::matches_lossy(name, |name| self.names_credential(name))
    }

    /// True when `name` (decoded) is a credential parameter's, built-in or declared, as
    /// written or as a framework folds it ([`names::folds`]: PHP reads `api.key` and
    /// `api+key` as `api_key`, PHP, Rack and `qs` read `api_key[]` as it, Rack
    /// `[api_key]`): the application takes such a parameter for the credential, so it is
    /// one.
    fn names_credential(&self, name: &[u8]) -> bool {
        self.holds_credential_name(name)
            || (names::may_fold(name) && self.folds_to_credential(name))
    }

    /// The rare part of [`names_credential`](Self::names_credential), kept out of line: a
    /// name holding a byte frameworks fold, read as they read it.
    #[inline(never)]
    fn folds_to_credential(&self, name: &[u8]) -> bool {
        names::folds(name).any(|folded| self.holds_credential_name(&folded))
    }

    /// True when `name` is a credential parameter's, built-in or declared, as it is.
    fn holds_credential_name(&self, name: &[u8]) -> bool {
        is_builtin_credential(name) || self.credential_parameters.contains(name)
    }

    /// A header left out of the stored request and of matched headers.
    fn redacts_header(&self, name: &str) -> bool {
        self.is_ignored(name) || self.is_credential_header(name)
    }

    /// [`leaves_out_parameter_bytes`](Self::leaves_out_parameter_bytes) of a name as text,
    /// for the tests' reference.
    #[cfg(test)]
    fn leaves_out_parameter(&self, name: &str) -> bool {
        self.leaves_out_parameter_bytes(name.as_bytes())
    }

    /// A parameter of a query or a form (decoded name, which may not be UTF-8: then its lossy
    /// text) left out of the key's text and of the stored URL: ignored, or a credential,
    /// built-in or declared (which counts only by its fingerprint), whatever the ignored list
    /// says.
    fn leaves_out_parameter_bytes(&self, name: &[u8]) -> bool {
        names::matches_lossy(name, |name| {
            self.ignored.contains(name) || self.names_credential(name)
        })
    }

    /// How the key treats a parameter (of a query or a form body) of this decoded name: in
    /// its text, or left out as ignored, or left out as a credential (which counts by its
    /// fingerprint, when credentials do).
    fn treatment(&self, name: &[u8]) -> Treatment {
        if !self.leaves_out_parameter_bytes(name) {
            Treatment::Keep
        } else if self.is_credential_parameter_bytes(name) {
            Treatment::Secret
        } else {
            Treatment::Ignore
        }
    }

    /// True when the method and URL alone decide the key of a request with these headers and
    /// no body: no headers are matched, and none of these is a credential (or credentials do
    /// not count). Then a key computed once for a method and URL holds for every such request.
    ///
    /// ```
    /// use cache_http::KeyRules;
    /// use http::{HeaderMap, HeaderValue, header::AUTHORIZATION};
    /// let rules = KeyRules::default();
    /// let mut headers = HeaderMap::new();
    /// assert!(rules.url_alone_decides(&headers));
    /// headers.insert(AUTHORIZATION, HeaderValue::from_static("Bearer t"));
    /// assert!(!rules.url_alone_decides(&headers));
    /// ```
    pub fn url_alone_decides(&self, headers: &HeaderMap) -> bool {
        // One pass over the names present (none on most requests), rather than a lookup by
        // name, which parses the name first.
        self.match_headers == MatchHeaders::None
            && !headers.keys().any(|name| {
                is_method_override(name.as_str())
                    || self.per_credential && self.is_credential_header(name.as_str())
            })
    }

    /// All that decides the key of a request with these headers and no body, when that is
    /// its method, its URL and its credential headers alone (no headers are matched and none
    /// overrides the method): each field handed to `field` whole and in order (the caller
    /// frames them: a field's length before its bytes), and `true`; `false` with none handed
    /// over otherwise. Requests without a body whose fields are equal have equal keys. For
    /// remembering the keys of requests that carry credentials (most API clients send a token
    /// with every request) by a digest of one's own (a keyed hash that lives only in this
    /// process, say), without keeping the credentials.
    ///
    /// ```
    /// use cache_http::KeyRules;
    /// use http::{HeaderMap, HeaderValue, Method, header::{ACCEPT, AUTHORIZATION}};
    /// use url::Url;
    /// let rules = KeyRules::default();
    /// let url = Url::parse("https://api.example.com/me").unwrap();
    /// let fields = |headers: &HeaderMap| {
    ///     let mut fields = Vec::new();
    ///     rules
    ///         .credential_fields(&Method::GET, &url, headers, |f| fields.push(f.to_vec()))
    ///         .then_some(fields)
    /// };
    /// let mut a = HeaderMap::new();
    /// a.insert(AUTHORIZATION, HeaderValue::from_static("Bearer a"));
    /// let mut b = a.clone();
    /// b.insert(ACCEPT, HeaderValue::from_static("text/html"));
    /// // Headers the key does not hold leave the fields as they are.
    /// assert_eq!(fields(&a), fields(&b));
    /// b.insert(AUTHORIZATION, HeaderValue::from_static("Bearer b"));
    /// assert_ne!(fields(&a), fields(&b));
    /// ```
    pub fn credential_fields(
        &self,
        method: &Method,
        url: &Url,
        headers: &HeaderMap,
        mut field: impl FnMut(&[u8]),
    ) -> bool {
        // A pass over the names present (a few on most requests) rather than a lookup, which
        // hashes the name first.
        let overridden = || headers.keys().any(|name| is_method_override(name.as_str()));
        if self.match_headers != MatchHeaders::None || overridden() {
            return false;
        }
        field(CREDENTIALS_DIGEST_TAG);
        field(method.as_str().as_bytes());
        field(url.as_str().as_bytes());
        // In the order sent: the same credentials in another order only digest apart.
        for (name, value) in headers {
            if self.is_credential_header(name.as_str()) {
                field(name.as_str().as_bytes());
                field(value.as_bytes());
            }
        }
        true
    }

    /// The key of a request.
    pub fn key(
        &self,
        method: &Method,
        url: &Url,
        headers: &HeaderMap,
        body: Option<&[u8]>,
    ) -> CacheKey {
        self.key_seeing_url(method, url, headers, body, |_| ()).0
    }

    /// [`key`](Self::key) and [`url_group`](Self::url_group) of a request at once, for less
    /// than the two apart: the URL is normalized once for both.
    ///
    /// ```
    /// use cache_http::KeyRules;
    /// use http::{HeaderMap, Method};
    /// use url::Url;
    /// let rules = KeyRules::default();
    /// let url = Url::parse("https://example.com/p?b=2&a=1").unwrap();
    /// let (key, group) = rules.key_and_url_group(&Method::GET, &url, &HeaderMap::new(), None);
    /// assert_eq!(key, rules.key(&Method::GET, &url, &HeaderMap::new(), None));
    /// assert_eq!(group, rules.url_group(&url));
    /// ```
    pub fn key_and_url_group(
        &self,
        method: &Method,
        url: &Url,
        headers: &HeaderMap,
        body: Option<&[u8]>,
    ) -> (CacheKey, CacheKey) {
        self.key_seeing_url(method, url, headers, body, url_group_of)
    }

    /// The key, and what `seen` makes of the normalized URL the key hashes.
    fn key_seeing_url<T>(
        &self,
        method: &Method,
        url: &Url,
        headers: &HeaderMap,
        body: Option<&[u8]>,
        seen: impl FnOnce(&[u8]) -> T,
    ) -> (CacheKey, T) {
        // The query is decoded once, for the URL's text and for the credentials it carries.
        let query = url.query().map(|query| QueryPairs::parse(query.as_bytes()));
        let mut hasher = KeyHasher::new();
        hasher.field(method.as_str().as_bytes());
        // Only when present, so that every other request keeps its key. Each value counts
        // (a repeated header is not the same request as a single one).
        let overrides = headers.get_all(&METHOD_OVERRIDE_NAME);
        if overrides.iter().next().is_some() {
            hasher.field(b"method-override");
            for value in overrides {
                hasher.field(value.as_bytes());
            }
        }
        // The others under their own names (requests with the first keep their keys), looked
        // up only when the request has headers at all.
        if !headers.is_empty() {
            for name in &OTHER_METHOD_OVERRIDES {
                let overrides = headers.get_all(name);
                if overrides.iter().next().is_some() {
                    hasher.field(b"method-override-by");
                    hasher.field(name.as_str().as_bytes());
                    for value in overrides {
                        hasher.field(value.as_bytes());
                    }
                }
            }
        }
        let normalized_url =
            hasher.field_with(|out| self.write_normalized_url(url, query.as_ref(), out));
        let seen = seen(&hasher.0[normalized_url]);
        self.hash_matched_headers(&mut hasher, headers);
        let mut credentials = Vec::new();
        let mut tails = Vec::new();
        // An empty body is no body: a GET built with `.body("")` is the same request.
        match body.filter(|body| !body.is_empty()) {
            None => hasher.field(b"no-body"),
            Some(body) => {
                // Which normalization made the bytes counts: a form's `a=1` and the same bytes
                // sent raw (or as JSON that does not parse) are different requests.
                let found = (&mut credentials, &mut tails);
                let (kind, normalized) = self.normalized_body(headers, body, found);
                hasher.field(kind);
                hasher.field(&normalized);
            }
        }
        if let Some(query) = &query {
            self.collect_credential_tails("query", query, &mut tails);
        }
        if self.per_credential {
            self.collect_url_credentials(url, query.as_ref(), &mut credentials);
            self.collect_header_credentials(headers, &mut credentials);
            // Each named by where it came from (a header's name alone; no header name holds a
            // `:`), as written: a token sent in a header and the same in the query, or
            // `API_KEY` and `api_key`, may be different principals to the origin.
            credentials.sort_by(|a, b| order_name(&a.0).cmp(&order_name(&b.0)));
            hasher.field(b"credentials");
            for (name, value) in &credentials {
                hasher.field(name.as_bytes());
                hasher.field(value);
            }
        }
        // Only when present, so that every other request keeps its key.
        if !tails.is_empty() {
            sort_by_name(&mut tails);
            hasher.field(b"credential-tails");
            for (name, tail) in &tails {
                hasher.field(name.as_bytes());
                hasher.field(tail);
            }
        }
        (hasher.finish(), seen)
    }

    /// The group of every entry stored for `url`, whatever the method, headers, credentials
    /// or body of the request (see [`EntryMeta::url_group`](cache_core::EntryMeta::url_group)):
    /// a digest of the URL as it enters the key, so URLs that differ only in parameter order,
    /// ignored parameters, user info or fragment share it.
    ///
    /// ```
    /// use cache_http::KeyRules;
    /// use url::Url;
    /// let rules = KeyRules::default();
    /// let a = Url::parse("https://example.com/p?b=2&a=1#top").unwrap();
    /// let b = Url::parse("https://example.com/p?a=1&b=2").unwrap();
    /// assert_eq!(rules.url_group(&a), rules.url_group(&b));
    /// ```
    pub fn url_group(&self, url: &Url) -> CacheKey {
        let query = url.query().map(|query| QueryPairs::parse(query.as_bytes()));
        let mut normalized = Vec::with_capacity(url.as_str().len());
        self.write_normalized_url(url, query.as_ref(), &mut normalized);
        url_group_of(&normalized)
    }

    /// The URL as it enters the key: lowercase scheme and host, no default port, no user info
    /// or fragment, ignored query parameters removed and the rest sorted by name (a repeated
    /// name's values in their order).
    pub fn normalized_url<'u>(&self, url: &'u Url) -> Cow<'u, str> {
        if is_plain(url) {
            return Cow::Borrowed(url.as_str());
        }
        let query = url.query().map(|query| QueryPairs::parse(query.as_bytes()));
        let mut out = Vec::with_capacity(url.as_str().len());
        self.write_normalized_url(url, query.as_ref(), &mut out);
        // Only URL text and form-encoded (ASCII) pairs were written.
        Cow::Owned(String::from_utf8_lossy(&out).into_owned())
    }

    /// Writes [`KeyRules::normalized_url`] of `url`, whose query is `query`, to `out`.
    fn write_normalized_url(&self, url: &Url, query: Option<&QueryPairs<'_>>, out: &mut Vec<u8>) {
        if is_plain(url) {
            // The parser already lowercased scheme and host and dropped the default port.
            out.extend_from_slice(url.as_str().as_bytes());
            return;
        }
        out.extend_from_slice(url.scheme().as_bytes());
        out.extend_from_slice(b"://");
        out.extend_from_slice(url[url::Position::BeforeHost..url::Position::AfterPath].as_bytes());
        if let Some(query) = query {
            let mark = out.len();
            out.push(b'?');
            if !query.write_kept(|name| self.treatment(name), out) {
                out.truncate(mark);
            }
        }
    }

    /// The URL as it may be stored: no user info or fragment, and the query as the caller
    /// wrote it (order and escapes kept) less its ignored and credential parameters.
    pub fn redact_url(&self, url: &Url) -> Url {
        let mut redacted = strip_userinfo_and_fragment(url);
        let Some(query) = url.query() else {
            return redacted;
        };
        // Each `name=value` is kept verbatim; only the name is decoded, to recognize
        // `api%5Fkey` as `api_key`.
        let redacts = |pair: &&str| {
            let pair = pair.as_bytes();
            let name = &pair[..pair.iter().position(|&b| b == b'=').unwrap_or(pair.len())];
            // Most names have nothing to decode: compared as they are, with no allocation.
            if !name.iter().any(|&b| b == b'%' || b == b'+') {
                return self.leaves_out_parameter_bytes(name);
            }
            let decoded = decoded_pairs(name);
            decoded
                .first()
                .is_some_and(|(name, _)| self.leaves_out_parameter_bytes(name))
        };
        // A query holding a `;` is stored as the key writes it (see `QueryPairs`): in its
        // order, a redacted parameter's value left out, its name kept. The stored URL then
        // groups as the request did (and keys as it did, unless a value was hashed apart:
        // a credential's, or a kept pair's with a part left out), and holds no value the
        // key leaves out.
        if query.contains(';') {
            let pairs = QueryPairs::parse(query.as_bytes());
            let mut kept = Vec::with_capacity(query.len());
            pairs.write_kept(|name| self.treatment(name), &mut kept);
            redacted.set_query(Some(&String::from_utf8_lossy(&kept)));
            return redacted;
        }
        if query.split('&').any(|pair| redacts(&pair)) {
            let kept = self.kept_pairs(query, redacts);
            redacted.set_query((!kept.is_empty()).then_some(kept.as_str()));
        }
        redacted
    }

    /// The pairs of `query` that `redacts` keeps, joined by `&`. Where an origin may read two
    /// of its names as one parameter, a redacted pair among them keeps its name in place (its
    /// value left out), as the key writes it (see `QueryPairs::write_kept`): which of them
    /// comes last is what such an origin reads.
    fn kept_pairs(&self, query: &str, redacts: impl Fn(&&str) -> bool) -> String {
        fn name_of(pair: &str) -> &str {
            pair.split('=').next().unwrap_or_default()
        }
        // As `QueryPairs` decodes a name: `+` is a space, then percent-decoding.
        let decoded = |pair: &str| -> Vec<u8> {
            let spaced = name_of(pair).replace('+', " ");
            percent_encoding::percent_decode(spaced.as_bytes()).collect()
        };
        let pairs: Vec<(&str, Vec<u8>)> =
            query.split('&').map(|pair| (pair, decoded(pair))).collect();
        let shared = names::read_as_another(
            pairs
                .iter()
                .filter(|(pair, _)| !pair.is_empty())
                .map(|(_, name)| name.as_slice()),
        );
        let kept: Vec<Cow<'_, str>> = pairs
            .iter()
            .filter_map(|(pair, name)| {
                if !redacts(pair) {
                    return Some(Cow::Borrowed(*pair));
                }
                let in_place = shared.contains(name.as_slice());
                in_place.then(|| Cow::Owned(format!("{}=", name_of(pair))))
            })
            .collect();
        kept.join("&")
    }

    /// True when a request body sent with `headers` holds a credential the key fingerprints
    /// (a credential field of a JSON or form body): requests with such bodies are told apart
    /// by it, and a response to one must not answer a request without it.
    ///
    /// ```
    /// use cache_http::KeyRules;
    /// use http::{HeaderMap, header::CONTENT_TYPE};
    /// let mut json = HeaderMap::new();
    /// json.insert(CONTENT_TYPE, "application/json".parse().unwrap());
    /// let rules = KeyRules::default();
    /// assert!(rules.body_has_credentials(&json, br#"{"api_key": "A", "q": "x"}"#));
    /// assert!(!rules.body_has_credentials(&json, br#"{"q": "x"}"#));
    /// ```
    pub fn body_has_credentials(&self, headers: &HeaderMap, body: &[u8]) -> bool {
        let (mut credentials, mut tails) = (NamedValues::new(), NamedValues::new());
        let _ = self.normalized_body(headers, body, (&mut credentials, &mut tails));
        !credentials.is_empty() || !tails.is_empty()
    }

    /// The headers as they may be stored: ignored parameters and credentials removed.
    pub fn redact_headers(&self, headers: &HeaderMap) -> HeaderMap {
        let mut kept = headers.clone();
        let redacted: Vec<HeaderName> = headers
            .keys()
            .filter(|name| self.redacts_header(name.as_str()))
            .cloned()
            .collect();
        for name in redacted {
            kept.remove(name);
        }
        kept
    }

    fn hash_matched_headers(&self, hasher: &mut KeyHasher, headers: &HeaderMap) {
        let names: Vec<&HeaderName> = match &self.match_headers {
            MatchHeaders::None => return,
            MatchHeaders::All => {
                let mut names: Vec<&HeaderName> = headers.keys().collect();
                names.sort_by(|a, b| a.as_str().cmp(b.as_str()));
                names
            }
            MatchHeaders::Only(names) => names.iter().collect(),
        };
        hasher.field(b"headers");
        for name in names {
            if self.redacts_header(name.as_str()) {
                continue;
            }
            let values: Vec<&[u8]> = headers.get_all(name).iter().map(|v| v.as_bytes()).collect();
            hasher.field(name.as_str().as_bytes());
            hasher.field(&(values.len() as u64).to_le_bytes());
            for value in values {
                hasher.field(value);
            }
        }
    }

    /// The body as it enters the key, after the tag of the normalization that made it (a raw
    /// body's is the one every body had before bodies were told apart, so raw bodies keep
    /// their keys). Credentials found in it go to `credentials`.
    fn normalized_body<'b>(
        &self,
        headers: &HeaderMap,
        body: &'b [u8],
        (credentials, tails): (&mut NamedValues, &mut NamedValues),
    ) -> (&'static [u8], Cow<'b, [u8]>) {
        let content_type = headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_ascii_lowercase();
        if content_type.contains("json") {
            if let Some(canonical) = self.canonical_json_body(body, credentials) {
                return (b"json-body", Cow::Owned(canonical));
            }
        } else if content_type.starts_with("application/x-www-form-urlencoded") {
            // Keyed as a query is: sorted by name, ignored and credential fields left out.
            let pairs = QueryPairs::parse(body);
            self.collect_pair_credentials("form", &pairs, credentials);
            self.collect_credential_tails("form", &pairs, tails);
            let mut normalized = Vec::with_capacity(body.len());
            pairs.write_kept(|name| self.treatment(name), &mut normalized);
            return (b"form-body", Cow::Owned(normalized));
        }
        (b"body", Cow::Borrowed(body))
    }

    fn collect_url_credentials(
        &self,
        url: &Url,
        query: Option<&QueryPairs<'_>>,
        credentials: &mut Vec<(String, Vec<u8>)>,
    ) {
        if !url.username().is_empty() || url.password().is_some() {
            let userinfo = format!("{}:{}", url.username(), url.password().unwrap_or_default());
            credentials.push(("url:userinfo".to_owned(), userinfo.into_bytes()));
        }
        if let Some(query) = query {
            self.collect_pair_credentials("query", query, credentials);
        }
    }

    /// The credentials among `pairs` (a query's or a form body's), each named by `source` and
    /// its name. Decoded as bytes: two credentials that differ only in non-UTF-8 bytes must
    /// not share a fingerprint (a lossy decode would make both U+FFFD). One keyed as written
    /// (a `;`, a `%` escaping nothing) is taken as written, under a name of its own.
    fn collect_pair_credentials(
        &self,
        source: &str,
        pairs: &QueryPairs<'_>,
        credentials: &mut NamedValues,
    ) {
        for (name, value) in pairs.credential_values(|name| self.treatment(name)) {
            if !self.is_credential_parameter_bytes(&name) {
                continue;
            }
            let name = String::from_utf8_lossy(&name);
            credentials.push(match value {
                CredentialValue::Decoded(value) => (format!("{source}:{name}"), value.to_vec()),
                CredentialValue::Written(value) => {
                    (format!("{source}-as-written:{name}"), value.to_vec())
                }
            });
        }
    }

    /// What follows a `;` in a credential of `pairs` (a query's or a form body's, keyed as
    /// written: see [`QueryPairs::credential_tails`]), the whole of a kept pair holding a part
    /// named like a credential or an ignored parameter after a `;`, and, in any query or form
    /// body, the whole of a left-out pair whose value holds a raw `]=`, each named by
    /// `source` and the pair's name.
    fn collect_credential_tails(
        &self,
        source: &str,
        pairs: &QueryPairs<'_>,
        tails: &mut NamedValues,
    ) {
        for (name, tail) in pairs.credential_tails(|name| self.treatment(name)) {
            let name = format!("{source}:{}", String::from_utf8_lossy(name));
            tails.push((name, tail.to_vec()));
        }
    }

    fn collect_header_credentials(
        &self,
        headers: &HeaderMap,
        credentials: &mut Vec<(String, Vec<u8>)>,
    ) {
        for (name, value) in headers {
            if self.is_credential_header(name.as_str()) {
                credentials.push((name.as_str().to_owned(), value.as_bytes().to_vec()));
            }
        }
    }

    /// A JSON body with object keys sorted, numbers as written, ignored top-level keys
    /// removed; its top-level credentials go to `credentials`. `None` when it is not JSON.
    fn canonical_json_body(
        &self,
        body: &[u8],
        credentials: &mut Vec<(String, Vec<u8>)>,
    ) -> Option<Vec<u8>> {
        let mut out = Vec::with_capacity(body.len());
        match json::Body::parse(body)? {
            json::Body::Object(mut members) => {
                let mut found = Vec::new();
                // JSON keys are taken as written: no framework folds them as it folds the
                // names of a query or a form (`api.key` is not `api_key` there).
                let credential = |name: &str| self.holds_credential_name(name.as_bytes());
                for (name, value) in &members {
                    if credential(name) {
                        let mut canonical = Vec::new();
                        json::canonical(value, &mut canonical)?;
                        found.push((format!("json:{name}"), canonical));
                    }
                }
                members.retain(|name, _| !(self.is_ignored(name) || credential(name)));
                json::canonical_object(&members, &mut out)?;
                credentials.extend(found);
            }
            json::Body::Other(value) => json::canonical(value, &mut out)?,
        }
        Some(out)
    }
}

/// `application/x-www-form-urlencoded` pairs, decoded to bytes. Unlike
/// `form_urlencoded::parse`, which decodes lossily to UTF-8, values that are not UTF-8 stay
/// distinct (`%80` and `%81` would both become U+FFFD); for UTF-8 input the result is the
/// same, so keys of such URLs did not change.
fn decoded_pairs(input: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let decode = |part: &[u8]| -> Vec<u8> {
        let spaced: Vec<u8> = part
            .iter()
            .map(|&b| if b == b'+' { b' ' } else { b })
            .collect();
        percent_encoding::percent_decode(&spaced).collect()
    };
    input
        .split(|&b| b == b'&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = match pair.iter().position(|&b| b == b'=') {
                Some(at) => (&pair[..at], &pair[at + 1..]),
                None => (pair, &[][..]),
            };
            (decode(name), decode(value))
        })
        .collect()
}

/// Values found in a request (credentials, the parts after a credential's `;`, kept pairs
/// holding a part left out after a `;`), each named by where it came from.
type NamedValues = Vec<(String, Vec<u8>)>;

/// No query, fragment or user info: the URL's own text is its normalized form.
fn is_plain(url: &Url) -> bool {
    url.query().is_none()
        && url.fragment().is_none()
        && url.username().is_empty()
        && url.password().is_none()
}

fn strip_userinfo_and_fragment(url: &Url) -> Url {
    let mut stripped = url.clone();
    // Each setter re-serializes the URL: only called when there is something to drop.
    if url.fragment().is_some() {
        stripped.set_fragment(None);
    }
    // Only fails for URLs that cannot have user info, which then have none.
    if !url.username().is_empty() {
        let _ = stripped.set_username("");
    }
    if url.password().is_some() {
        let _ = stripped.set_password(None);
    }
    stripped
}

/// Length-prefixed fields into BLAKE3, so no two different field lists hash the same input.
/// The fields are gathered in one buffer and hashed at once: BLAKE3 over the concatenation is
/// the same digest as fed piecewise, and one call is much cheaper than a dozen small ones.
/// Variant keys ([`crate::vary::variant_key`]) are made the same way, under their own tag.
/// The buffer comes from, and goes back to, its thread's spares ([`spare_buffer`]): keying a
/// request allocates nothing once its thread has keyed one.
pub(crate) struct KeyHasher(Vec<u8>);

/// Buffers a thread's key hashers hand back, for the next ones: two, as a key and its URL's
/// group are hashed at once.
const SPARE_BUFFERS: usize = 2;

/// The largest buffer kept for reuse: one that grew past it (a URL of many kilobytes) is
/// freed rather than held by its thread.
const LARGEST_SPARE: usize = 16 * 1024;

thread_local! {
    static SPARES: std::cell::RefCell<Vec<Vec<u8>>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// An empty buffer of at least `capacity` bytes: one of the thread's spares when it has one.
fn spare_buffer(capacity: usize) -> Vec<u8> {
    let spare = SPARES
        .try_with(|spares| spares.try_borrow_mut().ok()?.pop())
        .ok()
        .flatten();
    let mut buffer = spare.unwrap_or_default();
    buffer.reserve(capacity);
    buffer
}

impl Drop for KeyHasher {
    fn drop(&mut self) {
        let mut buffer = std::mem::take(&mut self.0);
        if buffer.capacity() == 0 || buffer.capacity() > LARGEST_SPARE {
            return;
        }
        buffer.clear();
        // A thread being torn down, or spares full: the buffer is simply freed.
        let _ = SPARES.try_with(|spares| {
            if let Ok(mut spares) = spares.try_borrow_mut() {
                if spares.len() < SPARE_BUFFERS {
                    spares.push(buffer);
                }
            }
        });
    }
}

/// Sorts `(name, value)` pairs by name only, stably: a repeated name's values keep their
/// order (`?ids=3&ids=1` and `?ids=1&ids=3` are different requests to most frameworks).
pub(crate) fn sort_by_name<N: Ord, V>(pairs: &mut [(N, V)]) {
    pairs.sort_by(|a, b| a.0.cmp(&b.0));
}

/// The name a credential is ordered by: one taken as written (`query-as-written:api_key`)
/// with those of its name taken decoded (`query:api_key`), and the sort being stable, in the
/// order the request holds them: to an origin taking a repeated name's last value,
/// `?api_key=%zz&api_key=B` and its reverse are different principals (sorted by their own
/// names, the written one went first in both). The names hashed stay as they are.
fn order_name(name: &str) -> Cow<'_, str> {
    match name.split_once("-as-written:") {
        Some((source, name)) => Cow::Owned(format!("{source}:{name}")),
        None => Cow::Borrowed(name),
    }
}

/// The URL group of a URL normalized as the key has it.
fn url_group_of(normalized_url: &[u8]) -> CacheKey {
    let mut hasher = KeyHasher::with_capacity(URL_GROUP_TAG.len() + normalized_url.len() + 16);
    hasher.field(URL_GROUP_TAG);
    hasher.field(normalized_url);
    hasher.finish()
}

impl KeyHasher {
    fn new() -> Self {
        Self::tagged(KEY_VERSION_TAG)
    }

    /// A hasher whose first field is `tag`, which tells one kind of key from another.
    pub(crate) fn tagged(tag: &[u8]) -> Self {
        let mut hasher = Self::with_capacity(256);
        hasher.field(tag);
        hasher
    }

    /// An empty hasher with room for `capacity` bytes of fields.
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        Self(spare_buffer(capacity))
    }

    /// A field whose bytes `write` appends; its length is filled in after. Returns where
    /// those bytes are in the buffer.
    pub(crate) fn field_with(
        &mut self,
        write: impl FnOnce(&mut Vec<u8>),
    ) -> std::ops::Range<usize> {
        let at = self.0.len();
        self.0.extend_from_slice(&[0; 8]);
        write(&mut self.0);
        let len = (self.0.len() - at - 8) as u64;
        self.0[at..at + 8].copy_from_slice(&len.to_le_bytes());
        at + 8..self.0.len()
    }

    pub(crate) fn field(&mut self, bytes: &[u8]) {
        self.0
            .extend_from_slice(&(bytes.len() as u64).to_le_bytes());
        self.0.extend_from_slice(bytes);
    }

    pub(crate) fn finish(self) -> CacheKey {
        let mut digest = [0u8; 16];
        digest.copy_from_slice(&blake3::hash(&self.0).as_bytes()[..16]);
        CacheKey::from_digest(digest)
    }
}

mod custom;
mod json;
mod names;
mod query;

pub use custom::{KeyRequest, key_from_parts};

use names::{NameSet, is_builtin_credential};
use query::{CredentialValue, QueryPairs, Treatment};

#[cfg(test)]
mod tests;
