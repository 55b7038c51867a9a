//! JSON-RPC 2.0 at `POST /rpc` and WebSocket `GET /rpc`, driven by jsonrpsee's own clients —
//! and a usage example for internal services written in Rust.
//!
//! Every procedure of the registry is a JSON-RPC method of the same name: `params` is the
//! procedure's input object (or absent), `result` its output. An error carries the tRPC
//! number as `code`, the message, and `data: {code, httpStatus, path}`. A service sends its
//! key as `Authorization: Bearer`; a user's session cookie works too (a backend acting for a
//! signed-in user). Credentials are checked on every call, so on a long-lived WebSocket a
//! revoked key or session is refused from its next call on.
//!
//! ```no_run
//! use jsonrpsee::core::client::{ClientT, SubscriptionClientT};
//! use jsonrpsee::http_client::{HeaderMap, HeaderValue, HttpClient};
//! use jsonrpsee::ws_client::WsClientBuilder;
//! use serde_json::{Value, json};
//!
//! # async fn example(key: &str) -> Result<(), Box<dyn std::error::Error>> {
//! let mut headers = HeaderMap::new();
//! headers.insert("authorization", HeaderValue::from_str(&format!("Bearer {key}"))?);
//!
//! // One-off calls over HTTP: POST http://tidings:3000/rpc.
//! let rpc = HttpClient::builder().set_headers(headers.clone()).build("http://tidings:3000/rpc")?;
//! let params = json!({
//!     "key": "ticketAssigned",
//!     "recipients": {"userIds": ["ann"]},
//!     "data": {"ticketNumber": "1234", "ticketTitle": "Login fails"},
//! });
//! let sent: Value = rpc
//!     .request("notifications.notify", params.as_object().cloned().unwrap())
//!     .await?;
//! println!("notified {}", sent["usersNotified"]["count"]);
//!
//! // A WebSocket for many calls and for subscriptions: ws://tidings:3000/rpc. A user's live
//! // inbox (the `tidings_session` cookie in the headers instead of a key): each message is
//! // {"id": <notification id>, "data": {notification, unreadCount, counts}}.
//! let mut user = HeaderMap::new();
//! user.insert("cookie", HeaderValue::from_static("tidings_session=<token>"));
//! let ws = WsClientBuilder::new().set_headers(user).build("ws://tidings:3000/rpc").await?;
//! let mut inbox = ws
//!     .subscribe::<Value, _>("notifications.onNew", jsonrpsee::rpc_params![], "notifications.onNew.unsubscribe")
//!     .await?;
//! while let Some(event) = inbox.next().await {
//!     let event = event?;
//!     println!("{} unread; new: {}", event["data"]["unreadCount"], event["data"]["notification"]["title"]);
//! }
//! # Ok(())
//! # }
//! ```
//!
//! Resume after a reconnect with `{"lastEventId": <the last id received>}` as the params of
//! `notifications.onNew`: what was missed comes first, oldest first.

use std::time::Duration;

use jsonrpsee::core::client::{ClientT, Error as ClientError, Subscription, SubscriptionClientT};
use jsonrpsee::http_client::{HeaderMap, HeaderValue, HttpClient};
use jsonrpsee::rpc_params;
use jsonrpsee::types::ErrorObjectOwned;
use jsonrpsee::ws_client::{WsClient, WsClientBuilder};
use serde_json::{Map, Value, json};
use tidings_tests::{Client, TestApp, each_backend};

const WAIT: Duration = Duration::from_secs(5);

/// `value` (an object) as params.
fn params(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("params must be an object, got {other}"),
    }
}

fn rpc_url(app: &TestApp) -> String {
    format!("{}/rpc", app.base)
}

fn ws_url(app: &TestApp) -> String {
    format!("{}/rpc", app.base.replacen("http://", "ws://", 1))
}

fn bearer(key: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        "authorization",
        HeaderValue::from_str(&format!("Bearer {key}")).unwrap(),
    );
    headers
}

