//! Organizations and users as admins and services manage them: listing, paging, updating,
//! deleting with everything that hangs off a user, and bulk sync with `users.upsertMany`.

use std::future::Future;
use std::panic::AssertUnwindSafe;

use futures::FutureExt;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, DbBackend, Statement};
use serde_json::{Value, json};
use tidings_domain::{ErrorCode, ExternalId};
use tidings_persistence::UserUpsert;
use tidings_tests::{Client, TestApp, TestDb, backends, each_backend};

/// Asserts a failed call's code and message.
fn assert_error(reply: &tidings_tests::Reply, code: &str, message: &str, context: &str) {
    assert_eq!(
        (reply.error_code(), reply.error_message()),
        (code, message),
        "{context}"
    );
}

/// Creates users through `users.upsertMany` as the service (no passwords, so no hashing).
async fn upsert(app: &TestApp, users: Value) -> Value {
    let reply = app
        .service()
        .mutate("users.upsertMany", json!({ "users": users }))
        .await;
    reply.data().clone()
}

/// Every user id the caller sees (in one organization, when given), walking pages of `limit`.
async fn walk(client: &Client, organization: Option<&str>, limit: u64) -> Vec<String> {
    let mut ids = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut input = json!({ "limit": limit });
        if let Some(org) = organization {
            input["organizationId"] = json!(org);
        }
        if let Some(c) = &cursor {
            input["cursor"] = json!(c);
        }
        let reply = client.query("users.list", input).await;
        let page = reply.data();
        let users = page["users"].as_array().expect("a users array");
        assert!(users.len() as u64 <= limit);
        ids.extend(users.iter().map(|u| u["id"].as_str().unwrap().to_owned()));
        match page["nextCursor"].as_str() {
            Some(next) => {
                assert_eq!(page["hasMore"], true);
                assert_eq!(next, ids.last().unwrap(), "the cursor is the last id");
                cursor = Some(next.to_owned());
            }
            None => {
                assert_eq!(page["hasMore"], false);
                return ids;
            }
        }
    }
}

