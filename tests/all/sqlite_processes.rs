//! Two processes caching through one SQLite file at the same time.
//!
//! The test runs this test binary again as its second process: the child is the same test,
//! started with `CHILD_DB` set, and plays its part instead of the parent's (so there is no
//! separate test that could pass by doing nothing). Each process sends half its requests,
//! then waits for the other to have sent half of its own before sending the rest: their
//! writes overlap by construction, and each reports when its writes started and ended so the
//! test asserts the overlap it relies on.

use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use reqwest_caching::reqwest_middleware::ClientWithMiddleware;
use reqwest_caching::{CacheHandle, CacheMode, CacheRequestExt, SqliteStore};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};

use crate::origin::Origin;

const TEST: &str = "sqlite_processes::two_processes_share_one_file";
const CHILD_DB: &str = "REQWEST_CACHING_TEST_CHILD_DB";
const CHILD_ORIGIN: &str = "REQWEST_CACHING_TEST_CHILD_ORIGIN";
const REQUESTS_PER_PROCESS: usize = 150;
const HALF: usize = REQUESTS_PER_PROCESS / 2;

/// A cached client on the shared file, forcing a write on every request.
struct Writer {
    client: Arc<ClientWithMiddleware>,
    handle: CacheHandle,
    origin: String,
}

impl Writer {
    fn open(db: &Path, origin: &str) -> Self {
        let store = SqliteStore::open(db).expect("open shared file");
        let cache = crate::support::patient_builder()
            .store(store)
            .build()
            .unwrap();
        let handle = cache.handle();
        Self {
            client: Arc::new(cache.into_client(reqwest::Client::new())),
            handle,
            origin: origin.to_owned(),
        }
    }

    /// Requests `/shared/{i}` for every `i` in `range`, 8 tasks at a time.
    async fn write(&self, range: std::ops::Range<usize>) {
        let tasks: Vec<_> = (0..8)
            .map(|task| {
                let client = Arc::clone(&self.client);
                let origin = self.origin.clone();
                let range = range.clone();
                tokio::spawn(async move {
                    for i in range.skip(task).step_by(8) {
                        let response = client
                            .get(format!("{origin}/shared/{i}"))
                            .cache_mode(CacheMode::ForceRefresh)
                            .send()
                            .await
                            .expect("request succeeds");
                        response.bytes().await.expect("body");
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
    }
}

/// Wall-clock nanoseconds: comparable between processes on one machine.
fn now_nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_nanos()
}

/// The next line holding `marker`, from there on (the test harness may print its own text
/// before it on the same line).
async fn line_with<R>(lines: &mut Lines<R>, marker: &str) -> String
where
    R: tokio::io::AsyncBufRead + Unpin,
{
    loop {
        match lines.next_line().await {
            Ok(Some(line)) => {
                if let Some(at) = line.find(marker) {
                    return line[at..].to_owned();
                }
            }
            other => panic!("the other process ended before {marker:?}: {other:?}"),
        }
    }
}

/// The second process: half its writes, `half`, wait for `go` on stdin, the rest; then
/// `interval {start} {end}` and `errors {n}`.
async fn child(db: &Path, origin: &str) {
    let writer = Writer::open(db, origin);
    let started = now_nanos();
    writer.write(0..HALF).await;
    println!("half");
    let go = tokio::task::spawn_blocking(|| {
        std::io::stdin()
            .lines()
            .map_while(Result::ok)
            .any(|line| line.contains("go"))
    });
    assert!(go.await.unwrap(), "stdin closed before go");
    writer.write(HALF..REQUESTS_PER_PROCESS).await;
    let ended = now_nanos();
    println!("interval {started} {ended}");
    println!("errors {}", writer.handle.stats().errors);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_share_one_file() {
    if let (Ok(db), Ok(origin)) = (std::env::var(CHILD_DB), std::env::var(CHILD_ORIGIN)) {
        child(Path::new(&db), &origin).await;
        return;
    }
    let origin = Origin::start().await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("shared.sqlite");
    SqliteStore::open(&db).unwrap();
    let mut process = tokio::process::Command::new(std::env::current_exe().unwrap())
        .args([TEST, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_DB, &db)
        .env(CHILD_ORIGIN, origin.url(""))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start the second process");
    let mut stdin = process.stdin.take().unwrap();
    let mut stdout = BufReader::new(process.stdout.take().unwrap()).lines();

    let writer = Writer::open(&db, &origin.url(""));
    let started = now_nanos();
    writer.write(0..HALF).await;
    // Both halfway: the rest of each process's writes happen while the other writes too.
    line_with(&mut stdout, "half").await;
    stdin.write_all(b"go\n").await.unwrap();
    stdin.flush().await.unwrap();
    writer.write(HALF..REQUESTS_PER_PROCESS).await;
    let ended = now_nanos();

    let interval = line_with(&mut stdout, "interval ").await;
    let child_errors = line_with(&mut stdout, "errors ").await;
    let mut rest = String::new();
    while let Ok(Some(line)) = stdout.next_line().await {
        rest.push_str(&line);
        rest.push('\n');
    }
    let status = process.wait().await.unwrap();
    assert!(status.success(), "the second process failed:\n{rest}");
    assert!(rest.contains("1 passed"), "the second process ran: {rest}");
    assert_eq!(
        child_errors, "errors 0",
        "store errors in the second process"
    );
    assert_eq!(
        writer.handle.stats().errors,
        0,
        "store errors in this process"
    );

    let times: Vec<u128> = interval
        .split_whitespace()
        .skip(1)
        .map(|t| t.parse().expect("a time"))
        .collect();
    let (child_started, child_ended) = (times[0], times[1]);
    assert!(
        child_started < ended && started < child_ended,
        "the processes' writes overlap: this one {started}..{ended}, the other \
         {child_started}..{child_ended}"
    );
    assert_eq!(origin.total(), 2 * REQUESTS_PER_PROCESS);
    let store = SqliteStore::open(&db).unwrap();
    assert_eq!(
        reqwest_caching::CacheStore::count(&store).await.unwrap(),
        REQUESTS_PER_PROCESS as u64
    );
}
