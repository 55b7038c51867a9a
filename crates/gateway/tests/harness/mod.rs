//! What the tests that run the real `tidings` process share: ports, database URLs, readiness
//! and counting rows.
#![allow(dead_code)] // each test file uses its own part

use std::time::{Duration, Instant};

use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};

/// `url` (a PostgreSQL server URL) with its database replaced by `name`, query kept.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| i + scheme_end);
    let mut out = format!("{}/{name}", &base[..host_end]);
    if let Some(q) = query {
        out = format!("{out}?{q}");
    }
    out
}

/// A port free on 127.0.0.1 a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until the server on `port` answers `/readyz` (at most a minute).
pub async fn wait_ready(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let http = reqwest::Client::new();
    while Instant::now() < deadline {
        let reply = http
            .get(format!("http://127.0.0.1:{port}/readyz"))
            .send()
            .await;
        if reply.is_ok_and(|r| r.status().is_success()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("tidings did not become ready");
}

/// The single number `sql` selects.
pub async fn count(db: &DatabaseConnection, sql: &str) -> i64 {
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            sql.to_owned(),
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get_by_index::<i64>(0).unwrap()
}
