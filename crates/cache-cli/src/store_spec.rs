//! Store names: the URL-like strings that say which store a command works on, and opening
//! them.
//!
//! | form | store |
//! |---|---|
//! | `sqlite:PATH`, or a bare `PATH` ending in `.sqlite` | SQLite file |
//! | `sled:PATH` | sled database directory |
//! | `fs:DIR` | readable directory ([`FsStore`], the export format) |
//! | `redis://[:PASSWORD@]HOST:PORT[/DB][?prefix=P]` | one Redis server |
//! | `redis+cluster://[:PASSWORD@]HOST:PORT[,HOST:PORT...][?prefix=P]` | a Redis Cluster, through any nodes |
//! | `mongodb://[USER:PASS@]HOSTS[/DB[/COLLECTION]][?OPTIONS]` | a MongoDB collection |
//! | `dynamodb:TABLE` | a DynamoDB table; endpoint, region and credentials from the environment |

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use reqwest_caching::cache_dynamodb::aws_sdk_dynamodb;
use reqwest_caching::cache_mongodb::mongodb;
use reqwest_caching::{
    CacheStore, DynamoStore, FsStore, MongoStore, RedisStore, SledStore, SqliteStore, StoreError,
};

use crate::error::CliError;

/// How long opening a server store may wait for its server.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The forms, for error messages.
const FORMS: &str = "sqlite:PATH, PATH.sqlite, sled:PATH, fs:DIR, redis://HOST:PORT[/DB][?prefix=P], \
    redis+cluster://HOST:PORT,HOST:PORT[?prefix=P], mongodb://HOSTS[/DB[/COLLECTION]][?OPTIONS], \
    dynamodb:TABLE";

/// A store, as named on the command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreSpec {
    /// A SQLite file.
    Sqlite(PathBuf),
    /// A sled database.
    Sled(PathBuf),
    /// A readable directory.
    Fs(PathBuf),
    /// One Redis server.
    Redis {
        /// The server URL, less the `prefix` option.
        url: String,
        /// The key prefix; `None` for the store's default.
        prefix: Option<String>,
    },
    /// A Redis Cluster.
    RedisCluster {
        /// One `redis://` URL per node given.
        nodes: Vec<String>,
        /// The key prefix; `None` for the store's default.
        prefix: Option<String>,
    },
    /// A MongoDB collection.
    Mongo {
        /// The connection string, less the database and collection.
        uri: String,
        /// The database; `None` for the store's default.
        database: Option<String>,
        /// The collection; `None` for the store's default.
        collection: Option<String>,
    },
    /// A DynamoDB table.
    Dynamo {
        /// The table name.
        table: String,
    },
}

/// Whether a store must exist already (reading it) or may be created (a destination).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Open {
    /// Reading only (listing, showing, the source of a copy): as [`Open::Existing`], and a
    /// cache directory (`fs:DIR`) is left exactly as it is: nothing is created or swept in
    /// it, so it may be on a read-only file system.
    ReadOnly,
    /// Reading or cleaning: a missing file, directory, collection or table is an error, so a
    /// mistyped name does not create an empty store and report it empty.
    Existing,
    /// A destination: created when missing.
    CreateIfMissing,
}

impl FromStr for StoreSpec {
    type Err = CliError;

