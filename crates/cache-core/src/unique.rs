//! [`unique_id`]: names no other write, in this process or another, takes: for the chunks
//! of a large value (MongoDB, DynamoDB) and the files of a cache directory.
//!
//! The time, the process id and a counter were not enough: replicas in containers all run
//! as process 1 and start their counters at 0, so two of them writing in one millisecond
//! named the same chunks, and a reader could assemble one body from both writes. A random
//! part drawn once per process tells the processes apart.

use std::hash::{BuildHasher, Hasher};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

/// The process id the random part was drawn in, and the part.
static PROCESS: Mutex<Option<(u32, u64)>> = Mutex::new(None);

/// This process's random part: drawn at the first call, and again in a child forked since
/// (it would otherwise name what its parent names). The standard library seeds each
/// `RandomState` from the operating system's random source.
fn process_part() -> u64 {
    let pid = std::process::id();
    let mut drawn = PROCESS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    match *drawn {
        Some((drawn_in, part)) if drawn_in == pid => part,
        _ => {
            let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
            hasher.write_u32(pid);
            let part = hasher.finish();
            *drawn = Some((pid, part));
            part
        }
    }
}

/// A name no other call returns, here or in another process: the time in milliseconds, the
/// process's random part and a counter, in decimal, joined by `-` (no `#`, `/` or `.`: safe
/// in keys and file names; digits and dashes, 55 characters at most, as the generations
/// earlier versions wrote, which readers check).
///
/// ```
/// let (a, b) = (cache_core::unique::unique_id(), cache_core::unique::unique_id());
/// assert_ne!(a, b);
/// assert!(a.chars().all(|c| c.is_ascii_digit() || c == '-'));
/// ```
pub fn unique_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let millis = crate::time::to_millis(SystemTime::now());
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{millis}-{}-{n}", process_part())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Set in the copies of this test binary that only print their random part.
    const PRINT_ONLY: &str = "CACHE_CORE_UNIQUE_PRINT_PROCESS_PART";

    /// Two processes draw different random parts (as replicas all running as process 1
    /// would need), and neither is this one's.
    #[test]
    fn processes_draw_different_parts() {
        if std::env::var_os(PRINT_ONLY).is_some() {
            println!("part={:016x}", process_part());
            return;
        }
        let part_of_another = || {
            let output = std::process::Command::new(std::env::current_exe().unwrap())
                .args(["--exact", "unique::tests::processes_draw_different_parts"])
                .args(["--nocapture", "--test-threads=1"])
                .env(PRINT_ONLY, "1")
                .output()
                .unwrap();
            let stdout = String::from_utf8(output.stdout).unwrap();
            // The harness prints its own words on the same line.
            let (_, part) = stdout
                .split_once("part=")
                .expect("the child printed its part");
            part[..16].to_owned()
        };
        let (first, second) = (part_of_another(), part_of_another());
        let ours = format!("{:016x}", process_part());
        assert_ne!(first, second);
        assert_ne!(first, ours);
        assert_ne!(second, ours);
    }

    /// Names within one process differ, and are digits and dashes (what DynamoDB's readers
    /// take for a generation), short enough for a key.
    #[test]
    fn names_differ_and_are_plain() {
        let names: std::collections::HashSet<String> = (0..1000).map(|_| unique_id()).collect();
        assert_eq!(names.len(), 1000);
        assert!(
            names
                .iter()
                .all(|n| n.len() <= 55 && n.chars().all(|c| c.is_ascii_digit() || c == '-'))
        );
    }
}
