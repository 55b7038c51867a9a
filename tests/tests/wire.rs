//! The tRPC wire protocol over real HTTP, case by case against `wire/WIRE.md` and its golden
//! captures 01–55: URLs and methods, the superjson envelope, batches, the error envelope, and
//! the order in which errors are decided. Payload details of the inbox live in `inbox.rs`.

use reqwest::Method;
use serde_json::{Value, json};
use tidings_tests::{Client, Reply, each_backend, encode_component};

/// What the real client sends for a call without an argument.
const NO_INPUT: &str = r#"{"json":null,"meta":{"values":["undefined"],"v":1}}"#;
/// A well-formed notification id that names nothing.
const UNKNOWN_ID: &str = "ffffffff-ffff-4fff-bfff-ffffffffffff";
const MIB: usize = 1024 * 1024;

/// The numeric code and HTTP status of a tRPC error key (WIRE.md §5, SPEC.md §5).
fn wire_code(key: &str) -> (i64, u16) {
    match key {
        "BAD_REQUEST" => (-32600, 400),
        "UNAUTHORIZED" => (-32001, 401),
        "FORBIDDEN" => (-32003, 403),
        "NOT_FOUND" => (-32004, 404),
        "METHOD_NOT_SUPPORTED" => (-32005, 405),
        "PAYLOAD_TOO_LARGE" => (-32013, 413),
        "UNSUPPORTED_MEDIA_TYPE" => (-32015, 415),
        other => panic!("no wire code known for {other}"),
    }
}

/// `{"error":{"json":{message, code, data:{code, httpStatus, path?}}}}`; no path for a
/// whole-request failure.
fn error_element(key: &str, message: &str, path: Option<&str>) -> Value {
    let (number, status) = wire_code(key);
    let mut data = json!({"code": key, "httpStatus": status});
    if let Some(path) = path {
        data["path"] = json!(path);
    }
    json!({"error": {"json": {"message": message, "code": number, "data": data}}})
}

/// `{"result":{"data":{"json":data}}}`.
fn result_element(data: Value) -> Value {
    json!({"result": {"data": {"json": data}}})
}

/// The status and headers of every JSON reply of the tRPC surface.
fn assert_json_reply(reply: &Reply, status: u16) {
    assert_eq!(reply.status, status, "{reply:?}");
    assert_eq!(
        reply.header("content-type"),
        Some("application/json"),
        "{reply:?}"
    );
    assert_eq!(
        reply.header("vary"),
        Some("trpc-accept, accept"),
        "{reply:?}"
    );
}

/// Asserts a single call's success carrying exactly `data`.
fn assert_success(reply: &Reply, data: Value) {
    assert_json_reply(reply, 200);
    assert_eq!(reply.body, result_element(data), "{reply:?}");
}

/// Asserts a single call's error envelope, whole and exact but for the message; returns it.
fn assert_error(reply: &Reply, key: &str, path: &str) -> String {
    assert_json_reply(reply, wire_code(key).1);
    let message = reply.error_message().to_owned();
    assert!(!message.is_empty(), "an error has a message: {reply:?}");
    assert_eq!(
        reply.body,
        error_element(key, &message, Some(path)),
        "{reply:?}"
    );
    message
}

/// Asserts a whole-request failure: one error object without a path, sent as text/plain.
fn assert_whole_request_error(reply: &Reply, key: &str, message: &str) {
    assert_eq!(reply.status, wire_code(key).1, "{reply:?}");
    assert_eq!(
        reply.header("content-type"),
        Some("text/plain;charset=UTF-8"),
        "{reply:?}"
    );
    assert_eq!(
        reply.header("vary"),
        Some("trpc-accept, accept"),
        "{reply:?}"
    );
    assert_eq!(reply.body, error_element(key, message, None), "{reply:?}");
}

