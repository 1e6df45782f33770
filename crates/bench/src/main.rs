//! One run, side by side in one process: reqwest-caching's stores, the floors (the least work
//! a cache can do with the same storage), http-cache-reqwest, and plain reqwest, on the shapes
//! users send: URLs with three query parameters (and plain URLs as a second row, and 1 KiB
//! responses with a typical API head that varies on `Accept-Encoding` as a third), 100
//! distinct URLs per hit row, 1,000 for the concurrent run, 1 KiB and 64 KiB bodies, a
//! memory hit row with a bearer token on every request, as API clients send, and hit rows
//! over 10,000 URLs (memory, SQLite, sled), whose entries no longer stay in the processor's
//! caches. Prints medians
//! and p99, then the ratio table with the targets and a pass/fail column.
//!
//! `cargo run --release -p bench` runs it (Redis rows when `redis-server` is installed, as the
//! tests install it, or `REDIS_URL` names a server); `-- --out DIR` also writes the table as
//! Markdown and the hit chart as SVG there (default `target/bench`); `-- --readme` writes them
//! into README.md and docs/bench-hits.svg.
//! `... -- scale [entries]`: hit latency with 1 k against many entries (SQLite, sled);
//! `... -- many-keys [urls]`: hits spread over many URLs, decoded copies on and off;
//! `... -- compression`: hit cost and stored size of LZ4-compressed bodies.
//! `... -- big-body [MiB]`: peak memory while a 100 MB response streams through uncached,
//! with that `max_body_size` (default 8, the middleware default).
//! `... -- big-body-fs [MiB]`: peak memory while a body that large (default 1024) passes
//! through the cache over an `FsStore`, written while it streams, then served from its file.
//! `... -- profile-hits [memory|memory-roomy|sqlite|sled|redis|tiered|token|floor|floor-head|
//! floor-sqlite|floor-sled|floor-sled-head|floor-redis|floor-token] [plain|many|api]`
//! (`floor-head`, `floor-sled-head`: the floors answering the origin's head whatever the
//! shape, as the 10,000-URL rows' second floors; `token`: memory with a bearer token;
//! `tiered`: the memory tier over Redis): only hits of one store (or floor), 100 URLs with a query (or plain, or 10,000
//! with a query: more than the memory store holds by default, `memory-roomy` holds them all;
//! or 100 with a query answered with a typical API head, which varies on `Accept-Encoding`),
//! for profilers.
//! `... -- profile-concurrent [memory|sqlite|sled|floor|floor-sqlite|floor-sled] [hot]`: the concurrent
//! row of one store alone (or all tasks on one URL), with latency percentiles.
//! `... -- profile-concurrent-misses [memory|sqlite|sled|plain|floor-memory|floor-sqlite|
//! floor-sled]`: 64 tasks fetching new URLs at once (12,800 misses a run), with misses per
//! second and latency percentiles.
//! `... -- profile-concurrent-mixed [memory|sqlite|sqlite-commit-each|sled]`: 64 tasks over
//! 1,000 URLs stored beforehand, one request in ten to a new URL (a crawler revisiting with
//! new pages among them), with requests per second and latency percentiles.
//! `... -- miss-rows [BYTES]`: only the miss rows and their checks (bodies of BYTES, 1024 by default).
//! `... -- many-key-rows`, `... -- api-rows`: only the hit rows over 10,000 URLs, or only those
//! of the typical API head (Vary), with their checks.
//! `... -- profile-misses [memory|sqlite|sled|redis|plain|floor-memory|floor-memory-head|
//! floor-memory-copying|floor-sqlite|floor-sled|floor-redis|timed-memory|timed-sqlite|
//! timed-sled|timed-redis]
//! [BYTES]`: only misses, of BYTES bodies (1024 by default; the `timed-` forms also time
//! each store call the misses make).
//! A profile mode given a store it does not know says so and exits with status 2.
//! `... -- tiered-invalidation [writes]`: how long a write takes to drop the memory tier's
//! copy in a second process (this binary again) over Redis: p50 and p99 over 1,000 writes.

mod big_files;
mod chart;
mod compression;
mod floors;
mod many_keys;
mod measure;
mod origin;
mod report;
mod rounds;
mod scale;
mod tiered;
mod timed;
mod token;

use std::path::{Path, PathBuf};

use reqwest_caching::reqwest_middleware::{ClientBuilder, ClientWithMiddleware};
use reqwest_caching::{CacheMiddleware, MemoryStore, SledStore, SqliteStore};

use floors::Answer;
use measure::{ITERATIONS, REMOTE_ITERATIONS, Throughput, concurrent, time_requests};
pub(crate) use measure::{Stats, hits, micros};
use report::{Check, Target};

/// Distinct URLs each hit row cycles through.
const HIT_URLS: usize = 100;

/// URLs for `profile-hits STORE many`: more than the decoded copies and the memory store's
/// default capacity hold.
const MANY_URLS: usize = 10_000;
/// Distinct URLs of the concurrent run, and its tasks.
const CONCURRENT_URLS: usize = 1_000;
const TASKS: usize = 64;
const REQUESTS_PER_TASK: usize = 2_000;
/// Floor-and-ours pairs of the concurrent rows (odd: one median).
const CONCURRENT_PAIRS: usize = 5;
const MISSES: usize = 2_000;
/// Miss rows: rounds, and new URLs per contender and round (see `miss_rows`).
const MISS_ROUNDS: usize = 20;
const MISS_BLOCK: usize = 250;

