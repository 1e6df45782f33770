//! Every command against every store: one scenario per store, run end to end.

use std::time::SystemTime;

use serde_json::Value;

use crate::stores::{Kind, TestStore};
use crate::support::{FRESH, OLD, Origin, arg, fetch, run, seed};

/// The URLs of an `ls --json` listing.
fn urls(listing: &Value) -> Vec<String> {
    listing
        .as_array()
        .expect("an array")
        .iter()
        .map(|entry| entry["url"].as_str().unwrap().to_owned())
        .collect()
}

/// Seeds `kind`, then runs each command on it and checks what it printed and what it did.
async fn every_command(kind: Kind) {
    let store = TestStore::new(kind);
    let origin = Origin::start().await;
    seed(&store.open().await, &origin).await;
    let cli = |args: Vec<String>| {
        let name = store.name.clone();
        let env = store.env.clone();
        async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            run(&name, &args, &env).await
        }
    };
    let args = |args: &[&str]| args.iter().map(|a| (*a).to_owned()).collect::<Vec<_>>();
    let url = |path: &str| origin.url(path);
    let what = format!("{kind:?}");

    // stats
    let stats = cli(args(&["stats", "--json"])).await.expect(0).json();
    assert_eq!(stats["entries"], 3, "{what}: {stats}");
    assert_eq!(stats["expired"], 1, "{what}: {stats}");
    assert_eq!(stats["unreadable"], 0, "{what}: {stats}");
    assert!(stats["bytes"].as_u64().unwrap() > 3 * 5, "{what}: {stats}");
    assert_eq!(
        stats["hosts"][origin.host()]["entries"],
        3,
        "{what}: {stats}"
    );
    assert_eq!(
        stats["hosts"][origin.host()]["expired"],
        1,
        "{what}: {stats}"
    );
    assert!(
        stats["oldest"].as_str().unwrap() < stats["newest"].as_str().unwrap(),
        "{what}: {stats}"
    );
    let text = cli(args(&["stats"])).await.expect(0).stdout;
    assert!(
        text.contains("3 (1 expired, 0 unreadable)"),
        "{what}: {text}"
    );
    assert!(text.contains(&origin.host()), "{what}: {text}");

    // ls, with each filter
    let ls = |filters: &[&str]| {
        let mut all = args(&["ls", "--json"]);
        all.extend(args(filters));
        cli(all)
    };
    let all = ls(&[]).await.expect(0).json();
    let expected: Vec<String> = [FRESH[0], FRESH[1], OLD].map(url).to_vec();
    assert_eq!(urls(&all), expected, "{what}");
    assert_eq!(urls(&ls(&["--expired"]).await.json()), [url(OLD)], "{what}");
    assert_eq!(
        urls(&ls(&["--older-than", "1h"]).await.json()),
        [url(OLD)],
        "{what}"
    );
    assert_eq!(
        urls(&ls(&["--url", "*/b?*"]).await.json()),
        [url(FRESH[1])],
        "{what}"
    );
    assert_eq!(
        urls(&ls(&["--host", "127.0.0.1"]).await.json()).len(),
        3,
        "{what}"
    );
    assert!(
        urls(&ls(&["--host", "elsewhere.example"]).await.json()).is_empty(),
        "{what}"
    );
    let text = cli(args(&["ls", "--expired"])).await.expect(0).stdout;
    assert!(
        text.contains("EXPIRED") && text.contains(&url(OLD)),
        "{what}: {text}"
    );
    let key_of = |path: &str| {
        let entry = all
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["url"] == url(path))
            .unwrap();
        entry["key"].as_str().unwrap().to_owned()
    };

    // show
    let shown = cli(args(&["show", &url("/a"), "--json"]))
        .await
        .expect(0)
        .json();
    assert_eq!(shown["status"], 200, "{what}: {shown}");
    assert_eq!(shown["request"]["method"], "GET", "{what}: {shown}");
    assert_eq!(shown["body_bytes"], "/a #1".len(), "{what}: {shown}");
    assert_eq!(shown["expired"], false, "{what}: {shown}");
    let body_file = store.dir.path().join("body");
    let body_args = args(&["show", &url("/a"), "--body", arg(&body_file)]);
    let text = cli(body_args).await.expect(0).stdout;
    assert!(text.contains("200 OK"), "{what}: {text}");
    assert_eq!(
        std::fs::read_to_string(&body_file).unwrap(),
        "/a #1",
        "{what}"
    );
    let body = cli(args(&["show", &url(FRESH[1]), "--body", "-"]))
        .await
        .expect(0);
    assert_eq!(body.stdout, "/b?q=1 #2", "{what}");
    let old = cli(args(&["show", "--key", &key_of(OLD), "--json"]))
        .await
        .expect(0)
        .json();
    assert_eq!(
        (&old["url"], &old["expired"]),
        (&Value::from(url(OLD)), &Value::Bool(true))
    );
    cli(args(&["show", &url("/never-stored")])).await.expect(1);

    // export: no progress output when standard error is not a terminal
    let exported_dir = store.dir.path().join("exported");
    let exported = cli(args(&["export", arg(&exported_dir), "--json"]))
        .await
        .expect(0);
    assert!(exported.stderr.is_empty(), "{what}: {:?}", exported.stderr);
    assert_eq!(exported.json()["entries"], 3, "{what}");

    // rm, by URL and by key; a second time finds nothing
    let removed = cli(args(&["rm", &url("/a"), "--json"]))
        .await
        .expect(0)
        .json();
    assert_eq!(removed["deleted"], 1, "{what}");
    cli(args(&["rm", &url("/a")])).await.expect(1);
    let key_b = key_of(FRESH[1]);
    let removed = cli(args(&["rm", "--key", &key_b, "--json"]))
        .await
        .expect(0)
        .json();
    assert_eq!(removed["deleted"], 1, "{what}");
    cli(args(&["rm", "--key", &key_b])).await.expect(1);
    let stats = cli(args(&["stats", "--json"])).await.expect(0).json();
    assert_eq!(stats["entries"], 1, "{what}");

    // import brings them back, and the cache serves them without the origin
    let imported = cli(args(&["import", arg(&exported_dir), "--json"]))
        .await
        .expect(0);
    assert!(imported.stderr.is_empty(), "{what}: {:?}", imported.stderr);
    assert_eq!(imported.json()["entries"], 3, "{what}");
    {
        let opened = store.open().await;
        let (body, cached) = fetch(
            &opened,
            &origin,
            "/a",
            SystemTime::now(),
            std::time::Duration::from_secs(60),
        )
        .await;
        assert!(cached, "{what}: /a served from the imported entry");
        assert_eq!(body, "/a #1", "{what}");
    }
    assert_eq!(origin.hits(), 3, "{what}: nothing more reached the origin");

    // copy into another store
    let copy_dir = store.dir.path().join("copy");
    let to = format!("fs:{}", arg(&copy_dir));
    let copied = cli(args(&["copy", &store.name, &to, "--json"]))
        .await
        .expect(0);
    assert!(copied.stderr.is_empty(), "{what}: {:?}", copied.stderr);
    assert_eq!(copied.json()["entries"], 3, "{what}");
    let copy_stats = run(&to, &["stats", "--json"], &Vec::new())
        .await
        .expect(0)
        .json();
    assert_eq!(copy_stats["entries"], 3, "{what}");

    // purge: refused without --yes off a terminal; then expired, then all
    let refused = cli(args(&["purge", "--expired"])).await.expect(6);
    assert!(
        refused.stderr.contains("--yes"),
        "{what}: {}",
        refused.stderr
    );
    assert_eq!(
        cli(args(&["stats", "--json"])).await.json()["entries"],
        3,
        "{what}"
    );
    let purged = cli(args(&["purge", "--expired", "--yes", "--json"]))
        .await
        .expect(0);
    assert_eq!(purged.json()["deleted"], 1, "{what}");
    assert!(purged.stderr.is_empty(), "{what}: {:?}", purged.stderr);
    assert_eq!(
        urls(&ls(&[]).await.json()),
        [url(FRESH[0]), url(FRESH[1])],
        "{what}"
    );
    let purged = cli(args(&["purge", "--all", "--yes", "--json"]))
        .await
        .expect(0);
    assert_eq!(purged.json()["deleted"], 2, "{what}");
    assert_eq!(
        cli(args(&["stats", "--json"])).await.json()["entries"],
        0,
        "{what}"
    );
}

#[tokio::test]
async fn sqlite() {
    every_command(Kind::Sqlite).await;
}

#[tokio::test]
async fn sled() {
    every_command(Kind::Sled).await;
}

#[tokio::test]
async fn fs() {
    every_command(Kind::Fs).await;
}

#[tokio::test]
async fn redis() {
    every_command(Kind::Redis).await;
}

#[tokio::test]
async fn redis_cluster() {
    every_command(Kind::RedisCluster).await;
}

#[tokio::test]
async fn mongodb() {
    every_command(Kind::Mongo).await;
}

#[tokio::test]
async fn dynamodb() {
    every_command(Kind::Dynamo).await;
}
