//! The authorization matrix: every registered procedure, called as each kind of principal, with
//! inputs aimed at someone else's objects, answers what the table below says, and a refused call
//! changes nothing.
//!
//! The table is checked against the registry itself, so a new procedure without a row fails
//! here until someone decides who may call it.

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{SecondsFormat, Utc};
use serde_json::{Value, json};
use tidings_procedures::{Kind, Registry};
use tidings_tests::{Client, TestApp, each_backend, encode_component};

/// Who calls. Ann and Bob are users of organization `acme`, Boss is its admin, Rival is the
/// admin of `globex`. Inputs aim at Ann's notifications and at `acme`'s users and groups.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Principal {
    Anonymous,
    /// Ann herself, the owner of the objects aimed at.
    User,
    /// Bob, another user of Ann's organization.
    OtherUser,
    /// Rival, the admin of another organization.
    ForeignAdmin,
    /// Boss, the admin of Ann's organization.
    Admin,
    Service,
}

use Principal::*;

const PRINCIPALS: [Principal; 6] = [Anonymous, User, OtherUser, ForeignAdmin, Admin, Service];

/// What a call must answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Want {
    /// A success.
    Allowed,
    Unauthorized,
    Forbidden,
    /// The object is invisible: the answer of an unknown id.
    NotFound,
    /// A cross-organization reference refused as unknown (a field error, like an unknown id).
    Unknown,
}

use Want::*;

impl Want {
    fn code(self) -> Option<&'static str> {
        match self {
            Allowed => None,
            Unauthorized => Some("UNAUTHORIZED"),
            Forbidden => Some("FORBIDDEN"),
            NotFound => Some("NOT_FOUND"),
            Unknown => Some("BAD_REQUEST"),
        }
    }
}

// Rows, in the order of PRINCIPALS: anonymous, user, other user, foreign admin, admin, service.
/// Anyone.
const PUBLIC: [Want; 6] = [Allowed, Allowed, Allowed, Allowed, Allowed, Allowed];
/// A signed-in user acting on their own data.
const OWN: [Want; 6] = [Unauthorized, Allowed, Allowed, Allowed, Allowed, Forbidden];
/// A user acting on Ann's notification: hers alone.
const ANNS: [Want; 6] = [
    Unauthorized,
    Allowed,
    Forbidden,
    Forbidden,
    Forbidden,
    Forbidden,
];
/// Ann's own object (a push subscription): anyone else is told it does not exist.
const ANNS_ONLY: [Want; 6] = [
    Unauthorized,
    Allowed,
    NotFound,
    NotFound,
    NotFound,
    Forbidden,
];
/// Admins and services, on instance-wide things (banners, types) or their own organization.
const ADMIN: [Want; 6] = [
    Unauthorized,
    Forbidden,
    Forbidden,
    Allowed,
    Allowed,
    Allowed,
];
/// Admins and services on `acme`'s objects: invisible to the other organization's admin.
const ACME_HIDDEN: [Want; 6] = [
    Unauthorized,
    Forbidden,
    Forbidden,
    NotFound,
    Allowed,
    Allowed,
];
/// Admins and services naming `acme` itself: refused to the other organization's admin.
const ACME_NAMED: [Want; 6] = [
    Unauthorized,
    Forbidden,
    Forbidden,
    Forbidden,
    Allowed,
    Allowed,
];
/// Admins and services referring to `acme`'s users or groups: unknown to the other admin.
const ACME_UNKNOWN: [Want; 6] = [
    Unauthorized,
    Forbidden,
    Forbidden,
    Unknown,
    Allowed,
    Allowed,
];
/// A service key only.
const SERVICE: [Want; 6] = [
    Unauthorized,
    Forbidden,
    Forbidden,
    Forbidden,
    Forbidden,
    Allowed,
];
/// Users of the banner's organization.
const ACME_USERS: [Want; 6] = [Unauthorized, Allowed, Allowed, NotFound, Allowed, Forbidden];

