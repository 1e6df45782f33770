//! URL group sets: `{prefix}:g:{group}` holds the keys of a URL group's entries (for
//! `entries_for_url`) and lives at least as long as the longest-lived of them. A key leaves the
//! set when the store deletes its entry; keys of entries the server dropped (expired,
//! evicted) stay in the set until a lookup of the group prunes them, or an add finds the set
//! over [`PRUNE_ABOVE`] members and prunes a sample
//! ([`prunes_after`]): a set that keeps getting new keys (a token per user on one URL) holds
//! about its live entries rather than every key it ever had. The adds of keys that may prune
//! ([`may_prune`], one in eight) end with `SCARD`, to know; the others need no size.
//!
//! Every set has a time: the latest retention of the entries added to it, 9999-12-31 for an
//! entry kept for good. Earlier builds made a set of an entry kept for good persistent
//! instead; such a set is given 9999-12-31 before anything else is added to it, so that a set
//! without a time is always one just created, which takes the time of the entry creating it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::SystemTime;

use cache_core::time::to_millis;

use crate::command::with_args;

/// A set's time while an entry kept for good is in it (9999-12-31, in Unix milliseconds):
/// never, in practice, and still a time, so "no time" keeps meaning "just created".
pub(crate) const KEPT_FOR_GOOD_MS: i64 = 253_402_300_799_999;

/// [`KEPT_FOR_GOOD_MS`] as a command argument, written out once rather than on every write.
const KEPT_FOR_GOOD_TEXT: &str = "253402300799999";

/// Over this many members, an add may prune its set ([`prunes_after`]).
pub(crate) const PRUNE_ABOVE: i64 = 64;

/// How many members a prune checks. One new key in eight prunes, so each checks four in
/// all: a set getting a new key per add settles with about one member in four gone (a
/// simulation of keys living 200 adds: 73 gone beside 200 live, 283 members at most).
pub(crate) const PRUNE_SAMPLE: usize = 32;

/// Whether the add of `key` to a set `size` members large prunes it: over [`PRUNE_ABOVE`],
/// for the keys that [`may_prune`]. A `size` read for any other key is not its set's (its
/// add asks for none) and is never looked at.
pub(crate) fn prunes_after(key: &cache_core::CacheKey, size: Option<i64>) -> bool {
    may_prune(key.as_str()) && size.is_some_and(|size| size > PRUNE_ABOVE)
}

/// Whether an add of `key` may prune its set: one key in eight, by its last hex digit. Keys
/// are digests, so which keys prune is as good as random, with no random source and nothing
/// kept between adds; such a key prunes on each of its writes (each a sample of 32), and a
/// key written again adds no member. Only these adds ask the set's size (`SCARD`): the
/// other seven in eight save a command and its reply on every write.
pub(crate) fn may_prune(key: &str) -> bool {
    key.bytes()
        .last()
        .and_then(|digit| char::from(digit).to_digit(16))
        .is_some_and(|digit| digit % 8 == 0)
}

/// Removes from a set, atomically, each named member whose entry is not in its group any
/// more (gone, or rewritten into another group): a rewrite can land between a reader seeing
/// an entry gone and its removal, and would then be listed nowhere. `KEYS[1]` the set,
/// `KEYS[2..]` the members' entries; `ARGV[1]` the group, `ARGV[2..]` the members (each
/// beside its entry). An entry key holding something other than a hash is not an entry;
/// any other error ends the script, so a server refusing a read is never taken for entries
/// gone. Single servers only: a cluster may keep the entries on other nodes.
pub(crate) const PRUNE_SCRIPT: &str = r"
local removed = 0
for i = 2, #KEYS do
  local group = redis.pcall('HGET', KEYS[i], 'g')
  if type(group) == 'table' and group.err and not string.find(group.err, 'WRONGTYPE', 1, true) then
    return redis.error_reply(group.err)
  end
  if type(group) ~= 'string' or group ~= ARGV[1] then
    removed = removed + redis.call('SREM', KEYS[1], ARGV[i])
  end
