//! The shortest path through Tidings: a user signs in and reads a notification a service sent.

use serde_json::json;
use tidings_tests::each_backend;

#[tokio::test]
async fn a_user_reads_what_a_service_sent() {
    each_backend(|app| async move {
        let ann = app.user("ann").await;
        let ids = app.notify("ann", 3).await;
        let reply = ann.query("notifications.list", json!({"limit": 2})).await;
        assert_eq!(reply.status, 200, "{reply:?}");
        let data = reply.data();
        let listed: Vec<&str> = data["notifications"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["id"].as_str().unwrap())
            .collect();
        assert_eq!(listed, [ids[2].as_str(), ids[1].as_str()]);
        assert_eq!(data["nextCursor"], json!(ids[1]));
        assert_eq!(data["hasMore"], json!(true));
        let count = ann
            .query("notifications.unreadCount", serde_json::Value::Null)
            .await;
        assert_eq!(count.data(), &json!({"count": 3}));
        app.stop().await;
    })
    .await;
}
