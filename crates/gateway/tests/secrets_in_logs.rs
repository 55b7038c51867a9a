//! No password, session token or service key ever reaches a log line, even at `RUST_LOG=trace`
//! in text and JSON: the real binary signs users in and out, fails sign-ins, creates users,
//! keys and sessions, changes passwords, over tRPC, JSON-RPC and the command line, and every
//! line it logged is searched for each secret it was given or gave out. Runs on SQLite, and on
//! PostgreSQL too when TIDINGS_TEST_DATABASE_URL is set.

mod harness;

use std::path::Path;
use std::process::{Child, Command, Stdio};

use harness::{free_port, wait_ready, with_database};
use sea_orm::{ConnectionTrait, Database};
use serde_json::{Value, json};

/// Runs a CLI command at trace level: its standard output, and its log lines appended to `log`.
fn cli(url: &str, log_format: &str, args: &[&str], log: &mut String) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_tidings"))
        .args(args)
        .env("TIDINGS_DATABASE_URL", url)
        .env("RUST_LOG", "trace")
        .env("TIDINGS_LOG_FORMAT", log_format)
        .output()
        .unwrap();
    log.push_str(&String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn serve(url: &str, port: u16, log_format: &str, log: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_tidings"))
        .env("TIDINGS_DATABASE_URL", url)
        .env("TIDINGS_LISTEN", format!("127.0.0.1:{port}"))
        .env("TIDINGS_ADMIN_EMAIL", "root@example.com")
        .env("RUST_LOG", "trace")
        .env("TIDINGS_LOG_FORMAT", log_format)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .expect("start tidings")
}

/// A client of the running server.
struct Http {
    http: reqwest::Client,
    base: String,
}

impl Http {
    /// A tRPC mutation with a cookie token or a bearer key: the status, the body and the
    /// session token a `Set-Cookie` gave, if any.
    async fn mutate(
        &self,
        procedure: &str,
        input: Value,
        cookie: Option<&str>,
        key: Option<&str>,
    ) -> (u16, Value, Option<String>) {
        let mut req = self
            .http
            .post(format!("{}/api/trpc/{procedure}", self.base))
            .header("content-type", "application/json")
            .body(json!({ "json": input }).to_string());
        if let Some(token) = cookie {
            req = req.header("cookie", format!("tidings_session={token}"));
        }
        if let Some(key) = key {
            req = req.header("authorization", format!("Bearer {key}"));
        }
        let reply = req.send().await.unwrap();
        let status = reply.status().as_u16();
        let token = reply
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|v| v.strip_prefix("tidings_session="))
            .map(|v| v.split(';').next().unwrap_or_default().to_owned())
            .filter(|t| !t.is_empty());
        (status, reply.json().await.unwrap(), token)
    }

    async fn json_rpc(&self, method: &str, params: Value, header: (&str, String)) -> Value {
        self.http
            .post(format!("{}/rpc", self.base))
            .header("content-type", "application/json")
            .header(header.0, header.1)
            .body(
                json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).to_string(),
            )
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

/// Everything secret that went through the server in one run, and everything it logged.
async fn exercise(url: &str, log_format: &str) -> (Vec<String>, String) {
    let mut secrets: Vec<String> = Vec::new();
    let mut log = String::new();
    let dir = std::env::temp_dir();
    let log_path = dir.join(format!("tidings_log_{}.txt", uuid::Uuid::now_v7().simple()));

    let key = cli(
        url,
        log_format,
        &["keys", "create", "--name", "logs"],
        &mut log,
    );
    secrets.push(key.clone());

    let port = free_port();
    let mut child = serve(url, port, log_format, &log_path);
    wait_ready(port).await;
    let http = Http {
        http: reqwest::Client::new(),
        base: format!("http://127.0.0.1:{port}"),
    };
    // The first admin's one-time password is printed for the operator, once, by design; it
    // must appear nowhere else.
    let started = std::fs::read_to_string(&log_path).unwrap();
    let admin_password = started
        .lines()
        .find_map(|l| l.split("with one-time password ").nth(1))
        .expect("the first admin's password is printed")
        .trim()
        .to_owned();
    secrets.push(admin_password.clone());
    // On a database that has its first admin, the command line adds users with passwords.
    let cli_password = "Cli-Secret-Passw0rd-7";
    secrets.push(cli_password.to_owned());
    cli(
        url,
        log_format,
        &[
            "users",
            "create",
            "--email",
            "cli@example.com",
            "--password",
            cli_password,
            "--id",
            "cli",
        ],
        &mut log,
    );

    let (status, _, admin) = http
        .mutate(
            "auth.login",
            json!({"email": "root@example.com", "password": admin_password}),
            None,
            None,
        )
        .await;
    assert_eq!(status, 200);
    let admin = admin.expect("a session token");
    secrets.push(admin.clone());

    for (email, password) in [
        ("root@example.com", "Wrong-Secret-Passw0rd-1"),
        ("nobody@example.com", "Unknown-Secret-Passw0rd-2"),
        ("not-an-email", "Malformed-Secret-Passw0rd-3"),
    ] {
        secrets.push(password.to_owned());
        let (status, _, _) = http
            .mutate(
                "auth.login",
                json!({"email": email, "password": password}),
                None,
                None,
            )
            .await;
        assert!(status == 401 || status == 400, "{status}");
    }
    let (status, _, _) = http
        .mutate(
            "auth.login",
            json!({"email": "root@example.com", "password": "Extra-Secret-Passw0rd-4", "x": 1}),
            None,
            None,
        )
        .await;
    secrets.push("Extra-Secret-Passw0rd-4".to_owned());
    assert_eq!(status, 400);

    let ann_password = "Ann-Secret-Passw0rd-5";
    secrets.push(ann_password.to_owned());
    let (status, body, _) = http
        .mutate(
            "users.create",
            json!({"id": "ann", "email": "ann@example.com", "password": ann_password}),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (_, _, ann) = http
        .mutate(
            "auth.login",
            json!({"email": "ann@example.com", "password": ann_password}),
            None,
            None,
        )
        .await;
    let ann = ann.expect("ann signs in");
    secrets.push(ann.clone());

    let new_password = "Ann-Changed-Passw0rd-6";
    secrets.push(new_password.to_owned());
    let (status, body, _) = http
        .mutate(
            "users.update",
            json!({"id": "ann", "password": new_password}),
            None,
            Some(&key),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body, _) = http
        .mutate(
            "sessions.create",
            json!({"userId": "ann"}),
            None,
            Some(&key),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let minted = body["result"]["data"]["json"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    secrets.push(minted.clone());

    let reply = http
        .json_rpc(
            "auth.me",
            json!({}),
            ("cookie", format!("tidings_session={minted}")),
        )
        .await;
    assert_eq!(reply["result"]["id"], "ann", "{reply}");
    let reply = http
        .json_rpc(
            "auth.login",
            json!({"email": "ann@example.com", "password": new_password}),
            ("authorization", format!("Bearer {key}")),
        )
        .await;
    assert!(reply.get("result").is_some(), "{reply}");
    // Credentials that are wrong are secrets too: a mistyped key, an unknown token.
    let bad_key = "tdk_Mistyped-Secret-Key-8";
    let bad_token = "Unknown-Secret-Session-Token-9";
    secrets.extend([bad_key.to_owned(), bad_token.to_owned()]);
    let (status, _, _) = http
        .mutate("auth.logout", Value::Null, Some(bad_token), None)
        .await;
    assert_eq!(status, 401);
    let (status, _, _) = http
        .mutate("users.delete", json!({"id": "x"}), None, Some(bad_key))
        .await;
    assert_eq!(status, 401);

    let (status, _, _) = http
        .mutate("auth.logout", Value::Null, Some(&ann), None)
        .await;
    assert_eq!(status, 200);
    let (status, _, _) = http
        .mutate("auth.logoutAll", Value::Null, Some(&admin), None)
        .await;
    assert_eq!(status, 200);

    child.kill().unwrap();
    child.wait().unwrap();
    let served = std::fs::read_to_string(&log_path).unwrap();
    let _ = std::fs::remove_file(&log_path);
    // The one line printed for the operator is not a log line.
    log.extend(
        served
            .lines()
            .filter(|l| !l.starts_with("Created the first admin: "))
            .flat_map(|l| [l, "\n"]),
    );
    (secrets, log)
}

fn check(backend: &str, log_format: &str, secrets: &[String], log: &str) {
    // Both the command line's and the server's lines were captured.
    for expected in ["Applying all pending migrations", "Tidings is listening"] {
        assert!(
            log.contains(expected),
            "{backend}/{log_format}: no {expected:?} in {log}"
        );
    }
    for secret in secrets {
        for line in log.lines() {
            assert!(
                !line.contains(secret.as_str()),
                "{backend}/{log_format}: a secret ({secret}) was logged: {line}"
            );
        }
    }
    for line in log.lines() {
        assert!(
            !line.contains("$argon2"),
            "{backend}/{log_format}: a password hash was logged: {line}"
        );
    }
    eprintln!(
        "{backend}/{log_format}: {} log lines, {} secrets, none logged",
        log.lines().count(),
        secrets.len()
    );
}

#[tokio::test]
async fn no_secret_reaches_any_log_line() {
    for log_format in ["text", "json"] {
        let path =
            std::env::temp_dir().join(format!("tidings_logs_{}.db", uuid::Uuid::now_v7().simple()));
        let url = format!("sqlite://{}?mode=rwc", path.display());
        let (secrets, log) = exercise(&url, log_format).await;
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
        check("sqlite", log_format, &secrets, &log);
    }

    let Ok(server) = std::env::var("TIDINGS_TEST_DATABASE_URL") else {
        eprintln!("note: TIDINGS_TEST_DATABASE_URL is not set; PostgreSQL run skipped");
        return;
    };
    let Ok(admin) = Database::connect(server.as_str()).await else {
        eprintln!("note: PostgreSQL is unreachable; skipped");
        return;
    };
    let name = format!("tidings_logs_{}", uuid::Uuid::now_v7().simple());
    admin
        .execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap();
    let (secrets, log) = exercise(&with_database(&server, &name), "text").await;
    admin
        .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await
        .unwrap();
    check("postgres", "text", &secrets, &log);
}
