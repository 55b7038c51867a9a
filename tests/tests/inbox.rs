//! The inbox and preference procedures of seed 003 (SPEC.md §4), over real HTTP: listing and
//! paging, counts, read/seen/archive/delete on one's own and on others' notifications,
//! preferences, input validation and who may call them.

use serde_json::{Value, json};
use tidings_tests::{Client, Reply, TestApp, each_backend};

/// A well-formed notification id that names nothing.
const UNKNOWN_ID: &str = "ffffffff-ffff-4fff-bfff-ffffffffffff";

/// Seed 003's `getPreferences` response for a user who never chose anything, byte for byte.
const DEFAULT_PREFERENCES: &str = concat!(
    r#"{"email":{"ticketCreated":true,"ticketAssigned":true,"ticketUpdated":false,"#,
    r#""ticketResolved":true,"newComment":true,"mentions":true,"slaWarning":true,"#,
    r#""slaBreach":true,"weeklyReport":true},"#,
    r#""inApp":{"ticketCreated":true,"ticketAssigned":true,"ticketUpdated":true,"#,
    r#""ticketResolved":true,"newComment":true,"mentions":true,"slaWarning":true,"#,
    r#""slaBreach":true,"weeklyReport":false},"#,
    r#""push":{"ticketAssigned":true,"mentions":true,"slaWarning":false,"slaBreach":true}}"#,
);

/// Every procedure of the inbox API with its kind and a valid input.
fn inbox_procedures() -> Vec<(&'static str, bool, Value)> {
    let id = json!({"id": UNKNOWN_ID});
    vec![
        ("notifications.list", true, json!({"limit": 2})),
        ("notifications.unreadCount", true, Value::Null),
        ("notifications.counts", true, Value::Null),
        ("notifications.getPreferences", true, Value::Null),
        ("notifications.markAsRead", false, id.clone()),
        ("notifications.markAllAsRead", false, Value::Null),
        ("notifications.markAllAsSeen", false, json!({})),
        ("notifications.delete", false, id.clone()),
        ("notifications.archive", false, id),
        (
            "notifications.updatePreferences",
            false,
            json!({"channel": "email", "type": "weeklyReport", "enabled": false}),
        ),
        ("notifications.disableAllEmail", false, json!({})),
    ]
}

async fn call(client: &Client, procedure: &str, is_query: bool, input: Value) -> Reply {
    if is_query {
        client.query(procedure, input).await
    } else {
        client.mutate(procedure, input).await
    }
}

/// The numeric code and HTTP status of a tRPC error key (SPEC.md §5).
fn wire_code(key: &str) -> (i64, u16) {
    match key {
        "BAD_REQUEST" => (-32600, 400),
        "UNAUTHORIZED" => (-32001, 401),
        "FORBIDDEN" => (-32003, 403),
        "NOT_FOUND" => (-32004, 404),
        other => panic!("no wire code known for {other}"),
    }
}

/// Asserts `reply` is exactly the error envelope for `key` at `path`; returns its message.
fn assert_error(reply: &Reply, key: &str, path: &str) -> String {
    let (number, status) = wire_code(key);
    assert_eq!(reply.status, status, "{reply:?}");
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let message = reply.error_message().to_owned();
    assert!(!message.is_empty(), "an error has a message: {reply:?}");
    assert_eq!(
        reply.body,
        json!({"error": {"json": {"message": message, "code": number,
            "data": {"code": key, "httpStatus": status, "path": path}}}}),
        "{reply:?}"
    );
    message
}

/// Asserts a BAD_REQUEST whose message names `field`.
fn assert_names_field(reply: &Reply, path: &str, field: &str) {
    let message = assert_error(reply, "BAD_REQUEST", path);
    assert!(
        message.contains(field),
        "the message {message:?} should name {field}"
    );
}

/// The data of a successful call.
fn ok(reply: Reply) -> Value {
    assert_eq!(reply.status, 200, "{reply:?}");
    reply.data().clone()
}

async fn list(client: &Client, input: Value) -> Value {
    let page = ok(client.query("notifications.list", input).await);
    assert_page_is_consistent(&page);
    page
}

