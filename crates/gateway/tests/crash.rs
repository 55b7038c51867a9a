//! A fan-out is one transaction: a server killed in the middle of one leaves every recipient
//! notified or none. Runs on PostgreSQL (TIDINGS_TEST_DATABASE_URL) with a large fan-out.

mod harness;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use harness::{count, free_port, wait_ready, with_database};
use sea_orm::{ConnectionTrait, Database};

/// Recipients of the fan-out that is killed: big enough that the kill lands mid-way;
/// `TIDINGS_CRASH_USERS` sets another size (1000000 for the full-size check).
fn users() -> i64 {
    std::env::var("TIDINGS_CRASH_USERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300_000)
}

fn spawn(url: &str, port: u16) -> Child {
    Command::new(env!("CARGO_BIN_EXE_tidings"))
        .env("TIDINGS_DATABASE_URL", url)
        .env("TIDINGS_LISTEN", format!("127.0.0.1:{port}"))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start tidings")
}

#[tokio::test]
async fn a_fan_out_killed_midway_leaves_all_or_none() {
    let Ok(server) = std::env::var("TIDINGS_TEST_DATABASE_URL") else {
        eprintln!("note: needs PostgreSQL (TIDINGS_TEST_DATABASE_URL); skipped");
        return;
    };
    let Ok(admin) = Database::connect(server.as_str()).await else {
        eprintln!("note: PostgreSQL is unreachable; skipped");
        return;
    };
    let users = users();
    let name = format!("tidings_crash_{}", uuid::Uuid::now_v7().simple());
    admin
        .execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap();
    let url = with_database(&server, &name);

    // Schema and a service key through the CLI, users straight into the table.
    let out = Command::new(env!("CARGO_BIN_EXE_tidings"))
        .args(["keys", "create", "--name", "crash"])
        .env("TIDINGS_DATABASE_URL", &url)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let key = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let db = Database::connect(url.as_str()).await.unwrap();
    db.execute_unprepared(&format!(
        "INSERT INTO organizations (id, name) VALUES ('crash', 'Crash');
         INSERT INTO users (id, organization_id, email, name)
         SELECT 'u' || g, 'crash', 'u' || g || '@example.com', 'User ' || g FROM generate_series(1, {users}) g;"
    ))
    .await
    .unwrap();

    let port = free_port();
    let mut child = spawn(&url, port);
    wait_ready(port).await;
    let http = reqwest::Client::new();
    let request = http
        .post(format!("http://127.0.0.1:{port}/api/trpc/notifications.notify"))
        .header("authorization", format!("Bearer {key}"))
        .header("content-type", "application/json")
        .body(r#"{"json":{"key":"slaBreach","recipients":{"allUsers":true},"data":{"ticketNumber":1}}}"#)
        .send();
    let call = tokio::spawn(request);
    // Kill once the fan-out's transaction is writing.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let active = count(
            &db,
            "SELECT COUNT(*) FROM pg_stat_activity WHERE query LIKE 'INSERT INTO%' AND state = 'active' AND datname = current_database()",
        )
        .await;
        if active > 0 || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let answered = call.await.unwrap().map(|r| r.status().as_u16());

    // PostgreSQL rolls the open transaction back once the connection drops.
    let mut child = spawn(&url, port);
    wait_ready(port).await;
    let notified = count(&db, "SELECT COUNT(*) FROM notifications").await;
    let deliveries = count(&db, "SELECT COUNT(*) FROM deliveries").await;
    child.kill().unwrap();
    child.wait().unwrap();
    let _ = db.close().await;
    admin
        .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await
        .unwrap();

    eprintln!(
        "the call ended with {answered:?}; {notified} notifications, {deliveries} deliveries after restart"
    );
    match answered {
        Ok(200) => assert_eq!(
            (notified, deliveries),
            (users, users),
            "a finished fan-out reached everyone"
        ),
        _ => assert_eq!(
            (notified, deliveries),
            (0, 0),
            "a killed fan-out left nothing behind"
        ),
    }
}