end
return removed
";

/// How many members one run of [`PRUNE_SCRIPT`] checks (or one cluster `SREM` removes) at
/// most: a set an earlier build let grow may hold a million gone, and one command over all
/// of them would hold the server.
pub(crate) const PRUNE_SCRIPT_MEMBERS: usize = 256;

/// The add as one script, for servers whose `PEXPIREAT` takes no `NX` or `GT` (older than
/// Redis 7.0, or claiming 7 without them): the same rule, then the set's size. `KEYS[1]` the
/// set, `ARGV[1]` the key, `ARGV[2]` the set's time (Unix ms), `ARGV[3]` that time in
/// milliseconds from now (at least 1), `ARGV[4]` [`KEPT_FOR_GOOD_MS`], or empty where a set
/// without a time was just created by this very add (its plain commands ran up to their
/// refused options).
const ADD_SCRIPT: &str = r"
if ARGV[4] ~= '' and redis.call('PTTL', KEYS[1]) == -1 then
  redis.call('PEXPIREAT', KEYS[1], ARGV[4])
end
redis.call('SADD', KEYS[1], ARGV[1])
local left = redis.call('PTTL', KEYS[1])
if left == -1 or left < tonumber(ARGV[3]) then redis.call('PEXPIREAT', KEYS[1], ARGV[2]) end
return redis.call('SCARD', KEYS[1])
";

/// How this store's server keeps a set alive: plain commands until the server refuses them,
/// the script from then on.
///
/// The plain commands are `PEXPIREAT set 9999-12-31 NX` (a set an earlier build made
/// persistent is kept for good, as it was), `SADD`, `PEXPIREAT set at NX` (the set just
/// created takes the entry's time) and `PEXPIREAT set at GT` (a longer-lived entry extends
/// it, a shorter one never shortens it). Measured on a local Redis 7.0: a Lua script cost
/// 17 µs of server time per call (`EVALSHA` as much as `EVAL`), these about 5 µs. An entry
/// kept for good takes neither (see [`add_for_good`]).
#[derive(Debug, Default)]
pub(crate) struct GroupAdds {
    by_script: AtomicBool,
    /// Tests: the server refuses the plain commands' options, when queued as a server older
    /// than 7.0 does, or when they run.
    #[cfg(test)]
    pub(crate) refused: std::sync::Mutex<Option<Refusal>>,
    /// Tests: holds a cluster's put between its write and its second add.
    #[cfg(test)]
    pub(crate) second_add_gate: cache_core::testing::Gate,
}

impl GroupAdds {
    /// Whether adds go by script (the server refused the plain commands once).
    pub(crate) fn by_script(&self) -> bool {
        self.by_script.load(Ordering::Relaxed)
    }

    /// Adds go by script from now on.
    pub(crate) fn use_script(&self) {
        self.by_script.store(true, Ordering::Relaxed);
    }

    /// Adds to `pipe` the commands putting `key` in `set`, kept at least until
    /// `retain_until` (for good without one): two plain ones for an entry kept for good, else
    /// the conditional plain commands, or the script when `by_script`. The last reply is the
    /// set's size after when `key` [`may_prune`] (the script's always is).
    pub(crate) fn add(
        &self,
        pipe: &mut redis::Pipeline,
        member: (&str, &str),
        retain_until: Option<SystemTime>,
        by_script: bool,
    ) {
        if set_time(retain_until) == KEPT_FOR_GOOD_MS {
            add_for_good(pipe, member);
        } else if by_script {
            add_by_script(pipe, member, retain_until, Refusal::Queued);
        } else {
            self.add_plain(pipe, member, retain_until);
        }
    }