/// `hasMore` is true exactly when `nextCursor` is a string (WIRE.md §8).
fn assert_page_is_consistent(page: &Value) {
    let cursor = &page["nextCursor"];
    assert!(cursor.is_string() || cursor.is_null(), "{page}");
    assert_eq!(page["hasMore"], json!(cursor.is_string()), "{page}");
}

/// The ids of a list page, in order.
fn ids(page: &Value) -> Vec<String> {
    page["notifications"]
        .as_array()
        .unwrap_or_else(|| panic!("a list page: {page}"))
        .iter()
        .map(|n| n["id"].as_str().expect("string id").to_owned())
        .collect()
}

fn newest_first(ids: &[String]) -> Vec<String> {
    ids.iter().rev().cloned().collect()
}

/// Walks every page of `input` with page size `limit`; `between` runs after each page.
async fn walk<F, Fut>(client: &Client, input: Value, limit: u64, mut between: F) -> Vec<String>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    let mut seen = Vec::new();
    let mut cursor = Value::Null;
    loop {
        let mut page_input = input.clone();
        page_input["limit"] = json!(limit);
        if !cursor.is_null() {
            page_input["cursor"] = cursor;
        }
        let page = list(client, page_input).await;
        let page_ids = ids(&page);
        assert!(page_ids.len() as u64 <= limit, "{page}");
        if page["hasMore"] == json!(true) {
            assert_eq!(page_ids.len() as u64, limit, "a full page before the last");
        }
        seen.extend(page_ids);
        cursor = page["nextCursor"].clone();
        if cursor.is_null() {
            return seen;
        }
        between().await;
    }
}

async fn counts(client: &Client) -> Value {
    ok(client.query("notifications.counts", Value::Null).await)
}

async fn unread_count(client: &Client) -> Value {
    ok(client.query("notifications.unreadCount", Value::Null).await)
}

async fn preferences(client: &Client) -> Reply {
    let reply = client
        .query("notifications.getPreferences", Value::Null)
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    reply
}

