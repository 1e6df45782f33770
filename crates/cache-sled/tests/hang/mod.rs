//! The watchdog every sled test that writes concurrently runs under.

use std::time::Duration;

/// Far beyond what these tests take (seconds) on a loaded 2-core machine.
const LIMIT: Duration = Duration::from_secs(300);

/// What a hang here most likely is, printed when the watchdog fires.
const EXPLANATION: &str = "sled 0.34.7 can deadlock under concurrent writes (upstream \
spacejam/sled#804 and #1412: a transaction waits on an I/O buffer no sled thread is free to \
flush; gdb shows SegmentAccountant::bump_tip -> OneShot::wait, and IoBufs::sa_stabilize in \
every sled-io thread). The store no longer writes in transactions, so a hang is more likely \
new: debug it from the stacks.";

/// Aborts the test process if the test runs past [`LIMIT`] (see `test_support::watchdog`).
pub fn watch() -> test_support::Watchdog {
    test_support::watchdog(LIMIT, EXPLANATION)
}
