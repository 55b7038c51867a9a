//! The black-box test harness: starts the real Tidings service on `127.0.0.1:0` with a database
//! of its own and hands out clients that speak tRPC over real HTTP.
//!
//! ```text
//! each_backend(|app| async move {
//!     let ann = app.user("ann").await;
//!     let reply = ann.query("notifications.list", json!({"limit": 2})).await;
//!     assert_eq!(reply.status, 200);
//! }).await;
//! ```
//!
//! Every test body runs on SQLite, and again on PostgreSQL when `TIDINGS_TEST_DATABASE_URL`
//! points at a server (each run in a database it creates and drops).

pub mod smtp;

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;

use futures::FutureExt;
use reqwest::header::HeaderMap;
use sea_orm::{ConnectionTrait, Database};
use serde_json::{Value, json};
use tidings_gateway::{Config, RunningServer, start};
use tidings_persistence::Db;

/// The database engine a test runs on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    /// The server URL from `TIDINGS_TEST_DATABASE_URL`.
    Postgres(String),
}

impl Backend {
    pub fn name(&self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }
}

/// The backends to run on: SQLite always, PostgreSQL when configured.
pub fn backends() -> Vec<Backend> {
    let mut all = vec![Backend::Sqlite];
    match std::env::var("TIDINGS_TEST_DATABASE_URL") {
        Ok(url) if !url.trim().is_empty() => all.push(Backend::Postgres(url)),
        _ => eprintln!("note: TIDINGS_TEST_DATABASE_URL is not set; PostgreSQL runs skipped"),
    }
    all
}

/// A database of a test's own; dropped by [`TestDb::drop_now`].
#[derive(Debug)]
pub struct TestDb {
    pub url: String,
    cleanup: Cleanup,
}

#[derive(Debug)]
enum Cleanup {
    File(PathBuf),
    Postgres { server: String, name: String },
}

/// Replaces the database name in a PostgreSQL URL.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let host_end = base[scheme_end..]
        .find('/')
        .map(|i| i + scheme_end)
        .unwrap_or(base.len());
    let mut out = format!("{}/{name}", &base[..host_end]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

impl TestDb {
    /// Creates an empty database; `None` when PostgreSQL is configured but unreachable.
    pub async fn create(backend: &Backend) -> Option<Self> {
        let name = format!("tidings_test_{}", uuid::Uuid::now_v7().simple());
        match backend {
            Backend::Sqlite => {
                let path = std::env::temp_dir().join(format!("{name}.db"));
                Some(Self {
                    url: format!("sqlite://{}?mode=rwc", path.display()),
                    cleanup: Cleanup::File(path),
                })
            }
            Backend::Postgres(server) => {
                let conn = match Database::connect(server.as_str()).await {
                    Ok(c) => c,
                    Err(e) => {
                        eprintln!(
                            "note: PostgreSQL at TIDINGS_TEST_DATABASE_URL is unreachable ({e}); skipped"
                        );
                        return None;
                    }
                };
                conn.execute_unprepared(&format!("CREATE DATABASE {name}"))
                    .await
                    .expect("create the test database");
                let _ = conn.close().await;
                Some(Self {
                    url: with_database(server, &name),
                    cleanup: Cleanup::Postgres {
                        server: server.clone(),
                        name,
                    },
                })
            }
        }
    }

    /// The same database reached at another URL (through a proxy, say); still dropped as itself.
    pub fn with_url(self, url: String) -> Self {
        Self { url, ..self }
    }

    pub async fn drop_now(self) {
        match self.cleanup {
            Cleanup::File(path) => {
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
                }
            }
            Cleanup::Postgres { server, name } => {
                if let Ok(conn) = Database::connect(server.as_str()).await {
                    let _ = conn
                        .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .await;
                    let _ = conn.close().await;
                }
            }
        }
    }
}

/// A running Tidings with a service key, on a database of its own.
#[derive(Debug)]
pub struct TestApp {
    pub backend: Backend,
    pub base: String,
    pub service_key: String,
    server: RunningServer,
}

impl TestApp {
    /// Starts a server on `db` with the given extra environment.
    pub async fn start(backend: Backend, db: &TestDb, env: &[(&str, &str)]) -> Self {
        Self::start_with_key(backend, db, env, "tests").await
    }

