//! One connection type over a single server or a cluster, and `SCAN` over either.

use cache_core::StoreError;
use redis::aio::ConnectionManager;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
use redis::{Cmd, FromRedisValue, Pipeline, RedisError, Value};

/// How many keys one `SCAN` step asks for.
const SCAN_COUNT: usize = 1000;

#[derive(Clone)]
pub(crate) enum Connection {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Single(_) => "Connection::Single",
            Self::Cluster(_) => "Connection::Cluster",
        })
    }
}

impl Connection {
    pub(crate) async fn query<T: FromRedisValue>(&self, cmd: &Cmd) -> Result<T, StoreError> {
        let result: Result<redis::Value, RedisError> = match self.clone() {
            Self::Single(mut conn) => cmd.query_async(&mut conn).await,
            Self::Cluster(mut conn) => cmd.query_async(&mut conn).await,
        };
        converted(result.map_err(store_error)?)
    }

    /// True for a Redis Cluster, where one transaction cannot span keys of different slots.
    pub(crate) fn is_cluster(&self) -> bool {
        matches!(self, Self::Cluster(_))
    }

    pub(crate) async fn query_pipeline<T: FromRedisValue>(
        &self,
        pipe: &Pipeline,
    ) -> Result<T, StoreError> {
        self.query_pipeline_raw(pipe).await.map_err(store_error)
    }

    /// [`Connection::query_pipeline`] with the driver's own error, which can be cloned.
    pub(crate) async fn query_pipeline_raw<T: FromRedisValue>(
        &self,
        pipe: &Pipeline,
    ) -> Result<T, RedisError> {
        match self.clone() {
            Self::Single(mut conn) => pipe.query_async(&mut conn).await,
            Self::Cluster(mut conn) => pipe.query_async(&mut conn).await,
        }
    }

    /// Every key matching `pattern`, from every primary, one `SCAN` page per call of `next`.
    pub(crate) async fn scanner(&self, pattern: String) -> Result<Scanner, StoreError> {
        let nodes = match self {
            Self::Single(_) => vec![None],
            Self::Cluster(_) => self.primaries().await?.into_iter().map(Some).collect(),
        };
        Ok(Scanner {
            connection: self.clone(),
            pattern,
            nodes,
            cursor: 0,
        })
    }

    /// `host:port` of each cluster primary, from `CLUSTER NODES`.
    async fn primaries(&self) -> Result<Vec<(String, u16)>, StoreError> {
        let text: String = self.query(redis::cmd("CLUSTER").arg("NODES")).await?;
        Ok(primaries_in(&text))
    }
}

/// `host:port` of each primary `CLUSTER NODES` lists as reachable: flagged `master`, and
/// neither `fail` nor `fail?`. Flags are compared whole: `nofailover` (a primary whose
/// replicas never take over) is no failure, and a primary so flagged was passed over, its
/// keys never listed, counted, swept or cleared.
fn primaries_in(cluster_nodes: &str) -> Vec<(String, u16)> {
    let mut primaries = Vec::new();
    for line in cluster_nodes.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let (Some(address), Some(flags)) = (fields.get(1), fields.get(2)) else {
            continue;
        };
        let has = |flag: &str| flags.split(',').any(|f| f == flag);
        if !has("master") || has("fail") || has("fail?") {
            continue;
        }
        // "host:port@busport[,hostname]"
        let host_port = address.split('@').next().unwrap_or_default();
        if let Some((host, port)) = host_port.rsplit_once(':') {
            if let Ok(port) = port.parse() {
                primaries.push((host.to_owned(), port));
            }
        }
    }
    primaries
}

/// The names among `names` (keys, or members of a set) that are text. Every name this store
/// writes is; another program's that is not cannot be one of its entries, and read as text
/// it failed the whole reply (a page of a scan, so every `clear`, `count` and sweep, or a URL
/// group's members, so every invalidation of the URL).
pub(crate) fn text_names(names: Vec<Vec<u8>>) -> Vec<String> {
    names
        .into_iter()
        .filter_map(|name| String::from_utf8(name).ok())
        .collect()
}

