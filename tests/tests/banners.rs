//! Banners (seed 001): admin CRUD, one active at a time (also under concurrent activations),
//! the time window, organization targeting, per-user dismissal, listing, and who may do what.

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde_json::{Value, json};
use tidings_tests::{Client, Reply, TestApp, each_backend};

fn at(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A valid `banners.create` input shown from an hour ago to an hour from now, to everyone.
fn banner(title: &str) -> Value {
    let now = Utc::now();
    json!({
        "title": title,
        "message": format!("{title} message"),
        "type": "ANNOUNCEMENT",
        "isDismissible": true,
        "startDate": at(now - Duration::hours(1)),
        "endDate": at(now + Duration::hours(1)),
        "notificationTo": [],
    })
}

/// `base` with the fields of `extra` set.
fn with(mut base: Value, extra: Value) -> Value {
    for (k, v) in extra.as_object().unwrap() {
        base[k] = v.clone();
    }
    base
}

async fn create(client: &Client, input: Value) -> Value {
    let reply = client.mutate("banners.create", input).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    reply.data().clone()
}

async fn current(user: &Client) -> Value {
    let reply = user.query("banners.current", Value::Null).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    reply.data().clone()
}

/// The ids of the active banners, from the admin listing.
async fn active_ids(client: &Client) -> Vec<String> {
    let reply = client
        .query(
            "banners.list",
            json!({"where": {"isActive": true}, "take": 100}),
        )
        .await;
    ids(&reply)
}

fn ids(reply: &Reply) -> Vec<String> {
    reply.data()["banners"]
        .as_array()
        .unwrap_or_else(|| panic!("{reply:?}"))
        .iter()
        .map(|b| b["id"].as_str().unwrap().to_owned())
        .collect()
}

fn error(reply: &Reply) -> (&str, &str) {
    (reply.error_code(), reply.error_message())
}

#[tokio::test]
async fn the_seed_operations_create_update_list_and_delete() {
    each_backend(|app| async move {
        let admin = app.admin("boss", "acme").await;
        // Seed 001, operation 1, verbatim.
        let created = create(
            &admin,
            json!({
                "title": "Test Notification 1",
                "message": "This is a sample notification to all users",
                "type": "ANNOUNCEMENT",
                "isDismissible": true,
                "startDate": "2025-01-25T11:59:36.809Z",
                "endDate": "2025-01-30T11:59:36.809Z",
                "notificationTo": []
            }),
        )
        .await;
        let id = created["id"].as_str().unwrap().to_owned();
        assert_eq!(uuid::Uuid::parse_str(&id).unwrap().get_version_num(), 7);
        let stamp = created["createdAt"].as_str().unwrap().to_owned();
        assert!(stamp.ends_with('Z') && stamp.len() == 24, "{stamp}");
        assert_eq!(
            created,
            json!({
                "id": id,
                "title": "Test Notification 1",
                "message": "This is a sample notification to all users",
                "link": null,
                "linkText": null,
                "startDate": "2025-01-25T11:59:36.809Z",
                "endDate": "2025-01-30T11:59:36.809Z",
                "isActive": true,
                "type": "ANNOUNCEMENT",
                "isDismissible": true,
                "notificationTo": [],
                "createdAt": stamp,
                "updatedAt": stamp,
            })
        );

        // Operation 2: a partial update.
        let updated = admin
            .mutate(
                "banners.update",
                json!({"notificationBannerId": id, "input": {"isActive": false}}),
            )
            .await;
        let updated = updated.data();
        assert_eq!(updated["isActive"], false);
        assert_eq!(updated["title"], "Test Notification 1");
        assert_eq!(updated["startDate"], "2025-01-25T11:59:36.809Z");
        assert_eq!(updated["createdAt"], stamp.as_str());
        assert!(updated["updatedAt"].as_str().unwrap() >= stamp.as_str());

        // Links are set and cleared; a link text needs a link.
        let linked = admin
            .mutate(
                "banners.update",
                json!({"notificationBannerId": id, "input": {"link": "https://status.example.com", "linkText": "Status"}}),
            )
            .await;
        assert_eq!(
            (&linked.data()["link"], &linked.data()["linkText"]),
            (&json!("https://status.example.com"), &json!("Status"))
        );
        let unlinked = admin
            .mutate(
                "banners.update",
                json!({"notificationBannerId": id, "input": {"link": null}}),
            )
            .await;
        assert_eq!(
            error(&unlinked),
            ("BAD_REQUEST", "input.linkText: needs a link to go with it")
        );
        let unlinked = admin
            .mutate(
                "banners.update",
                json!({"notificationBannerId": id, "input": {"link": null, "linkText": null}}),
            )
            .await;
        assert_eq!(unlinked.data()["link"], Value::Null);

        // Operation 4: the listing.
        let listed = admin.query("banners.list", json!({})).await;
        assert_eq!(ids(&listed), [id.as_str()]);
        assert_eq!(listed.data()["nextCursor"], Value::Null);
        assert_eq!(listed.data()["hasMore"], false);

        // Operation 3: delete returns the banner as it was, with createdAt and updatedAt.
        let deleted = admin
            .mutate("banners.delete", json!({"notificationBannerId": id}))
            .await;
        assert_eq!(deleted.data()["id"], id.as_str());
        assert_eq!(deleted.data()["createdAt"], stamp.as_str());
        assert!(deleted.data()["updatedAt"].is_string());
        let again = admin
            .mutate("banners.delete", json!({"notificationBannerId": id}))
            .await;
        assert_eq!(
            error(&again),
            ("NOT_FOUND", format!("Banner {id} not found").as_str())
        );
        assert!(ids(&admin.query("banners.list", json!({})).await).is_empty());
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn activating_a_banner_deactivates_the_one_before() {
    each_backend(|app| async move {
        let admin = app.service();
        let a = create(&admin, banner("A")).await;
        let b = create(&admin, banner("B")).await;
        assert_eq!(active_ids(&admin).await, [b["id"].as_str().unwrap()]);
        let listed = admin.query("banners.list", json!({"take": 100})).await;
        let old_a = &listed.data()["banners"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["id"] == a["id"])
            .unwrap()
            .clone();
        assert_eq!(old_a["isActive"], false);
        assert!(
            old_a["updatedAt"].as_str() >= a["updatedAt"].as_str(),
            "the deactivated banner's updatedAt moves on"
        );

        // Activating by update.
        let reply = admin
            .mutate(
                "banners.update",
                json!({"notificationBannerId": a["id"], "input": {"isActive": true}}),
            )
            .await;
        assert_eq!(reply.data()["isActive"], true);
        assert_eq!(active_ids(&admin).await, [a["id"].as_str().unwrap()]);

        // An inactive banner changes nothing; updating the active one keeps it active.
        create(&admin, with(banner("C"), json!({"isActive": false}))).await;
        assert_eq!(active_ids(&admin).await, [a["id"].as_str().unwrap()]);
        admin
            .mutate(
                "banners.update",
                json!({"notificationBannerId": a["id"], "input": {"title": "A2", "isActive": true}}),
            )
            .await;
        assert_eq!(active_ids(&admin).await, [a["id"].as_str().unwrap()]);

        // Deleting the active banner leaves none.
        admin
            .mutate("banners.delete", json!({"notificationBannerId": a["id"]}))
            .await;
        assert!(active_ids(&admin).await.is_empty());
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn fifty_concurrent_activations_leave_exactly_one_active_banner() {
    each_backend(|app| async move {
        let service = app.service();
        let ann = app.user("ann").await;
        let mut existing = Vec::new();
        for i in 0..10 {
            let b = create(
                &service,
                with(banner(&format!("old {i}")), json!({"isActive": false})),
            )
            .await;
            existing.push(b["id"].as_str().unwrap().to_owned());
        }
        // 25 creations and 25 updates activating the existing banners, all at once.
        let calls = (0..50).map(|i| {
            let service = service.clone();
            let id = existing[i % existing.len()].clone();
            async move {
                if i % 2 == 0 {
                    service
                        .mutate("banners.create", banner(&format!("new {i}")))
                        .await
                } else {
                    service
                        .mutate(
                            "banners.update",
                            json!({"notificationBannerId": id, "input": {"isActive": true}}),
                        )
                        .await
                }
            }
        });
        let replies = futures::future::join_all(calls).await;
        for reply in &replies {
            assert_eq!(reply.status, 200, "every activation succeeds: {reply:?}");
            assert_eq!(reply.data()["isActive"], true);
        }
        let active = active_ids(&service).await;
        assert_eq!(active.len(), 1, "exactly one active banner: {active:?}");
        let all = service.query("banners.list", json!({"take": 100})).await;
        assert_eq!(ids(&all).len(), 35);
        assert_eq!(current(&ann).await["id"], active[0].as_str());
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn current_shows_only_the_banner_inside_its_window() {
    each_backend(|app| async move {
        let admin = app.service();
        let ann = app.user("ann").await;
        assert_eq!(current(&ann).await, Value::Null, "no banner at all");

        let now = Utc::now();
        let window = |start: DateTime<Utc>, end: DateTime<Utc>| {
            with(
                banner("windowed"),
                json!({"startDate": at(start), "endDate": at(end)}),
            )
        };
        // Ending now: the window excludes its end.
        create(&admin, window(now - Duration::hours(1), now)).await;
        assert_eq!(
            current(&ann).await,
            Value::Null,
            "a banner ending now is not shown"
        );
        // Over, and not yet begun.
        create(
            &admin,
            window(now - Duration::hours(2), now - Duration::hours(1)),
        )
        .await;
        assert_eq!(current(&ann).await, Value::Null);
        create(
            &admin,
            window(now + Duration::minutes(1), now + Duration::hours(1)),
        )
        .await;
        assert_eq!(
            current(&ann).await,
            Value::Null,
            "a banner starting later is not shown yet"
        );
        // Starting now: the window includes its start.
        let b = create(&admin, window(now, now + Duration::hours(1))).await;
        let shown = current(&ann).await;
        assert_eq!(shown["id"], b["id"]);
        assert_eq!(shown["title"], "windowed");
        assert!(
            shown.get("notificationTo").is_none(),
            "users do not see the target list"
        );

        // Inactive: not shown, though inside its window.
        admin
            .mutate(
                "banners.update",
                json!({"notificationBannerId": b["id"], "input": {"isActive": false}}),
            )
            .await;
        assert_eq!(current(&ann).await, Value::Null);
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn banners_reach_the_organizations_they_name_or_everyone() {
    each_backend(|app| async move {
        let admin = app.admin("boss", "acme").await;
        let ann = app.user("ann").await;
        let gus = app.user_in("gus", "globex", "user").await;
        app.service()
            .mutate("organizations.create", json!({"id": "initech", "name": "Initech"}))
            .await;

        let b = create(&admin, with(banner("globex only"), json!({"notificationTo": ["globex"]}))).await;
        assert_eq!(b["notificationTo"], json!(["globex"]));
        assert_eq!(current(&ann).await, Value::Null);
        assert_eq!(current(&gus).await["id"], b["id"]);

        let both = admin
            .mutate(
                "banners.update",
                json!({"notificationBannerId": b["id"], "input": {"notificationTo": ["initech", "acme", "initech"]}}),
            )
            .await;
        assert_eq!(both.data()["notificationTo"], json!(["initech", "acme"]));
        assert_eq!(current(&ann).await["id"], b["id"]);
        assert_eq!(current(&gus).await, Value::Null);

        admin
            .mutate(
                "banners.update",
                json!({"notificationBannerId": b["id"], "input": {"notificationTo": []}}),
            )
            .await;
        assert_eq!(current(&ann).await["id"], b["id"]);
        assert_eq!(current(&gus).await["id"], b["id"]);

        let unknown = admin
            .mutate(
                "banners.create",
                with(banner("x"), json!({"notificationTo": ["acme", "nope", "gone"]})),
            )
            .await;
        assert_eq!(
            error(&unknown),
            ("BAD_REQUEST", "notificationTo: unknown organizations: nope, gone")
        );
        let unknown = admin
            .mutate(
                "banners.update",
                json!({"notificationBannerId": b["id"], "input": {"notificationTo": ["nope"]}}),
            )
            .await;
        assert_eq!(
            error(&unknown),
            ("BAD_REQUEST", "input.notificationTo: unknown organizations: nope")
        );
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn dismissal_is_per_user_and_only_for_dismissible_banners() {
    each_backend(|app| async move {
        let admin = app.service();
        let ann = app.user("ann").await;
        let bob = app.user("bob").await;
        let gus = app.user_in("gus", "globex", "user").await;
        let b = create(&admin, banner("dismiss me")).await;

        let reply = ann.mutate("banners.dismiss", json!({"id": b["id"]})).await;
        assert_eq!(reply.data(), &json!({"success": true}));
        assert_eq!(current(&ann).await, Value::Null);
        assert_eq!(current(&bob).await["id"], b["id"], "bob did not dismiss it");
        let again = ann.mutate("banners.dismiss", json!({"id": b["id"]})).await;
        assert_eq!(
            again.data(),
            &json!({"success": true}),
            "dismissing twice is fine"
        );

        // A new banner is shown again to everyone.
        let c = create(
            &admin,
            with(banner("stuck"), json!({"isDismissible": false})),
        )
        .await;
        assert_eq!(current(&ann).await["id"], c["id"]);
        let refused = ann.mutate("banners.dismiss", json!({"id": c["id"]})).await;
        assert_eq!(
            error(&refused),
            (
                "BAD_REQUEST",
                format!(
                    "id: banner {} is not dismissible",
                    c["id"].as_str().unwrap()
                )
                .as_str()
            )
        );
        assert_eq!(current(&ann).await["id"], c["id"]);

        // Reactivating the dismissed banner does not bring it back to ann.
        admin
            .mutate(
                "banners.update",
                json!({"notificationBannerId": b["id"], "input": {"isActive": true}}),
            )
            .await;
        assert_eq!(current(&ann).await, Value::Null);
        assert_eq!(current(&bob).await["id"], b["id"]);

        // Unknown banners and banners for another organization are not found.
        let g = create(
            &admin,
            with(
                banner("globex"),
                json!({"notificationTo": ["globex"], "isActive": false}),
            ),
        )
        .await;
        let foreign = ann.mutate("banners.dismiss", json!({"id": g["id"]})).await;
        assert_eq!(foreign.error_code(), "NOT_FOUND");
        assert_eq!(
            gus.mutate("banners.dismiss", json!({"id": g["id"]}))
                .await
                .status,
            200
        );
        let ghost = uuid::Uuid::now_v7().to_string();
        let missing = ann.mutate("banners.dismiss", json!({"id": ghost})).await;
        assert_eq!(
            error(&missing),
            ("NOT_FOUND", format!("Banner {ghost} not found").as_str())
        );
        let bad = ann.mutate("banners.dismiss", json!({"id": "nope"})).await;
        assert_eq!(
            error(&bad),
            (
                "BAD_REQUEST",
                "id: must be a banner id (UUID), got \"nope\""
            )
        );
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn invalid_banners_are_refused_naming_the_field() {
    each_backend(|app| async move {
        let admin = app.service();
        let start = "2025-01-25T11:59:36.809Z";
        let cases = [
            (json!({"startDate": start, "endDate": start}), "endDate: must be after startDate (2025-01-25T11:59:36.809Z), got 2025-01-25T11:59:36.809Z"),
            (json!({"startDate": start, "endDate": "2025-01-24T00:00:00Z"}), "endDate: must be after startDate (2025-01-25T11:59:36.809Z), got 2025-01-24T00:00:00.000Z"),
            (json!({"type": "URGENT"}), "type: must be one of MAINTENANCE, ANNOUNCEMENT, INFO, OUTAGE, got \"URGENT\""),
            (json!({"type": "info"}), "type: must be one of MAINTENANCE, ANNOUNCEMENT, INFO, OUTAGE, got \"info\""),
            (json!({"link": "javascript:alert(1)"}), "link: must be an http:// or https:// URL, got \"javascript:alert(1)\""),
            (json!({"link": "ftp://files.example.com"}), "link: must be an http:// or https:// URL, got \"ftp://files.example.com\""),
            (json!({"link": "https://"}), "link: must be an http:// or https:// URL, got \"https://\""),
            (json!({"linkText": "Status"}), "linkText: needs a link to go with it"),
            (json!({"title": "  "}), "title: must be 1 to 200 characters, got 0"),
            (json!({"message": "x".repeat(2001)}), "message: must be 1 to 2000 characters, got 2001"),
            (json!({"startDate": "yesterday"}), "startDate: must be an ISO-8601 date-time such as 2025-01-25T11:59:36.809Z, got \"yesterday\""),
            (json!({"notificationTo": ["a b"]}), "notificationTo[0]: may only contain A-Z a-z 0-9 _ . : @ -, found ' '"),
            (json!({"isDismissible": "yes"}), "isDismissible: invalid type: string \"yes\", expected a boolean"),
            (json!({"colour": "red"}), "colour: unknown field `colour`, expected one of `title`, `message`, `link`, `linkText`, `type`, `isDismissible`, `startDate`, `endDate`, `notificationTo`, `isActive`"),
        ];
        for (extra, message) in cases {
            let reply = admin.mutate("banners.create", with(banner("bad"), extra.clone())).await;
            assert_eq!(error(&reply), ("BAD_REQUEST", message), "{extra}");
        }
        let mut missing = banner("bad");
        missing.as_object_mut().unwrap().remove("isDismissible");
        let reply = admin.mutate("banners.create", missing).await;
        assert_eq!(error(&reply), ("BAD_REQUEST", "isDismissible: is required"));

        // Updates check the banner they make, naming the field under `input`.
        let b = create(&admin, with(banner("good"), json!({"startDate": start, "endDate": "2025-01-30T11:59:36.809Z"}))).await;
        let id = b["id"].as_str().unwrap();
        let update_cases = [
            (json!({"endDate": "2025-01-20T00:00:00.000Z"}), "BAD_REQUEST", "input.endDate: must be after startDate (2025-01-25T11:59:36.809Z), got 2025-01-20T00:00:00.000Z"),
            (json!({"startDate": "2025-01-30T11:59:36.809Z"}), "BAD_REQUEST", "input.endDate: must be after startDate (2025-01-30T11:59:36.809Z), got 2025-01-30T11:59:36.809Z"),
            (json!({"type": "ALERT"}), "BAD_REQUEST", "input.type: must be one of MAINTENANCE, ANNOUNCEMENT, INFO, OUTAGE, got \"ALERT\""),
            (json!({"link": "mailto:x@example.com"}), "BAD_REQUEST", "input.link: must be an http:// or https:// URL, got \"mailto:x@example.com\""),
            (json!({"title": null}), "BAD_REQUEST", "input.title: must not be null"),
            (json!({"id": "x"}), "BAD_REQUEST", "input.id: unknown field `id`, expected one of `title`, `message`, `link`, `linkText`, `type`, `isDismissible`, `isActive`, `startDate`, `endDate`, `notificationTo`"),
        ];
        for (input, code, message) in update_cases {
            let reply = admin
                .mutate("banners.update", json!({"notificationBannerId": id, "input": input.clone()}))
                .await;
            assert_eq!(error(&reply), (code, message), "{input}");
        }
        // Both dates moved together keep the rule.
        let moved = admin
            .mutate(
                "banners.update",
                json!({"notificationBannerId": id, "input": {"startDate": "2026-01-01T00:00:00Z", "endDate": "2026-01-02T00:00:00Z"}}),
            )
            .await;
        assert_eq!(moved.data()["startDate"], "2026-01-01T00:00:00.000Z");
        let after = admin.query("banners.list", json!({})).await;
        assert_eq!(after.data()["banners"][0]["title"], "good", "failed updates changed nothing");
        assert_eq!(after.data()["banners"][0]["endDate"], "2026-01-02T00:00:00.000Z");

        let ghost = uuid::Uuid::now_v7().to_string();
        let reply = admin
            .mutate("banners.update", json!({"notificationBannerId": ghost, "input": {}}))
            .await;
        assert_eq!(error(&reply), ("NOT_FOUND", format!("Banner {ghost} not found").as_str()));
        let reply = admin
            .mutate("banners.delete", json!({"notificationBannerId": "tid3qp77j0f15dyv2pdtx8ev"}))
            .await;
        assert_eq!(
            error(&reply),
            ("BAD_REQUEST", "notificationBannerId: must be a banner id (UUID), got \"tid3qp77j0f15dyv2pdtx8ev\"")
        );
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn listing_filters_orders_and_walks_pages() {
    each_backend(|app| async move {
        let admin = app.service();
        let types = ["INFO", "OUTAGE", "MAINTENANCE", "INFO", "ANNOUNCEMENT", "INFO", "OUTAGE"];
        // Start dates out of creation order, two of them equal.
        let starts = [5, 1, 3, 3, 7, 2, 6];
        let base = Utc::now();
        let mut created = Vec::new();
        for (i, (kind, day)) in types.iter().zip(starts).enumerate() {
            let start = base + Duration::days(day);
            let b = create(
                &admin,
                with(
                    banner(&format!("b{i}")),
                    json!({"type": kind, "startDate": at(start), "endDate": at(start + Duration::days(1)), "isActive": i == 6}),
                ),
            )
            .await;
            created.push(b);
        }
        let id = |i: usize| created[i]["id"].as_str().unwrap().to_owned();

        let newest_first: Vec<String> = (0..7).rev().map(id).collect();
        let all = admin.query("banners.list", Value::Null).await;
        assert_eq!(ids(&all), newest_first, "newest first by default");
        let oldest_first = admin
            .query("banners.list", json!({"orderBy": [{"createdAt": "asc"}]}))
            .await;
        assert_eq!(ids(&oldest_first), (0..7).map(id).collect::<Vec<_>>());
        let by_start = admin
            .query("banners.list", json!({"orderBy": {"startDate": "asc"}}))
            .await;
        assert_eq!(ids(&by_start), [1, 5, 2, 3, 0, 6, 4].map(id));
        let by_start_desc = admin
            .query("banners.list", json!({"orderBy": {"startDate": "desc"}}))
            .await;
        assert_eq!(ids(&by_start_desc), [4, 6, 0, 3, 2, 5, 1].map(id));

        let info = admin
            .query("banners.list", json!({"where": {"type": "INFO"}}))
            .await;
        assert_eq!(ids(&info), [5, 3, 0].map(id));
        let inactive_outages = admin
            .query("banners.list", json!({"where": {"type": "OUTAGE", "isActive": false}}))
            .await;
        assert_eq!(ids(&inactive_outages), [id(1)]);
        let skipped = admin
            .query("banners.list", json!({"skip": 5}))
            .await;
        assert_eq!(ids(&skipped), [1, 0].map(id));

        // Walking pages of 3 by startDate (ties included) gives the one big page, in order.
        for order in [json!({"startDate": "asc"}), json!({"startDate": "desc"}), json!({"createdAt": "desc"})] {
            let whole = ids(&admin.query("banners.list", json!({"orderBy": order, "take": 100})).await);
            let mut walked = Vec::new();
            let mut cursor = Value::Null;
            loop {
                let mut input = json!({"orderBy": order, "take": 3});
                if !cursor.is_null() {
                    input["cursor"] = cursor.clone();
                }
                let page = admin.query("banners.list", input).await;
                walked.extend(ids(&page));
                assert_eq!(page.data()["hasMore"], !page.data()["nextCursor"].is_null());
                if page.data()["hasMore"] == false {
                    break;
                }
                // Prisma's `{id}` form, and the id alone.
                cursor = if walked.len() == 3 {
                    json!({"id": page.data()["nextCursor"]})
                } else {
                    page.data()["nextCursor"].clone()
                };
            }
            assert_eq!(walked, whole, "{order}");
        }
        // Prisma's cursor includes its banner; `skip: 1` steps past it.
        let from = admin
            .query("banners.list", json!({"cursor": {"id": id(4)}, "skip": 1, "take": 2}))
            .await;
        assert_eq!(ids(&from), [3, 2].map(id));

        let ghost = uuid::Uuid::now_v7().to_string();
        let cases = [
            (json!({"take": 0}), "take: must be between 1 and 100, got 0".to_owned()),
            (json!({"take": 101}), "take: must be between 1 and 100, got 101".to_owned()),
            (json!({"skip": -1}), "skip: must be 0 or more, got -1".to_owned()),
            (json!({"cursor": ghost}), format!("cursor: unknown banner {ghost}")),
            (json!({"cursor": 7}), "cursor: must be a banner id or {id}".to_owned()),
            (json!({"where": {"type": "NEWS"}}), "where.type: must be one of MAINTENANCE, ANNOUNCEMENT, INFO, OUTAGE, got \"NEWS\"".to_owned()),
            (json!({"where": {"title": "x"}}), "where.title: unknown field `title`, expected `isActive` or `type`".to_owned()),
            (json!({"orderBy": {"title": "asc"}}), "orderBy.title: must be {createdAt: \"asc\"|\"desc\"} or {startDate: \"asc\"|\"desc\"}".to_owned()),
            (json!({"orderBy": [{"createdAt": "asc"}, {"startDate": "asc"}]}), "orderBy: must hold one ordering, got 2".to_owned()),
        ];
        for (input, message) in cases {
            let reply = admin.query("banners.list", input.clone()).await;
            assert_eq!(error(&reply), ("BAD_REQUEST", message.as_str()), "{input}");
        }
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn admins_manage_banners_and_users_only_see_and_dismiss_them() {
    each_backend(|app: TestApp| async move {
        let ann = app.user("ann").await;
        let b = create(&app.admin("boss", "acme").await, banner("hello")).await;
        for (procedure, input) in [
            ("banners.create", banner("x")),
            (
                "banners.update",
                json!({"notificationBannerId": b["id"], "input": {}}),
            ),
            ("banners.delete", json!({"notificationBannerId": b["id"]})),
        ] {
            let reply = ann.mutate(procedure, input).await;
            assert_eq!(
                error(&reply),
                ("FORBIDDEN", "Requires the admin role"),
                "{procedure}"
            );
        }
        let reply = ann.query("banners.list", json!({})).await;
        assert_eq!(reply.error_code(), "FORBIDDEN");

        let service = app.service();
        let reply = service.query("banners.current", Value::Null).await;
        assert_eq!(
            reply.error_code(),
            "FORBIDDEN",
            "banners.current is for users"
        );
        let reply = service
            .mutate("banners.dismiss", json!({"id": b["id"]}))
            .await;
        assert_eq!(reply.error_code(), "FORBIDDEN");

        let anonymous = app.anonymous();
        assert_eq!(
            anonymous.query("banners.current", Value::Null).await.status,
            401
        );
        assert_eq!(anonymous.query("banners.list", json!({})).await.status, 401);

        // Banners are instance-wide: any admin manages them, whatever their organization.
        let rival = app.admin("rival", "globex").await;
        let reply = rival
            .mutate(
                "banners.update",
                json!({"notificationBannerId": b["id"], "input": {"title": "hi"}}),
            )
            .await;
        assert_eq!(reply.data()["title"], "hi");
        assert_eq!(current(&ann).await["title"], "hi");
        app.stop().await;
    })
    .await;
}
