//! Notification records, Directus-style (seed 002): read one, query with filters, sort, pages
//! and counts, update one or many, delete many; admins inside their organization, services
//! everywhere, users never.

use chrono::{SecondsFormat, Utc};
use serde_json::{Value, json};
use tidings_tests::{Client, Reply, TestApp, each_backend};

fn error(reply: &Reply) -> (&str, &str) {
    (reply.error_code(), reply.error_message())
}

/// Creates records through the service, a thousand a call; returns them in order.
async fn create(app: &TestApp, records: Vec<Value>) -> Vec<Value> {
    let mut created = Vec::new();
    for chunk in records.chunks(1000) {
        let reply = app
            .service()
            .mutate("notifications.create", Value::Array(chunk.to_vec()))
            .await;
        assert_eq!(reply.status, 200, "{reply:?}");
        created.extend(reply.data().as_array().unwrap().iter().cloned());
    }
    created
}

/// `count` records for `recipient`; returns their ids.
async fn many(app: &TestApp, recipient: &str, count: usize) -> Vec<String> {
    let records = (0..count)
        .map(|i| json!({"recipient": recipient, "subject": format!("bulk {i}")}))
        .collect();
    create(app, records)
        .await
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect()
}

fn ids(reply: &Reply) -> Vec<String> {
    reply.data()["data"]
        .as_array()
        .unwrap_or_else(|| panic!("{reply:?}"))
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn unread(user: &Client) -> u64 {
    user.query("notifications.unreadCount", Value::Null)
        .await
        .data()["count"]
        .as_u64()
        .unwrap()
}

#[tokio::test]
async fn get_reads_one_record_and_admins_see_only_their_organization() {
    each_backend(|app| async move {
        let ann = app.user("ann").await;
        app.user_in("gus", "globex", "user").await;
        let boss = app.admin("boss", "acme").await;
        let created = create(
            &app,
            vec![
                json!({"recipient": "ann", "subject": "Mentioned", "message": "in articles", "senderId": "bob",
                       "collection": "articles", "item": "1", "data": {"k": [1, 2]}}),
                json!({"recipient": "gus", "subject": "Theirs"}),
            ],
        )
        .await;
        let (mine, theirs) = (&created[0], &created[1]);

        let got = boss.query("notifications.get", json!({"id": mine["id"]})).await;
        assert_eq!(got.data(), mine, "get answers what create answered");
        assert_eq!(got.data()["organizationId"], "acme");
        let foreign = boss.query("notifications.get", json!({"id": theirs["id"]})).await;
        let not_found = format!("Notification {} not found", theirs["id"].as_str().unwrap());
        assert_eq!(error(&foreign), ("NOT_FOUND", not_found.as_str()));
        let service = app.service();
        assert_eq!(
            service.query("notifications.get", json!({"id": theirs["id"]})).await.data(),
            theirs
        );
        let ghost = uuid::Uuid::now_v7().to_string();
        let reply = service.query("notifications.get", json!({"id": ghost})).await;
        assert_eq!(reply.error_code(), "NOT_FOUND");
        let reply = service.query("notifications.get", json!({"id": "nope"})).await;
        assert_eq!(error(&reply), ("BAD_REQUEST", "id: must be a UUID, got \"nope\""));

        // Users never reach the records procedures, not even for their own notifications.
        let id = mine["id"].clone();
        for (procedure, input, query) in [
            ("notifications.get", json!({"id": id}), true),
            ("notifications.query", json!({}), true),
            ("notifications.update", json!({"id": id, "data": {"subject": "x"}}), false),
            ("notifications.updateMany", json!({"keys": [id], "data": {"subject": "x"}}), false),
            ("notifications.deleteMany", json!({"keys": [id]}), false),
        ] {
            let reply = if query {
                ann.query(procedure, input).await
            } else {
                ann.mutate(procedure, input).await
            };
            assert_eq!(error(&reply), ("FORBIDDEN", "Requires the admin role"), "{procedure}");
        }
        let reply = app.anonymous().query("notifications.query", json!({})).await;
        assert_eq!(reply.status, 401);
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn query_filters_sorts_pages_and_counts() {
    each_backend(|app| async move {
        for name in ["ann", "bob"] {
            app.user(name).await;
        }
        app.user_in("gus", "globex", "user").await;
        let first = create(
            &app,
            vec![
                json!({"recipient": "ann", "subject": "r0", "senderId": "bob", "collection": "tickets", "item": "1"}),
                json!({"recipient": "ann", "subject": "r1", "senderId": "bob", "collection": "tickets", "item": "2"}),
                json!({"recipient": "ann", "subject": "r2", "collection": "articles", "item": "1"}),
                json!({"recipient": "ann", "subject": "r3"}),
                json!({"recipient": "bob", "subject": "r4", "senderId": "ann", "collection": "tickets", "item": "1", "type": "ticketAssigned"}),
                json!({"recipient": "gus", "subject": "r5", "senderId": "bob", "collection": "tickets", "item": "1"}),
            ],
        )
        .await;
        // Every record of the first call was created before this instant, every later one after.
        let between = Utc::now().to_rfc3339_opts(SecondsFormat::Nanos, true);
        let second = create(
            &app,
            vec![
                json!({"recipient": "ann", "subject": "r6", "type": "ticketAssigned"}),
                json!({"recipient": "bob", "subject": "r7", "collection": "articles"}),
            ],
        )
        .await;
        let all: Vec<Value> = first.into_iter().chain(second).collect();
        let id = |i: usize| all[i]["id"].as_str().unwrap().to_owned();
        let service = app.service();
        let read = service
            .mutate("notifications.update", json!({"id": id(1), "data": {"read": true}}))
            .await;
        assert_eq!(read.status, 200, "{read:?}");
        service
            .mutate("notifications.update", json!({"id": id(2), "data": {"status": "archived"}}))
            .await;

        let query = |input: Value| {
            let service = service.clone();
            async move { ids(&service.query("notifications.query", input).await) }
        };
        let expect = |indexes: &[usize]| indexes.iter().map(|&i| id(i)).collect::<Vec<_>>();
        let cases = [
            (json!({}), vec![7, 6, 5, 4, 3, 2, 1, 0]),
            (json!({"filter": {"recipient": "ann"}}), vec![6, 3, 2, 1, 0]),
            (json!({"filter": {"recipient": {"_in": ["ann", "bob"]}, "collection": {"_null": false}}}), vec![7, 4, 2, 1, 0]),
            (json!({"filter": {"senderId": {"_eq": "bob"}}}), vec![5, 1, 0]),
            (json!({"filter": {"senderId": {"_null": true}}}), vec![7, 6, 3, 2]),
            (json!({"filter": {"collection": {"_in": ["tickets", "articles"]}}}), vec![7, 5, 4, 2, 1, 0]),
            (json!({"filter": {"collection": "tickets", "item": "1"}}), vec![5, 4, 0]),
            (json!({"filter": {"type": "ticketAssigned"}}), vec![6, 4]),
            (json!({"filter": {"status": "archived"}}), vec![2]),
            (json!({"filter": {"status": {"_in": ["inbox"]}, "recipient": "ann"}}), vec![6, 3, 1, 0]),
            (json!({"filter": {"read": true}}), vec![1]),
            (json!({"filter": {"read": {"_eq": false}}}), vec![7, 6, 5, 4, 3, 2, 0]),
            (json!({"filter": {"timestamp": {"_gte": between}}}), vec![7, 6]),
            (json!({"filter": {"timestamp": {"_lt": between}}}), vec![5, 4, 3, 2, 1, 0]),
            (json!({"filter": {"timestamp": {"_gt": "2000-01-01T00:00:00Z", "_lte": between}}}), vec![5, 4, 3, 2, 1, 0]),
            (json!({"sort": "timestamp"}), vec![0, 1, 2, 3, 4, 5, 6, 7]),
            (json!({"sort": ["-timestamp"], "limit": 3, "offset": 2}), vec![5, 4, 3]),
            (json!({"sort": ["timestamp"], "limit": 2, "offset": 7}), vec![7]),
            (json!({"offset": 8}), vec![]),
        ];
        for (input, want) in cases {
            assert_eq!(query(input.clone()).await, expect(&want), "{input}");
        }

        // Counts when asked: everything in scope, and what the filter matches.
        let reply = service
            .query("notifications.query", json!({"filter": {"recipient": "ann"}, "limit": 2, "meta": "*"}))
            .await;
        assert_eq!(ids(&reply), expect(&[6, 3]));
        assert_eq!(reply.data()["meta"], json!({"totalCount": 8, "filterCount": 5}));
        let reply = service
            .query("notifications.query", json!({"limit": 1, "meta": ["filterCount"]}))
            .await;
        assert_eq!(reply.data()["meta"], json!({"filterCount": 8}));
        let reply = service.query("notifications.query", json!({"limit": 1})).await;
        assert!(reply.data().get("meta").is_none(), "no counts unless asked");
        let record = &service
            .query("notifications.query", json!({"filter": {"recipient": "bob", "type": "ticketAssigned"}}))
            .await
            .data()["data"][0]
            .clone();
        assert_eq!(record, &all[4]);

        // An admin's queries stay inside its organization.
        let boss = app.admin("boss", "acme").await;
        let reply = boss
            .query("notifications.query", json!({"meta": "totalCount"}))
            .await;
        assert_eq!(ids(&reply), expect(&[7, 6, 4, 3, 2, 1, 0]));
        assert_eq!(reply.data()["meta"], json!({"totalCount": 7}));
        let reply = boss
            .query("notifications.query", json!({"filter": {"recipient": "gus"}}))
            .await;
        assert!(ids(&reply).is_empty());

        let cases = [
            (json!({"limit": 0}), "limit: must be between 1 and 1000, got 0"),
            (json!({"limit": 1001}), "limit: must be between 1 and 1000, got 1001"),
            (json!({"offset": -1}), "offset: must be 0 or more, got -1"),
            (json!({"filter": {"status": "archive"}}), "filter.status: must be \"inbox\" or \"archived\", got \"archive\""),
            (json!({"filter": {"status": {"_in": ["inbox", "done"]}}}), "filter.status._in[1]: must be \"inbox\" or \"archived\", got \"done\""),
            (json!({"filter": {"recipient": {"_null": true}}}), "filter.recipient: must be a string, {_eq: string} or {_in: [string]}"),
            (json!({"filter": {"senderId": 5}}), "filter.senderId: must be a string, {_eq: string}, {_in: [string]} or {_null: bool}"),
            (json!({"filter": {"collection": {"_in": []}}}), "filter.collection._in: must hold 1 to 1000 values, got 0"),
            (json!({"filter": {"item": {"_in": ["1", 2]}}}), "filter.item._in[1]: must be a string"),
            (json!({"filter": {"read": "yes"}}), "filter.read: must be true, false or {_eq: bool}"),
            (json!({"filter": {"timestamp": {"_after": "2025-01-01T00:00:00Z"}}}), "filter.timestamp._after: unknown operator, expected _gt, _gte, _lt or _lte"),
            (json!({"filter": {"timestamp": {"_gt": "today"}}}), "filter.timestamp._gt: must be an ISO-8601 date-time such as 2025-01-25T11:59:36.809Z, got \"today\""),
            (json!({"filter": {"sender": "bob"}}), "filter.sender: unknown field `sender`, expected one of `recipient`, `senderId`, `status`, `type`, `collection`, `item`, `read`, `timestamp`"),
            (json!({"sort": "subject"}), "sort: must be \"timestamp\" or \"-timestamp\", got \"subject\""),
            (json!({"meta": "count"}), "meta: must be \"totalCount\", \"filterCount\" or \"*\", got \"count\""),
        ];
        for (input, message) in cases {
            let reply = service.query("notifications.query", input.clone()).await;
            assert_eq!(error(&reply), ("BAD_REQUEST", message), "{input}");
        }
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn update_changes_one_record_without_touching_the_rest() {
    each_backend(|app| async move {
        let ann = app.user("ann").await;
        let boss = app.admin("boss", "acme").await;
        let rival = app.admin("rival", "globex").await;
        let record = create(
            &app,
            vec![json!({"recipient": "ann", "subject": "Old", "message": "old body", "collection": "tickets", "item": "7", "senderId": "bob", "data": {"a": 1}})],
        )
        .await[0]
            .clone();
        let id = record["id"].as_str().unwrap().to_owned();
        let update = |data: Value| {
            let boss = boss.clone();
            let id = id.clone();
            async move {
                boss.mutate("notifications.update", json!({"id": id, "data": data}))
                    .await
            }
        };

        // Directus' example, then more fields at once.
        let reply = update(json!({"message": "This is my updated notification"})).await;
        assert_eq!(reply.data()["message"], "This is my updated notification");
        let reply = update(json!({"subject": "New", "data": {"b": 2}})).await;
        let changed = reply.data();
        assert_eq!(changed["subject"], "New");
        assert_eq!(changed["data"], json!({"b": 2}));
        for unchanged in ["id", "recipient", "senderId", "collection", "item", "timestamp", "type", "status", "read"] {
            assert_eq!(changed[unchanged], record[unchanged], "{unchanged}");
        }

        // Read and unread: the first read time stays until the record is unread.
        let reply = update(json!({"read": true})).await;
        let read_at = reply.data()["readAt"].as_str().unwrap().to_owned();
        assert_eq!(unread(&ann).await, 0);
        let reply = update(json!({"read": true, "subject": "Again"})).await;
        assert_eq!(reply.data()["readAt"], read_at.as_str());
        let reply = update(json!({"read": false})).await;
        assert_eq!((&reply.data()["read"], &reply.data()["readAt"]), (&json!(false), &Value::Null));
        assert_eq!(unread(&ann).await, 1);

        // Archived records leave the inbox, and come back.
        update(json!({"status": "archived"})).await;
        let inbox = ann.query("notifications.list", Value::Null).await;
        assert_eq!(inbox.data()["notifications"], json!([]));
        let archive = ann.query("notifications.list", json!({"status": "archived"})).await;
        assert_eq!(archive.data()["notifications"][0]["title"], "Again");
        update(json!({"status": "inbox"})).await;
        assert_eq!(unread(&ann).await, 1);

        // null clears the optional fields.
        let reply = update(json!({"data": null, "collection": null, "item": null})).await;
        let cleared = reply.data();
        assert_eq!((&cleared["data"], &cleared["collection"], &cleared["item"]), (&Value::Null, &Value::Null, &Value::Null));

        let cases = [
            (json!({}), "data: name at least one field to change: subject, message, status, read, data, collection or item"),
            (json!({"recipient": "bob"}), "data.recipient: unknown field `recipient`, expected one of `subject`, `message`, `status`, `read`, `data`, `collection`, `item`"),
            (json!({"status": "archive"}), "data.status: must be \"inbox\" or \"archived\", got \"archive\""),
            (json!({"subject": ""}), "data.subject: must be 1 to 500 characters, got 0"),
            (json!({"subject": null}), "data.subject: must not be null"),
            (json!({"read": null}), "data.read: must not be null"),
            (json!({"read": "yes"}), "data.read: invalid type: string \"yes\", expected a boolean"),
            (json!({"data": [1]}), "data.data: must be an object or null"),
            (json!({"collection": ""}), "data.collection: must be 1 to 100 characters, got 0"),
        ];
        for (data, message) in cases {
            let reply = update(data.clone()).await;
            assert_eq!(error(&reply), ("BAD_REQUEST", message), "{data}");
        }
        let reply = boss.mutate("notifications.update", json!({"id": id})).await;
        assert_eq!(error(&reply), ("BAD_REQUEST", "data: is required"));
        let not_found = format!("Notification {id} not found");
        let reply = rival
            .mutate("notifications.update", json!({"id": id, "data": {"subject": "Mine now"}}))
            .await;
        assert_eq!(error(&reply), ("NOT_FOUND", not_found.as_str()), "another organization's record");
        let ghost = uuid::Uuid::now_v7().to_string();
        let reply = boss
            .mutate("notifications.update", json!({"id": ghost, "data": {"subject": "x"}}))
            .await;
        assert_eq!(reply.error_code(), "NOT_FOUND");
        let now = app.service().query("notifications.get", json!({"id": id})).await;
        assert_eq!(now.data()["subject"], "Again", "failed updates changed nothing");
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn bulk_changes_on_thousands_of_keys_are_all_or_nothing() {
    each_backend(|app| async move {
        let ann = app.user("ann").await;
        app.user_in("gus", "globex", "user").await;
        let keys = many(&app, "ann", 3000).await;
        let service = app.service();
        let ghosts: Vec<String> = (0..3).map(|_| uuid::Uuid::now_v7().to_string()).collect();
        let mut with_ghosts = keys.clone();
        with_ghosts.insert(1500, ghosts[1].clone());
        with_ghosts.insert(0, ghosts[0].clone());
        with_ghosts.push(ghosts[2].clone());
        let naming = format!("keys: unknown notifications: {}", ghosts.join(", "));

        let reply = service
            .mutate("notifications.updateMany", json!({"keys": with_ghosts, "data": {"read": true}}))
            .await;
        assert_eq!(error(&reply), ("BAD_REQUEST", naming.as_str()));
        assert_eq!(unread(&ann).await, 3000, "nothing changed");
        let reply = service
            .mutate("notifications.deleteMany", json!({"keys": with_ghosts}))
            .await;
        assert_eq!(error(&reply), ("BAD_REQUEST", naming.as_str()));
        assert_eq!(unread(&ann).await, 3000, "nothing deleted");

        // Many unknown keys: the first twenty are named, the rest counted.
        let many_ghosts: Vec<String> = (0..25).map(|_| uuid::Uuid::now_v7().to_string()).collect();
        let with_many_ghosts = [keys.clone(), many_ghosts.clone()].concat();
        let reply = service
            .mutate("notifications.deleteMany", json!({"keys": with_many_ghosts}))
            .await;
        assert_eq!(
            error(&reply),
            ("BAD_REQUEST", format!("keys: unknown notifications: {} and 5 more", many_ghosts[..20].join(", ")).as_str())
        );

        // All known: every record changes, and comes back in the order of the keys.
        let mut shuffled = keys.clone();
        shuffled.reverse();
        shuffled.push(keys[0].clone());
        let reply = service
            .mutate("notifications.updateMany", json!({"keys": shuffled, "data": {"read": true, "collection": "bulk"}}))
            .await;
        let updated = reply.data().as_array().unwrap_or_else(|| panic!("{reply:?}"));
        assert_eq!(updated.len(), 3000, "each record once");
        let order: Vec<&str> = updated.iter().map(|r| r["id"].as_str().unwrap()).collect();
        assert_eq!(order, keys.iter().rev().map(String::as_str).collect::<Vec<_>>());
        assert!(updated.iter().all(|r| r["read"] == true && r["collection"] == "bulk"));
        assert_eq!(unread(&ann).await, 0);

        // An admin reaches only its organization: another's key is unknown to it.
        let theirs = many(&app, "gus", 1).await;
        let boss = app.admin("boss", "acme").await;
        let reply = boss
            .mutate("notifications.updateMany", json!({"keys": [keys[0].clone(), theirs[0].clone()], "data": {"read": false}}))
            .await;
        assert_eq!(error(&reply), ("BAD_REQUEST", format!("keys: unknown notifications: {}", theirs[0]).as_str()));
        let reply = boss
            .mutate("notifications.deleteMany", json!({"keys": [theirs[0].clone()]}))
            .await;
        assert_eq!(reply.error_code(), "BAD_REQUEST");

        // Deleting: a count, and the records are gone.
        let reply = boss
            .mutate("notifications.deleteMany", json!({"keys": keys[..2000]}))
            .await;
        assert_eq!(reply.data(), &json!({"success": true, "count": 2000}));
        let left = service
            .query("notifications.query", json!({"filter": {"recipient": "ann"}, "limit": 1, "meta": "filterCount"}))
            .await;
        assert_eq!(left.data()["meta"]["filterCount"], 1000);
        let gone = service.query("notifications.get", json!({"id": keys[0]})).await;
        assert_eq!(gone.error_code(), "NOT_FOUND");

        let too_many: Vec<String> = (0..10_001).map(|_| keys[2500].clone()).collect();
        let cases = [
            ("notifications.deleteMany", json!({"keys": []}), "keys: must hold 1 to 10000 ids, got 0"),
            ("notifications.deleteMany", json!({"keys": too_many}), "keys: must hold 1 to 10000 ids, got 10001"),
            ("notifications.updateMany", json!({"keys": [keys[2500], "x"], "data": {"read": true}}), "keys[1]: must be a UUID, got \"x\""),
            ("notifications.updateMany", json!({"keys": [keys[2500]], "data": {}}), "data: name at least one field to change: subject, message, status, read, data, collection or item"),
            ("notifications.updateMany", json!({"keys": [keys[2500]]}), "data: is required"),
            ("notifications.deleteMany", json!([keys[2500]]), "input: must be an object, got an array"),
        ];
        for (procedure, input, message) in cases {
            let reply = service.mutate(procedure, input).await;
            assert_eq!(error(&reply), ("BAD_REQUEST", message), "{procedure}");
        }
        app.stop().await;
    })
    .await;
}