    fn from_str(name: &str) -> Result<Self, CliError> {
        // Named without its password: the name may come from the environment, and the
        // message goes to the terminal.
        let usage = |why: &str| {
            let shown = redact(name);
            CliError::Usage(format!("store {shown:?}: {why} (forms: {FORMS})"))
        };
        let nonempty = |rest: &str, what: &str| {
            if rest.is_empty() {
                Err(usage(&format!("{what} missing")))
            } else {
                Ok(rest.to_owned())
            }
        };
        if let Some(path) = name.strip_prefix("sqlite:") {
            return Ok(Self::Sqlite(nonempty(path, "path")?.into()));
        }
        if let Some(path) = name.strip_prefix("sled:") {
            return Ok(Self::Sled(nonempty(path, "path")?.into()));
        }
        if let Some(dir) = name.strip_prefix("fs:") {
            return Ok(Self::Fs(nonempty(dir, "directory")?.into()));
        }
        if let Some(table) = name.strip_prefix("dynamodb:") {
            let table = nonempty(table, "table name")?;
            return Ok(Self::Dynamo { table });
        }
        if name.starts_with("redis://") {
            return parse_redis(name).map_err(|why| usage(&why));
        }
        if let Some(rest) = name.strip_prefix("redis+cluster://") {
            return parse_redis_cluster(rest).map_err(|why| usage(&why));
        }
        if name.starts_with("mongodb://") || name.starts_with("mongodb+srv://") {
            return parse_mongo(name).map_err(|why| usage(&why));
        }
        if name.ends_with(".sqlite") && !name.contains("://") {
            return Ok(Self::Sqlite(name.into()));
        }
        Err(usage("not a store name"))
    }
}

/// `redis://…`: the URL as the driver takes it, with our `prefix` option taken out.
fn parse_redis(name: &str) -> Result<StoreSpec, String> {
    let mut url = url::Url::parse(name).map_err(|e| format!("invalid URL: {e}"))?;
    if url.host_str().is_none_or(str::is_empty) {
        return Err("host missing".to_owned());
    }
    let mut prefix = None;
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter_map(|(k, v)| {
            if k == "prefix" {
                prefix = Some(v.into_owned());
                None
            } else {
                Some((k.into_owned(), v.into_owned()))
            }
        })
        .collect();
    if kept.is_empty() {
        url.set_query(None);
    } else {
        url.query_pairs_mut().clear().extend_pairs(kept);
    }
    Ok(StoreSpec::Redis {
        url: url.into(),
        prefix,
    })
}

/// `redis+cluster://[USERINFO@]HOST:PORT,HOST:PORT[/][?prefix=P]`: one `redis://` URL per
/// node, each with the user info.
fn parse_redis_cluster(rest: &str) -> Result<StoreSpec, String> {
    let (authority, tail) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
    let (path, query) = tail.split_once('?').unwrap_or((tail, ""));
    if !path.is_empty() && path != "/" {
        return Err("a cluster has one database: no /DB path".to_owned());
    }
    let (userinfo, hosts) = match authority.rsplit_once('@') {
        Some((userinfo, hosts)) => (format!("{userinfo}@"), hosts),
        None => (String::new(), authority),
    };
    let nodes: Vec<String> = hosts
        .split(',')
        .filter(|host| !host.is_empty())
        .map(|host| format!("redis://{userinfo}{host}"))
        .collect();
    if nodes.is_empty() {
        return Err("no node given".to_owned());
    }
    let mut prefix = None;
    for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
        match &*name {
            "prefix" => prefix = Some(value.into_owned()),
            other => return Err(format!("unknown option {other:?} (only prefix)")),
        }
    }
    Ok(StoreSpec::RedisCluster { nodes, prefix })
}

/// `mongodb://USERINFO@HOSTS/DB/COLLECTION?OPTIONS`: the path names the database and
/// collection of the cache (not the authentication database, which `authSource` sets), and
/// is taken out of the connection string the driver gets.
fn parse_mongo(name: &str) -> Result<StoreSpec, String> {
    let scheme_end = name.find("://").map_or(0, |i| i + 3);
    let (before_query, query) = name.split_once('?').unwrap_or((name, ""));
    let (base, path) = match before_query[scheme_end..].find('/') {
        Some(slash) => before_query.split_at(scheme_end + slash),
        None => (before_query, ""),
    };
    if base.len() == scheme_end {
        return Err("host missing".to_owned());
    }
    let mut parts = path.split('/').filter(|p| !p.is_empty());
    let database = parts.next().map(str::to_owned);
    let collection = parts.next().map(str::to_owned);
    if parts.next().is_some() {
        return Err("the path is /DATABASE/COLLECTION".to_owned());
    }
    let uri = if query.is_empty() {
        format!("{base}/")
    } else {
        format!("{base}/?{query}")
    };
    Ok(StoreSpec::Mongo {
        uri,
        database,
        collection,
    })
}

