//! A bare event-stream server, the floor that `bench realtime` measures beside Tidings: the
//! same load client, the same streams and the same broadcast, against a server that does
//! nothing but move bytes.
//!
//! It answers `GET /healthz`, holds every other `GET` open as a chunked `text/event-stream`
//! (with `event: connected` at once), and on `POST /go` wakes every stream, each of which
//! writes one prepared data event the size of a Tidings `notifications.onNew` event. Nothing is
//! read from a database and nothing is serialized per stream, so how long the broadcast takes
//! is what this machine's network stack and scheduler, and the load client, cost on their own.
//! It runs on tokio's default runtime (a worker per core), as `tidings` does.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use clap::Args;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::util::Result;

/// The longest request head read.
const MAX_HEAD: usize = 16 * 1024;

#[derive(Debug, Args)]
pub struct BareArgs {
    /// Where to listen.
    #[arg(long)]
    listen: SocketAddr,
}

/// What every connection shares.
struct Shared {
    /// Turns true on `POST /go`: every stream writes its event.
    go: watch::Sender<bool>,
    /// Streams open now.
    streams: AtomicUsize,
    /// The chunk every stream writes on `go`.
    event: Vec<u8>,
}

/// Serves until the process is killed.
pub fn run(args: BareArgs) -> Result<bool> {
    let runtime =
        tokio::runtime::Runtime::new().map_err(|e| format!("cannot start the bare server: {e}"))?;
    runtime.block_on(serve(args.listen))?;
    Ok(true)
}

async fn serve(listen: SocketAddr) -> Result<()> {
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    accept(listener).await
}

async fn accept(listener: TcpListener) -> Result<()> {
    let shared = Arc::new(Shared {
        go: watch::channel(false).0,
        streams: AtomicUsize::new(0),
        event: chunk(&event_frame()),
    });
    loop {
        let (stream, _) = listener
            .accept()
            .await
            .map_err(|e| format!("accept: {e}"))?;
        let shared = shared.clone();
        tokio::spawn(async move {
            if let Err(e) = connection(stream, &shared).await {
                eprintln!("bare server: a connection failed: {e}");
            }
        });
    }
}

/// A data event shaped and sized like a Tidings `notifications.onNew` event.
fn event_frame() -> String {
    let id = "019ade5c-7f3a-7c21-9d4e-3b5f8a1c2d3e";
    let data = json!({"json": {
        "notification": {
            "id": id,
            "type": "general",
            "title": "Release 2.0",
            "message": "Tidings 2.0 is out: see what is new.",
            "read": false,
            "createdAt": "2026-12-02T12:00:00.000Z",
        },
        "unreadCount": 1,
        "counts": {"unread": 1, "unseen": 1, "total": 1},
    }});
    format!("data: {data}\nid: {id}\n\n\n")
}

/// `data` as one HTTP/1.1 chunk.
fn chunk(data: &str) -> Vec<u8> {
    let mut out = format!("{:x}\r\n", data.len()).into_bytes();
    out.extend_from_slice(data.as_bytes());
    out.extend_from_slice(b"\r\n");
    out
}

async fn connection(mut stream: TcpStream, shared: &Shared) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let (request_line, body_length) = {
        let mut head = Vec::new();
        let mut buf = [0u8; 1024];
        let end = loop {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                return Ok(());
            }
            head.extend_from_slice(&buf[..n]);
            if let Some(end) = crate::sse::find(&head, b"\r\n\r\n") {
                break end;
            }
            if head.len() > MAX_HEAD {
                return Err(std::io::Error::other("request head too long"));
            }
        };
        let text = String::from_utf8_lossy(&head[..end]).into_owned();
        let length = text
            .lines()
            .filter_map(|l| l.split_once(':'))
            .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.trim().parse::<usize>().ok())
            .unwrap_or(0);
        // The part of the body that came with the head is already read.
        let unread = length.saturating_sub(head.len() - end - 4);
        (text.lines().next().unwrap_or_default().to_owned(), unread)
    };
    if request_line.starts_with("GET /healthz ") {
        return answer(&mut stream, "ok").await;
    }
    if request_line.starts_with("POST /go ") {
        let mut body = vec![0; body_length];
        stream.read_exact(&mut body).await?;
        let streams = shared.streams.load(Ordering::Relaxed);
        shared.go.send_replace(true);
        let reply = json!({"result": {"data": {"json": {"usersNotified": {"count": streams}}}}});
        return answer(&mut stream, &reply.to_string()).await;
    }
    let mut go = shared.go.subscribe();
    let mut out = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\
        cache-control: no-cache\r\ntransfer-encoding: chunked\r\n\r\n"
        .to_vec();
    out.extend_from_slice(&chunk("event: connected\ndata: {}\n\n\n"));
    stream.write_all(&out).await?;
    drop(out);
    shared.streams.fetch_add(1, Ordering::Relaxed);
    let held = async {
        let mut rest = [0u8; 64];
        // A stream closed before the broadcast leaves the count at once.
        let broadcast = tokio::select! {
            go = go.wait_for(|go| *go) => go.is_ok(),
            _ = stream.read(&mut rest) => false,
        };
        if broadcast {
            stream.write_all(&shared.event).await?;
            // Held open until the client closes it.
            while stream.read(&mut rest).await? > 0 {}
        }
        Ok(())
    };
    let result = held.await;
    shared.streams.fetch_sub(1, Ordering::Relaxed);
    result
}

/// A whole `200` answer with `body`, then the connection closes.
async fn answer(stream: &mut TcpStream, body: &str) -> std::io::Result<()> {
    let reply = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         connection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(reply.as_bytes()).await?;
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn the_event_is_one_chunk_of_one_data_frame() {
        let frame = event_frame();
        let bytes = chunk(&frame);
        let text = String::from_utf8(bytes).unwrap();
        let (size, rest) = text.split_once("\r\n").unwrap();
        assert_eq!(usize::from_str_radix(size, 16).unwrap(), frame.len());
        assert_eq!(rest, format!("{frame}\r\n"));
        assert_eq!(crate::sse::event_kind(frame.trim()), "message");
        let data: serde_json::Value = serde_json::from_str(crate::sse::event_data(&frame)).unwrap();
        assert_eq!(data["json"]["counts"]["total"], 1);
    }

    #[tokio::test]
    async fn an_open_stream_hears_the_broadcast() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(accept(listener));
        let (connected, is_connected) = tokio::sync::oneshot::channel();
        let mut connected = Some(connected);
        let stream = tokio::spawn(async move {
            let mut kinds = Vec::new();
            crate::sse::read("stream", addr, None, "/events", "", |kind, _, _| {
                kinds.push(kind.to_owned());
                if kind == "connected"
                    && let Some(tx) = connected.take()
                {
                    let _ = tx.send(());
                }
                Ok(match kind {
                    "message" => crate::sse::Next::Stop,
                    _ => crate::sse::Next::Continue,
                })
            })
            .await
            .map(|()| kinds)
        });
        is_connected.await.unwrap();
        let reply = tokio::task::spawn_blocking(move || {
            crate::util::http_post_json(addr, "/go", None, "{}", Duration::from_secs(10))
        })
        .await
        .unwrap()
        .unwrap();
        assert_eq!(reply.status, 200);
        let reply: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
        assert_eq!(reply["result"]["data"]["json"]["usersNotified"]["count"], 1);
        let kinds = tokio::time::timeout(Duration::from_secs(10), stream)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(kinds, ["connected", "message"]);
    }
}