/// Every procedure and what each principal gets. A procedure missing here fails the test.
const TABLE: &[(&str, [Want; 6])] = &[
    ("auth.login", PUBLIC),
    ("auth.logout", OWN),
    ("auth.logoutAll", OWN),
    ("auth.me", OWN),
    ("sessions.create", SERVICE),
    ("organizations.create", ADMIN),
    ("organizations.list", ADMIN),
    ("users.create", ACME_NAMED),
    ("users.list", ACME_NAMED),
    ("users.update", ACME_HIDDEN),
    ("users.delete", ACME_HIDDEN),
    ("users.upsertMany", ACME_NAMED),
    ("groups.create", ACME_NAMED),
    ("groups.list", ACME_NAMED),
    ("groups.addMembers", ACME_HIDDEN),
    ("groups.removeMembers", ACME_HIDDEN),
    ("notifications.create", ACME_UNKNOWN),
    ("notifications.get", ACME_HIDDEN),
    ("notifications.query", ADMIN),
    ("notifications.update", ACME_HIDDEN),
    ("notifications.updateMany", ACME_UNKNOWN),
    ("notifications.deleteMany", ACME_UNKNOWN),
    ("banners.create", ADMIN),
    ("banners.update", ADMIN),
    ("banners.delete", ADMIN),
    ("banners.list", ADMIN),
    ("banners.current", OWN),
    ("banners.dismiss", ACME_USERS),
    ("notifications.notify", ACME_UNKNOWN),
    ("notificationTypes.upsert", ADMIN),
    ("notificationTypes.list", ADMIN),
    ("notifications.list", OWN),
    ("notifications.unreadCount", OWN),
    ("notifications.counts", OWN),
    ("notifications.markAsRead", ANNS),
    ("notifications.markAllAsRead", OWN),
    ("notifications.markAllAsSeen", OWN),
    ("notifications.delete", ANNS),
    ("notifications.archive", ANNS),
    ("notifications.onNew", OWN),
    ("notifications.onCounts", OWN),
    ("notifications.getPreferences", OWN),
    ("notifications.updatePreferences", OWN),
    ("notifications.disableAllEmail", OWN),
    ("notifications.types", OWN),
    ("deliveries.list", ADMIN),
    ("push.vapidPublicKey", PUBLIC),
    ("push.subscribe", OWN),
    ("push.unsubscribe", ANNS_ONLY),
];

fn want(procedure: &str) -> [Want; 6] {
    TABLE
        .iter()
        .find(|(name, _)| *name == procedure)
        .map(|(_, wants)| *wants)
        .unwrap_or_else(|| panic!("{procedure} has no row in the authorization table"))
}

#[test]
fn every_registered_procedure_has_a_row() {
    let registered: BTreeSet<&str> = Registry::new().iter().map(|p| p.name).collect();
    let table: BTreeSet<&str> = TABLE.iter().map(|(name, _)| *name).collect();
    let missing: Vec<_> = registered.difference(&table).collect();
    assert!(
        missing.is_empty(),
        "procedures without a row in the authorization table: {missing:?}"
    );
    let stale: Vec<_> = table.difference(&registered).collect();
    assert!(stale.is_empty(), "rows for no procedure: {stale:?}");
    assert_eq!(TABLE.len(), table.len(), "a procedure has two rows");
}

