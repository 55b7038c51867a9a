//! Several Tidings processes on one PostgreSQL database: a change made through one instance
//! reaches the live subscriptions held by another (signals travel by `NOTIFY`).
//!
//! PostgreSQL only: SQLite serves one process. Skipped, with a note, when
//! `TIDINGS_TEST_DATABASE_URL` is unset.

#[path = "support/sse.rs"]
mod sse;

use std::time::Duration;

use serde_json::json;
use sse::{Sse, open_as, path};
use tidings_tests::{Backend, Client, TestApp, TestDb, backends};

/// How soon a change on one instance must show on another.
const WITHIN: Duration = Duration::from_secs(1);

/// Two servers on one fresh PostgreSQL database, or `None` (with a note) without PostgreSQL.
async fn two_instances() -> Option<(TestDb, TestApp, TestApp)> {
    let Some(backend) = backends()
        .into_iter()
        .find(|b| matches!(b, Backend::Postgres(_)))
    else {
        eprintln!("note: TIDINGS_TEST_DATABASE_URL is not set; the two-instance test is skipped");
        return None;
    };
    let db = TestDb::create(&backend).await?;
    let a = TestApp::start_with_key(backend.clone(), &db, &[], "tests-a").await;
    let b = TestApp::start_with_key(backend, &db, &[], "tests-b").await;
    Some((db, a, b))
}

/// `client`'s session, used against instance `app` (sessions live in the shared database).
fn on(app: &TestApp, client: &Client) -> Client {
    let mut moved = client.clone();
    moved.base = app.base.clone();
    moved
}

/// The next event of `sse`, which must come within [`WITHIN`] and not be a ping.
async fn within(sse: &mut Sse) -> sse::Event {
    tokio::time::timeout(WITHIN, sse.data())
        .await
        .unwrap_or_else(|_| panic!("nothing within {WITHIN:?}; received: {:?}", sse.received))
}

#[tokio::test]
async fn a_notification_created_on_one_instance_reaches_a_subscriber_on_another() {
    let Some((db, a, b)) = two_instances().await else {
        return;
    };
    let outcome = futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(async {
        // Signed in through A; subscribed on B.
        let ann_a = a.user("ann").await;
        let ann_b = on(&b, &ann_a);
        let mut new_b = open_as(&ann_b, &path("notifications.onNew"), &[]).await;
        assert_eq!(new_b.status, 200);
        new_b.connected().await;
        let mut counts_b = open_as(&ann_b, &path("notifications.onCounts"), &[]).await;
        counts_b.connected().await;
        assert_eq!(
            counts_b.event().await.json(),
            json!({"json": {"unread": 0, "unseen": 0, "total": 0}})
        );

        // notifications.create through A.
        let ids = a.notify("ann", 1).await;
        let event = within(&mut new_b).await;
        assert_eq!(event.id.as_deref(), Some(ids[0].as_str()));
        let data = event.json();
        assert_eq!(data["json"]["notification"]["id"], ids[0]);
        assert_eq!(data["json"]["unreadCount"], 1);
        assert_eq!(within(&mut counts_b).await.json()["json"]["unread"], 1);

        // notifications.notify with allUsers through A.
        let reply = a
            .service()
            .mutate(
                "notifications.notify",
                json!({"key": "ticketAssigned", "recipients": {"allUsers": true},
                       "data": {"ticketNumber": "42", "ticketTitle": "Elsewhere"}}),
            )
            .await;
        assert_eq!(reply.status, 200, "{reply:?}");
        let event = within(&mut new_b).await;
        let data = event.json();
        assert_eq!(
            data["json"]["notification"]["message"],
            "You've been assigned ticket #42: Elsewhere"
        );
        assert_eq!(data["json"]["unreadCount"], 2);
        assert_eq!(within(&mut counts_b).await.json()["json"]["unread"], 2);

        // A change by the reader on A moves the badge on B.
        ann_a
            .mutate("notifications.markAsRead", json!({"id": ids[0]}))
            .await;
        assert_eq!(
            within(&mut counts_b).await.json(),
            json!({"json": {"unread": 1, "unseen": 2, "total": 2}})
        );

        // And the other way round: created through B, heard on A.
        let mut new_a = open_as(&ann_a, &path("notifications.onNew"), &[]).await;
        new_a.connected().await;
        let ids = b.notify("ann", 1).await;
        assert_eq!(
            within(&mut new_a).await.id.as_deref(),
            Some(ids[0].as_str())
        );
        assert_eq!(
            within(&mut new_b).await.id.as_deref(),
            Some(ids[0].as_str())
        );
        drop((new_a, new_b, counts_b));

        // Signed out through A: refused on B too.
        let unread = ann_b
            .query("notifications.unreadCount", serde_json::Value::Null)
            .await;
        assert_eq!(unread.status, 200, "{unread:?}");
        let out = ann_a.mutate("auth.logout", serde_json::Value::Null).await;
        assert_eq!(out.status, 200, "{out:?}");
        // B forgets the session when A's signal arrives: milliseconds, more on a loaded machine.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
        let refused = loop {
            let reply = ann_b
                .query("notifications.unreadCount", serde_json::Value::Null)
                .await;
            if reply.status != 200 || tokio::time::Instant::now() > deadline {
                break reply;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert_eq!(refused.status, 401, "{refused:?}");
        let mut sse = open_as(&ann_b, &path("notifications.onNew"), &[]).await;
        sse.connected().await;
        assert_eq!(sse.serialized_error().await["data"]["code"], "UNAUTHORIZED");
        a.stop().await;
        b.stop().await;
    }))
    .await;
    db.drop_now().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}