    /// As [`TestApp::start`], naming its service key `key_name` (key names are unique per
    /// database, so a second server on the same database needs another).
    pub async fn start_with_key(
        backend: Backend,
        db: &TestDb,
        env: &[(&str, &str)],
        key_name: &str,
    ) -> Self {
        let mut vars: Vec<(String, String)> = vec![
            ("TIDINGS_DATABASE_URL".into(), db.url.clone()),
            ("TIDINGS_LISTEN".into(), "127.0.0.1:0".into()),
            // Every test client comes from 127.0.0.1 and many run at once: rate limits are
            // off unless a test sets them (tests/tests/limits.rs).
            ("TIDINGS_RATE_LIMIT_PER_IP".into(), "0".into()),
            ("TIDINGS_RATE_LIMIT_PER_SESSION".into(), "0".into()),
            ("TIDINGS_RATE_LIMIT_PER_SERVICE_KEY".into(), "0".into()),
        ];
        vars.extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let config = Config::from_lookup(|name| {
            vars.iter()
                .rev()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        })
        .expect("test configuration");
        let server = start(config).await.expect("start tidings");
        let (_, service_key) = tidings_procedures::create_service_key(&server.db, key_name)
            .await
            .expect("create a service key");
        Self {
            backend,
            base: format!("http://{}", server.addr),
            service_key,
            server,
        }
    }

    pub fn db(&self) -> &Db {
        &self.server.db
    }

    /// A client with no credentials.
    pub fn anonymous(&self) -> Client {
        Client::new(&self.base)
    }

    /// A client authenticated by the service key.
    pub fn service(&self) -> Client {
        Client {
            bearer: Some(self.service_key.clone()),
            ..Client::new(&self.base)
        }
    }

    /// Creates user `name` (id `name`, email `name@example.com`, password `password-<name>`) in
    /// organization `org` (created when missing) and signs them in.
    pub async fn user_in(&self, name: &str, org: &str, role: &str) -> Client {
        let service = self.service();
        let org_reply = service
            .mutate("organizations.create", json!({"id": org, "name": org}))
            .await;
        assert!(
            org_reply.status == 200 || org_reply.status == 409,
            "create organization {org}: {org_reply:?}"
        );
        let created = service
            .mutate(
                "users.create",
                json!({
                    "id": name,
                    "email": format!("{name}@example.com"),
                    "password": format!("password-{name}"),
                    "name": name,
                    "organizationId": org,
                    "role": role,
                }),
            )
            .await;
        assert_eq!(created.status, 200, "create user {name}: {created:?}");
        self.login(name).await
    }

    /// A signed-in user `name` in organization `acme`.
    pub async fn user(&self, name: &str) -> Client {
        self.user_in(name, "acme", "user").await
    }

    /// A signed-in admin `name` in organization `org`.
    pub async fn admin(&self, name: &str, org: &str) -> Client {
        self.user_in(name, org, "admin").await
    }

    /// Signs in an existing user created by [`TestApp::user_in`].
    pub async fn login(&self, name: &str) -> Client {
        let mut client = self.anonymous();
        let reply = client
            .mutate(
                "auth.login",
                json!({"email": format!("{name}@example.com"), "password": format!("password-{name}")}),
            )
            .await;
        assert_eq!(reply.status, 200, "login {name}: {reply:?}");
        client.cookie = Some(
            reply
                .session_cookie()
                .expect("login sets the session cookie"),
        );
        client.user_id = Some(name.to_owned());
        client
    }

    /// Creates notifications for `recipient` through the service API; returns their ids,
    /// oldest first.
    pub async fn notify(&self, recipient: &str, count: usize) -> Vec<String> {
        let records: Vec<Value> = (0..count)
            .map(|i| json!({"recipient": recipient, "subject": format!("Subject {i}"), "message": format!("Message {i}")}))
            .collect();
        let reply = self
            .service()
            .mutate("notifications.create", Value::Array(records))
            .await;
        assert_eq!(reply.status, 200, "create notifications: {reply:?}");
        reply
            .data()
            .as_array()
            .expect("an array of records")
            .iter()
            .map(|r| r["id"].as_str().expect("record id").to_owned())
            .collect()
    }

    pub async fn stop(self) {
        self.server.stop().await.expect("server stops cleanly");
    }
}

/// Runs `test` once per backend, each time on a fresh database and server; the database is
/// dropped afterwards even when the test fails.
pub async fn each_backend<F, Fut>(test: F)
where
    F: Fn(TestApp) -> Fut,
    Fut: Future<Output = ()>,
{
    each_backend_with(&[], test).await
}

/// As [`each_backend`], with extra environment for the server.
pub async fn each_backend_with<F, Fut>(env: &[(&str, &str)], test: F)
where
    F: Fn(TestApp) -> Fut,
    Fut: Future<Output = ()>,
{
    for backend in backends() {
        let Some(db) = TestDb::create(&backend).await else {
            continue;
        };
        let app = TestApp::start(backend.clone(), &db, env).await;
        let base = app.base.clone();
        let outcome = AssertUnwindSafe(test(app)).catch_unwind().await;
        // The test consumed the app; the server task ends with the runtime. Drop the database.
        let _ = base;
        db.drop_now().await;
        if let Err(panic) = outcome {
            eprintln!("test failed on {}", backend.name());
            std::panic::resume_unwind(panic);
        }
    }
}