    fn add_plain(
        &self,
        pipe: &mut redis::Pipeline,
        (set, key): (&str, &str),
        retain_until: Option<SystemTime>,
    ) {
        let at = set_time(retain_until);
        pipe.add_command(with_args("PEXPIREAT", &[set, KEPT_FOR_GOOD_TEXT, "NX"]));
        pipe.add_command(with_args("SADD", &[set, key]));
        let at = at.to_string();
        #[cfg(test)]
        match *self.refused.lock().unwrap() {
            // An unknown command is refused when queued, an unknown option when run.
            Some(Refusal::Queued) => {
                pipe.add_command(with_args("PEXPIREAT-REFUSED", &[set, &at]));
                return;
            }
            Some(Refusal::Executed) => {
                pipe.add_command(with_args("PEXPIREAT", &[set, &at, "REFUSED"]));
                return;
            }
            None => {}
        }
        for condition in ["NX", "GT"] {
            pipe.add_command(with_args("PEXPIREAT", &[set, &at, condition]));
        }
        add_size_if_pruning(pipe, (set, key));
    }
}

/// Ends an add of `key` to `set` with `SCARD` when the size is wanted ([`may_prune`]).
fn add_size_if_pruning(pipe: &mut redis::Pipeline, (set, key): (&str, &str)) {
    if may_prune(key) {
        pipe.add_command(with_args("SCARD", &[set]));
    }
}

/// Adds to `pipe` the commands putting `key` in `set` for an entry kept for good: `SADD`, and
/// the set given [`KEPT_FOR_GOOD_MS`] outright. That is what the rule makes of any set then
/// (no time is later, a persistent set's included), in two commands where the conditional
/// ones take four (each then `SCARD` where wanted), and with no option an older server
/// refuses, so never by script. The default settings keep every entry for good.
fn add_for_good(pipe: &mut redis::Pipeline, (set, key): (&str, &str)) {
    pipe.add_command(with_args("SADD", &[set, key]));
    pipe.add_command(with_args("PEXPIREAT", &[set, KEPT_FOR_GOOD_TEXT]));
    add_size_if_pruning(pipe, (set, key));
}

/// How the server refused a group add's plain commands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// While the transaction was queued (as a server older than 7.0 checks `PEXPIREAT`'s
    /// arguments): nothing of it ran.
    Queued,
    /// When it ran: everything else did, the set's time included where it had one, so a set
    /// without a time is one this add created.
    Executed,
}

/// Adds to `pipe` the add by script, after `refusal` of the plain commands (or, as
/// [`Refusal::Queued`], in place of them).
pub(crate) fn add_by_script(
    pipe: &mut redis::Pipeline,
    (set, key): (&str, &str),
    retain_until: Option<SystemTime>,
    refusal: Refusal,
) {
    let at = set_time(retain_until);
    let left = (at - to_millis(SystemTime::now())).max(1);
    let legacy = match refusal {
        Refusal::Queued => KEPT_FOR_GOOD_TEXT,
        Refusal::Executed => "",
    };
    let mut script = redis::cmd("EVAL");
    script
        .arg(ADD_SCRIPT)
        .arg(1)
        .arg(set)
        .arg(key)
        .arg(at)
        .arg(left)
        .arg(legacy);
    pipe.add_command(script);
}

/// Whether `error`, the failure of a transaction whose group add begins at command `first`,
/// is the server refusing the add's options (and when), rather than anything else: every
/// error it names is the add's, and says the command or its arguments are unknown.
pub(crate) fn refusal(error: &redis::RedisError, first: usize) -> Option<Refusal> {
    let when = match error.kind() {
        redis::ErrorKind::Server(redis::ServerErrorKind::ExecAbort) => Refusal::Queued,
        _ => Refusal::Executed,
    };
    let errors = error.clone().into_server_errors()?;
    let refused = !errors.is_empty()
        && errors
            .iter()
            .all(|(index, error)| *index >= first && refuses_arguments(error));
    refused.then_some(when)
}