fn ts(offset_hours: i64) -> String {
    (Utc::now() + chrono::Duration::hours(offset_hours))
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn ok(reply: &tidings_tests::Reply) -> Value {
    assert_eq!(reply.status, 200, "{reply:?}");
    reply.data().clone()
}

/// The people and objects every call aims at.
struct World {
    group: String,
    banner_type: &'static str,
}

async fn world(app: &TestApp) -> World {
    let service = app.service();
    for org in ["acme", "globex"] {
        ok(&service
            .mutate("organizations.create", json!({"id": org, "name": org}))
            .await);
    }
    for (id, org, role) in [
        ("ann", "acme", "user"),
        ("bob", "acme", "user"),
        ("boss", "acme", "admin"),
        ("rival", "globex", "admin"),
        ("carl", "globex", "user"),
    ] {
        ok(&service
            .mutate(
                "users.create",
                json!({"id": id, "email": format!("{id}@example.com"), "name": id,
                       "organizationId": org, "role": role}),
            )
            .await);
    }
    // Ann signs in with a password in `auth.login`'s row.
    ok(&service
        .mutate(
            "users.update",
            json!({"id": "ann", "password": "password-ann"}),
        )
        .await);
    let group = ok(&service
        .mutate(
            "groups.create",
            json!({"name": "acme team", "organizationId": "acme", "userIds": ["ann", "bob"]}),
        )
        .await)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    ok(&service
        .mutate(
            "notificationTypes.upsert",
            json!({"key": "authzNote", "titleTemplate": "Note", "messageTemplate": "A note",
                   "channels": {"inApp": true}}),
        )
        .await);
    app.notify("ann", 3).await;
    app.notify("carl", 1).await;
    World {
        group,
        banner_type: "ANNOUNCEMENT",
    }
}

/// A new session for `user`, minted by the service key (cheaper than a password sign-in, and
/// a call that signs out spoils only its own session).
async fn session(app: &TestApp, user: &str) -> Client {
    let reply = app
        .service()
        .mutate("sessions.create", json!({"userId": user}))
        .await;
    let mut client = app.anonymous();
    client.cookie = Some(ok(&reply)["token"].as_str().unwrap().to_owned());
    client.user_id = Some(user.to_owned());
    client
}

async fn client(app: &TestApp, principal: Principal) -> Client {
    match principal {
        Anonymous => app.anonymous(),
        User => session(app, "ann").await,
        OtherUser => session(app, "bob").await,
        ForeignAdmin => session(app, "rival").await,
        Admin => session(app, "boss").await,
        Service => app.service(),
    }
}

/// A browser's push subscription (the keys of RFC 8291's example), each time a new endpoint.
fn push_subscription() -> Value {
    json!({
        "endpoint": format!("https://push.example/{}", uuid::Uuid::now_v7()),
        "keys": {
            "p256dh": "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4",
            "auth": "BTBZMqHH6r4Tts7J_aSIgg",
        },
    })
}

fn banner(world: &World, to: &[&str]) -> Value {
    json!({
        "title": "Maintenance", "message": "Tonight", "type": world.banner_type,
        "isDismissible": true, "startDate": ts(-1), "endDate": ts(1),
        "notificationTo": to, "isActive": false,
    })
}

/// The input of one call, aimed at Ann's and `acme`'s objects; objects a call may destroy are
/// made anew for each call.
async fn input(app: &TestApp, world: &World, procedure: &str) -> Value {
    let service = app.service();
    let fresh_note = || async { app.notify("ann", 1).await.remove(0) };
    let fresh_banner = || async {
        ok(&service
            .mutate("banners.create", banner(world, &["acme"]))
            .await)["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    match procedure {
        "auth.login" => json!({"email": "ann@example.com", "password": "password-ann"}),
        "sessions.create" => json!({"userId": "ann"}),
        "organizations.create" => json!({"name": "Another"}),
        "users.create" => json!({"organizationId": "acme", "name": "New"}),
        "users.list" | "groups.list" => json!({"organizationId": "acme"}),
        "users.update" => json!({"id": "ann", "name": "Ann Renamed"}),
        "users.delete" => {
            let user = ok(&service
                .mutate("users.create", json!({"organizationId": "acme"}))
                .await);
            json!({"id": user["id"]})
        }
        "users.upsertMany" => json!({"users": [{"id": "ann", "name": "Ann Synced"}]}),
        "groups.create" => {
            json!({"name": format!("group {}", uuid::Uuid::now_v7()), "organizationId": "acme"})
        }
        "groups.addMembers" | "groups.removeMembers" => {
            json!({"groupId": world.group, "userIds": ["boss"]})
        }
        "notifications.create" => json!({"recipient": "ann", "subject": "Hello"}),
        "notifications.get" => json!({"id": fresh_note().await}),
        "notifications.query" => json!({"limit": 10}),
        "notifications.update" => {
            json!({"id": fresh_note().await, "data": {"subject": "Changed"}})
        }
        "notifications.updateMany" => {
            json!({"keys": [fresh_note().await], "data": {"read": true}})
        }
        "notifications.deleteMany" => json!({"keys": [fresh_note().await]}),
        "banners.create" => banner(world, &[]),
        "banners.update" => {
            json!({"notificationBannerId": fresh_banner().await, "input": {"title": "Changed"}})
        }
        "banners.delete" => json!({"notificationBannerId": fresh_banner().await}),
        "banners.list" => json!({"take": 5}),
        "banners.dismiss" => json!({"id": fresh_banner().await}),
        "notifications.notify" => json!({
            "key": "authzNote",
            "recipients": {"userGroups": {"operator": "OR", "userGroupIds": [world.group]}},
        }),
        "notificationTypes.upsert" => json!({
            "key": "authzOther", "titleTemplate": "T", "messageTemplate": "M",
            "channels": {"inApp": true},
        }),
        "notifications.list" => json!({"limit": 5}),
        "notifications.markAsRead" | "notifications.delete" | "notifications.archive" => {
            json!({"id": fresh_note().await})
        }
        "push.subscribe" => push_subscription(),
        // One of Ann's subscriptions, made anew for each call.
        "push.unsubscribe" => {
            let subscription = push_subscription();
            let ann = session(app, "ann").await;
            ok(&ann.mutate("push.subscribe", subscription.clone()).await);
            json!({"endpoint": subscription["endpoint"]})
        }
        "deliveries.list" => json!({"userId": "ann"}),
        "notifications.updatePreferences" => {
            json!({"channel": "email", "type": "ticketAssigned", "enabled": false})
        }
        _ => Value::Null,
    }
}

/// What Ann and `acme` look like from outside: a refused call must leave all of it unchanged.
async fn state(app: &TestApp) -> Value {
    let service = app.service();
    let ann = session(app, "ann").await;
    let mut all = serde_json::Map::new();
    for (name, input) in [
        ("users.list", json!({"limit": 1000})),
        ("groups.list", json!({})),
        ("notifications.query", json!({"limit": 1000})),
        ("banners.list", json!({"take": 100})),
        ("notificationTypes.list", Value::Null),
        ("organizations.list", Value::Null),
    ] {
        all.insert(name.to_owned(), ok(&service.query(name, input).await));
    }
    for (name, input) in [
        ("notifications.list", json!({"limit": 100})),
        (
            "notifications.list",
            json!({"limit": 100, "status": "archived"}),
        ),
        ("notifications.counts", Value::Null),
        ("notifications.getPreferences", Value::Null),
        ("banners.current", Value::Null),
        ("auth.me", Value::Null),
    ] {
        let key = format!("ann {name} {input}");
        all.insert(key, ok(&ann.query(name, input).await));
    }
    Value::Object(all)
}

/// A subscription's answer: `None` when it opened, else the error code it was refused with.
async fn subscribe(client: &Client, procedure: &str, input: &Value) -> Option<String> {
    let envelope = json!({ "json": input });
    let url = format!(
        "{}/api/trpc/{procedure}?input={}",
        client.base,
        encode_component(&envelope.to_string())
    );
    let mut req = reqwest::Client::new()
        .get(url)
        .header("accept", "text/event-stream");
    if let Some(cookie) = &client.cookie {
        req = req.header("cookie", format!("tidings_session={cookie}"));
    }
    if let Some(key) = &client.bearer {
        req = req.header("authorization", format!("Bearer {key}"));
    }
    let mut response = req.send().await.expect("request sent");
    assert_eq!(response.status(), 200);
    let mut text = String::new();
    // A refusal follows `connected` at once; an open stream sends data or nothing.
    let deadline = tokio::time::Instant::now() + Duration::from_millis(400);
    while let Ok(Ok(Some(chunk))) = tokio::time::timeout_at(deadline, response.chunk()).await {
        text.push_str(&String::from_utf8_lossy(&chunk));
        if text.contains("event: serialized-error") && text.ends_with("\n\n\n") {
            break;
        }
    }
    assert!(
        text.starts_with("event: connected\n"),
        "{procedure}: {text:?}"
    );
    let error = text.split("event: serialized-error\ndata: ").nth(1)?;
    let error: Value = serde_json::from_str(error.lines().next()?).expect("error JSON");
    Some(error["json"]["data"]["code"].as_str()?.to_owned())
}

/// Calls `procedure` over tRPC: the error code, or `None` on success.
async fn call_trpc(client: &Client, kind: Kind, procedure: &str, input: Value) -> Option<String> {
    let reply = match kind {
        Kind::Query => client.query(procedure, input).await,
        Kind::Mutation => client.mutate(procedure, input).await,
        Kind::Subscription => return subscribe(client, procedure, &input).await,
    };
    if reply.status == 200 {
        None
    } else {
        Some(reply.error_code().to_owned())
    }
}

/// Calls `procedure` over JSON-RPC (`POST /rpc`): the error code, or `None` on success.
async fn call_json_rpc(client: &Client, procedure: &str, input: Value) -> Option<String> {
    let mut req = reqwest::Client::new()
        .post(format!("{}/rpc", client.base))
        .header("content-type", "application/json");
    if let Some(cookie) = &client.cookie {
        req = req.header("cookie", format!("tidings_session={cookie}"));
    }
    if let Some(key) = &client.bearer {
        req = req.header("authorization", format!("Bearer {key}"));
    }
    let mut body = json!({"jsonrpc": "2.0", "id": 1, "method": procedure});
    if !input.is_null() {
        body["params"] = input;
    }
    let reply: Value = req
        .body(body.to_string())
        .send()
        .await
        .expect("request sent")
        .json()
        .await
        .expect("a JSON-RPC answer");
    if reply.get("result").is_some() {
        return None;
    }
    Some(
        reply["error"]["data"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("{procedure}: {reply}"))
            .to_owned(),
    )
}

fn check(procedure: &str, principal: Principal, wanted: Want, got: Option<String>, over: &str) {
    assert_eq!(
        got.as_deref(),
        wanted.code(),
        "{procedure} as {principal:?} over {over}: wanted {wanted:?}"
    );
}

#[tokio::test]
async fn every_procedure_answers_every_principal_as_the_table_says() {
    each_backend(|app| async move {
        let world = world(&app).await;
        let registry = Registry::new();
        let mut before = state(&app).await;
        for procedure in registry.iter() {
            let wants = want(procedure.name);
            for (principal, wanted) in PRINCIPALS.into_iter().zip(wants) {
                let input = input(&app, &world, procedure.name).await;
                if wanted != Allowed {
                    before = state(&app).await;
                }
                let client = client(&app, principal).await;
                let got = call_trpc(&client, procedure.kind, procedure.name, input).await;
                check(procedure.name, principal, wanted, got, "tRPC");
                if wanted != Allowed {
                    assert_eq!(
                        state(&app).await,
                        before,
                        "{} as {principal:?} was refused but changed something",
                        procedure.name
                    );
                }
            }
        }
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn json_rpc_answers_every_principal_as_the_table_says() {
    each_backend(|app| async move {
        let world = world(&app).await;
        for procedure in Registry::new().iter() {
            if procedure.kind == Kind::Subscription {
                continue;
            }
            for (principal, wanted) in PRINCIPALS.into_iter().zip(want(procedure.name)) {
                let input = input(&app, &world, procedure.name).await;
                let client = client(&app, principal).await;
                let got = call_json_rpc(&client, procedure.name, input).await;
                check(procedure.name, principal, wanted, got, "JSON-RPC");
            }
        }
        app.stop().await;
    })
    .await;
}

/// Lists an admin of another organization may read hold nothing of `acme`.
#[tokio::test]
async fn another_organizations_admin_sees_nothing_of_acme() {
    each_backend(|app| async move {
        let world = world(&app).await;
        let rival = client(&app, ForeignAdmin).await;
        for (name, input) in [
            ("organizations.list", Value::Null),
            ("users.list", json!({})),
            ("groups.list", json!({})),
            ("notifications.query", json!({"limit": 1000})),
            (
                "notifications.query",
                json!({"filter": {"recipient": {"_eq": "ann"}}}),
            ),
            ("deliveries.list", json!({})),
            ("deliveries.list", json!({"userId": "ann"})),
        ] {
            let seen = ok(&rival.query(name, input).await).to_string();
            for secret in ["acme", "\"ann\"", "\"bob\"", &world.group] {
                assert!(!seen.contains(secret), "{name} shows {secret}: {seen}");
            }
        }
        // Their own organization they do see.
        let users = ok(&rival.query("users.list", json!({})).await).to_string();
        assert!(users.contains("carl"), "{users}");
        app.stop().await;
    })
    .await;
}
