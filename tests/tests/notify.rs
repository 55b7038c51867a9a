//! `notifications.notify`: recipients, templates, preferences, idempotency and who may call it.

use serde_json::{Value, json};
use tidings_tests::{Client, TestApp, each_backend};

async fn inbox_titles(user: &Client) -> Vec<String> {
    let reply = user
        .query("notifications.list", json!({"limit": 100}))
        .await;
    reply.data()["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["title"].as_str().unwrap().to_owned())
        .collect()
}

async fn users(app: &TestApp, names: &[&str]) -> Vec<Client> {
    let mut clients = Vec::new();
    for name in names {
        clients.push(app.user(name).await);
    }
    clients
}

fn count(reply: &tidings_tests::Reply) -> u64 {
    reply.data()["usersNotified"]["count"]
        .as_u64()
        .unwrap_or_else(|| panic!("{reply:?}"))
}

#[tokio::test]
async fn user_ids_minus_exclusions_each_once_with_the_template_rendered() {
    each_backend(|app| async move {
        let clients = users(&app, &["ann", "bob", "cat"]).await;
        let reply = app
            .service()
            .mutate(
                "notifications.notify",
                json!({
                    "key": "ticketAssigned",
                    "recipients": {"userIds": ["ann", "bob", "bob", "cat"], "excludedUserIds": ["cat"]},
                    "data": [{"key": "ticketNumber", "value": "1234"}, {"key": "ticketTitle", "value": "Login fails"}],
                    "senderId": "zed",
                }),
            )
            .await;
        assert_eq!(count(&reply), 2);
        for (client, expected) in clients.iter().zip([1, 1, 0]) {
            assert_eq!(inbox_titles(client).await.len(), expected);
        }
        let item = &clients[0].query("notifications.list", Value::Null).await.data()["notifications"][0].clone();
        assert_eq!(item["type"], "ticketAssigned");
        assert_eq!(item["title"], "Ticket Assigned");
        assert_eq!(item["message"], "You've been assigned ticket #1234: Login fails");
        assert_eq!(item["data"], json!({"ticketNumber": "1234", "ticketTitle": "Login fails"}));
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn all_users_reaches_everyone_and_data_may_be_an_object() {
    each_backend(|app| async move {
        let clients = users(&app, &["ann", "bob"]).await;
        let reply = app
            .service()
            .mutate(
                "notifications.notify",
                json!({"key": "weeklyReport", "recipients": {"allUsers": true}, "data": {}}),
            )
            .await;
        // weeklyReport is off in the inbox by default but on by email: everyone with an address
        // is reached by email (ann, bob and the first admin), nobody gets an inbox item.
        assert_eq!(count(&reply), 3);
        assert!(inbox_titles(&clients[0]).await.is_empty());

        clients[1]
            .mutate(
                "notifications.updatePreferences",
                json!({"channel": "inApp", "type": "weeklyReport", "enabled": true}),
            )
            .await;
        app.service()
            .mutate(
                "notifications.notify",
                json!({"key": "weeklyReport", "recipients": {"allUsers": true}}),
            )
            .await;
        assert_eq!(inbox_titles(&clients[1]).await, ["Weekly Report"]);
        assert!(inbox_titles(&clients[0]).await.is_empty());
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn preferences_decide_each_channel_and_users_reached_by_none_are_not_counted() {
    each_backend(|app| async move {
        let ann = app.user("ann").await;
        app.user("bob").await;
        for channel in ["inApp", "email"] {
            let r = ann
                .mutate("notifications.updatePreferences", json!({"channel": channel, "type": "mentions", "enabled": false}))
                .await;
            assert_eq!(r.status, 200, "{r:?}");
        }
        let reply = app
            .service()
            .mutate(
                "notifications.notify",
                json!({"key": "mentions", "recipients": {"userIds": ["ann", "bob"]}, "data": {"author": "zed", "ticketNumber": 7}}),
            )
            .await;
        assert_eq!(count(&reply), 1, "ann turned mentions off everywhere (and has no push subscription)");
        assert!(inbox_titles(&ann).await.is_empty());
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_type_upsert_changes_templates_and_defaults() {
    each_backend(|app| async move {
        let ann = app.user("ann").await;
        let service = app.service();
        let upserted = service
            .mutate(
                "notificationTypes.upsert",
                json!({"key": "WELCOME_NOTIFICATION", "description": "Sent on sign-up",
                       "titleTemplate": "Welcome, {{ name }}!", "messageTemplate": "Glad you joined {{ product }}.",
                       "channels": {"inApp": true, "email": false}}),
            )
            .await;
        assert_eq!(
            upserted.data(),
            &json!({"key": "WELCOME_NOTIFICATION", "description": "Sent on sign-up",
                    "titleTemplate": "Welcome, {{ name }}!", "messageTemplate": "Glad you joined {{ product }}.",
                    "channels": {"email": false, "inApp": true}, "required": false})
        );
        let prefs = ann.query("notifications.getPreferences", Value::Null).await;
        assert_eq!(prefs.data()["email"]["WELCOME_NOTIFICATION"], false);
        assert_eq!(prefs.data()["inApp"]["WELCOME_NOTIFICATION"], true);
        assert!(prefs.data()["push"].get("WELCOME_NOTIFICATION").is_none());

        let sent = service
            .mutate(
                "notifications.notify",
                json!({"key": "WELCOME_NOTIFICATION", "recipients": {"userIds": ["ann"]},
                       "data": [{"key": "name", "value": "Ann"}, {"key": "product", "value": "Tidings"}]}),
            )
            .await;
        assert_eq!(count(&sent), 1);
        let item = ann.query("notifications.list", Value::Null).await.data()["notifications"][0].clone();
        assert_eq!((item["title"].as_str(), item["message"].as_str()), (Some("Welcome, Ann!"), Some("Glad you joined Tidings.")));

        // New defaults reach users who made no choice of their own.
        service
            .mutate(
                "notificationTypes.upsert",
                json!({"key": "WELCOME_NOTIFICATION", "titleTemplate": "Hi {{ name }}", "messageTemplate": "x",
                       "channels": {"inApp": false, "email": true, "push": true}}),
            )
            .await;
        let prefs = ann.query("notifications.getPreferences", Value::Null).await;
        assert_eq!(prefs.data()["email"]["WELCOME_NOTIFICATION"], true);
        assert_eq!(prefs.data()["inApp"]["WELCOME_NOTIFICATION"], false);
        assert_eq!(prefs.data()["push"]["WELCOME_NOTIFICATION"], true);
        let listed = service.query("notificationTypes.list", Value::Null).await;
        let keys: Vec<&str> = listed.data()["types"].as_array().unwrap().iter().map(|t| t["key"].as_str().unwrap()).collect();
        assert_eq!(keys.first(), Some(&"ticketCreated"));
        assert_eq!(keys.last(), Some(&"WELCOME_NOTIFICATION"));
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_missing_template_variable_is_named_and_nothing_is_sent() {
    each_backend(|app| async move {
        let ann = app.user("ann").await;
        let reply = app
            .service()
            .mutate(
                "notifications.notify",
                json!({"key": "ticketAssigned", "recipients": {"userIds": ["ann"]}, "data": [{"key": "ticketNumber", "value": "1"}]}),
            )
            .await;
        assert_eq!(reply.error_code(), "BAD_REQUEST");
        assert_eq!(reply.error_message(), "data: missing `ticketTitle` for the message template of ticketAssigned");
        assert!(inbox_titles(&ann).await.is_empty());
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn bad_inputs_are_refused_naming_the_field() {
    each_backend(|app| async move {
        app.user("ann").await;
        let service = app.service();
        let many: Vec<String> = (0..10_001).map(|i| format!("u{i}")).collect();
        let cases = [
            (json!({"key": "mentions", "recipients": {}}), "recipients: name at least one recipient: userIds, userGroups or allUsers"),
            (json!({"key": "mentions", "recipients": {"userIds": []}}), "recipients: name at least one recipient: userIds, userGroups or allUsers"),
            (json!({"key": "mentions", "recipients": {"allUsers": false}}), "recipients: name at least one recipient: userIds, userGroups or allUsers"),
            (json!({"key": "mentions", "recipients": {"userIds": many}}), "recipients.userIds: at most 10000 ids per call, got 10001; reach more users with userGroups or allUsers"),
            (json!({"key": "mentions", "recipients": {"userGroups": {"operator": "XOR", "userGroupIds": []}}}), "recipients.userGroups.operator: must be \"AND\" or \"OR\", got \"XOR\""),
            (json!({"key": "mentions", "recipients": {"userGroups": {"operator": "AND", "userGroupIds": ["nope"]}}}), "recipients.userGroups.userGroupIds[0]: must be a group id (UUID), got \"nope\""),
            (json!({"key": "mentions", "recipients": {"userGroups": {"operator": "OR", "userGroupIds": ["018f0000-0000-7000-8000-000000000000"]}}, "data": {"author": "a", "ticketNumber": 1}}), "recipients.userGroups.userGroupIds: unknown groups: 018f0000-0000-7000-8000-000000000000"),
            (json!({"key": "mentions", "recipients": {"userIds": ["ann", "ghost", "zz"]}, "data": {"author": "a", "ticketNumber": 1}}), "recipients.userIds: unknown users: ghost, zz"),
            (json!({"key": "nope", "recipients": {"allUsers": true}}), "key: unknown notification type \"nope\""),
            (json!({"recipients": {"allUsers": true}}), "key: is required"),
            (json!({"key": "mentions"}), "recipients: is required"),
            (json!({"key": "mentions", "recipients": {"allUsers": true}, "data": "x"}), "data: must be a list of {key, value} or an object"),
            (json!({"key": "mentions", "recipients": {"allUsers": true}, "data": [{"value": 1}]}), "data[0].key: must be a string"),
            (json!({"key": "mentions", "recipients": {"allUsers": true, "everyone": true}}), "recipients.everyone: unknown field `everyone`, expected one of `userIds`, `userGroups`, `excludedUserIds`, `allUsers`"),
        ];
        for (input, message) in cases {
            let reply = service.mutate("notifications.notify", input.clone()).await;
            assert_eq!((reply.error_code(), reply.error_message()), ("BAD_REQUEST", message), "{input}");
        }
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn an_idempotency_key_sends_once_and_refuses_other_input() {
    each_backend(|app| async move {
        let ann = app.user("ann").await;
        let service = app.service();
        let input = json!({"key": "slaBreach", "recipients": {"userIds": ["ann"]}, "data": {"ticketNumber": 9}, "idempotencyKey": "breach-9"});
        let first = service.mutate("notifications.notify", input.clone()).await;
        let again = service.mutate("notifications.notify", input).await;
        assert_eq!((count(&first), count(&again)), (1, 1));
        assert_eq!(inbox_titles(&ann).await.len(), 1, "the replay sent nothing");
        let reordered = json!({"idempotencyKey": "breach-9", "data": {"ticketNumber": 9}, "recipients": {"userIds": ["ann"]}, "key": "slaBreach"});
        assert_eq!(count(&service.mutate("notifications.notify", reordered).await), 1);
        let different = service
            .mutate(
                "notifications.notify",
                json!({"key": "slaBreach", "recipients": {"userIds": ["ann"]}, "data": {"ticketNumber": 10}, "idempotencyKey": "breach-9"}),
            )
            .await;
        assert_eq!(different.status, 409);
        assert_eq!(different.error_code(), "CONFLICT");
        assert_eq!(inbox_titles(&ann).await.len(), 1);
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn admins_reach_only_their_organization_and_users_may_not_notify() {
    each_backend(|app| async move {
        let boss = app.admin("boss", "acme").await;
        let ann = app.user_in("ann", "acme", "user").await;
        let rival = app.user_in("rival", "globex", "user").await;
        let everyone = boss
            .mutate("notifications.notify", json!({"key": "slaBreach", "recipients": {"allUsers": true}, "data": {"ticketNumber": 1}}))
            .await;
        assert_eq!(count(&everyone), 2, "boss and ann, not rival");
        assert_eq!(inbox_titles(&ann).await.len(), 1);
        assert!(inbox_titles(&rival).await.is_empty());
        let foreign = boss
            .mutate("notifications.notify", json!({"key": "slaBreach", "recipients": {"userIds": ["rival"]}, "data": {"ticketNumber": 1}}))
            .await;
        assert_eq!(foreign.error_message(), "recipients.userIds: unknown users: rival");
        let by_user = ann
            .mutate("notifications.notify", json!({"key": "slaBreach", "recipients": {"allUsers": true}, "data": {"ticketNumber": 1}}))
            .await;
        assert_eq!(by_user.error_code(), "FORBIDDEN");
        let service = app
            .service()
            .mutate("notifications.notify", json!({"key": "slaBreach", "recipients": {"allUsers": true}, "data": {"ticketNumber": 2}}))
            .await;
        assert_eq!(count(&service), 4, "a service key reaches every organization, the first admin's too");
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn concurrent_notifies_all_succeed_while_the_outbox_is_worked() {
    each_backend(|app| async move {
        let names: Vec<String> = (0..8).map(|i| format!("u{i}")).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let readers = users(&app, &refs).await;
        // Each call writes inbox rows and email deliveries the worker sends meanwhile; on
        // SQLite every write transaction must wait for the lock, never fail on it.
        let calls = (0..24).map(|i| {
            let service = app.service();
            let to = names[i % names.len()].clone();
            async move {
                service
                    .mutate(
                        "notifications.notify",
                        json!({"key": "slaBreach", "recipients": {"userIds": [to]},
                               "data": {"ticketNumber": i}}),
                    )
                    .await
            }
        });
        for reply in futures::future::join_all(calls).await {
            assert_eq!(reply.status, 200, "{reply:?}");
            assert_eq!(reply.data()["usersNotified"]["count"], 1, "{reply:?}");
        }
        let mut total = 0;
        for reader in &readers {
            total += inbox_titles(reader).await.len();
        }
        assert_eq!(total, 24);
        app.stop().await;
    })
    .await;
}