impl fmt::Display for StoreSpec {
    /// The name as given, without passwords.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sqlite(path) => write!(f, "sqlite:{}", path.display()),
            Self::Sled(path) => write!(f, "sled:{}", path.display()),
            Self::Fs(dir) => write!(f, "fs:{}", dir.display()),
            Self::Redis { url, prefix } => {
                write!(f, "{}", redact(url))?;
                prefix.iter().try_for_each(|p| write!(f, " (prefix {p})"))
            }
            Self::RedisCluster { nodes, prefix } => {
                let hosts: Vec<String> = nodes
                    .iter()
                    .map(|n| redact(n).trim_start_matches("redis://").to_owned())
                    .collect();
                write!(f, "redis+cluster://{}", hosts.join(","))?;
                prefix.iter().try_for_each(|p| write!(f, " (prefix {p})"))
            }
            Self::Mongo {
                uri,
                database,
                collection,
            } => {
                let db = database.as_deref().unwrap_or("(default)");
                let coll = collection.as_deref().unwrap_or("(default)");
                write!(f, "{} {db}/{coll}", redact(uri))
            }
            Self::Dynamo { table } => write!(f, "dynamodb:{table}"),
        }
    }
}

/// Query options whose values are shown in messages: none of them carries a secret. Every
/// other option's value is hidden (`authMechanismProperties` holds AWS session tokens,
/// `tlsCertificateKeyFilePassword` a password, and a driver may add more).
const SHOWN_OPTIONS: &[&str] = &[
    "appname",
    "authmechanism",
    "authsource",
    "connecttimeoutms",
    "directconnection",
    "maxpoolsize",
    "readpreference",
    "replicaset",
    "retryreads",
    "retrywrites",
    "servertimeoutms",
    "ssl",
    "tls",
    "w",
];

/// `scheme://user:secret@host…?option=value` with the secret and the values of options not
/// in [`SHOWN_OPTIONS`] replaced, for messages.
fn redact(uri: &str) -> String {
    let (before_query, query) = match uri.split_once('?') {
        Some((before, query)) => (before, Some(query)),
        None => (uri, None),
    };
    let mut shown = redact_userinfo(before_query);
    if let Some(query) = query {
        let options: Vec<String> = query
            .split('&')
            .map(|option| match option.split_once('=') {
                Some((name, _)) if !SHOWN_OPTIONS.contains(&name.to_ascii_lowercase().as_str()) => {
                    format!("{name}=***")
                }
                _ => option.to_owned(),
            })
            .collect();
        shown.push('?');
        shown.push_str(&options.join("&"));
    }
    shown
}

