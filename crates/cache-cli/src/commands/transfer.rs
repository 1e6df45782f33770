//! `export`, `import` and `copy`: every entry of one store into another, through
//! [`reqwest_caching::transfer`], after checking the source: an entry of a newer format
//! stops the copy before anything is written; damaged entries (copied as they are) and
//! records the store holds but cannot list (not copied) are counted in the report.

use futures_util::StreamExt;
use reqwest_caching::transfer::{self, TransferError};
use serde_json::json;

use super::Context;
use crate::error::CliError;
use crate::output;
use crate::progress;
use crate::scan::{NewerFormats, scan, unlisted};
use crate::store_spec::{Open, StoreSpec};

/// Copies every entry of `from` into `to` (created when missing).
///
/// # Errors
///
/// Either store's; [`CliError::NewerFormat`] when the source holds entries of a newer
/// format (the destination is then not even opened).
pub async fn run(cx: &Context, from: &StoreSpec, to: &StoreSpec) -> Result<(), CliError> {
    let source = from.open(Open::ReadOnly).await?;
    let bar = progress::counter("checking");
    let mut newer = NewerFormats::default();
    let (mut count, mut unreadable) = (0, 0);
    let mut entries = scan(&*source, |_| true);
    while let Some(entry) = entries.next().await {
        let entry = entry.map_err(|e| CliError::store(format!("reading {from}"), e))?;
        bar.inc(1);
        count += 1;
        unreadable += u64::from(entry.readable.is_err());
        newer.note(&entry);
    }
    drop(entries);
    bar.finish_and_clear();
    newer.refuse()?;
    let unlisted = unlisted(&*source, count).await;

    let destination = to.open(Open::CreateIfMissing).await?;
    let bar = progress::bar(count, "copying");
    let done = transfer::copy(&*source, &*destination, |p| {
        bar.set_position(p.entries + p.skipped);
    })
    .await
    .map_err(|e| match e {
        TransferError::Source(e) => CliError::store(format!("reading {from}"), e),
        TransferError::Destination(e) => CliError::store(format!("writing {to}"), e),
        other => CliError::store(
            format!("copying {from} to {to}"),
            reqwest_caching::StoreError::backend(other),
        ),
    })?;
    bar.finish_and_clear();
    if cx.json {
        return output::print_json(&json!({
            "from": from.to_string(),
            "to": to.to_string(),
            "entries": done.entries,
            "bytes": done.bytes,
            "skipped": done.skipped,
            "unreadable": unreadable,
            "unlisted": unlisted,
        }));
    }
    output::line(format_args!(
        "copied {} entries ({}) from {from} to {to}{}{}{}",
        done.entries,
        output::size(done.bytes),
        match done.skipped {
            0 => String::new(),
            n => format!("; {n} skipped (deleted meanwhile, or too large for the destination)"),
        },
        match unreadable {
            0 => String::new(),
            n => format!("; {n} unreadable by this build (damaged?), copied as they are"),
        },
        match unlisted {
            0 => String::new(),
            n =>
                format!("; {n} stored but not listed (records this build cannot read), not copied"),
        }
    ))?;
    Ok(())
}
