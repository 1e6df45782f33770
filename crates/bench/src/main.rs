//! One run, side by side: plain reqwest over loopback, the two floors, reqwest-caching's
//! stores, and http-cache-reqwest (moka, redb). Prints medians, p99 and the ratios the
//! project's targets are stated in.
//!
//! `cargo run --release -p bench` (set `REDIS_URL` to include Redis);
//! `... -- scale [entries]`: hit latency with 1 k against many entries (SQLite, sled);
//! `... -- compression`: hit cost and stored size of LZ4-compressed bodies.
//! `... -- big-body [MiB]`: peak memory while a 100 MB response streams through uncached,
//! with that `max_body_size` (default 8, the middleware default).

mod compression;
mod floors;
mod origin;
mod scale;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest_caching::reqwest_middleware::{ClientBuilder, ClientWithMiddleware};
use reqwest_caching::{CacheMiddleware, MemoryStore, SledStore, SqliteStore};

const WARMUP: usize = 2_000;
const ITERATIONS: usize = 20_000;
const MISSES: usize = 2_000;
const TASKS: usize = 64;
const HITS_PER_TASK: usize = 2_000;
/// Each measurement is repeated this many times, interleaved; the best median counts.
const ROUNDS: usize = 3;

#[derive(Clone, Copy)]
pub(crate) struct Stats {
    pub(crate) median: Duration,
    pub(crate) p99: Duration,
}

fn stats(mut samples: Vec<Duration>) -> Stats {
    samples.sort();
    Stats {
        median: samples[samples.len() / 2],
        p99: samples[samples.len() * 99 / 100],
    }
}

async fn time_requests(client: &ClientWithMiddleware, urls: &[String], iterations: usize) -> Stats {
    let mut samples = Vec::with_capacity(iterations);
    for i in 0..iterations {
        let url = &urls[i % urls.len()];
        let started = Instant::now();
        let body = client
            .get(url)
            .send()
            .await
            .expect("request")
            .bytes()
            .await
            .expect("body");
        samples.push(started.elapsed());
        std::hint::black_box(body);
    }
    stats(samples)
}

pub(crate) async fn hits(client: &ClientWithMiddleware, url: &str) -> Stats {
    let urls = vec![url.to_owned()];
    time_requests(client, &urls, WARMUP).await;
    time_requests(client, &urls, ITERATIONS).await
}

