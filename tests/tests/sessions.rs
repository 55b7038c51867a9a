//! Sessions against an attacker: a token planted before sign-in is never adopted, "sign out
//! everywhere" revokes every session of the user, an expired session is refused, and a session
//! cookie is not honoured on JSON-RPC from a foreign origin (cross-site WebSocket hijacking).

use std::time::Duration;

use jsonrpsee::core::client::{ClientT, Error as ClientError};
use jsonrpsee::http_client::{HeaderMap, HeaderValue};
use jsonrpsee::rpc_params;
use jsonrpsee::ws_client::WsClientBuilder;
use serde_json::{Value, json};
use tidings_domain::ExternalId;
use tidings_tests::{Client, TestApp, each_backend};

async fn me(client: &Client) -> (u16, Value) {
    let reply = client.query("auth.me", Value::Null).await;
    (
        reply.status,
        reply.body["result"]["data"]["json"]["id"].clone(),
    )
}

async fn sign_in(app: &TestApp, name: &str, planted: Option<&str>) -> tidings_tests::Reply {
    let mut browser = app.anonymous();
    browser.cookie = planted.map(str::to_owned);
    browser
        .mutate(
            "auth.login",
            json!({"email": format!("{name}@example.com"), "password": format!("password-{name}")}),
        )
        .await
}

