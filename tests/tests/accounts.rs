//! Signing in and out, sessions for host apps, accounts and records, and who may do what.

use serde_json::{Value, json};
use tidings_tests::{Client, each_backend};

#[tokio::test]
async fn login_sets_a_fresh_http_only_cookie_and_me_answers() {
    each_backend(|app| async move {
        let ann = app.user("ann").await;
        let me = ann.query("auth.me", Value::Null).await;
        assert_eq!(me.data()["id"], "ann");
        assert_eq!(me.data()["email"], "ann@example.com");
        assert_eq!(me.data()["organizationId"], "acme");
        assert_eq!(me.data()["role"], "user");

        let again = app.login("ann").await;
        assert_ne!(again.cookie, ann.cookie, "every sign-in gets a new token");
        let reply = app
            .anonymous()
            .mutate(
                "auth.login",
                json!({"email": "ann@example.com", "password": "password-ann"}),
            )
            .await;
        let set_cookie = reply.header("set-cookie").unwrap();
        for attr in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=2592000"] {
            assert!(set_cookie.contains(attr), "{set_cookie} lacks {attr}");
        }
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn wrong_credentials_are_refused_alike() {
    each_backend(|app| async move {
        app.user("ann").await;
        let anon = app.anonymous();
        for input in [
            json!({"email": "ann@example.com", "password": "wrong-password"}),
            json!({"email": "nobody@example.com", "password": "password-ann"}),
        ] {
            let reply = anon.mutate("auth.login", input).await;
            assert_eq!(reply.status, 401);
            assert_eq!(reply.error_message(), "Invalid email or password");
            assert!(reply.session_cookie().is_none());
        }
        let reply = anon
            .mutate(
                "auth.login",
                json!({"email": "not-an-email", "password": "x"}),
            )
            .await;
        assert_eq!(reply.error_code(), "BAD_REQUEST");
        assert!(reply.error_message().starts_with("email:"), "{reply:?}");
        let reply = anon
            .mutate("auth.login", json!({"email": "ann@example.com"}))
            .await;
        assert_eq!(reply.error_message(), "password: is required");
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn logout_revokes_the_session_and_clears_the_cookie() {
    each_backend(|app| async move {
        let ann = app.user("ann").await;
        let other_device = app.login("ann").await;
        let reply = ann.mutate("auth.logout", Value::Null).await;
        assert_eq!(reply.data(), &json!({"success": true}));
        assert!(reply.header("set-cookie").unwrap().contains("Max-Age=0"));
        let after = ann.query("notifications.unreadCount", Value::Null).await;
        assert_eq!(after.status, 401);
        assert_eq!(after.error_code(), "UNAUTHORIZED");
        let other = other_device
            .query("notifications.unreadCount", Value::Null)
            .await;
        assert_eq!(other.status, 200, "other sessions stay signed in");
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn host_apps_create_sessions_with_a_service_key() {
    each_backend(|app| async move {
        app.user("ann").await;
        let service = app.service();
        let reply = service
            .mutate(
                "sessions.create",
                json!({"userId": "ann", "ttlSeconds": 3600}),
            )
            .await;
        let data = reply.data();
        assert_eq!(data["userId"], "ann");
        assert_eq!(data["cookieName"], "tidings_session");
        let mut browser = app.anonymous();
        browser.cookie = Some(data["token"].as_str().unwrap().to_owned());
        assert_eq!(
            browser.query("auth.me", Value::Null).await.data()["id"],
            "ann"
        );

        let cases = [
            (
                json!({"userId": "nobody"}),
                "NOT_FOUND",
                "User nobody not found",
            ),
            (
                json!({"userId": "ann", "ttlSeconds": 1}),
                "BAD_REQUEST",
                "ttlSeconds: must be between 60 and 31622400, got 1",
            ),
            (
                json!({"userId": "a b"}),
                "BAD_REQUEST",
                "userId: may only contain A-Z a-z 0-9 _ . : @ -, found ' '",
            ),
            (json!({}), "BAD_REQUEST", "userId: is required"),
        ];
        for (input, code, message) in cases {
            let reply = service.mutate("sessions.create", input.clone()).await;
            assert_eq!(
                (reply.error_code(), reply.error_message()),
                (code, message),
                "{input}"
            );
        }
        let as_user = app
            .login("ann")
            .await
            .mutate("sessions.create", json!({"userId": "ann"}))
            .await;
        assert_eq!(as_user.error_code(), "FORBIDDEN");
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn an_unknown_or_revoked_key_is_unauthorized() {
    each_backend(|app| async move {
        let mut stranger = app.anonymous();
        stranger.bearer = Some("tdk_not-a-key".into());
        let reply = stranger
            .mutate("organizations.create", json!({"name": "x"}))
            .await;
        assert_eq!(reply.status, 401);
        assert!(app.db().revoke_service_key("tests").await.unwrap());
        let reply = app
            .service()
            .mutate("organizations.create", json!({"name": "x"}))
            .await;
        assert_eq!(reply.status, 401, "revoked keys stop working at once");
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn users_choose_their_ids_and_bad_input_names_the_field() {
    each_backend(|app| async move {
        let service = app.service();
        let created = service
            .mutate("users.create", json!({"id": "host:user-42", "email": "u42@example.com", "name": "U"}))
            .await;
        assert_eq!(created.data()["id"], "host:user-42");
        assert_eq!(created.data()["organizationId"], "default");
        let generated = service.mutate("users.create", json!({"name": "No Id"})).await;
        assert_eq!(generated.data()["id"].as_str().unwrap().len(), 36);

        let cases = [
            (json!({"id": "has space"}), "BAD_REQUEST", "id: may only contain A-Z a-z 0-9 _ . : @ -, found ' '"),
            (json!({"id": "x".repeat(129)}), "BAD_REQUEST", "id: must be at most 128 characters"),
            (json!({"email": "nope"}), "BAD_REQUEST", "email: must be an email address, got \"nope\""),
            (json!({"email": "a@example.com", "password": "short"}), "BAD_REQUEST", "password: must be 8 to 1024 characters"),
            (json!({"password": "long enough"}), "BAD_REQUEST", "password: needs an email to sign in with"),
            (json!({"role": "root"}), "BAD_REQUEST", "role: must be \"user\" or \"admin\", got \"root\""),
            (json!({"organizationId": "missing"}), "BAD_REQUEST", "organizationId: unknown organization missing"),
            (json!({"nickname": "x"}), "BAD_REQUEST", "nickname: unknown field `nickname`, expected one of `id`, `email`, `name`, `password`, `organizationId`, `role`"),
            (json!({"id": "host:user-42"}), "CONFLICT", "id: user host:user-42 already exists"),
            (json!({"email": "U42@example.com"}), "CONFLICT", "email: u42@example.com is already taken"),
        ];
        for (input, code, message) in cases {
            let reply = service.mutate("users.create", input.clone()).await;
            assert_eq!((reply.error_code(), reply.error_message()), (code, message), "{input}");
        }
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn admins_manage_only_their_own_organization() {
    each_backend(|app| async move {
        let boss = app.admin("boss", "acme").await;
        app.admin("rival", "globex").await;
        let mine = boss.mutate("users.create", json!({"id": "newbie"})).await;
        assert_eq!(mine.data()["organizationId"], "acme");
        let theirs = boss
            .mutate(
                "users.create",
                json!({"id": "spy", "organizationId": "globex"}),
            )
            .await;
        assert_eq!(theirs.error_code(), "FORBIDDEN");

        // Records reach only the admin's organization: other users look unknown.
        let ok = boss
            .mutate(
                "notifications.create",
                json!({"recipient": "newbie", "subject": "Hi"}),
            )
            .await;
        assert_eq!(ok.data()["recipient"], "newbie");
        let foreign = boss
            .mutate(
                "notifications.create",
                json!({"recipient": "rival", "subject": "Hi"}),
            )
            .await;
        assert_eq!(foreign.error_code(), "BAD_REQUEST");
        assert_eq!(foreign.error_message(), "recipient: unknown users: rival");

        let user: Client = app.user("ann").await;
        let reply = user.mutate("users.create", json!({"id": "x"})).await;
        assert_eq!(
            (reply.status, reply.error_message()),
            (403, "Requires the admin role")
        );
        let reply = app
            .anonymous()
            .mutate("users.create", json!({"id": "x"}))
            .await;
        assert_eq!(reply.status, 401);
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn records_are_created_one_or_many_all_or_none() {
    each_backend(|app| async move {
        let ann = app.user("ann").await;
        let service = app.service();
        let one = service
            .mutate(
                "notifications.create",
                json!({"recipient": "ann", "subject": "Ticket Assigned", "message": "You got #1234",
                       "type": "ticketAssigned", "data": {"ticketNumber": 1234}, "senderId": "bob",
                       "collection": "tickets", "item": "1234"}),
            )
            .await;
        let record = one.data();
        assert_eq!(record["subject"], "Ticket Assigned");
        assert_eq!(record["type"], "ticketAssigned");
        assert_eq!(record["status"], "inbox");
        assert_eq!(record["senderId"], "bob");
        assert_eq!((record["collection"].as_str(), record["item"].as_str()), (Some("tickets"), Some("1234")));
        assert!(record["timestamp"].as_str().unwrap().ends_with('Z'));

        let list = ann.query("notifications.list", Value::Null).await;
        assert_eq!(
            list.data()["notifications"][0],
            json!({"id": record["id"], "type": "ticketAssigned", "title": "Ticket Assigned",
                   "message": "You got #1234", "data": {"ticketNumber": 1234}, "read": false,
                   "created_at": record["timestamp"]})
        );

        let cases = [
            (json!([]), "input: must hold 1 to 1000 records, got 0"),
            (json!({"recipient": "ann"}), "subject: is required"),
            (json!({"recipient": "ann", "subject": ""}), "subject: must be 1 to 500 characters, got 0"),
            (json!({"recipient": "ann", "subject": "s", "data": [1]}), "data: must be an object"),
            (json!({"recipient": "ann", "subject": "s", "type": "nope"}), "type: unknown notification type \"nope\""),
            (json!([{"recipient": "ann", "subject": "ok"}, {"recipient": "ghost", "subject": "s"}]), "recipient: unknown users: ghost"),
            (json!([{"recipient": "ann", "subject": "ok"}, {"recipient": "ann"}]), "[1].subject: is required"),
            (json!("text"), "input: must be an object, got a string"),
        ];
        for (input, message) in cases {
            let reply = service.mutate("notifications.create", input.clone()).await;
            assert_eq!((reply.error_code(), reply.error_message()), ("BAD_REQUEST", message), "{input}");
        }
        let count = ann.query("notifications.unreadCount", Value::Null).await;
        assert_eq!(count.data(), &json!({"count": 1}), "failed calls created nothing");

        let many: Vec<Value> = (0..1000).map(|i| json!({"recipient": "ann", "subject": format!("n{i}")})).collect();
        let reply = service.mutate("notifications.create", Value::Array(many)).await;
        assert_eq!(reply.data().as_array().unwrap().len(), 1000);
        let too_many: Vec<Value> = (0..1001).map(|_| json!({"recipient": "ann", "subject": "s"})).collect();
        let reply = service.mutate("notifications.create", Value::Array(too_many)).await;
        assert_eq!(reply.error_message(), "input: must hold 1 to 1000 records, got 1001");
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn cookie_mutations_from_a_foreign_origin_are_refused() {
    each_backend(|app| async move {
        let ann = app.user("ann").await;
        let id = &app.notify("ann", 1).await[0];
        let body = json!({"json": {"id": id}}).to_string();
        let cookie = format!("tidings_session={}", ann.cookie.as_deref().unwrap());
        let http = reqwest::Client::new();
        let send = |origin: &'static str| {
            http.post(format!("{}/api/trpc/notifications.markAsRead", app.base))
                .header("content-type", "application/json")
                .header("cookie", cookie.clone())
                .header("origin", origin)
                .body(body.clone())
                .send()
        };
        let evil = send("https://evil.example").await.unwrap();
        assert_eq!(evil.status(), 403);
        let text = evil.text().await.unwrap();
        assert!(text.contains("Origin not allowed"), "{text}");
        assert_eq!(
            ann.query("notifications.unreadCount", Value::Null)
                .await
                .data(),
            &json!({"count": 1})
        );

        let own_origin: &'static str = Box::leak(app.base.clone().into_boxed_str());
        assert_eq!(send(own_origin).await.unwrap().status(), 200);
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn configured_origins_may_call_with_credentials() {
    tidings_tests::each_backend_with(
        &[("TIDINGS_ALLOWED_ORIGINS", "https://app.example")],
        |app| async move {
            let ann = app.user("ann").await;
            app.notify("ann", 1).await;
            let cookie = format!("tidings_session={}", ann.cookie.as_deref().unwrap());
            let reply = reqwest::Client::new()
                .post(format!("{}/api/trpc/notifications.markAllAsRead", app.base))
                .header("content-type", "application/json")
                .header("cookie", cookie)
                .header("origin", "https://app.example")
                .body(r#"{"json":{}}"#)
                .send()
                .await
                .unwrap();
            assert_eq!(reply.status(), 200);
            let headers = reply.headers();
            assert_eq!(
                headers.get("access-control-allow-origin").unwrap(),
                "https://app.example"
            );
            assert_eq!(
                headers.get("access-control-allow-credentials").unwrap(),
                "true"
            );
            app.stop().await;
        },
    )
    .await;
}

#[tokio::test]
async fn a_role_change_or_deletion_takes_effect_on_the_next_request() {
    each_backend(|app| async move {
        let boss = app.admin("boss", "acme").await;
        assert_eq!(boss.query("users.list", Value::Null).await.status, 200);
        let demoted = app
            .service()
            .mutate("users.update", json!({"id": "boss", "role": "user"}))
            .await;
        assert_eq!(demoted.status, 200, "{demoted:?}");
        assert_eq!(
            boss.query("users.list", Value::Null).await.error_code(),
            "FORBIDDEN"
        );
        let deleted = app
            .service()
            .mutate("users.delete", json!({"id": "boss"}))
            .await;
        assert_eq!(deleted.status, 200);
        assert_eq!(
            boss.query("notifications.unreadCount", Value::Null)
                .await
                .status,
            401
        );
        app.stop().await;
    })
    .await;
}