/// A tRPC client over real HTTP, holding a session cookie or a service key.
#[derive(Clone, Debug)]
pub struct Client {
    http: reqwest::Client,
    pub base: String,
    pub cookie: Option<String>,
    pub bearer: Option<String>,
    /// The user's id, for clients made by [`TestApp::user`].
    pub user_id: Option<String>,
}

/// A reply: status, headers and body (JSON when it parses, else `Value::String`).
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Reply {
    /// `result.data.json` of a successful single call.
    pub fn data(&self) -> &Value {
        let data = &self.body["result"]["data"]["json"];
        assert!(
            !self.body["result"].is_null(),
            "expected a result, got {self:?}"
        );
        data
    }

    /// `error.json.data.code` of a failed single call.
    pub fn error_code(&self) -> &str {
        self.body["error"]["json"]["data"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("expected an error, got {self:?}"))
    }

    pub fn error_message(&self) -> &str {
        self.body["error"]["json"]["message"]
            .as_str()
            .unwrap_or_default()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The `tidings_session` value a `Set-Cookie` header gives, if any.
    pub fn session_cookie(&self) -> Option<String> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|v| v.strip_prefix("tidings_session="))
            .map(|v| v.split(';').next().unwrap_or_default().to_owned())
    }
}

/// Percent-encodes a query value the way `encodeURIComponent` does.
pub fn encode_component(value: &str) -> String {
    const KEEP: &[u8] = b"-_.!~*'()";
    value
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || KEEP.contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

impl Client {
    pub fn new(base: &str) -> Self {
        Self {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("http client"),
            base: base.to_owned(),
            cookie: None,
            bearer: None,
            user_id: None,
        }
    }

    fn request(&self, method: reqwest::Method, path_and_query: &str) -> reqwest::RequestBuilder {
        let mut req = self
            .http
            .request(method, format!("{}{path_and_query}", self.base));
        if let Some(cookie) = &self.cookie {
            req = req.header("cookie", format!("tidings_session={cookie}"));
        }
        if let Some(key) = &self.bearer {
            req = req.header("authorization", format!("Bearer {key}"));
        }
        req
    }

    pub async fn send(&self, req: reqwest::RequestBuilder) -> Reply {
        let response = req.send().await.expect("request sent");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.expect("response body");
        let body = serde_json::from_str(&text).unwrap_or_else(|_| Value::String(text.clone()));
        Reply {
            status,
            headers,
            body,
            text,
        }
    }

    /// GET `path_and_query` as is, with this client's credentials.
    pub async fn get(&self, path_and_query: &str) -> Reply {
        self.send(self.request(reqwest::Method::GET, path_and_query))
            .await
    }

    /// POST `body` to `path_and_query` with an optional content type.
    pub async fn post(
        &self,
        path_and_query: &str,
        content_type: Option<&str>,
        body: &str,
    ) -> Reply {
        let mut req = self
            .request(reqwest::Method::POST, path_and_query)
            .body(body.to_owned());
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        self.send(req).await
    }

    /// Any method, for HEAD, PUT and the like.
    pub async fn method(&self, method: reqwest::Method, path_and_query: &str) -> Reply {
        self.send(self.request(method, path_and_query)).await
    }

    /// A query as the real client sends it: GET with `?input={"json":…}`.
    pub async fn query(&self, procedure: &str, input: Value) -> Reply {
        let envelope = if input.is_null() {
            json!({"json": null, "meta": {"values": ["undefined"], "v": 1}})
        } else {
            json!({ "json": input })
        };
        self.get(&format!(
            "/api/trpc/{procedure}?input={}",
            encode_component(&envelope.to_string())
        ))
        .await
    }

    /// A mutation as the real client sends it: POST with body `{"json":…}`.
    pub async fn mutate(&self, procedure: &str, input: Value) -> Reply {
        let envelope = if input.is_null() {
            json!({"json": null, "meta": {"values": ["undefined"], "v": 1}})
        } else {
            json!({ "json": input })
        };
        self.post(
            &format!("/api/trpc/{procedure}"),
            Some("application/json"),
            &envelope.to_string(),
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_names_are_replaced() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "t1"),
            "postgres://postgres@127.0.0.1:5432/t1"
        );
        assert_eq!(with_database("postgres://u@h", "t1"), "postgres://u@h/t1");
        assert_eq!(
            with_database("postgres://u@h/db?sslmode=disable", "t1"),
            "postgres://u@h/t1?sslmode=disable"
        );
    }

    #[test]
    fn components_are_encoded_like_javascript() {
        assert_eq!(
            encode_component(r#"{"json":{"limit":2}}"#),
            "%7B%22json%22%3A%7B%22limit%22%3A2%7D%7D"
        );
    }
}
