//! Coherence across two processes over one real Redis.
//!
//! The test runs this test binary again as its child (the same test function, started with
//! `CHILD_ROLE` set): the child keeps a tiered store and answers commands on stdin; the
//! parent writes through its own tiered store and checks that the child's memory copies go
//! as soon as the parent changes an entry, with no `sync` and no memory TTL to help.

use std::io::{BufRead, BufReader, Lines, Write};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use cache_core::CacheStore;
use cache_tiered::TieredStore;

mod common;
mod over_redis;
use common::{entry, key};
use over_redis::tiered;

const CHILD_ROLE: &str = "CACHE_TIERED_TEST_CHILD";
const CHILD_URL: &str = "CACHE_TIERED_TEST_URL";
const CHILD_PREFIX: &str = "CACHE_TIERED_TEST_PREFIX";
/// What the child prints before each answer (the test harness prints its own text too).
const ANSWER: &str = "answer:";

fn in_memory(store: &TieredStore, n: u64) -> bool {
    futures_util::FutureExt::now_or_never(store.memory().get(&key(n)))
        .and_then(Result::ok)
        .flatten()
        .is_some()
}

fn shown(value: Option<Bytes>) -> String {
    value.map_or("none".to_owned(), |v| {
        String::from_utf8_lossy(&v).into_owned()
    })
}

/// The child: reads commands, one per line, and answers each on one line.
/// `read N` → `answer: VALUE memory|backing` (where the value came from);
/// `notices N` → `answer: COUNT flushes=F` once at least N notices have arrived (bounded:
/// 30 s), with how often memory was emptied (more than at the start: the subscription was
/// lost and made again, and notices may have been missed);
/// `held N` → `answer: held|dropped`, whether memory holds N now.
async fn child(url: &str, prefix: &str) {
    let store = tiered(url, prefix, None).await;
    println!("{ANSWER} ready");
    let stdin = std::io::stdin();
    for line in stdin.lock().lines() {
        let line = line.expect("command");
        let mut words = line.split_whitespace();
        let (command, n) = (
            words.next().unwrap_or(""),
            words.next().and_then(|n| n.parse().ok()),
        );
        let Some(n) = n else { return };
        match command {
            "read" => {
                let from = if in_memory(&store, n) {
                    "memory"
                } else {
                    "backing"
                };
                let value = store.get(&key(n)).await.expect("get").map(|e| e.value);
                println!("{ANSWER} {} {from}", shown(value));
            }
            "notices" => {
                let deadline = Instant::now() + Duration::from_secs(30);
                while store.stats().invalidations < n && Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                let stats = store.stats();
                println!("{ANSWER} {} flushes={}", stats.invalidations, stats.flushes);
            }
            "held" => {
                let answer = if in_memory(&store, n) {
                    "held"
                } else {
                    "dropped"
                };
                println!("{ANSWER} {answer}");
            }
            _ => return,
        }
        std::io::stdout().flush().expect("stdout");
    }
}

struct ChildProcess {
    process: Child,
    lines: Lines<BufReader<ChildStdout>>,
}

impl ChildProcess {
    fn spawn(url: &str, prefix: &str) -> Self {
        let mut process = Command::new(std::env::current_exe().expect("test binary"))
            .args(["two_processes_stay_coherent", "--exact", "--nocapture"])
            .env(CHILD_ROLE, "reader")
            .env(CHILD_URL, url)
            .env(CHILD_PREFIX, prefix)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn the child process");
        let stdout = process.stdout.take().expect("child stdout");
        let mut child = Self {
            process,
            lines: BufReader::new(stdout).lines(),
        };
        assert_eq!(child.answer(), "ready");
        child
    }

    fn answer(&mut self) -> String {
        loop {
            match self.lines.next() {
                Some(Ok(line)) => {
                    if let Some(at) = line.find(ANSWER) {
                        return line[at + ANSWER.len()..].trim().to_owned();
                    }
                }
                other => panic!("the child ended before answering: {other:?}"),
            }
        }
    }

    fn ask(&mut self, command: &str) -> String {
        let stdin = self.process.stdin.as_mut().expect("child stdin");
        writeln!(stdin, "{command}").expect("send a command");
        stdin.flush().expect("flush");
        self.answer()
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        drop(self.process.stdin.take());
        let _ = self.process.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_stay_coherent() {
    if let Ok(role) = std::env::var(CHILD_ROLE) {
        assert_eq!(role, "reader");
        let url = std::env::var(CHILD_URL).expect("url");
        let prefix = std::env::var(CHILD_PREFIX).expect("prefix");
        return child(&url, &prefix).await;
    }
    let url = test_support::shared_redis().url();
    let prefix = test_support::unique_namespace("processes");
    let writer = tiered(&url, &prefix, None).await;
    let mut reader = ChildProcess::spawn(&url, &prefix);

    // The server sends a key's notice once per change, in order, so the child's count of
    // notices says which write each drop came from (a late notice of an earlier write cannot
    // pass for a later one's).
    writer.put(entry(1, "v1", None)).await.unwrap();
    let notices = reader.ask("notices 1");
    assert!(
        notices.starts_with("1 "),
        "one notice for the first write: {notices}"
    );
    assert_eq!(reader.ask("read 1"), "v1 backing");
    assert_eq!(reader.ask("read 1"), "v1 memory", "the copy is kept");

    writer.put(entry(1, "v2", None)).await.unwrap();
    let notices = reader.ask("notices 2");
    assert!(
        notices.starts_with("2 "),
        "one notice for the second write: {notices}"
    );
    assert_eq!(
        reader.ask("held 1"),
        "dropped",
        "a write elsewhere drops the copy"
    );
    assert_eq!(reader.ask("read 1"), "v2 backing");
    assert_eq!(reader.ask("read 1"), "v2 memory", "the new copy is kept");

    assert!(writer.delete(&key(1)).await.unwrap());
    let notices = reader.ask("notices 3");
    assert!(
        notices.starts_with("3 "),
        "one notice for the delete: {notices}"
    );
    assert_eq!(
        reader.ask("held 1"),
        "dropped",
        "a delete elsewhere drops the copy"
    );
    assert_eq!(reader.ask("read 1"), "none backing");
}
