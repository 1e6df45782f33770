//! What scripts rely on when something is wrong: the exit code, a clear message, and a
//! store left as it was.

use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt;
use reqwest_caching::cache_core::codec::FORMAT_VERSION;
use reqwest_caching::{CacheStore, StoredEntry};

use crate::stores::{Kind, TestStore, dynamo_env};
use crate::support::{Env, Origin, arg, run, seed};

/// Every stored entry, raw, sorted by key.
async fn raw_entries(store: &Arc<dyn CacheStore>) -> Vec<StoredEntry> {
    let metas: Vec<_> = store.entries().map(Result::unwrap).collect().await;
    let mut entries = Vec::new();
    for meta in metas {
        entries.push(store.get(&meta.key).await.unwrap().unwrap());
    }
    entries.sort_by_key(|e| e.meta.key);
    entries
}

/// A seeded SQLite cache whose entry for `path` has its value replaced by `tamper(value)`.
async fn tampered(path: &str, tamper: impl Fn(&[u8]) -> Vec<u8>) -> (TestStore, Origin) {
    let store = TestStore::new(Kind::Sqlite);
    let origin = Origin::start().await;
    let opened = store.open().await;
    seed(&opened, &origin).await;
    let target = origin.url(path);
    let mut entry = raw_entries(&opened)
        .await
        .into_iter()
        .find(|e| e.meta.url == target)
        .unwrap();
    entry.value = Bytes::from(tamper(&entry.value));
    opened.put(entry).await.unwrap();
    (store, origin)
}

/// The entries `stats` counts in `store`, and the unreadable ones among them.
async fn entries_and_unreadable(store: &TestStore) -> (u64, u64) {
    let stats = run(&store.name, &["stats", "--json"], &Env::new())
        .await
        .expect(0)
        .json();
    let count = |field: &str| stats[field].as_u64().unwrap_or_else(|| panic!("{stats}"));
    (count("entries"), count("unreadable"))
}

#[tokio::test]
async fn a_newer_format_is_refused_and_nothing_changes() {
    let (store, origin) = tampered("/a", |value| {
        let mut value = value.to_vec();
        value[4] = FORMAT_VERSION + 1;
        value
    })
    .await;
    let before = raw_entries(&store.open().await).await;
    let out = store.dir.path().join("out");
    let env = Env::new();
    let to = format!("fs:{}", arg(&out));
    let a = origin.url("/a");
    let commands: Vec<Vec<&str>> = vec![
        vec!["stats"],
        vec!["show", &a],
        vec!["rm", &a],
        vec!["purge", "--all", "--yes"],
        vec!["purge", "--host", "127.0.0.1", "--yes"],
        vec!["export", arg(&out)],
        vec!["copy", &store.name, &to],
    ];
    for args in &commands {
        let failed = run(&store.name, args, &env).await.expect(4);
        let newer = format!("format version {}", FORMAT_VERSION + 1);
        assert!(
            failed.stderr.contains(&newer),
            "{args:?}: {}",
            failed.stderr
        );
        assert!(failed.stderr.contains("nothing was changed"), "{args:?}");
        assert!(failed.stdout.is_empty(), "{args:?}: {}", failed.stdout);
    }
    assert!(!out.exists(), "export and copy wrote nothing");
    assert_eq!(
        raw_entries(&store.open().await).await,
        before,
        "the store is untouched"
    );
    // Entries of the format this build reads are still shown.
    run(&store.name, &["show", &origin.url("/b?q=1")], &env)
        .await
        .expect(0);
    // Named by its key, the entry is deleted whatever its format, as `rm --key` says.
    let newer_key = before
        .iter()
        .find(|e| e.meta.url == origin.url("/a"))
        .map(|e| e.meta.key.to_string())
        .unwrap();
    run(&store.name, &["rm", "--key", &newer_key], &env)
        .await
        .expect(0);
    assert_eq!(
        raw_entries(&store.open().await).await.len(),
        before.len() - 1,
        "deleted by its key"
    );
    run(&store.name, &["stats"], &env).await.expect(0);
}

