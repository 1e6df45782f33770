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
/// `dropped N` → `answer: dropped` once memory no longer holds N (bounded: 30 s).
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
            "dropped" => {
                let deadline = Instant::now() + Duration::from_secs(30);
                while in_memory(&store, n) && Instant::now() < deadline {
                    tokio::task::yield_now().await;
                }
                let answer = if in_memory(&store, n) {
                    "still held"
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

/// Reads the child's entry 1 until memory answers (at most five reads): each must be
/// `version`, the last from memory.
fn reads_until_kept(reader: &mut ChildProcess, version: &str) {
    let mut reads = vec![reader.ask("read 1")];
    while reads.len() < 5
        && reads
            .last()
            .is_some_and(|r| *r != format!("{version} memory"))
    {
        reads.push(reader.ask("read 1"));
    }
    assert!(
        reads.iter().all(|r| r.starts_with(&format!("{version} ")))
            && reads
                .last()
                .is_some_and(|r| *r == format!("{version} memory")),
        "the copy is kept once the write's notice is in: {reads:?}"
    );
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

    writer.put(entry(1, "v1", None)).await.unwrap();
    // The child may still be getting the notice of that write (it has no copy yet, so it
    // reads Redis either way): the first read fills its memory. On a loaded machine the
    // notice can land after that read and drop the copy once (a harmless miss), so reads go
    // on until one is a memory hit; every one sees v1.
    assert_eq!(reader.ask("read 1"), "v1 backing");
    reads_until_kept(&mut reader, "v1");

    writer.put(entry(1, "v2", None)).await.unwrap();
    assert_eq!(
        reader.ask("dropped 1"),
        "dropped",
        "a write elsewhere drops the copy"
    );
    // The drop seen may still be v1's notice, landing late: then v2's comes after the next
    // read filled memory, as above.
    assert_eq!(reader.ask("read 1"), "v2 backing");
    reads_until_kept(&mut reader, "v2");

    assert!(writer.delete(&key(1)).await.unwrap());
    assert_eq!(
        reader.ask("dropped 1"),
        "dropped",
        "a delete elsewhere drops the copy"
    );
    assert_eq!(reader.ask("read 1"), "none backing");
}
