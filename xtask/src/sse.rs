//! A server-sent-event stream read from the load clients (`bench realtime`, `soak`): one
//! HTTP/1.1 connection per stream over tokio, each event handed to a callback with its arrival
//! time.
//!
//! The response is read straight off the socket (status line, then chunked or plain body)
//! rather than through an HTTP client library: with 10,000 streams on the one thread the
//! client gets, every microsecond it spends on an event delays the events after it, and the
//! client should show the server's latency, not its own.

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpSocket;

use crate::util::Result;

/// The longest response head read.
const MAX_HEAD: usize = 64 * 1024;

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
    let mut stream = socket.connect(server).await.map_err(io)?;
    stream.set_nodelay(true).map_err(io)?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {server}\r\nCookie: {cookie}\r\n\
         Accept: text/event-stream\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.map_err(io)?;

    let mut buf = [0u8; 2048];
    // Bytes read and not decoded yet.
    let mut raw: Vec<u8> = Vec::new();
    let body_start = loop {
        let n = stream.read(&mut buf).await.map_err(io)?;
        if n == 0 {
            return Err(format!("{label}: the connection ended before a response"));
        }
        raw.extend_from_slice(&buf[..n]);
        if let Some(end) = find(&raw, b"\r\n\r\n") {
            break end + 4;
        }
        if raw.len() > MAX_HEAD {
            return Err(format!("{label}: the response head is too long"));
        }
    };
    let head = String::from_utf8_lossy(&raw[..body_start]).into_owned();
    let status = head.split_whitespace().nth(1).unwrap_or_default();
    if status != "200" {
        return Err(format!("{label}: status {status}"));
    }
    let chunked = head.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    raw.drain(..body_start);

    let mut body = Vec::new();
    let mut pending = String::new();
    let mut arrived = Instant::now();
    loop {
        let ended = if chunked {
            dechunk(&mut raw, &mut body).map_err(|e| format!("{label}: {e}"))?
        } else {
            body.append(&mut raw);
            false
        };
        if !body.is_empty() {
            pending.push_str(&String::from_utf8_lossy(&body));
            body.clear();
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
        if ended {
            break;
        }
        let n = stream.read(&mut buf).await.map_err(io)?;
        if n == 0 {
            break;
        }
        arrived = Instant::now();
        raw.extend_from_slice(&buf[..n]);
    }
    Err(format!("{label}: the server ended the stream"))
}

/// Where `needle` first starts in `haystack`.
pub fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Moves the data of the whole chunks at the start of `raw` to `out`, leaving a partial chunk
/// in `raw`; `Ok(true)` once the last chunk (size 0) came.
fn dechunk(raw: &mut Vec<u8>, out: &mut Vec<u8>) -> std::result::Result<bool, String> {
    let mut at = 0;
    let mut last = false;
    while let Some(line) = find(&raw[at..], b"\r\n") {
        let size = std::str::from_utf8(&raw[at..at + line])
            .ok()
            .and_then(|s| usize::from_str_radix(s.split(';').next()?.trim(), 16).ok())
            .ok_or_else(|| {
                format!(
                    "not a chunk size: {:?}",
                    String::from_utf8_lossy(&raw[at..at + line])
                )
            })?;
        let data = at + line + 2;
        if size == 0 {
            last = true;
            at = raw.len();
            break;
        }
        if raw.len() < data + size + 2 {
            break;
        }
        if &raw[data + size..data + size + 2] != b"\r\n" {
            return Err("a chunk does not end with CRLF".to_owned());
        }
        out.extend_from_slice(&raw[data..data + size]);
        at = data + size + 2;
    }
    raw.drain(..at);
    Ok(last)
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

    #[test]
    fn chunks_are_decoded_as_they_complete() {
        let mut raw = b"5\r\nhello\r\n6;x=1\r\n world\r\n4\r\nab".to_vec();
        let mut out = Vec::new();
        assert!(!dechunk(&mut raw, &mut out).unwrap());
        assert_eq!(out, b"hello world");
        assert_eq!(raw, b"4\r\nab");
        raw.extend_from_slice(b"cd\r\n0\r\n\r\n");
        assert!(dechunk(&mut raw, &mut out).unwrap());
        assert_eq!(out, b"hello worldabcd");
        assert!(raw.is_empty());
    }

    /// Reads a stream from a server that answers `response` whatever it is asked, then closes;
    /// what came: each event's kind and data, and how the read ended.
    async fn read_canned(response: &'static str) -> (Vec<(String, String)>, Result<()>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut request = [0u8; 1024];
            let _ = stream.read(&mut request).await;
            stream.write_all(response.as_bytes()).await.unwrap();
        });
        let mut events = Vec::new();
        let ended = read("stream", addr, None, "/events", "a=b", |kind, frame, _| {
            events.push((kind.to_owned(), event_data(frame).to_owned()));
            Ok(Next::Continue)
        })
        .await;
        (events, ended)
    }

    #[tokio::test]
    async fn a_refusal_is_an_error_naming_its_status() {
        let (events, ended) =
            read_canned("HTTP/1.1 401 Unauthorized\r\ncontent-length: 0\r\n\r\n").await;
        assert!(events.is_empty());
        assert_eq!(ended.unwrap_err(), "stream: status 401");
    }

    #[tokio::test]
    async fn events_of_a_plain_body_are_read_until_it_ends() {
        let (events, ended) = read_canned(
            "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\r\n\
             event: connected\ndata: {}\n\n\ndata: {\"n\":1}\nid: 1\n\n\n",
        )
        .await;
        assert_eq!(
            events,
            [
                ("connected".to_owned(), "{}".to_owned()),
                ("message".to_owned(), "{\"n\":1}".to_owned()),
            ]
        );
        assert_eq!(ended.unwrap_err(), "stream: the server ended the stream");
    }

    #[tokio::test]
    async fn a_response_without_a_head_is_an_error() {
        let (events, ended) = read_canned("HTTP/1.1 200 OK\r\n").await;
        assert!(events.is_empty());
        assert_eq!(
            ended.unwrap_err(),
            "stream: the connection ended before a response"
        );
    }

    #[test]
    fn bad_chunks_are_errors() {
        let mut out = Vec::new();
        assert!(dechunk(&mut b"zz\r\nhello\r\n".to_vec(), &mut out).is_err());
        assert!(dechunk(&mut b"2\r\nhello\r\n".to_vec(), &mut out).is_err());
    }
}