/// How the URLs of a row look.
#[derive(Clone, Copy, PartialEq)]
enum Shape {
    /// `/body/1024?sort=name&page=7&per_page=50`: three parameters, not in sorted order.
    Query,
    /// `/body/1024/7`.
    Plain,
    /// `/api/1024?sort=name&page=7&per_page=50`: the query shape, answered with a typical
    /// API head (a dozen fields, `Vary: Accept-Encoding`; see `origin`).
    Api,
}

impl Shape {
    fn name(self) -> &'static str {
        match self {
            Shape::Query => "3-param query",
            Shape::Plain => "plain URL",
            Shape::Api => "API head, Vary",
        }
    }

    /// What the floors answer with in this shape's rows: the origin's head where the head is
    /// the subject (see [`floors::Answer`]).
    fn floor_answer(self) -> Answer {
        match self {
            Shape::Api => Answer::Head,
            Shape::Query | Shape::Plain => Answer::Body,
        }
    }
}

fn urls(origin: &str, size: usize, shape: Shape, count: usize, tag: &str) -> Vec<String> {
    (0..count)
        .map(|i| match shape {
            Shape::Query => format!("{origin}/body/{size}?sort=name{tag}&page={i}&per_page=50"),
            Shape::Plain => format!("{origin}/body/{size}/{i}{tag}"),
            Shape::Api => format!("{origin}/api/{size}?sort=name{tag}&page={i}&per_page=50"),
        })
        .collect()
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

/// A named client of one row group.
struct Contender {
    name: &'static str,
    client: ClientWithMiddleware,
}

/// Median and p99 per contender.
struct Results(Vec<(&'static str, Stats)>);

impl Results {
    fn median(&self, name: &str) -> Option<f64> {
        self.0
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, s)| micros(s.median))
    }

    fn print(&self, title: &str) {
        println!("\n{title}");
        println!("  {:<28} {:>12} {:>12}", "", "median", "p99");
        for (name, stats) in &self.0 {
            println!(
                "  {:<28} {:>10.2}µs {:>10.2}µs",
                name,
                micros(stats.median),
                micros(stats.p99)
            );
        }
    }
}

/// A Redis server for the Redis rows: `REDIS_URL`, or one started as the tests start theirs.
enum Redis {
    Given(String),
    Started(test_support::RedisServer),
}

impl Redis {
    fn find() -> Option<Self> {
        if let Ok(url) = std::env::var("REDIS_URL") {
            return Some(Redis::Given(url));
        }
        if !test_support::binary_on_path("redis-server") {
            println!(
                "(no Redis rows: redis-server is not installed; scripts/install-test-servers.sh installs it)"
            );
            return None;
        }
        // Unpinned: a pinned run (`taskset -c 0`) pins the client and the origin, not the
        // server, which would otherwise take turns with them on that CPU.
        Some(Redis::Started(
            test_support::RedisServer::start_on_every_cpu(),
        ))
    }

    fn url(&self) -> String {
        match self {
            Redis::Given(url) => url.clone(),
            Redis::Started(server) => server.url(),
        }
    }

    /// The Redis floor, our Redis store and our Redis store behind the memory tier, each
    /// under its own fresh prefix.
    async fn contenders(&self, label: &str, answer: Answer) -> [Contender; 3] {
        let prefix = test_support::unique_namespace(label);
        [
            Contender {
                name: "floor: redis",
                client: floors::redis(&self.url(), &format!("{prefix}-floor"), answer).await,
            },
            Contender {
                name: "ours: redis",
                client: self.ours(&prefix).await,
            },
            Contender {
                name: "ours: tiered redis",
                client: ours(tiered::over_redis(&self.url(), &format!("{prefix}-tiered")).await),
            },
        ]
    }

    async fn ours(&self, prefix: &str) -> ClientWithMiddleware {
        ours(self.store(prefix).await)
    }

    /// Our Redis store on this server, under `prefix`.
    async fn store(&self, prefix: &str) -> reqwest_caching::RedisStore {
        reqwest_caching::RedisStore::builder()
            .prefix(prefix)
            .open(&self.url())
            .await
            .expect("redis")
    }
}

/// The SQLite and sled floors and our memory, SQLite and sled stores, on files named by `tag`
/// (the memory floor differs between hits and misses: each row kind adds its own).
fn local_contenders(dir: &Path, tag: &str, answer: Answer) -> [Contender; 5] {
    [
        Contender {
            name: "floor: sqlite",
            client: floors::sqlite(&dir.join(format!("floor-{tag}.sqlite")), answer),
        },
        Contender {
            name: "floor: sled",
            client: floors::sled(&dir.join(format!("floor-{tag}.sled")), answer),
        },
        Contender {
            name: "ours: memory",
            client: ours(MemoryStore::new()),
        },
        Contender {
            name: "ours: sqlite",
            client: ours(
                SqliteStore::open(dir.join(format!("ours-{tag}.sqlite"))).expect("sqlite"),
            ),
        },
        Contender {
            name: "ours: sled",
            client: ours(SledStore::open(dir.join(format!("ours-{tag}.sled"))).expect("sled")),
        },
    ]
}

/// Hit rows of one body size and URL shape; adds their checks.
async fn hit_rows(
    origin: &str,
    dir: &Path,
    redis: Option<&Redis>,
    size: usize,
    shape: Shape,
    checks: &mut Vec<Check>,
) -> Results {
    let tag = format!("{size}-{}", shape as u8);
    let urls = urls(origin, size, shape, HIT_URLS, "");
    let mut contenders = vec![Contender {
        name: "floor: memory",
        client: floors::memory_prefilled(&urls, shape.floor_answer()).await,
    }];
    contenders.extend(local_contenders(dir, &tag, shape.floor_answer()));
    contenders.extend([
        Contender {
            name: "peer: moka",
            client: peer(http_cache_reqwest::MokaManager::new(
                moka::future::Cache::new(10_000),
            )),
        },
        Contender {
            name: "peer: redb",
            client: peer(
                http_cache_reqwest::RedbManager::new(dir.join(format!("peer-{tag}.redb")))
                    .expect("redb"),
            ),
        },
    ]);
    let mut remote = Vec::new();
    if let Some(redis) = redis {
        let [floor, ours, tiered] = redis.contenders("bench", shape.floor_answer()).await;
        // The tiered store answers from its memory tier: timed in blocks as long as the
        // other in-process contenders', where a short block's median is its cold start.
        contenders.push(tiered);
        remote.extend([floor, ours]);
    }
    let first_remote = contenders.len();
    contenders.extend(remote);
    let rounds = rounds::run(&contenders, &urls, first_remote).await;
    let results = rounds.results();
    results.print(&format!(
        "hit, {} KiB body, {} ({HIT_URLS} URLs, {} rounds of {} requests each, {} over Redis)",
        size / 1024,
        shape.name(),
        rounds::ROUNDS,
        rounds::BLOCK,
        rounds::REMOTE_BLOCK,
    ));
    let what = format!("{} KiB, {}", size / 1024, shape.name());
    hit_checks(&rounds, &what, HIT_TARGETS, checks);
    // The memory tier's hit over Redis against our memory store's hit: what Redis costs
    // once memory answers.
    checks.extend(median_check(
        &rounds,
        ("ours: tiered redis", "ours: memory"),
        format!("tiered redis hit vs memory hit, {what}"),
        Some(Target::AtMost(1.3)),
    ));
    checks.extend(median_check(
        &rounds,
        ("peer: moka", "floor: memory"),
        format!("peer (moka) hit, {what}"),
        None,
    ));
    results
}

/// The hit targets: each store's hit at most this many times its floor's.
const HIT_TARGETS: &[(&str, f64)] = &[
    ("memory", 1.3),
    ("sqlite", 1.5),
    ("sled", 1.5),
    ("redis", 1.2),
];

/// A check per store of `targets` that has both ours and its floor in `rounds`: its hit
/// against the floor's, in the row `what` names.
fn hit_checks(
    rounds: &rounds::Rounds,
    what: &str,
    targets: &[(&str, f64)],
    checks: &mut Vec<Check>,
) {
    for &(store, target) in targets {
        checks.extend(median_check(
            rounds,
            (&format!("ours: {store}"), &format!("floor: {store}")),
            format!("{store} hit, {what}"),
            Some(Target::AtMost(target)),
        ));
    }
}

/// The check of contender `ours` against `floor`, when the rounds timed both: their medians,
/// and the ratio judged round by round ([`rounds::Rounds::ratio`]).
fn median_check(
    rounds: &rounds::Rounds,
    (ours, floor): (&str, &str),
    measure: String,
    target: Option<Target>,
) -> Option<Check> {
    Some(Check {
        measure,
        ours: rounds.median(ours)?,
        floor: rounds.median(floor)?,
        unit: "µs",
        target,
        paired: Some(rounds.ratio(ours, floor)?),
    })
}

/// Misses of `size`-byte bodies, URLs with a query: every request a new URL, fetched and
/// stored. The checks compare the time each adds over plain reqwest in the same run.
async fn miss_rows(
    origin: &str,
    dir: &Path,
    redis: Option<&Redis>,
    size: usize,
    checks: &mut Vec<Check>,
) {
    let mut contenders = vec![
        Contender {
            name: "plain reqwest",
            client: plain(),
        },
        Contender {
            name: "floor: memory",
            client: floors::memory(Answer::Body),
        },
        // Keeps and answers with the origin's head, as a cache must: how much of what ours
        // adds is the head's, not the cache's other work.
        Contender {
            name: "floor: memory, with head",
            client: floors::memory(Answer::Head),
        },
    ];
    contenders.extend(local_contenders(dir, "miss", Answer::Body));
    if let Some(redis) = redis {
        contenders.extend(redis.contenders("bench-miss", Answer::Body).await);
    }
    // Short blocks of each contender in turn, each round starting with the next one: the
    // machine's drift (a few µs over seconds, as large as what a store adds) then reaches
    // every contender alike, and a store's deferred work (checkpoints, flushes) lands on a
    // different neighbour each round. What a contender adds is the median, over rounds, of
    // its block's median less plain reqwest's in the same round.
    let mut blocks: Vec<Vec<f64>> = vec![Vec::new(); contenders.len()];
    let mut samples: Vec<Vec<std::time::Duration>> = vec![Vec::new(); contenders.len()];
    for round in 0..MISS_ROUNDS {
        for k in 0..contenders.len() {
            let i = (round + k) % contenders.len();
            // New URLs for every contender and round: each request is a miss.
            let urls = urls(
                origin,
                size,
                Shape::Query,
                MISS_BLOCK,
                &format!("-r{round}c{i}"),
            );
            let block = measure::time_each(&contenders[i].client, &urls, MISS_BLOCK).await;
            samples[i].extend(&block);
            blocks[i].push(micros(measure::stats(block).median));
        }
    }
    let mut results = Results(Vec::new());
    for (contender, samples) in contenders.iter().zip(samples) {
        results.0.push((contender.name, measure::stats(samples)));
    }
    results.print(&format!(
        "miss (fetch + store), {} KiB body, 3-param query ({MISS_ROUNDS} rounds of \
         {MISS_BLOCK} new URLs each)",
        size / 1024
    ));
    let index = |name: &str| contenders.iter().position(|c| c.name == name);
    let Some(plain_index) = index("plain reqwest") else {
        return;
    };
    // Each contender's block median less plain reqwest's, round by round, sorted.
    let differences = |i: usize| {
        let mut differences: Vec<f64> = blocks[i]
            .iter()
            .zip(&blocks[plain_index])
            .map(|(ours, plain)| ours - plain)
            .collect();
        differences.sort_by(f64::total_cmp);
        differences
    };
    let added = |name: &str| {
        let differences = differences(index(name)?);
        differences.get(differences.len() / 2).copied()
    };
    // The spread says when a ratio of two such differences means little: when a floor adds
    // about nothing, its quartiles straddle zero.
    println!("  time added over plain reqwest, per round: median [quartiles]");
    for (i, contender) in contenders
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != plain_index)
    {
        let differences = differences(i);
        let at = |q: usize| {
            differences
                .get(differences.len() * q / 4)
                .copied()
                .unwrap_or(f64::NAN)
        };
        println!(
            "  {:<28} {:>9.2}µs [{:.2}, {:.2}]",
            contender.name,
            at(2),
            at(1),
            at(3)
        );
    }
    for (store, floor_store, target) in [
        ("memory", "memory", 1.5),
        ("memory", "memory, with head", f64::NAN),
        ("sqlite", "sqlite", 1.5),
        ("sled", "sqlite", 2.0),
        ("sled", "sled", f64::NAN),
        ("redis", "redis", 1.3),
    ] {
        let (Some(ours), Some(floor)) = (
            added(&format!("ours: {store}")),
            added(&format!("floor: {floor_store}")),
        ) else {
            continue;
        };
        checks.push(Check {
            measure: format!(
                "{store} miss{}, time added over plain, vs {}",
                match size {
                    1024 => String::new(),
                    other => format!(" {} KiB", other / 1024),
                },
                match floor_store {
                    "memory, with head" => {
                        "a floor keeping and answering the origin's head".to_owned()
                    }
                    _ => format!("{floor_store} floor's"),
                }
            ),
            ours,
            floor,
            unit: "µs",
            target: (!target.is_nan()).then_some(Target::AtMost(target)),
            paired: None,
        });
    }
}

