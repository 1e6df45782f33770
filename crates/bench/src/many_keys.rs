//! Hits spread over many distinct URLs (`-- many-keys [urls]`, default 100,000): memory,
//! SQLite and sled against their floors, SQLite and sled with decoded copies at their default
//! bound and turned off. Beyond what the copies hold (32 MiB, about 10,000 entries of 1 KiB),
//! most reads decode and replace a copy: this shows what that costs next to not keeping
//! copies at all. Beyond what the key memory holds (16,384 URLs), the keys of the URLs it
//! does not hold are computed anew.
//!
//! The floors answer one fixed header, as the hit rows' floors do; a second floor of each
//! kind answers the head the origin sent (kept in the process), as a cache must. Over 10,000
//! URLs the head's lines no longer stay in the processor's caches, so the full run also sets
//! ours against that floor (no target: the targets stay with the one-header floors), to show
//! what of the ratio is the head every cache must serve and what is ours.

use std::path::Path;

use reqwest_caching::{MemoryStore, SledStore, SqliteStore};

use crate::floors::Answer;
use crate::report::Check;
use crate::{Contender, Shape, floors, hits, micros, ours, urls};

/// Distinct URLs of the full run's many-keys rows: about what the decoded copies hold by
/// default, within what the key memory holds.
pub(crate) const ROW_URLS: usize = 10_000;

/// The stores whose floors also answer with the origin's head, and those floors' names.
const WITH_HEAD: [(&str, &str); 2] = [
    ("memory", "floor: memory, with head"),
    ("sled", "floor: sled, with head"),
];

/// The sled floor keyed by a digest of the URL, as ours is keyed (see
/// `floors::sled_by_digest`): the full run sets ours against it too, without a target, to show
/// what of sled's ratio is the order its keys put the URLs in.
const SLED_BY_DIGEST: &str = "floor: sled, keyed by digest";

async fn contenders(dir: &Path, urls: &[String]) -> Vec<Contender> {
    let sqlite = |name: &str| SqliteStore::builder(dir.join(name));
    let sled = |name: &str| SledStore::builder().open(dir.join(name));
    vec![
        Contender {
            name: "floor: memory",
            client: floors::memory_prefilled(urls, Answer::Body).await,
        },
        Contender {
            name: WITH_HEAD[0].1,
            client: floors::memory_prefilled(urls, Answer::Head).await,
        },
        Contender {
            name: "ours: memory",
            // Room for every URL: the row measures keys and lookups, not eviction.
            client: ours(MemoryStore::bounded(urls.len() * 2, 1 << 30)),
        },
        Contender {
            name: "floor: sqlite",
            client: floors::sqlite(&dir.join("floor.sqlite"), Answer::Body),
        },
        Contender {
            name: "ours: sqlite",
            client: ours(sqlite("ours.sqlite").open().expect("sqlite")),
        },
        Contender {
            name: "ours: sqlite, no copies",
            client: ours(
                sqlite("plain.sqlite")
                    .decoded_copies(0)
                    .open()
                    .expect("sqlite"),
            ),
        },
        Contender {
            name: "floor: sled",
            client: floors::sled(&dir.join("floor.sled"), Answer::Body),
        },
        Contender {
            name: WITH_HEAD[1].1,
            client: floors::sled(&dir.join("floor-head.sled"), Answer::Head),
        },
        Contender {
            name: SLED_BY_DIGEST,
            client: floors::sled_by_digest(&dir.join("floor-digest.sled")),
        },
        Contender {
            name: "ours: sled",
            client: ours(sled("ours.sled").expect("sled")),
        },
        Contender {
            name: "ours: sled, no copies",
            client: ours(
                SledStore::builder()
                    .decoded_copies(0)
                    .open(dir.join("plain.sled"))
                    .expect("sled"),
            ),
        },
    ]
}

pub(crate) async fn run(count: usize) {
    let origin = crate::origin::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let urls = urls(&origin, 1024, Shape::Query, count, "-many");
    println!("hits cycling over {count} URLs, 1 KiB, 3-param query: median / p99");
    for contender in contenders(dir.path(), &urls).await {
        let stats = hits(&contender.client, &urls).await;
        println!(
            "  {:<26} {:>8.2}µs {:>8.2}µs",
            contender.name,
            micros(stats.median),
            micros(stats.p99)
        );
    }
}

/// The full run's rows of hits over [`ROW_URLS`] URLs (1 KiB, 3-param query): memory, SQLite
/// and sled against their floors, with the hit rows' targets, in interleaved rounds (as the
/// hit rows, see [`crate::rounds`]). Where the hit rows' 100 URLs stay in the
/// processor's caches, these do not: a hit pays for every line of its entry it touches.
/// Memory and sled are also set against their floors answering the origin's head, without
/// a target.
pub(crate) async fn rows(origin: &str, dir: &Path, checks: &mut Vec<Check>) {
    let urls = urls(origin, 1024, Shape::Query, ROW_URLS, "-rows");
    let contenders: Vec<Contender> = contenders(dir, &urls)
        .await
        .into_iter()
        .filter(|contender| !contender.name.ends_with("no copies"))
        .collect();
    let rounds = crate::rounds::run(&contenders, &urls, contenders.len()).await;
    let results = rounds.results();
    results.print(&format!(
        "hit, 1 KiB body, 3-param query ({ROW_URLS} URLs, {} rounds of {} requests each)",
        crate::rounds::ROUNDS,
        crate::rounds::BLOCK
    ));
    // No Redis contender here: its entry finds no median and gives no check.
    let what = format!("1 KiB, 3-param query, {ROW_URLS} URLs");
    crate::hit_checks(&rounds, &what, crate::HIT_TARGETS, checks);
    for (store, floor) in WITH_HEAD {
        checks.extend(crate::median_check(
            &rounds,
            (&format!("ours: {store}"), floor),
            format!("{store} hit, {what}, vs a floor answering the origin's head"),
            None,
        ));
    }
    checks.extend(crate::median_check(
        &rounds,
        ("ours: sled", SLED_BY_DIGEST),
        format!("sled hit, {what}, vs a floor keyed by a digest of the URL"),
        None,
    ));
}
