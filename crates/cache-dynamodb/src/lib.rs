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
//! miss. Values over 4 GiB are refused (`StoreError::TooLarge`), and an item claiming more
//! chunks than that takes is read as no entry (and deleted) rather than trusted to list them.
//! Scans page through `LastEvaluatedKey`; batch writes retry unprocessed items.
//!
//! This crate depends on `aws-sdk-dynamodb` with one HTTP client and Tokio only, and not on
//! `aws-config`: build the client with aws-config in your application, or use
//! [`DynamoStoreBuilder::open_local`] with static test credentials.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod items;
mod store;

pub use store::{DynamoStore, DynamoStoreBuilder};

/// Re-exported so users name the same version this crate uses.
pub use aws_sdk_dynamodb;
