//! Connections, spoken to byte by byte: an event stream's request is answered off hyper's
//! buffers (`crates/gateway/src/listen.rs`), and the connection must behave as HTTP/1.1 says
//! whichever way it was answered: chunked framing, keep-alive into the next request, a head
//! that arrives in pieces, and streams that end with a retryable error when the server stops.

use std::time::Duration;

use tidings_tests::{each_backend, each_backend_with};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const ON_NEW: &str = "/api/trpc/notifications.onNew";
const WAIT: Duration = Duration::from_secs(10);
/// A plain request that ends the connection after its answer (`{"status":"ok"}`).
const HEALTHZ_THEN_CLOSE: &str =
    "GET /healthz HTTP/1.1\r\nhost: tidings\r\nconnection: close\r\n\r\n";

async fn connect(base: &str) -> TcpStream {
    TcpStream::connect(base.trim_start_matches("http://"))
        .await
        .expect("connect")
}

fn get(path: &str, cookie: Option<&str>, extra: &str) -> String {
    let cookie = cookie.map_or(String::new(), |c| {
        format!("cookie: tidings_session={c}\r\n")
    });
    format!(
        "GET {path} HTTP/1.1\r\nhost: tidings\r\naccept: text/event-stream\r\n{cookie}{extra}\r\n"
    )
}

/// Reads until `bytes` (everything read so far, kept across calls) contains `needle` after
/// `from`; returns where the needle ends.
async fn read_until(
    stream: &mut TcpStream,
    bytes: &mut Vec<u8>,
    from: usize,
    needle: &str,
) -> usize {
    let found = tokio::time::timeout(WAIT, async {
        loop {
            if let Some(at) = String::from_utf8_lossy(&bytes[from..]).find(needle) {
                return from + at + needle.len();
            }
            let mut buf = [0u8; 4096];
            let n = stream.read(&mut buf).await.expect("read");
            assert!(
                n > 0,
                "the connection closed before {needle:?}: {}",
                String::from_utf8_lossy(bytes)
            );
            bytes.extend_from_slice(&buf[..n]);
        }
    })
    .await;
    found.unwrap_or_else(|_| {
        panic!(
            "no {needle:?} within {WAIT:?}: {}",
            String::from_utf8_lossy(bytes)
        )
    })
}

/// Everything the server sends until it closes the connection (`why` it should).
async fn read_until_closed(stream: &mut TcpStream, why: &str) -> String {
    let mut bytes = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut bytes))
        .await
        .unwrap_or_else(|_| panic!("{why}: not closed within {WAIT:?}"))
        .expect("read");
    String::from_utf8_lossy(&bytes).into_owned()
}