/// The exact body of a successful call whose data serializes to `json`.
fn result_text(json: &str) -> String {
    format!(r#"{{"result":{{"data":{{"json":{json}}}}}}}"#)
}

/// Creates a notification of `kind` with `data` for `recipient` through the records API.
async fn create_typed(app: &TestApp, recipient: &str, kind: &str, data: Value) -> Value {
    let reply = app
        .service()
        .mutate(
            "notifications.create",
            json!({"recipient": recipient, "subject": "Ticket Assigned",
                "message": "You've been assigned ticket #1234: Customer login issue",
                "type": kind, "data": data}),
        )
        .await;
    ok(reply)
}

// ── Listing ───────────────────────────────────────────────────────────────────────────────

#[tokio::test]
async fn inbox_items_have_exactly_the_seeds_fields() {
    each_backend(|app| async move {
        let ann = app.user("ann").await;
        let data = json!({"ticketId": "ticket-uuid", "ticketNumber": 1234});
        let record = create_typed(&app, "ann", "ticketAssigned", data.clone()).await;
        let plain = app.notify("ann", 1).await;
        let page = list(&ann, Value::Null).await;
        let items = page["notifications"].as_array().unwrap();
        assert_eq!(items.len(), 2);

        let without_data = &items[0];
        assert_eq!(without_data["id"], json!(plain[0]));
        let keys: Vec<&String> = without_data.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            ["id", "type", "title", "message", "read", "created_at"],
            "data is omitted when there is none"
        );

        let with_data = &items[1];
        let keys: Vec<&String> = with_data.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            [
                "id",
                "type",
                "title",
                "message",
                "data",
                "read",
                "created_at"
            ]
        );
        assert_eq!(
            *with_data,
            json!({
                "id": record["id"],
                "type": "ticketAssigned",
                "title": "Ticket Assigned",
                "message": "You've been assigned ticket #1234: Customer login issue",
                "data": data,
                "read": false,
                "created_at": with_data["created_at"],
            })
        );
        let created_at = with_data["created_at"].as_str().expect("a string");
        let shape: String = created_at
            .chars()
            .map(|c| if c.is_ascii_digit() { '0' } else { c })
            .collect();
        assert_eq!(shape, "0000-00-00T00:00:00.000Z", "{created_at}");
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn the_list_is_newest_first_and_pages_by_cursor() {
    each_backend(|app| async move {
        let ann = app.user("ann").await;
        let created = app.notify("ann", 5).await;
        let all = newest_first(&created);

        let first = list(&ann, json!({"limit": 2})).await;
        assert_eq!(ids(&first), all[..2]);
        assert_eq!(first["hasMore"], json!(true));

        let second = list(&ann, json!({"limit": 2, "cursor": first["nextCursor"]})).await;
        assert_eq!(ids(&second), all[2..4]);
        assert_eq!(second["hasMore"], json!(true));

        let last = list(&ann, json!({"limit": 2, "cursor": second["nextCursor"]})).await;
        assert_eq!(ids(&last), all[4..]);
        assert_eq!(last["nextCursor"], Value::Null);
        assert_eq!(last["hasMore"], json!(false));
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_page_that_ends_exactly_at_the_last_item_has_no_more() {
    each_backend(|app| async move {
        let ann = app.user("ann").await;
        let created = app.notify("ann", 4).await;
        let whole = list(&ann, json!({"limit": 4})).await;
        assert_eq!(ids(&whole), newest_first(&created));
        assert_eq!(whole["nextCursor"], Value::Null);
        assert_eq!(whole["hasMore"], json!(false));

        let first = list(&ann, json!({"limit": 2})).await;
        let second = list(&ann, json!({"limit": 2, "cursor": first["nextCursor"]})).await;
        assert_eq!(ids(&second).len(), 2);
        assert_eq!(second["nextCursor"], Value::Null);
        assert_eq!(second["hasMore"], json!(false));
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn an_empty_inbox_is_one_empty_last_page() {
    each_backend(|app| async move {
        let ann = app.user("ann").await;
        let page = list(&ann, Value::Null).await;
        assert_eq!(
            page,
            json!({"notifications": [], "nextCursor": null, "hasMore": false})
        );
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn pages_of_any_size_join_up_to_the_whole_list() {
    each_backend(|app| async move {
        let ann = app.user("ann").await;
        let created = app.notify("ann", 7).await;
        let whole = ids(&list(&ann, json!({"limit": 100})).await);
        assert_eq!(whole, newest_first(&created));
        for limit in [1, 2, 3, 6, 7, 8, 100] {
            let walked = walk(&ann, json!({}), limit, || async {}).await;
            assert_eq!(walked, whole, "page size {limit}");
        }
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_walk_sees_every_item_once_while_new_ones_arrive() {
    each_backend(|app| async move {
        let ann = app.user("ann").await;
        let created = app.notify("ann", 8).await;
        let walked = walk(&ann, json!({}), 3, || async {
            app.notify("ann", 2).await;
        })
        .await;
        // The items there when the walk began, each once, newest first; the newer ones are
        // above the first page and for the next walk.
        assert_eq!(walked, newest_first(&created));
        let everything = walk(&ann, json!({}), 3, || async {}).await;
        assert_eq!(everything.len(), 8 + 2 * 2);
        assert_eq!(everything[everything.len() - 8..], newest_first(&created));
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_cursor_stays_valid_after_its_item_is_deleted() {
    each_backend(|app| async move {
        let ann = app.user("ann").await;
        let created = app.notify("ann", 5).await;
        let first = list(&ann, json!({"limit": 2})).await;
        let last_shown = ids(&first)[1].clone();
        ok(ann
            .mutate("notifications.delete", json!({"id": last_shown}))
            .await);
        let rest = list(&ann, json!({"limit": 10, "cursor": first["nextCursor"]})).await;
        assert_eq!(ids(&rest), newest_first(&created[..3]));
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn the_default_limit_is_fifty() {
    each_backend(|app| async move {
        let ann = app.user("ann").await;
        let created = app.notify("ann", 51).await;
        let first = list(&ann, Value::Null).await;
        assert_eq!(ids(&first), newest_first(&created)[..50]);
        assert_eq!(first["hasMore"], json!(true));
        let rest = list(&ann, json!({"cursor": first["nextCursor"]})).await;
        assert_eq!(ids(&rest), [created[0].clone()]);
        assert_eq!(rest["hasMore"], json!(false));
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn limits_of_one_and_one_hundred_are_allowed() {
    each_backend(|app| async move {
        let ann = app.user("ann").await;
        let created = app.notify("ann", 101).await;
        let one = list(&ann, json!({"limit": 1})).await;
        assert_eq!(ids(&one), [created[100].clone()]);
        let hundred = list(&ann, json!({"limit": 100})).await;
        assert_eq!(ids(&hundred), newest_first(&created)[..100]);
        assert_eq!(hundred["hasMore"], json!(true));
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn unread_only_lists_only_unread_items_and_pages_through_them() {
    each_backend(|app| async move {
        let ann = app.user("ann").await;
        let created = app.notify("ann", 6).await;
        for id in [&created[1], &created[4]] {
            ok(ann
                .mutate("notifications.markAsRead", json!({"id": id}))
                .await);
        }
        let unread: Vec<String> = newest_first(&created)
            .into_iter()
            .filter(|id| *id != created[1] && *id != created[4])
            .collect();
        let page = list(&ann, json!({"unreadOnly": true})).await;
        assert_eq!(ids(&page), unread);
        assert!(
            page["notifications"]
                .as_array()
                .unwrap()
                .iter()
                .all(|n| n["read"] == json!(false))
        );
        let walked = walk(&ann, json!({"unreadOnly": true}), 3, || async {}).await;
        assert_eq!(walked, unread);
        let everything = list(&ann, json!({"unreadOnly": false})).await;
        assert_eq!(ids(&everything), newest_first(&created));
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn archived_items_leave_the_inbox_for_the_archive() {
    each_backend(|app| async move {
        let ann = app.user("ann").await;
        let created = app.notify("ann", 3).await;
        let reply = ann
            .mutate("notifications.archive", json!({"id": created[1]}))
            .await;
        assert_eq!(ok(reply), json!({"success": true}));
        let inbox = list(&ann, Value::Null).await;
        assert_eq!(ids(&inbox), [created[2].clone(), created[0].clone()]);
        let explicit_inbox = list(&ann, json!({"status": "inbox"})).await;
        assert_eq!(ids(&explicit_inbox), ids(&inbox));
        let archive = list(&ann, json!({"status": "archived"})).await;
        assert_eq!(ids(&archive), [created[1].clone()]);
        assert_eq!(archive["hasMore"], json!(false));
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn users_see_only_their_own_notifications() {
    each_backend(|app| async move {
        let ann = app.user("ann").await;
        let bob = app.user("bob").await;
        let anns = app.notify("ann", 2).await;
        let bobs = app.notify("bob", 1).await;
        assert_eq!(ids(&list(&ann, Value::Null).await), newest_first(&anns));
        assert_eq!(ids(&list(&bob, Value::Null).await), bobs);
        assert_eq!(
            counts(&bob).await,
            json!({"unread": 1, "unseen": 1, "total": 1})
        );
        app.stop().await;
    })
    .await;
}

// ── Counts ────────────────────────────────────────────────────────────────────────────────

#[tokio::test]
async fn counts_follow_reads_seen_marks_and_archiving() {
    each_backend(|app| async move {
        let ann = app.user("ann").await;
        let created = app.notify("ann", 4).await;
        assert_eq!(
            counts(&ann).await,
            json!({"unread": 4, "unseen": 4, "total": 4})
        );
        assert_eq!(unread_count(&ann).await, json!({"count": 4}));

        ok(ann
            .mutate("notifications.markAsRead", json!({"id": created[0]}))
            .await);
        assert_eq!(
            counts(&ann).await,
            json!({"unread": 3, "unseen": 4, "total": 4})
        );
        assert_eq!(unread_count(&ann).await, json!({"count": 3}));

        let seen = ok(ann.mutate("notifications.markAllAsSeen", Value::Null).await);
        assert_eq!(seen, json!({"success": true, "count": 4}));
        assert_eq!(
            counts(&ann).await,
            json!({"unread": 3, "unseen": 0, "total": 4})
        );

        ok(ann
            .mutate("notifications.archive", json!({"id": created[3]}))
            .await);
        assert_eq!(
            counts(&ann).await,
            json!({"unread": 2, "unseen": 0, "total": 3}),
            "archived items are not counted"
        );
        assert_eq!(unread_count(&ann).await, json!({"count": 2}));

        ok(ann
            .mutate("notifications.delete", json!({"id": created[2]}))
            .await);
        assert_eq!(
            counts(&ann).await,
            json!({"unread": 1, "unseen": 0, "total": 2})
        );
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn mark_all_as_seen_counts_only_what_it_changed() {
    each_backend(|app| async move {
        let ann = app.user("ann").await;
        app.notify("ann", 2).await;
        let first = ok(ann.mutate("notifications.markAllAsSeen", json!({})).await);
        assert_eq!(first, json!({"success": true, "count": 2}));
        let again = ok(ann.mutate("notifications.markAllAsSeen", Value::Null).await);
        assert_eq!(again, json!({"success": true, "count": 0}));
        app.notify("ann", 1).await;
        assert_eq!(
            counts(&ann).await,
            json!({"unread": 3, "unseen": 1, "total": 3})
        );
        let third = ok(ann.mutate("notifications.markAllAsSeen", json!({})).await);
        assert_eq!(third, json!({"success": true, "count": 1}));
        app.stop().await;
    })
    .await;
}

// ── Read, delete, archive ─────────────────────────────────────────────────────────────────

#[tokio::test]
async fn mark_as_read_marks_one_own_notification() {
    each_backend(|app| async move {
        let ann = app.user("ann").await;
        let created = app.notify("ann", 2).await;
        let reply = ann
            .mutate("notifications.markAsRead", json!({"id": created[0]}))
            .await;
        assert_eq!(ok(reply), json!({"success": true}));
        let page = list(&ann, Value::Null).await;
        let read: Vec<(Value, Value)> = page["notifications"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| (n["id"].clone(), n["read"].clone()))
            .collect();
        assert_eq!(
            read,
            [
                (json!(created[1]), json!(false)),
                (json!(created[0]), json!(true))
            ]
        );
        let again = ann
            .mutate("notifications.markAsRead", json!({"id": created[0]}))
            .await;
        assert_eq!(ok(again), json!({"success": true}), "marking twice is fine");
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn delete_removes_one_own_notification_for_good() {
    each_backend(|app| async move {
        let ann = app.user("ann").await;
        let created = app.notify("ann", 2).await;
        let reply = ann
            .mutate("notifications.delete", json!({"id": created[1]}))
            .await;
        assert_eq!(ok(reply), json!({"success": true}));
        assert_eq!(ids(&list(&ann, Value::Null).await), [created[0].clone()]);
        assert_eq!(
            ids(&list(&ann, json!({"status": "archived"})).await),
            Vec::<String>::new()
        );
        let again = ann
            .mutate("notifications.delete", json!({"id": created[1]}))
            .await;
        let message = assert_error(&again, "NOT_FOUND", "notifications.delete");
        assert_eq!(message, "Notification not found");
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn another_users_notification_is_forbidden_and_left_untouched() {
    each_backend(|app| async move {
        let ann = app.user("ann").await;
        let bob = app.user("bob").await;
        let created = app.notify("ann", 1).await;
        for procedure in [
            "notifications.markAsRead",
            "notifications.archive",
            "notifications.delete",
        ] {
            let reply = bob.mutate(procedure, json!({"id": created[0]})).await;
            let message = assert_error(&reply, "FORBIDDEN", procedure);
            assert_eq!(message, "Not your notification");
        }
        let page = list(&ann, Value::Null).await;
        assert_eq!(ids(&page), created, "still in ann's inbox");
        assert_eq!(page["notifications"][0]["read"], json!(false));
        assert_eq!(
            counts(&ann).await,
            json!({"unread": 1, "unseen": 1, "total": 1})
        );
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn an_unknown_id_is_not_found() {
    each_backend(|app| async move {
        let ann = app.user("ann").await;
        for procedure in [
            "notifications.markAsRead",
            "notifications.archive",
            "notifications.delete",
        ] {
            let reply = ann.mutate(procedure, json!({"id": UNKNOWN_ID})).await;
            let message = assert_error(&reply, "NOT_FOUND", procedure);
            assert_eq!(message, "Notification not found");
        }
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn an_id_that_is_no_uuid_is_a_bad_request_naming_id() {
    each_backend(|app| async move {
        let ann = app.user("ann").await;
        for procedure in [
            "notifications.markAsRead",
            "notifications.archive",
            "notifications.delete",
        ] {
            let reply = ann
                .mutate(procedure, json!({"id": "notification-uuid"}))
                .await;
            assert_names_field(&reply, procedure, "id");
        }
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn mark_all_as_read_counts_what_it_changed_with_either_empty_input() {
    each_backend(|app| async move {
        let ann = app.user("ann").await;
        let created = app.notify("ann", 3).await;
        ok(ann
            .mutate("notifications.markAsRead", json!({"id": created[0]}))
            .await);
        let first = ok(ann.mutate("notifications.markAllAsRead", Value::Null).await);
        assert_eq!(first, json!({"success": true, "count": 2}));
        assert_eq!(unread_count(&ann).await, json!({"count": 0}));
        let again = ok(ann.mutate("notifications.markAllAsRead", json!({})).await);
        assert_eq!(again, json!({"success": true, "count": 0}));
        app.notify("ann", 1).await;
        let third = ok(ann.mutate("notifications.markAllAsRead", json!({})).await);
        assert_eq!(third, json!({"success": true, "count": 1}));
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn mark_all_as_read_leaves_other_users_alone() {
    each_backend(|app| async move {
        let ann = app.user("ann").await;
        let bob = app.user("bob").await;
        app.notify("ann", 2).await;
        app.notify("bob", 3).await;
        ok(ann.mutate("notifications.markAllAsRead", Value::Null).await);
        ok(ann.mutate("notifications.markAllAsSeen", Value::Null).await);
        assert_eq!(
            counts(&bob).await,
            json!({"unread": 3, "unseen": 3, "total": 3})
        );
        app.stop().await;
    })
    .await;
}

// ── Preferences ───────────────────────────────────────────────────────────────────────────

#[tokio::test]
async fn a_new_users_preferences_are_exactly_the_seeds() {
    each_backend(|app| async move {
        let ann = app.user("ann").await;
        let reply = preferences(&ann).await;
        assert_eq!(reply.text, result_text(DEFAULT_PREFERENCES));
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn update_preferences_answers_exactly_as_the_seed_shows() {
    each_backend(|app| async move {
        let ann = app.user("ann").await;
        let reply = ann
            .mutate(
                "notifications.updatePreferences",
                json!({"channel": "email", "type": "ticketUpdated", "enabled": false}),
            )
            .await;
        assert_eq!(reply.status, 200, "{reply:?}");
        assert_eq!(
            reply.text,
            result_text(r#"{"success":true,"preferences":{"email":{"ticketUpdated":false}}}"#)
        );
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn updated_preferences_are_what_get_preferences_shows() {
    each_backend(|app| async move {
        let ann = app.user("ann").await;
        let changes = [
            ("email", "weeklyReport", false),
            ("inApp", "weeklyReport", true),
            ("push", "slaWarning", true),
            ("push", "mentions", false),
        ];
        let mut want: Value = serde_json::from_str(DEFAULT_PREFERENCES).unwrap();
        for (channel, kind, enabled) in changes {
            let reply = ann
                .mutate(
                    "notifications.updatePreferences",
                    json!({"channel": channel, "type": kind, "enabled": enabled}),
                )
                .await;
            assert_eq!(
                ok(reply),
                json!({"success": true, "preferences": {channel: {kind: enabled}}})
            );
            want[channel][kind] = json!(enabled);
        }
        let reply = preferences(&ann).await;
        assert_eq!(reply.text, result_text(&want.to_string()));
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_preference_can_be_turned_back_on() {
    each_backend(|app| async move {
        let ann = app.user("ann").await;
        for enabled in [false, true] {
            ok(ann
                .mutate(
                    "notifications.updatePreferences",
                    json!({"channel": "email", "type": "mentions", "enabled": enabled}),
                )
                .await);
        }
        assert_eq!(
            preferences(&ann).await.text,
            result_text(DEFAULT_PREFERENCES)
        );
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn one_users_preferences_do_not_touch_anothers() {
    each_backend(|app| async move {
        let ann = app.user("ann").await;
        let bob = app.user("bob").await;
        ok(ann
            .mutate(
                "notifications.updatePreferences",
                json!({"channel": "inApp", "type": "newComment", "enabled": false}),
            )
            .await);
        ok(ann
            .mutate("notifications.disableAllEmail", Value::Null)
            .await);
        assert_eq!(
            preferences(&bob).await.text,
            result_text(DEFAULT_PREFERENCES)
        );
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn disable_all_email_turns_every_email_entry_off_and_nothing_else() {
    each_backend(|app| async move {
        let ann = app.user("ann").await;
        ok(ann
            .mutate(
                "notifications.updatePreferences",
                json!({"channel": "email", "type": "ticketUpdated", "enabled": true}),
            )
            .await);
        let reply = ann
            .mutate("notifications.disableAllEmail", Value::Null)
            .await;
        assert_eq!(
            ok(reply),
            json!({"success": true, "message": "All email notifications disabled"})
        );
        let mut want: Value = serde_json::from_str(DEFAULT_PREFERENCES).unwrap();
        for (_, enabled) in want["email"].as_object_mut().unwrap() {
            *enabled = json!(false);
        }
        let reply = preferences(&ann).await;
        assert_eq!(reply.text, result_text(&want.to_string()));
        app.stop().await;
    })
    .await;
}

// ── Validation ────────────────────────────────────────────────────────────────────────────

#[tokio::test]
async fn each_invalid_list_input_is_a_bad_request_naming_its_field() {
    each_backend(|app| async move {
        let ann = app.user("ann").await;
        let cases = [
            (json!({"limit": 0}), "limit"),
            (json!({"limit": 101}), "limit"),
            (json!({"limit": -1}), "limit"),
            (json!({"limit": "10"}), "limit"),
            (json!({"limit": 2.5}), "limit"),
            (json!({"unreadOnly": "true"}), "unreadOnly"),
            (json!({"status": "deleted"}), "status"),
            (json!({"status": 1}), "status"),
            (json!({"cursor": 5}), "cursor"),
            (json!({"cursor": "uuid-2"}), "cursor"),
            (json!({"page": 2}), "page"),
            (json!([1, 2]), "input"),
        ];
        for (input, field) in cases {
            let reply = ann.query("notifications.list", input.clone()).await;
            assert_names_field(&reply, "notifications.list", field);
        }
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn each_invalid_preference_update_is_a_bad_request_naming_its_field() {
    each_backend(|app| async move {
        let ann = app.user("ann").await;
        let cases = [
            (
                json!({"channel": "sms", "type": "mentions", "enabled": true}),
                "channel",
            ),
            (
                json!({"channel": 1, "type": "mentions", "enabled": true}),
                "channel",
            ),
            (json!({"type": "mentions", "enabled": true}), "channel"),
            (
                json!({"channel": "email", "type": "nope", "enabled": true}),
                "type",
            ),
            (json!({"channel": "email", "enabled": true}), "type"),
            // The built-in inbox-only type is required, so no preference of the user's.
            (
                json!({"channel": "inApp", "type": "general", "enabled": false}),
                "type",
            ),
            (
                json!({"channel": "email", "type": "mentions", "enabled": "yes"}),
                "enabled",
            ),
            (json!({"channel": "email", "type": "mentions"}), "enabled"),
            (
                json!({"channel": "email", "type": "mentions", "enabled": true, "extra": 1}),
                "extra",
            ),
        ];
        for (input, field) in cases {
            let reply = ann
                .mutate("notifications.updatePreferences", input.clone())
                .await;
            assert_names_field(&reply, "notifications.updatePreferences", field);
        }
        assert_eq!(
            preferences(&ann).await.text,
            result_text(DEFAULT_PREFERENCES),
            "nothing changed"
        );
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_channel_the_type_does_not_support_is_a_bad_request() {
    each_backend(|app| async move {
        let ann = app.user("ann").await;
        for kind in ["ticketCreated", "weeklyReport"] {
            let reply = ann
                .mutate(
                    "notifications.updatePreferences",
                    json!({"channel": "push", "type": kind, "enabled": true}),
                )
                .await;
            let message = assert_error(&reply, "BAD_REQUEST", "notifications.updatePreferences");
            assert!(
                message.contains(kind) && message.contains("push"),
                "{message}"
            );
        }
        assert_eq!(
            preferences(&ann).await.text,
            result_text(DEFAULT_PREFERENCES),
            "push still lists only the types that support it"
        );
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn each_invalid_id_input_is_a_bad_request_naming_its_field() {
    each_backend(|app| async move {
        let ann = app.user("ann").await;
        let cases = [
            (json!({}), "id"),
            (json!({"id": 5}), "id"),
            (json!({"id": null}), "id"),
            (json!({"id": ["a"]}), "id"),
            (json!({"id": UNKNOWN_ID, "force": true}), "force"),
        ];
        for procedure in [
            "notifications.markAsRead",
            "notifications.archive",
            "notifications.delete",
        ] {
            for (input, field) in &cases {
                let reply = ann.mutate(procedure, input.clone()).await;
                assert_names_field(&reply, procedure, field);
            }
        }
        app.stop().await;
    })
    .await;
}

// ── Who may call ──────────────────────────────────────────────────────────────────────────

#[tokio::test]
async fn a_service_key_cannot_call_inbox_procedures() {
    each_backend(|app| async move {
        let service = app.service();
        for (procedure, is_query, input) in inbox_procedures() {
            let reply = call(&service, procedure, is_query, input).await;
            assert_error(&reply, "FORBIDDEN", procedure);
        }
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn inbox_procedures_without_a_cookie_are_unauthorized() {
    each_backend(|app| async move {
        let anonymous = app.anonymous();
        for (procedure, is_query, input) in inbox_procedures() {
            let reply = call(&anonymous, procedure, is_query, input).await;
            let message = assert_error(&reply, "UNAUTHORIZED", procedure);
            assert_eq!(message, "Not authenticated");
        }
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn an_unknown_session_token_is_unauthorized() {
    each_backend(|app| async move {
        let mut stranger = app.anonymous();
        stranger.cookie = Some("c2Vzc2lvbi10aGF0LW5ldmVyLXdhcw".to_owned());
        for (procedure, is_query, input) in inbox_procedures() {
            let reply = call(&stranger, procedure, is_query, input).await;
            assert_error(&reply, "UNAUTHORIZED", procedure);
        }
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_session_revoked_by_logout_is_unauthorized() {
    each_backend(|app| async move {
        let ann = app.user("ann").await;
        app.notify("ann", 1).await;
        assert_eq!(unread_count(&ann).await, json!({"count": 1}));
        let logout = ann.mutate("auth.logout", Value::Null).await;
        assert_eq!(ok(logout), json!({"success": true}));
        for (procedure, is_query, input) in inbox_procedures() {
            let reply = call(&ann, procedure, is_query, input).await;
            assert_error(&reply, "UNAUTHORIZED", procedure);
        }
        let other_session = app.login("ann").await;
        assert_eq!(
            unread_count(&other_session).await,
            json!({"count": 1}),
            "signing in again works, and the notification is still there"
        );
        app.stop().await;
    })
    .await;
}