/// 64 tasks on 2 workers over 1,000 URLs with a query, 1 KiB bodies.
async fn concurrent_rows(origin: &str, dir: &Path, checks: &mut Vec<Check>) {
    let urls = urls(origin, 1024, Shape::Query, CONCURRENT_URLS, "-c");
    let pairs: Vec<(&str, ClientWithMiddleware, ClientWithMiddleware)> = vec![
        (
            "memory",
            floors::memory_prefilled(&urls, Answer::Body).await,
            ours(MemoryStore::new()),
        ),
        (
            "sqlite",
            floors::sqlite(&dir.join("concurrent-floor.sqlite"), Answer::Body),
            ours(SqliteStore::open(dir.join("concurrent-ours.sqlite")).expect("sqlite")),
        ),
        (
            "sled",
            floors::sled(&dir.join("concurrent-floor.sled"), Answer::Body),
            ours(SledStore::open(dir.join("concurrent-ours.sled")).expect("sled")),
        ),
    ];
    let peer_client = peer(http_cache_reqwest::MokaManager::new(
        moka::future::Cache::new(10_000),
    ));
    println!(
        "\n{TASKS} tasks on 2 workers, {CONCURRENT_URLS} URLs, 1 KiB: hits/s, per-request median / p99"
    );
    let show = |name: &str, t: &Throughput| {
        println!(
            "  {name:<16} {:>10.0}/s {:>10.2}µs {:>10.2}µs",
            t.per_second,
            micros(t.per_request.median),
            micros(t.per_request.p99)
        );
    };
    for (store, floor, ours) in &pairs {
        // Pairs measured back to back, each starting with the other side in turn: this
        // machine's speed drifts by half over seconds, so each side's best run may come from
        // another mode. The row is the pair whose ratio is the median.
        let mut runs: Vec<(Throughput, Throughput)> = Vec::new();
        for pair in 0..CONCURRENT_PAIRS {
            let (first, second) = if pair % 2 == 0 {
                (floor, ours)
            } else {
                (ours, floor)
            };
            let a = concurrent(first, &urls, TASKS, REQUESTS_PER_TASK).await;
            let b = concurrent(second, &urls, TASKS, REQUESTS_PER_TASK).await;
            runs.push(if pair % 2 == 0 { (a, b) } else { (b, a) });
        }
        runs.sort_by(|(f1, o1), (f2, o2)| {
            (o1.per_second / f1.per_second).total_cmp(&(o2.per_second / f2.per_second))
        });
        let (floor_run, ours_run) = runs[runs.len() / 2];
        show(&format!("floor: {store}"), &floor_run);
        show(&format!("ours: {store}"), &ours_run);
        let target = (*store != "sled").then_some(Target::AtLeast(0.6));
        checks.push(Check {
            measure: format!("{TASKS} tasks, {CONCURRENT_URLS} URLs, {store}: hits/s"),
            ours: ours_run.per_second,
            floor: floor_run.per_second,
            unit: "hits/s",
            target,
            paired: None,
        });
        checks.push(Check {
            measure: format!("{TASKS} tasks, {store}: our p99 / our median"),
            ours: micros(ours_run.per_request.p99),
            floor: micros(ours_run.per_request.median),
            unit: "µs",
            target: (*store != "sled").then_some(Target::AtMost(5.0)),
            paired: None,
        });
    }
    let peer_rate = concurrent(&peer_client, &urls, TASKS, REQUESTS_PER_TASK).await;
    show("peer: moka", &peer_rate);
}

