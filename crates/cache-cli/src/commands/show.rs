//! `show`: one stored response, read raw and decoded here (an unreadable entry is reported
//! and left in place). A body a store keeps in its file stays there: it is copied from the
//! file when asked for (`--body`), never read into memory.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use http::{HeaderMap, Method};
use reqwest_caching::cache_core::Opened;
use reqwest_caching::{CacheKey, CacheStore, CachedResponse, EntryMeta};
use serde_json::json;

use super::Context;
use crate::entry_format::{self, Decoded, FORMAT_VERSION, Unreadable};
use crate::error::CliError;
use crate::output;
use crate::scan;

/// What was found for the URL or key asked for.
enum Found {
    Response(EntryMeta, Box<CachedResponse>, Body),
    VaryIndex(EntryMeta, Vec<String>),
}

/// Where a found response's body is.
enum Body {
    /// In the response.
    Read,
    /// Left in its file (the response's body is empty): `len` bytes from its start.
    InFile(std::fs::File, u64),
}

impl Found {
    fn meta(&self) -> &EntryMeta {
        match self {
            Found::Response(meta, ..) | Found::VaryIndex(meta, _) => meta,
        }
    }
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
    let mut found = match (url, key) {
        (_, Some(key)) => by_key(cx, store, &parse_key(key)?).await?,
        (Some(url), None) => by_url(cx, store, url).await?,
        (None, None) => return Err(CliError::Usage("give a URL or --key".to_owned())),
    };
    if let Some(path) = body {
        let Found::Response(_, response, body) = &mut found else {
            return Err(CliError::NotFound(
                "this entry is a Vary index: it has no body".to_owned(),
            ));
        };
        write_body(path, &response.body, body)?;
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
    match read(cx, store, key).await? {
        None => Err(CliError::NotFound(format!("no entry under key {key}"))),
        Some(Ok(found)) => Ok(found),
        Some(Err((meta, why))) => Err(unreadable(&meta, why)),
    }
}

async fn by_url(cx: &Context, store: &Arc<dyn CacheStore>, url: &str) -> Result<Found, CliError> {
    let handle = super::handle(store)?;
    let mut keys = handle.keys_for_url(url).await?;
    // An entry written before URL groups existed is found only by its key.
    keys.push(handle.key_for(&Method::GET, url)?);
    let mut best: Option<Found> = None;
    let mut failure: Option<CliError> = None;
    for key in keys {
        match read(cx, store, &key).await? {
            None => {}
            Some(Ok(Found::Response(meta, response, body))) => {
                let newer = best
                    .as_ref()
                    .is_none_or(|best| best.meta().created_at < meta.created_at);
                if response.request.method == Method::GET && newer {
                    best = Some(Found::Response(meta, response, body));
                }
            }
            Some(Ok(Found::VaryIndex(..))) => {}
            // A newer format is the clearer report: it says what to do.
            Some(Err((meta, why @ Unreadable::Newer(_)))) => {
                failure = Some(unreadable(&meta, why));
            }
            Some(Err((meta, why))) => {
                failure.get_or_insert_with(|| unreadable(&meta, why));
            }
        }
    }
    match (best, failure) {
        (Some(found), _) => Ok(found),
        (None, Some(failure)) => Err(failure),
        (None, None) => Err(CliError::NotFound(format!(
            "no response to a GET of {url} is stored"
        ))),
    }
}

/// The entry under `key`, decoded: a body kept in its file over [`scan`]'s bound stays
/// there (a compressed one is read whole, up to a bound: only the whole value decodes).
async fn read(
    cx: &Context,
    store: &Arc<dyn CacheStore>,
    key: &CacheKey,
) -> Result<Option<Result<Found, (EntryMeta, Unreadable)>>, CliError> {
    let failed = |e| CliError::store(format!("reading {}", cx.name), e);
    let read_whole = async || store.get(key).await.map_err(failed);
    let entry = match scan::open_one(store.as_ref(), key).await.map_err(failed)? {
        None => return Ok(None),
        Some(Opened::Whole(entry)) => entry,
        Some(Opened::Body(file)) => {
            let head = entry_format::decode_head(key, &file.before, &file.after, file.len);
            match head {
                Ok(Some(response)) => {
                    let body = Body::InFile(file.file, file.len);
                    return Ok(Some(Ok(Found::Response(file.meta, response, body))));
                }
                Ok(None) if file.len <= scan::READ_COMPRESSED_UP_TO => {
                    let Some(entry) = read_whole().await? else {
                        return Ok(None);
                    };
                    entry
                }
                Ok(None) => return Ok(Some(Err((file.meta, scan::compressed_not_checked())))),
                Err(why) => return Ok(Some(Err((file.meta, why)))),
            }
        }
        // A compressed body over `scan`'s bound, which the store left unread.
        Some(Opened::Unread { meta, len }) => {
            if len > scan::READ_COMPRESSED_UP_TO {
                return Ok(Some(Err((meta, scan::compressed_not_checked()))));
            }
            match read_whole().await? {
                Some(entry) => entry,
                None => return Ok(None),
            }
        }
        // A kind of opening this build does not know: read whole.
        Some(_) => match read_whole().await? {
            Some(entry) => entry,
            None => return Ok(None),
        },
    };
    Ok(Some(match entry_format::decode(&entry.value) {
        Ok(Decoded::Response(response)) => Ok(Found::Response(entry.meta, response, Body::Read)),
        Ok(Decoded::VaryIndex(headers)) => Ok(Found::VaryIndex(entry.meta, headers)),
        Err(why) => Err((entry.meta, why)),
    }))
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

/// Writes the body (`read`, or from its file) to `path`, or to stdout for `-`.
fn write_body(path: &Path, read: &[u8], body: &mut Body) -> Result<(), CliError> {
    let mut copy = |out: &mut dyn Write| match body {
        Body::Read => out.write_all(read),
        Body::InFile(file, len) => {
            let copied = std::io::copy(&mut std::io::Read::take(&mut *file, *len), out)?;
            if copied < *len {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!("the body's file ended after {copied} of {len} bytes"),
                ));
            }
            Ok(())
        }
    };
    let written = if path == Path::new("-") {
        let mut out = std::io::stdout().lock();
        copy(&mut out).and_then(|()| out.flush())
    } else {
        std::fs::File::create(path).and_then(|file| {
            let mut out = std::io::BufWriter::new(file);
            copy(&mut out).and_then(|()| out.flush())
        })
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
    let (meta, response, body_len) = match found {
        Found::Response(meta, response, Body::Read) => {
            (meta, Some(response), response.body.len() as u64)
        }
        Found::Response(meta, response, Body::InFile(_, len)) => (meta, Some(response), *len),
        Found::VaryIndex(meta, _) => (meta, None, 0),
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
            Found::Response(_, response, _) => {
                shown["kind"] = json!("response");
                shown["status"] = json!(response.status.as_u16());
                shown["version"] = json!(format!("{:?}", response.version));
                shown["headers"] = json!(header_pairs(&response.headers));
                shown["body_bytes"] = json!(body_len);
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
    output::line(format_args!("url       {}", output::printable(&meta.url)))?;
    output::line(format_args!("key       {}", meta.key))?;
    output::line(format_args!(
        "stored    {} ({})",
        output::time(meta.created_at),
        output::relative(meta.created_at, cx.now)
    ))?;
    match meta.expires_at {
        None => output::line(format_args!("expires   never"))?,
        Some(at) => output::line(format_args!(
            "expires   {} ({}{})",
            output::time(at),
            output::relative(at, cx.now),
            if meta.is_expired(cx.now) {
                ", expired"
            } else {
                ""
            }
        ))?,
    }
    match (found, response) {
        (_, Some(response)) => {
            output::line(format_args!(
                "status    {} ({:?})",
                response.status, response.version
            ))?;
            output::line(format_args!(
                "request   {} {}",
                response.request.method,
                output::printable(&response.request.url)
            ))?;
            output::line(format_args!("body      {}", output::size(body_len)))?;
            output::line(format_args!("headers"))?;
            for (name, value) in header_pairs(&response.headers) {
                output::line(format_args!("  {name}: {}", output::printable(&value)))?;
            }
        }
        (Found::VaryIndex(_, headers), None) => {
            output::line(format_args!(
                "kind      Vary index: responses vary on {}",
                output::printable(&headers.join(", "))
            ))?;
        }
        (Found::Response(..), None) => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::tests::CountedGets;

    /// Showing a cached download, and writing its body out, reads no value whole: the body
    /// is copied from its file (`show` read the whole value, a download larger than memory
    /// included).
    #[tokio::test]
    async fn showing_a_large_download_reads_no_value_whole() {
        let dir = tempfile::tempdir().unwrap();
        let counted = CountedGets::open(dir.path());
        let body: Vec<u8> = (0..3u32 << 20).map(|i| (i % 251) as u8).collect();
        let key = CacheKey::from_digest([9; 16]);
        counted.put_response(key, body.clone()).await;
        let store: Arc<dyn CacheStore> = counted.clone();
        let out = dir.path().join("body.out");
        run(
            &Context::for_tests(),
            &store,
            None,
            Some(key.as_str()),
            Some(&out),
        )
        .await
        .unwrap();
        assert_eq!(counted.gets(), 0, "values read whole");
        assert!(std::fs::read(&out).unwrap() == body, "the body as stored");
    }
}
