//! Every form of expiration: the session default, then per request `Expiration::Never`, a
//! `Duration` (`Expiration::After`), a `SystemTime` (`Expiration::At`),
//! `Expiration::Immediately` and `Expiration::DoNotCache`. A manual clock stands in for
//! waiting two minutes.
//!
//! Run it with `cargo run --example expiration`.

#[path = "support/origin.rs"]
mod origin;

use std::sync::Arc;
use std::time::Duration;

use reqwest_caching::reqwest_middleware::ClientBuilder;
use reqwest_caching::{
    CacheMiddleware, CacheRequestExt, CacheResponseExt, Clock, Expiration, ManualClock, MemoryStore,
};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let origin = origin::Origin::start(Duration::ZERO).await;
    let clock = Arc::new(ManualClock::starting_now());
    let cache = CacheMiddleware::builder()
        .store(MemoryStore::new())
        .clock(clock.clone())
        .expire_after(Duration::from_secs(60)) // the session default
        .build()?;
    let handle = cache.handle();
    let client = ClientBuilder::new(reqwest::Client::new())
        .with(cache)
        .build();

    // (form, per-request expiration, served from the cache right away?, two minutes later?)
    let in_30_s = clock.now() + Duration::from_secs(30);
    let forms = [
        ("session default, 60 s", None, true, false),
        ("Never", Some(Expiration::Never), true, true),
        (
            "Duration, 10 min",
            Some(Duration::from_secs(600).into()),
            true,
            true,
        ),
        ("SystemTime, in 30 s", Some(in_30_s.into()), true, false),
        ("Immediately", Some(Expiration::Immediately), false, false),
        ("DoNotCache", Some(Expiration::DoNotCache), false, false),
    ];

    // Each URL is fetched once, then asked for again at once and two minutes later.
    let mut from_cache = vec![Vec::new(); forms.len()];
    for wait in [0, 0, 120] {
        clock.advance(Duration::from_secs(wait));
        for (id, (seen, (_, expiration, ..))) in from_cache.iter_mut().zip(&forms).enumerate() {
            let mut request = client.get(origin.url(&format!("/items/{id}")));
            if let Some(expiration) = expiration {
                request = request.expire_after(*expiration); // CacheRequestExt
            }
            seen.push(request.send().await?.from_cache());
        }
    }
    for ((form, _, now, later), seen) in forms.iter().zip(&from_cache) {
        println!(
            "{form:<22} from cache at once: {:<5}  after 2 min: {}",
            seen[1], seen[2]
        );
        assert_eq!(seen, &[false, *now, *later], "{form}");
    }
    // Everything but DoNotCache is stored (Immediately too, but stale at once).
    assert_eq!(handle.count().await?, 5);
    // 6 first fetches, 2 + 4 refetches: Immediately and DoNotCache each time, plus the
    // session default and the SystemTime form once they expired.
    assert_eq!(origin.served(), 6 + 2 + 4);
    println!("origin requests: {}", origin.served());
    Ok(())
}