/// Where the Markdown table and the chart go.
enum Output {
    Dir(PathBuf),
    Readme,
}

fn chart_groups(results: &Results) -> Vec<chart::Group> {
    let mut groups = Vec::new();
    for (store, label, peer) in [
        ("memory", "memory", Some(("moka", "peer: moka"))),
        ("sqlite", "SQLite", Some(("redb", "peer: redb"))),
        // Redis is left out: a network round trip (about 100 µs here) would flatten the
        // in-process bars; its rows are in the table.
        ("sled", "sled", None),
    ] {
        let (Some(floor), Some(ours)) = (
            results.median(&format!("floor: {store}")),
            results.median(&format!("ours: {store}")),
        ) else {
            continue;
        };
        groups.push(chart::Group {
            store: label,
            floor,
            ours,
            peer: peer.and_then(|(name, row)| results.median(row).map(|v| (name, v))),
        });
    }
    groups
}

fn write_outputs(output: &Output, checks: &[Check], chart_results: &Results) {
    let table = report::markdown(checks);
    let (table_path, svg_path) = match output {
        Output::Dir(dir) => {
            std::fs::create_dir_all(dir).expect("output dir");
            (dir.join("report.md"), dir.join("hits.svg"))
        }
        Output::Readme => (PathBuf::new(), PathBuf::from("docs/bench-hits.svg")),
    };
    if let Some(parent) = svg_path.parent() {
        std::fs::create_dir_all(parent).expect("chart dir");
    }
    let title = "Hit latency of the in-process stores, 1 KiB body, URLs with a 3-parameter query";
    if let Err(error) = chart::hits_svg(&svg_path, title, &chart_groups(chart_results)) {
        eprintln!("chart not written: {error}");
    }
    match output {
        Output::Dir(_) => {
            std::fs::write(&table_path, &table).expect("write report");
            println!(
                "\nwrote {} and {}",
                table_path.display(),
                svg_path.display()
            );
        }
        Output::Readme => {
            let readme = std::fs::read_to_string("README.md").expect("README.md here");
            let (start, end) = ("<!-- bench:start -->", "<!-- bench:end -->");
            let (Some(a), Some(b)) = (readme.find(start), readme.find(end)) else {
                panic!("README.md has no {start} ... {end} section");
            };
            let updated = format!("{}{start}\n{table}{}", &readme[..a], &readme[b..]);
            std::fs::write("README.md", updated).expect("write README.md");
            println!("\nwrote README.md and {}", svg_path.display());
        }
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let number = |default: u64| args.get(1).and_then(|n| n.parse().ok()).unwrap_or(default);
    match args.first().map(String::as_str) {
        Some("scale") => return scale::run(number(1_000_000) as usize).await,
        Some("many-keys") => return many_keys::run(number(100_000) as usize).await,
        // One limit per process: the peak is a high-water mark.
        Some("big-body") => return scale::big_body(number(8)).await,
        Some("big-body-fs") => return big_files::run(number(1024)).await,
        Some("copy-fs") => return big_files::copy(number(1024)).await,
        Some("compression") => return compression::run().await,
        Some("profile-hits") => {
            let (shape, count) = match args.get(2).map(String::as_str) {
                Some("plain") => (Shape::Plain, HIT_URLS),
                Some("many") => (Shape::Query, MANY_URLS),
                Some("api") => (Shape::Api, HIT_URLS),
                _ => (Shape::Query, HIT_URLS),
            };
            return profile_hits(args.get(1).map(String::as_str), shape, count).await;
        }
        Some("profile-puts") => return profile_puts().await,
        Some("profile-concurrent") => {
            let urls = match args.get(2).map(String::as_str) {
                Some("hot") => 1,
                _ => CONCURRENT_URLS,
            };
            return profile_concurrent(args.get(1).map(String::as_str), urls).await;
        }
        Some("profile-concurrent-misses") => {
            return profile_concurrent_misses(args.get(1).map(String::as_str)).await;
        }
        Some("profile-concurrent-mixed") => {
            return profile_concurrent_mixed(args.get(1).map(String::as_str)).await;
        }
        Some("profile-misses") => {
            let size = args.get(2).and_then(|n| n.parse().ok()).unwrap_or(1024);
            return profile_misses(args.get(1).map(String::as_str), size).await;
        }
        Some("miss-rows") => return only_miss_rows(number(1024) as usize).await,
        Some("many-key-rows") => return only_many_key_rows().await,
        Some("api-rows") => return only_api_rows().await,
        Some("tiered-invalidation") => return tiered::invalidation(number(1_000) as usize).await,
        Some(tiered::CHILD) => return tiered::child(&args).await,
        _ => {}
    }
    let output = match args.first().map(String::as_str) {
        Some("--readme") => Output::Readme,
        Some("--out") => Output::Dir(args.get(1).map_or("target/bench".into(), PathBuf::from)),
        _ => Output::Dir("target/bench".into()),
    };
    let origin = origin::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let redis = Redis::find();
    let mut checks = Vec::new();
    let mut chart_results = None;
    for size in [1024, 64 * 1024] {
        for shape in [Shape::Query, Shape::Plain] {
            let results = hit_rows(
                &origin,
                dir.path(),
                redis.as_ref(),
                size,
                shape,
                &mut checks,
            )
            .await;
            if size == 1024 && shape == Shape::Query {
                chart_results = Some(results);
            }
        }
    }
    api_rows(&origin, dir.path(), redis.as_ref(), &mut checks).await;
    token::token_rows(&origin, &mut checks).await;
    many_keys::rows(&origin, dir.path(), &mut checks).await;
    for size in [1024, 64 * 1024] {
        miss_rows(&origin, dir.path(), redis.as_ref(), size, &mut checks).await;
    }
    concurrent_rows(&origin, dir.path(), &mut checks).await;
    report::print(&checks);
    if let Some(results) = chart_results {
        write_outputs(&output, &checks, &results);
    }
}

/// The miss rows alone, with their checks, for `size`-byte bodies: for measuring a change to
/// the miss path again and again without the rest of the run.
async fn only_miss_rows(size: usize) {
    let origin = origin::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let redis = Redis::find();
    let mut checks = Vec::new();
    miss_rows(&origin, dir.path(), redis.as_ref(), size, &mut checks).await;
    report::print(&checks);
}

/// The hit rows over 10,000 URLs alone, with their checks.
async fn only_many_key_rows() {
    let origin = origin::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let mut checks = Vec::new();
    many_keys::rows(&origin, dir.path(), &mut checks).await;
    report::print(&checks);
}

/// The hit rows for a typical API head (Vary) alone, with their checks.
async fn only_api_rows() {
    let origin = origin::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let redis = Redis::find();
    let mut checks = Vec::new();
    api_rows(&origin, dir.path(), redis.as_ref(), &mut checks).await;
    report::print(&checks);
}

/// The hit rows of a typical API head (a dozen fields, varying on Accept-Encoding): a hit
/// reads the URL's Vary index, then its variant.
async fn api_rows(origin: &str, dir: &Path, redis: Option<&Redis>, checks: &mut Vec<Check>) {
    hit_rows(origin, dir, redis, 1024, Shape::Api, checks).await;
}

/// Only hits of one store on URLs with a query, no comparison: for profilers.
async fn profile_hits(store: Option<&str>, shape: Shape, count: usize) {
    let origin = origin::start().await;
    let urls = urls(&origin, 1024, shape, count, "");
    let dir = tempfile::tempdir().expect("temp dir");
    // Kept for the run: a server started here stops when dropped.
    let mut redis = None;
    let client = match store {
        Some(name @ ("redis" | "floor-redis" | "tiered")) => {
            redis_profiled(&mut redis, name, "profile", shape.floor_answer()).await
        }
        _ => profiled(store, dir.path(), &urls, shape.floor_answer()).await,
    };
    let requests = if redis.is_some() && store != Some("tiered") {
        REMOTE_ITERATIONS
    } else {
        ITERATIONS
    };
    let stats = measure::hits_timed(&client, &urls, requests).await;
    println!("hit median {:.2}µs", micros(stats.median));
}

/// The client a Redis profile runs (`redis`, `tiered`, or the floor), under a fresh prefix
/// named after `label`, on a server started into `redis`: kept for the run, it stops when
/// dropped.
async fn redis_profiled(
    redis: &mut Option<Redis>,
    name: &str,
    label: &str,
    answer: Answer,
) -> ClientWithMiddleware {
    let server = redis.insert(Redis::find().expect("redis-server for a Redis profile"));
    let prefix = test_support::unique_namespace(label);
    match name {
        "redis" => server.ours(&prefix).await,
        "tiered" => ours(tiered::over_redis(&server.url(), &prefix).await),
        _ => floors::redis(&server.url(), &prefix, answer).await,
    }
}

/// The client a profile mode runs: ours over `store`, or a floor (`floor` is the memory one,
/// filled with `urls`); memory when not named.
async fn profiled(
    store: Option<&str>,
    dir: &Path,
    urls: &[String],
    answer: Answer,
) -> ClientWithMiddleware {
    match store {
        Some("sqlite") => ours(SqliteStore::open(dir.join("p.sqlite")).expect("sqlite")),
        Some("sled") => ours(SledStore::open(dir.join("p.sled")).expect("sled")),
        // Room for every URL: hits over many URLs without evictions, as `many-keys` measures.
        Some("memory-roomy") => ours(MemoryStore::bounded(urls.len() * 2, 1 << 30)),
        Some("floor") => floors::memory_prefilled(urls, answer).await,
        // Whatever the shape: the floor that answers the origin's head, as a cache must.
        Some("floor-head") => floors::memory_prefilled(urls, Answer::Head).await,
        Some("floor-sled-head") => floors::sled(&dir.join("f.sled"), Answer::Head),
        Some("floor-sqlite") => floors::sqlite(&dir.join("f.sqlite"), answer),
        Some("floor-sled") => floors::sled(&dir.join("f.sled"), answer),
        Some("floor-sled-digest") => floors::sled_by_digest(&dir.join("f.sled")),
        Some("token") => token::ours(),
        Some("floor-token") => token::floor(urls).await,
        None | Some("memory") => ours(MemoryStore::new()),
        Some(other) => unknown_store(
            other,
            "memory, memory-roomy, sqlite, sled, redis, tiered, token, floor, floor-head, \
             floor-sqlite, floor-sled, floor-sled-head, floor-sled-digest, floor-redis, \
             floor-token",
        ),
    }
}

/// Ends a profile run asked for a store it does not know: measuring another one in its place
/// would give figures under the wrong name.
fn unknown_store(name: &str, known: &str) -> ! {
    eprintln!("unknown store {name:?}; this mode knows: {known}");
    std::process::exit(2)
}

/// The concurrent row of one store (or floor) alone, with its latency percentiles: for
/// finding where the tail comes from.
async fn profile_concurrent(store: Option<&str>, count: usize) {
    let origin = origin::start().await;
    let urls = urls(&origin, 1024, Shape::Query, count, "-c");
    let dir = tempfile::tempdir().expect("temp dir");
    let client = profiled(store, dir.path(), &urls, Answer::Body).await;
    for _ in 0..3 {
        let (elapsed, samples) =
            measure::concurrent_samples(&client, &urls, TASKS, REQUESTS_PER_TASK).await;
        print_rate("hits", elapsed, samples);
    }
}

/// One line: `what` per second over `elapsed`, and the samples' percentiles.
fn print_rate(what: &str, elapsed: std::time::Duration, mut samples: Vec<std::time::Duration>) {
    samples.sort_unstable();
    let at = |per_mille: usize| micros(samples[samples.len() * per_mille / 1000]);
    println!(
        "{:>9.0} {what}/s  p50 {:.2}µs  p90 {:.2}µs  p95 {:.2}µs  p99 {:.2}µs  p99.9 {:.2}µs",
        samples.len() as f64 / elapsed.as_secs_f64(),
        at(500),
        at(900),
        at(950),
        at(990),
        at(999)
    );
}

/// Store writes alone (1 KiB entries, new keys): where a miss's time goes.
async fn profile_puts() {
    use std::time::Instant;
    let dir = tempfile::tempdir().expect("temp dir");
    let entries = |tag: &str| -> Vec<reqwest_caching::StoredEntry> {
        (0..2_000u64)
            .map(|n| {
                let url = url::Url::parse(&format!("https://h.test/{tag}?n={n}")).expect("url");
                let key = reqwest_caching::cache_http::KeyRules::default().key(
                    &http::Method::GET,
                    &url,
                    &http::HeaderMap::new(),
                    None,
                );
                let meta = reqwest_caching::EntryMeta::new(
                    key,
                    url.as_str(),
                    std::time::SystemTime::now(),
                    None,
                );
                reqwest_caching::StoredEntry::new(meta, bytes::Bytes::from(vec![b'x'; 1100]))
            })
            .collect()
    };
    let sqlite = SqliteStore::open(dir.path().join("puts.sqlite")).expect("sqlite");
    let sled = SledStore::open(dir.path().join("puts.sled")).expect("sled");
    for (name, store) in [
        ("sqlite", &sqlite as &dyn reqwest_caching::CacheStore),
        ("sled", &sled),
    ] {
        let mut samples = Vec::new();
        for entry in entries(name) {
            let at = Instant::now();
            store.put(entry).await.expect("put");
            samples.push(at.elapsed());
        }
        println!(
            "{name} put median {:.1}µs",
            micros(measure::stats(samples).median)
        );
    }
    let conn = std::sync::Arc::new(std::sync::Mutex::new(
        rusqlite::Connection::open(dir.path().join("raw.sqlite")).expect("open"),
    ));
    {
        let c = conn.lock().expect("lock");
        c.pragma_update(None, "journal_mode", "WAL").expect("wal");
        c.pragma_update(None, "synchronous", "NORMAL")
            .expect("sync");
        c.execute_batch("CREATE TABLE t (k TEXT PRIMARY KEY, v BLOB)")
            .expect("t");
    }
    for pooled in [false, true] {
        let mut samples = Vec::new();
        for n in 0..2_000 {
            let conn = std::sync::Arc::clone(&conn);
            let write = move || {
                conn.lock()
                    .expect("lock")
                    .prepare_cached("INSERT OR REPLACE INTO t VALUES (?1, ?2)")
                    .expect("prep")
                    .execute(rusqlite::params![format!("{pooled}{n}"), vec![b'x'; 1100]])
                    .expect("insert");
            };
            let at = Instant::now();
            if pooled {
                tokio::task::spawn_blocking(write).await.expect("join");
            } else {
                write();
            }
            samples.push(at.elapsed());
        }
        println!(
            "raw sqlite insert{} median {:.1}µs",
            if pooled { " via spawn_blocking" } else { "" },
            micros(measure::stats(samples).median)
        );
    }
}

/// CPU time (user and system) of this process so far, threads that have exited included:
/// Linux's `/proc/self/stat`, in clock ticks of 10 ms (a round of misses takes a few hundred
/// ms, so a few per cent). Zero where there is no such file.
fn process_cpu() -> std::time::Duration {
    const TICK: std::time::Duration = std::time::Duration::from_millis(10);
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The fields after the command name, which is in parentheses and may hold spaces:
    // utime and stime are the 14th and 15th fields, the 12th and 13th after it.
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let ticks: u32 = after_name
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|field| field.parse::<u32>().ok())
        .sum();
    TICK * ticks
}

