//! A real origin, a cache seeded through the real middleware, and the built command run as
//! a child process.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::extract::{Request, State};
use reqwest_caching::{CacheMiddleware, CacheResponseExt, CacheStore, ManualClock};

/// An HTTP origin on 127.0.0.1: any path answers `200`, body `"{path} #{n}"`, where n counts
/// every request it received.
pub struct Origin {
    addr: SocketAddr,
    hits: Arc<AtomicU64>,
}

impl Origin {
    pub async fn start() -> Self {
        let hits = Arc::new(AtomicU64::new(0));
        let app = Router::new()
            .fallback(
                |State(hits): State<Arc<AtomicU64>>, request: Request| async move {
                    let n = hits.fetch_add(1, Ordering::SeqCst) + 1;
                    let target = request.uri().path_and_query().map_or("/", |p| p.as_str());
                    format!("{target} #{n}")
                },
            )
            .with_state(Arc::clone(&hits));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { addr, hits }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// `127.0.0.1:PORT`, as `stats` groups entries.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// Requests received so far.
    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::SeqCst)
    }
}

/// What every store is seeded with: two fresh entries and one stored two hours ago that
/// expired half an hour ago (still kept by the servers' TTLs, which add an hour).
pub const FRESH: [&str; 2] = ["/a", "/b?q=1"];
pub const OLD: &str = "/old";

/// GETs `path` through a cache over `store` whose clock reads `now`, each response fresh
/// for `fresh_for`; returns the body and whether it came from the cache.
pub async fn fetch(
    store: &Arc<dyn CacheStore>,
    origin: &Origin,
    path: &str,
    now: SystemTime,
    fresh_for: Duration,
) -> (String, bool) {
    // Waits that outlast a loaded machine: a slowed store call or body must not leave the
    // response unstored.
    let cache = CacheMiddleware::builder()
        .shared_store(Arc::clone(store))
        .store_timeout(Duration::from_secs(30))
        .stream_after(Duration::from_secs(30))
        .clock(Arc::new(ManualClock::new(now)))
        .expire_after(fresh_for)
        .build()
        .unwrap();
    let client = cache.into_client(reqwest::Client::new());
    let response = client.get(origin.url(path)).send().await.unwrap();
    assert!(response.status().is_success());
    let from_cache = response.cache_info().is_some_and(|info| info.from_cache);
    (response.text().await.unwrap(), from_cache)
}

/// Stores [`FRESH`] and [`OLD`] in `store`, each fetched once from `origin`.
pub async fn seed(store: &Arc<dyn CacheStore>, origin: &Origin) {
    let now = SystemTime::now();
    for path in FRESH {
        let (_, cached) = fetch(store, origin, path, now, Duration::from_secs(3600)).await;
        assert!(!cached);
    }
    let two_hours_ago = now - Duration::from_secs(2 * 3600);
    fetch(
        store,
        origin,
        OLD,
        two_hours_ago,
        Duration::from_secs(90 * 60),
    )
    .await;
    assert_eq!(origin.hits(), 3);
}

/// One run of the built command.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Standard output as JSON; fails the test when it is not.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}): {:?}, stderr {:?}",
                self.stdout, self.stderr
            )
        })
    }

    /// Asserts the exit code, showing the output when it is another.
    #[track_caller]
    pub fn expect(self, code: i32) -> Self {
        assert_eq!(
            self.code, code,
            "exit code; stdout {:?}, stderr {:?}",
            self.stdout, self.stderr
        );
        self
    }
}

/// Environment for the command: only what a test gives (AWS settings for DynamoDB).
pub type Env = Vec<(String, String)>;

/// Runs `reqwest-caching --store STORE ARGS...` with standard input, output and error not
/// terminals, on a blocking thread (the test's runtime keeps serving the origin).
pub async fn run(store: &str, args: &[&str], env: &Env) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_reqwest-caching"));
    command
        .arg("--store")
        .arg(store)
        .args(args)
        .env_remove("REQWEST_CACHING_STORE")
        .env_remove("AWS_ENDPOINT_URL_DYNAMODB")
        .env_remove("AWS_PROFILE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (name, value) in env {
        command.env(name, value);
    }
    // A sled database the test process just dropped may still be locked by its sled threads.
    let sled = store.strip_prefix("sled:").map(std::path::PathBuf::from);
    let output: Output = tokio::task::spawn_blocking(move || {
        if let Some(path) = sled {
            test_support::wait_for_sled_lock(&path);
        }
        command.output()
    })
    .await
    .unwrap()
    .expect("run reqwest-caching");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// `path` as a command-line argument.
pub fn arg(path: &Path) -> &str {
    path.to_str().expect("UTF-8 temp path")
}
