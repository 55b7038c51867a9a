//! `notifications.onNew` and `notifications.onCounts` over tRPC's server-sent events, through
//! real HTTP on both backends, against `wire/WIRE.md` §9 (goldens 60–79) and SPEC.md §4.

#[path = "support/sse.rs"]
mod sse;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sse::{NO_INPUT, Open, Sse, open_as, path, path_with};
use tidings_tests::{Client, TestApp, each_backend, each_backend_with};

const SSE_HEADERS: [(&str, &str); 5] = [
    ("cache-control", "no-cache, no-transform"),
    ("connection", "keep-alive"),
    ("content-type", "text/event-stream"),
    ("vary", "trpc-accept, accept"),
    ("x-accel-buffering", "no"),
];

/// A 200 event stream with exactly the reference's headers (plus hyper's `date` and chunking,
/// and Tidings' `x-request-id` on every response).
fn assert_stream_headers(sse: &Sse) {
    assert_eq!(sse.status, 200, "{sse:?}");
    for (name, value) in SSE_HEADERS {
        let values: Vec<_> = sse.headers.get_all(name).iter().collect();
        assert_eq!(values, [value], "header {name}");
    }
    for name in sse.headers.keys() {
        let known = SSE_HEADERS.iter().any(|(n, _)| n == name)
            || ["date", "transfer-encoding", "allow", "x-request-id"].contains(&name.as_str());
        assert!(known, "unexpected header {name}: {:?}", sse.headers);
    }
    assert_eq!(
        sse.headers
            .get("transfer-encoding")
            .map(|v| v.to_str().unwrap()),
        Some("chunked")
    );
    assert!(sse.headers.get("content-length").is_none());
}

/// The `json` of a serialized error for this code and path.
fn error_json(message: &str, code: &str, number: i64, status: u16, path: &str) -> Value {
    json!({
        "message": message,
        "code": number,
        "data": {"code": code, "httpStatus": status, "path": path},
    })
}

/// The user's inbox items, by id, as `notifications.list` shows them.
async fn items(user: &Client) -> Vec<Value> {
    let reply = user
        .query("notifications.list", json!({"limit": 100}))
        .await;
    reply.data()["notifications"].as_array().unwrap().clone()
}

async fn item(user: &Client, id: &str) -> Value {
    items(user)
        .await
        .into_iter()
        .find(|n| n["id"] == id)
        .unwrap_or_else(|| panic!("{id} is not in the inbox"))
}

/// Checks an onNew event: exact framing, tracked by the item's id, the item as `list` shows
/// it, the unread count and the counts.
async fn assert_new(
    event: &sse::Event,
    user: &Client,
    id: &str,
    unread: u64,
    unseen: u64,
    total: u64,
) {
    let expected = json!({"json": {
        "notification": item(user, id).await,
        "unreadCount": unread,
        "counts": {"unread": unread, "unseen": unseen, "total": total},
    }});
    assert_eq!(
        event.raw,
        format!("data: {expected}\nid: {id}\n\n\n"),
        "the event for {id}"
    );
}

/// An onNew stream of `user`, open (its `connected` read).
async fn on_new(user: &Client) -> Sse {
    let mut sse = open_as(user, &path("notifications.onNew"), &[]).await;
    assert_stream_headers(&sse);
    sse.connected().await;
    sse
}

fn counts_frame(unread: u64, unseen: u64, total: u64) -> String {
    format!(
        "data: {{\"json\":{{\"unread\":{unread},\"unseen\":{unseen},\"total\":{total}}}}}\n\n\n"
    )
}

