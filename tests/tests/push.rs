//! Web Push end to end: a browser's subscription through `push.subscribe`, a notify, and a local
//! HTTP endpoint acting as the push service that checks the VAPID JWT's signature and claims and
//! decrypts the aes128gcm payload with the subscription's private key. A push service that
//! answers 404/410 removes the subscription; 429 and 5xx are retried.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ece::EcKeyComponents;
use jwt_simple::prelude::*;
use serde_json::{Value, json};
use tidings_tests::{Client, TestApp, each_backend_with};

/// A browser's side of one subscription: its keys, as the browser would keep them.
struct Browser {
    components: EcKeyComponents,
    auth: [u8; 16],
}

#[derive(Default)]
struct Service {
    /// The instance's VAPID public key, as `push.vapidPublicKey` gave it.
    vapid: String,
    audience: String,
    browsers: HashMap<String, Browser>,
    /// Decrypted payloads by subscription, in arrival order.
    received: HashMap<String, Vec<Value>>,
    /// Requests per subscription, answered or not.
    requests: HashMap<String, u32>,
    /// Problems found in requests; the test fails if any.
    problems: Vec<String>,
}

type Shared = Arc<Mutex<Service>>;

/// Checks one request as a push service would and answers like the subscription's name asks:
/// `gone*` 410, `busy*` 429 twice then 201, anything else 201.
async fn receive(
    State(service): State<Shared>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let mut s = service.lock().unwrap();
    let n = {
        let count = s.requests.entry(name.clone()).or_default();
        *count += 1;
        *count
    };
    if let Err(problem) = check(&s, &name, &headers, &body) {
        s.problems.push(format!("{name}: {problem}"));
        return StatusCode::BAD_REQUEST;
    }
    if name.starts_with("gone") {
        return StatusCode::GONE;
    }
    if name.starts_with("busy") && n <= 2 {
        return StatusCode::TOO_MANY_REQUESTS;
    }
    let payload = decrypt(&s, &name, &body);
    match payload {
        Ok(value) => s.received.entry(name).or_default().push(value),
        Err(e) => {
            s.problems.push(format!("{name}: {e}"));
            return StatusCode::BAD_REQUEST;
        }
    }
    StatusCode::CREATED
}

fn check(s: &Service, name: &str, headers: &HeaderMap, body: &[u8]) -> Result<(), String> {
    let header = |h: &str| {
        headers
            .get(h)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| format!("no {h} header"))
    };
    if header("content-encoding")? != "aes128gcm" {
        return Err("content-encoding is not aes128gcm".into());
    }
    header("ttl")?
        .parse::<u32>()
        .map_err(|_| "TTL is not a number")?;
    // RFC 8292: `Authorization: vapid t=<JWT>, k=<public key>`.
    let authorization = header("authorization")?;
    let rest = authorization
        .strip_prefix("vapid ")
        .ok_or("authorization is not vapid")?;
    let mut token = None;
    let mut key = None;
    for part in rest.split(',') {
        let part = part.trim();
        if let Some(t) = part.strip_prefix("t=") {
            token = Some(t);
        } else if let Some(k) = part.strip_prefix("k=") {
            key = Some(k);
        }
    }
    let (token, key) = (token.ok_or("no t=")?, key.ok_or("no k=")?);
    if key != s.vapid {
        return Err(format!(
            "k={key} is not the instance's VAPID key {}",
            s.vapid
        ));
    }
    let raw = URL_SAFE_NO_PAD.decode(key).map_err(|e| e.to_string())?;
    let public = ES256PublicKey::from_bytes(&raw).map_err(|e| e.to_string())?;
    let options = VerificationOptions {
        allowed_audiences: Some(HashSet::from_strings(&[&s.audience])),
        ..Default::default()
    };
    let claims = public
        .verify_token::<serde_json::Map<String, Value>>(token, Some(options))
        .map_err(|e| format!("the JWT does not verify: {e}"))?;
    let expires = claims.expires_at.ok_or("the JWT has no exp")?;
    if expires > Clock::now_since_epoch() + jwt_simple::prelude::Duration::from_hours(24) {
        return Err("exp is more than 24 hours away".into());
    }
    if claims.custom.get("sub") != Some(&json!("mailto:push-tests@example.com"))
        && claims.subject.as_deref() != Some("mailto:push-tests@example.com")
    {
        return Err(format!(
            "wrong sub: {:?} {:?}",
            claims.subject, claims.custom
        ));
    }
    if body.is_empty() || !s.browsers.contains_key(name) {
        return Err("empty body or unknown subscription".into());
    }
    Ok(())
}