async fn concurrent_hits_per_second(client: &ClientWithMiddleware, url: &str) -> f64 {
    hits(client, url).await;
    let started = Instant::now();
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let client = client.clone();
            let url = url.to_owned();
            tokio::spawn(async move {
                for _ in 0..HITS_PER_TASK {
                    let body = client
                        .get(&url)
                        .send()
                        .await
                        .expect("request")
                        .bytes()
                        .await
                        .expect("body");
                    std::hint::black_box(body);
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("task");
    }
    (TASKS * HITS_PER_TASK) as f64 / started.elapsed().as_secs_f64()
}

fn plain() -> ClientWithMiddleware {
    ClientBuilder::new(reqwest::Client::new()).build()
}

fn ours(store: impl reqwest_caching::CacheStore) -> ClientWithMiddleware {
    let cache = CacheMiddleware::builder()
        .store(store)
        .build()
        .expect("cache");
    cache.into_client(reqwest::Client::new())
}

fn peer(manager: impl http_cache_reqwest::CacheManager) -> ClientWithMiddleware {
    use http_cache_reqwest::{Cache, CacheMode, HttpCache, HttpCacheOptions};
    ClientBuilder::new(reqwest::Client::new())
        .with(Cache(HttpCache {
            mode: CacheMode::Default,
            manager,
            options: HttpCacheOptions::default(),
        }))
        .build()
}

struct Row {
    name: String,
    stats: Stats,
}

/// Records `stats` under `name`, keeping the best median seen over the rounds.
fn keep_best(rows: &mut Vec<Row>, name: &str, stats: Stats) {
    match rows.iter_mut().find(|r| r.name == name) {
        Some(row) if stats.median < row.stats.median => row.stats = stats,
        Some(_) => {}
        None => rows.push(Row {
            name: name.to_owned(),
            stats,
        }),
    }
}

fn print_rows(title: &str, rows: &[Row]) {
    println!("\n{title}");
    println!("  {:<34} {:>12} {:>12}", "", "median", "p99");
    for row in rows {
        println!(
            "  {:<34} {:>10.2}µs {:>10.2}µs",
            row.name,
            micros(row.stats.median),
            micros(row.stats.p99)
        );
    }
}

pub(crate) fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64()
}

fn find(rows: &[Row], name: &str) -> Duration {
    rows.iter()
        .find(|r| r.name == name)
        .map(|r| r.stats.median)
        .unwrap_or_default()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    match std::env::args().nth(1).as_deref() {
        Some("scale") => {
            let entries = std::env::args()
                .nth(2)
                .and_then(|n| n.parse().ok())
                .unwrap_or(1_000_000);
            return scale::run(entries).await;
        }
        Some("big-body") => {
            // One limit per process: the peak is a high-water mark.
            let limit_mib = std::env::args()
                .nth(2)
                .and_then(|n| n.parse().ok())
                .unwrap_or(8);
            return scale::big_body(limit_mib).await;
        }
        Some("compression") => return compression::run().await,
        _ => {}
    }
    if std::env::args().nth(1).as_deref() == Some("profile-memory-hits") {
        // For profilers: only memory hits, no comparison.
        let origin = origin::start().await;
        let url = format!("{origin}/body/1024");
        let stats = hits(&ours(MemoryStore::new()), &url).await;
        println!("memory hit median {:.2}µs", micros(stats.median));
        return;
    }
    let origin = origin::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let mut report = Vec::new();

    for size in [1024usize, 64 * 1024] {
        let url = format!("{origin}/body/{size}");
        let bodies: HashMap<String, Bytes> =
            HashMap::from([(url.clone(), Bytes::from(vec![b'x'; size]))]);
        let memory_floor = ClientBuilder::new(reqwest::Client::new())
            .with(floors::MemoryFloor {
                bodies: Arc::new(bodies.clone()),
            })
            .build();
        let sqlite_floor = ClientBuilder::new(reqwest::Client::new())
            .with(floors::SqliteFloor::new(
                &dir.path().join(format!("floor-{size}.sqlite")),
                &bodies,
            ))
            .build();
        let sled_store =
            SledStore::open(dir.path().join(format!("ours-{size}.sled"))).expect("sled");
        let mut clients: Vec<(String, ClientWithMiddleware)> = vec![
            ("plain reqwest (network)".into(), plain()),
            ("floor: memory".into(), memory_floor),
            ("floor: sqlite".into(), sqlite_floor),
            ("ours: memory".into(), ours(MemoryStore::new())),
            (
                "ours: sqlite".into(),
                ours(
                    SqliteStore::open(dir.path().join(format!("ours-{size}.sqlite")))
                        .expect("sqlite"),
                ),
            ),
            ("ours: sled".into(), ours(sled_store)),
            (
                "peer: moka".into(),
                peer(http_cache_reqwest::MokaManager::new(
                    moka::future::Cache::new(10_000),
                )),
            ),
            (
                "peer: redb".into(),
                peer(
                    http_cache_reqwest::RedbManager::new(
                        dir.path().join(format!("peer-{size}.redb")),
                    )
                    .expect("redb"),
                ),
            ),
        ];
        if let Ok(redis_url) = std::env::var("REDIS_URL") {
            let store = reqwest_caching::RedisStore::builder()
                .prefix("bench")
                .open(&redis_url)
                .await
                .expect("redis");
            clients.push(("ours: redis".into(), ours(store)));
        }
        // Rounds interleave the clients, and each keeps its best median: a noisy neighbour
        // then slows one round, not one client.
        let mut rows: Vec<Row> = Vec::new();
        for _ in 0..ROUNDS {
            for (name, client) in &clients {
                let stats = hits(client, &url).await;
                keep_best(&mut rows, name, stats);
            }
        }
        print_rows(
            &format!("hit, {} KiB body ({ITERATIONS} requests each)", size / 1024),
            &rows,
        );
        let floor = find(&rows, "floor: memory");
        let sqlite_floor = find(&rows, "floor: sqlite");
        report.push(format!(
            "memory hit / memory floor, {} KiB: {:.2} (target <= 1.5)",
            size / 1024,
            ratio(find(&rows, "ours: memory"), floor)
        ));
        report.push(format!(
            "sqlite hit / sqlite floor, {} KiB: {:.2} (target <= 2)",
            size / 1024,
            ratio(find(&rows, "ours: sqlite"), sqlite_floor)
        ));
        report.push(format!(
            "sled hit / memory floor, {} KiB: {:.2} (target <= 2)",
            size / 1024,
            ratio(find(&rows, "ours: sled"), floor)
        ));
        report.push(format!(
            "peer moka hit / memory floor, {} KiB: {:.2}",
            size / 1024,
            ratio(find(&rows, "peer: moka"), floor)
        ));
    }

    // Misses: every request a new URL, fetched and stored.
    let miss_urls = |tag: &str| -> Vec<String> {
        (0..MISSES)
            .map(|i| format!("{origin}/body/1024?{tag}={i}"))
            .collect()
    };
    // New URLs every round, best median per client, as for hits.
    let memory = ours(MemoryStore::new());
    let sqlite = ours(SqliteStore::open(dir.path().join("miss.sqlite")).expect("sqlite"));
    let miss_clients = [
        ("plain reqwest (network)", plain()),
        ("ours: memory", memory),
        ("ours: sqlite", sqlite),
    ];
    let mut rows: Vec<Row> = Vec::new();
    for round in 0..ROUNDS {
        for (name, client) in &miss_clients {
            let stats = time_requests(client, &miss_urls(&format!("r{round}")), MISSES).await;
            keep_best(&mut rows, name, stats);
        }
    }
    print_rows(
        &format!("miss (fetch + store), 1 KiB body ({MISSES} requests each)"),
        &rows,
    );
    let network = find(&rows, "plain reqwest (network)");
    report.push(format!(
        "memory miss / plain: {:.2} (target <= 1.4)",
        ratio(find(&rows, "ours: memory"), network)
    ));
    report.push(format!(
        "sqlite miss / plain: {:.2} (target <= 2.6)",
        ratio(find(&rows, "ours: sqlite"), network)
    ));

    // 64 tasks on 2 workers.
    let url = format!("{origin}/body/1024");
    let bodies = HashMap::from([(url.clone(), Bytes::from(vec![b'x'; 1024]))]);
    let floor = ClientBuilder::new(reqwest::Client::new())
        .with(floors::MemoryFloor {
            bodies: Arc::new(bodies),
        })
        .build();
    let floor_rate = concurrent_hits_per_second(&floor, &url).await;
    let ours_rate = concurrent_hits_per_second(&ours(MemoryStore::new()), &url).await;
    let peer_rate = concurrent_hits_per_second(
        &peer(http_cache_reqwest::MokaManager::new(
            moka::future::Cache::new(10_000),
        )),
        &url,
    )
    .await;
    println!("\n{TASKS} tasks on 2 workers, memory hits per second");
    println!(
        "  floor: memory {floor_rate:>12.0}\n  ours: memory  {ours_rate:>12.0}\n  peer: moka    {peer_rate:>12.0}"
    );
    report.push(format!(
        "64 tasks, ours / floor: {:.2} (target >= 0.5); peer moka / floor: {:.2}",
        ours_rate / floor_rate,
        peer_rate / floor_rate
    ));

    println!("\nratios (one run)");
    for line in report {
        println!("  {line}");
    }
}
