//! The outbox loses nothing when the process dies: a `tidings` killed with SIGKILL in the middle
//! of a batch sends every delivery after a restart (the dead process's claims come back when
//! their lease ends), and one stopped with SIGTERM hands back what it had claimed but not sent.
//! Runs on SQLite, and on PostgreSQL too when `TIDINGS_TEST_DATABASE_URL` is set.

#[path = "../../../tests/src/smtp.rs"]
mod smtp;

mod harness;

use std::collections::HashSet;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use harness::{count, wait_ready, with_database};
use sea_orm::{ConnectionTrait, Database};
use smtp::{SinkOptions, SmtpSink, free_port};

const USERS: usize = 300;

/// A fresh database per backend: `(url, cleanup)`.
async fn databases() -> Vec<(String, Box<dyn FnOnce() -> Cleanup>)> {
    let name = format!("tidings_delivery_{}", uuid::Uuid::now_v7().simple());
    let path = std::env::temp_dir().join(format!("{name}.db"));
    let mut all: Vec<(String, Box<dyn FnOnce() -> Cleanup>)> = vec![(
        format!("sqlite://{}?mode=rwc", path.display()),
        Box::new(move || Cleanup::File(path)),
    )];
    if let Ok(server) = std::env::var("TIDINGS_TEST_DATABASE_URL") {
        if let Ok(admin) = Database::connect(server.as_str()).await {
            admin
                .execute_unprepared(&format!("CREATE DATABASE {name}"))
                .await
                .unwrap();
            let url = with_database(&server, &name);
            all.push((url, Box::new(move || Cleanup::Postgres(server, name))));
        }
    } else {
        eprintln!("note: TIDINGS_TEST_DATABASE_URL is not set; PostgreSQL runs skipped");
    }
    all
}

enum Cleanup {
    File(std::path::PathBuf),
    Postgres(String, String),
}

impl Cleanup {
    async fn run(self) {
        match self {
            Cleanup::File(path) => {
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
                }
            }
            Cleanup::Postgres(server, name) => {
                if let Ok(admin) = Database::connect(server.as_str()).await {
                    let _ = admin
                        .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .await;
                }
            }
        }
    }
}

fn spawn(url: &str, port: u16, smtp: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_tidings"))
        .env("TIDINGS_DATABASE_URL", url)
        .env("TIDINGS_LISTEN", format!("127.0.0.1:{port}"))
        .env("TIDINGS_SMTP_URL", smtp)
        .env("TIDINGS_DELIVERY_LEASE_SECONDS", "2")
        .env("TIDINGS_DELIVERY_POLL_MS", "50")
        .env("TIDINGS_DELIVERY_BATCH", "100")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start tidings")
}

/// A service key through the CLI (which also builds the schema), then users and one notify
/// to them through the API.
async fn queue(url: &str, port: u16) {
    let out = Command::new(env!("CARGO_BIN_EXE_tidings"))
        .args(["keys", "create", "--name", "delivery"])
        .env("TIDINGS_DATABASE_URL", url)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let key = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let http = reqwest::Client::new();
    let call = |procedure: &str, body: serde_json::Value| {
        http.post(format!("http://127.0.0.1:{port}/api/trpc/{procedure}"))
            .header("authorization", format!("Bearer {key}"))
            .header("content-type", "application/json")
            .body(serde_json::json!({ "json": body }).to_string())
            .send()
    };
    let users: Vec<serde_json::Value> = (0..USERS)
        .map(|i| serde_json::json!({"id": format!("u{i:04}"), "email": format!("u{i:04}@example.com")}))
        .collect();
    let reply = call("users.upsertMany", serde_json::json!({ "users": users }))
        .await
        .unwrap();
    assert_eq!(reply.status(), 200);
    let ids: Vec<String> = (0..USERS).map(|i| format!("u{i:04}")).collect();
    let reply = call(
        "notifications.notify",
        serde_json::json!({"key": "ticketAssigned", "recipients": {"userIds": ids},
            "data": {"ticketNumber": "1", "ticketTitle": "Crash"}}),
    )
    .await
    .unwrap();
    assert_eq!(reply.status(), 200);
}

