//! Graceful shutdown of the real process: on SIGTERM it stops accepting connections, finishes
//! requests in flight, ends subscription streams with a last retryable event, and exits 0
//! within `TIDINGS_SHUTDOWN_GRACE_SECONDS` — also when a request never finishes. And what it
//! logs meanwhile: one JSON line per call with the request id, never a password.

mod harness;

use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use harness::free_port;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

struct Server {
    child: Child,
    port: u16,
    db: std::path::PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", self.db.display()));
        }
    }
}

fn tidings(db: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tidings"));
    command
        .env("TIDINGS_DATABASE_URL", db)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    command
}

async fn start(grace: &str) -> Server {
    start_with(grace, &[], Stdio::null()).await
}

async fn start_with(grace: &str, env: &[(&str, &str)], stderr: Stdio) -> Server {
    let path = std::env::temp_dir().join(format!(
        "tidings_shutdown_{}.db",
        uuid::Uuid::now_v7().simple()
    ));
    let url = format!("sqlite://{}?mode=rwc", path.display());
    let out = tidings(&url)
        .args([
            "users",
            "create",
            "--email",
            "ann@example.com",
            "--password",
            "password-ann",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let port = free_port();
    let child = tidings(&url)
        .env("TIDINGS_LISTEN", format!("127.0.0.1:{port}"))
        .env("TIDINGS_SHUTDOWN_GRACE_SECONDS", grace)
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let server = Server {
        child,
        port,
        db: path,
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let http = reqwest::Client::new();
    while Instant::now() < deadline {
        let reply = http
            .get(format!("http://127.0.0.1:{port}/readyz"))
            .send()
            .await;
        if reply.is_ok_and(|r| r.status().is_success()) {
            return server;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("tidings did not become ready");
}

fn terminate(server: &Server) {
    let status = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

async fn exit_within(server: &mut Server, limit: Duration) -> (ExitStatus, Duration) {
    let started = Instant::now();
    loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            return (status, started.elapsed());
        }
        assert!(
            started.elapsed() < limit,
            "still running {limit:?} after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A sign-in whose body is only partly written: in flight until [`finish`].
async fn slow_request(port: u16) -> TcpStream {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let head = format!(
        "POST /api/trpc/auth.login HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        BODY.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&BODY.as_bytes()[..5]).await.unwrap();
    stream
}

const BODY: &str = r#"{"json":{"email":"ann@example.com","password":"password-ann"}}"#;

async fn finish(mut stream: TcpStream) -> String {
    stream.write_all(&BODY.as_bytes()[5..]).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    answer
}

#[tokio::test]
async fn sigterm_drains_requests_and_streams_then_exits_0() {
    let mut server = start("10").await;
    let port = server.port;
    let http = reqwest::Client::new();
    let login = http
        .post(format!("http://127.0.0.1:{port}/api/trpc/auth.login"))
        .header("content-type", "application/json")
        .body(BODY)
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    let cookie = login.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let mut stream = http
        .get(format!(
            "http://127.0.0.1:{port}/api/trpc/notifications.onCounts"
        ))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    let mut received = String::new();
    while !received.contains("\"unread\"") {
        let chunk = tokio::time::timeout(Duration::from_secs(5), stream.chunk())
            .await
            .expect("the first counts within 5 s")
            .unwrap()
            .expect("the stream is open");
        received.push_str(&String::from_utf8_lossy(&chunk));
    }
    let in_flight = slow_request(port).await;
    tokio::time::sleep(Duration::from_millis(200)).await;

    terminate(&server);
    // New connections are refused soon after the signal.
    let deadline = Instant::now() + Duration::from_secs(5);
    while TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
        assert!(Instant::now() < deadline, "still accepting connections");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The stream ends with a retryable error, so the client reconnects and resumes.
    while let Some(chunk) = tokio::time::timeout(Duration::from_secs(5), stream.chunk())
        .await
        .expect("the stream ends within 5 s")
        .unwrap()
    {
        received.push_str(&String::from_utf8_lossy(&chunk));
    }
    let last = received.trim_end().rsplit("\n\n\n").next().unwrap();
    assert!(
        last.starts_with("event: serialized-error\ndata: ")
            && last.contains("\"SERVICE_UNAVAILABLE\""),
        "{received:?}"
    );
    // The request in flight is answered in full.
    let answer = finish(in_flight).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("\"user\""), "{answer}");

    let (status, _) = exit_within(&mut server, Duration::from_secs(10)).await;
    assert!(status.success(), "{status:?}");
}

#[tokio::test]
async fn a_request_that_never_ends_does_not_hold_the_exit_past_the_grace() {
    let mut server = start("1").await;
    let _stuck = slow_request(server.port).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    terminate(&server);
    let (status, took) = exit_within(&mut server, Duration::from_secs(5)).await;
    assert!(status.success(), "{status:?}");
    assert!(
        took >= Duration::from_millis(900),
        "left after {took:?}, before the grace"
    );
}

#[tokio::test]
async fn json_logs_carry_the_call_and_its_request_id_but_no_password() {
    let mut server = start_with(
        "5",
        &[("TIDINGS_LOG_FORMAT", "json"), ("RUST_LOG", "info")],
        Stdio::piped(),
    )
    .await;
    let http = reqwest::Client::new();
    let wrong = http
        .post(format!(
            "http://127.0.0.1:{}/api/trpc/auth.login",
            server.port
        ))
        .header("content-type", "application/json")
        .header("x-request-id", "trace-me-1")
        .body(r#"{"json":{"email":"ann@example.com","password":"hunter2-secret"}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    assert_eq!(wrong.headers()["x-request-id"], "trace-me-1");
    terminate(&server);
    let (status, _) = exit_within(&mut server, Duration::from_secs(10)).await;
    assert!(status.success());
    let mut log = String::new();
    std::io::Read::read_to_string(&mut server.child.stderr.take().unwrap(), &mut log).unwrap();
    assert!(!log.contains("hunter2-secret"), "{log}");
    let call = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|l| l["fields"]["procedure"] == "auth.login")
        .unwrap_or_else(|| panic!("no JSON line for the call: {log}"));
    assert_eq!(call["fields"]["code"], "UNAUTHORIZED", "{call}");
    assert_eq!(call["fields"]["caller"], "anonymous", "{call}");
    assert!(call["fields"]["duration_ms"].is_number(), "{call}");
    assert_eq!(call["span"]["request_id"], "trace-me-1", "{call}");
}