#[tokio::test]
async fn an_unreadable_entry_is_reported_and_kept() {
    let (store, origin) = tampered("/a", |value| value[..value.len() - 1].to_vec()).await;
    let env = Env::new();
    let failed = run(&store.name, &["show", &origin.url("/a")], &env)
        .await
        .expect(5);
    assert!(failed.stderr.contains("unreadable"), "{}", failed.stderr);
    assert_eq!(entries_and_unreadable(&store).await, (3, 1));
    // Reading it deleted nothing (the middleware's read path would have).
    let again = run(&store.name, &["stats", "--json"], &env)
        .await
        .expect(0)
        .json();
    assert_eq!(again["entries"], 3);
}

#[tokio::test]
async fn wrong_store_names_are_usage_errors_that_create_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
    let names = [
        path("cache.db"),
        format!("postgres://127.0.0.1/{}", path("x")),
        "redis://".to_owned(),
        "redis+cluster://127.0.0.1:1/2".to_owned(),
        "mongodb://127.0.0.1:1/db/coll/extra".to_owned(),
        "dynamodb:".to_owned(),
        "sqlite:".to_owned(),
        "fs:".to_owned(),
    ];
    for name in &names {
        for json in [false, true] {
            let args: &[&str] = if json {
                &["stats", "--json"]
            } else {
                &["stats"]
            };
            let failed = run(name, args, &Env::new()).await.expect(2);
            if json {
                let report: serde_json::Value = serde_json::from_str(failed.stderr.trim())
                    .unwrap_or_else(|e| panic!("{name}: {e}: {}", failed.stderr));
                assert_eq!(report["exit_code"], 2, "{name}");
                assert!(
                    report["error"].as_str().unwrap().contains("forms"),
                    "{name}"
                );
            } else {
                assert!(
                    failed.stderr.contains("forms: sqlite:PATH"),
                    "{name}: {}",
                    failed.stderr
                );
            }
        }
    }
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "nothing created"
    );
}

#[tokio::test]
async fn bad_arguments_are_usage_errors() {
    let store = TestStore::new(Kind::Sqlite);
    let origin = Origin::start().await;
    seed(&store.open().await, &origin).await;
    let env = Env::new();
    // A body file that cannot be written (a directory stands there): exit 7.
    let a = origin.url("/a");
    let failed = run(
        &store.name,
        &["show", &a, "--body", arg(store.dir.path())],
        &env,
    )
    .await;
    assert!(failed.expect(7).stderr.contains("writing the body"));
    for args in [
        &["purge", "--yes"][..],
        &["purge", "--all", "--expired", "--yes"],
        &["ls", "--older-than", "soon"],
        &["ls", "--url", "a["],
        &["show"],
        &["show", "--key", "not-a-key"],
        &["rm", "--key", "0011"],
        &["frobnicate"],
    ] {
        run(&store.name, args, &env).await.expect(2);
    }
    assert_eq!(
        run(&store.name, &["stats", "--json"], &env).await.json()["entries"],
        3
    );
    let help = run(&store.name, &["--help"], &env).await.expect(0);
    assert!(help.stdout.contains("Exit codes") && help.stdout.contains("redis+cluster://"));
}

#[tokio::test]
async fn missing_embedded_stores_are_not_created() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
    std::fs::create_dir(path("not-a-cache")).unwrap();
    for name in [
        path("missing.sqlite"),
        format!("sqlite:{}", path("missing")),
        format!("sled:{}", path("missing.sled")),
        format!("fs:{}", path("missing")),
        format!("fs:{}", path("not-a-cache")),
    ] {
        let failed = run(&name, &["ls"], &Env::new()).await.expect(3);
        assert!(
            failed.stderr.contains("no cache at"),
            "{name}: {}",
            failed.stderr
        );
    }
    let import = run(
        &path("new.sqlite"),
        &["import", &path("missing")],
        &Env::new(),
    )
    .await;
    import.expect(3);
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, ["not-a-cache"], "nothing created");
    assert_eq!(std::fs::read_dir(path("not-a-cache")).unwrap().count(), 0);
}

#[tokio::test]
async fn unreachable_servers_exit_3() {
    let port = test_support::unused_port();
    let dynamo = dynamo_env(&format!("http://127.0.0.1:{port}"));
    let cases: [(String, Env); 4] = [
        (format!("redis://127.0.0.1:{port}/"), Env::new()),
        (format!("redis+cluster://127.0.0.1:{port}"), Env::new()),
        (
            format!("mongodb://127.0.0.1:{port}/db/c?directConnection=true"),
            Env::new(),
        ),
        ("dynamodb:t".to_owned(), dynamo),
    ];
    for (name, env) in &cases {
        let failed = run(name, &["stats"], env).await.expect(3);
        assert!(
            failed.stderr.contains("cannot open"),
            "{name}: {}",
            failed.stderr
        );
        assert!(failed.stdout.is_empty(), "{name}");
    }
}

