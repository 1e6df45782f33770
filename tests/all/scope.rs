use std::time::Duration;

use reqwest_caching::{CacheMode, CacheScope, disabled};

use crate::support::{BACKENDS, Harness};

#[tokio::test]
async fn disabled_scope_neither_reads_nor_writes() {
    for &backend in BACKENDS {
        let h = Harness::new(backend).await;
        disabled(async {
            h.fetch("/s").await;
            let (_, info) = h.fetch("/s").await;
            assert!(!info.from_cache);
        })
        .await;
        assert_eq!(h.origin.hits("/s"), 2);
        assert_eq!(h.handle.count().await.unwrap(), 0, "{backend:?}");
        // Outside the scope the cache is back.
        h.fetch("/s").await;
        assert!(h.fetch("/s").await.1.from_cache);
        // And cached entries are not served inside it.
        let (_, info) = disabled(h.fetch("/s")).await;
        assert!(!info.from_cache);
        assert_eq!(h.origin.hits("/s"), 4);
    }
}

#[tokio::test]
async fn scopes_nest_and_inner_settings_win() {
    for &backend in BACKENDS {
        let h = Harness::new(backend).await;
        h.fetch("/n").await;
        CacheScope::new()
            .mode(CacheMode::ForceRefresh)
            .run(async {
                assert!(!h.fetch("/n").await.1.from_cache);
                // An inner scope re-enabling normal mode, and an inner disabled scope.
                CacheScope::new()
                    .mode(CacheMode::Default)
                    .run(async { assert!(h.fetch("/n").await.1.from_cache) })
                    .await;
                CacheScope::new()
                    .disabled(true)
                    .run(async {
                        assert!(!h.fetch("/n").await.1.from_cache);
                        // disabled(false) turns it back on inside.
                        let (_, info) = CacheScope::new().disabled(false).run(h.fetch("/n")).await;
                        assert!(!info.from_cache, "still ForceRefresh from the outer scope");
                    })
                    .await;
            })
            .await;
        assert_eq!(h.origin.hits("/n"), 4, "{backend:?}");
    }
}

#[tokio::test]
async fn scope_expiration_applies_to_every_request_inside() {
    for &backend in BACKENDS {
        let h = Harness::new(backend).await;
        CacheScope::new()
            .expire_after(Duration::from_secs(5))
            .run(async {
                h.fetch("/x").await;
                h.fetch("/y").await;
            })
            .await;
        h.clock.advance(Duration::from_secs(6));
        assert!(!h.fetch("/x").await.1.from_cache, "{backend:?}");
        assert!(!h.fetch("/y").await.1.from_cache, "{backend:?}");
        assert_eq!(h.origin.total(), 4);
    }
}
