//! Expiration by URL pattern: globs over `host[:port]/path`, the first match wins, and a
//! pattern covers every URL it is a prefix of. A manual clock stands in for waiting.
//!
//! Run it with `cargo run --example url_patterns`.

#[path = "support/origin.rs"]
mod origin;

use std::sync::Arc;
use std::time::Duration;

use reqwest_caching::reqwest_middleware::ClientBuilder;
use reqwest_caching::{CacheMiddleware, CacheResponseExt, Expiration, ManualClock, MemoryStore};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let origin = origin::Origin::start(Duration::ZERO).await;
    let clock = Arc::new(ManualClock::starting_now());
    let cache = CacheMiddleware::builder()
        .store(MemoryStore::new())
        .clock(clock.clone())
        .expire_after(Duration::from_secs(3600)) // URLs no pattern matches: one hour
        .urls_expire_after([
            // Listed first, so it wins over "*/api" below for live prices.
            ("*/api/live".to_owned(), Expiration::DoNotCache),
            (
                "*/api".to_owned(),
                Expiration::After(Duration::from_secs(60)),
            ),
            // A scheme in a pattern is ignored: this is `127.0.0.1:PORT/static`.
            (origin.url("/static"), Expiration::Never),
        ])
        .build()?;
    let client = ClientBuilder::new(reqwest::Client::new())
        .with(cache)
        .build();

    // (path, served from the cache right away?, ten minutes later?, two hours later?)
    let cases = [
        ("/api/live/price", false, false, false), // DoNotCache
        ("/api/items", true, false, false),       // 60 s
        ("/static/logo.png", true, true, true),   // Never
        ("/about", true, true, false),            // the session's hour
    ];
    // Each URL is fetched once, then asked for again at once, 10 min later and 2 h after that.
    let mut from_cache = vec![Vec::new(); cases.len()];
    for wait in [0, 0, 600, 2 * 3600] {
        clock.advance(Duration::from_secs(wait));
        for (seen, (path, ..)) in from_cache.iter_mut().zip(&cases) {
            seen.push(client.get(origin.url(path)).send().await?.from_cache());
        }
    }
    for ((path, now, later, much_later), seen) in cases.iter().zip(&from_cache) {
        println!(
            "{path:<17} from cache at once: {:<5}  after 10 min: {:<5}  after 2 h: {}",
            seen[1], seen[2], seen[3]
        );
        assert_eq!(seen, &[false, *now, *later, *much_later], "{path}");
    }
    println!("origin requests: {}", origin.served());
    assert_eq!(origin.served(), 4 + 1 + 2 + 3);
    Ok(())
}