/// A `SCAN` in progress over one server or each cluster primary in turn.
pub(crate) struct Scanner {
    connection: Connection,
    pattern: String,
    /// Nodes still to scan (`None`: the single server); the first is in progress.
    nodes: Vec<Option<(String, u16)>>,
    cursor: u64,
}

impl Scanner {
    /// The next page of keys, or `None` when every node is done.
    pub(crate) async fn next_page(&mut self) -> Result<Option<Vec<String>>, StoreError> {
        let Some(node) = self.nodes.first().cloned() else {
            return Ok(None);
        };
        let mut cmd = redis::cmd("SCAN");
        cmd.arg(self.cursor)
            .arg("MATCH")
            .arg(&self.pattern)
            .arg("COUNT")
            .arg(SCAN_COUNT);
        let reply: Value = match (&self.connection, node) {
            (Connection::Single(_), _) | (Connection::Cluster(_), None) => {
                self.connection.query(&cmd).await?
            }
            (Connection::Cluster(conn), Some((host, port))) => {
                let routing =
                    RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress { host, port });
                conn.clone()
                    .route_command(cmd, routing)
                    .await
                    .map_err(store_error)?
            }
        };
        let (cursor, keys): (u64, Vec<Vec<u8>>) = converted(reply)?;
        self.cursor = cursor;
        if cursor == 0 {
            self.nodes.remove(0);
        }
        Ok(Some(text_names(keys)))
    }
}

/// A reply as `T`. A reply of another shape (another program's value under our key) is a
/// backend error, a [`redis::ErrorKind::Parse`] one: the driver's own conversion inside
/// `query_async` reported it as a failure of the connection (its kind asks for a
/// reconnection), which made such a value's every read a store failure instead of a value
/// that is no entry.
pub(crate) fn converted<T: FromRedisValue>(reply: redis::Value) -> Result<T, StoreError> {
    T::from_redis_value(reply).map_err(|e| StoreError::backend(RedisError::from(e)))
}

/// Connection-level failures and timeouts are transient (`Unavailable`); the rest are
/// backend errors.
pub(crate) fn store_error(error: RedisError) -> StoreError {
    if error.is_timeout()
        || error.is_io_error()
        || error.is_connection_dropped()
        || error.is_connection_refusal()
        || error.is_unrecoverable_error()
    {
        StoreError::unavailable(error)
    } else if is_out_of_memory(&error) {
        StoreError::full(error)
    } else {
        StoreError::backend(error)
    }
}

/// `maxmemory` reached under the `noeviction` policy: an `OOM` reply, alone or as the reason a
/// transaction (our writes are `MULTI`/`EXEC`) was aborted.
fn is_out_of_memory(error: &RedisError) -> bool {
    error.code() == Some("OOM")
        || error
            .clone()
            .into_server_errors()
            .is_some_and(|errors| errors.iter().any(|(_, e)| e.code() == "OOM"))
}

#[cfg(test)]
mod tests {
    use super::primaries_in;

    /// Flags are read whole: `nofailover` is no failure; `fail`, `fail?` and replicas are
    /// passed over.
    #[test]
    fn primaries_are_the_masters_not_failing() {
        let nodes = "\
a1 10.0.0.1:7000@17000 myself,master,nofailover - 0 0 1 connected 0-5460
a2 10.0.0.2:7001@17001 master - 0 0 2 connected 5461-10922
a3 10.0.0.3:7002@17002,node-3 master,fail? - 0 0 3 connected 10923-16383
a4 10.0.0.4:7003@17003 master,fail - 0 0 4 disconnected
a5 10.0.0.5:7004@17004 slave a1 0 0 1 connected
";
        assert_eq!(
            primaries_in(nodes),
            [("10.0.0.1".to_owned(), 7000), ("10.0.0.2".to_owned(), 7001)]
        );
    }
}
