//! Loopback ports reserved for the life of a server, across every test process.
//!
//! A port picked with `bind(127.0.0.1:0)` and released comes from the kernel's ephemeral
//! range: while a server is down for a restart test, any outgoing connection or `bind(0)` on
//! the machine may take it. So servers get ports from a window outside that range, and each
//! is reserved with an exclusive lock on a file named after it (in a directory of `/tmp`
//! shared by every test process of the user: see `lock_dir`; the kernel drops the lock when
//! the process dies, however it dies). A port something else already listens on is skipped, and the next one tried.

use std::fs::{File, OpenOptions};
use std::net::TcpListener;
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::sync::Mutex;

/// Where reserved ports come from: below Linux's default ephemeral range (32768-60999), and
/// low enough that a Redis cluster bus port (+10000) stays out of it too.
const WINDOW: RangeInclusive<u16> = 20_000..=29_999;

/// The Redis cluster bus port is the node's port + 10000.
const BUS_OFFSET: u16 = 10_000;

/// A port (and, for a Redis cluster node, its bus port) no other test process takes while
/// this lives.
#[derive(Debug)]
pub(crate) struct PortReservation {
    port: u16,
    _locks: Vec<File>,
}

impl PortReservation {
    /// Reserves a free port; with `bus`, its bus port (+10000) too.
    ///
    /// # Panics
    ///
    /// When every port of the window is taken or in use.
    pub(crate) fn new(bus: bool) -> Self {
        let ephemeral = ephemeral_range();
        let outside = |port: u16| !ephemeral.contains(&port);
        let fits = |port: u16| !bus || port.checked_add(BUS_OFFSET).is_some_and(&outside);
        let preferred: Vec<u16> = WINDOW.filter(|&p| outside(p) && fits(p)).collect();
        // An unusual ephemeral range covering the whole window: take the window anyway (the
        // locks still keep test processes apart).
        let candidates = if preferred.is_empty() {
            WINDOW.filter(|&p| fits(p)).collect()
        } else {
            preferred
        };
        for port in candidates {
            let Some(lock) = lock_free_port(port) else {
                continue;
            };
            if !bus {
                return Self {
                    port,
                    _locks: vec![lock],
                };
            }
            if let Some(bus_lock) = lock_free_port(port + BUS_OFFSET) {
                return Self {
                    port,
                    _locks: vec![lock, bus_lock],
                };
            }
        }
        panic!(
            "no free loopback port in {WINDOW:?} (lock files in {})",
            lock_dir().display()
        );
    }

    /// The reserved port.
    pub(crate) fn port(&self) -> u16 {
        self.port
    }
}

/// Reserves a port for the rest of the process and returns it.
pub(crate) fn reserve_for_process() -> u16 {
    static HELD: Mutex<Vec<PortReservation>> = Mutex::new(Vec::new());
    let reservation = PortReservation::new(false);
    let port = reservation.port();
    HELD.lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(reservation);
    port
}

/// The lock on `port`'s file, when no other reservation holds it and nothing listens there.
fn lock_free_port(port: u16) -> Option<File> {
    let dir = lock_dir();
    std::fs::create_dir_all(&dir)
        .unwrap_or_else(|e| panic!("create the port lock folder {}: {e}", dir.display()));
    let path = lock_path(port);
    let file = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(false)
        .open(&path)
        .unwrap_or_else(|e| panic!("open the port lock file {}: {e}", path.display()));
    fs2::FileExt::try_lock_exclusive(&file).ok()?;
    // Address in use (another program, or a server the locks don't know of): try the next.
    let bindable = TcpListener::bind(("127.0.0.1", port)).is_ok()
        && TcpListener::bind(("0.0.0.0", port)).is_ok();
    bindable.then_some(file)
}

/// One directory for every test process of this user on the machine, whatever its `TMPDIR`
/// (`scripts/test.sh` gives each run a temporary directory of its own, and two runs at once,
/// two CI jobs or a `cargo test` beside it, did not see each other's reservations): in
/// `/tmp`, named by the user (another user's lock files are not ours to open), or in the
/// temporary directory where `/tmp` cannot be written.
fn lock_dir() -> PathBuf {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let name = match user_id() {
            Some(uid) => format!("reqwest-caching-test-ports-{uid}"),
            None => "reqwest-caching-test-ports".to_owned(),
        };
        let shared = std::path::Path::new("/tmp").join(&name);
        let writable = std::fs::create_dir_all(&shared).is_ok()
            && OpenOptions::new()
                .create(true)
                .write(true)
                .truncate(false)
                .open(shared.join(".writable"))
                .is_ok();
        match writable {
            true => shared,
            false => std::env::temp_dir().join(name),
        }
    })
    .clone()
}

/// This process's user, where the system says (the owner of `/proc/self`).
#[cfg(unix)]
fn user_id() -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self")
        .ok()
        .map(|process| process.uid())
}

#[cfg(not(unix))]
fn user_id() -> Option<u32> {
    None
}

/// The file whose lock reserves `port`.
pub(crate) fn lock_path(port: u16) -> PathBuf {
    lock_dir().join(format!("{port}.lock"))
}

/// The kernel's ephemeral port range; where it cannot be read, the widest usual one (Linux's
/// default start to the top, which covers the IANA range BSDs and macOS use).
pub(crate) fn ephemeral_range() -> RangeInclusive<u16> {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| {
            let mut bounds = range.split_whitespace().map(|n| n.parse::<u16>().ok());
            Some(bounds.next()??..=bounds.next()??)
        })
        .unwrap_or(32_768..=u16::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// True when another process could lock `port`'s file now (a second open file takes the
    /// lock as another process would).
    fn lockable_by_others(port: u16) -> bool {
        let file = File::open(lock_path(port)).expect("lock file");
        fs2::FileExt::try_lock_exclusive(&file).is_ok()
    }

    #[test]
    fn ports_are_outside_the_ephemeral_range_and_distinct() {
        let ephemeral = ephemeral_range();
        let plain: Vec<_> = (0..3).map(|_| PortReservation::new(false)).collect();
        let bus: Vec<_> = (0..3).map(|_| PortReservation::new(true)).collect();
        let mut ports: Vec<u16> = plain
            .iter()
            .chain(&bus)
            .map(PortReservation::port)
            .collect();
        ports.extend(bus.iter().map(|r| r.port() + BUS_OFFSET));
        for &port in &ports {
            assert!(
                !ephemeral.contains(&port),
                "port {port} is in the ephemeral range {ephemeral:?}: the kernel may hand it \
                 to another socket while the server is down"
            );
        }
        let count = ports.len();
        ports.sort_unstable();
        ports.dedup();
        assert_eq!(
            ports.len(),
            count,
            "every reservation is its own: {ports:?}"
        );
    }

    /// Held at the OS level, where other test processes look. (Release on drop is not
    /// asserted: a test running in parallel may take the port at once.)
    #[test]
    fn a_reservation_holds_its_ports() {
        let reservation = PortReservation::new(true);
        let (port, bus) = (reservation.port(), reservation.port() + BUS_OFFSET);
        assert!(!lockable_by_others(port), "port {port} is held");
        assert!(!lockable_by_others(bus), "bus port {bus} is held");
    }

    #[test]
    fn a_port_in_use_is_skipped() {
        // Something listening that the locks don't know of, on a port outside the window so
        // that no reservation running in parallel touches it.
        let listener = TcpListener::bind(("127.0.0.1", 0)).expect("bind 127.0.0.1:0");
        let port = listener.local_addr().unwrap().port();
        assert!(
            lock_free_port(port).is_none(),
            "port {port}, in use, would be reserved"
        );
    }
}
