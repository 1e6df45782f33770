//! The Amazon DynamoDB store for [reqwest-caching](https://crates.io/crates/reqwest-caching).
//!
//! ```no_run
//! use cache_dynamodb::DynamoStore;
//!
//! # async fn run(client: aws_sdk_dynamodb::Client) -> Result<(), cache_core::StoreError> {
//! // With a client from aws-config (your credentials and region):
//! let store = DynamoStore::builder().table("http_cache").with_client(client).await?;
//! // Or against DynamoDB Local:
//! let local = DynamoStore::builder().open_local("http://127.0.0.1:8000", "us-east-1").await?;
//! # Ok(()) }
//! ```
//!
//! # Layout
//!
//! One table (created if missing: on-demand billing, partition key `k`, waiting until
//! `ACTIVE`; TTL enabled on attribute `l`, epoch seconds). An entry item holds `u` (URL), `c` and
//! `x` (created, expires; Unix ms), `l` (expiry plus `ttl_offset`, default one hour, kept for
//! revalidation) and the value `v`. DynamoDB deletes expired items lazily (up to days later),
//! so `l` is also checked on every read.
//!
//! Items are limited to 400 KB. A larger value is split into chunk items of 380,000 bytes
//! (`{key}#{generation}#{i}`), written first; the entry item naming the generation and count is
//! written last, so a reader never assembles half an entry, and one racing an overwrite sees a
//! miss. Values over 4 GiB are refused (`StoreError::TooLarge`), as are URLs over 390,000
//! bytes (the entry item holds the URL whatever the value's size). An item claiming more
//! chunks than 4 GiB takes is read as no entry (and deleted) rather than trusted to list them.
//! Scans page through `LastEvaluatedKey` (an empty one ends them; one repeating its page's
//! start is an error, never an endless loop); batch writes retry unprocessed items. An entry
//! item created before 1970 (never written by this crate) is no entry, and a sweep
//! ([`delete_expired`](cache_core::CacheStore::delete_expired)) removes it, as it removes an
//! entry past its deletion time whether or not it expired.
//!
//! A URL's entries are listed ([`entries_for_url`](cache_core::CacheStore::entries_for_url),
//! which an unsafe request's invalidation and the handle's URL operations use) by a query of
//! a global secondary index on the URL group, and DynamoDB updates such an index after the
//! write, usually within a second, with no consistent read of it to ask for. An entry written
//! within that time before a listing may be missing from it: the middleware also deletes the
//! keys the unsafe request's own `GET`/`HEAD` would have, so only an entry stored for other
//! credentials or matched headers in that second can outlive an invalidation of its URL.
//! (DynamoDB Local, which the tests run against, updates the index at once.)
//!
//! This crate depends on `aws-sdk-dynamodb` with one HTTP client and Tokio only, and not on
//! `aws-config`: build the client with aws-config in your application, or use
//! [`DynamoStoreBuilder::open_local`] with static test credentials. The SDK sets no timeouts
//! by default, so a server that never answers holds a request for good: `open_local`'s
//! client times out connecting and each attempt ([`DynamoStoreBuilder::timeout`], 5 s by
//! default); give a client of your own [`timeouts`]. A write whose answer such a timeout
//! lost is sent again by the SDK's retries: the store tells its own first attempt from
//! another client's entry (by the chunks' generation, or an inline value and its creation),
//! so it keeps its chunks, and a conditional write says it wrote. (A plain chunked write
//! that another client's write replaced between the two attempts is lost, read as a miss.)
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod items;
mod schema;
mod store;

pub use store::{DEFAULT_TIMEOUT, DynamoStore, DynamoStoreBuilder, timeouts};

/// Re-exported so users name the same version this crate uses.
pub use aws_sdk_dynamodb;
