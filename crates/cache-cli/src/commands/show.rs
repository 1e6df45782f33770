//! `show`: one stored response, read raw and decoded here (an unreadable entry is reported
//! and left in place).

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use http::{HeaderMap, Method};
use reqwest_caching::{CacheKey, CacheStore, CachedResponse, EntryMeta};
use serde_json::json;

use super::Context;
use crate::entry_format::{self, Decoded, FORMAT_VERSION, Unreadable};
use crate::error::CliError;
use crate::output;

/// What was found for the URL or key asked for.
enum Found {
    Response(EntryMeta, Box<CachedResponse>),
    VaryIndex(EntryMeta, Vec<String>),
}

/// Shows the response stored for a GET of `url` (the most recent, whatever credential or
/// variant it was stored for), or the entry under `key`.
///
/// # Errors
///
/// [`CliError::NotFound`] when there is none; [`CliError::NewerFormat`] or
/// [`CliError::Unreadable`] when it does not decode; the store's.
pub async fn run(
    cx: &Context,
    store: &Arc<dyn CacheStore>,
    url: Option<&str>,
    key: Option<&str>,
    body: Option<&Path>,
) -> Result<(), CliError> {
    let found = match (url, key) {
        (_, Some(key)) => by_key(cx, store, &parse_key(key)?).await?,
        (Some(url), None) => by_url(cx, store, url).await?,
        (None, None) => return Err(CliError::Usage("give a URL or --key".to_owned())),
    };
    if let Some(path) = body {
        let Found::Response(_, response) = &found else {
            return Err(CliError::NotFound(
                "this entry is a Vary index: it has no body".to_owned(),
            ));
        };
        write_body(path, &response.body)?;
        if path == Path::new("-") {
            return Ok(());
        }
    }
    print(cx, &found)
}

/// A key as `ls` prints it.
pub fn parse_key(key: &str) -> Result<CacheKey, CliError> {
    key.parse()
        .map_err(|_| CliError::Usage(format!("{key:?} is not a cache key (32 hex digits)")))
}

async fn by_key(
    cx: &Context,
    store: &Arc<dyn CacheStore>,
    key: &CacheKey,
) -> Result<Found, CliError> {
    let read = store
        .get(key)
        .await
        .map_err(|e| CliError::store(format!("reading {}", cx.name), e))?;
    let Some(entry) = read else {
        return Err(CliError::NotFound(format!("no entry under key {key}")));
    };
    match entry_format::decode(&entry.value) {
        Ok(Decoded::Response(response)) => Ok(Found::Response(entry.meta, response)),
        Ok(Decoded::VaryIndex(headers)) => Ok(Found::VaryIndex(entry.meta, headers)),
        Err(why) => Err(unreadable(&entry.meta, why)),
    }
}

async fn by_url(cx: &Context, store: &Arc<dyn CacheStore>, url: &str) -> Result<Found, CliError> {
    let handle = super::handle(store)?;
    let mut keys = handle.keys_for_url(url).await?;
    // An entry written before URL groups existed is found only by its key.
    keys.push(handle.key_for(&Method::GET, url)?);
    let mut best: Option<(EntryMeta, Box<CachedResponse>)> = None;
    let mut failure: Option<CliError> = None;
    for key in keys {
        let read = store
            .get(&key)
            .await
            .map_err(|e| CliError::store(format!("reading {}", cx.name), e))?;
        let Some(entry) = read else { continue };
        match entry_format::decode(&entry.value) {
            Ok(Decoded::Response(response)) if response.request.method == Method::GET => {
                if best
                    .as_ref()
                    .is_none_or(|(meta, _)| meta.created_at < entry.meta.created_at)
                {
                    best = Some((entry.meta, response));
                }
            }
            Ok(_) => {}
            // A newer format is the clearer report: it says what to do.
            Err(why @ Unreadable::Newer(_)) => failure = Some(unreadable(&entry.meta, why)),
            Err(why) => {
                failure.get_or_insert_with(|| unreadable(&entry.meta, why));
            }
        }
    }
    match (best, failure) {
        (Some((meta, response)), _) => Ok(Found::Response(meta, response)),
        (None, Some(failure)) => Err(failure),
        (None, None) => Err(CliError::NotFound(format!(
            "no response to a GET of {url} is stored"
        ))),
    }
}

fn unreadable(meta: &EntryMeta, why: Unreadable) -> CliError {
    match why {
        Unreadable::Newer(version) => CliError::NewerFormat {
            version,
            ours: FORMAT_VERSION,
            count: 1,
            url: meta.url.clone(),
        },
        Unreadable::Invalid(reason) => CliError::Unreadable {
            url: meta.url.clone(),
            reason,
        },
    }
}

fn write_body(path: &Path, body: &[u8]) -> Result<(), CliError> {
    let written = if path == Path::new("-") {
        let mut out = std::io::stdout().lock();
        out.write_all(body).and_then(|()| out.flush())
    } else {
        std::fs::write(path, body)
    };
    written.map_err(|source| CliError::Io {
        context: format!("writing the body to {}", path.display()),
        source,
    })
}

/// Header pairs as text (a value that is not UTF-8 shown with replacement characters).
fn header_pairs(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect()
}

fn print(cx: &Context, found: &Found) -> Result<(), CliError> {
    let (meta, response) = match found {
        Found::Response(meta, response) => (meta, Some(response)),
        Found::VaryIndex(meta, _) => (meta, None),
    };
    let expires_at = meta.expires_at.map(output::json_time);
    if cx.json {
        let mut shown = json!({
            "url": meta.url,
            "key": meta.key.as_str(),
            "created_at": output::json_time(meta.created_at),
            "expires_at": expires_at,
            "expired": meta.is_expired(cx.now),
        });
        match found {
            Found::Response(_, response) => {
                shown["kind"] = json!("response");
                shown["status"] = json!(response.status.as_u16());
                shown["version"] = json!(format!("{:?}", response.version));
                shown["headers"] = json!(header_pairs(&response.headers));
                shown["body_bytes"] = json!(response.body.len());
                shown["request"] = json!({
                    "method": response.request.method.as_str(),
                    "url": response.request.url,
                    "headers": header_pairs(&response.request.headers),
                });
            }
            Found::VaryIndex(_, headers) => {
                shown["kind"] = json!("vary-index");
                shown["vary"] = json!(headers);
            }
        }
        return output::print_json(&shown);
    }
    println!("url       {}", output::printable(&meta.url));
    println!("key       {}", meta.key);
    println!(
        "stored    {} ({})",
        output::time(meta.created_at),
        output::relative(meta.created_at, cx.now)
    );
    match meta.expires_at {
        None => println!("expires   never"),
        Some(at) => println!(
            "expires   {} ({}{})",
            output::time(at),
            output::relative(at, cx.now),
            if meta.is_expired(cx.now) {
                ", expired"
            } else {
                ""
            }
        ),
    }
    match (found, response) {
        (_, Some(response)) => {
            println!("status    {} ({:?})", response.status, response.version);
            println!(
                "request   {} {}",
                response.request.method,
                output::printable(&response.request.url)
            );
            println!("body      {}", output::size(response.body.len() as u64));
            println!("headers");
            for (name, value) in header_pairs(&response.headers) {
                println!("  {name}: {}", output::printable(&value));
            }
        }
        (Found::VaryIndex(_, headers), None) => {
            println!(
                "kind      Vary index: responses vary on {}",
                output::printable(&headers.join(", "))
            );
        }
        (Found::Response(..), None) => {}
    }
    Ok(())
}