/// The headers of a signed-in user's tRPC client: its session cookie.
fn cookie(user: &Client) -> HeaderMap {
    let token = user.cookie.as_deref().expect("a signed-in client");
    let mut headers = HeaderMap::new();
    headers.insert(
        "cookie",
        HeaderValue::from_str(&format!("theme=dark; tidings_session={token}")).unwrap(),
    );
    headers
}

fn http(app: &TestApp, headers: HeaderMap) -> HttpClient {
    HttpClient::builder()
        .set_headers(headers)
        .request_timeout(WAIT)
        .build(rpc_url(app))
        .expect("http client")
}

async fn ws(app: &TestApp, headers: HeaderMap) -> WsClient {
    tokio::time::timeout(
        WAIT,
        WsClientBuilder::new()
            .set_headers(headers)
            .request_timeout(WAIT)
            .build(ws_url(app)),
    )
    .await
    .expect("the WebSocket opens within 5 s")
    .expect("ws client")
}

/// The error object of a call that must fail.
fn call_error<T: std::fmt::Debug>(result: Result<T, ClientError>) -> ErrorObjectOwned {
    match result {
        Err(ClientError::Call(object)) => object,
        other => panic!("expected a JSON-RPC error object, got {other:?}"),
    }
}

/// Checks an error object: the tRPC number, the message, and `data {code, httpStatus, path}`.
fn assert_error(object: &ErrorObjectOwned, number: i32, code: &str, status: u16, path: &str) {
    assert_eq!(object.code(), number, "{object:?}");
    assert!(!object.message().is_empty());
    let data: Value = serde_json::from_str(object.data().expect("error data").get()).unwrap();
    assert_eq!(
        data,
        json!({"code": code, "httpStatus": status, "path": path}),
        "{object:?}"
    );
}

/// The next message of a subscription, within [`WAIT`].
async fn next(sub: &mut Subscription<Value>) -> Value {
    tokio::time::timeout(WAIT, sub.next())
        .await
        .expect("a subscription message within 5 s")
        .expect("the subscription is open")
        .expect("a JSON message")
}