#[tokio::test]
async fn sign_in_never_adopts_a_planted_token() {
    each_backend(|app| async move {
        app.user("ann").await;
        let mallory = app.user("mallory").await;
        let mallory_token = mallory.cookie.clone().unwrap();

        // A made-up token in the victim's browser, and the attacker's own valid one.
        let made_up = "planted-by-an-attacker-0123456789abcdefghijklmn";
        for planted in [made_up, mallory_token.as_str()] {
            let reply = sign_in(&app, "ann", Some(planted)).await;
            assert_eq!(reply.status, 200, "{reply:?}");
            let issued = reply.session_cookie().expect("sign-in sets a cookie");
            assert_ne!(issued, planted, "the planted token was kept");
            assert!(issued.len() >= 43, "a 256-bit token: {issued}");

            let mut victim = app.anonymous();
            victim.cookie = Some(issued);
            assert_eq!(me(&victim).await, (200, json!("ann")));
        }
        // The planted tokens gained nothing: the made-up one is unknown, the attacker's is
        // still the attacker's.
        let mut attacker = app.anonymous();
        attacker.cookie = Some(made_up.to_owned());
        assert_eq!(me(&attacker).await.0, 401);
        attacker.cookie = Some(mallory_token);
        assert_eq!(me(&attacker).await, (200, json!("mallory")));

        // Every sign-in issues a token of its own.
        let a = sign_in(&app, "ann", None).await.session_cookie().unwrap();
        let b = sign_in(&app, "ann", None).await.session_cookie().unwrap();
        assert_ne!(a, b);
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn logout_all_revokes_every_session_of_the_user_only() {
    each_backend(|app| async move {
        let laptop = app.user("ann").await;
        let phone = app.login("ann").await;
        let minted = app
            .service()
            .mutate("sessions.create", json!({"userId": "ann"}))
            .await;
        let mut host_app = app.anonymous();
        host_app.cookie = Some(minted.data()["token"].as_str().unwrap().to_owned());
        let bob = app.user("bob").await;

        let reply = phone.mutate("auth.logoutAll", Value::Null).await;
        assert_eq!(reply.data(), &json!({"success": true, "count": 3}));
        let cleared = reply.header("set-cookie").unwrap();
        assert!(
            cleared.starts_with("tidings_session=;") && cleared.contains("Max-Age=0"),
            "{cleared}"
        );
        for device in [&laptop, &phone, &host_app] {
            let reply = device.query("notifications.unreadCount", Value::Null).await;
            assert_eq!(reply.error_code(), "UNAUTHORIZED");
        }
        assert_eq!(me(&bob).await, (200, json!("bob")), "other users stay in");

        // Signing in again works, and the revoked tokens stay revoked.
        let again = app.login("ann").await;
        assert_eq!(me(&again).await, (200, json!("ann")));
        assert_eq!(me(&laptop).await.0, 401);
        app.stop().await;
    })
    .await;
}

/// A session of Ann's that ends at `expires_at`, stored as `auth.login` would store it.
async fn session(app: &TestApp, expires_at: chrono::DateTime<chrono::Utc>) -> Client {
    let ann = ExternalId::parse("id", "ann").unwrap();
    let (token, hash) = tidings_procedures::new_session_token();
    app.db()
        .create_session(&ann, &hash, expires_at)
        .await
        .unwrap();
    let mut client = app.anonymous();
    client.cookie = Some(token);
    client
}

#[tokio::test]
async fn an_expired_session_is_unauthorized() {
    each_backend(|app| async move {
        app.user("ann").await;
        let now = chrono::Utc::now();
        let expired = session(&app, now - chrono::Duration::seconds(1)).await;
        let reply = expired.query("auth.me", Value::Null).await;
        assert_eq!(reply.status, 401);
        assert_eq!(reply.error_code(), "UNAUTHORIZED");
        assert!(
            reply.session_cookie().is_none(),
            "an expired session is not renewed"
        );
        let live = session(&app, now + chrono::Duration::minutes(5)).await;
        assert_eq!(me(&live).await, (200, json!("ann")));
        app.stop().await;
    })
    .await;
}

fn headers(pairs: &[(&'static str, String)]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in pairs {
        headers.insert(*name, HeaderValue::from_str(value).unwrap());
    }
    headers
}

async fn rpc_post(app: &TestApp, pairs: &[(&'static str, String)], method: &str) -> Value {
    let mut req = reqwest::Client::new()
        .post(format!("{}/rpc", app.base))
        .header("content-type", "application/json");
    for (name, value) in pairs {
        req = req.header(*name, value);
    }
    req.body(json!({"jsonrpc": "2.0", "id": 1, "method": method}).to_string())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn json_rpc_honours_a_session_cookie_only_from_allowed_origins() {
    each_backend(|app| async move {
        let ann = app.user("ann").await;
        let cookie = format!("tidings_session={}", ann.cookie.clone().unwrap());
        let evil = "https://evil.example".to_owned();
        let own = app.base.clone();

        let reply = rpc_post(
            &app,
            &[("cookie", cookie.clone()), ("origin", evil.clone())],
            "notifications.markAllAsRead",
        )
        .await;
        assert_eq!(reply["error"]["data"]["code"], "FORBIDDEN", "{reply}");
        assert_eq!(reply["error"]["message"], "Origin not allowed");
        for (pairs, method) in [
            (vec![("cookie", cookie.clone())], "auth.me"),
            (
                vec![("cookie", cookie.clone()), ("origin", own.clone())],
                "auth.me",
            ),
            (
                vec![
                    ("authorization", format!("Bearer {}", app.service_key)),
                    ("origin", evil.clone()),
                ],
                "notificationTypes.list",
            ),
        ] {
            let reply = rpc_post(&app, &pairs, method).await;
            assert!(reply.get("result").is_some(), "{pairs:?}: {reply}");
        }

        // A page on another site opening a WebSocket with the user's cookie reads nothing.
        let ws_url = format!("{}/rpc", app.base.replacen("http://", "ws://", 1));
        let hijack = WsClientBuilder::new()
            .set_headers(headers(&[("cookie", cookie.clone()), ("origin", evil)]))
            .request_timeout(Duration::from_secs(5))
            .build(&ws_url)
            .await
            .unwrap();
        match hijack.request::<Value, _>("auth.me", rpc_params![]).await {
            Err(ClientError::Call(e)) => {
                assert_eq!(e.message(), "Origin not allowed");
                assert!(e.data().unwrap().get().contains("FORBIDDEN"), "{e:?}");
            }
            other => panic!("a cross-site WebSocket read {other:?}"),
        }
        let own_page = WsClientBuilder::new()
            .set_headers(headers(&[("cookie", cookie), ("origin", own)]))
            .request_timeout(Duration::from_secs(5))
            .build(&ws_url)
            .await
            .unwrap();
        let me: Value = own_page.request("auth.me", rpc_params![]).await.unwrap();
        assert_eq!(me["id"], "ann");
        app.stop().await;
    })
    .await;
}
