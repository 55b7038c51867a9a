//! A database that goes away gives clear errors, and Tidings recovers by itself when it returns.
//!
//! PostgreSQL is reached through a local TCP proxy the test can cut and restore, standing in for
//! a database restart or a network partition.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use tidings_tests::{Backend, TestApp, TestDb, backends};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// Forwards connections on a local port to `target` until cut.
struct Proxy {
    addr: SocketAddr,
    target: SocketAddr,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Proxy {
    async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let proxy = Self {
            addr,
            target,
            tasks: Arc::default(),
        };
        proxy.serve(listener);
        proxy
    }

    fn serve(&self, listener: TcpListener) {
        let target = self.target;
        let tasks = self.tasks.clone();
        let accept = tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    return;
                };
                let pipe = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                tasks.lock().unwrap().push(pipe);
            }
        });
        self.tasks.lock().unwrap().push(accept);
    }

    /// Closes the port and every open connection.
    fn cut(&self) {
        for task in self.tasks.lock().unwrap().drain(..) {
            task.abort();
        }
    }

    async fn restore(&self) {
        let listener = TcpListener::bind(self.addr)
            .await
            .expect("rebind the proxy port");
        self.serve(listener);
    }
}

fn host_port(url: &str) -> SocketAddr {
    let rest = url.split("://").nth(1).unwrap();
    let rest = rest.rsplit('@').next().unwrap();
    let host = rest.split(['/', '?']).next().unwrap();
    let host = if host.contains(':') {
        host.to_owned()
    } else {
        format!("{host}:5432")
    };
    let host = host.replace("localhost", "127.0.0.1");
    host.parse()
        .expect("a numeric host:port in TIDINGS_TEST_DATABASE_URL")
}

#[tokio::test]
async fn a_lost_database_gives_clear_errors_and_tidings_recovers() {
    let Some(Backend::Postgres(server_url)) = backends()
        .into_iter()
        .find(|b| matches!(b, Backend::Postgres(_)))
    else {
        eprintln!("note: needs PostgreSQL (TIDINGS_TEST_DATABASE_URL); skipped");
        return;
    };
    let backend = Backend::Postgres(server_url.clone());
    let Some(db) = TestDb::create(&backend).await else {
        return;
    };
    let proxy = Proxy::start(host_port(&server_url)).await;
    let real = host_port(&server_url);
    let host_in_url = db
        .url
        .split("://")
        .nth(1)
        .unwrap()
        .rsplit('@')
        .next()
        .unwrap();
    let host_in_url = host_in_url.split(['/', '?']).next().unwrap().to_owned();
    let through_proxy = db.url.replacen(&host_in_url, &proxy.addr.to_string(), 1);
    assert_ne!(
        through_proxy, db.url,
        "the URL goes through the proxy, not {real}"
    );
    let proxied = db.with_url(through_proxy);
    let app = TestApp::start(backend, &proxied, &[]).await;
    let ann = app.user("ann").await;
    app.notify("ann", 2).await;
    assert_eq!(
        ann.query("notifications.unreadCount", Value::Null)
            .await
            .data(),
        &json!({"count": 2})
    );

    proxy.cut();
    // The list always reads the database (counts and sessions may come from memory).
    let down = ann.query("notifications.list", Value::Null).await;
    assert_eq!(down.status, 500, "{down:?}");
    assert_eq!(down.error_code(), "INTERNAL_SERVER_ERROR");
    assert!(
        !down.text.contains("postgres"),
        "internals stay in the log: {}",
        down.text
    );
    let ready = app.anonymous().get("/readyz").await;
    assert_eq!(ready.status, 503);
    assert_eq!(
        app.anonymous().get("/healthz").await.status,
        200,
        "the process is still up"
    );

    proxy.restore().await;
    // The pool tests a connection before handing it out and replaces the broken ones.
    let recovered = ann.query("notifications.list", Value::Null).await;
    assert_eq!(
        recovered.data()["notifications"].as_array().map(Vec::len),
        Some(2)
    );
    assert_eq!(
        ann.query("notifications.unreadCount", Value::Null)
            .await
            .data(),
        &json!({"count": 2})
    );
    assert_eq!(app.anonymous().get("/readyz").await.status, 200);
    app.stop().await;
    proxied.drop_now().await;
}