/// `?input=` with `value` encoded as `encodeURIComponent` does.
fn input(value: &str) -> String {
    format!("?input={}", encode_component(value))
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

/// `ids` newest first, as lists show them.
fn newest_first(ids: &[String]) -> Vec<String> {
    ids.iter().rev().cloned().collect()
}

async fn unread_count(client: &Client) -> Value {
    let reply = client.query("notifications.unreadCount", Value::Null).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    reply.data()["count"].clone()
}

// ── 1. URL and method ─────────────────────────────────────────────────────────────────────

#[tokio::test]
async fn a_query_by_get_with_an_enveloped_input_returns_the_result() {
    each_backend(|app| async move {
        let ann = app.user("ann").await;
        let created = app.notify("ann", 4).await;
        let reply = ann
            .get(&format!(
                "/api/trpc/notifications.list{}",
                input(r#"{"json":{"limit":2}}"#)
            ))
            .await;
        assert_json_reply(&reply, 200);
        let page = reply.data();
        assert_eq!(ids(page), newest_first(&created)[..2]);
        assert!(page["nextCursor"].is_string(), "{page}");
        assert_eq!(page["hasMore"], json!(true));
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn the_last_page_has_a_null_cursor_and_no_more() {
    each_backend(|app| async move {
        let ann = app.user("ann").await;
        let created = app.notify("ann", 4).await;
        let first = ann.query("notifications.list", json!({"limit": 2})).await;
        let cursor = first.data()["nextCursor"].clone();
        let reply = ann
            .get(&format!(
                "/api/trpc/notifications.list{}",
                input(&json!({"json": {"limit": 2, "cursor": cursor}}).to_string())
            ))
            .await;
        assert_json_reply(&reply, 200);
        let page = reply.data();
        assert_eq!(ids(page), newest_first(&created)[2..]);
        assert_eq!(page["nextCursor"], Value::Null);
        assert_eq!(page["hasMore"], json!(false));
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_query_without_any_input_parameter_has_no_input() {
    each_backend(|app| async move {
        let ann = app.user("ann").await;
        app.notify("ann", 4).await;
        let reply = ann.get("/api/trpc/notifications.unreadCount").await;
        assert_success(&reply, json!({"count": 4}));
        let list = ann.get("/api/trpc/notifications.list").await;
        assert_json_reply(&list, 200);
        assert_eq!(ids(list.data()).len(), 4);
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn the_clients_undefined_envelope_means_no_input() {
    each_backend(|app| async move {
        let ann = app.user("ann").await;
        let created = app.notify("ann", 3).await;
        for envelope in [NO_INPUT, r#"{"json":null}"#] {
            let count = ann
                .get(&format!(
                    "/api/trpc/notifications.unreadCount{}",
                    input(envelope)
                ))
                .await;
            assert_success(&count, json!({"count": 3}));
            let list = ann
                .get(&format!("/api/trpc/notifications.list{}", input(envelope)))
                .await;
            assert_json_reply(&list, 200);
            assert_eq!(ids(list.data()), newest_first(&created));
            assert_eq!(list.data()["hasMore"], json!(false));
        }
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_list_of_unread_only_takes_the_default_limit() {
    each_backend(|app| async move {
        let ann = app.user("ann").await;
        let created = app.notify("ann", 4).await;
        let read = ann
            .mutate("notifications.markAsRead", json!({"id": created[1]}))
            .await;
        assert_eq!(read.status, 200, "{read:?}");
        let reply = ann
            .get(&format!(
                "/api/trpc/notifications.list{}",
                input(r#"{"json":{"unreadOnly":true}}"#)
            ))
            .await;
        assert_json_reply(&reply, 200);
        let want: Vec<String> = newest_first(&created)
            .into_iter()
            .filter(|id| *id != created[1])
            .collect();
        assert_eq!(ids(reply.data()), want);
        assert_eq!(reply.data()["nextCursor"], Value::Null);
        assert_eq!(reply.data()["hasMore"], json!(false));
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_null_cursor_marked_undefined_reads_as_no_cursor() {
    each_backend(|app| async move {
        let ann = app.user("ann").await;
        let created = app.notify("ann", 3).await;
        let envelope = r#"{"json":{"limit":1,"cursor":null},"meta":{"values":{"cursor":["undefined"]},"v":1}}"#;
        let reply = ann
            .get(&format!("/api/trpc/notifications.list{}", input(envelope)))
            .await;
        assert_json_reply(&reply, 200);
        assert_eq!(ids(reply.data()), [created[2].clone()]);
        assert_eq!(reply.data()["hasMore"], json!(true));
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn null_optional_fields_read_as_absent() {
    each_backend(|app| async move {
        let ann = app.user("ann").await;
        let created = app.notify("ann", 3).await;
        let reply = ann
            .query(
                "notifications.list",
                json!({"unreadOnly": null, "limit": null, "cursor": null, "status": null}),
            )
            .await;
        assert_json_reply(&reply, 200);
        assert_eq!(ids(reply.data()), newest_first(&created));
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn an_input_without_the_envelope_is_taken_as_the_input_itself() {
    each_backend(|app| async move {
        let ann = app.user("ann").await;
        let created = app.notify("ann", 3).await;
        let reply = ann
            .get(&format!(
                "/api/trpc/notifications.list{}",
                input(r#"{"limit":1}"#)
            ))
            .await;
        assert_json_reply(&reply, 200);
        assert_eq!(ids(reply.data()), [created[2].clone()]);
        assert_eq!(reply.data()["hasMore"], json!(true));
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn the_seeds_example_list_url_is_understood_as_written() {
    each_backend(|app| async move {
        let ann = app.user("ann").await;
        let created = app.notify("ann", 25).await;
        for id in &created[20..] {
            let read = ann
                .mutate("notifications.markAsRead", json!({"id": id}))
                .await;
            assert_eq!(read.status, 200, "{read:?}");
        }
        let want: Vec<String> = newest_first(&created[..20]);
        // Literally the seed's curl URL: `:` and `,` left as they are.
        let literal = ann
            .get("/api/trpc/notifications.list?input=%7B%22unreadOnly%22:true,%22limit%22:20%7D")
            .await;
        assert_json_reply(&literal, 200);
        assert_eq!(ids(literal.data()), want);
        assert_eq!(literal.data()["nextCursor"], Value::Null);
        assert_eq!(literal.data()["hasMore"], json!(false));
        // The same input encoded as encodeURIComponent would.
        let encoded = ann
            .get(&format!(
                "/api/trpc/notifications.list{}",
                input(r#"{"unreadOnly":true,"limit":20}"#)
            ))
            .await;
        assert_eq!(encoded.body, literal.body);
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_mutation_by_post_with_an_enveloped_body_returns_the_result() {
    each_backend(|app| async move {
        let ann = app.user("ann").await;
        let created = app.notify("ann", 1).await;
        let reply = ann
            .post(
                "/api/trpc/notifications.markAsRead",
                Some("application/json"),
                &json!({"json": {"id": created[0]}}).to_string(),
            )
            .await;
        assert_success(&reply, json!({"success": true}));
        assert_eq!(unread_count(&ann).await, json!(0));
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn update_preferences_answers_with_the_changed_entry() {
    each_backend(|app| async move {
        let ann = app.user("ann").await;
        let reply = ann
            .post(
                "/api/trpc/notifications.updatePreferences",
                Some("application/json"),
                r#"{"json":{"channel":"push","type":"mentions","enabled":false}}"#,
            )
            .await;
        assert_success(
            &reply,
            json!({"success": true, "preferences": {"push": {"mentions": false}}}),
        );
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn disable_all_email_accepts_an_empty_object() {
    each_backend(|app| async move {
        let ann = app.user("ann").await;
        let reply = ann
            .post(
                "/api/trpc/notifications.disableAllEmail",
                Some("application/json"),
                r#"{"json":{}}"#,
            )
            .await;
        assert_success(
            &reply,
            json!({"success": true, "message": "All email notifications disabled"}),
        );
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_mutation_with_the_clients_undefined_envelope_has_no_input() {
    each_backend(|app| async move {
        let ann = app.user("ann").await;
        app.notify("ann", 3).await;
        let reply = ann
            .post(
                "/api/trpc/notifications.markAllAsRead",
                Some("application/json"),
                NO_INPUT,
            )
            .await;
        assert_success(&reply, json!({"success": true, "count": 3}));
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_mutation_with_an_empty_body_has_no_input() {
    each_backend(|app| async move {
        let ann = app.user("ann").await;
        app.notify("ann", 2).await;
        let disable = ann
            .post(
                "/api/trpc/notifications.disableAllEmail",
                Some("application/json"),
                "",
            )
            .await;
        assert_success(
            &disable,
            json!({"success": true, "message": "All email notifications disabled"}),
        );
        let mark = ann
            .post(
                "/api/trpc/notifications.markAllAsRead",
                Some("application/json"),
                "",
            )
            .await;
        assert_success(&mark, json!({"success": true, "count": 2}));
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn an_empty_body_for_a_procedure_that_needs_input_is_a_bad_request() {
    each_backend(|app| async move {
        let ann = app.user("ann").await;
        let reply = ann
            .post(
                "/api/trpc/notifications.markAsRead",
                Some("application/json"),
                "",
            )
            .await;
        let message = assert_error(&reply, "BAD_REQUEST", "notifications.markAsRead");
        assert!(message.contains("id"), "{message}");
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn delete_by_post_removes_the_notification() {
    each_backend(|app| async move {
        let ann = app.user("ann").await;
        let created = app.notify("ann", 2).await;
        let reply = ann
            .post(
                "/api/trpc/notifications.delete",
                Some("application/json"),
                &json!({"json": {"id": created[0]}}).to_string(),
            )
            .await;
        assert_success(&reply, json!({"success": true}));
        let list = ann.query("notifications.list", Value::Null).await;
        assert_eq!(ids(list.data()), [created[1].clone()]);
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_json_content_type_with_parameters_is_accepted() {
    each_backend(|app| async move {
        let ann = app.user("ann").await;
        let reply = ann
            .post(
                "/api/trpc/notifications.markAllAsRead",
                Some("application/json; charset=utf-8"),
                r#"{"json":{}}"#,
            )
            .await;
        assert_success(&reply, json!({"success": true, "count": 0}));
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_trailing_slash_after_the_procedure_is_accepted() {
    each_backend(|app| async move {
        let ann = app.user("ann").await;
        app.notify("ann", 1).await;
        let reply = ann.get("/api/trpc/notifications.unreadCount/").await;
        assert_success(&reply, json!({"count": 1}));
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn head_answers_no_content_with_an_empty_body() {
    each_backend(|app| async move {
        let ann = app.user("ann").await;
        let reply = ann
            .method(Method::HEAD, "/api/trpc/notifications.unreadCount")
            .await;
        assert_eq!(reply.status, 204, "{reply:?}");
        assert_eq!(reply.text, "");
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn the_session_cookie_is_found_among_other_cookies() {
    each_backend(|app| async move {
        let ann = app.user("ann").await;
        app.notify("ann", 2).await;
        let token = ann.cookie.clone().expect("a signed-in client");
        let anonymous = app.anonymous();
        let request = reqwest::Client::new()
            .get(format!("{}/api/trpc/notifications.unreadCount", app.base))
            .header("cookie", format!("foo=1; tidings_session={token}; bar=2"));
        let reply = anonymous.send(request).await;
        assert_success(&reply, json!({"count": 2}));
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn the_reference_servers_cookie_name_is_not_a_session() {
    each_backend(|app| async move {
        let ann = app.user("ann").await;
        let token = ann.cookie.clone().expect("a signed-in client");
        let request = reqwest::Client::new()
            .get(format!("{}/api/trpc/notifications.unreadCount", app.base))
            .header("cookie", format!("session={token}"));
        let reply = app.anonymous().send(request).await;
        assert_error(&reply, "UNAUTHORIZED", "notifications.unreadCount");
        app.stop().await;
    })
    .await;
}

// ── 3. Batching ───────────────────────────────────────────────────────────────────────────

#[tokio::test]
async fn a_batch_of_queries_answers_an_array_in_path_order() {
    each_backend(|app| async move {
        let ann = app.user("ann").await;
        let created = app.notify("ann", 2).await;
        let batch = format!(r#"{{"0":{NO_INPUT},"1":{{"json":{{"limit":1}}}}}}"#);
        let reply = ann
            .get(&format!(
                "/api/trpc/notifications.unreadCount,notifications.list?batch=1&{}",
                &input(&batch)[1..]
            ))
            .await;
        assert_json_reply(&reply, 200);
        let items = reply.body.as_array().expect("an array");
        assert_eq!(items.len(), 2, "{reply:?}");
        assert_eq!(items[0], result_element(json!({"count": 2})));
        let page = &items[1]["result"]["data"]["json"];
        assert_eq!(ids(page), [created[1].clone()]);
        assert!(page["nextCursor"].is_string(), "{page}");
        assert_eq!(page["hasMore"], json!(true));
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn an_index_missing_from_the_batch_input_has_no_input() {
    each_backend(|app| async move {
        let ann = app.user("ann").await;
        app.notify("ann", 2).await;
        let reply = ann
            .get("/api/trpc/notifications.unreadCount,notifications.list?batch=1&input=%7B%7D")
            .await;
        assert_json_reply(&reply, 200);
        let items = reply.body.as_array().expect("an array");
        assert_eq!(items.len(), 2, "{reply:?}");
        assert_eq!(items[0], result_element(json!({"count": 2})));
        assert_eq!(ids(&items[1]["result"]["data"]["json"]).len(), 2);
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_lone_call_sent_as_a_batch_answers_an_array_of_one() {
    each_backend(|app| async move {
        let ann = app.user("ann").await;
        app.notify("ann", 1).await;
        let batch = format!(r#"{{"0":{NO_INPUT}}}"#);
        let reply = ann
            .get(&format!(
                "/api/trpc/notifications.unreadCount?batch=1&{}",
                &input(&batch)[1..]
            ))
            .await;
        assert_json_reply(&reply, 200);
        assert_eq!(reply.body, json!([result_element(json!({"count": 1}))]));
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_batch_with_a_success_and_a_failure_is_multi_status() {
    each_backend(|app| async move {
        let ann = app.user("ann").await;
        let reply = ann
            .get(&format!(
                "/api/trpc/notifications.unreadCount,notifications.list?batch=1&{}",
                &input(r#"{"1":{"json":{"limit":0}}}"#)[1..]
            ))
            .await;
        assert_json_reply(&reply, 207);
        let items = reply.body.as_array().expect("an array");
        assert_eq!(items.len(), 2, "{reply:?}");
        assert_eq!(items[0], result_element(json!({"count": 0})));
        let message = items[1]["error"]["json"]["message"]
            .as_str()
            .expect("a message");
        assert!(message.contains("limit"), "{message}");
        assert_eq!(
            items[1],
            error_element("BAD_REQUEST", message, Some("notifications.list"))
        );
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_batch_of_mutations_runs_each_with_its_own_input() {
    each_backend(|app| async move {
        let ann = app.user("ann").await;
        let created = app.notify("ann", 3).await;
        let body = json!({"0": {"json": {"id": created[0]}}, "1": {"json": {"id": created[2]}}});
        let reply = ann
            .post(
                "/api/trpc/notifications.markAsRead,notifications.markAsRead?batch=1",
                Some("application/json"),
                &body.to_string(),
            )
            .await;
        assert_json_reply(&reply, 200);
        let success = result_element(json!({"success": true}));
        assert_eq!(reply.body, json!([success, success]));
        assert_eq!(unread_count(&ann).await, json!(1));
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_batch_of_mutations_with_one_not_found_is_multi_status() {
    each_backend(|app| async move {
        let ann = app.user("ann").await;
        let created = app.notify("ann", 1).await;
        let body = json!({"0": {"json": {"id": created[0]}}, "1": {"json": {"id": UNKNOWN_ID}}});
        let reply = ann
            .post(
                "/api/trpc/notifications.markAsRead,notifications.delete?batch=1",
                Some("application/json"),
                &body.to_string(),
            )
            .await;
        assert_json_reply(&reply, 207);
        assert_eq!(
            reply.body,
            json!([
                result_element(json!({"success": true})),
                error_element(
                    "NOT_FOUND",
                    "Notification not found",
                    Some("notifications.delete")
                ),
            ])
        );
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_batch_whose_calls_all_fail_alike_takes_their_status() {
    each_backend(|app| async move {
        let reply = app
            .anonymous()
            .get("/api/trpc/notifications.unreadCount,notifications.list?batch=1&input=%7B%7D")
            .await;
        assert_json_reply(&reply, 401);
        assert_eq!(
            reply.body,
            json!([
                error_element(
                    "UNAUTHORIZED",
                    "Not authenticated",
                    Some("notifications.unreadCount")
                ),
                error_element(
                    "UNAUTHORIZED",
                    "Not authenticated",
                    Some("notifications.list")
                ),
            ])
        );
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn mixing_queries_and_mutations_in_a_batch_fails_the_whole_request() {
    each_backend(|app| async move {
        let ann = app.user("ann").await;
        let created = app.notify("ann", 1).await;
        let reply = ann
            .post(
                "/api/trpc/notifications.unreadCount,notifications.markAsRead?batch=1",
                Some("application/json"),
                &json!({"1": {"json": {"id": created[0]}}}).to_string(),
            )
            .await;
        assert_whole_request_error(
            &reply,
            "BAD_REQUEST",
            "Cannot mix procedure types in call: query, mutation",
        );
        // Nothing ran.
        assert_eq!(unread_count(&ann).await, json!(1));
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn an_unknown_procedure_in_a_batch_fails_only_its_own_call() {
    each_backend(|app| async move {
        let ann = app.user("ann").await;
        let reply = ann
            .get("/api/trpc/notifications.unreadCount,notifications.nope?batch=1&input=%7B%7D")
            .await;
        assert_json_reply(&reply, 207);
        assert_eq!(
            reply.body,
            json!([
                result_element(json!({"count": 0})),
                error_element(
                    "NOT_FOUND",
                    "No procedure found on path \"notifications.nope\"",
                    Some("notifications.nope")
                ),
            ])
        );
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_batch_input_that_is_not_an_object_fails_the_call_reading_it() {
    each_backend(|app| async move {
        let ann = app.user("ann").await;
        let reply = ann
            .get("/api/trpc/notifications.list?batch=1&input=%22x%22")
            .await;
        assert_json_reply(&reply, 400);
        assert_eq!(
            reply.body,
            json!([error_element(
                "BAD_REQUEST",
                "\"input\" needs to be an object when doing a batch call",
                Some("notifications.list")
            )])
        );
        app.stop().await;
    })
    .await;
}

// ── 4–5. Errors ───────────────────────────────────────────────────────────────────────────

#[tokio::test]
async fn an_unknown_notification_id_is_not_found() {
    each_backend(|app| async move {
        let ann = app.user("ann").await;
        let reply = ann
            .mutate("notifications.markAsRead", json!({"id": UNKNOWN_ID}))
            .await;
        let message = assert_error(&reply, "NOT_FOUND", "notifications.markAsRead");
        assert_eq!(message, "Notification not found");
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn another_users_notification_is_forbidden() {
    each_backend(|app| async move {
        app.user("ann").await;
        let bob = app.user("bob").await;
        let created = app.notify("ann", 1).await;
        for procedure in ["notifications.markAsRead", "notifications.delete"] {
            let reply = bob.mutate(procedure, json!({"id": created[0]})).await;
            let message = assert_error(&reply, "FORBIDDEN", procedure);
            assert_eq!(message, "Not your notification");
        }
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_limit_below_one_is_a_bad_request_naming_limit() {
    each_backend(|app| async move {
        let ann = app.user("ann").await;
        let reply = ann.query("notifications.list", json!({"limit": 0})).await;
        let message = assert_error(&reply, "BAD_REQUEST", "notifications.list");
        assert!(message.contains("limit"), "{message}");
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_missing_id_is_a_bad_request_naming_id() {
    each_backend(|app| async move {
        let ann = app.user("ann").await;
        let reply = ann.mutate("notifications.markAsRead", json!({})).await;
        let message = assert_error(&reply, "BAD_REQUEST", "notifications.markAsRead");
        assert!(message.contains("id"), "{message}");
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn an_unknown_channel_is_a_bad_request_naming_channel() {
    each_backend(|app| async move {
        let ann = app.user("ann").await;
        let reply = ann
            .mutate(
                "notifications.updatePreferences",
                json!({"channel": "sms", "type": "mentions", "enabled": true}),
            )
            .await;
        let message = assert_error(&reply, "BAD_REQUEST", "notifications.updatePreferences");
        assert!(message.contains("channel"), "{message}");
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn no_cookie_is_unauthorized() {
    each_backend(|app| async move {
        let reply = app
            .anonymous()
            .get("/api/trpc/notifications.unreadCount")
            .await;
        let message = assert_error(&reply, "UNAUTHORIZED", "notifications.unreadCount");
        assert_eq!(message, "Not authenticated");
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn an_unknown_session_token_is_unauthorized() {
    each_backend(|app| async move {
        let mut bogus = app.anonymous();
        bogus.cookie = Some("bogus".to_owned());
        let reply = bogus.mutate("notifications.markAllAsRead", json!({})).await;
        let message = assert_error(&reply, "UNAUTHORIZED", "notifications.markAllAsRead");
        assert_eq!(message, "Not authenticated");
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_query_sent_as_post_is_not_supported_and_allows_get() {
    each_backend(|app| async move {
        let ann = app.user("ann").await;
        let reply = ann
            .post(
                "/api/trpc/notifications.unreadCount",
                Some("application/json"),
                r#"{"json":null}"#,
            )
            .await;
        let message = assert_error(&reply, "METHOD_NOT_SUPPORTED", "notifications.unreadCount");
        assert_eq!(
            message,
            "Unsupported POST-request to query procedure at path \"notifications.unreadCount\""
        );
        assert_eq!(reply.header("allow"), Some("GET"));
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_mutation_sent_as_get_is_not_supported_and_allows_post() {
    each_backend(|app| async move {
        let ann = app.user("ann").await;
        let created = app.notify("ann", 1).await;
        let reply = ann
            .get(&format!(
                "/api/trpc/notifications.markAsRead{}",
                input(&json!({"json": {"id": created[0]}}).to_string())
            ))
            .await;
        let message = assert_error(&reply, "METHOD_NOT_SUPPORTED", "notifications.markAsRead");
        assert_eq!(
            message,
            "Unsupported GET-request to mutation procedure at path \"notifications.markAsRead\""
        );
        assert_eq!(reply.header("allow"), Some("POST"));
        assert_eq!(unread_count(&ann).await, json!(1), "nothing was marked");
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn an_unknown_procedure_is_not_found_by_get_and_by_post() {
    each_backend(|app| async move {
        let ann = app.user("ann").await;
        let by_get = ann.get("/api/trpc/notifications.nope").await;
        let by_post = ann
            .post(
                "/api/trpc/notifications.nope",
                Some("application/json"),
                r#"{"json":{}}"#,
            )
            .await;
        for reply in [by_get, by_post] {
            let message = assert_error(&reply, "NOT_FOUND", "notifications.nope");
            assert_eq!(message, "No procedure found on path \"notifications.nope\"");
        }
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn malformed_json_in_the_query_input_is_a_bad_request_not_a_parse_error() {
    each_backend(|app| async move {
        let ann = app.user("ann").await;
        let reply = ann
            .get("/api/trpc/notifications.list?input=%7Bnot%20json")
            .await;
        assert_error(&reply, "BAD_REQUEST", "notifications.list");
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn malformed_json_in_the_body_is_a_bad_request_not_a_parse_error() {
    each_backend(|app| async move {
        let ann = app.user("ann").await;
        let reply = ann
            .post(
                "/api/trpc/notifications.markAsRead",
                Some("application/json"),
                r#"{"json":"#,
            )
            .await;
        assert_error(&reply, "BAD_REQUEST", "notifications.markAsRead");
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_post_without_a_content_type_is_unsupported_media() {
    each_backend(|app| async move {
        let ann = app.user("ann").await;
        app.notify("ann", 1).await;
        let reply = ann
            .post(
                "/api/trpc/notifications.markAllAsRead",
                None,
                r#"{"json":{}}"#,
            )
            .await;
        assert_whole_request_error(
            &reply,
            "UNSUPPORTED_MEDIA_TYPE",
            "Missing content-type header",
        );
        assert_eq!(unread_count(&ann).await, json!(1), "nothing was marked");
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_post_with_a_text_content_type_is_unsupported_media() {
    each_backend(|app| async move {
        let ann = app.user("ann").await;
        app.notify("ann", 1).await;
        let reply = ann
            .post(
                "/api/trpc/notifications.markAllAsRead",
                Some("text/plain"),
                r#"{"json":{}}"#,
            )
            .await;
        // The reference's message, its missing closing quote included.
        assert_whole_request_error(
            &reply,
            "UNSUPPORTED_MEDIA_TYPE",
            "Unsupported content-type \"text/plain",
        );
        assert_eq!(unread_count(&ann).await, json!(1), "nothing was marked");
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn an_empty_procedure_path_is_not_found_with_an_empty_path() {
    each_backend(|app| async move {
        let ann = app.user("ann").await;
        let reply = ann.get("/api/trpc").await;
        let message = assert_error(&reply, "NOT_FOUND", "");
        assert_eq!(message, "No procedure found on path \"\"");
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn malformed_input_on_a_procedure_without_input_is_never_parsed() {
    each_backend(|app| async move {
        let ann = app.user("ann").await;
        app.notify("ann", 2).await;
        let reply = ann
            .get("/api/trpc/notifications.unreadCount?input=%7Bbad")
            .await;
        assert_success(&reply, json!({"count": 2}));
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_body_over_one_mebibyte_is_too_large() {
    each_backend(|app| async move {
        let ann = app.user("ann").await;
        let id = "x".repeat(MIB);
        let body = json!({"json": {"id": id}}).to_string();
        assert!(body.len() > MIB);
        let reply = ann
            .post(
                "/api/trpc/notifications.markAsRead",
                Some("application/json"),
                &body,
            )
            .await;
        let message = reply.error_message().to_owned();
        assert!(!message.is_empty(), "{reply:?}");
        assert_whole_request_error(&reply, "PAYLOAD_TOO_LARGE", &message);
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_body_of_exactly_one_mebibyte_is_read() {
    each_backend(|app| async move {
        let ann = app.user("ann").await;
        let frame = json!({"json": {"id": ""}}).to_string().len();
        let body = json!({"json": {"id": "x".repeat(MIB - frame)}}).to_string();
        assert_eq!(body.len(), MIB);
        let reply = ann
            .post(
                "/api/trpc/notifications.markAsRead",
                Some("application/json"),
                &body,
            )
            .await;
        // Read and validated: the id is no UUID.
        let message = assert_error(&reply, "BAD_REQUEST", "notifications.markAsRead");
        assert!(
            message.starts_with("id"),
            "{}",
            &message[..80.min(message.len())]
        );
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn every_error_code_is_a_number() {
    each_backend(|app| async move {
        let ann = app.user("ann").await;
        let anonymous = app.anonymous();
        let replies = [
            ann.get("/api/trpc/notifications.nope").await,
            ann.query("notifications.list", json!({"limit": 0})).await,
            anonymous.get("/api/trpc/notifications.list").await,
            ann.get("/api/trpc/notifications.markAsRead").await,
            ann.post("/api/trpc/notifications.markAsRead", None, "{}")
                .await,
            ann.mutate("notifications.delete", json!({"id": UNKNOWN_ID}))
                .await,
            app.service()
                .query("notifications.unreadCount", Value::Null)
                .await,
        ];
        for reply in replies {
            let code = &reply.body["error"]["json"]["code"];
            assert!(code.is_i64(), "code {code} is not a number: {reply:?}");
            assert_eq!(
                reply.body["error"]["json"]["data"]["httpStatus"],
                json!(reply.status)
            );
        }
        app.stop().await;
    })
    .await;
}

// ── Precedence ────────────────────────────────────────────────────────────────────────────

#[tokio::test]
async fn an_unknown_procedure_is_not_found_before_authentication() {
    each_backend(|app| async move {
        let reply = app.anonymous().get("/api/trpc/notifications.nope").await;
        assert_error(&reply, "NOT_FOUND", "notifications.nope");
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_wrong_method_is_decided_before_authentication() {
    each_backend(|app| async move {
        let anonymous = app.anonymous();
        let get = anonymous.get("/api/trpc/notifications.markAsRead").await;
        assert_error(&get, "METHOD_NOT_SUPPORTED", "notifications.markAsRead");
        assert_eq!(get.header("allow"), Some("POST"));
        let post = anonymous
            .post(
                "/api/trpc/notifications.unreadCount",
                Some("application/json"),
                r#"{"json":null}"#,
            )
            .await;
        assert_error(&post, "METHOD_NOT_SUPPORTED", "notifications.unreadCount");
        assert_eq!(post.header("allow"), Some("GET"));
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn authentication_is_decided_before_validation() {
    each_backend(|app| async move {
        let anonymous = app.anonymous();
        let invalid = anonymous
            .query("notifications.list", json!({"limit": 0}))
            .await;
        assert_error(&invalid, "UNAUTHORIZED", "notifications.list");
        let missing_id = anonymous
            .mutate("notifications.markAsRead", json!({}))
            .await;
        assert_error(&missing_id, "UNAUTHORIZED", "notifications.markAsRead");
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn authentication_is_decided_before_parsing_the_input() {
    each_backend(|app| async move {
        let anonymous = app.anonymous();
        let query = anonymous
            .get("/api/trpc/notifications.list?input=%7Bbad")
            .await;
        assert_error(&query, "UNAUTHORIZED", "notifications.list");
        let body = anonymous
            .post(
                "/api/trpc/notifications.markAsRead",
                Some("application/json"),
                r#"{"json":"#,
            )
            .await;
        assert_error(&body, "UNAUTHORIZED", "notifications.markAsRead");
        app.stop().await;
    })
    .await;
}

// ── CSRF (SPEC.md §2) ─────────────────────────────────────────────────────────────────────

#[tokio::test]
async fn a_cookie_mutation_from_a_foreign_origin_is_forbidden() {
    each_backend(|app| async move {
        let ann = app.user("ann").await;
        app.notify("ann", 1).await;
        let token = ann.cookie.clone().expect("a signed-in client");
        let request = reqwest::Client::new()
            .post(format!("{}/api/trpc/notifications.markAllAsRead", app.base))
            .header("cookie", format!("tidings_session={token}"))
            .header("origin", "https://evil.example")
            .header("content-type", "application/json")
            .body(r#"{"json":{}}"#);
        let reply = app.anonymous().send(request).await;
        assert_error(&reply, "FORBIDDEN", "notifications.markAllAsRead");
        assert_eq!(unread_count(&ann).await, json!(1), "nothing was marked");
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_cookie_mutation_from_the_servers_own_origin_is_allowed() {
    each_backend(|app| async move {
        let ann = app.user("ann").await;
        app.notify("ann", 1).await;
        let token = ann.cookie.clone().expect("a signed-in client");
        let request = reqwest::Client::new()
            .post(format!("{}/api/trpc/notifications.markAllAsRead", app.base))
            .header("cookie", format!("tidings_session={token}"))
            .header("origin", app.base.as_str())
            .header("content-type", "application/json")
            .body(r#"{"json":{}}"#);
        let reply = app.anonymous().send(request).await;
        assert_success(&reply, json!({"success": true, "count": 1}));
        app.stop().await;
    })
    .await;
}
