//! The floors: the least work a cache hit can do in this middleware chain.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::Extensions;
use reqwest::{Request, Response};
use reqwest_middleware::{Middleware, Next};

fn response(body: Bytes) -> Response {
    let response = http::Response::builder()
        .status(200)
        .header("content-type", "application/octet-stream")
        .body(body)
        .unwrap_or_else(|_| http::Response::new(Bytes::new()));
    Response::from(response)
}

/// Answers from a `HashMap<url, Bytes>` filled beforehand: a lookup and a response build.
pub struct MemoryFloor {
    pub bodies: Arc<HashMap<String, Bytes>>,
}

#[async_trait::async_trait]
impl Middleware for MemoryFloor {
    async fn handle(
        &self,
        req: Request,
        ext: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<Response> {
        match self.bodies.get(req.url().as_str()) {
            Some(body) => Ok(response(body.clone())),
            None => next.run(req, ext).await,
        }
    }
}

/// Reads the body with one prepared `SELECT` on a WAL database, on the calling thread.
pub struct SqliteFloor {
    pub connection: Mutex<rusqlite::Connection>,
}

impl SqliteFloor {
    pub fn new(path: &std::path::Path, bodies: &HashMap<String, Bytes>) -> Self {
        let conn = rusqlite::Connection::open(path).expect("open floor db");
        conn.pragma_update(None, "journal_mode", "WAL")
            .expect("wal");
        conn.execute_batch("CREATE TABLE IF NOT EXISTS t (url TEXT PRIMARY KEY, body BLOB)")
            .expect("table");
        for (url, body) in bodies {
            conn.execute(
                "INSERT OR REPLACE INTO t VALUES (?1, ?2)",
                rusqlite::params![url, &body[..]],
            )
            .expect("insert");
        }
        Self {
            connection: Mutex::new(conn),
        }
    }
}

#[async_trait::async_trait]
impl Middleware for SqliteFloor {
    async fn handle(
        &self,
        req: Request,
        ext: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<Response> {
        let found: Option<Vec<u8>> = {
            let conn = self.connection.lock().unwrap_or_else(|p| p.into_inner());
            let mut stmt = conn
                .prepare_cached("SELECT body FROM t WHERE url = ?1")
                .expect("prepare");
            stmt.query_row([req.url().as_str()], |row| row.get(0)).ok()
        };
        match found {
            Some(body) => Ok(response(Bytes::from(body))),
            None => next.run(req, ext).await,
        }
    }
}
