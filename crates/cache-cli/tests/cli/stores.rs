//! Each store the command names, on real servers: its name on the command line, and the
//! same store opened in the test process to seed it and check it.

use std::sync::Arc;

use reqwest_caching::{
    CacheStore, DynamoStore, FsStore, MongoStore, RedisStore, SledStore, SqliteStore,
};

use crate::support::Env;

#[derive(Clone, Copy, Debug)]
pub enum Kind {
    Sqlite,
    Sled,
    Fs,
    Redis,
    RedisCluster,
    Mongo,
    Dynamo,
}

/// A fresh store of one kind: its own file, directory, key prefix, collection or table.
pub struct TestStore {
    kind: Kind,
    /// The store's name for the command.
    pub name: String,
    /// What the command needs in its environment.
    pub env: Env,
    namespace: String,
    pub dir: tempfile::TempDir,
}

/// The settings the AWS tools read, pointing at DynamoDB Local.
pub fn dynamo_env(endpoint: &str) -> Env {
    [
        ("AWS_ENDPOINT_URL", endpoint),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "local"),
        ("AWS_SECRET_ACCESS_KEY", "local"),
    ]
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .to_vec()
}

impl TestStore {
    pub fn new(kind: Kind) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let namespace = test_support::unique_namespace("cli").replace('-', "_");
        let path = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
        let mut env = Env::new();
        let name = match kind {
            Kind::Sqlite => path("cache.sqlite"),
            Kind::Sled => format!("sled:{}", path("cache.sled")),
            Kind::Fs => format!("fs:{}", path("cache")),
            Kind::Redis => format!("{}?prefix={namespace}", test_support::shared_redis().url()),
            Kind::RedisCluster => {
                let nodes: Vec<String> = test_support::shared_redis_cluster()
                    .urls()
                    .iter()
                    .map(|u| {
                        u.trim_start_matches("redis://")
                            .trim_end_matches('/')
                            .to_owned()
                    })
                    .collect();
                format!("redis+cluster://{}?prefix={namespace}", nodes.join(","))
            }
            Kind::Mongo => {
                let uri = test_support::shared_mongo().uri();
                let (base, options) = uri.split_once("/?").unwrap();
                format!("{base}/cli/{namespace}?{options}")
            }
            Kind::Dynamo => {
                env = dynamo_env(&test_support::shared_dynamo().endpoint());
                format!("dynamodb:{namespace}")
            }
        };
        Self {
            kind,
            name,
            env,
            namespace,
            dir,
        }
    }

    /// The same store, opened in the test process. Drop it before running a command on an
    /// embedded store that one process at a time may open (sled).
    pub async fn open(&self) -> Arc<dyn CacheStore> {
        let path = |name: &str| self.dir.path().join(name);
        match self.kind {
            Kind::Sqlite => Arc::new(SqliteStore::open(path("cache.sqlite")).unwrap()),
            Kind::Sled => Arc::new(SledStore::open(path("cache.sled")).unwrap()),
            Kind::Fs => Arc::new(FsStore::open(path("cache")).unwrap()),
            Kind::Redis => Arc::new(
                RedisStore::builder()
                    .prefix(&self.namespace)
                    .open(&test_support::shared_redis().url())
                    .await
                    .unwrap(),
            ),
            Kind::RedisCluster => Arc::new(
                RedisStore::builder()
                    .prefix(&self.namespace)
                    .open_cluster(test_support::shared_redis_cluster().urls())
                    .await
                    .unwrap(),
            ),
            Kind::Mongo => Arc::new(
                MongoStore::builder()
                    .database("cli")
                    .collection(&self.namespace)
                    .open(&test_support::shared_mongo().uri())
                    .await
                    .unwrap(),
            ),
            Kind::Dynamo => Arc::new(
                DynamoStore::builder()
                    .table(&self.namespace)
                    .open_local(&test_support::shared_dynamo().endpoint(), "us-east-1")
                    .await
                    .unwrap(),
            ),
        }
    }
}