#[tokio::test]
async fn missing_server_stores_are_not_created() {
    let namespace = test_support::unique_namespace("absent").replace('-', "_");
    let uri = test_support::shared_mongo().uri();
    let (base, options) = uri.split_once("/?").unwrap();
    let mongo = format!("{base}/cli/{namespace}?{options}");
    let dynamo_env = dynamo_env(&test_support::shared_dynamo().endpoint());
    let dynamo = format!("dynamodb:{namespace}");
    for (name, env) in [(&mongo, &Env::new()), (&dynamo, &dynamo_env)] {
        let failed = run(name, &["ls"], env).await.expect(3);
        assert!(
            failed.stderr.contains("not found"),
            "{name}: {}",
            failed.stderr
        );
        // Still missing: the first command did not create it.
        run(name, &["ls"], env).await.expect(3);
    }
    let no_region: Env = dynamo_env
        .into_iter()
        .filter(|(k, _)| k != "AWS_REGION")
        .collect();
    let failed = run(&dynamo, &["ls"], &no_region).await.expect(2);
    assert!(failed.stderr.contains("AWS_REGION"), "{}", failed.stderr);
}

/// `purge --older-than` selecting a Vary index older than its variants (an index keeps the
/// time it was first written) takes the variants too: left without their index, no lookup
/// reaches them again; so does `rm --key` of an index.
#[tokio::test]
async fn purging_a_vary_index_takes_its_variants() {
    use reqwest_caching::{CacheKey, EntryMeta};
    use std::time::{Duration, SystemTime};
    for by_key in [false, true] {
        let store = TestStore::new(Kind::Sqlite);
        let opened = store.open().await;
        let now = SystemTime::now();
        let key = |n: u8| CacheKey::from_digest([n; 16]);
        let url = "https://api.example/varying";
        let put = |n: u8, age: u64, parent: Option<u8>| {
            let meta = EntryMeta::new(key(n), url, now - Duration::from_secs(age), None)
                .with_url_group(Some(key(9)))
                .with_variant_of(parent.map(key));
            opened.put(StoredEntry::new(meta, Bytes::from_static(b"value")))
        };
        put(1, 7200, None).await.unwrap();
        put(2, 7200, Some(1)).await.unwrap();
        put(3, 60, Some(1)).await.unwrap();
        put(4, 60, None).await.unwrap();
        let index = key(1);
        let args: Vec<&str> = if by_key {
            vec!["rm", "--key", index.as_str(), "--json"]
        } else {
            vec!["purge", "--older-than", "1h", "--yes", "--json"]
        };
        let run = run(&store.name, &args, &store.env).await.expect(0);
        assert_eq!(run.json()["deleted"], 3, "by key: {by_key}: {}", run.stdout);
        let left: Vec<CacheKey> = raw_entries(&opened)
            .await
            .into_iter()
            .map(|e| e.meta.key)
            .collect();
        assert_eq!(left, vec![key(4)], "by key: {by_key}");
    }
}

