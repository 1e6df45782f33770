//! The hit row of an API client that sends its bearer token with every request: a middleware
//! ahead of the cache (and of the floor, which ignores headers) adds `Authorization`. The
//! token is a credential, so our key holds a fingerprint of it (responses fetched with one
//! token are never served to another), and the key is remembered by a digest of the method,
//! URL and token.

use http::{Extensions, HeaderValue, header::AUTHORIZATION};
use reqwest::{Request, Response};
use reqwest_caching::reqwest_middleware::{ClientBuilder, ClientWithMiddleware, Middleware, Next};
use reqwest_caching::{CacheMiddleware, MemoryStore};

use crate::floors::Answer;
use crate::report::{Check, Target};
use crate::{Contender, Shape, floors, urls};

/// Adds the same bearer token to every request.
struct BearerToken;

#[async_trait::async_trait]
impl Middleware for BearerToken {
    async fn handle(
        &self,
        mut req: Request,
        ext: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<Response> {
        req.headers_mut().insert(
            AUTHORIZATION,
            HeaderValue::from_static("Bearer 3f9c2a7e5b1d4c8fa0e6b2d9c4f7a1e3"),
        );
        next.run(req, ext).await
    }
}

fn with_token() -> ClientBuilder {
    ClientBuilder::new(reqwest::Client::new()).with(BearerToken)
}

/// Our memory store behind the token middleware.
pub(crate) fn ours() -> ClientWithMiddleware {
    let cache = CacheMiddleware::builder()
        .store(MemoryStore::new())
        .build()
        .expect("cache");
    with_token().with(cache).build()
}

/// The memory floor (filled with `urls`) behind the token middleware.
pub(crate) async fn floor(urls: &[String]) -> ClientWithMiddleware {
    floors::memory_prefilled_on(with_token(), urls, Answer::Body).await
}

/// Memory hits (1 KiB, 3-parameter query URLs) with a bearer token, against the memory
/// floor with the same token; adds the check.
pub(crate) async fn token_rows(origin: &str, checks: &mut Vec<Check>) {
    let urls = urls(origin, 1024, Shape::Query, crate::HIT_URLS, "-token");
    let contenders = [
        Contender {
            name: "floor: memory",
            client: floor(&urls).await,
        },
        Contender {
            name: "ours: memory",
            client: ours(),
        },
    ];
    let rounds = crate::rounds::run(&contenders, &urls, contenders.len()).await;
    let results = rounds.results();
    results.print(&format!(
        "hit, 1 KiB body, 3-param query, bearer token ({} URLs, {} rounds of {} requests each)",
        crate::HIT_URLS,
        crate::rounds::ROUNDS,
        crate::rounds::BLOCK
    ));
    checks.extend(crate::median_check(
        &rounds,
        ("ours: memory", "floor: memory"),
        "memory hit, 1 KiB, 3-param query, bearer token".into(),
        Some(Target::AtMost(1.3)),
    ));
}
