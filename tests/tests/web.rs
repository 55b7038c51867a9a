//! The web inbox's serving, over real HTTP: the page and every asset it references, their
//! content types, ETag revalidation, the Content-Security-Policy, and `notifications.types`,
//! the procedure its preferences table reads. The page's behaviour in a browser is
//! `cargo xtask e2e`'s (`tests/e2e/`).

use serde_json::{Value, json};
use tidings_tests::{Client, each_backend};

/// The `src`/`href` values under `/assets/` in a text, in order.
fn asset_paths(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("/assets/") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| c == '"' || c == '\'' || c.is_whitespace())
            .unwrap_or(tail.len());
        out.push(tail[..end].to_owned());
        rest = &tail[end..];
    }
    out
}

/// The relative `import … from "./x.js"` of a module, as `/assets/x.js`.
fn imports(module: &str) -> Vec<String> {
    module
        .lines()
        .filter(|l| l.starts_with("import "))
        .filter_map(|l| l.split("from \"./").nth(1))
        .map(|rest| format!("/assets/{}", rest.trim_end_matches("\";")))
        .collect()
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next() {
        Some("css") => "text/css; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("svg") => "image/svg+xml",
        other => panic!("no content type expected for {other:?}"),
    }
}

#[tokio::test]
async fn the_page_and_every_asset_it_loads_are_served_with_policy_and_tags() {
    each_backend(|app| async move {
        let browser = app.anonymous();
        let page = browser.get("/").await;
        assert_eq!(page.status, 200, "{page:?}");
        assert_eq!(
            page.header("content-type"),
            Some("text/html; charset=utf-8")
        );
        let csp = page.header("content-security-policy").unwrap().to_owned();
        for directive in [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "connect-src 'self'",
            "base-uri 'none'",
        ] {
            assert!(csp.contains(directive), "{directive} missing from {csp}");
        }
        assert!(!csp.contains("unsafe"), "{csp}");
        assert_eq!(page.header("x-content-type-options"), Some("nosniff"));
        // The page obeys its own policy: no inline script or style.
        assert!(!page.text.contains("<script>") && !page.text.contains("style="));
        assert!(!page.text.contains("<style"));

        // Every asset the page and its modules load, transitively.
        let mut queue = asset_paths(&page.text);
        let mut seen = Vec::new();
        while let Some(path) = queue.pop() {
            if seen.contains(&path) {
                continue;
            }
            let reply = browser.get(&path).await;
            assert_eq!(reply.status, 200, "{path}: {reply:?}");
            assert_eq!(
                reply.header("content-type"),
                Some(content_type(&path)),
                "{path}"
            );
            assert_eq!(reply.header("cache-control"), Some("no-cache"), "{path}");
            let tag = reply.header("etag").expect("an ETag").to_owned();
            assert!(tag.starts_with('"') && tag.ends_with('"'), "{tag}");
            if path.ends_with(".js") {
                queue.extend(imports(&reply.text));
            }
            let again = browser
                .send(
                    reqwest::Client::new()
                        .get(format!("{}{path}", browser.base))
                        .header("if-none-match", &tag),
                )
                .await;
            assert_eq!(again.status, 304, "{path}: {again:?}");
            assert!(again.text.is_empty());
            assert_eq!(again.header("etag"), Some(tag.as_str()));
            let stale = browser
                .send(
                    reqwest::Client::new()
                        .get(format!("{}{path}", browser.base))
                        .header("if-none-match", "\"0000000000000000\""),
                )
                .await;
            assert_eq!(stale.status, 200, "{path}");
            seen.push(path);
        }
        for module in [
            "/assets/app.js",
            "/assets/trpc.js",
            "/assets/inbox.js",
            "/assets/pages.js",
            "/assets/dom.js",
            "/assets/app.css",
            "/assets/icon.svg",
        ] {
            assert!(seen.iter().any(|s| s == module), "{module} not reached");
        }

        let missing = browser.get("/assets/nope.js").await;
        assert_eq!(missing.status, 404);
        let head = browser.method(reqwest::Method::HEAD, "/").await;
        assert_eq!(head.status, 200);
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn notification_types_list_every_type_with_channels_and_required_for_users() {
    each_backend(|app| async move {
        let ann = app.user("ann").await;
        let reply = ann.query("notifications.types", Value::Null).await;
        assert_eq!(reply.status, 200, "{reply:?}");
        let types = reply.data()["types"].as_array().unwrap().clone();
        let keys: Vec<&str> = types.iter().map(|t| t["key"].as_str().unwrap()).collect();
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
        assert_eq!(
            types[1],
            json!({"key": "ticketAssigned", "description": "Ticket assigned to you",
                   "channels": ["email", "inApp", "push"], "required": false})
        );
        assert_eq!(
            types[9],
            json!({"key": "general", "description": "A notification created without a type",
                   "channels": ["inApp"], "required": true})
        );

        // Users only: no session is UNAUTHORIZED, a service key FORBIDDEN.
        let anonymous = app
            .anonymous()
            .query("notifications.types", Value::Null)
            .await;
        assert_eq!(anonymous.error_code(), "UNAUTHORIZED");
        let service = app
            .service()
            .query("notifications.types", Value::Null)
            .await;
        assert_eq!(service.error_code(), "FORBIDDEN");
        app.stop().await;
    })
    .await;
}

async fn mark_seen_from(client: &Client, origin: &str) -> tidings_tests::Reply {
    let request = reqwest::Client::new()
        .post(format!(
            "{}/api/trpc/notifications.markAllAsSeen",
            client.base
        ))
        .header(
            "cookie",
            format!("tidings_session={}", client.cookie.clone().unwrap()),
        )
        .header("content-type", "application/json")
        .header("origin", origin)
        .body(r#"{"json":{}}"#);
    client.send(request).await
}

/// The page's own origin passes the CSRF check for cookie mutations; another origin does not.
#[tokio::test]
async fn the_pages_own_origin_may_sign_in_and_change_things() {
    each_backend(|app| async move {
        let ann = app.user("ann").await;
        let origin = ann.base.clone();
        assert_eq!(mark_seen_from(&ann, &origin).await.status, 200);
        assert_eq!(
            mark_seen_from(&ann, "http://evil.example")
                .await
                .error_code(),
            "FORBIDDEN"
        );
        app.stop().await;
    })
    .await;
}
