use std::time::Duration;

use http::Method;
use reqwest_caching::Expiration;

use crate::support::{BACKENDS, Harness};

#[tokio::test]
async fn inspect_and_delete_by_key_and_url() {
    for &backend in BACKENDS {
        let h = Harness::new(backend).await;
        // HEAD first: once a GET is stored, it answers HEAD requests itself.
        h.client.head(h.origin.url("/a")).send().await.unwrap();
        let (_, info) = h.fetch("/a").await;
        h.fetch("/b").await;
        let key = info.key.unwrap();
        assert!(h.handle.contains(&key).await.unwrap());
        assert!(h.handle.contains_url(&h.origin.url("/a")).await.unwrap());
        assert_eq!(h.handle.count().await.unwrap(), 3);
        assert_eq!(
            h.handle.urls().await.unwrap(),
            vec![h.origin.url("/a"), h.origin.url("/b")]
        );
        let entry = h.handle.get(&key).await.unwrap().unwrap();
        assert_eq!(entry.meta.key, key);
        assert_eq!(
            &entry.response.body[..],
            b"/a #2",
            "the HEAD was the first request"
        );

        assert_eq!(
            h.handle.delete_url(&h.origin.url("/a")).await.unwrap(),
            2,
            "{backend:?}: GET and HEAD"
        );
        assert!(!h.handle.contains(&key).await.unwrap());
        assert!(!h.handle.delete(&key).await.unwrap());
        assert!(
            !h.fetch("/a").await.1.from_cache,
            "{backend:?}: deleted means refetched"
        );
        let err = h.handle.contains_url("not a url").await.unwrap_err();
        assert!(
            matches!(&err, reqwest_caching::Error::InvalidUrl { url, .. } if url == "not a url"),
            "{err:?}"
        );
        assert_eq!(h.handle.clear().await.unwrap(), 2);
        assert_eq!(h.handle.count().await.unwrap(), 0);
        assert_eq!(h.origin.hits("/a"), 3, "HEAD, GET, GET after delete");
    }
}

#[tokio::test]
async fn delete_expired_and_older_than() {
    for &backend in BACKENDS {
        let h = Harness::new(backend).await;
        let short = |path: &str| {
            use reqwest_caching::CacheRequestExt;
            h.get(path).expire_after(Duration::from_secs(10))
        };
        crate::support::send(short("/short")).await;
        h.fetch("/never").await;
        h.clock.advance(Duration::from_secs(20));
        h.fetch("/new").await;
        assert_eq!(h.handle.delete_expired().await.unwrap(), 1, "{backend:?}");
        assert!(
            !h.handle
                .contains_url(&h.origin.url("/short"))
                .await
                .unwrap()
        );
        assert_eq!(
            h.handle
                .delete_older_than(Duration::from_secs(15))
                .await
                .unwrap(),
            1,
            "{backend:?}"
        );
        assert_eq!(h.handle.urls().await.unwrap(), vec![h.origin.url("/new")]);
    }
}

#[tokio::test]
async fn reset_expiration_applies_a_new_expiry_from_now() {
    for &backend in BACKENDS {
        let h = Harness::new(backend).await;
        h.fetch("/a").await;
        h.fetch("/b").await;
        assert_eq!(
            h.handle
                .reset_expiration(Expiration::After(Duration::from_secs(30)))
                .await
                .unwrap(),
            2
        );
        assert!(h.fetch("/a").await.1.from_cache);
        h.clock.advance(Duration::from_secs(31));
        assert!(
            !h.fetch("/a").await.1.from_cache,
            "{backend:?}: the new expiry holds"
        );
        assert_eq!(
            h.handle
                .reset_expiration(Expiration::DoNotCache)
                .await
                .unwrap(),
            2
        );
        assert_eq!(h.handle.count().await.unwrap(), 0);
        let key = h.handle.key_for(&Method::GET, &h.origin.url("/b")).unwrap();
        assert!(!h.handle.contains(&key).await.unwrap());
    }
}

/// `urls()` lists each URL as it was requested (`%20` stays `%20`, `+` stays `+`, order and
/// escapes kept), less only its ignored and credential parameters; the key still
/// normalizes, so the same URL written another way is the same entry.
#[tokio::test]
async fn urls_are_listed_as_requested() {
    for &backend in BACKENDS {
        let h = Harness::with(backend, |b| b.ignored_parameters(["nonce"])).await;
        h.fetch("/s?q=a%20b&nonce=1&x=1+2&api_key=secret&z=%7E&flag")
            .await;
        let (_, info) = h
            .fetch("/s?flag&api_key=secret&z=~&x=1%202&q=a+b&nonce=2")
            .await;
        assert!(info.from_cache, "{backend:?}: one entry");
        assert_eq!(h.origin.hits("/s"), 1, "{backend:?}");
        assert_eq!(
            h.handle.urls().await.unwrap(),
            vec![h.origin.url("/s?q=a%20b&x=1+2&z=%7E&flag")],
            "{backend:?}"
        );
    }
}