/// Text from a store reaches the terminal with its control characters escaped: a URL or a
/// header value holding an escape sequence (ESC, or the one-character CSI that UTF-8 header
/// values may hold) would otherwise act on the terminal of whoever lists the cache.
#[tokio::test]
async fn listing_and_showing_escape_control_characters() {
    use reqwest_caching::cache_core::{CachedRequest, CachedResponse, encode};
    use reqwest_caching::{CacheKey, EntryMeta};
    let store = TestStore::new(Kind::Sqlite);
    let opened = store.open().await;
    let url = "https://x.example/\u{1b}]0;owned\u{7}\u{1b}[2J";
    let mut headers = http::HeaderMap::new();
    let csi = http::HeaderValue::from_bytes("a\u{9b}31mb".as_bytes()).unwrap();
    headers.insert("x-note", csi);
    let request = CachedRequest::new(http::Method::GET, url, http::HeaderMap::new());
    let response = CachedResponse::new(
        http::StatusCode::OK,
        http::Version::HTTP_11,
        headers,
        Bytes::from_static(b"body"),
        url,
        request,
    );
    let key = CacheKey::from_digest([7; 16]);
    let meta = EntryMeta::new(key, url, std::time::SystemTime::now(), None);
    let value = encode(&response).unwrap();
    opened.put(StoredEntry::new(meta, value)).await.unwrap();
    for args in [vec!["ls"], vec!["show", "--key", key.as_str()]] {
        let shown = run(&store.name, &args, &store.env).await.expect(0);
        let out = shown.stdout;
        assert!(
            !out.chars().any(|c| c.is_control() && c != '\n'),
            "{args:?}: {out:?}"
        );
        assert!(out.contains("\\u{1b}[2J"), "{args:?}: {out:?}");
        if args[0] == "show" {
            assert!(out.contains("a\\u{9b}31mb"), "{out:?}");
        }
    }
}

/// An export reports what it could not vouch for: an entry this build cannot read (damaged)
/// is copied as it is and counted; an import reports records the directory holds but no
/// listing shows (a damaged record), which it cannot copy. Before, both said "copied N".
#[tokio::test]
async fn transfers_count_damaged_and_unlisted_entries() {
    let (store, _origin) = tampered("/a", |value| value[..value.len() / 2].to_vec()).await;
    let out = store.dir.path().join("out");
    let exported = run(&store.name, &["export", arg(&out), "--json"], &store.env)
        .await
        .expect(0)
        .json();
    assert_eq!(exported["entries"], 3, "{exported}");
    assert_eq!(exported["unreadable"], 1, "{exported}");
    assert_eq!(exported["unlisted"], 0, "{exported}");

    let records: Vec<std::path::PathBuf> = walk(&out.join("entries"))
        .into_iter()
        .filter(|path| path.extension().is_some_and(|e| e == "json"))
        .collect();
    assert_eq!(records.len(), 3);
    std::fs::write(&records[0], b"not json").unwrap();
    let into = TestStore::new(Kind::Sqlite);
    let imported = run(&into.name, &["import", arg(&out), "--json"], &into.env)
        .await
        .expect(0);
    let report = imported.json();
    assert_eq!(report["entries"], 2, "{report}");
    assert_eq!(report["unlisted"], 1, "{report}");
    let text = run(&into.name, &["import", arg(&out)], &into.env)
        .await
        .expect(0)
        .stdout;
    assert!(text.contains("1 stored but not listed"), "{text}");
    // `stats` counts them too: before, it reported the two it lists as all there is.
    let directory = format!("fs:{}", out.display());
    let stats = run(&directory, &["stats", "--json"], &store.env)
        .await
        .expect(0)
        .json();
    assert_eq!(stats["entries"], 2, "{stats}");
    assert_eq!(stats["unlisted"], 1, "{stats}");
    let text = run(&directory, &["stats"], &store.env)
        .await
        .expect(0)
        .stdout;
    assert!(text.contains("1 more stored but not listed"), "{text}");
}

/// Every file under `dir`.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