#[tokio::test]
async fn a_stream_and_the_requests_after_it_share_one_connection() {
    each_backend(|app| async move {
        let mut stream = connect(&app.base).await;
        let mut bytes = Vec::new();
        let mut from = 0;
        // Without a cookie the stream opens, says why it ends, and ends: twice on one
        // connection, then a plain request on it.
        for _ in 0..2 {
            stream
                .write_all(get(ON_NEW, None, "").as_bytes())
                .await
                .unwrap();
            let end = read_until(&mut stream, &mut bytes, from, "\r\n0\r\n\r\n").await;
            let response = String::from_utf8_lossy(&bytes[from..end]).into_owned();
            assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
            let lower = response.to_ascii_lowercase();
            for header in [
                "content-type: text/event-stream\r\n",
                "transfer-encoding: chunked\r\n",
                "cache-control: no-cache, no-transform\r\n",
                "connection: keep-alive\r\n",
                "date: ",
            ] {
                assert!(lower.contains(header), "{header:?} in {response}");
            }
            assert!(
                !lower.contains("content-length"),
                "a stream has no length: {response}"
            );
            let connected = response
                .find("event: connected\ndata: {}\n\n")
                .expect(&response);
            let error = response.find("event: serialized-error\n").expect(&response);
            assert!(connected < error, "{response}");
            assert!(response.contains("\"UNAUTHORIZED\""), "{response}");
            from = end;
        }
        stream
            .write_all(HEALTHZ_THEN_CLOSE.as_bytes())
            .await
            .unwrap();
        let rest =
            read_until_closed(&mut stream, "the connection closes after the last request").await;
        assert!(rest.starts_with("HTTP/1.1 200 OK\r\n"), "{rest}");
        assert!(rest.ends_with(r#"{"status":"ok"}"#), "{rest}");
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_client_that_asks_to_close_is_told_so_and_the_connection_closes() {
    each_backend(|app| async move {
        let mut stream = connect(&app.base).await;
        stream
            .write_all(get(ON_NEW, None, "connection: close\r\n").as_bytes())
            .await
            .unwrap();
        let text = read_until_closed(&mut stream, "the connection closes after the stream")
            .await
            .to_ascii_lowercase();
        let head = text.split("\r\n\r\n").next().unwrap_or_default();
        assert_eq!(head.matches("connection:").count(), 1, "{text}");
        assert!(head.contains("connection: close\r\n"), "{text}");
        assert!(text.ends_with("\r\n0\r\n\r\n"), "{text}");
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order() {
    each_backend(|app| async move {
        let mut stream = connect(&app.base).await;
        // A stream and, in the same write, the next request: it waits for the stream to end.
        let both = format!("{}{HEALTHZ_THEN_CLOSE}", get(ON_NEW, None, ""));
        stream.write_all(both.as_bytes()).await.unwrap();
        let text =
            read_until_closed(&mut stream, "both answered, then the connection closes").await;
        let end = text.find("\r\n0\r\n\r\n").expect(&text);
        let (first, second) = text.split_at(end + 7);
        assert!(first.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
        assert!(first.contains("\"UNAUTHORIZED\""), "{text}");
        assert!(second.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
        assert!(second.ends_with(r#"{"status":"ok"}"#), "{text}");
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_head_that_arrives_in_pieces_is_answered_all_the_same() {
    each_backend(|app| async move {
        let ann = app.user("ann").await;
        let request = get(ON_NEW, ann.cookie.as_deref(), "");
        let (first, second) = request.split_at(request.len() / 2);
        let mut stream = connect(&app.base).await;
        stream.write_all(first.as_bytes()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        stream.write_all(second.as_bytes()).await.unwrap();
        let mut bytes = Vec::new();
        let connected = read_until(&mut stream, &mut bytes, 0, "event: connected\n").await;
        let ids = app.notify("ann", 1).await;
        let end = read_until(
            &mut stream,
            &mut bytes,
            connected,
            &format!("id: {}\n", ids[0]),
        )
        .await;
        let response = String::from_utf8_lossy(&bytes[..end]);
        assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
        assert!(response.contains("Subject 0"), "{response}");
    })
    .await;
}

#[tokio::test]
async fn a_client_that_closes_its_stream_frees_its_subscription() {
    each_backend_with(
        &[("TIDINGS_MAX_SUBSCRIPTIONS_PER_USER", "1")],
        |app| async move {
            let ann = app.user("ann").await;
            let request = get(ON_NEW, ann.cookie.as_deref(), "");
            // The first stream of a user, and what a second one hears while it is open.
            let open = async || {
                let mut stream = connect(&app.base).await;
                stream.write_all(request.as_bytes()).await.unwrap();
                let mut bytes = Vec::new();
                let connected = read_until(&mut stream, &mut bytes, 0, "event: connected\n").await;
                // A refusal follows `connected` at once; an open stream says nothing more yet.
                let _ = tokio::time::timeout(Duration::from_millis(300), async {
                    let mut buf = [0u8; 4096];
                    while let Ok(n @ 1..) = stream.read(&mut buf).await {
                        bytes.extend_from_slice(&buf[..n]);
                    }
                })
                .await;
                let more = String::from_utf8_lossy(&bytes[connected..]).into_owned();
                (stream, more)
            };
            let (first, more) = open().await;
            assert!(
                !more.contains("serialized-error"),
                "the first stream is open: {more}"
            );
            let (_, refused) = open().await;
            assert!(refused.contains("TOO_MANY_REQUESTS"), "{refused}");
            drop(first);
            let mut freed = false;
            for _ in 0..50 {
                let (_stream, more) = open().await;
                if !more.contains("serialized-error") {
                    freed = true;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            assert!(freed, "closing the first stream freed its place");
        },
    )
    .await;
}

#[tokio::test]
async fn stopping_the_server_ends_open_streams_with_a_retryable_error() {
    each_backend(|app| async move {
        let ann = app.user("ann").await;
        let mut stream = connect(&app.base).await;
        stream
            .write_all(get(ON_NEW, ann.cookie.as_deref(), "").as_bytes())
            .await
            .unwrap();
        let mut bytes = Vec::new();
        let connected = read_until(&mut stream, &mut bytes, 0, "event: connected\n").await;
        let stopped = tokio::spawn(async move {
            tokio::time::timeout(WAIT, app.stop())
                .await
                .expect("the server stops within the grace period")
        });
        let end = read_until(&mut stream, &mut bytes, connected, "\r\n0\r\n\r\n").await;
        let tail = String::from_utf8_lossy(&bytes[connected..end]).into_owned();
        assert!(tail.contains("event: serialized-error\n"), "{tail}");
        assert!(tail.contains("\"SERVICE_UNAVAILABLE\""), "{tail}");
        stopped.await.unwrap();
    })
    .await;
}