/// `scheme://user:secret@host…` with the secret replaced.
fn redact_userinfo(uri: &str) -> String {
    let Some(scheme_end) = uri.find("://").map(|i| i + 3) else {
        return uri.to_owned();
    };
    let authority_end = uri[scheme_end..]
        .find(['/', '?'])
        .map_or(uri.len(), |i| scheme_end + i);
    match uri[scheme_end..authority_end].rfind('@') {
        Some(at) => {
            let userinfo = &uri[scheme_end..scheme_end + at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!(
                "{}{user}:***{}",
                &uri[..scheme_end],
                &uri[scheme_end + at..]
            )
        }
        None => uri.to_owned(),
    }
}

impl StoreSpec {
    /// Opens the store.
    ///
    /// # Errors
    ///
    /// [`CliError::MissingStore`] for a missing store opened as [`Open::Existing`] or
    /// [`Open::ReadOnly`],
    /// [`CliError::Store`] when it cannot be reached, [`CliError::Usage`] for missing AWS
    /// settings.
    pub async fn open(&self, mode: Open) -> Result<Arc<dyn CacheStore>, CliError> {
        let failed = |source: StoreError| CliError::store(format!("cannot open {self}"), source);
        match self {
            Self::Sqlite(path) => {
                self.require_path(&sqlite_file(path), mode)?;
                // Every write committed before it counts: what `copy` and `import` report
                // stored is on disk (a commit shared with later writes, failing at exit,
                // would only be logged), at a cost an operator's command does not feel.
                let store = SqliteStore::builder(path)
                    .commit_delay(std::time::Duration::ZERO)
                    .open()
                    .map_err(failed)?;
                Ok(Arc::new(store))
            }
            Self::Sled(path) => {
                self.require_path(path, mode)?;
                Ok(Arc::new(SledStore::open(path).map_err(failed)?))
            }
            Self::Fs(dir) => {
                // A cache directory has `entries/`; opening any other directory would lay
                // the cache out in it.
                self.require_path(&dir.join("entries"), mode)?;
                let store = match mode {
                    Open::ReadOnly => FsStore::open_read_only(dir),
                    Open::Existing | Open::CreateIfMissing => FsStore::open(dir),
                };
                Ok(Arc::new(store.map_err(failed)?))
            }
            Self::Redis { url, prefix } => {
                let builder = redis_builder(prefix.as_deref());
                Ok(Arc::new(builder.open(url).await.map_err(failed)?))
            }
            Self::RedisCluster { nodes, prefix } => {
                let builder = redis_builder(prefix.as_deref());
                Ok(Arc::new(builder.open_cluster(nodes).await.map_err(failed)?))
            }
            Self::Mongo {
                uri,
                database,
                collection,
            } => self.open_mongo(uri, database, collection, mode).await,
            Self::Dynamo { table } => self.open_dynamo(table, mode).await,
        }
    }

    fn require_path(&self, path: &Path, mode: Open) -> Result<(), CliError> {
        if mode != Open::CreateIfMissing && !path.exists() {
            return Err(CliError::MissingStore(format!(
                "no cache at {self}: {} does not exist",
                path.display()
            )));
        }
        Ok(())
    }

    async fn open_mongo(
        &self,
        uri: &str,
        database: &Option<String>,
        collection: &Option<String>,
        mode: Open,
    ) -> Result<Arc<dyn CacheStore>, CliError> {
        let failed = |e: mongodb::error::Error| {
            CliError::store(format!("cannot open {self}"), StoreError::unavailable(e))
        };
        let mut options = mongodb::options::ClientOptions::parse(uri)
            .await
            .map_err(failed)?;
        options.server_selection_timeout = Some(CONNECT_TIMEOUT);
        options.connect_timeout = Some(CONNECT_TIMEOUT);
        let client = mongodb::Client::with_options(options).map_err(failed)?;
        let mut builder = MongoStore::builder();
        if let Some(database) = database {
            builder = builder.database(database);
        }
        if let Some(collection) = collection {
            builder = builder.collection(collection);
        }
        if mode != Open::CreateIfMissing {
            let (db, coll) = mongo_names(database, collection);
            let names = client
                .database(&db)
                .list_collection_names()
                .await
                .map_err(failed)?;
            if !names.contains(&coll) {
                return Err(CliError::MissingStore(format!(
                    "no cache at {self}: collection {coll} not found in database {db}"
                )));
            }
        }
        let store = builder
            .with_client(client)
            .await
            .map_err(|e| CliError::store(format!("cannot open {self}"), e))?;
        Ok(Arc::new(store))
    }

    async fn open_dynamo(&self, table: &str, mode: Open) -> Result<Arc<dyn CacheStore>, CliError> {
        let client = aws_sdk_dynamodb::Client::from_conf(dynamo_config_from_env()?);
        if mode != Open::CreateIfMissing {
            match client.describe_table().table_name(table).send().await {
                Ok(_) => {}
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|e| e.is_resource_not_found_exception()) =>
                {
                    return Err(CliError::MissingStore(format!(
                        "no cache at {self}: table {table} not found"
                    )));
                }
                Err(e) => {
                    let source = StoreError::unavailable(aws_sdk_dynamodb::Error::from(e));
                    return Err(CliError::store(format!("cannot open {self}"), source));
                }
            }
        }
        let store = DynamoStore::builder()
            .table(table)
            .with_client(client)
            .await
            .map_err(|e| CliError::store(format!("cannot open {self}"), e))?;
        Ok(Arc::new(store))
    }
}