#[tokio::test]
async fn connected_comes_first_with_the_observed_headers_and_framing() {
    each_backend(|app| async move {
        let ann = app.user("ann").await;
        // As httpSubscriptionLink asks (60).
        let mut sse = open_as(&ann, &path("notifications.onNew"), &[]).await;
        assert_stream_headers(&sse);
        assert!(sse.headers.get("allow").is_none());
        sse.connected().await;
        // No ?input and no accept at all (61): the same stream.
        let mut bare = Open {
            base: &app.base,
            cookie: ann.cookie.as_deref(),
            headers: &[("accept", "*/*")],
            ..Open::default()
        }
        .at("/api/trpc/notifications.onNew")
        .await;
        assert_stream_headers(&bare);
        bare.connected().await;
        // onCounts: the same headers, connected, then the counts at once.
        let mut counts = open_as(&ann, &path("notifications.onCounts"), &[]).await;
        assert_stream_headers(&counts);
        counts.connected().await;
        assert_eq!(counts.event().await.raw, counts_frame(0, 0, 0));
        // A trailing slash reaches the same procedure.
        let mut slash = open_as(
            &ann,
            &format!("/api/trpc/notifications.onNew/?input={NO_INPUT}"),
            &[],
        )
        .await;
        assert_stream_headers(&slash);
        slash.connected().await;
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_created_notification_reaches_the_stream_tracked_by_its_id() {
    each_backend(|app| async move {
        let ann = app.user("ann").await;
        let mut sse = on_new(&ann).await;

        let ids = app.notify("ann", 2).await;
        let first = sse.data().await;
        assert_new(&first, &ann, &ids[0], 1, 1, 1).await;
        let second = sse.data().await;
        assert_new(&second, &ann, &ids[1], 2, 2, 2).await;
        assert!(first.raw.starts_with(r#"data: {"json":{"notification":{"id":""#), "{first:?}");

        // A record with a type and data: the item carries `data`.
        let reply = app
            .service()
            .mutate(
                "notifications.create",
                json!({"recipient": "ann", "subject": "Ticket Assigned", "message": "You have #1234",
                       "type": "ticketAssigned", "data": {"ticketNumber": 1234}}),
            )
            .await;
        let id = reply.data()["id"].as_str().unwrap().to_owned();
        let third = sse.data().await;
        assert_new(&third, &ann, &id, 3, 3, 3).await;
        assert_eq!(third.json()["json"]["notification"]["data"], json!({"ticketNumber": 1234}));
        assert_eq!(third.json()["json"]["notification"]["type"], "ticketAssigned");

        // A fan-out by user id reaches it too, after the reader saw the bell (unseen 0).
        ann.mutate("notifications.markAllAsSeen", Value::Null).await;
        let reply = app
            .service()
            .mutate(
                "notifications.notify",
                json!({"key": "ticketAssigned", "recipients": {"userIds": ["ann"]},
                       "data": {"ticketNumber": "7", "ticketTitle": "Printer"}}),
            )
            .await;
        assert_eq!(reply.data()["usersNotified"]["count"], 1);
        let fourth = sse.data().await;
        let id = fourth.id.clone().expect("tracked");
        assert_new(&fourth, &ann, &id, 4, 1, 4).await;
        assert_eq!(
            fourth.json()["json"]["notification"]["message"],
            "You've been assigned ticket #7: Printer"
        );
        // Marking read does not make onNew send anything: the next event is the next item.
        ann.mutate("notifications.markAsRead", json!({"id": ids[0]})).await;
        let next = app.notify("ann", 1).await;
        let fifth = sse.data().await;
        assert_new(&fifth, &ann, &next[0], 4, 2, 5).await;
        app.stop().await;
    })
    .await;
}

/// `connected` means live: an item created right after the client saw it is never missed, also
/// with many users subscribing and being notified at once. (`connected` used to go out before
/// the subscription had read where it starts, and such an item could be skipped for good.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_item_created_right_after_connected_is_never_missed() {
    each_backend(|app| async move {
        let app = Arc::new(app);
        let mut runs = Vec::new();
        for i in 0..16 {
            let user = app.user(&format!("u{i}")).await;
            let app = app.clone();
            runs.push(tokio::spawn(async move {
                let name = user.user_id.clone().unwrap();
                for _ in 0..15 {
                    let mut sse = on_new(&user).await;
                    let ids = app.notify(&name, 1).await;
                    assert_eq!(sse.data().await.id.as_deref(), Some(ids[0].as_str()));
                }
            }));
        }
        for run in runs {
            run.await
                .expect("every stream got the item created after its connected");
        }
        Arc::try_unwrap(app)
            .expect("the runs are over")
            .stop()
            .await;
    })
    .await;
}

/// Items created concurrently for one user all reach the user's open stream, although their
/// ids (taken before their transactions commit) become visible out of order.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn items_created_concurrently_for_one_user_all_reach_the_stream() {
    each_backend(|app| async move {
        let app = Arc::new(app);
        let ann = app.user("ann").await;
        let mut sse = on_new(&ann).await;
        let mut created = std::collections::HashSet::new();
        for _ in 0..8 {
            let runs: Vec<_> = (0..16)
                .map(|_| {
                    let app = app.clone();
                    tokio::spawn(async move { app.notify("ann", 1).await })
                })
                .collect();
            for run in runs {
                created.extend(run.await.expect("created"));
            }
        }
        let mut received = std::collections::HashSet::new();
        while received.len() < created.len() {
            // The stream reads every item at once when woken: 2 s of silence means no more.
            match tokio::time::timeout(Duration::from_secs(2), sse.data()).await {
                Ok(event) => received.insert(event.id.expect("tracked")),
                Err(_) => break,
            };
        }
        let missed = created.difference(&received).count();
        assert_eq!(
            missed,
            0,
            "{missed} of {} items never reached the stream",
            created.len()
        );
        Arc::try_unwrap(app)
            .expect("the runs are over")
            .stop()
            .await;
    })
    .await;
}

#[tokio::test]
async fn pings_when_idle_and_the_timer_restarts_after_every_event() {
    each_backend_with(&[("TIDINGS_SSE_PING_SECONDS", "1")], |app| async move {
        let ann = app.user("ann").await;
        let opened = Instant::now();
        let mut sse = on_new(&ann).await;
        let ping = sse.event().await;
        assert_eq!(ping.raw, "event: ping\ndata: \n\n\n");
        assert!(
            opened.elapsed() >= Duration::from_millis(900),
            "{:?}",
            opened.elapsed()
        );
        let ping = sse.event().await;
        assert!(ping.is_ping(), "{ping:?}");

        let ids = app.notify("ann", 1).await;
        let event = sse.event().await;
        assert_eq!(event.id.as_deref(), Some(ids[0].as_str()));
        let after = Instant::now();
        let ping = sse.event().await;
        assert!(ping.is_ping(), "{ping:?}");
        assert!(
            after.elapsed() >= Duration::from_millis(800),
            "{:?}",
            after.elapsed()
        );

        // onCounts pings too.
        let mut counts = open_as(&ann, &path("notifications.onCounts"), &[]).await;
        counts.connected().await;
        assert_eq!(counts.event().await.raw, counts_frame(1, 1, 1));
        assert_eq!(counts.event().await.raw, "event: ping\ndata: \n\n\n");
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn no_or_bad_credentials_are_a_serialized_error_in_a_200_stream() {
    each_backend(|app| async move {
        app.user("ann").await;
        for procedure in ["notifications.onNew", "notifications.onCounts"] {
            for cookie in [None, Some("bogus")] {
                let mut sse = Open {
                    base: &app.base,
                    cookie,
                    ..Open::default()
                }
                .at(&path(procedure))
                .await;
                assert_stream_headers(&sse);
                sse.connected().await;
                let event = sse.event().await;
                assert_eq!(
                    event.raw,
                    format!(
                        "event: serialized-error\ndata: {{\"json\":{{\"message\":\"Not authenticated\",\"code\":-32001,\"data\":{{\"code\":\"UNAUTHORIZED\",\"httpStatus\":401,\"path\":\"{procedure}\"}}}}}}\n\n\n"
                    ),
                    "{procedure} with cookie {cookie:?}"
                );
                sse.ends().await;
            }
        }
        // A service key is no user: FORBIDDEN, the same way.
        let mut sse = open_as(&app.service(), &path("notifications.onNew"), &[]).await;
        sse.connected().await;
        assert_eq!(
            sse.serialized_error().await,
            error_json(
                "This procedure needs a user session",
                "FORBIDDEN",
                -32003,
                403,
                "notifications.onNew"
            )
        );
        sse.ends().await;
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn invalid_input_is_a_bad_request_in_the_stream() {
    each_backend(|app| async move {
        let ann = app.user("ann").await;
        for input in [json!({"lastEventId": 5}), json!({"nope": true})] {
            let mut sse = open_as(&ann, &path_with("notifications.onNew", &input), &[]).await;
            assert_stream_headers(&sse);
            sse.connected().await;
            let error = sse.serialized_error().await;
            assert_eq!(error["code"], -32600, "{error}");
            assert_eq!(
                error["data"],
                json!({"code": "BAD_REQUEST", "httpStatus": 400, "path": "notifications.onNew"})
            );
            let message = error["message"].as_str().unwrap();
            let field = input.as_object().unwrap().keys().next().unwrap();
            assert!(message.contains(field.as_str()), "{message} names {field}");
            sse.ends().await;
        }
        // Input that is not JSON at all.
        let mut sse = open_as(&ann, "/api/trpc/notifications.onNew?input=%7Bbad", &[]).await;
        sse.connected().await;
        assert_eq!(sse.serialized_error().await["data"]["code"], "BAD_REQUEST");
        sse.ends().await;
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn post_is_method_not_supported_with_allow_get() {
    each_backend(|app| async move {
        let ann = app.user("ann").await;
        let mut sse = Open {
            base: &app.base,
            cookie: ann.cookie.as_deref(),
            post: Some(r#"{"json":null,"meta":{"values":["undefined"],"v":1}}"#),
            ..Open::default()
        }
        .at("/api/trpc/notifications.onNew")
        .await;
        assert_stream_headers(&sse);
        assert_eq!(sse.headers.get("allow").unwrap(), "GET");
        sse.connected().await;
        let event = sse.event().await;
        assert_eq!(
            event.raw,
            "event: serialized-error\ndata: {\"json\":{\"message\":\"Unsupported POST-request to subscription procedure at path \\\"notifications.onNew\\\"\",\"code\":-32005,\"data\":{\"code\":\"METHOD_NOT_SUPPORTED\",\"httpStatus\":405,\"path\":\"notifications.onNew\"}}}\n\n\n"
        );
        sse.ends().await;
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn batches_unknown_procedures_and_queries_get_plain_json() {
    each_backend(|app| async move {
        let ann = app.user("ann").await;
        // 68: a batch holding a subscription.
        let batch = open_as(
            &ann,
            "/api/trpc/notifications.onNew?batch=1&input=%7B%220%22%3A%7B%22json%22%3Anull%2C%22meta%22%3A%7B%22values%22%3A%5B%22undefined%22%5D%2C%22v%22%3A1%7D%7D%7D",
            &[],
        )
        .await;
        assert_eq!(batch.status, 400);
        assert_eq!(batch.headers.get("content-type").unwrap(), "application/json");
        let reply = ann
            .get("/api/trpc/notifications.onNew?batch=1&input=%7B%220%22%3A%7B%22json%22%3Anull%7D%7D")
            .await;
        assert_eq!(reply.status, 400);
        assert_eq!(
            reply.text,
            r#"[{"error":{"json":{"message":"Cannot batch subscription calls","code":-32600,"data":{"code":"BAD_REQUEST","httpStatus":400,"path":"notifications.onNew"}}}}]"#
        );
        // 65: an unknown procedure asked for as an event stream.
        let unknown = open_as(&ann, &path("notifications.nope"), &[]).await;
        assert_eq!(unknown.status, 404);
        assert_eq!(unknown.headers.get("content-type").unwrap(), "application/json");
        let reply = ann.get(&path("notifications.nope")).await;
        assert_eq!(
            reply.text,
            r#"{"error":{"json":{"message":"No procedure found on path \"notifications.nope\"","code":-32004,"data":{"code":"NOT_FOUND","httpStatus":404,"path":"notifications.nope"}}}}"#
        );
        // 66: a query procedure asked for as an event stream answers as a query.
        let query = open_as(&ann, &path("notifications.unreadCount"), &[]).await;
        assert_eq!(query.status, 200);
        assert_eq!(query.headers.get("content-type").unwrap(), "application/json");
        assert_eq!(
            ann.get(&path("notifications.unreadCount")).await.text,
            r#"{"result":{"data":{"json":{"count":0}}}}"#
        );
        app.stop().await;
    })
    .await;
}

/// Opens onNew for `user` resuming after `last` in one of tRPC's three ways, and returns the
/// stream with its `connected` read.
async fn resume(user: &Client, how: &str, last: &str) -> Sse {
    let mut sse = match how {
        "header" => {
            open_as(
                user,
                &path("notifications.onNew"),
                &[("Last-Event-ID", last)],
            )
            .await
        }
        "query" => {
            let q = format!("/api/trpc/notifications.onNew?lastEventId={last}&input={NO_INPUT}");
            open_as(user, &q, &[]).await
        }
        "input" => {
            let p = path_with("notifications.onNew", &json!({"lastEventId": last}));
            open_as(user, &p, &[]).await
        }
        other => panic!("no resume {other}"),
    };
    assert_stream_headers(&sse);
    sse.connected().await;
    sse
}

#[tokio::test]
async fn resuming_replays_exactly_the_items_after_the_last_event_id_oldest_first() {
    each_backend(|app| async move {
        let ann = app.user("ann").await;
        let ids = app.notify("ann", 5).await;
        // Another user's items never count.
        app.user("bob").await;
        app.notify("bob", 2).await;
        for how in ["header", "query", "input"] {
            let mut sse = resume(&ann, how, &ids[1]).await;
            for (n, id) in ids.iter().enumerate().skip(2) {
                let event = sse.data().await;
                // The counts as they were right after that item: n + 1 unread of n + 1.
                let n = n as u64 + 1;
                assert_new(&event, &ann, id, n, n, n).await;
            }
            // Nothing more was replayed: the next event is a new item.
            let live = app.notify("ann", 1).await;
            let event = sse.data().await;
            assert_eq!(
                event.id.as_deref(),
                Some(live[0].as_str()),
                "{how}: {event:?}"
            );
            // The next resume starts from the same place: remove the live one.
            ann.mutate("notifications.delete", json!({"id": live[0]}))
                .await;
        }
        // The header wins over the input (73).
        let mut sse = open_as(
            &ann,
            &path_with("notifications.onNew", &json!({"lastEventId": ids[3]})),
            &[("Last-Event-ID", &ids[2])],
        )
        .await;
        sse.connected().await;
        assert_eq!(sse.data().await.id.as_deref(), Some(ids[3].as_str()));
        assert_eq!(sse.data().await.id.as_deref(), Some(ids[4].as_str()));
        // Resuming from the newest replays nothing.
        let mut sse = resume(&ann, "header", &ids[4]).await;
        let live = app.notify("ann", 1).await;
        assert_eq!(sse.data().await.id.as_deref(), Some(live[0].as_str()));
        // Archived and deleted items are not replayed.
        ann.mutate("notifications.archive", json!({"id": ids[3]}))
            .await;
        ann.mutate("notifications.delete", json!({"id": ids[2]}))
            .await;
        let mut sse = resume(&ann, "input", &ids[1]).await;
        for id in [&ids[4], &live[0]] {
            assert_eq!(sse.data().await.id.as_deref(), Some(id.as_str()));
        }
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn reconnecting_with_the_last_event_id_misses_nothing() {
    each_backend(|app| async move {
        let ann = app.user("ann").await;
        let mut sse = on_new(&ann).await;
        let first = app.notify("ann", 1).await;
        let last = sse.data().await.id.expect("tracked");
        assert_eq!(last, first[0]);
        drop(sse);

        // Created while the client is away, one by one and in one call.
        let mut missed = app.notify("ann", 1).await;
        missed.extend(app.notify("ann", 3).await);
        let mut sse = resume(&ann, "header", &last).await;
        for (n, id) in missed.iter().enumerate() {
            let n = n as u64 + 2;
            assert_new(&sse.data().await, &ann, id, n, n, n).await;
        }
        let live = app.notify("ann", 1).await;
        assert_eq!(sse.data().await.id.as_deref(), Some(live[0].as_str()));
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn an_unknown_or_foreign_last_event_id_replays_nothing() {
    each_backend(|app| async move {
        let ann = app.user("ann").await;
        app.user("bob").await;
        app.notify("ann", 2).await;
        let bobs = app.notify("bob", 1).await;
        for (how, last) in [
            ("input", "no-such-id"),
            ("header", "no-such-id"),
            ("input", "01890a5d-ac96-774b-bcce-b302099a8057"),
            ("header", bobs[0].as_str()),
        ] {
            let mut sse = resume(&ann, how, last).await;
            let live = app.notify("ann", 1).await;
            assert_eq!(
                sse.data().await.id.as_deref(),
                Some(live[0].as_str()),
                "{how} {last}"
            );
        }
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn on_counts_follows_every_change_from_any_session() {
    each_backend(|app| async move {
        let ann = app.user("ann").await;
        let ids = app.notify("ann", 3).await;
        // The same user in another tab or device.
        let other = app.login("ann").await;
        let mut sse = open_as(&ann, &path("notifications.onCounts"), &[]).await;
        assert_stream_headers(&sse);
        sse.connected().await;
        assert_eq!(sse.event().await.raw, counts_frame(3, 3, 3));

        let steps = [
            (
                &other,
                "notifications.markAllAsSeen",
                Value::Null,
                (3, 0, 3),
            ),
            (
                &ann,
                "notifications.markAsRead",
                json!({"id": ids[0]}),
                (2, 0, 3),
            ),
            (
                &other,
                "notifications.archive",
                json!({"id": ids[1]}),
                (1, 0, 2),
            ),
            (
                &other,
                "notifications.delete",
                json!({"id": ids[0]}),
                (1, 0, 1),
            ),
            (&ann, "notifications.markAllAsRead", json!({}), (0, 0, 1)),
            (
                &other,
                "notifications.markAsRead",
                json!({"id": ids[2]}),
                (0, 0, 1),
            ),
        ];
        for (client, procedure, input, (unread, unseen, total)) in steps {
            let reply = client.mutate(procedure, input).await;
            assert_eq!(reply.status, 200, "{procedure}: {reply:?}");
            if procedure == "notifications.markAsRead" && unread == 0 {
                // Already read: no change, so no event; the next change shows next.
                continue;
            }
            let event = sse.event().await;
            assert_eq!(
                event.raw,
                counts_frame(unread, unseen, total),
                "after {procedure}"
            );
        }
        // A new item.
        app.notify("ann", 1).await;
        assert_eq!(sse.event().await.raw, counts_frame(1, 1, 2));
        // The records API (service) changes it too.
        let reply = app
            .service()
            .mutate(
                "notifications.update",
                json!({"id": ids[2], "data": {"status": "archived"}}),
            )
            .await;
        assert_eq!(reply.status, 200, "{reply:?}");
        assert_eq!(sse.event().await.raw, counts_frame(1, 1, 1));
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn another_users_notifications_never_reach_the_stream() {
    each_backend(|app| async move {
        let ann = app.user("ann").await;
        let bob = app.user("bob").await;
        let mut bob_new = on_new(&bob).await;
        let mut bob_counts = open_as(&bob, &path("notifications.onCounts"), &[]).await;
        bob_counts.connected().await;
        assert_eq!(bob_counts.event().await.raw, counts_frame(0, 0, 0));

        let anns = app.notify("ann", 2).await;
        ann.mutate("notifications.markAsRead", json!({"id": anns[0]}))
            .await;
        // Ann's changes wake nobody of Bob's: his next events are his own item.
        let bobs = app.notify("bob", 1).await;
        assert_new(&bob_new.data().await, &bob, &bobs[0], 1, 1, 1).await;
        assert_eq!(bob_counts.event().await.raw, counts_frame(1, 1, 1));
        // An organization-wide fan-out reaches both, each with their own item.
        let mut ann_new = on_new(&ann).await;
        notify_everyone(&app, "All").await;
        let for_bob = bob_new.data().await;
        let for_ann = ann_new.data().await;
        assert_ne!(for_bob.id, for_ann.id);
        assert_new(&for_bob, &bob, for_bob.id.as_deref().unwrap(), 2, 2, 2).await;
        assert_new(&for_ann, &ann, for_ann.id.as_deref().unwrap(), 2, 3, 3).await;
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_fan_out_reaches_every_tab_of_a_user() {
    each_backend(|app| async move {
        let ann = app.user("ann").await;
        let mut first_tab = on_new(&ann).await;
        let mut badge = open_as(&ann, &path("notifications.onCounts"), &[]).await;
        badge.connected().await;
        assert_eq!(badge.event().await.raw, counts_frame(0, 0, 0));
        let mut second_tab = on_new(&ann).await;
        notify_everyone(&app, "Tabs").await;
        let first = first_tab.data().await;
        let second = second_tab.data().await;
        assert_eq!(first.id, second.id);
        assert_new(&first, &ann, first.id.as_deref().unwrap(), 1, 1, 1).await;
        assert_new(&second, &ann, second.id.as_deref().unwrap(), 1, 1, 1).await;
        assert_eq!(badge.event().await.raw, counts_frame(1, 1, 1));
        app.stop().await;
    })
    .await;
}

/// A fan-out to every user of the instance, through a service key.
async fn notify_everyone(app: &TestApp, title: &str) {
    app.service()
        .mutate(
            "notifications.notify",
            json!({"key": "ticketAssigned", "recipients": {"allUsers": true},
                   "data": {"ticketNumber": "9", "ticketTitle": title}}),
        )
        .await;
}

/// Opens onCounts for `user` and returns it when it is live (its first counts came), or the
/// refusal's error `json`.
async fn try_counts(user: &Client) -> Result<Sse, Value> {
    let mut sse = open_as(user, &path("notifications.onCounts"), &[]).await;
    sse.connected().await;
    let event = sse.event().await;
    if event.event.as_deref() == Some("serialized-error") {
        sse.ends().await;
        return Err(event.json()["json"].clone());
    }
    assert_eq!(event.event, None, "{event:?}");
    Ok(sse)
}

/// Keeps trying to open a subscription for `user` until the server has freed a place, for at
/// most 5 s: a closed connection is noticed by the server, not announced to the client.
async fn counts_once_freed(user: &Client) -> Sse {
    let deadline = Instant::now() + sse::WAIT;
    loop {
        match try_counts(user).await {
            Ok(sse) => return sse,
            Err(error) if Instant::now() < deadline => {
                assert_eq!(error["data"]["code"], "TOO_MANY_REQUESTS");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(error) => panic!("the closed stream's place was not freed within 5 s: {error}"),
        }
    }
}

#[tokio::test]
async fn the_per_user_cap_refuses_the_third_stream_and_a_closed_stream_frees_its_place() {
    each_backend_with(
        &[("TIDINGS_MAX_SUBSCRIPTIONS_PER_USER", "2")],
        |app| async move {
            let ann = app.user("ann").await;
            let bob = app.user("bob").await;
            let first = on_new(&ann).await;
            let second = try_counts(&ann).await.expect("a second stream is allowed");

            let mut third = open_as(&ann, &path("notifications.onNew"), &[]).await;
            assert_stream_headers(&third);
            third.connected().await;
            assert_eq!(
                third.serialized_error().await,
                error_json(
                    "At most 2 open subscriptions per user",
                    "TOO_MANY_REQUESTS",
                    -32029,
                    429,
                    "notifications.onNew"
                )
            );
            third.ends().await;
            // Another session of the same user counts against the same cap; another user does not.
            let err = try_counts(&app.login("ann").await)
                .await
                .expect_err("capped");
            assert_eq!(err["code"], -32029);
            let bobs = try_counts(&bob).await.expect("bob has his own places");

            // Closing one frees its place.
            drop(first);
            let mut again = counts_once_freed(&ann).await;
            // The streams still open keep working.
            let mut second = second;
            app.notify("ann", 1).await;
            assert_eq!(second.event().await.raw, counts_frame(1, 1, 1));
            assert_eq!(again.event().await.raw, counts_frame(1, 1, 1));
            drop((second, again, bobs));
            let _ = counts_once_freed(&ann).await;
            app.stop().await;
        },
    )
    .await;
}

/// The cap on all of a process's subscriptions.
#[tokio::test]
async fn the_total_cap_refuses_streams_beyond_it() {
    each_backend_with(
        &[("TIDINGS_MAX_SUBSCRIPTIONS", "1")],
        |app: TestApp| async move {
            let ann = app.user("ann").await;
            let bob = app.user("bob").await;
            let _open = try_counts(&ann).await.expect("the first stream");
            let err = try_counts(&bob).await.expect_err("over the total cap");
            assert_eq!(err["data"]["code"], "TOO_MANY_REQUESTS");
            assert_eq!(err["data"]["httpStatus"], 429);
            app.stop().await;
        },
    )
    .await;
}
