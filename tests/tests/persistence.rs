//! The storage layer on each backend, on a schema built by the migrations.

use tidings_domain::{ExternalId, NotificationId, NotificationStatus, Role};
use tidings_persistence::{Db, NewNotification, NewUser, OwnedUpdate};
use tidings_tests::{TestDb, backends};

async fn each_db<F, Fut>(test: F)
where
    F: Fn(Db) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    for backend in backends() {
        let Some(test_db) = TestDb::create(&backend).await else {
            continue;
        };
        let db = Db::connect_and_migrate(&test_db.url)
            .await
            .expect("connect and migrate");
        let outcome =
            futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(test(db.clone()))).await;
        let _ = db.close().await;
        test_db.drop_now().await;
        if let Err(panic) = outcome {
            eprintln!("failed on {}", backend.name());
            std::panic::resume_unwind(panic);
        }
    }
}

fn id(s: &str) -> ExternalId {
    ExternalId::parse("id", s).unwrap()
}

async fn user(db: &Db, name: &str) -> ExternalId {
    let org = id("org");
    if db.organization(&org).await.unwrap().is_none() {
        db.create_organization(&org, "Org").await.unwrap();
    }
    db.create_user(NewUser {
        id: id(name),
        organization_id: org,
        email: Some(format!("{name}@example.com")),
        name: name.into(),
        password_hash: None,
        role: Role::User,
    })
    .await
    .unwrap();
    id(name)
}

fn note(user: &ExternalId, title: &str) -> (NewNotification, ExternalId) {
    (
        NewNotification {
            user_id: user.clone(),
            kind: "mentions".into(),
            title: title.into(),
            message: String::new(),
            data: Some(serde_json::json!({"z": 1, "a": {"nested": true}})),
            sender_id: None,
            collection: None,
            item: None,
        },
        id("org"),
    )
}

#[tokio::test]
async fn migrations_go_down_and_up_again() {
    each_db(|db| async move {
        assert_eq!(db.notification_types().await.unwrap().len(), 10);
        db.migrate_down_all().await.unwrap();
        db.migrate().await.unwrap();
        let types = db.notification_types().await.unwrap();
        let keys: Vec<&str> = types.iter().map(|t| t.channels.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "ticketCreated",
                "ticketAssigned",
                "ticketUpdated",
                "ticketResolved",
                "newComment",
                "mentions",
                "slaWarning",
                "slaBreach",
                "weeklyReport",
                "general"
            ]
        );
    })
    .await;
}

#[tokio::test]
async fn a_duplicate_email_is_a_conflict_naming_the_field() {
    each_db(|db| async move {
        user(&db, "ann").await;
        let err = db
            .create_user(NewUser {
                id: id("ann2"),
                organization_id: id("org"),
                email: Some("ann@example.com".into()),
                name: String::new(),
                password_hash: None,
                role: Role::User,
            })
            .await
            .unwrap_err();
        assert_eq!(err.code, tidings_domain::ErrorCode::Conflict);
        assert_eq!(err.message, "email: ann@example.com is already taken");
    })
    .await;
}

#[tokio::test]
async fn data_round_trips_with_its_key_order() {
    each_db(|db| async move {
        let ann = user(&db, "ann").await;
        let created = db
            .insert_notifications(vec![note(&ann, "t")])
            .await
            .unwrap();
        let stored = db.notification(created[0].id).await.unwrap().unwrap();
        assert_eq!(
            serde_json::to_string(&stored.data).unwrap(),
            r#"{"z":1,"a":{"nested":true}}"#
        );
        assert_eq!(stored.status, NotificationStatus::Inbox);
        assert!(!stored.read);
    })
    .await;
}

#[tokio::test]
async fn pages_walk_every_item_once_newest_first() {
    each_db(|db| async move {
        let ann = user(&db, "ann").await;
        let created = db
            .insert_notifications((0..23).map(|i| note(&ann, &format!("n{i}"))).collect())
            .await
            .unwrap();
        let mut seen: Vec<NotificationId> = Vec::new();
        let mut before = None;
        loop {
            let page = db
                .inbox_page(&ann, NotificationStatus::Inbox, false, before, 5)
                .await
                .unwrap();
            seen.extend(page.items.iter().map(|n| n.id));
            if !page.has_more {
                break;
            }
            before = page.items.last().map(|n| n.id);
        }
        let mut expected: Vec<NotificationId> = created.iter().map(|n| n.id).collect();
        expected.reverse();
        assert_eq!(seen, expected);
    })
    .await;
}

#[tokio::test]
async fn owned_updates_tell_missing_from_foreign() {
    each_db(|db| async move {
        let ann = user(&db, "ann").await;
        let bob = user(&db, "bob").await;
        let n = db
            .insert_notifications(vec![note(&ann, "t")])
            .await
            .unwrap()[0]
            .id;
        assert_eq!(db.mark_read(&bob, n).await.unwrap(), OwnedUpdate::NotOwner);
        assert_eq!(
            db.mark_read(&ann, NotificationId::generate())
                .await
                .unwrap(),
            OwnedUpdate::NotFound
        );
        assert_eq!(db.unread_count(&ann).await.unwrap(), 1);
        assert_eq!(db.mark_read(&ann, n).await.unwrap(), OwnedUpdate::Done);
        assert_eq!(
            db.mark_read(&ann, n).await.unwrap(),
            OwnedUpdate::Done,
            "idempotent"
        );
        let counts = db.counts(&ann).await.unwrap();
        assert_eq!((counts.unread, counts.unseen, counts.total), (0, 1, 1));
        assert_eq!(db.mark_all_seen(&ann).await.unwrap(), 1);
        assert_eq!(db.archive(&ann, n).await.unwrap(), OwnedUpdate::Done);
        assert_eq!(db.counts(&ann).await.unwrap().total, 0);
        assert_eq!(
            db.delete_notification(&bob, n).await.unwrap(),
            OwnedUpdate::NotOwner
        );
        assert_eq!(
            db.delete_notification(&ann, n).await.unwrap(),
            OwnedUpdate::Done
        );
        assert!(db.notification(n).await.unwrap().is_none());
    })
    .await;
}

#[tokio::test]
async fn data_that_is_not_json_is_left_out_rather_than_failing_the_read() {
    use sea_orm::ConnectionTrait;
    for backend in backends() {
        let Some(test_db) = TestDb::create(&backend).await else {
            continue;
        };
        let db = Db::connect_and_migrate(&test_db.url).await.unwrap();
        let outcome = futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(async {
            let ann = user(&db, "ann").await;
            let created = db
                .insert_notifications(vec![note(&ann, "t")])
                .await
                .unwrap();
            // A row edited by hand: Tidings itself writes only JSON there.
            let raw = sea_orm::Database::connect(test_db.url.as_str())
                .await
                .unwrap();
            raw.execute_unprepared("UPDATE notifications SET data = '{not json'")
                .await
                .unwrap();
            let _ = raw.close().await;
            let stored = db.notification(created[0].id).await.unwrap().unwrap();
            assert_eq!(stored.data, None);
            assert_eq!(stored.title, "t");
            let page = db
                .inbox_page(&ann, NotificationStatus::Inbox, false, None, 20)
                .await
                .unwrap();
            assert_eq!(page.items.len(), 1);
            assert_eq!(page.items[0].data, None);
        }))
        .await;
        let _ = db.close().await;
        test_db.drop_now().await;
        if let Err(panic) = outcome {
            eprintln!("failed on {}", backend.name());
            std::panic::resume_unwind(panic);
        }
    }
}