/// The path [`SqliteStore::open`] opens for `path` (it adds `.sqlite` to a name without an
/// extension).
fn sqlite_file(path: &Path) -> PathBuf {
    let mut path = path.to_path_buf();
    if path.extension().is_none() {
        path.set_extension("sqlite");
    }
    path
}

fn redis_builder(prefix: Option<&str>) -> reqwest_caching::cache_redis::RedisStoreBuilder {
    let builder = RedisStore::builder().timeout(CONNECT_TIMEOUT);
    match prefix {
        Some(prefix) => builder.prefix(prefix),
        None => builder,
    }
}

/// The database and collection a [`MongoStore`] uses when the name gives none: the store's
/// defaults.
fn mongo_names(database: &Option<String>, collection: &Option<String>) -> (String, String) {
    (
        database
            .clone()
            .unwrap_or_else(|| "reqwest_cache".to_owned()),
        collection
            .clone()
            .unwrap_or_else(|| "http_cache".to_owned()),
    )
}

/// The DynamoDB client settings from the environment variables the AWS tools read:
/// `AWS_ENDPOINT_URL_DYNAMODB` or `AWS_ENDPOINT_URL` (optional), `AWS_REGION` or
/// `AWS_DEFAULT_REGION`, and `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
/// `AWS_SESSION_TOKEN`. Profiles, SSO and instance roles are not read.
fn dynamo_config_from_env() -> Result<aws_sdk_dynamodb::Config, CliError> {
    use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let region = var("AWS_REGION")
        .or_else(|| var("AWS_DEFAULT_REGION"))
        .ok_or_else(|| {
            CliError::Usage("dynamodb: set AWS_REGION (or AWS_DEFAULT_REGION)".to_owned())
        })?;
    let (Some(key_id), Some(secret)) = (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY"))
    else {
        return Err(CliError::Usage(
            "dynamodb: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (profiles and roles are \
             not read; `aws configure export-credentials --format env` prints them)"
                .to_owned(),
        ));
    };
    let credentials = Credentials::new(key_id, secret, var("AWS_SESSION_TOKEN"), None, "env");
    // Timeouts: the SDK has none, and a server that never answers held the command for good.
    let timeouts =
        reqwest_caching::cache_dynamodb::timeouts(reqwest_caching::cache_dynamodb::DEFAULT_TIMEOUT);
    let mut config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region))
        .credentials_provider(credentials)
        .timeout_config(timeouts);
    if let Some(endpoint) = var("AWS_ENDPOINT_URL_DYNAMODB").or_else(|| var("AWS_ENDPOINT_URL")) {
        config = config.endpoint_url(endpoint);
    }
    Ok(config.build())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str) -> StoreSpec {
        name.parse()
            .unwrap_or_else(|e: CliError| panic!("{name}: {e}"))
    }

    /// A secret in a query option is hidden as one in the user info is; options that
    /// carry none are shown.
    #[test]
    fn secrets_in_query_options_are_hidden() {
        let uri = "mongodb://me:pw@h:27017/?authMechanism=MONGODB-AWS\
                   &authMechanismProperties=AWS_SESSION_TOKEN:secret-token&replicaSet=rs0";
        let shown = redact(uri);
        assert_eq!(
            shown,
            "mongodb://me:***@h:27017/?authMechanism=MONGODB-AWS\
             &authMechanismProperties=***&replicaSet=rs0"
        );
        let spec = parse_mongo(uri).unwrap();
        let text = spec.to_string();
        assert!(
            !text.contains("secret-token") && !text.contains("pw"),
            "{text}"
        );
        assert_eq!(redact("redis://h:6379/0"), "redis://h:6379/0");
    }

    #[test]
    fn every_form_parses() {
        assert_eq!(spec("sqlite:a/b.db"), StoreSpec::Sqlite("a/b.db".into()));
        assert_eq!(
            spec("cache.sqlite"),
            StoreSpec::Sqlite("cache.sqlite".into())
        );
        assert_eq!(spec("sled:x"), StoreSpec::Sled("x".into()));
        assert_eq!(spec("fs:/tmp/d"), StoreSpec::Fs("/tmp/d".into()));
        assert_eq!(
            spec("dynamodb:t1"),
            StoreSpec::Dynamo {
                table: "t1".to_owned()
            }
        );
        assert_eq!(
            spec("redis://:pw@127.0.0.1:6379/2?prefix=app&protocol=resp3"),
            StoreSpec::Redis {
                url: "redis://:pw@127.0.0.1:6379/2?protocol=resp3".to_owned(),
                prefix: Some("app".to_owned())
            }
        );
        assert_eq!(
            spec("redis+cluster://:pw@h1:7000,h2:7001/?prefix=p"),
            StoreSpec::RedisCluster {
                nodes: vec![
                    "redis://:pw@h1:7000".to_owned(),
                    "redis://:pw@h2:7001".to_owned()
                ],
                prefix: Some("p".to_owned())
            }
        );
        assert_eq!(
            spec("mongodb://u:p@h1:1,h2:2/db/coll?directConnection=true"),
            StoreSpec::Mongo {
                uri: "mongodb://u:p@h1:1,h2:2/?directConnection=true".to_owned(),
                database: Some("db".to_owned()),
                collection: Some("coll".to_owned())
            }
        );
        assert_eq!(
            spec("mongodb://h"),
            StoreSpec::Mongo {
                uri: "mongodb://h/".to_owned(),
                database: None,
                collection: None
            }
        );
    }

    #[test]
    fn wrong_forms_are_usage_errors() {
        for name in [
            "",
            "cache.db",
            "sqlite:",
            "postgres://h/db",
            "redis://",
            "redis+cluster://",
            "redis+cluster://h:1/3",
            "redis+cluster://h:1?db=2",
            "mongodb:///db/c",
            "mongodb://h/db/c/extra",
            "dynamodb:",
        ] {
            match name.parse::<StoreSpec>() {
                Err(e @ CliError::Usage(_)) => assert_eq!(e.exit_code(), 2),
                other => panic!("{name:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn passwords_are_not_shown() {
        let shown = spec("redis://:secret@h:1/0").to_string();
        assert!(!shown.contains("secret"), "{shown}");
        let shown = spec("mongodb://me:secret@h:1/d/c").to_string();
        assert!(
            !shown.contains("secret") && shown.contains("me:***@h:1"),
            "{shown}"
        );
        let shown = spec("redis+cluster://:secret@a:1,b:2").to_string();
        assert!(!shown.contains("secret"), "{shown}");
    }

    /// A store name refused (a bad port, an unknown option, a database on a cluster) is
    /// shown without its password too.
    #[test]
    fn refused_names_do_not_show_passwords() {
        for name in [
            "redis://:secret@h:99999",
            "redis://me:secret@:1/0",
            "redis+cluster://:secret@a:1,b:2/3",
            "mongodb://me:secret@h:1/d/c/extra",
        ] {
            let refused = name.parse::<StoreSpec>().expect_err(name).to_string();
            assert!(!refused.contains("secret"), "{refused}");
            assert!(refused.contains("***"), "{refused}");
        }
    }
}
