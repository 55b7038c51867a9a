//! A server-sent-event stream read from the load clients (`bench realtime`, `soak`): one
//! HTTP/1.1 connection per stream over tokio and hyper, each event handed to a callback with
//! its arrival time.

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper::body::Bytes;
use hyper::header::{ACCEPT, COOKIE, HOST};
use hyper_util::rt::TokioIo;
use tokio::net::TcpSocket;

use crate::util::Result;

/// The kind of one server-sent event: its `event:` field, or `message` for data.
pub fn event_kind(frame: &str) -> &str {
    frame
        .lines()
        .find_map(|l| l.strip_prefix("event:"))
        .map(str::trim)
        .unwrap_or("message")
}

/// The `data:` field of one event.
pub fn event_data(frame: &str) -> &str {
    frame
        .lines()
        .find_map(|l| l.strip_prefix("data:"))
        .map(str::trim)
        .unwrap_or_default()
}

/// What the callback wants after an event.
pub enum Next {
    Continue,
    /// Close the stream: `read` returns `Ok(())`.
    Stop,
}

/// Opens `GET path` as an event stream (from `source` when given) with `cookie`, and hands
/// each event (its kind, its whole frame, when it arrived) to `on_event` until the callback
/// stops or fails. The server ending the stream is an error; `label` names the stream in
/// errors.
pub async fn read(
    label: &str,
    server: SocketAddr,
    source: Option<IpAddr>,
    path: &str,
    cookie: &str,
    mut on_event: impl FnMut(&str, &str, Instant) -> Result<Next>,
) -> Result<()> {
    let io = |e: std::io::Error| format!("{label}: {e}");
    let socket = TcpSocket::new_v4().map_err(io)?;
    if let Some(ip) = source {
        socket.bind(SocketAddr::new(ip, 0)).map_err(io)?;
    }
    let stream = socket.connect(server).await.map_err(io)?;
    stream.set_nodelay(true).map_err(io)?;
    let http = |e: hyper::Error| format!("{label}: {e}");
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(http)?;
    let exchange = async {
        let request = Request::get(path)
            .header(HOST, server.to_string())
            .header(COOKIE, cookie)
            .header(ACCEPT, "text/event-stream")
            .body(Empty::<Bytes>::new())
            .map_err(|e| format!("{label}: {e}"))?;
        let response = sender.send_request(request).await.map_err(http)?;
        if response.status() != 200 {
            return Err(format!("{label}: status {}", response.status()));
        }
        let mut body = response.into_body();
        let mut pending = String::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(http)?;
            let Some(data) = frame.data_ref() else {
                continue;
            };
            let arrived = Instant::now();
            pending.push_str(&String::from_utf8_lossy(data));
            // Frames end with a blank line; tRPC adds one more newline, left at the start of
            // the next frame and trimmed there.
            while let Some(end) = pending.find("\n\n") {
                let frame: String = pending.drain(..end + 2).collect();
                let frame = frame.trim_start_matches('\n');
                if let Next::Stop = on_event(event_kind(frame), frame, arrived)? {
                    return Ok(());
                }
            }
            pending = pending.trim_start_matches('\n').to_owned();
        }
        Err(format!("{label}: the server ended the stream"))
    };
    tokio::select! {
        done = connection => Err(format!(
            "{label}: the connection ended: {}",
            done.err().map(|e| e.to_string()).unwrap_or_default()
        )),
        done = exchange => done,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_told_apart() {
        assert_eq!(event_kind("event: connected\ndata: {}\n"), "connected");
        assert_eq!(event_kind("data: {\"json\":{}}\nid: 1\n"), "message");
        assert_eq!(event_kind("event: ping\ndata: \n"), "ping");
        assert_eq!(event_data("data: {\"json\":{}}\nid: 1\n"), "{\"json\":{}}");
    }
}
