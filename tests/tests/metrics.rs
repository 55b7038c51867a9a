//! Observability: `GET /metrics` in the Prometheus text format, with calls counted and timed
//! per procedure and code on both RPC surfaces; a request id echoed in `X-Request-Id`.

#[path = "support/sse.rs"]
mod sse;

use serde_json::{Value, json};
use tidings_tests::each_backend;

/// The value of the sample `name{labels}` in a Prometheus text page (labels in any order).
fn sample(page: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    page.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (metric, rest) = series.split_once('{').unwrap_or((series, ""));
            if metric != name {
                return None;
            }
            let all = labels
                .iter()
                .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")));
            all.then(|| value.parse().ok()).flatten()
        })
}

#[tokio::test]
async fn metrics_count_calls_per_procedure_and_code_on_both_surfaces() {
    each_backend(|app| async move {
        let ann = app.user("ann").await;
        let anonymous = app.anonymous();
        let before = anonymous.get("/metrics").await;
        assert_eq!(before.status, 200, "{before:?}");
        assert!(
            before
                .header("content-type")
                .is_some_and(|c| c.starts_with("text/plain")),
            "{before:?}"
        );
        let count = |page: &str, procedure: &str, code: &str| {
            sample(
                page,
                "tidings_requests_total",
                &[("procedure", procedure), ("code", code)],
            )
            .unwrap_or(0.0)
        };
        let listed_before = count(&before.text, "notifications.list", "OK");
        let refused_before = count(&before.text, "notifications.counts", "UNAUTHORIZED");
        let rpc_before = count(&before.text, "organizations.list", "OK");

        for _ in 0..3 {
            assert_eq!(ann.query("notifications.list", json!({})).await.status, 200);
        }
        assert_eq!(
            anonymous
                .query("notifications.counts", Value::Null)
                .await
                .status,
            401
        );
        // JSON-RPC is counted at the same place.
        let rpc = app
            .service()
            .post(
                "/rpc",
                Some("application/json"),
                &json!({"jsonrpc": "2.0", "id": 1, "method": "organizations.list"}).to_string(),
            )
            .await;
        assert!(rpc.body["result"]["organizations"].is_array(), "{rpc:?}");

        let after = anonymous.get("/metrics").await;
        let page = &after.text;
        // Other tests in this process count too, so compare differences, not totals.
        assert!(
            count(page, "notifications.list", "OK") >= listed_before + 3.0,
            "{page}"
        );
        assert!(
            count(page, "notifications.counts", "UNAUTHORIZED") >= refused_before + 1.0,
            "{page}"
        );
        assert!(
            count(page, "organizations.list", "OK") >= rpc_before + 1.0,
            "{page}"
        );
        let latency = sample(
            page,
            "tidings_request_duration_seconds_count",
            &[("procedure", "notifications.list"), ("code", "OK")],
        );
        assert!(latency.is_some_and(|n| n >= 3.0), "{page}");
        assert!(
            page.contains("tidings_request_duration_seconds_bucket{"),
            "latencies are histograms: {page}"
        );
        for gauge in [
            "tidings_subscriptions_open",
            "tidings_db_connections",
            "tidings_db_connections_idle",
            "tidings_db_connections_max",
        ] {
            assert!(
                sample(page, gauge, &[]).is_some(),
                "{gauge} missing: {page}"
            );
        }
        assert!(sample(page, "tidings_db_connections_max", &[]).unwrap() >= 1.0);
        for state in ["pending", "sending", "sent", "failed"] {
            assert!(
                sample(page, "tidings_outbox_deliveries", &[("state", state)]).is_some(),
                "outbox depth for {state} missing: {page}"
            );
        }
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn fan_outs_are_measured() {
    each_backend(|app| async move {
        let _ann = app.user("ann").await;
        let _bob = app.user("bob").await;
        let recipients = |page: &str| {
            sample(page, "tidings_fanout_recipients_sum", &[]).unwrap_or(0.0)
        };
        let before = recipients(&app.anonymous().get("/metrics").await.text);
        let sent = app
            .service()
            .mutate(
                "notifications.notify",
                json!({"key": "slaBreach", "recipients": {"userIds": ["ann", "bob"]}, "data": {"ticketNumber": 7}}),
            )
            .await;
        assert_eq!(sent.data()["usersNotified"]["count"], 2, "{sent:?}");
        let page = app.anonymous().get("/metrics").await.text;
        assert!(recipients(&page) >= before + 2.0, "{page}");
        // Both get an email: the outbox holds two rows, in whatever state the worker left them.
        let outbox: f64 = ["pending", "sending", "sent", "failed"]
            .iter()
            .filter_map(|state| sample(&page, "tidings_outbox_deliveries", &[("state", state)]))
            .sum();
        assert_eq!(outbox, 2.0, "{page}");
        assert!(
            sample(&page, "tidings_fanout_duration_seconds_count", &[]).is_some_and(|n| n >= 1.0),
            "{page}"
        );
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn open_subscriptions_are_a_gauge() {
    each_backend(|app| async move {
        let ann = app.user("ann").await;
        let mut sse = sse::open_as(&ann, &sse::path("notifications.onCounts"), &[]).await;
        assert_eq!(
            sse.next().await.unwrap().event.as_deref(),
            Some("connected")
        );
        let page = app.anonymous().get("/metrics").await.text;
        assert!(
            sample(&page, "tidings_subscriptions_open", &[]).is_some_and(|n| n >= 1.0),
            "{page}"
        );
        drop(sse);
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn request_ids_are_echoed_or_made() {
    each_backend(|app| async move {
        let anonymous = app.anonymous();
        let made = anonymous.get("/healthz").await;
        let id = made
            .header("x-request-id")
            .expect("a request id")
            .to_owned();
        assert!(uuid::Uuid::parse_str(&id).is_ok(), "{id}");
        let other = anonymous.get("/healthz").await;
        assert_ne!(other.header("x-request-id"), Some(id.as_str()));

        let http = reqwest::Client::new();
        let kept = http
            .get(format!("{}/api/trpc/notifications.counts", app.base))
            .header("x-request-id", "edge-42.abc")
            .send()
            .await
            .unwrap();
        assert_eq!(kept.status(), 401);
        assert_eq!(kept.headers()["x-request-id"], "edge-42.abc");
        // An id that could forge log lines is replaced.
        let replaced = http
            .get(format!("{}/healthz", app.base))
            .header("x-request-id", "a b\tc")
            .send()
            .await
            .unwrap();
        assert_ne!(replaced.headers()["x-request-id"], "a b\tc");
        app.stop().await;
    })
    .await;
}