/// Misses from 64 tasks at once (a crawler's first pass: every URL new), of one store or
/// floor: misses per second and the latency percentiles, three runs on new URLs.
async fn profile_concurrent_misses(store: Option<&str>) {
    let origin = origin::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let client = match store {
        Some("sqlite") => ours(SqliteStore::open(dir.path().join("p.sqlite")).expect("sqlite")),
        Some("sled") => ours(SledStore::open(dir.path().join("p.sled")).expect("sled")),
        Some("plain") => plain(),
        Some("floor-memory") => floors::memory(Answer::Body),
        Some("floor-sqlite") => floors::sqlite(&dir.path().join("f.sqlite"), Answer::Body),
        Some("floor-sled") => floors::sled(&dir.path().join("f.sled"), Answer::Body),
        None | Some("memory") => ours(MemoryStore::new()),
        Some(other) => unknown_store(
            other,
            "memory, sqlite, sled, plain, floor-memory, floor-sqlite, floor-sled",
        ),
    };
    for round in 0..3 {
        let urls = urls(
            &origin,
            1024,
            Shape::Query,
            TASKS * 200,
            &format!("-cm{round}"),
        );
        let (elapsed, samples) = measure::concurrent_miss_samples(&client, &urls, TASKS).await;
        print_rate("misses", elapsed, samples);
    }
}