#[tokio::test]
async fn a_service_calls_procedures_over_http_with_its_bearer_key() {
    each_backend(|app| async move {
        let rpc = http(&app, bearer(&app.service_key));
        // Admin procedures.
        let org: Value = rpc
            .request(
                "organizations.create",
                params(json!({"id": "globex", "name": "Globex"})),
            )
            .await
            .unwrap();
        assert_eq!(org["id"], "globex");
        let user: Value = rpc
            .request(
                "users.create",
                params(
                    json!({"id": "ann", "email": "ann@example.com", "password": "password-ann",
                              "name": "Ann", "organizationId": "globex"}),
                ),
            )
            .await
            .unwrap();
        assert_eq!(user["id"], "ann");
        let users: Value = rpc
            .request("users.list", params(json!({"organizationId": "globex"})))
            .await
            .unwrap();
        assert!(users.to_string().contains("ann@example.com"), "{users}");
        // No params at all.
        let types: Value = rpc
            .request("notificationTypes.list", rpc_params![])
            .await
            .unwrap();
        assert!(types.to_string().contains("ticketAssigned"), "{types}");

        // notifications.create: one object, then an array (as the single positional param).
        let one: Value = rpc
            .request(
                "notifications.create",
                params(json!({"recipient": "ann", "subject": "Hello", "message": "From RPC"})),
            )
            .await
            .unwrap();
        assert_eq!(one["recipient"], "ann");
        assert_eq!(one["subject"], "Hello");
        let many: Value = rpc
            .request(
                "notifications.create",
                vec![json!([
                    {"recipient": "ann", "subject": "One"},
                    {"recipient": "ann", "subject": "Two"},
                ])],
            )
            .await
            .unwrap();
        assert_eq!(many.as_array().map(Vec::len), Some(2), "{many}");
        let got: Value = rpc
            .request("notifications.get", params(json!({"id": one["id"]})))
            .await
            .unwrap();
        assert_eq!(got["id"], one["id"]);

        // notifications.notify.
        let sent: Value = rpc
            .request(
                "notifications.notify",
                params(
                    json!({"key": "ticketAssigned", "recipients": {"userIds": ["ann"]},
                              "data": {"ticketNumber": "1234", "ticketTitle": "Login fails"}}),
                ),
            )
            .await
            .unwrap();
        assert_eq!(sent, json!({"usersNotified": {"count": 1}}));

        // The same inbox through tRPC.
        let ann = app.login("ann").await;
        let counts = ann.query("notifications.counts", Value::Null).await;
        assert_eq!(
            counts.data(),
            &json!({"unread": 4, "unseen": 4, "total": 4})
        );
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn errors_carry_the_trpc_number_message_and_data() {
    each_backend(|app| async move {
        let ann = app.user("ann").await;
        let rpc = http(&app, bearer(&app.service_key));
        // Unknown id.
        let unknown = "01890a5d-ac96-774b-bcce-b302099a8057";
        let err = call_error(
            rpc.request::<Value, _>("notifications.get", params(json!({"id": unknown})))
                .await,
        );
        assert_error(&err, -32004, "NOT_FOUND", 404, "notifications.get");
        assert!(err.message().contains(unknown), "{err:?}");
        // Bad input names the field.
        let err = call_error(
            rpc.request::<Value, _>("notifications.create", params(json!({"subject": "No one"})))
                .await,
        );
        assert_error(&err, -32600, "BAD_REQUEST", 400, "notifications.create");
        assert!(err.message().contains("recipient"), "{err:?}");
        let user = http(&app, cookie(&ann));
        let err = call_error(
            user.request::<Value, _>("notifications.list", params(json!({"limit": 101})))
                .await,
        );
        assert_error(&err, -32600, "BAD_REQUEST", 400, "notifications.list");
        assert!(err.message().starts_with("limit:"), "{err:?}");
        // No credentials, a bad key, a bad cookie.
        let anonymous = http(&app, HeaderMap::new());
        let err = call_error(
            anonymous
                .request::<Value, _>("notifications.list", rpc_params![])
                .await,
        );
        assert_error(&err, -32001, "UNAUTHORIZED", 401, "notifications.list");
        assert_eq!(err.message(), "Not authenticated");
        for headers in [bearer("tdk_not-a-key"), {
            let mut h = HeaderMap::new();
            h.insert("cookie", HeaderValue::from_static("tidings_session=bogus"));
            h
        }] {
            let err = call_error(
                http(&app, headers)
                    .request::<Value, _>("notifications.notify", params(json!({"key": "x"})))
                    .await,
            );
            assert_error(&err, -32001, "UNAUTHORIZED", 401, "notifications.notify");
        }
        // A user calling an admin procedure, a service calling a user's.
        let err = call_error(user.request::<Value, _>("users.list", rpc_params![]).await);
        assert_error(&err, -32003, "FORBIDDEN", 403, "users.list");
        let err = call_error(
            rpc.request::<Value, _>("notifications.list", rpc_params![])
                .await,
        );
        assert_error(&err, -32003, "FORBIDDEN", 403, "notifications.list");
        // A method Tidings does not have: NOT_FOUND, as on tRPC, also inside a batch.
        let err = call_error(
            rpc.request::<Value, _>("notifications.nope", rpc_params![])
                .await,
        );
        assert_error(&err, -32004, "NOT_FOUND", 404, "notifications.nope");
        assert_eq!(
            err.message(),
            "No procedure found on path \"notifications.nope\""
        );
        let batch = reqwest::Client::new()
            .post(rpc_url(&app))
            .bearer_auth(&app.service_key)
            .json(&json!([
                {"jsonrpc": "2.0", "id": 1, "method": "nope"},
                {"jsonrpc": "2.0", "id": 2, "method": "notificationTypes.list"},
            ]))
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap();
        let by_id = |id: i64| {
            batch
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["id"] == id)
                .unwrap()
        };
        assert_eq!(by_id(1)["error"]["code"], -32004, "{batch}");
        assert_eq!(by_id(1)["error"]["data"]["code"], "NOT_FOUND", "{batch}");
        assert!(by_id(2).get("result").is_some(), "{batch}");
        // The same over a WebSocket.
        let socket = ws(&app, HeaderMap::new()).await;
        let err = call_error(socket.request::<Value, _>("nope", rpc_params![]).await);
        assert_error(&err, -32004, "NOT_FOUND", 404, "nope");
        let err = call_error(
            socket
                .request::<Value, _>("notifications.unreadCount", rpc_params![])
                .await,
        );
        assert_error(
            &err,
            -32001,
            "UNAUTHORIZED",
            401,
            "notifications.unreadCount",
        );
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_user_calls_with_the_session_cookie_over_http_and_websocket() {
    each_backend(|app| async move {
        let ann = app.user("ann").await;
        let ids = app.notify("ann", 3).await;
        let rpc = http(&app, cookie(&ann));
        let page: Value = rpc
            .request("notifications.list", params(json!({"limit": 2})))
            .await
            .unwrap();
        let trpc = ann.query("notifications.list", json!({"limit": 2})).await;
        assert_eq!(&page, trpc.data(), "the same output on both surfaces");
        assert_eq!(page["hasMore"], true);

        let socket = ws(&app, cookie(&ann)).await;
        let all: Value = socket
            .request("notifications.list", rpc_params![])
            .await
            .unwrap();
        let listed: Vec<&str> = all["notifications"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["id"].as_str().unwrap())
            .collect();
        assert_eq!(listed, [&ids[2], &ids[1], &ids[0]]);
        let done: Value = socket
            .request("notifications.markAsRead", params(json!({"id": ids[0]})))
            .await
            .unwrap();
        assert_eq!(done, json!({"success": true}));
        let count: Value = socket
            .request("notifications.unreadCount", rpc_params![])
            .await
            .unwrap();
        assert_eq!(count, json!({"count": 2}));
        let me: Value = socket.request("auth.me", rpc_params![]).await.unwrap();
        assert_eq!(me["id"], "ann");
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_websocket_subscription_receives_notifications_created_over_http() {
    each_backend(|app| async move {
        let ann = app.user("ann").await;
        let old = app.notify("ann", 2).await;
        let socket = ws(&app, cookie(&ann)).await;
        let mut inbox: Subscription<Value> = socket
            .subscribe(
                "notifications.onNew",
                rpc_params![],
                "notifications.onNew.unsubscribe",
            )
            .await
            .expect("subscribed");
        let mut counts: Subscription<Value> = socket
            .subscribe(
                "notifications.onCounts",
                rpc_params![],
                "notifications.onCounts.unsubscribe",
            )
            .await
            .expect("subscribed");
        assert_eq!(
            next(&mut counts).await,
            json!({"id": null, "data": {"unread": 2, "unseen": 2, "total": 2}})
        );

        // Created through tRPC over HTTP by the service.
        let ids = app.notify("ann", 1).await;
        let event = next(&mut inbox).await;
        let item = ann
            .query("notifications.list", json!({"limit": 1}))
            .await
            .data()["notifications"][0]
            .clone();
        assert_eq!(
            event,
            json!({"id": ids[0], "data": {
                "notification": item,
                "unreadCount": 3,
                "counts": {"unread": 3, "unseen": 3, "total": 3},
            }})
        );
        assert_eq!(
            next(&mut counts).await,
            json!({"id": null, "data": {"unread": 3, "unseen": 3, "total": 3}})
        );
        // A change made over tRPC moves the badge on the WebSocket.
        ann.mutate("notifications.markAllAsSeen", Value::Null).await;
        assert_eq!(
            next(&mut counts).await["data"],
            json!({"unread": 3, "unseen": 0, "total": 3})
        );

        // Unsubscribing ends it; a resumed subscription replays what came after an id.
        inbox.unsubscribe().await.expect("unsubscribed");
        let missed = app.notify("ann", 2).await;
        let mut resumed: Subscription<Value> = socket
            .subscribe(
                "notifications.onNew",
                params(json!({"lastEventId": old[1]})),
                "notifications.onNew.unsubscribe",
            )
            .await
            .expect("subscribed");
        for id in [&ids[0], &missed[0], &missed[1]] {
            assert_eq!(&next(&mut resumed).await["id"], id);
        }
        // Bad params refuse the subscription itself.
        let err = call_error(
            socket
                .subscribe::<Value, _>(
                    "notifications.onNew",
                    params(json!({"lastEventId": 5})),
                    "notifications.onNew.unsubscribe",
                )
                .await,
        );
        assert_error(&err, -32600, "BAD_REQUEST", 400, "notifications.onNew");
        assert!(err.message().contains("lastEventId"), "{err:?}");
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn subscribing_without_credentials_fails_with_unauthorized() {
    each_backend(|app| async move {
        let socket = ws(&app, HeaderMap::new()).await;
        for name in ["notifications.onNew", "notifications.onCounts"] {
            let unsubscribe = format!("{name}.unsubscribe");
            let err = call_error(
                socket
                    .subscribe::<Value, _>(name, rpc_params![], &unsubscribe)
                    .await,
            );
            assert_error(&err, -32001, "UNAUTHORIZED", 401, name);
        }
        // A service key is no user.
        let socket = ws(&app, bearer(&app.service_key)).await;
        let err = call_error(
            socket
                .subscribe::<Value, _>(
                    "notifications.onNew",
                    rpc_params![],
                    "notifications.onNew.unsubscribe",
                )
                .await,
        );
        assert_error(&err, -32003, "FORBIDDEN", 403, "notifications.onNew");
        // Subscriptions need a WebSocket.
        let result = http(&app, bearer(&app.service_key))
            .subscribe::<Value, _>(
                "notifications.onNew",
                rpc_params![],
                "notifications.onNew.unsubscribe",
            )
            .await;
        assert!(result.is_err());
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_revoked_session_or_key_is_refused_on_the_next_call_of_an_open_websocket() {
    each_backend(|app| async move {
        let ann = app.user("ann").await;
        let socket = ws(&app, cookie(&ann)).await;
        let count: Value = socket
            .request("notifications.unreadCount", rpc_params![])
            .await
            .unwrap();
        assert_eq!(count, json!({"count": 0}));
        // Signed out from another connection with the same cookie.
        let other = http(&app, cookie(&ann));
        let out: Value = other.request("auth.logout", rpc_params![]).await.unwrap();
        assert_eq!(out, json!({"success": true}));
        let err = call_error(
            socket
                .request::<Value, _>("notifications.unreadCount", rpc_params![])
                .await,
        );
        assert_error(
            &err,
            -32001,
            "UNAUTHORIZED",
            401,
            "notifications.unreadCount",
        );
        let err = call_error(
            socket
                .subscribe::<Value, _>(
                    "notifications.onNew",
                    rpc_params![],
                    "notifications.onNew.unsubscribe",
                )
                .await,
        );
        assert_error(&err, -32001, "UNAUTHORIZED", 401, "notifications.onNew");

        // A service key revoked while its WebSocket is open.
        let service = ws(&app, bearer(&app.service_key)).await;
        let types: Value = service
            .request("notificationTypes.list", rpc_params![])
            .await
            .unwrap();
        assert!(types.is_array() || types.is_object());
        assert!(app.db().revoke_service_key("tests").await.unwrap());
        let err = call_error(
            service
                .request::<Value, _>("notificationTypes.list", rpc_params![])
                .await,
        );
        assert_error(&err, -32001, "UNAUTHORIZED", 401, "notificationTypes.list");
        let err = call_error(
            http(&app, bearer(&app.service_key))
                .request::<Value, _>("notificationTypes.list", rpc_params![])
                .await,
        );
        assert_error(&err, -32001, "UNAUTHORIZED", 401, "notificationTypes.list");
        app.stop().await;
    })
    .await;
}
