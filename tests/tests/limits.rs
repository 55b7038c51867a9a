//! Limits: rates per session, per service key and per client address (TOO_MANY_REQUESTS with
//! `Retry-After`), failed sign-ins per email and per address, the batch size cap, the cap on
//! requests in progress and the time limit per answer. The harness turns rate limits off;
//! each test here sets the one it checks.

use std::time::Duration;

use serde_json::{Value, json};
use tidings_tests::{Client, Reply, each_backend_with};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Calls `call` until it is refused (at most `tries` times); how many got through, and the
/// refusal.
async fn until_refused<F, Fut>(tries: usize, mut call: F) -> (usize, Reply)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Reply>,
{
    for served in 0..tries {
        let reply = call().await;
        if reply.status == 429 {
            return (served, reply);
        }
        assert_ne!(reply.status, 500, "{reply:?}");
    }
    panic!("never refused in {tries} calls");
}

fn assert_too_many(reply: &Reply) {
    assert_eq!(reply.status, 429, "{reply:?}");
    assert_eq!(reply.body["error"]["json"]["code"], -32029, "{reply:?}");
    assert_eq!(reply.error_code(), "TOO_MANY_REQUESTS");
    assert_eq!(reply.body["error"]["json"]["data"]["httpStatus"], 429);
    let wait: u64 = reply
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "{reply:?}");
}

#[tokio::test]
async fn each_session_has_its_own_rate() {
    each_backend_with(
        &[("TIDINGS_RATE_LIMIT_PER_SESSION", "3")],
        |app| async move {
            let ann = app.user("ann").await;
            let bob = app.user("bob").await;
            let (served, refused) =
                until_refused(50, || ann.query("notifications.counts", Value::Null)).await;
            // A burst of twice the rate goes through first.
            assert!(served >= 5, "only {served} served");
            assert_too_many(&refused);
            assert_eq!(
                refused.body["error"]["json"]["message"]
                    .as_str()
                    .map(|m| m.contains("session")),
                Some(true)
            );
            // Another session is untouched.
            assert_eq!(
                bob.query("notifications.counts", Value::Null).await.status,
                200
            );
            // And the refused one is served again after the wait.
            tokio::time::sleep(Duration::from_millis(700)).await;
            assert_eq!(
                ann.query("notifications.counts", Value::Null).await.status,
                200
            );
            app.stop().await;
        },
    )
    .await;
}

#[tokio::test]
async fn service_keys_are_limited_on_json_rpc_too() {
    each_backend_with(
        &[("TIDINGS_RATE_LIMIT_PER_SERVICE_KEY", "2")],
        |app| async move {
            let service = app.service();
            let mut id = 0;
            let (served, refused) = until_refused(50, || {
                id += 1;
                let body =
                    json!({"jsonrpc": "2.0", "id": id, "method": "organizations.list"}).to_string();
                let service = service.clone();
                async move {
                    let reply = service.post("/rpc", Some("application/json"), &body).await;
                    // JSON-RPC answers errors in a 200; count a -32029 as the refusal.
                    if reply.body["error"]["code"] == -32029 {
                        Reply {
                            status: 429,
                            ..reply
                        }
                    } else {
                        reply
                    }
                }
            })
            .await;
            assert!(served >= 3, "only {served} served");
            let error = &refused.body["error"];
            assert_eq!(
                refused.body["id"],
                json!(served + 1),
                "the refusal answers the call's id: {refused:?}"
            );
            assert_eq!(error["data"]["code"], "TOO_MANY_REQUESTS", "{refused:?}");
            assert!(
                error["data"]["retryAfter"].as_u64().is_some_and(|s| s >= 1),
                "{refused:?}"
            );
            assert!(refused.header("retry-after").is_some(), "{refused:?}");
            app.stop().await;
        },
    )
    .await;
}

/// A request from `address` as a trusted proxy would forward it.
async fn counts_from(client: &Client, address: &str) -> Reply {
    client
        .send(
            reqwest::Client::new()
                .get(format!("{}/api/trpc/notifications.counts", client.base))
                .header("x-forwarded-for", address),
        )
        .await
}

#[tokio::test]
async fn addresses_come_from_forwarded_for_only_behind_a_trusted_proxy() {
    let env = [
        ("TIDINGS_RATE_LIMIT_PER_IP", "2"),
        ("TIDINGS_TRUSTED_PROXIES", "127.0.0.1"),
    ];
    each_backend_with(&env, |app| async move {
        let anonymous = app.anonymous();
        let (served, refused) = until_refused(50, || counts_from(&anonymous, "203.0.113.1")).await;
        assert!(served >= 3, "only {served} served");
        assert_too_many(&refused);
        assert_eq!(counts_from(&anonymous, "203.0.113.2").await.status, 401);
        // Health checks and metrics are never limited.
        for _ in 0..10 {
            assert_eq!(anonymous.get("/healthz").await.status, 200);
        }
        app.stop().await;
    })
    .await;
    // Without a trusted proxy the header is the client's own word, and changes nothing.
    each_backend_with(&[("TIDINGS_RATE_LIMIT_PER_IP", "2")], |app| async move {
        let anonymous = app.anonymous();
        let (_, refused) = until_refused(50, || counts_from(&anonymous, "203.0.113.1")).await;
        assert_too_many(&refused);
        assert_eq!(counts_from(&anonymous, "203.0.113.2").await.status, 429);
        app.stop().await;
    })
    .await;
}