#[tokio::test]
async fn organizations_list_shows_an_admin_its_own_and_a_service_all() {
    each_backend(|app| async move {
        let boss = app.admin("boss", "acme").await;
        let service = app.service();
        for (id, name) in [("globex", "Globex"), ("initech", "Initech")] {
            let reply = service
                .mutate("organizations.create", json!({"id": id, "name": name}))
                .await;
            assert_eq!(reply.status, 200, "{reply:?}");
        }

        let all = service.query("organizations.list", Value::Null).await;
        let organizations = all.data()["organizations"].as_array().unwrap();
        let ids: Vec<&str> = organizations
            .iter()
            .map(|o| o["id"].as_str().unwrap())
            .collect();
        // `default` holds the admin a new instance starts with.
        assert_eq!(
            ids,
            ["acme", "default", "globex", "initech"],
            "ordered by id"
        );
        let globex = &organizations[2];
        assert_eq!(globex["name"], "Globex");
        assert!(globex["createdAt"].as_str().unwrap().ends_with('Z'));
        assert_eq!(globex.as_object().unwrap().len(), 3, "{globex}");

        let own = boss.query("organizations.list", Value::Null).await;
        let organizations = own.data()["organizations"].as_array().unwrap();
        assert_eq!(organizations.len(), 1);
        assert_eq!(organizations[0]["id"], "acme");

        let ann = app.user("ann").await;
        let reply = ann.query("organizations.list", Value::Null).await;
        assert_eq!(reply.status, 403);
        assert_error(&reply, "FORBIDDEN", "Requires the admin role", "user");
        let reply = app
            .anonymous()
            .query("organizations.list", Value::Null)
            .await;
        assert_eq!(reply.status, 401);
        assert_eq!(reply.error_code(), "UNAUTHORIZED");
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn users_list_pages_by_id_within_the_callers_reach() {
    each_backend(|app| async move {
        let boss = app.admin("boss", "acme").await;
        app.admin("rival", "globex").await;
        let acme: Vec<Value> = (0..23)
            .map(|i| json!({"id": format!("m{i:02}"), "organizationId": "acme"}))
            .collect();
        let globex: Vec<Value> = (0..5)
            .map(|i| json!({"id": format!("g{i:02}"), "organizationId": "globex"}))
            .collect();
        upsert(&app, Value::Array(acme)).await;
        upsert(&app, Value::Array(globex)).await;
        let service = app.service();

        // One big page, then walks with small pages: the same users in the same order.
        let big = service.query("users.list", json!({"limit": 1000})).await;
        let big_ids: Vec<String> = big.data()["users"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["id"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(big_ids.len(), 31, "23 + 5 + boss + rival + the first admin");
        assert_eq!(big.data()["hasMore"], false);
        assert_eq!(big.data()["nextCursor"], Value::Null);
        let mut sorted = big_ids.clone();
        sorted.sort();
        assert_eq!(big_ids, sorted, "ordered by id");
        for limit in [1, 7, 30, 31] {
            assert_eq!(walk(&service, None, limit).await, big_ids, "limit {limit}");
        }

        let default_page = service.query("users.list", Value::Null).await;
        let users = default_page.data()["users"].as_array().unwrap();
        assert_eq!(users.len(), 31);
        let boss_user = users.iter().find(|u| u["id"] == "boss").unwrap();
        assert_eq!(
            boss_user,
            &json!({"id": "boss", "organizationId": "acme", "email": "boss@example.com",
                    "name": "boss", "role": "admin", "createdAt": boss_user["createdAt"]})
        );
        assert!(boss_user["createdAt"].as_str().unwrap().ends_with('Z'));

        let globex_ids = walk(&service, Some("globex"), 2).await;
        assert_eq!(globex_ids, ["g00", "g01", "g02", "g03", "g04", "rival"]);

        // An admin sees its own organization only, by default and by name.
        let acme_ids = walk(&boss, None, 10).await;
        assert_eq!(acme_ids.len(), 24);
        assert!(
            acme_ids
                .iter()
                .all(|id| id == "boss" || id.starts_with('m'))
        );
        assert_eq!(walk(&boss, Some("acme"), 100).await, acme_ids);
        let reply = boss
            .query("users.list", json!({"organizationId": "globex"}))
            .await;
        assert_eq!(reply.status, 403);
        assert_error(
            &reply,
            "FORBIDDEN",
            "organizationId: admins can only manage their own organization",
            "another organization",
        );

        // A cursor past the end is an empty last page.
        let reply = service.query("users.list", json!({"cursor": "zzz"})).await;
        assert_eq!(
            reply.data(),
            &json!({"users": [], "nextCursor": null, "hasMore": false})
        );

        let cases = [
            (
                json!({"limit": 0}),
                "limit: must be between 1 and 1000, got 0",
            ),
            (
                json!({"limit": 1001}),
                "limit: must be between 1 and 1000, got 1001",
            ),
            (
                json!({"limit": "10"}),
                "limit: invalid type: string \"10\", expected i64",
            ),
            (
                json!({"cursor": "a b"}),
                "cursor: may only contain A-Z a-z 0-9 _ . : @ -, found ' '",
            ),
            (
                json!({"organizationId": ""}),
                "organizationId: must not be empty",
            ),
            (
                json!({"page": 2}),
                "page: unknown field `page`, expected one of `organizationId`, `limit`, `cursor`",
            ),
        ];
        for (input, message) in cases {
            let reply = service.query("users.list", input.clone()).await;
            assert_error(&reply, "BAD_REQUEST", message, &input.to_string());
        }

        let ann = app.user("ann").await;
        assert_eq!(ann.query("users.list", Value::Null).await.status, 403);
        assert_eq!(
            app.anonymous()
                .query("users.list", Value::Null)
                .await
                .status,
            401
        );
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn users_update_changes_only_what_is_given() {
    each_backend(|app| async move {
        let boss = app.admin("boss", "acme").await;
        let rival = app.admin("rival", "globex").await;
        let ann = app.user("ann").await;
        let service = app.service();

        let reply = service
            .mutate("users.update", json!({"id": "ann", "name": "Ann Smith"}))
            .await;
        let user = reply.data();
        assert_eq!(user["name"], "Ann Smith");
        assert_eq!(user["email"], "ann@example.com", "absent fields stay");
        assert_eq!(user["role"], "user");
        assert_eq!(user["organizationId"], "acme");

        let reply = service
            .mutate(
                "users.update",
                json!({"id": "ann", "email": " Ann.Smith@Example.com ", "name": null, "role": null}),
            )
            .await;
        assert_eq!(reply.data()["email"], "ann.smith@example.com");
        assert_eq!(reply.data()["name"], "Ann Smith", "null fields stay");
        assert_eq!(
            ann.query("auth.me", Value::Null).await.data()["email"],
            "ann.smith@example.com"
        );

        // A new password works at once; the old one no longer does.
        let reply = boss
            .mutate(
                "users.update",
                json!({"id": "ann", "password": "a brand new secret"}),
            )
            .await;
        assert_eq!(reply.data()["id"], "ann");
        let login = |email: &'static str, password: &'static str| {
            let anon = app.anonymous();
            async move {
                anon.mutate("auth.login", json!({"email": email, "password": password}))
                    .await
                    .status
            }
        };
        assert_eq!(login("ann.smith@example.com", "a brand new secret").await, 200);
        assert_eq!(login("ann.smith@example.com", "password-ann").await, 401);

        // An admin promotes within its organization; the role takes effect at once.
        assert_eq!(
            ann.query("users.list", Value::Null).await.error_code(),
            "FORBIDDEN"
        );
        let reply = boss
            .mutate("users.update", json!({"id": "ann", "role": "admin"}))
            .await;
        assert_eq!(reply.data()["role"], "admin");
        assert_eq!(ann.query("users.list", Value::Null).await.status, 200);

        upsert(&app, json!([{"id": "nomail"}])).await;
        let cases = [
            (json!({"id": "ann", "email": "boss@example.com"}), "CONFLICT", "email: boss@example.com is already taken"),
            (json!({"id": "ann", "email": "BOSS@example.com"}), "CONFLICT", "email: boss@example.com is already taken"),
            (json!({"id": "nobody", "name": "X"}), "NOT_FOUND", "User nobody not found"),
            (json!({"id": "nomail", "password": "long enough"}), "BAD_REQUEST", "password: needs an email to sign in with"),
            (json!({"id": "ann", "password": "short"}), "BAD_REQUEST", "password: must be 8 to 1024 characters"),
            (json!({"id": "ann", "email": "nope"}), "BAD_REQUEST", "email: must be an email address, got \"nope\""),
            (json!({"id": "ann", "name": "  "}), "BAD_REQUEST", "name: must be 1 to 200 characters"),
            (json!({"id": "ann", "role": "root"}), "BAD_REQUEST", "role: must be \"user\" or \"admin\", got \"root\""),
            (json!({"id": "a b"}), "BAD_REQUEST", "id: may only contain A-Z a-z 0-9 _ . : @ -, found ' '"),
            (json!({"name": "X"}), "BAD_REQUEST", "id: is required"),
            (json!({"id": "ann", "organizationId": "globex"}), "BAD_REQUEST", "organizationId: unknown field `organizationId`, expected one of `id`, `email`, `name`, `password`, `role`"),
        ];
        for (input, code, message) in cases {
            let reply = service.mutate("users.update", input.clone()).await;
            assert_error(&reply, code, message, &input.to_string());
        }
        // A password and an email together: the email is what makes sign-in possible.
        let reply = service
            .mutate(
                "users.update",
                json!({"id": "nomail", "email": "nomail@example.com", "password": "long enough"}),
            )
            .await;
        assert_eq!(reply.data()["email"], "nomail@example.com");
        assert_eq!(login("nomail@example.com", "long enough").await, 200);

        // Another organization's user does not exist for an admin.
        let reply = rival
            .mutate("users.update", json!({"id": "ann", "name": "Hacked"}))
            .await;
        assert_eq!(reply.status, 404);
        assert_error(&reply, "NOT_FOUND", "User ann not found", "rival");
        assert_eq!(
            ann.query("auth.me", Value::Null).await.data()["name"],
            "Ann Smith"
        );

        let bob = app.user("bob").await;
        let reply = bob
            .mutate("users.update", json!({"id": "bob", "role": "admin"}))
            .await;
        assert_error(&reply, "FORBIDDEN", "Requires the admin role", "user");
        let reply = app
            .anonymous()
            .mutate("users.update", json!({"id": "bob"}))
            .await;
        assert_eq!(reply.error_code(), "UNAUTHORIZED");
        app.stop().await;
    })
    .await;
}

/// As [`each_backend`], with a connection of the test's own to the database, to look at rows
/// no procedure shows.
async fn each_backend_with_db<F, Fut>(test: F)
where
    F: Fn(TestApp, DatabaseConnection) -> Fut,
    Fut: Future<Output = ()>,
{
    for backend in backends() {
        let Some(db) = TestDb::create(&backend).await else {
            continue;
        };
        let app = TestApp::start(backend.clone(), &db, &[]).await;
        let raw = Database::connect(db.url.as_str())
            .await
            .expect("connect to the test database");
        let outcome = AssertUnwindSafe(test(app, raw)).catch_unwind().await;
        db.drop_now().await;
        if let Err(panic) = outcome {
            eprintln!("test failed on {}", backend.name());
            std::panic::resume_unwind(panic);
        }
    }
}

fn statement(raw: &DatabaseConnection, sql: &str, values: Vec<sea_orm::Value>) -> Statement {
    let backend = raw.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => {
            let mut n = 0;
            sql.chars()
                .map(|c| {
                    if c == '?' {
                        n += 1;
                        format!("${n}")
                    } else {
                        c.to_string()
                    }
                })
                .collect()
        }
        _ => sql.to_owned(),
    };
    Statement::from_sql_and_values(backend, sql, values)
}

/// How many rows of `table` belong to `user`.
async fn rows_of(raw: &DatabaseConnection, table: &str, user: &str) -> i64 {
    let sql = format!("SELECT COUNT(*) AS n FROM {table} WHERE user_id = ?");
    raw.query_one_raw(statement(raw, &sql, vec![user.into()]))
        .await
        .expect("count rows")
        .expect("a row")
        .try_get::<i64>("", "n")
        .expect("a count")
}

const USER_TABLES: [&str; 6] = [
    "notifications",
    "preferences",
    "sessions",
    "group_members",
    "deliveries",
    "push_subscriptions",
];

#[tokio::test]
async fn users_delete_removes_everything_that_was_theirs() {
    each_backend_with_db(|app, raw| async move {
        let ann = app.user("ann").await;
        app.user("bob").await;
        let boss = app.admin("boss", "acme").await;
        let rival = app.admin("rival", "globex").await;
        let service = app.service();

        app.notify("ann", 3).await;
        app.notify("bob", 1).await;
        let reply = ann
            .mutate("notifications.disableAllEmail", Value::Null)
            .await;
        assert_eq!(reply.status, 200, "{reply:?}");
        let group = service
            .mutate(
                "groups.create",
                json!({"name": "Team", "organizationId": "acme", "userIds": ["ann", "bob"]}),
            )
            .await;
        let group_id = group.data()["id"].as_str().unwrap().to_owned();
        // No procedure makes deliveries or push subscriptions yet: write them as the
        // workers and `push.subscribe` would.
        let message_id = uuid::Uuid::now_v7();
        raw.execute_raw(statement(
            &raw,
            "INSERT INTO messages (id, type, title, message) VALUES (?, 'general', 'T', 'M')",
            vec![message_id.into()],
        ))
        .await
        .expect("insert a message");
        for user in ["ann", "bob"] {
            raw.execute_raw(statement(
                &raw,
                "INSERT INTO deliveries (id, message_id, user_id, channel, target) \
                 VALUES (?, ?, ?, 'email', ?)",
                vec![
                    uuid::Uuid::now_v7().into(),
                    message_id.into(),
                    user.into(),
                    format!("{user}@example.com").into(),
                ],
            ))
            .await
            .expect("insert a delivery");
            raw.execute_raw(statement(
                &raw,
                "INSERT INTO push_subscriptions (id, user_id, endpoint, p256dh, auth) \
                 VALUES (?, ?, ?, 'key', 'secret')",
                vec![
                    uuid::Uuid::now_v7().into(),
                    user.into(),
                    format!("https://push.example/{user}").into(),
                ],
            ))
            .await
            .expect("insert a push subscription");
        }
        for table in USER_TABLES {
            assert!(rows_of(&raw, table, "ann").await > 0, "ann has {table}");
        }

        // Not for users, not across organizations.
        let reply = app
            .login("bob")
            .await
            .mutate("users.delete", json!({"id": "ann"}))
            .await;
        assert_error(&reply, "FORBIDDEN", "Requires the admin role", "user");
        let reply = app
            .anonymous()
            .mutate("users.delete", json!({"id": "ann"}))
            .await;
        assert_eq!(reply.error_code(), "UNAUTHORIZED");
        let reply = rival.mutate("users.delete", json!({"id": "ann"})).await;
        assert_eq!(reply.status, 404);
        assert_error(&reply, "NOT_FOUND", "User ann not found", "rival");
        assert_eq!(ann.query("auth.me", Value::Null).await.status, 200);

        let reply = boss.mutate("users.delete", json!({"id": "ann"})).await;
        assert_eq!(reply.data(), &json!({"success": true}));
        for table in USER_TABLES {
            assert_eq!(
                rows_of(&raw, table, "ann").await,
                0,
                "ann's {table} are gone"
            );
            assert!(
                rows_of(&raw, table, "bob").await > 0 || table == "preferences",
                "bob keeps {table}"
            );
        }
        assert_eq!(
            ann.query("auth.me", Value::Null).await.status,
            401,
            "signed out"
        );
        let groups = service.query("groups.list", Value::Null).await;
        assert_eq!(groups.data()["groups"][0]["id"], group_id.as_str());
        assert_eq!(groups.data()["groups"][0]["memberCount"], 1);

        let cases = [
            (json!({"id": "ann"}), "NOT_FOUND", "User ann not found"),
            (json!({}), "BAD_REQUEST", "id: is required"),
            (json!({"id": ""}), "BAD_REQUEST", "id: must not be empty"),
            (
                json!({"id": "bob", "force": true}),
                "BAD_REQUEST",
                "force: unknown field `force`, expected `id`",
            ),
        ];
        for (input, code, message) in cases {
            let reply = service.mutate("users.delete", input.clone()).await;
            assert_error(&reply, code, message, &input.to_string());
        }
        let reply = service.mutate("users.delete", json!({"id": "rival"})).await;
        assert_eq!(
            reply.data(),
            &json!({"success": true}),
            "a service reaches every organization"
        );
        drop(raw);
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn upsert_many_syncs_ten_thousand_users_in_one_call() {
    each_backend(|app| async move {
        let service = app.service();
        let users: Vec<Value> = (0..10_000)
            .map(|i| json!({"id": format!("u{i:05}"), "email": format!("u{i:05}@example.com"), "name": format!("User {i}")}))
            .collect();
        let reply = service
            .mutate("users.upsertMany", json!({ "users": users }))
            .await;
        assert_eq!(reply.data(), &json!({"created": 10_000, "updated": 0}));

        // Half again, renamed, and half new, in one call.
        let users: Vec<Value> = (5_000..15_000)
            .map(|i| json!({"id": format!("u{i:05}"), "name": format!("Renamed {i}")}))
            .collect();
        let reply = service
            .mutate("users.upsertMany", json!({ "users": users }))
            .await;
        assert_eq!(reply.data(), &json!({"created": 5_000, "updated": 5_000}));

        let ids = walk(&service, None, 1000).await;
        assert_eq!(ids.len(), 15_001, "and the first admin");
        let page = service
            .query("users.list", json!({"cursor": "u04998", "limit": 3}))
            .await;
        let users = page.data()["users"].as_array().unwrap();
        let seen: Vec<(&str, &str, &Value, &str)> = users
            .iter()
            .map(|u| {
                (
                    u["id"].as_str().unwrap(),
                    u["name"].as_str().unwrap(),
                    &u["email"],
                    u["organizationId"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            seen,
            [
                ("u04999", "User 4999", &json!("u04999@example.com"), "default"),
                ("u05000", "Renamed 5000", &json!("u05000@example.com"), "default"),
                ("u05001", "Renamed 5001", &json!("u05001@example.com"), "default"),
            ],
            "fields an entry leaves out keep their values"
        );
        let last = service
            .query("users.list", json!({"cursor": "u14998"}))
            .await;
        assert_eq!(
            last.data()["users"][0],
            json!({"id": "u14999", "organizationId": "default", "email": null,
                   "name": "Renamed 14999", "role": "user", "createdAt": last.data()["users"][0]["createdAt"]})
        );

        // Organizations and roles can be set and changed too.
        service
            .mutate("organizations.create", json!({"id": "globex", "name": "Globex"}))
            .await;
        let reply = service
            .mutate(
                "users.upsertMany",
                json!({"users": [
                    {"id": "u00000", "organizationId": "globex", "role": "admin", "email": "Zero@Example.com"},
                    {"id": "fresh", "organizationId": "globex", "name": "Fresh"},
                ]}),
            )
            .await;
        assert_eq!(reply.data(), &json!({"created": 1, "updated": 1}));
        let globex = service
            .query("users.list", json!({"organizationId": "globex"}))
            .await;
        let users = globex.data()["users"].as_array().unwrap();
        assert_eq!(users.len(), 2);
        assert_eq!(
            (&users[0]["id"], &users[0]["name"], &users[0]["email"], &users[0]["role"]),
            (&json!("fresh"), &json!("Fresh"), &Value::Null, &json!("user"))
        );
        assert_eq!(
            (&users[1]["id"], &users[1]["name"], &users[1]["email"], &users[1]["role"]),
            (&json!("u00000"), &json!("User 0"), &json!("zero@example.com"), &json!("admin"))
        );

        let reply = service
            .mutate("users.upsertMany", json!({"users": []}))
            .await;
        assert_eq!(reply.data(), &json!({"created": 0, "updated": 0}));
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn upsert_many_refuses_bad_entries_and_writes_nothing() {
    each_backend(|app| async move {
        app.user("ann").await;
        let service = app.service();
        let before = walk(&service, None, 1000).await;

        let too_many: Vec<Value> = (0..10_001).map(|i| json!({"id": format!("x{i}")})).collect();
        let ok = json!({"id": "newcomer", "email": "newcomer@example.com"});
        let cases = [
            (json!({"users": too_many}), "BAD_REQUEST", "users: must hold at most 10000 users a call, got 10001"),
            (json!({}), "BAD_REQUEST", "users: is required"),
            (json!({"users": {"id": "a"}}), "BAD_REQUEST", "users: invalid type: map, expected a sequence"),
            (json!({"users": [ok, 7]}), "BAD_REQUEST", "users[1]: must be an object, got a number"),
            (json!({"users": [ok, {"name": "No Id"}]}), "BAD_REQUEST", "users[1].id: is required"),
            (json!({"users": [ok, {"id": "a b"}]}), "BAD_REQUEST", "users[1].id: may only contain A-Z a-z 0-9 _ . : @ -, found ' '"),
            (json!({"users": [ok, {"id": "b", "email": "nope"}]}), "BAD_REQUEST", "users[1].email: must be an email address, got \"nope\""),
            (json!({"users": [ok, {"id": "b", "name": ""}]}), "BAD_REQUEST", "users[1].name: must be 1 to 200 characters"),
            (json!({"users": [ok, {"id": "b", "role": "root"}]}), "BAD_REQUEST", "users[1].role: must be \"user\" or \"admin\", got \"root\""),
            (json!({"users": [ok, {"id": "b", "email": 5}]}), "BAD_REQUEST", "users[1].email: invalid type: integer `5`, expected a string"),
            (json!({"users": [ok, {"id": "b", "password": "long enough"}]}), "BAD_REQUEST", "users[1].password: unknown field `password`, expected one of `id`, `email`, `name`, `organizationId`, `role`"),
            (json!({"users": [ok, {"id": "b", "organizationId": "nowhere"}]}), "BAD_REQUEST", "users[1].organizationId: unknown organization nowhere"),
            (json!({"users": [ok, {"id": "b"}, {"id": "newcomer"}, {"id": "b"}, {"id": "c"}]}), "BAD_REQUEST", "users: duplicate ids: newcomer, b"),
            (json!({"users": [ok, {"id": "b", "email": "ANN@example.com"}]}), "CONFLICT", "users[1].email: ann@example.com is already taken"),
            (json!({"users": [ok, {"id": "b", "email": "Newcomer@example.com"}]}), "CONFLICT", "users[1].email: newcomer@example.com is also given to users[0]"),
        ];
        for (input, code, message) in cases {
            let reply = service.mutate("users.upsertMany", input.clone()).await;
            let context: String = input.to_string().chars().take(200).collect();
            assert_error(&reply, code, message, &context);
        }
        assert_eq!(walk(&service, None, 1000).await, before, "nothing was written");

        // A user keeping its own email is no clash.
        let reply = service
            .mutate("users.upsertMany", json!({"users": [{"id": "ann", "email": "ann@example.com", "name": "Ann"}]}))
            .await;
        assert_eq!(reply.data(), &json!({"created": 0, "updated": 1}));
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn admins_upsert_only_into_their_own_organization() {
    each_backend(|app| async move {
        let boss = app.admin("boss", "acme").await;
        app.admin("rival", "globex").await;
        let reply = boss
            .mutate(
                "users.upsertMany",
                json!({"users": [{"id": "a1", "name": "A1"}, {"id": "a2", "organizationId": "acme"}, {"id": "boss", "name": "The Boss"}]}),
            )
            .await;
        assert_eq!(reply.data(), &json!({"created": 2, "updated": 1}));
        let mine = walk(&boss, None, 100).await;
        assert_eq!(mine, ["a1", "a2", "boss"]);

        let reply = boss
            .mutate(
                "users.upsertMany",
                json!({"users": [{"id": "a3"}, {"id": "a4", "organizationId": "globex"}]}),
            )
            .await;
        assert_eq!(reply.status, 403);
        assert_error(
            &reply,
            "FORBIDDEN",
            "users[1].organizationId: admins can only manage their own organization",
            "another organization named",
        );
        let reply = boss
            .mutate(
                "users.upsertMany",
                json!({"users": [{"id": "a3"}, {"id": "rival", "name": "Taken Over"}, {"id": "a1", "name": "Changed"}]}),
            )
            .await;
        assert_eq!(reply.status, 403);
        assert_error(
            &reply,
            "FORBIDDEN",
            "users: belong to another organization: rival",
            "another organization's user",
        );
        assert_eq!(walk(&boss, None, 100).await, mine, "nothing was written");
        let rival = app.service().query("users.list", json!({"organizationId": "globex"})).await;
        assert_eq!(rival.data()["users"][0]["name"], "rival");
        let a1 = boss.query("users.list", json!({"limit": 1})).await;
        assert_eq!(a1.data()["users"][0]["name"], "A1");

        let ann = app.user("ann").await;
        let reply = ann
            .mutate("users.upsertMany", json!({"users": [{"id": "x"}]}))
            .await;
        assert_error(&reply, "FORBIDDEN", "Requires the admin role", "user");
        let reply = app
            .anonymous()
            .mutate("users.upsertMany", json!({"users": [{"id": "x"}]}))
            .await;
        assert_eq!(reply.status, 401);
        app.stop().await;
    })
    .await;
}

/// The storage layer's own guard, for an admin's call that loses a race: a user created in
/// another organization between the procedure's check and the write is never taken over.
#[tokio::test]
async fn an_admins_upsert_never_takes_over_another_organizations_user() {
    each_backend(|app| async move {
        app.admin("boss", "acme").await;
        app.admin("rival", "globex").await;
        let id = |s: &str| ExternalId::parse("id", s).unwrap();
        let row = |s: &str, name: &str| UserUpsert {
            id: id(s),
            organization_id: None,
            email: None,
            name: Some(name.to_owned()),
            role: None,
        };
        let acme = id("acme");
        let rows = [
            row("fresh", "Fresh"),
            row("boss", "Boss"),
            row("rival", "Taken Over"),
        ];
        let err = app
            .db()
            .upsert_users(&rows, &acme, Some(&acme))
            .await
            .unwrap_err();
        assert_eq!(
            (err.code, err.message.as_str()),
            (
                ErrorCode::Forbidden,
                "users: belong to another organization: rival"
            )
        );
        assert!(app.db().user(&id("fresh")).await.unwrap().is_none());
        assert_eq!(
            app.db().user(&id("boss")).await.unwrap().unwrap().name,
            "boss"
        );
        let rival = app.db().user(&id("rival")).await.unwrap().unwrap();
        assert_eq!(
            (rival.name.as_str(), rival.organization_id.as_str()),
            ("rival", "globex")
        );

        let written = app
            .db()
            .upsert_users(&rows[..2], &acme, Some(&acme))
            .await
            .unwrap();
        assert_eq!(written, 2);
        app.stop().await;
    })
    .await;
}
