//! URL group sets: `{prefix}:g:{group}` holds the keys of a URL group's entries (for
//! `entries_for_url`) and lives at least as long as the longest-lived of them. Keys of entries
//! deleted since stay in the set until a lookup of the group prunes them.
//!
//! Every set has a time: the latest retention of the entries added to it, 9999-12-31 for an
//! entry kept for good. A set without one is a set just created, which takes the time of the
//! entry that created it; a later entry only ever extends it.

use std::sync::atomic::{AtomicU8, Ordering};
use std::time::SystemTime;

use cache_core::time::to_millis;

use crate::connection::Connection;

/// A set's time while an entry kept for good is in it (9999-12-31, in Unix milliseconds):
/// never, in practice, and still a time, so "no time" keeps meaning "just created".
pub(crate) const KEPT_FOR_GOOD_MS: i64 = 253_402_300_799_999;

/// The add on a server older than Redis 7.0, whose `PEXPIREAT` takes no `NX` or `GT`: the
/// same rule in one step. KEYS[1] the set, ARGV[1] the key, ARGV[2] the set's time (Unix ms),
/// ARGV[3] that time in milliseconds from now (at least 1).
const ADD_SCRIPT: &str = r"
redis.call('SADD', KEYS[1], ARGV[1])
local left = redis.call('PTTL', KEYS[1])
if left == -1 or left < tonumber(ARGV[3]) then redis.call('PEXPIREAT', KEYS[1], ARGV[2]) end
return 1
";

// What `GroupAdds` holds: 0 (its default) until the server has been asked, then one of these.
const OPTIONS: u8 = 1;
const SCRIPT: u8 = 2;

/// How a set is kept alive on this store's server, found out at the first add (`INFO server`)
/// and kept: three plain commands where `PEXPIREAT` takes `NX` and `GT` (Redis 7.0 and
/// later), a Lua script otherwise. Measured on a local Redis 7.0: the script cost 17 µs of
/// server time per call (`EVALSHA` as much as `EVAL`), the three commands about 4 µs.
#[derive(Debug, Default)]
pub(crate) struct GroupAdds(AtomicU8);

impl GroupAdds {
    /// Adds to `pipe` the commands putting `key` in `set`, kept at least until
    /// `retain_until` (for good without one).
    pub(crate) async fn add(
        &self,
        connection: &Connection,
        pipe: &mut redis::Pipeline,
        set: &str,
        key: &str,
        retain_until: Option<SystemTime>,
    ) {
        let at = retain_until.map_or(KEPT_FOR_GOOD_MS, |until| {
            to_millis(until).min(KEPT_FOR_GOOD_MS)
        });
        if self.server_takes_options(connection).await {
            pipe.add_command(with_args("SADD", &[set, key]));
            let at = at.to_string();
            // `NX`: a set just created takes the entry's time; `GT`: a longer-lived entry
            // extends it, a shorter one never shortens it.
            for condition in ["NX", "GT"] {
                pipe.add_command(with_args("PEXPIREAT", &[set, &at, condition]));
            }
            return;
        }
        let left = (at - to_millis(SystemTime::now())).max(1);
        let mut script = redis::cmd("EVAL");
        script
            .arg(ADD_SCRIPT)
            .arg(1)
            .arg(set)
            .arg(key)
            .arg(at)
            .arg(left);
        pipe.add_command(script);
    }

    /// Whether `PEXPIREAT` takes `NX` and `GT` here; asked once. A server that cannot be
    /// asked now gets the script this time (it holds everywhere) and is asked again later.
    async fn server_takes_options(&self, connection: &Connection) -> bool {
        match self.0.load(Ordering::Relaxed) {
            OPTIONS => return true,
            SCRIPT => return false,
            _ => {}
        }
        let Ok(info) = connection
            .query::<String>(redis::cmd("INFO").arg("server"))
            .await
        else {
            return false;
        };
        let takes = takes_expiry_options(&info);
        let learnt = if takes { OPTIONS } else { SCRIPT };
        self.0.store(learnt, Ordering::Relaxed);
        takes
    }

    /// Adds with the script from now on, as on a server older than 7.0.
    #[cfg(test)]
    pub(crate) fn use_script(&self) {
        self.0.store(SCRIPT, Ordering::Relaxed);
    }
}

/// The command `name` with `args`, built at its final size.
fn with_args(name: &str, args: &[&str]) -> redis::Cmd {
    let bytes = name.len() + args.iter().map(|arg| arg.len()).sum::<usize>();
    let mut cmd = redis::Cmd::with_capacity(args.len() + 1, bytes);
    cmd.arg(name);
    for arg in args {
        cmd.arg(*arg);
    }
    cmd
}

/// Whether the server `INFO server` describes is Redis 7.0 or later (Valkey reports the Redis
/// version it matches); false when it names none.
fn takes_expiry_options(info: &str) -> bool {
    info.lines()
        .find_map(|line| line.strip_prefix("redis_version:"))
        .and_then(|version| version.trim().split('.').next()?.parse::<u32>().ok())
        .is_some_and(|major| major >= 7)
}

#[cfg(test)]
mod tests {
    use super::takes_expiry_options;

    #[test]
    fn the_server_version_decides() {
        let info = |version: &str| {
            format!("# Server\r\nredis_version:{version}\r\nredis_mode:standalone\r\n")
        };
        assert!(takes_expiry_options(&info("7.0.15")));
        assert!(takes_expiry_options(&info("7.2.4")));
        assert!(takes_expiry_options(&info("8.0.1")));
        assert!(!takes_expiry_options(&info("6.2.14")));
        assert!(!takes_expiry_options(&info("5.0.7")));
        assert!(!takes_expiry_options(&info("unknown")));
        assert!(!takes_expiry_options(
            "# Server\r\nredis_mode:standalone\r\n"
        ));
    }
}
