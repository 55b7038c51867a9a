//! User groups: created, listed with their member counts, and their members added and removed,
//! by admins within their organization and by services anywhere.

use serde_json::{Value, json};
use tidings_tests::{Client, Reply, TestApp, each_backend};

fn assert_error(reply: &Reply, code: &str, message: &str, context: &str) {
    assert_eq!(
        (reply.error_code(), reply.error_message()),
        (code, message),
        "{context}"
    );
}

/// Creates users without passwords through `users.upsertMany`, as the service.
async fn users_in(app: &TestApp, organization: &str, ids: &[&str]) {
    let users: Vec<Value> = ids
        .iter()
        .map(|id| json!({"id": id, "organizationId": organization}))
        .collect();
    let reply = app
        .service()
        .mutate("users.upsertMany", json!({ "users": users }))
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
}

async fn organization(app: &TestApp, id: &str) {
    let reply = app
        .service()
        .mutate("organizations.create", json!({"id": id, "name": id}))
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
}

/// The groups a client sees, as `(name, memberCount)`.
async fn counts(client: &Client, input: Value) -> Vec<(String, u64)> {
    let reply = client.query("groups.list", input).await;
    reply.data()["groups"]
        .as_array()
        .expect("a groups array")
        .iter()
        .map(|g| {
            (
                g["name"].as_str().unwrap().to_owned(),
                g["memberCount"].as_u64().unwrap(),
            )
        })
        .collect()
}

async fn create(client: &Client, input: Value) -> Value {
    let reply = client.mutate("groups.create", input).await;
    reply.data().clone()
}

