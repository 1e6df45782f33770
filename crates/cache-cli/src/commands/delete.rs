//! `rm` and `purge`: deleting entries, after checking that this build reads every one it
//! would delete (nothing is deleted otherwise).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::SystemTime;

use futures_util::StreamExt;
use http::Method;
use reqwest_caching::cache_core::orphans::DeletedParents;
use reqwest_caching::{CacheKey, CacheStore, EntryMeta};
use serde_json::json;

use super::Context;
use super::show::parse_key;
use crate::error::CliError;
use crate::output;
use crate::progress;
use crate::scan::{NewerFormats, read_one, scan};
use crate::select::Filter;

/// Deletes every entry stored for `url` (every method, credential and variant), or the one
/// under `key`.
///
/// # Errors
///
/// [`CliError::NotFound`] when there is none; [`CliError::NewerFormat`] (nothing deleted);
/// the store's.
pub async fn remove(
    cx: &Context,
    store: &Arc<dyn CacheStore>,
    url: Option<&str>,
    key: Option<&str>,
) -> Result<(), CliError> {
    let named = key.map(parse_key).transpose()?;
    let (keys, what): (BTreeSet<CacheKey>, String) = match (url, named) {
        (_, Some(named)) => ([named].into(), format!("key {named}")),
        (Some(url), None) => {
            let handle = super::handle(store)?;
            let mut keys: BTreeSet<CacheKey> =
                handle.keys_for_url(url).await?.into_iter().collect();
            // Entries written before URL groups existed are found only by their keys.
            for method in [Method::GET, Method::HEAD] {
                keys.insert(handle.key_for(&method, url)?);
            }
            (keys, url.to_owned())
        }
        (None, None) => return Err(CliError::Usage("give a URL or --key".to_owned())),
    };
    let reading = |e| CliError::store(format!("reading {}", cx.name), e);
    let mut present = Vec::new();
    let mut newer = NewerFormats::default();
    // Read as a scan reads: a body kept in its file is not read into memory to check its
    // entry's format (a cached download may be larger than memory).
    for key in keys {
        let Some(scanned) = read_one(&**store, &key).await.map_err(reading)? else {
            continue;
        };
        // A key named is deleted whatever its format, as `--key` promises (one damaged
        // byte reads as a newer format too); a URL's entries of a newer one stop the removal.
        if named.is_none() {
            newer.note(&scanned);
        }
        present.push(scanned.meta);
    }
    newer.refuse()?;
    if present.is_empty() {
        if let Some(named) = named {
            return remove_unreadable(cx, &**store, &named, &what).await;
        }
        return Err(CliError::NotFound(format!("no entry for {what}")));
    }
    let deleted = delete_each(cx, &**store, &present).await?;
    report(cx, deleted)
}

/// `rm --key` of a key under which nothing could be read: a record the store holds but
/// cannot read (damaged, or of a later version's format) is not listed, and no other
/// command but `purge --all` reached it. Named by its key, it is deleted as the store
/// deletes what it cannot read; [`CliError::NotFound`] when there was nothing at all.
async fn remove_unreadable(
    cx: &Context,
    store: &dyn CacheStore,
    key: &CacheKey,
    what: &str,
) -> Result<(), CliError> {
    let deleted = store
        .delete(key)
        .await
        .map_err(|e| CliError::store(format!("deleting from {}", cx.name), e))?;
    if !deleted {
        return Err(CliError::NotFound(format!("no entry for {what}")));
    }
    if !cx.json {
        eprintln!(
            "the entry under {what} could not be read (damaged, or a later version's): deleted as asked"
        );
    }
    report(cx, 1)
}

/// Deletes the entries `filter` keeps, or all with `all`, after asking (unless `yes`).
///
/// # Errors
///
/// [`CliError::Usage`] without a filter or `--all` (or with both);
/// [`CliError::NewerFormat`] (nothing deleted); [`CliError::NotConfirmed`]; the store's.
pub async fn purge(
    cx: &Context,
    store: &dyn CacheStore,
    filter: &Filter,
    all: bool,
    yes: bool,
) -> Result<(), CliError> {
    match (all, filter.any()) {
        (true, true) => {
            return Err(CliError::Usage(
                "--all takes no filter: give one or the other".to_owned(),
            ));
        }
        (false, false) => {
            return Err(CliError::Usage(
                "purge what? give --expired, --older-than, --host, --url or --all".to_owned(),
            ));
        }
        _ => {}
    }
    let selector = filter.selector(cx.now)?;
    // Every selected value is read first: an entry of a newer format stops the purge before
    // anything is deleted.
    let bar = progress::counter("checking");
    let mut selected = Vec::new();
    let mut newer = NewerFormats::default();
    let mut entries = scan(store, move |meta| selector.matches(meta));
    while let Some(entry) = entries.next().await {
        let entry = entry.map_err(|e| CliError::store(format!("reading {}", cx.name), e))?;
        bar.inc(1);
        newer.note(&entry);
        selected.push(entry.meta);
    }
    drop(entries);
    bar.finish_and_clear();
    newer.refuse()?;
    if selected.is_empty() {
        return report(cx, 0);
    }
    let n = selected.len();
    let question = if all {
        format!("delete all {n} entries of {}?", cx.name)
    } else {
        format!("delete {n} entries of {}?", cx.name)
    };
    output::confirm(&question, yes)?;
    let deleted = if all {
        // One call: the store clears in bulk (and takes entries stored since the check too,
        // as "all" means).
        store
            .clear()
            .await
            .map_err(|e| CliError::store(format!("clearing {}", cx.name), e))?
    } else {
        delete_each(cx, store, &selected).await?
    };
    report(cx, deleted)
}

