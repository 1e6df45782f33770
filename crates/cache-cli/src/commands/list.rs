//! `ls`: the entries a filter keeps, from their metadata alone (no value is read).

use futures_util::StreamExt;
use reqwest_caching::{CacheStore, EntryMeta};
use serde_json::json;

use super::Context;
use crate::error::CliError;
use crate::output;
use crate::select::Filter;

/// Lists the entries of `store` that `filter` keeps, by URL then creation time.
///
/// # Errors
///
/// The store's; an invalid glob.
pub async fn run(cx: &Context, store: &dyn CacheStore, filter: &Filter) -> Result<(), CliError> {
    let selector = filter.selector(cx.now)?;
    let mut listed = store.entries();
    let mut kept: Vec<EntryMeta> = Vec::new();
    while let Some(meta) = listed.next().await {
        let meta = meta.map_err(|e| CliError::store(format!("listing {}", cx.name), e))?;
        if selector.matches(&meta) {
            kept.push(meta);
        }
    }
    kept.sort_by(|a, b| (&a.url, a.created_at).cmp(&(&b.url, b.created_at)));
    if cx.json {
        let entries: Vec<serde_json::Value> = kept
            .iter()
            .map(|meta| {
                json!({
                    "url": meta.url,
                    "key": meta.key.as_str(),
                    "created_at": output::json_time(meta.created_at),
                    "expires_at": meta.expires_at.map(output::json_time),
                    "expired": meta.is_expired(cx.now),
                    "variant_of": meta.variant_of.as_ref().map(|k| k.as_str().to_owned()),
                })
            })
            .collect();
        return output::print_json(&serde_json::Value::Array(entries));
    }
    for meta in &kept {
        let expires = match meta.expires_at {
            None => "never expires".to_owned(),
            Some(_) if meta.is_expired(cx.now) => "EXPIRED".to_owned(),
            Some(at) => format!("expires {}", output::relative(at, cx.now)),
        };
        output::line(format_args!(
            "{}  {}  {:<20}  {}",
            meta.key,
            output::time(meta.created_at),
            expires,
            output::printable(&meta.url)
        ))?;
    }
    Ok(())
}