/// The reading commands (`stats`, `ls`, `show`, the source of `export` and `copy`) leave a
/// cache directory exactly as they found it: committed fixtures (a repository keeps no empty
/// directories) with a dead writer's file an hour old, inspected in a checkout that may be
/// read-only. Opened for writing, the store recreated the shards and swept the file.
#[tokio::test]
async fn reading_commands_leave_a_cache_directory_as_it_was() {
    let store = TestStore::new(Kind::Fs);
    let origin = Origin::start().await;
    seed(&store.open().await, &origin).await;
    let root = std::path::PathBuf::from(store.name.strip_prefix("fs:").unwrap());
    test_support::remove_empty_dirs(&root);
    let shard = std::fs::read_dir(root.join("entries"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let dead = shard.join(".tmp-1234-dead-0.json");
    std::fs::write(&dead, b"{\"key\": \"half a rec").unwrap();
    test_support::backdate(&dead, std::time::Duration::from_secs(3600));
    let before = test_support::tree_snapshot(&root);

    let listed = run(&store.name, &["ls", "--json"], &Vec::new())
        .await
        .expect(0);
    assert_eq!(
        listed.json().as_array().map(Vec::len),
        Some(3),
        "{}",
        listed.stdout
    );
    let stats = run(&store.name, &["stats", "--json"], &Vec::new())
        .await
        .expect(0);
    assert_eq!(stats.json()["entries"], 3, "{}", stats.stdout);
    let url = origin.url("/a");
    run(&store.name, &["show", &url], &Vec::new())
        .await
        .expect(0);
    let out = store.dir.path().join("out");
    run(&store.name, &["export", arg(&out), "--json"], &Vec::new())
        .await
        .expect(0);
    let copy = format!("fs:{}", arg(&store.dir.path().join("copy")));
    run(
        &store.name,
        &["copy", &store.name, &copy, "--json"],
        &Vec::new(),
    )
    .await
    .expect(0);
    assert_eq!(
        test_support::tree_snapshot(&root),
        before,
        "a reading command changed the directory"
    );
}

/// A body stored compressed over the size read whole to check an entry (1 MiB) is read
/// whole anyway, up to its own bound (256 MiB), and vouched for: the store leaves such a
/// body unread when asked for less (`Opened::Unread`), and the commands then read it with
/// `get` (they took it for an opening they did not know: unreadable).
#[tokio::test]
async fn a_large_compressed_body_is_read_and_vouched_for() {
    use reqwest_caching::cache_core::codec::EntryCodec;
    use reqwest_caching::cache_core::{CachedRequest, CachedResponse, EntryMeta};

    let store = TestStore::new(Kind::Fs);
    let url = "https://example.com/large";
    let request = CachedRequest::new(http::Method::GET, url, http::HeaderMap::new());
    // Words of 8 bytes drawn from 256: LZ4 saves about half, leaving some MiB.
    let words: Vec<[u8; 8]> = (0..256u64)
        .map(|i| (i.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x5555).to_le_bytes())
        .collect();
    let mix = |i: u64| {
        let x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let x = (x ^ (x >> 29)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        (x ^ (x >> 32)) as usize % 256
    };
    let body: Vec<u8> = (0..400_000u64).flat_map(|i| words[mix(i)]).collect();
    let response = CachedResponse::new(
        http::StatusCode::OK,
        http::Version::HTTP_11,
        http::HeaderMap::new(),
        Bytes::from(body),
        url,
        request,
    );
    let key_text = "00112233445566778899aabbccddeeff";
    let key = key_text.parse().unwrap();
    let value = EntryCodec::new()
        .compress_above(1)
        .encode(Some(&key), &response)
        .unwrap();
    assert!(reqwest_caching::cache_core::codec::body_is_compressed(
        &value
    ));
    assert!(value.len() > 1 << 20, "{}", value.len());
    let meta = EntryMeta::new(key, url, std::time::SystemTime::now(), None);
    store
        .open()
        .await
        .put(StoredEntry::new(meta, value))
        .await
        .unwrap();

    assert_eq!(entries_and_unreadable(&store).await, (1, 0));
    let shown = run(&store.name, &["show", "--key", key_text], &Env::new()).await;
    let shown = shown.expect(0);
    assert!(shown.stdout.contains("200"), "{}", shown.stdout);
}

/// Standard output closed by its reader (`ls | head -1`, `show --body - | head -c 100`) ends
/// the command quietly with 0: `println!` panicked there (exit 101), and a body written to it
/// failed as a local file that could not be written (exit 7).
#[tokio::test]
async fn a_closed_standard_output_ends_the_command_quietly() {
    let store = crate::stores::TestStore::new(Kind::Sqlite);
    let origin = Origin::start().await;
    seed(&store.open().await, &origin).await;
    let a = origin.url("/a");
    for args in [
        vec!["ls"],
        vec!["stats"],
        vec!["show", a.as_str()],
        vec!["show", a.as_str(), "--body", "-"],
    ] {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_reqwest-caching"))
            .arg("--store")
            .arg(&store.name)
            .args(&args)
            .env_remove("REQWEST_CACHING_STORE")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Closed before the command writes anything: its first line meets no reader.
        drop(child.stdout.take());
        let output = tokio::task::spawn_blocking(move || child.wait_with_output())
            .await
            .unwrap()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(0), "{args:?}: {stderr}");
        assert!(stderr.is_empty(), "{args:?}: {stderr}");
    }
}