/// Deletes each selected entry, with a progress bar, unless it was written again since it
/// was selected (the confirmation may take a while): that entry is no longer the one
/// selected. The variants of a Vary index deleted go too, selected or not (a lookup reaches
/// a variant only through its index; an index keeps the time it was first written, so
/// `--older-than` selects it before the variants written since). Returns how many were
/// deleted.
async fn delete_each(
    cx: &Context,
    store: &dyn CacheStore,
    selected: &[EntryMeta],
) -> Result<u64, CliError> {
    let failed = |e| CliError::store(format!("deleting from {}", cx.name), e);
    let bar = progress::bar(selected.len() as u64, "deleting");
    let mut deleted = 0;
    let mut parents = DeletedParents::default();
    // Variants written from now on belong to an index written since (the cache is in use
    // meanwhile), not to one deleted here: only older ones are orphans.
    let started = SystemTime::now();
    for meta in selected {
        let existed = store
            .delete_if_created(&meta.key, meta.created_at)
            .await
            .map_err(failed)?;
        if existed {
            deleted += 1;
            parents.note(meta);
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    let listing = |e| CliError::store(format!("listing {}", cx.name), e);
    for orphan in parents.orphans(store, started).await.map_err(listing)? {
        deleted += u64::from(
            store
                .delete_if_created(&orphan.key, orphan.created_at)
                .await
                .map_err(failed)?,
        );
    }
    Ok(deleted)
}

fn report(cx: &Context, deleted: u64) -> Result<(), CliError> {
    if cx.json {
        return output::print_json(&json!({ "deleted": deleted }));
    }
    output::line(format_args!(
        "deleted {deleted} entr{} from {}",
        if deleted == 1 { "y" } else { "ies" },
        cx.name
    ))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::tests::CountedGets;

    /// Removing a cached download reads no value whole: its body stays in its file while
    /// its entry's format is checked (`rm` read every entry whole, a download larger than
    /// memory included).
    #[tokio::test]
    async fn removing_a_large_download_reads_no_value_whole() {
        let dir = tempfile::tempdir().unwrap();
        let counted = CountedGets::open(dir.path());
        let key = CacheKey::from_digest([7; 16]);
        counted.put_response(key, vec![b'a'; 3 << 20]).await;
        let store: Arc<dyn CacheStore> = counted.clone();
        remove(&Context::for_tests(), &store, None, Some(key.as_str()))
            .await
            .unwrap();
        assert_eq!(counted.gets(), 0, "values read whole");
        assert!(counted.inner.get(&key).await.unwrap().is_none(), "removed");
    }

    /// `rm --key` of a record the store holds but cannot read (damaged here) deletes it: it
    /// answered "no entry" while the record stayed, listed by no command, so that only
    /// `purge --all` removed it. A key with nothing under it is still "no entry".
    #[tokio::test]
    async fn removing_by_key_takes_a_record_that_cannot_be_read() {
        let dir = tempfile::tempdir().unwrap();
        let counted = CountedGets::open(dir.path());
        let key = CacheKey::from_digest([7; 16]);
        counted.put_response(key, b"body".to_vec()).await;
        let record = counted.inner.record_path(&key);
        std::fs::write(&record, b"{ damaged").unwrap();
        let store: Arc<dyn CacheStore> = counted.clone();
        let cx = Context::for_tests();
        remove(&cx, &store, None, Some(key.as_str())).await.unwrap();
        assert!(!record.exists(), "the damaged record stayed");
        let again = remove(&cx, &store, None, Some(key.as_str())).await;
        assert!(matches!(again, Err(CliError::NotFound(_))), "{again:?}");
    }

    /// `rm` of a Vary index deletes its variants (no lookup reaches them after it) through
    /// the store's index of URLs: it listed every entry of the store after every `rm` to find
    /// them. Another index's variant of the same URL, and another URL's, stay.
    #[tokio::test]
    async fn removing_an_index_deletes_its_variants_without_listing_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let counted = CountedGets::open(dir.path());
        let key = |n: u8| CacheKey::from_digest([n; 16]);
        let meta = |n: u8, group: u8, of: Option<u8>| {
            let url = format!("https://example.com/{group}");
            EntryMeta::new(key(n), url, SystemTime::now(), None)
                .with_url_group(Some(key(100 + group)))
                .with_variant_of(of.map(key))
        };
        // URL 1: index 1 with variant 2, index 3 with variant 4; URL 2: variant 5 of index 1.
        for (n, group, of) in [(1, 1, None), (2, 1, Some(1)), (3, 1, None), (4, 1, Some(3))] {
            counted.put_meta(meta(n, group, of), b"body".to_vec()).await;
        }
        counted
            .put_meta(meta(5, 2, Some(1)), b"body".to_vec())
            .await;
        let store: Arc<dyn CacheStore> = counted.clone();
        remove(&Context::for_tests(), &store, None, Some(key(1).as_str()))
            .await
            .unwrap();
        let mut left = Vec::new();
        for n in 1..=5 {
            left.push(counted.inner.get(&key(n)).await.unwrap().is_some());
        }
        assert_eq!(left, [false, false, true, true, true]);
        assert_eq!(counted.listings(), 0, "the store was listed");
    }
}