async fn login_from(client: &Client, name: &str, password: &str, address: &str) -> Reply {
    let body = json!({"json": {"email": format!("{name}@example.com"), "password": password}});
    client
        .send(
            reqwest::Client::new()
                .post(format!("{}/api/trpc/auth.login", client.base))
                .header("content-type", "application/json")
                .header("x-forwarded-for", address)
                .body(body.to_string()),
        )
        .await
}

#[tokio::test]
async fn failed_sign_ins_are_limited_per_email_and_per_address() {
    let env = [
        ("TIDINGS_LOGIN_FAILURES_PER_MINUTE", "3"),
        ("TIDINGS_TRUSTED_PROXIES", "127.0.0.1"),
    ];
    each_backend_with(&env, |app| async move {
        let _ann = app.user("ann").await;
        let _bob = app.user("bob").await;
        let anonymous = app.anonymous();
        for _ in 0..3 {
            let wrong = login_from(&anonymous, "ann", "guess", "198.51.100.1").await;
            assert_eq!(wrong.status, 401, "{wrong:?}");
        }
        // Ann's email is spent, wherever the attempt comes from, even with her password.
        let refused = login_from(&anonymous, "ann", "password-ann", "198.51.100.2").await;
        assert_too_many(&refused);
        assert!(refused.session_cookie().is_none());
        // The address is spent, whatever account it tries.
        assert_too_many(&login_from(&anonymous, "bob", "password-bob", "198.51.100.1").await);
        // Bob from elsewhere signs in; successful sign-ins are never counted.
        for _ in 0..5 {
            let ok = login_from(&anonymous, "bob", "password-bob", "198.51.100.3").await;
            assert_eq!(ok.status, 200, "{ok:?}");
        }
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn batches_are_capped() {
    each_backend_with(&[("TIDINGS_MAX_BATCH_SIZE", "2")], |app| async move {
        let ann = app.user("ann").await;
        let two = ann
            .get("/api/trpc/notifications.counts,notifications.unreadCount?batch=1")
            .await;
        assert_eq!(two.status, 200, "{two:?}");
        let three = ann
            .get("/api/trpc/notifications.counts,notifications.unreadCount,auth.me?batch=1")
            .await;
        assert_eq!(three.status, 400, "{three:?}");
        assert_eq!(three.body["error"]["json"]["data"]["code"], "BAD_REQUEST");
        assert_eq!(
            three.body["error"]["json"]["message"],
            "batch: at most 2 calls in one batch, got 3"
        );
        app.stop().await;
    })
    .await;
}

/// Starts a sign-in whose body arrives slowly: the request stays in progress until the rest
/// is written.
async fn slow_request(base: &str) -> (TcpStream, &'static str) {
    let addr = base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let body = r#"{"json":{"email":"nobody@example.com","password":"x"}}"#;
    let head = format!(
        "POST /api/trpc/auth.login HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&body.as_bytes()[..5]).await.unwrap();
    (stream, &body[5..])
}

async fn finish(mut stream: TcpStream, rest: &str) -> String {
    stream.write_all(rest.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    answer
}

#[tokio::test]
async fn requests_in_progress_are_capped() {
    each_backend_with(
        &[("TIDINGS_MAX_CONCURRENT_REQUESTS", "1")],
        |app| async move {
            let anonymous = app.anonymous();
            let (stream, rest) = slow_request(&app.base).await;
            tokio::time::sleep(Duration::from_millis(200)).await;
            let refused = anonymous.query("notifications.counts", Value::Null).await;
            assert_eq!(refused.status, 503, "{refused:?}");
            assert_eq!(
                refused.body["error"]["json"]["data"]["code"],
                "SERVICE_UNAVAILABLE"
            );
            assert_eq!(refused.header("retry-after"), Some("1"));
            let answer = finish(stream, rest).await;
            assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
            assert_eq!(
                anonymous
                    .query("notifications.counts", Value::Null)
                    .await
                    .status,
                401
            );
            app.stop().await;
        },
    )
    .await;
}

#[tokio::test]
async fn slow_requests_time_out() {
    each_backend_with(
        &[("TIDINGS_REQUEST_TIMEOUT_SECONDS", "1")],
        |app| async move {
            let (stream, rest) = slow_request(&app.base).await;
            tokio::time::sleep(Duration::from_millis(1500)).await;
            let answer = finish(stream, rest).await;
            assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
            assert!(answer.contains("SERVICE_UNAVAILABLE"), "{answer}");
            app.stop().await;
        },
    )
    .await;
}
