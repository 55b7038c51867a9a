//! The `tidings` command line, run as a process.

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

struct Scratch {
    dir: std::path::PathBuf,
}

impl Scratch {
    fn new() -> Self {
        let dir =
            std::env::temp_dir().join(format!("tidings-cli-{}", uuid::Uuid::now_v7().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        Self { dir }
    }

    fn url(&self) -> String {
        format!("sqlite://{}/t.db?mode=rwc", self.dir.display())
    }

    fn tidings(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_tidings"))
            .args(args)
            .env("TIDINGS_DATABASE_URL", self.url())
            .env("RUST_LOG", "warn")
            .output()
            .expect("run tidings")
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn users_create_prints_one_json_line_with_the_id() {
    let s = Scratch::new();
    let out = s.tidings(&[
        "users",
        "create",
        "--email",
        "Ann@Example.com",
        "--password",
        "secret123",
        "--name",
        "Ann",
        "--organization",
        "Acme",
        "--admin",
    ]);
    assert!(out.status.success(), "{out:?}");
    let text = stdout(&out);
    assert_eq!(text.lines().count(), 1, "{text}");
    let user: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert!(user["id"].as_str().is_some_and(|id| !id.is_empty()));
    assert_eq!(user["email"], "ann@example.com");
    assert_eq!(user["role"], "admin");

    // A second user in the same organization lands in it; a taken email is refused.
    let out = s.tidings(&[
        "users",
        "create",
        "--email",
        "bob@example.com",
        "--password",
        "secret123",
        "--organization",
        "Acme",
    ]);
    let bob: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(bob["organizationId"], user["organizationId"]);
    let out = s.tidings(&[
        "users",
        "create",
        "--email",
        "ann@example.com",
        "--password",
        "secret123",
    ]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("email: ann@example.com is already taken")
    );
}

#[test]
fn users_create_rejects_bad_input_naming_the_field() {
    let s = Scratch::new();
    let out = s.tidings(&[
        "users",
        "create",
        "--email",
        "not-an-email",
        "--password",
        "secret123",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("email: must be an email address"));
    let out = s.tidings(&[
        "users",
        "create",
        "--email",
        "a@example.com",
        "--password",
        "short",
    ]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("password: must be 8 to 1024 characters")
    );
}

#[test]
fn keys_are_printed_alone_and_can_be_revoked() {
    let s = Scratch::new();
    let out = s.tidings(&["keys", "create", "--name", "backend"]);
    assert!(out.status.success(), "{out:?}");
    let key = stdout(&out);
    assert!(
        key.starts_with("tdk_") && !key.contains(char::is_whitespace),
        "{key}"
    );
    let out = s.tidings(&["keys", "create", "--name", "backend"]);
    assert!(!out.status.success(), "names are unique");
    let listed = stdout(&s.tidings(&["keys", "list"]));
    assert!(
        listed.contains("\"backend\"") && !listed.contains(&key),
        "{listed}"
    );
    assert!(
        s.tidings(&["keys", "revoke", "--name", "backend"])
            .status
            .success()
    );
    assert!(
        !s.tidings(&["keys", "revoke", "--name", "backend"])
            .status
            .success()
    );
}

#[test]
fn a_wrong_variable_is_named() {
    let s = Scratch::new();
    let out = Command::new(env!("CARGO_BIN_EXE_tidings"))
        .arg("migrate")
        .env("TIDINGS_DATABASE_URL", s.url())
        .env("TIDINGS_LISTEN", "not-an-address")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("TIDINGS_LISTEN: must be an address"));
    let out = Command::new(env!("CARGO_BIN_EXE_tidings"))
        .arg("migrate")
        .env("TIDINGS_DATABASE_URL", "mysql://nope")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("TIDINGS_DATABASE_URL"));
}

#[test]
fn first_start_creates_an_admin_and_sigterm_exits_cleanly() {
    let s = Scratch::new();
    let mut child = Command::new(env!("CARGO_BIN_EXE_tidings"))
        .env("TIDINGS_DATABASE_URL", s.url())
        .env("TIDINGS_LISTEN", "127.0.0.1:0")
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut admin_line = None;
    let mut listening = false;
    while Instant::now() < deadline && !(admin_line.is_some() && listening) {
        let Some(Ok(line)) = lines.next() else { break };
        if line.contains("Created the first admin") {
            admin_line = Some(line.clone());
        }
        listening |= line.contains("Tidings is listening");
    }
    let admin_line = admin_line.expect("the first start prints the admin's password");
    assert!(admin_line.contains("admin@tidings.local"), "{admin_line}");
    assert!(listening);
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    assert!(
        exit.success(),
        "SIGTERM ends the server with status 0, got {exit:?}"
    );

    // The second start finds users and creates no second admin.
    let out = s.tidings(&["migrate"]);
    assert!(out.status.success());
    assert!(!String::from_utf8_lossy(&out.stderr).contains("Created the first admin"));
}