/// Hits and misses from 64 tasks at once, one of one store: 1,000 URLs stored first, then
/// every tenth request of each task to a URL not seen yet. SQLite's writes then come while
/// reads go on, which its commits (one per write, or one per batch) meet.
async fn profile_concurrent_mixed(store: Option<&str>) {
    let origin = origin::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let sqlite = || SqliteStore::builder(dir.path().join("p.sqlite"));
    let client = match store {
        Some("sqlite") => ours(sqlite().open().expect("sqlite")),
        Some("sqlite-commit-each") => ours(
            sqlite()
                .commit_delay(std::time::Duration::ZERO)
                .open()
                .expect("sqlite"),
        ),
        Some("sled") => ours(SledStore::open(dir.path().join("p.sled")).expect("sled")),
        None | Some("memory") => ours(MemoryStore::new()),
        Some(other) => unknown_store(other, "memory, sqlite, sqlite-commit-each, sled"),
    };
    let hot = urls(&origin, 1024, Shape::Query, CONCURRENT_URLS, "-mixed");
    for url in &hot {
        measure::get(&client, url).await;
    }
    for round in 0..3 {
        let new = urls(
            &origin,
            1024,
            Shape::Query,
            TASKS * 100,
            &format!("-mx{round}"),
        );
        let (elapsed, samples) =
            measure::concurrent_mixed_samples(&client, &hot, &new, TASKS, 10).await;
        print_rate("requests", elapsed, samples);
    }
}