fn decrypt(s: &Service, name: &str, body: &[u8]) -> Result<Value, String> {
    let browser = &s.browsers[name];
    let plain = ece::decrypt(&browser.components, &browser.auth, body)
        .map_err(|e| format!("cannot decrypt: {e}"))?;
    serde_json::from_slice(&plain).map_err(|e| e.to_string())
}

async fn push_service() -> (Shared, String) {
    let shared: Shared = Arc::default();
    let app = Router::new()
        .route("/push/{name}", post(receive))
        .with_state(shared.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    shared.lock().unwrap().audience = base.clone();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (shared, base)
}

/// Subscribes `user` the way a browser would, with fresh keys; returns the endpoint.
async fn subscribe(user: &Client, service: &Shared, base: &str, name: &str) -> String {
    let (pair, auth) = ece::generate_keypair_and_auth_secret().unwrap();
    let components = pair.raw_components().unwrap();
    let endpoint = format!("{base}/push/{name}");
    let reply = user
        .mutate(
            "push.subscribe",
            json!({
                "endpoint": endpoint,
                "expirationTime": null,
                "keys": {
                    "p256dh": URL_SAFE_NO_PAD.encode(components.public_key()),
                    "auth": URL_SAFE_NO_PAD.encode(auth),
                },
            }),
        )
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    service
        .lock()
        .unwrap()
        .browsers
        .insert(name.to_owned(), Browser { components, auth });
    endpoint
}

async fn push_deliveries(app: &TestApp) -> Vec<Value> {
    let reply = app
        .service()
        .query("deliveries.list", json!({"channel": "push"}))
        .await;
    reply.data()["deliveries"].as_array().unwrap().clone()
}

async fn settled(app: &TestApp) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let all = push_deliveries(app).await;
        if all
            .iter()
            .all(|d| d["state"] == "sent" || d["state"] == "failed")
        {
            return all;
        }
        assert!(
            Instant::now() < deadline,
            "push deliveries did not settle: {all:#?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

const ENV: &[(&str, &str)] = &[
    ("TIDINGS_VAPID_SUBJECT", "mailto:push-tests@example.com"),
    ("TIDINGS_DELIVERY_RETRY_BASE_MS", "100"),
    ("TIDINGS_DELIVERY_POLL_MS", "50"),
];

#[tokio::test]
async fn a_notify_reaches_subscribed_browsers_signed_and_encrypted() {
    each_backend_with(ENV, |app| async move {
        let (service, base) = push_service().await;
        let key = app
            .anonymous()
            .query("push.vapidPublicKey", Value::Null)
            .await;
        assert_eq!(key.status, 200, "{key:?}");
        let vapid = key.data()["publicKey"].as_str().unwrap().to_owned();
        assert_eq!(URL_SAFE_NO_PAD.decode(&vapid).unwrap().len(), 65);
        service.lock().unwrap().vapid = vapid.clone();

        let ann = app.user("ann").await;
        let bob = app.user("bob").await;
        let cat = app.user("cat").await;
        // Ann has two browsers; Bob's push service says his subscription is gone; Cat's is busy.
        subscribe(&ann, &service, &base, "ann-laptop").await;
        subscribe(&ann, &service, &base, "ann-phone").await;
        let bob_endpoint = subscribe(&bob, &service, &base, "gone-bob").await;
        subscribe(&cat, &service, &base, "busy-cat").await;

        let notify = |ids: Value| {
            let service = app.service();
            async move {
                let reply = service
                    .mutate(
                        "notifications.notify",
                        json!({"key": "ticketAssigned", "recipients": {"userIds": ids},
                               "data": {"ticketNumber": "42", "ticketTitle": "Printer on fire"}}),
                    )
                    .await;
                assert_eq!(reply.status, 200, "{reply:?}");
            }
        };
        notify(json!(["ann", "bob", "cat"])).await;
        let all = settled(&app).await;
        assert_eq!(all.len(), 4, "{all:#?}");
        let by_target: HashMap<String, &Value> = all
            .iter()
            .map(|d| (d["target"].as_str().unwrap().to_owned(), d))
            .collect();
        let gone = by_target[&bob_endpoint];
        assert_eq!(gone["state"], "failed");
        assert!(
            gone["lastError"].as_str().unwrap().contains("410"),
            "{gone:?}"
        );
        let busy = by_target[&format!("{base}/push/busy-cat")];
        assert_eq!(busy["state"], "sent");
        assert_eq!(busy["attempts"], 3, "429 twice, then accepted");

        {
            let s = service.lock().unwrap();
            assert!(s.problems.is_empty(), "{:#?}", s.problems);
            for name in ["ann-laptop", "ann-phone", "busy-cat"] {
                let got = &s.received[name];
                assert_eq!(got.len(), 1, "{name}: {got:#?}");
                assert_eq!(got[0]["title"], "Ticket Assigned");
                assert_eq!(
                    got[0]["body"],
                    "You've been assigned ticket #42: Printer on fire"
                );
                assert_eq!(got[0]["type"], "ticketAssigned");
                assert_eq!(got[0]["data"]["ticketNumber"], "42");
                assert!(got[0]["id"].is_string());
            }
        }

        // The gone subscription was removed: the next notify queues nothing for Bob.
        notify(json!(["bob"])).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(push_deliveries(&app).await.len(), 4);
        assert_eq!(service.lock().unwrap().requests["gone-bob"], 1);

        // Unsubscribing stops pushes to that browser.
        let off = ann
            .mutate(
                "push.unsubscribe",
                json!({"endpoint": format!("{base}/push/ann-phone")}),
            )
            .await;
        assert_eq!(off.status, 200, "{off:?}");
        let again = ann
            .mutate(
                "push.unsubscribe",
                json!({"endpoint": format!("{base}/push/ann-phone")}),
            )
            .await;
        assert_eq!(again.error_code(), "NOT_FOUND");
        notify(json!(["ann"])).await;
        settled(&app).await;
        {
            let s = service.lock().unwrap();
            assert_eq!(s.received["ann-laptop"].len(), 2);
            assert_eq!(s.received["ann-phone"].len(), 1);
        }

        // The key stays the same across calls.
        let key = app
            .anonymous()
            .query("push.vapidPublicKey", Value::Null)
            .await;
        assert_eq!(key.data()["publicKey"], vapid);
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn subscriptions_are_validated_naming_the_field() {
    each_backend_with(ENV, |app| async move {
        let ann = app.user("ann").await;
        let good_key = URL_SAFE_NO_PAD.encode([4u8; 65]);
        let good_auth = URL_SAFE_NO_PAD.encode([1u8; 16]);
        let cases = [
            (json!({"endpoint": "ftp://x", "keys": {"p256dh": good_key, "auth": good_auth}}), "endpoint: must be an http(s) URL of at most 2048 characters"),
            (json!({"endpoint": "https://push.example/x", "keys": {"p256dh": "abc", "auth": good_auth}}), "keys.p256dh: must encode 65 bytes, got 2"),
            (json!({"endpoint": "https://push.example/x", "keys": {"p256dh": good_key, "auth": "!!"}}), "keys.auth: must be base64url"),
        ];
        for (input, message) in cases {
            let reply = ann.mutate("push.subscribe", input).await;
            assert_eq!(reply.status, 400, "{reply:?}");
            assert_eq!(reply.error_message(), message);
        }
        let missing = ann
            .mutate("push.subscribe", json!({"endpoint": "https://push.example/x"}))
            .await;
        assert_eq!(missing.status, 400, "{missing:?}");
        let anonymous = app
            .anonymous()
            .mutate("push.subscribe", json!({"endpoint": "https://push.example/x", "keys": {"p256dh": good_key, "auth": good_auth}}))
            .await;
        assert_eq!(anonymous.error_code(), "UNAUTHORIZED");
        app.stop().await;
    })
    .await;
}