/// An `ERR` saying a command or its arguments are not known (how Redis 6 answers
/// `PEXPIREAT key at NX`: "wrong number of arguments").
fn refuses_arguments(error: &redis::ServerError) -> bool {
    const REFUSALS: [&str; 5] = [
        "wrong number of arguments",
        "syntax error",
        "unknown command",
        "unsupported option",
        "unknown option",
    ];
    error.code() == "ERR"
        && error.details().is_some_and(|details| {
            let details = details.to_ascii_lowercase();
            REFUSALS.iter().any(|refusal| details.contains(refusal))
        })
}

/// A set's time for an entry kept until `retain_until` (for good without one).
fn set_time(retain_until: Option<SystemTime>) -> i64 {
    retain_until.map_or(KEPT_FOR_GOOD_MS, |until| {
        to_millis(until).min(KEPT_FOR_GOOD_MS)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_time_kept_for_good_is_written_as_its_number() {
        assert_eq!(KEPT_FOR_GOOD_TEXT, KEPT_FOR_GOOD_MS.to_string());
    }

    /// The commands an add puts in a pipeline, as text.
    fn commands(pipe: &redis::Pipeline) -> Vec<Vec<String>> {
        pipe.cmd_iter()
            .map(|cmd| {
                cmd.args_iter()
                    .map(|arg| match arg {
                        redis::Arg::Simple(bytes) => String::from_utf8_lossy(bytes).into_owned(),
                        _ => "(cursor)".to_owned(),
                    })
                    .collect()
            })
            .collect()
    }

    /// A key that may prune (last digit 0 or 8) and one that may not.
    const PRUNING: &str = "0123456789abcdef0123456789abcde8";
    const NOT_PRUNING: &str = "0123456789abcdef0123456789abcde7";

    /// An entry kept for good (the default) joins its set in two commands, with no option an
    /// older server refuses, whichever way the store adds otherwise; a timed entry keeps the
    /// conditional ones (their effect on the set: `group_set_tests`). Only a key that may
    /// prune asks the set's size.
    #[test]
    fn an_entry_kept_for_good_joins_in_two_commands() {
        let adds = GroupAdds::default();
        let far_off = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(300_000_000_000);
        for by_script in [false, true] {
            for retain_until in [None, Some(far_off)] {
                for key in [PRUNING, NOT_PRUNING] {
                    let mut pipe = redis::Pipeline::new();
                    adds.add(&mut pipe, ("set", key), retain_until, by_script);
                    let mut expected = vec![
                        vec!["SADD", "set", key],
                        vec!["PEXPIREAT", "set", KEPT_FOR_GOOD_TEXT],
                    ];
                    if key == PRUNING {
                        expected.push(vec!["SCARD", "set"]);
                    }
                    assert_eq!(
                        commands(&pipe),
                        expected,
                        "by script: {by_script}, until {retain_until:?}"
                    );
                }
            }
        }
        let soon = SystemTime::now() + std::time::Duration::from_secs(60);
        for (key, count) in [(PRUNING, 5), (NOT_PRUNING, 4)] {
            let mut pipe = redis::Pipeline::new();
            adds.add(&mut pipe, ("set", key), Some(soon), false);
            assert_eq!(commands(&pipe).len(), count, "{:?}", commands(&pipe));
            let asks_size = commands(&pipe)
                .last()
                .is_some_and(|last| last[0] == "SCARD");
            assert_eq!(asks_size, key == PRUNING);
        }
    }

    /// One key in eight, by its last digit, and only those.
    #[test]
    fn one_key_in_eight_may_prune() {
        let pruning = (0..16u32)
            .filter(|digit| may_prune(&format!("abc{digit:x}")))
            .collect::<Vec<_>>();
        assert_eq!(pruning, [0, 8]);
        assert!(!may_prune(""));
        assert!(!may_prune("not hex"));
    }
}