#[tokio::test]
async fn groups_are_created_and_listed_with_their_member_counts() {
    each_backend(|app| async move {
        let boss = app.admin("boss", "acme").await;
        let rival = app.admin("rival", "globex").await;
        users_in(&app, "acme", &["ann", "bob", "cid"]).await;
        users_in(&app, "globex", &["gus"]).await;
        let service = app.service();

        let team = create(
            &service,
            json!({"name": " Support Team ", "organizationId": "acme", "userIds": ["ann", "bob", "ann"]}),
        )
        .await;
        let id = team["id"].as_str().unwrap();
        let uuid = uuid::Uuid::parse_str(id).expect("a UUID");
        assert_eq!(uuid.get_version_num(), 7);
        assert_eq!(
            team,
            json!({"id": id, "organizationId": "acme", "name": "Support Team", "memberCount": 2,
                   "createdAt": team["createdAt"]})
        );
        assert!(team["createdAt"].as_str().unwrap().ends_with('Z'));

        // An admin's groups go to its own organization; a service's to the one it names, or
        // the default one.
        let empty = create(&boss, json!({"name": "Empty"})).await;
        assert_eq!((&empty["organizationId"], &empty["memberCount"]), (&json!("acme"), &json!(0)));
        let own = create(&boss, json!({"name": "Own", "organizationId": "acme", "userIds": ["cid", "boss"]})).await;
        assert_eq!(own["memberCount"], 2);
        create(&rival, json!({"name": "Support Team", "userIds": ["gus"]})).await;
        let default = create(&service, json!({"name": "Everyone"})).await;
        assert_eq!(default["organizationId"], "default");

        let list = service.query("groups.list", Value::Null).await;
        let groups = list.data()["groups"].as_array().unwrap();
        assert_eq!(groups[0], team, "the list shows a group as create returned it");
        assert_eq!(
            counts(&service, Value::Null).await,
            [
                ("Support Team".to_owned(), 2),
                ("Empty".to_owned(), 0),
                ("Own".to_owned(), 2),
                ("Support Team".to_owned(), 1),
                ("Everyone".to_owned(), 0),
            ],
            "every group, oldest first"
        );
        assert_eq!(
            counts(&service, json!({"organizationId": "globex"})).await,
            [("Support Team".to_owned(), 1)]
        );
        assert_eq!(counts(&service, json!({"organizationId": "nowhere"})).await, []);
        let mine = counts(&boss, json!({})).await;
        assert_eq!(mine.len(), 3);
        assert_eq!(counts(&boss, json!({"organizationId": "acme"})).await, mine);
        assert_eq!(counts(&rival, Value::Null).await, [("Support Team".to_owned(), 1)]);
        let reply = boss
            .query("groups.list", json!({"organizationId": "globex"}))
            .await;
        assert_eq!(reply.status, 403);
        assert_error(
            &reply,
            "FORBIDDEN",
            "organizationId: admins can only manage their own organization",
            "another organization's groups",
        );

        let reply = boss.mutate("groups.create", json!({"name": "Own"})).await;
        assert_eq!(reply.status, 409);
        assert_error(
            &reply,
            "CONFLICT",
            "name: a group named \"Own\" already exists in organization acme",
            "duplicate name",
        );
        let reply = service
            .mutate("groups.create", json!({"name": "Support Team", "organizationId": "globex"}))
            .await;
        assert_eq!(reply.error_code(), "CONFLICT");
        assert_eq!(counts(&service, Value::Null).await.len(), 5);

        let dan = app.user("dan").await;
        for (procedure, query) in [("groups.create", false), ("groups.list", true)] {
            let input = json!({"name": "Mine"});
            let reply = if query {
                dan.query(procedure, Value::Null).await
            } else {
                dan.mutate(procedure, input.clone()).await
            };
            assert_eq!(reply.status, 403, "{procedure}");
            assert_error(&reply, "FORBIDDEN", "Requires the admin role", procedure);
            let anonymous = app.anonymous();
            let reply = if query {
                anonymous.query(procedure, Value::Null).await
            } else {
                anonymous.mutate(procedure, input).await
            };
            assert_eq!(reply.status, 401, "{procedure}");
            assert_eq!(reply.error_code(), "UNAUTHORIZED");
        }
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn bad_group_input_names_the_field_and_creates_nothing() {
    each_backend(|app| async move {
        let boss = app.admin("boss", "acme").await;
        organization(&app, "globex").await;
        users_in(&app, "acme", &["ann"]).await;
        users_in(&app, "globex", &["gus"]).await;
        let service = app.service();

        let too_many: Vec<String> = (0..10_001).map(|i| format!("u{i}")).collect();
        let cases = [
            (json!({}), "BAD_REQUEST", "name: is required"),
            (json!({"name": ""}), "BAD_REQUEST", "name: must be 1 to 200 characters"),
            (json!({"name": "x".repeat(201)}), "BAD_REQUEST", "name: must be 1 to 200 characters"),
            (json!({"name": 5}), "BAD_REQUEST", "name: invalid type: integer `5`, expected a string"),
            (json!({"name": "G", "userIds": "ann"}), "BAD_REQUEST", "userIds: invalid type: string \"ann\", expected a sequence"),
            (json!({"name": "G", "userIds": ["ann", "a b"]}), "BAD_REQUEST", "userIds[1]: may only contain A-Z a-z 0-9 _ . : @ -, found ' '"),
            (json!({"name": "G", "userIds": too_many}), "BAD_REQUEST", "userIds: must hold 0 to 10000 ids, got 10001"),
            (json!({"name": "G", "organizationId": "acme", "userIds": ["ann", "gus", "ghost"]}), "BAD_REQUEST", "userIds: not users of organization acme: gus, ghost"),
            (json!({"name": "G", "organizationId": "nowhere"}), "BAD_REQUEST", "organizationId: unknown organization nowhere"),
            (json!({"name": "G", "members": []}), "BAD_REQUEST", "members: unknown field `members`, expected one of `name`, `organizationId`, `userIds`"),
        ];
        for (input, code, message) in cases {
            let reply = service.mutate("groups.create", input.clone()).await;
            let context: String = input.to_string().chars().take(200).collect();
            assert_error(&reply, code, message, &context);
        }
        let reply = boss
            .mutate("groups.create", json!({"name": "G", "organizationId": "globex"}))
            .await;
        assert_error(
            &reply,
            "FORBIDDEN",
            "organizationId: admins can only manage their own organization",
            "admin naming another organization",
        );
        let reply = boss
            .mutate("groups.create", json!({"name": "G", "userIds": ["ann", "gus"]}))
            .await;
        assert_error(
            &reply,
            "BAD_REQUEST",
            "userIds: not users of organization acme: gus",
            "admin adding another organization's user",
        );
        let reply = service
            .query("groups.list", json!({"organizationId": "a b"}))
            .await;
        assert_error(
            &reply,
            "BAD_REQUEST",
            "organizationId: may only contain A-Z a-z 0-9 _ . : @ -, found ' '",
            "list",
        );
        let reply = service.query("groups.list", json!({"limit": 5})).await;
        assert_error(
            &reply,
            "BAD_REQUEST",
            "limit: unknown field `limit`, expected `organizationId`",
            "list",
        );
        assert_eq!(counts(&service, Value::Null).await, [], "nothing was created");
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn members_are_added_and_removed_and_counted() {
    each_backend(|app| async move {
        let boss = app.admin("boss", "acme").await;
        let rival = app.admin("rival", "globex").await;
        users_in(&app, "acme", &["ann", "bob", "cid", "dee"]).await;
        users_in(&app, "globex", &["gus"]).await;
        let service = app.service();
        let group = create(&boss, json!({"name": "Team", "userIds": ["ann"]})).await;
        let group_id = group["id"].as_str().unwrap().to_owned();
        let members = |user_ids: Value| json!({"groupId": group_id, "userIds": user_ids});

        let reply = boss
            .mutate(
                "groups.addMembers",
                members(json!(["ann", "bob", "cid", "bob"])),
            )
            .await;
        assert_eq!(
            reply.data(),
            &json!({"success": true, "count": 2}),
            "ann was a member already; bob counts once"
        );
        let reply = service
            .mutate("groups.addMembers", members(json!(["ann", "bob"])))
            .await;
        assert_eq!(
            reply.data(),
            &json!({"success": true, "count": 0}),
            "adding members again is no error"
        );
        assert_eq!(counts(&boss, Value::Null).await, [("Team".to_owned(), 3)]);

        let reply = boss
            .mutate(
                "groups.removeMembers",
                members(json!(["bob", "dee", "bob"])),
            )
            .await;
        assert_eq!(
            reply.data(),
            &json!({"success": true, "count": 1}),
            "dee was no member; bob counts once"
        );
        let reply = service
            .mutate("groups.removeMembers", members(json!(["bob"])))
            .await;
        assert_eq!(reply.data(), &json!({"success": true, "count": 0}));
        assert_eq!(counts(&boss, Value::Null).await, [("Team".to_owned(), 2)]);

        // Users outside the group's organization: named, and nothing changes.
        for procedure in ["groups.addMembers", "groups.removeMembers"] {
            let reply = service
                .mutate(procedure, members(json!(["dee", "gus", "ghost", "ann"])))
                .await;
            assert_eq!(reply.status, 400, "{procedure}");
            assert_error(
                &reply,
                "BAD_REQUEST",
                "userIds: not users of organization acme: gus, ghost",
                procedure,
            );
        }
        assert_eq!(counts(&boss, Value::Null).await, [("Team".to_owned(), 2)]);

        let unknown = uuid::Uuid::now_v7().to_string();
        let too_many: Vec<String> = (0..10_001).map(|i| format!("u{i}")).collect();
        let cases = [
            (
                json!({"groupId": unknown, "userIds": ["ann"]}),
                "NOT_FOUND",
                format!("Group {unknown} not found"),
            ),
            (
                json!({"groupId": "team", "userIds": ["ann"]}),
                "BAD_REQUEST",
                "groupId: must be a UUID, got \"team\"".to_owned(),
            ),
            (
                json!({"groupId": group_id, "userIds": []}),
                "BAD_REQUEST",
                "userIds: must hold 1 to 10000 ids, got 0".to_owned(),
            ),
            (
                json!({"groupId": group_id, "userIds": too_many}),
                "BAD_REQUEST",
                "userIds: must hold 1 to 10000 ids, got 10001".to_owned(),
            ),
            (
                json!({"groupId": group_id, "userIds": ["ann", ""]}),
                "BAD_REQUEST",
                "userIds[1]: must not be empty".to_owned(),
            ),
            (
                json!({"groupId": group_id}),
                "BAD_REQUEST",
                "userIds: is required".to_owned(),
            ),
            (
                json!({"userIds": ["ann"]}),
                "BAD_REQUEST",
                "groupId: is required".to_owned(),
            ),
            (
                json!({"groupId": group_id, "userIds": ["ann"], "role": "x"}),
                "BAD_REQUEST",
                "role: unknown field `role`, expected `groupId` or `userIds`".to_owned(),
            ),
        ];
        for procedure in ["groups.addMembers", "groups.removeMembers"] {
            for (input, code, message) in &cases {
                let reply = service.mutate(procedure, input.clone()).await;
                let context: String = format!("{procedure} {input}").chars().take(200).collect();
                assert_error(&reply, code, message, &context);
            }
        }

        // Another organization's group does not exist for an admin.
        for procedure in ["groups.addMembers", "groups.removeMembers"] {
            let reply = rival.mutate(procedure, members(json!(["gus"]))).await;
            assert_eq!(reply.status, 404, "{procedure}");
            assert_error(
                &reply,
                "NOT_FOUND",
                &format!("Group {group_id} not found"),
                procedure,
            );
        }
        assert_eq!(counts(&boss, Value::Null).await, [("Team".to_owned(), 2)]);

        let user = app.user("eve").await;
        for procedure in ["groups.addMembers", "groups.removeMembers"] {
            let reply = user.mutate(procedure, members(json!(["eve"]))).await;
            assert_error(&reply, "FORBIDDEN", "Requires the admin role", procedure);
            let reply = app
                .anonymous()
                .mutate(procedure, members(json!(["eve"])))
                .await;
            assert_eq!(reply.status, 401, "{procedure}");
        }
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn ten_thousand_members_are_added_and_removed_in_one_call() {
    each_backend(|app| async move {
        let service = app.service();
        organization(&app, "acme").await;
        let ids: Vec<String> = (0..10_000).map(|i| format!("m{i:05}")).collect();
        let users: Vec<Value> = ids
            .iter()
            .map(|id| json!({"id": id, "organizationId": "acme"}))
            .collect();
        let reply = service
            .mutate("users.upsertMany", json!({ "users": users }))
            .await;
        assert_eq!(reply.data(), &json!({"created": 10_000, "updated": 0}));

        let group = create(
            &service,
            json!({"name": "All", "organizationId": "acme", "userIds": ids[..2500]}),
        )
        .await;
        assert_eq!(group["memberCount"], 2500);
        let group_id = group["id"].as_str().unwrap();
        let reply = service
            .mutate(
                "groups.addMembers",
                json!({"groupId": group_id, "userIds": ids}),
            )
            .await;
        assert_eq!(reply.data(), &json!({"success": true, "count": 7500}));
        assert_eq!(
            counts(&service, Value::Null).await,
            [("All".to_owned(), 10_000)]
        );
        let reply = service
            .mutate(
                "groups.removeMembers",
                json!({"groupId": group_id, "userIds": ids}),
            )
            .await;
        assert_eq!(reply.data(), &json!({"success": true, "count": 10_000}));
        assert_eq!(counts(&service, Value::Null).await, [("All".to_owned(), 0)]);
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn members_leave_with_their_account_or_their_organization() {
    each_backend(|app| async move {
        let service = app.service();
        organization(&app, "acme").await;
        organization(&app, "globex").await;
        users_in(&app, "acme", &["ann", "bob", "cid"]).await;
        create(&service, json!({"name": "Acme", "organizationId": "acme", "userIds": ["ann", "bob", "cid"]})).await;
        create(&service, json!({"name": "Globex", "organizationId": "globex"})).await;

        let reply = service.mutate("users.delete", json!({"id": "cid"})).await;
        assert_eq!(reply.data(), &json!({"success": true}));
        assert_eq!(
            counts(&service, Value::Null).await,
            [("Acme".to_owned(), 2), ("Globex".to_owned(), 0)]
        );

        // Moving to another organization leaves the old organization's groups.
        let reply = service
            .mutate(
                "users.upsertMany",
                json!({"users": [{"id": "ann", "organizationId": "globex"}, {"id": "bob", "name": "Bob"}]}),
            )
            .await;
        assert_eq!(reply.data(), &json!({"created": 0, "updated": 2}));
        assert_eq!(
            counts(&service, Value::Null).await,
            [("Acme".to_owned(), 1), ("Globex".to_owned(), 0)]
        );
        let globex = counts(&service, json!({"organizationId": "globex"})).await;
        assert_eq!(globex, [("Globex".to_owned(), 0)]);
        app.stop().await;
    })
    .await;
}