/// Only misses of one store (new URLs with a query, `size`-byte bodies), no comparison: for
/// profilers.
async fn profile_misses(store: Option<&str>, size: usize) {
    let log = timed::CallLog::default();
    let origin = origin::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let sqlite = || SqliteStore::open(dir.path().join("p.sqlite")).expect("sqlite");
    let sled = || SledStore::open(dir.path().join("p.sled")).expect("sled");
    // Kept for the run: a server started here stops when dropped.
    let mut redis = None;
    let client = match store {
        Some(name @ ("redis" | "floor-redis")) => {
            redis_profiled(&mut redis, name, "profile-misses", Answer::Body).await
        }
        Some("timed-redis") => {
            let server = redis.insert(Redis::find().expect("redis-server for a Redis profile"));
            let prefix = test_support::unique_namespace("profile-misses");
            ours(timed::Timed {
                inner: server.store(&prefix).await,
                log: log.clone(),
            })
        }
        Some("sqlite") => ours(sqlite()),
        Some("sled") => ours(sled()),
        Some("plain") => plain(),
        Some("floor-sqlite") => floors::sqlite(&dir.path().join("f.sqlite"), Answer::Body),
        Some("floor-memory") => floors::memory(Answer::Body),
        Some("floor-memory-head") => floors::memory(Answer::Head),
        Some("floor-memory-copying") => floors::memory_copying(),
        Some("floor-sled") => floors::sled(&dir.path().join("f.sled"), Answer::Body),
        Some("floor-sled-digest") => floors::sled_by_digest(&dir.path().join("f.sled")),
        Some("timed-sqlite") => ours(timed::Timed {
            inner: sqlite(),
            log: log.clone(),
        }),
        Some("timed-sled") => ours(timed::Timed {
            inner: sled(),
            log: log.clone(),
        }),
        Some("timed-memory") => ours(timed::Timed {
            inner: MemoryStore::new(),
            log: log.clone(),
        }),
        None | Some("memory") => ours(MemoryStore::new()),
        Some(other) => unknown_store(
            other,
            "memory, sqlite, sled, redis, plain, floor-memory, floor-memory-head, floor-memory-copying, \
             floor-sqlite, floor-sled, \
             floor-sled-digest, \
             floor-redis, timed-memory, timed-sqlite, timed-sled, timed-redis",
        ),
    };
    for round in 0..3 {
        let urls = urls(&origin, size, Shape::Query, MISSES, &format!("-p{round}"));
        let (cpu, wall) = (process_cpu(), std::time::Instant::now());
        let stats = time_requests(&client, &urls, MISSES).await;
        let per_miss = |d: std::time::Duration| micros(d) / MISSES as f64;
        println!(
            "miss median {:.2}µs, mean {:.2}µs, CPU {:.2}µs per miss",
            micros(stats.median),
            per_miss(wall.elapsed()),
            per_miss(process_cpu().saturating_sub(cpu))
        );
    }
    // The files the store left (a log that never restarts grows here).
    for file in std::fs::read_dir(dir.path()).expect("dir").flatten() {
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        println!("{}: {} KiB", file.file_name().to_string_lossy(), len / 1024);
    }
    let mut by_op = std::collections::BTreeMap::<&str, Vec<std::time::Duration>>::new();
    for (op, took) in log.lock().unwrap_or_else(|p| p.into_inner()).iter() {
        by_op.entry(op).or_default().push(*took);
    }
    for (op, samples) in by_op {
        let calls = samples.len();
        let stats = measure::stats(samples);
        println!(
            "{op}: {calls} calls, median {:.1}µs, p99 {:.1}µs",
            micros(stats.median),
            micros(stats.p99)
        );
    }
}