#[tokio::test]
async fn a_process_killed_mid_batch_sends_everything_after_a_restart() {
    // Each DATA answer waits, so the kill lands while a batch is under way.
    let Some(sink) = SmtpSink::start(SinkOptions {
        delay_ms: 30,
        ..SinkOptions::default()
    })
    .await
    else {
        return;
    };
    for (url, cleanup) in databases().await {
        let before = sink.messages().len();
        let port = free_port();
        let mut child = spawn(&url, port, &sink.url());
        wait_ready(port).await;
        queue(&url, port).await;
        sink.wait_for(before + 20, Duration::from_secs(30)).await;
        child.kill().unwrap();
        child.wait().unwrap();
        let at_kill = sink.messages().len() - before;
        assert!(at_kill < USERS, "the kill came too late to test anything");

        let mut child = spawn(&url, port, &sink.url());
        wait_ready(port).await;
        let deadline = Instant::now() + Duration::from_secs(60);
        let db = Database::connect(url.as_str()).await.unwrap();
        while count(&db, "SELECT COUNT(*) FROM deliveries WHERE state = 'sent'").await
            < USERS as i64
        {
            assert!(Instant::now() < deadline, "not every delivery was sent");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        child.kill().unwrap();
        child.wait().unwrap();
        let got = sink.messages()[before..].to_vec();
        let distinct: HashSet<String> = got.iter().flat_map(|m| m.to.clone()).collect();
        eprintln!(
            "{url}: {at_kill} sent before the kill, {} in all, {} distinct",
            got.len(),
            distinct.len()
        );
        assert_eq!(distinct.len(), USERS, "every recipient got the email");
        // At most the sends under way at the kill go out twice (at-least-once delivery).
        assert!(
            got.len() <= USERS + 8,
            "{} emails for {USERS} deliveries",
            got.len()
        );
        let _ = db.close().await;
        cleanup().run().await;
    }
}

#[tokio::test]
async fn sigterm_hands_back_unsent_claims_and_a_restart_sends_them_once() {
    let Some(sink) = SmtpSink::start(SinkOptions {
        delay_ms: 30,
        ..SinkOptions::default()
    })
    .await
    else {
        return;
    };
    for (url, cleanup) in databases().await {
        let before = sink.messages().len();
        let port = free_port();
        let mut child = spawn(&url, port, &sink.url());
        wait_ready(port).await;
        queue(&url, port).await;
        sink.wait_for(before + 20, Duration::from_secs(30)).await;
        let term = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(term.success());
        let status = child.wait().unwrap();
        assert!(status.success(), "a clean exit on SIGTERM: {status:?}");
        let db = Database::connect(url.as_str()).await.unwrap();
        assert_eq!(
            count(
                &db,
                "SELECT COUNT(*) FROM deliveries WHERE state = 'sending'"
            )
            .await,
            0,
            "nothing stays claimed by a stopped process"
        );
        let sent = count(&db, "SELECT COUNT(*) FROM deliveries WHERE state = 'sent'").await;
        assert!(
            sent < USERS as i64,
            "the stop came too late to test anything"
        );

        // Restarted, without waiting for any lease: the rest goes out, nothing twice.
        let mut child = spawn(&url, port, &sink.url());
        wait_ready(port).await;
        let deadline = Instant::now() + Duration::from_secs(60);
        while count(&db, "SELECT COUNT(*) FROM deliveries WHERE state = 'sent'").await
            < USERS as i64
        {
            assert!(Instant::now() < deadline, "not every delivery was sent");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        child.kill().unwrap();
        child.wait().unwrap();
        let got = sink.messages()[before..].to_vec();
        let distinct: HashSet<String> = got.iter().flat_map(|m| m.to.clone()).collect();
        assert_eq!(distinct.len(), USERS, "every recipient got the email");
        assert_eq!(got.len(), USERS, "a clean stop sends nothing twice");
        let _ = db.close().await;
        cleanup().run().await;
    }
}
