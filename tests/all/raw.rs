//! What a server store holds for one test, read with the server's own driver rather than
//! through the store: every key of a Redis prefix, every document of a MongoDB collection
//! and its chunks, every item of a DynamoDB table. A check for leaked data searches these
//! bytes, so it does not depend on the store reading back what it wrote.

/// Where a harness's store keeps its data.
#[derive(Clone, Debug)]
pub enum Namespace {
    /// In the process or in files under the harness's directory: nothing on a server.
    Local,
    /// Keys `{prefix}:*` on these servers (every node of a cluster).
    #[cfg(feature = "redis")]
    Redis { urls: Vec<String>, prefix: String },
    /// The collection and its `{collection}_chunks` companion.
    #[cfg(feature = "mongodb")]
    Mongo {
        uri: String,
        database: String,
        collection: String,
    },
    /// The whole table.
    #[cfg(feature = "dynamodb")]
    Dynamo { endpoint: String, table: String },
}

impl Namespace {
    /// Every stored byte (names, keys and values) under this namespace; `None` for
    /// [`Namespace::Local`]. Data of a kind this reader does not know fails the test: a
    /// search must never skip what it cannot see.
    pub async fn raw_bytes(&self) -> Option<Vec<u8>> {
        match self {
            Self::Local => None,
            #[cfg(feature = "redis")]
            Self::Redis { urls, prefix } => Some(redis_bytes(urls, prefix).await),
            #[cfg(feature = "mongodb")]
            Self::Mongo {
                uri,
                database,
                collection,
            } => Some(mongo_bytes(uri, database, collection).await),
            #[cfg(feature = "dynamodb")]
            Self::Dynamo { endpoint, table } => Some(dynamo_bytes(endpoint, table).await),
        }
    }
}

/// Each node is scanned on its own connection (a cluster node lists and answers only the
/// keys of its own slots); every key is read whole by its type.
#[cfg(feature = "redis")]
async fn redis_bytes(urls: &[String], prefix: &str) -> Vec<u8> {
    use reqwest_caching::cache_redis::redis;

    let mut bytes = Vec::new();
    for url in urls {
        let client = redis::Client::open(url.as_str()).expect("redis URL");
        let mut conn = client
            .get_multiplexed_async_connection()
            .await
            .unwrap_or_else(|e| panic!("connect to {url}: {e}"));
        let mut keys: Vec<Vec<u8>> = Vec::new();
        let mut cursor: u64 = 0;
        loop {
            let (next, batch): (u64, Vec<Vec<u8>>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(format!("{prefix}:*"))
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut conn)
                .await
                .expect("SCAN");
            keys.extend(batch);
            if next == 0 {
                break;
            }
            cursor = next;
        }
        for key in keys {
            let kind: String = redis::cmd("TYPE")
                .arg(&key)
                .query_async(&mut conn)
                .await
                .expect("TYPE");
            let mut command = match kind.as_str() {
                "hash" => redis::cmd("HGETALL"),
                "set" => redis::cmd("SMEMBERS"),
                "string" => redis::cmd("MGET"),
                "list" | "zset" => {
                    let mut range = redis::cmd(if kind == "list" { "LRANGE" } else { "ZRANGE" });
                    range.arg(&key).arg(0).arg(-1);
                    range
                }
                // Expired between the scan and now.
                "none" => continue,
                other => panic!(
                    "{}: a {other} this check cannot read",
                    String::from_utf8_lossy(&key)
                ),
            };
            if kind != "list" && kind != "zset" {
                command.arg(&key);
            }
            // MGET of a key that expired since is a nil: nothing to read.
            let parts: Vec<Option<Vec<u8>>> = command
                .query_async(&mut conn)
                .await
                .unwrap_or_else(|e| panic!("read {}: {e}", String::from_utf8_lossy(&key)));
            bytes.extend_from_slice(&key);
            for part in parts.into_iter().flatten() {
                bytes.extend_from_slice(&part);
            }
        }
    }
    bytes
}

/// Every document, as BSON, of the collection and of `{collection}_chunks` (and of any other
/// collection whose name starts with the collection's).
#[cfg(feature = "mongodb")]
async fn mongo_bytes(uri: &str, database: &str, collection: &str) -> Vec<u8> {
    use futures_util::TryStreamExt;
    use reqwest_caching::cache_mongodb::mongodb::{self, bson};

    let client = mongodb::Client::with_uri_str(uri)
        .await
        .expect("connect to the MongoDB-wire server");
    let database = client.database(database);
    let names = database
        .list_collection_names()
        .await
        .expect("list collections");
    assert!(
        names.iter().any(|n| n == collection),
        "collection {collection} not among {names:?}"
    );
    let mut bytes = Vec::new();
    for name in names.iter().filter(|n| n.starts_with(collection)) {
        let documents: Vec<bson::Document> = database
            .collection::<bson::Document>(name)
            .find(bson::doc! {})
            .await
            .expect("find")
            .try_collect()
            .await
            .expect("read documents");
        for document in documents {
            document
                .to_writer(&mut bytes)
                .expect("serialize a document");
        }
    }
    bytes
}

/// A full scan of the table, every attribute name and value.
#[cfg(feature = "dynamodb")]
async fn dynamo_bytes(endpoint: &str, table: &str) -> Vec<u8> {
    use reqwest_caching::cache_dynamodb::aws_sdk_dynamodb::config::{
        BehaviorVersion, Credentials, Region,
    };
    use reqwest_caching::cache_dynamodb::aws_sdk_dynamodb::{Client, Config};

    let config = Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("local", "local", None, None, "static"))
        .build();
    let client = Client::from_conf(config);
    let mut bytes = Vec::new();
    let mut start = None;
    loop {
        let page = client
            .scan()
            .table_name(table)
            .consistent_read(true)
            .set_exclusive_start_key(start)
            .send()
            .await
            .unwrap_or_else(|e| panic!("scan {table}: {e:?}"));
        for item in page.items() {
            for (name, value) in item {
                bytes.extend_from_slice(name.as_bytes());
                attribute_bytes(value, &mut bytes);
            }
        }
        match page.last_evaluated_key() {
            Some(key) if !key.is_empty() => start = Some(key.clone()),
            _ => break,
        }
    }
    bytes
}

#[cfg(feature = "dynamodb")]
fn attribute_bytes(
    value: &reqwest_caching::cache_dynamodb::aws_sdk_dynamodb::types::AttributeValue,
    out: &mut Vec<u8>,
) {
    use reqwest_caching::cache_dynamodb::aws_sdk_dynamodb::types::AttributeValue;
    match value {
        AttributeValue::S(text) | AttributeValue::N(text) => out.extend_from_slice(text.as_bytes()),
        AttributeValue::B(blob) => out.extend_from_slice(blob.as_ref()),
        AttributeValue::Ss(texts) | AttributeValue::Ns(texts) => {
            for text in texts {
                out.extend_from_slice(text.as_bytes());
            }
        }
        AttributeValue::Bs(blobs) => {
            for blob in blobs {
                out.extend_from_slice(blob.as_ref());
            }
        }
        AttributeValue::L(values) => {
            for value in values {
                attribute_bytes(value, out);
            }
        }
        AttributeValue::M(map) => {
            for (name, value) in map {
                out.extend_from_slice(name.as_bytes());
                attribute_bytes(value, out);
            }
        }
        AttributeValue::Bool(_) | AttributeValue::Null(_) => {}
        other => panic!("an attribute this check cannot read: {other:?}"),
    }
}
