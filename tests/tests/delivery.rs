//! Email delivery through the outbox to a real SMTP server (aiosmtpd, started by the tests):
//! what each recipient receives, exactly once; preferences; records; permanent and temporary
//! SMTP failures; the server down for a while; two instances on one PostgreSQL database.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tidings_tests::smtp::{SinkOptions, SmtpSink, free_port};
use tidings_tests::{Backend, TestApp, TestDb, backends, each_backend_with};

const WITHIN: Duration = Duration::from_secs(20);

/// Fast retries, so failure paths finish within a test.
fn env(smtp: &str) -> Vec<(&'static str, String)> {
    vec![
        ("TIDINGS_SMTP_URL", smtp.to_owned()),
        (
            "TIDINGS_MAIL_FROM",
            "Tidings <tidings@example.com>".to_owned(),
        ),
        ("TIDINGS_DELIVERY_RETRY_BASE_MS", "100".to_owned()),
        ("TIDINGS_DELIVERY_MAX_ATTEMPTS", "3".to_owned()),
        ("TIDINGS_DELIVERY_POLL_MS", "50".to_owned()),
    ]
}

fn pairs<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// Every delivery as `deliveries.list` shows it to the service.
async fn deliveries(app: &TestApp, filter: Value) -> Vec<Value> {
    let reply = app.service().query("deliveries.list", filter).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    reply.data()["deliveries"].as_array().unwrap().clone()
}

