//! Real servers for the backend tests, on free loopback ports.
//!
//! - Each server runs under a small `sh` supervisor whose stdin is a pipe held by the test
//!   process: when the test process exits, however it exits, the pipe closes and the
//!   supervisor stops the server. Dropping the handle stops it at once.
//! - A missing binary is a test failure naming the install script, never a skip.
//! - [`shared_redis`] and [`shared_redis_cluster`] start one server (or cluster) per test
//!   binary; tests keep apart with [`unique_namespace`].

#![forbid(unsafe_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The script that installs every server the tests need.
pub const INSTALL_SCRIPT: &str = "scripts/install-test-servers.sh";

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

/// Fails the test unless `binary` is on the PATH.
pub fn require_binary(binary: &str) {
    let found = std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(binary).is_file()));
    assert!(
        found,
        "`{binary}` is not installed: run `{INSTALL_SCRIPT}` (the README's test command does)"
    );
}

/// A process under a supervisor that stops it when this handle, or the test process, goes.
#[derive(Debug)]
struct Supervised {
    child: Child,
    stdin: Option<ChildStdin>,
}

impl Supervised {
    fn start(program: &str, args: &[String], log: &Path) -> Self {
        require_binary(program);
        let log = std::fs::File::create(log).expect("server log file");
        let child = Command::new("sh")
            .arg("-c")
            // Run the server in the background; when stdin closes, stop it and wait for it.
            .arg("\"$@\" </dev/null & pid=$!; read -r _; kill $pid 2>/dev/null; wait $pid")
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

/// A port free on 127.0.0.1 (and, with `bus`, its cluster bus port +10000 too).
fn free_port(bus: bool) -> u16 {
    for _ in 0..200 {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("bind 127.0.0.1:0");
        if !bus {
            return port;
        }
        if port < 55_000 && TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return port;
        }
    }
    panic!("no free port pair found");
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

fn wait_until(what: &str, log: &Path, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if ready() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let log = std::fs::read_to_string(log).unwrap_or_default();
    panic!("{what} not ready within 20 s; its log:\n{log}");
}

/// One `redis-server` on a free loopback port, with no persistence.
#[derive(Debug)]
pub struct RedisServer {
    port: u16,
    _process: Supervised,
    _dir: tempfile::TempDir,
}

impl RedisServer {
    /// Starts a server and waits until it answers `PING`.
    pub fn start() -> Self {
        Self::start_with(&[], false)
    }

    fn start_with(extra: &[&str], cluster_bus: bool) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port(cluster_bus);
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
        let process = Supervised::start("redis-server", &args, &log);
        wait_until("redis-server", &log, || {
            redis_command(port, &["PING"]).is_ok_and(|r| r.starts_with("+PONG"))
        });
        Self {
            port,
            _process: process,
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
    fn namespaces_are_unique() {
        assert_ne!(unique_namespace("a"), unique_namespace("a"));
    }
}
