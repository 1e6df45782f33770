//! `stats`: entries, stored bytes, expired and unreadable entries, records the store holds
//! but cannot list, oldest and newest, per host.
//!
//! Bytes are the lengths of the stored values (the encoded entries: head and body, as
//! compressed when the cache compresses), read entry by entry; not the store's own footprint
//! (indexes, metadata, free pages), which no store reports the same way.

use std::collections::BTreeMap;
use std::time::SystemTime;

use futures_util::StreamExt;
use reqwest_caching::CacheStore;
use serde_json::json;

use super::Context;
use crate::error::CliError;
use crate::output;
use crate::progress;
use crate::scan::{NewerFormats, scan, unlisted};
use crate::select::host_of;

/// Counts for the whole store or one host.
#[derive(Debug, Default)]
struct Tally {
    entries: u64,
    bytes: u64,
    expired: u64,
    unreadable: u64,
}

impl Tally {
    /// Counts one entry of `bytes` bytes.
    fn count(&mut self, bytes: u64, expired: bool, unreadable: bool) {
        self.entries += 1;
        // Saturating: a body file's length is whatever its file system says (a sparse file
        // may claim exabytes), and a sum that wrapped printed a wrong total (and panicked in
        // a debug build).
        self.bytes = self.bytes.saturating_add(bytes);
        self.expired += u64::from(expired);
        self.unreadable += u64::from(unreadable);
    }
}

/// Prints the statistics of `store`.
///
/// # Errors
///
/// The store's; [`CliError::NewerFormat`] when it holds entries of a newer format.
pub async fn run(cx: &Context, store: &dyn CacheStore) -> Result<(), CliError> {
    let mut total = Tally::default();
    let mut hosts: BTreeMap<String, Tally> = BTreeMap::new();
    let mut oldest: Option<SystemTime> = None;
    let mut newest: Option<SystemTime> = None;
    let mut newer = NewerFormats::default();
    let bar = progress::counter("reading");
    let mut entries = scan(store, |_| true);
    while let Some(entry) = entries.next().await {
        let entry = entry.map_err(|e| CliError::store(format!("reading {}", cx.name), e))?;
        bar.inc(1);
        newer.note(&entry);
        let expired = entry.meta.is_expired(cx.now);
        let unreadable = entry.readable.is_err();
        for tally in [
            &mut total,
            hosts.entry(host_of(&entry.meta.url)).or_default(),
        ] {
            tally.count(entry.bytes, expired, unreadable);
        }
        let created = entry.meta.created_at;
        oldest = Some(oldest.map_or(created, |t| t.min(created)));
        newest = Some(newest.map_or(created, |t| t.max(created)));
    }
    bar.finish_and_clear();
    newer.refuse()?;
    let unlisted = unlisted(store, total.entries).await;
    if cx.json {
        let hosts: serde_json::Map<String, serde_json::Value> = hosts
            .iter()
            .map(|(host, t)| {
                let counts = json!({"entries": t.entries, "bytes": t.bytes, "expired": t.expired});
                (host.clone(), counts)
            })
            .collect();
        return output::print_json(&json!({
            "store": cx.name,
            "entries": total.entries,
            "bytes": total.bytes,
            "expired": total.expired,
            "unreadable": total.unreadable,
            "unlisted": unlisted,
            "oldest": oldest.map(output::json_time),
            "newest": newest.map(output::json_time),
            "hosts": hosts,
        }));
    }
    output::line(format_args!("store       {}", cx.name))?;
    output::line(format_args!(
        "entries     {} ({} expired, {} unreadable){}",
        total.entries,
        total.expired,
        total.unreadable,
        match unlisted {
            0 => String::new(),
            n => format!(
                "; {n} more stored but not listed (records this build cannot read, or written \
                 during the scan)"
            ),
        }
    ))?;
    output::line(format_args!(
        "bytes       {} ({} bytes of stored values)",
        output::size(total.bytes),
        total.bytes
    ))?;
    let when = |t: Option<SystemTime>| {
        t.map_or_else(
            || "-".to_owned(),
            |t| format!("{} ({})", output::time(t), output::relative(t, cx.now)),
        )
    };
    output::line(format_args!("oldest      {}", when(oldest)))?;
    output::line(format_args!("newest      {}", when(newest)))?;
    if !hosts.is_empty() {
        let width = hosts.keys().map(String::len).max().unwrap_or(0).max(4);
        output::line(format_args!(
            "\n{:<width$}  {:>8}  {:>8}  {:>10}",
            "HOST", "ENTRIES", "EXPIRED", "BYTES"
        ))?;
        for (host, t) in &hosts {
            let host = if host.is_empty() { "(none)" } else { host };
            output::line(format_args!(
                "{host:<width$}  {:>8}  {:>8}  {:>10}",
                t.entries,
                t.expired,
                output::size(t.bytes)
            ))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::Tally;

    /// Entries whose files claim lengths summing past what a `u64` holds are counted at the
    /// most it holds, not wrapped round to a small total.
    #[test]
    fn bytes_past_a_u64_saturate() {
        let mut tally = Tally::default();
        for _ in 0..3 {
            tally.count(1 << 63, false, false);
        }
        assert_eq!(tally.bytes, u64::MAX);
        assert_eq!(tally.entries, 3);
    }
}