/// Waits until no delivery is pending or sending.
async fn settled(app: &TestApp) -> Vec<Value> {
    let deadline = Instant::now() + WITHIN;
    loop {
        let all = deliveries(app, json!({"limit": 1000})).await;
        if all
            .iter()
            .all(|d| d["state"] == "sent" || d["state"] == "failed")
        {
            return all;
        }
        assert!(
            Instant::now() < deadline,
            "deliveries did not settle: {all:#?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn notify_body(recipients: Value) -> Value {
    json!({
        "key": "ticketAssigned",
        "recipients": recipients,
        "data": {"ticketNumber": "1234", "ticketTitle": "Login <fails> & more"},
    })
}

#[tokio::test]
async fn notify_emails_each_recipient_once_as_preferences_allow() {
    let Some(sink) = SmtpSink::start(SinkOptions::default()).await else {
        return;
    };
    let env = env(&sink.url());
    each_backend_with(&pairs(&env), |app| {
        let sink = &sink;
        async move {
            let before = sink.messages().len();
            let _ann = app.user("ann").await;
            let _bob = app.user("bob").await;
            let cat = app.user("cat").await;
            let off = cat.mutate("notifications.disableAllEmail", json!({})).await;
            assert_eq!(off.status, 200, "{off:?}");
            // A user without an address gets no email.
            let dan = app
                .service()
                .mutate("users.create", json!({"id": "dan", "organizationId": "acme"}))
                .await;
            assert_eq!(dan.status, 200, "{dan:?}");
            let reply = app
                .service()
                .mutate(
                    "notifications.notify",
                    notify_body(json!({"userIds": ["ann", "bob", "cat", "dan"]})),
                )
                .await;
            assert_eq!(reply.status, 200, "{reply:?}");

            let all = settled(&app).await;
            let emails: Vec<&Value> = all.iter().filter(|d| d["channel"] == "email").collect();
            assert_eq!(emails.len(), 2, "{all:#?}");
            assert!(emails.iter().all(|d| d["state"] == "sent" && d["attempts"] == 1));

            let got = sink.wait_for(before + 2, WITHIN).await;
            let mine: Vec<_> = got[before..].to_vec();
            assert_eq!(mine.len(), 2, "exactly one email per delivery: {mine:#?}");
            let mut to: Vec<String> = mine.iter().flat_map(|m| m.to.clone()).collect();
            to.sort();
            assert_eq!(to, ["ann@example.com", "bob@example.com"]);
            for mail in &mine {
                assert_eq!(mail.from, "tidings@example.com");
                assert_eq!(mail.subject, "Ticket Assigned");
                assert_eq!(
                    mail.text,
                    "Ticket Assigned\n\nYou've been assigned ticket #1234: Login <fails> & more\n"
                );
                assert!(
                    mail.html.contains(
                        "<h1>Ticket Assigned</h1><p>You&#39;ve been assigned ticket #1234: Login &lt;fails&gt; &amp; more</p>"
                    ),
                    "{}",
                    mail.html
                );
            }
            app.stop().await;
        }
    })
    .await;
}

#[tokio::test]
async fn a_created_record_is_emailed_once_and_updating_it_sends_nothing() {
    let Some(sink) = SmtpSink::start(SinkOptions::default()).await else {
        return;
    };
    let env = env(&sink.url());
    each_backend_with(&pairs(&env), |app| {
        let sink = &sink;
        async move {
            let before = sink.messages().len();
            let _ann = app.user("ann").await;
            let created = app
                .service()
                .mutate(
                    "notifications.create",
                    json!({"recipient": "ann", "subject": "Invoice ready", "message": "Your invoice #7 is ready", "type": "ticketAssigned"}),
                )
                .await;
            assert_eq!(created.status, 200, "{created:?}");
            let id = created.data()["id"].as_str().unwrap().to_owned();
            // The default type is inbox-only: nothing to send.
            let plain = app
                .service()
                .mutate("notifications.create", json!({"recipient": "ann", "subject": "Inbox only"}))
                .await;
            assert_eq!(plain.status, 200, "{plain:?}");

            let got = sink.wait_for(before + 1, WITHIN).await;
            assert_eq!(got[before].subject, "Invoice ready");
            assert_eq!(got[before].to, ["ann@example.com"]);
            assert_eq!(got[before].text, "Invoice ready\n\nYour invoice #7 is ready\n");

            let updated = app
                .service()
                .mutate(
                    "notifications.update",
                    json!({"id": id, "data": {"subject": "Invoice changed", "read": true}}),
                )
                .await;
            assert_eq!(updated.status, 200, "{updated:?}");
            settled(&app).await;
            tokio::time::sleep(Duration::from_millis(500)).await;
            assert_eq!(sink.messages().len(), before + 1, "an update never re-sends");

            // notifications.get shows the channel's state.
            let record = app.service().query("notifications.get", json!({"id": id})).await;
            assert_eq!(record.status, 200, "{record:?}");
            let shown = &record.data()["deliveries"];
            assert_eq!(shown.as_array().unwrap().len(), 1, "{shown:#?}");
            assert_eq!(shown[0]["channel"], "email");
            assert_eq!(shown[0]["state"], "sent");
            assert_eq!(shown[0]["target"], "ann@example.com");
            assert!(shown[0]["sentAt"].is_string());
            app.stop().await;
        }
    })
    .await;
}

#[tokio::test]
async fn permanent_rejections_fail_at_once_and_temporary_ones_retry_up_to_the_limit() {
    let Some(sink) = SmtpSink::start(SinkOptions {
        reject: Some("bounce".into()),
        defer: Some("later".into()),
        delay_ms: 0,
    })
    .await
    else {
        return;
    };
    let env = env(&sink.url());
    each_backend_with(&pairs(&env), |app| async move {
        for name in ["bounce", "later", "fine"] {
            app.user(name).await;
        }
        let reply = app
            .service()
            .mutate(
                "notifications.notify",
                notify_body(json!({"userIds": ["bounce", "later", "fine"]})),
            )
            .await;
        assert_eq!(reply.status, 200, "{reply:?}");
        let all = settled(&app).await;
        let by_user: HashMap<&str, &Value> = all
            .iter()
            .map(|d| (d["userId"].as_str().unwrap(), d))
            .collect();
        assert_eq!(by_user["fine"]["state"], "sent");
        assert_eq!(by_user["bounce"]["state"], "failed");
        assert_eq!(by_user["bounce"]["attempts"], 1, "a 5xx is not retried");
        assert!(
            by_user["bounce"]["lastError"]
                .as_str()
                .unwrap()
                .contains("550"),
            "{:?}",
            by_user["bounce"]
        );
        assert_eq!(by_user["later"]["state"], "failed");
        assert_eq!(
            by_user["later"]["attempts"], 3,
            "a 4xx is retried up to the limit"
        );
        assert!(
            by_user["later"]["lastError"]
                .as_str()
                .unwrap()
                .contains("451")
        );

        let failed = deliveries(&app, json!({"state": "failed", "channel": "email"})).await;
        assert_eq!(failed.len(), 2);
        let bad = app
            .service()
            .query("deliveries.list", json!({"state": "lost"}))
            .await;
        assert_eq!(bad.status, 400);
        assert!(
            bad.error_message().starts_with("state: must be one of"),
            "{bad:?}"
        );
        let bad = app
            .service()
            .query("deliveries.list", json!({"limit": 0}))
            .await;
        assert_eq!(
            bad.error_message(),
            "limit: must be between 1 and 1000, got 0"
        );
        let user = app.login("fine").await;
        let denied = user.query("deliveries.list", json!({})).await;
        assert_eq!(denied.error_code(), "FORBIDDEN");
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn deliveries_wait_out_an_smtp_outage_and_all_arrive_once_it_ends() {
    if !tidings_tests::smtp::available() {
        return;
    }
    for backend in backends() {
        let mut sink = SmtpSink::stopped(free_port(), SinkOptions::default());
        let mut env = env(&sink.url());
        env.push(("TIDINGS_DELIVERY_MAX_ATTEMPTS", "50".to_owned()));
        let Some(db) = TestDb::create(&backend).await else {
            continue;
        };
        let app = TestApp::start(backend.clone(), &db, &pairs(&env)).await;
        let names: Vec<String> = (0..20).map(|i| format!("u{i:02}")).collect();
        for name in &names {
            app.user(name).await;
        }
        let reply = app
            .service()
            .mutate(
                "notifications.notify",
                notify_body(json!({"userIds": names})),
            )
            .await;
        assert_eq!(reply.status, 200, "{reply:?}");

        // The server is down: every delivery fails, waits, and is tried again.
        let deadline = Instant::now() + WITHIN;
        loop {
            let all = deliveries(&app, json!({})).await;
            if all.len() == 20 && all.iter().all(|d| d["attempts"].as_i64() >= Some(2)) {
                assert!(
                    all.iter()
                        .all(|d| d["state"] == "pending" || d["state"] == "sending")
                );
                assert!(all.iter().any(|d| d["lastError"].is_string()));
                break;
            }
            assert!(Instant::now() < deadline, "no retries seen: {all:#?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(sink.messages().is_empty());

        sink.resume().await;
        let got = sink.wait_for(20, Duration::from_secs(60)).await;
        settled(&app).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let got_after = sink.messages();
        assert_eq!(got_after.len(), 20, "each delivered once: {got:#?}");
        let mut to: Vec<String> = got_after.iter().flat_map(|m| m.to.clone()).collect();
        to.sort();
        to.dedup();
        assert_eq!(to.len(), 20);
        app.stop().await;
        db.drop_now().await;
    }
}

#[tokio::test]
async fn two_instances_on_one_postgres_database_never_send_a_delivery_twice() {
    let Some(backend) = backends()
        .into_iter()
        .find(|b| matches!(b, Backend::Postgres(_)))
    else {
        eprintln!("note: TIDINGS_TEST_DATABASE_URL is not set; the two-instance test is skipped");
        return;
    };
    let Some(sink) = SmtpSink::start(SinkOptions::default()).await else {
        return;
    };
    let Some(db) = TestDb::create(&backend).await else {
        return;
    };
    let mut env = env(&sink.url());
    // Small batches, so both instances claim from the same queue again and again.
    env.push(("TIDINGS_DELIVERY_BATCH", "10".to_owned()));
    let a = TestApp::start_with_key(backend.clone(), &db, &pairs(&env), "tests-a").await;
    let b = TestApp::start_with_key(backend, &db, &pairs(&env), "tests-b").await;
    const USERS: usize = 400;
    let users: Vec<Value> = (0..USERS)
        .map(|i| json!({"id": format!("u{i:04}"), "email": format!("u{i:04}@example.com")}))
        .collect();
    let reply = a
        .service()
        .mutate("users.upsertMany", json!({ "users": users }))
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    // Two calls, one through each instance, each waking its own worker.
    for (app, half) in [(&a, 0..USERS / 2), (&b, USERS / 2..USERS)] {
        let ids: Vec<String> = half.map(|i| format!("u{i:04}")).collect();
        let reply = app
            .service()
            .mutate("notifications.notify", notify_body(json!({"userIds": ids})))
            .await;
        assert_eq!(reply.status, 200, "{reply:?}");
    }
    sink.wait_for(USERS, Duration::from_secs(60)).await;
    let deadline = Instant::now() + WITHIN;
    while db_states(&a).await.get("sent").copied().unwrap_or(0) < USERS as i64 {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let got = sink.messages();
    let mut to: Vec<String> = got.iter().flat_map(|m| m.to.clone()).collect();
    to.sort();
    to.dedup();
    assert_eq!(to.len(), USERS);
    assert_eq!(got.len(), USERS, "no delivery sent twice");
    a.stop().await;
    b.stop().await;
    db.drop_now().await;
}

async fn db_states(app: &TestApp) -> HashMap<String, i64> {
    app.db()
        .delivery_states()
        .await
        .unwrap()
        .into_iter()
        .collect()
}

#[tokio::test]
async fn without_smtp_emails_go_to_the_log_and_count_as_sent() {
    each_backend_with(&[("TIDINGS_DELIVERY_POLL_MS", "50")], |app| async move {
        app.user("ann").await;
        let reply = app
            .service()
            .mutate(
                "notifications.notify",
                notify_body(json!({"userIds": ["ann"]})),
            )
            .await;
        assert_eq!(reply.status, 200, "{reply:?}");
        let all = settled(&app).await;
        assert_eq!(all.len(), 1);
        assert_eq!(all[0]["state"], "sent");
        app.stop().await;
    })
    .await;
}

/// `?tls=required` never sends in clear to a server that does not offer STARTTLS (the test
/// server does not): the delivery fails after its retries. `?tls=opportunistic` sends anyway.
#[tokio::test]
async fn starttls_required_refuses_a_server_without_it_and_opportunistic_sends_in_clear() {
    let Some(sink) = SmtpSink::start(SinkOptions::default()).await else {
        return;
    };
    for (mode, sent) in [("required", false), ("opportunistic", true)] {
        let env = env(&format!("{}?tls={mode}", sink.url()));
        each_backend_with(&pairs(&env), |app| {
            let sink = &sink;
            async move {
                let before = sink.messages().len();
                app.user("ann").await;
                let reply = app
                    .service()
                    .mutate(
                        "notifications.notify",
                        notify_body(json!({"userIds": ["ann"]})),
                    )
                    .await;
                assert_eq!(reply.status, 200, "{reply:?}");
                let all = settled(&app).await;
                let email = all.iter().find(|d| d["channel"] == "email").unwrap();
                if sent {
                    assert_eq!(email["state"], "sent", "{email:?}");
                    let got = sink.wait_for(before + 1, WITHIN).await;
                    assert_eq!(got[before].to, ["ann@example.com"]);
                } else {
                    assert_eq!(email["state"], "failed", "{email:?}");
                    assert_eq!(email["attempts"], 3, "retried: {email:?}");
                    assert!(
                        email["lastError"].as_str().unwrap().contains("STARTTLS"),
                        "{email:?}"
                    );
                    assert_eq!(sink.messages().len(), before, "nothing sent in clear");
                }
                app.stop().await;
            }
        })
        .await;
    }
}
