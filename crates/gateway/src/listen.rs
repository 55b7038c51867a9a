//! The accept loop: every connection is served by hyper, except while it carries an event
//! stream.
//!
//! hyper keeps a read buffer and a write buffer of 8 KiB or more for the whole life of an
//! HTTP/1.1 connection. An open subscription's connection is idle nearly all its life and sends
//! a few hundred bytes now and then, so with tens of thousands open those buffers were most of
//! the server's memory. A subscription `GET` (its whole head in the first bytes received, no
//! body, no upgrade) is therefore answered here: the request goes through the same router,
//! layers and all, and the response is written straight to the socket, each chunk as it comes,
//! with no buffer kept between events. The next request on the connection is looked at the same
//! way, and anything else (another procedure, a WebSocket, a head that came in pieces) is handed
//! to hyper for the rest of the connection.

use std::future::Future;
use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::body::{Body, HttpBody as _};
use axum::extract::ConnectInfo;
use axum::http::header::{CONNECTION, CONTENT_LENGTH, DATE, TRANSFER_ENCODING};
use axum::http::response::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Uri, Version};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tower::ServiceExt;

/// Request heads answered here are at most this long…
const MAX_HEAD: usize = 8 * 1024;
/// …with at most this many header fields.
const MAX_HEADERS: usize = 64;

/// The request paths (without the query) whose responses are event streams.
#[derive(Debug, Default)]
pub(crate) struct StreamPaths(Vec<String>);

impl StreamPaths {
    pub(crate) fn new(paths: impl IntoIterator<Item = String>) -> Self {
        Self(paths.into_iter().collect())
    }

    fn contains(&self, path: &str) -> bool {
        self.0.iter().any(|p| p == path)
    }
}

/// Serves `router` on `listener` until `shutdown` resolves, then stops accepting, lets every
/// connection finish what it is answering (idle ones close), and returns once all have ended.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    streams: Arc<StreamPaths>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let (stopping_tx, stopping) = watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        stopping_tx.send_replace(true);
    });
    // Each connection holds a receiver; the loop waits for all of them to be dropped.
    let (open_tx, open_rx) = watch::channel(());
    let mut accepting = stopping.clone();
    loop {
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            },
            () = stopped(&mut accepting) => break,
        };
        let connection = Connection {
            router: router.clone(),
            streams: streams.clone(),
            remote,
            stopping: stopping.clone(),
        };
        let open = open_rx.clone();
        tokio::spawn(async move {
            connection.run(stream).await;
            drop(open);
        });
    }
    drop(listener);
    drop(open_rx);
    open_tx.closed().await;
}

/// Resolves once the server stops.
async fn stopped(stopping: &mut watch::Receiver<bool>) {
    let _ = stopping.wait_for(|stop| *stop).await;
}

/// Errors from `accept` concern one connection (gone before it was taken) or the process
/// (out of file descriptors): the latter gets a pause instead of a busy loop.
async fn accept_failed(e: std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        e.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "cannot accept a connection");
    tokio::time::sleep(Duration::from_millis(500)).await;
}

struct Connection {
    router: Router,
    streams: Arc<StreamPaths>,
    remote: SocketAddr,
    stopping: watch::Receiver<bool>,
}

/// What to do with a connection after a request answered here.
#[derive(Debug, PartialEq, Eq)]
enum After {
    Next,
    Close,
}

impl Connection {
    async fn run(mut self, mut stream: TcpStream) {
        let _ = stream.set_nodelay(true);
        loop {
            let sniffed = tokio::select! {
                sniffed = sniff(&mut stream, &self.streams) => sniffed,
                // An idle connection closes when the server stops.
                () = stopped(&mut self.stopping) => return,
            };
            let request = match sniffed {
                Ok(Some(request)) => request,
                Ok(None) => break,
                Err(_) => return,
            };
            match self.answer(&mut stream, request).await {
                Ok(After::Next) if !*self.stopping.borrow() => {}
                _ => return,
            }
        }
        self.serve_with_hyper(stream).await;
    }

    /// Answers one request whose head was taken off the socket, writing the response as it
    /// comes.
    async fn answer(&self, stream: &mut TcpStream, head: Sniffed) -> std::io::Result<After> {
        let Sniffed { mut request, close } = head;
        request.extensions_mut().insert(ConnectInfo(self.remote));
        let Ok(response) = self.router.clone().oneshot(request).await;
        let (parts, body) = response.into_parts();
        let close = close || parts.headers.get(CONNECTION).is_some_and(|v| v == "close");
        let after = if close { After::Close } else { After::Next };
        let length = body.size_hint().exact();
        let mut out = response_head(&parts, close, length);
        if length.is_some() {
            // A whole answer (a refusal): one write.
            let bytes = body.collect().await.map_err(std::io::Error::other)?;
            out.extend_from_slice(&bytes.to_bytes());
            stream.write_all(&out).await?;
        } else {
            stream.write_all(&out).await?;
            drop(out);
            stream_body(stream, body).await?;
        }
        Ok(after)
    }

    /// Hands the connection to hyper for the rest of its life.
    async fn serve_with_hyper(mut self, stream: TcpStream) {
        let remote = self.remote;
        let service = self
            .router
            .clone()
            .map_request(move |request: Request<Incoming>| {
                let mut request = request.map(Body::new);
                request.extensions_mut().insert(ConnectInfo(remote));
                request
            });
        let connection = hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service))
            .with_upgrades();
        tokio::pin!(connection);
        let mut stop_asked = false;
        loop {
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(e) = result {
                        tracing::trace!(error = %e, "connection ended with an error");
                    }
                    return;
                }
                () = stopped(&mut self.stopping), if !stop_asked => {
                    stop_asked = true;
                    connection.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

/// The status line and header fields of `parts`, with `date`, `connection: close` when the
/// connection ends after it, and the body's framing: its length when known, else chunks.
fn response_head(parts: &Parts, close: bool, length: Option<u64>) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    let reason = parts.status.canonical_reason().unwrap_or("");
    let _ = write!(out, "HTTP/1.1 {} {reason}\r\n", parts.status.as_str());
    for (name, value) in &parts.headers {
        // A client that asked to close hears so, whatever the response said.
        if close && name == CONNECTION {
            continue;
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if !parts.headers.contains_key(DATE) {
        let _ = write!(
            out,
            "date: {}\r\n",
            httpdate::fmt_http_date(SystemTime::now())
        );
    }
    if close {
        out.extend_from_slice(b"connection: close\r\n");
    }
    match length {
        Some(_) if parts.headers.contains_key(CONTENT_LENGTH) => {}
        Some(length) => {
            let _ = write!(out, "content-length: {length}\r\n");
        }
        None => out.extend_from_slice(b"transfer-encoding: chunked\r\n"),
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// Writes each frame of `body` as a chunk as soon as it comes, and ends early when the
/// client goes away (which drops the body, and with it the subscription).
async fn stream_body(stream: &mut TcpStream, mut body: Body) -> std::io::Result<()> {
    let mut watching = true;
    loop {
        let frame = tokio::select! {
            frame = body.frame() => frame,
            gone = client_gone(stream), if watching => {
                if gone {
                    return Err(std::io::ErrorKind::ConnectionAborted.into());
                }
                // The client sent its next request already: it waits until this ends.
                watching = false;
                continue;
            }
        };
        match frame {
            Some(Ok(frame)) => {
                let Ok(data) = frame.into_data() else {
                    continue;
                };
                if data.is_empty() {
                    continue;
                }
                let mut chunk = Vec::with_capacity(data.len() + 12);
                let _ = write!(chunk, "{:x}\r\n", data.len());
                chunk.extend_from_slice(&data);
                chunk.extend_from_slice(b"\r\n");
                stream.write_all(&chunk).await?;
            }
            // The body failed: the client sees the connection end without the last
            // chunk, so it knows the response was cut short.
            Some(Err(e)) => return Err(std::io::Error::other(e)),
            None => return stream.write_all(b"0\r\n\r\n").await,
        }
    }
}

/// A request head answered here.
struct Sniffed {
    request: Request<Body>,
    /// Whether the client asked to close the connection after it.
    close: bool,
}

/// Looks at the first bytes of the next request: a subscription `GET` whose whole head is
/// there is taken off the socket and answered here; `None` hands the connection, its bytes
/// untouched, to hyper; an error (or the client closing) ends it.
async fn sniff(stream: &mut TcpStream, streams: &StreamPaths) -> std::io::Result<Option<Sniffed>> {
    // An idle connection waits here without a buffer; one is needed once bytes came.
    stream.readable().await?;
    let mut bytes = vec![0; MAX_HEAD];
    let n = stream.peek(&mut bytes).await?;
    if n == 0 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    let Some((sniffed, length)) = parse_head(&bytes[..n], streams) else {
        return Ok(None);
    };
    tokio::io::AsyncReadExt::read_exact(stream, &mut bytes[..length]).await?;
    Ok(Some(sniffed))
}

/// The request in `bytes`, with the length of its head, when it is one answered here: a
/// complete HTTP/1.1 `GET` head for an event stream's path, without a body or an upgrade, with
/// valid header fields.
fn parse_head(bytes: &[u8], streams: &StreamPaths) -> Option<(Sniffed, usize)> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut head = httparse::Request::new(&mut fields);
    let httparse::Status::Complete(length) = head.parse(bytes).ok()? else {
        return None;
    };
    if head.method? != "GET" || head.version? != 1 {
        return None;
    }
    let target = head.path?;
    let path = target.split_once('?').map_or(target, |(path, _)| path);
    if !streams.contains(path) {
        return None;
    }
    let mut headers = HeaderMap::with_capacity(head.headers.len());
    let mut close = false;
    for field in head.headers.iter() {
        let name = HeaderName::from_bytes(field.name.as_bytes()).ok()?;
        let value = HeaderValue::from_bytes(field.value).ok()?;
        if name == CONTENT_LENGTH
            || name == TRANSFER_ENCODING
            || name == axum::http::header::UPGRADE
            || name == axum::http::header::EXPECT
        {
            return None;
        }
        if name == CONNECTION
            && value
                .to_str()
                .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("close")))
        {
            close = true;
        }
        headers.append(name, value);
    }
    let mut request = Request::new(Body::empty());
    *request.method_mut() = Method::GET;
    *request.uri_mut() = target.parse::<Uri>().ok()?;
    *request.version_mut() = Version::HTTP_11;
    *request.headers_mut() = headers;
    Some((Sniffed { request, close }, length))
}

/// Resolves when the client closed its side (`true`) or sent more bytes (`false`).
async fn client_gone(stream: &TcpStream) -> bool {
    let mut byte = [0u8; 1];
    !matches!(stream.peek(&mut byte).await, Ok(n) if n > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn streams() -> StreamPaths {
        StreamPaths::new(["/api/trpc/notifications.onNew".to_owned()])
    }

    #[test]
    fn a_subscription_head_is_answered_here() {
        let head = b"GET /api/trpc/notifications.onNew?input=%7B%7D HTTP/1.1\r\nHost: x\r\nCookie: tidings_session=abc\r\nAccept: text/event-stream\r\n\r\n";
        let (sniffed, length) = parse_head(head, &streams()).expect("answered here");
        assert_eq!(length, head.len());
        assert!(!sniffed.close);
        assert_eq!(
            sniffed.request.uri().query(),
            Some("input=%7B%7D"),
            "the query is kept"
        );
        assert_eq!(sniffed.request.headers()["cookie"], "tidings_session=abc");
    }

    #[test]
    fn everything_else_goes_to_hyper() {
        let s = streams();
        for head in [
            // Not all there yet.
            &b"GET /api/trpc/notifications.onNew HTTP/1.1\r\nHost: x\r\n"[..],
            // Another procedure, method, version, a body, an upgrade, a bad field.
            b"GET /api/trpc/notifications.list HTTP/1.1\r\n\r\n",
            b"POST /api/trpc/notifications.onNew HTTP/1.1\r\n\r\n",
            b"GET /api/trpc/notifications.onNew HTTP/1.0\r\n\r\n",
            b"GET /api/trpc/notifications.onNew HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}",
            b"GET /api/trpc/notifications.onNew HTTP/1.1\r\nUpgrade: websocket\r\n\r\n",
            b"GET /api/trpc/notifications.onNew HTTP/1.1\r\nX: \x01\r\n\r\n",
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        ] {
            assert!(
                parse_head(head, &s).is_none(),
                "{}",
                String::from_utf8_lossy(head)
            );
        }
    }

    #[test]
    fn a_response_head_frames_its_body_and_says_close_once() {
        let response = axum::http::Response::builder()
            .status(200)
            .header(CONNECTION, "keep-alive")
            .header("content-type", "text/event-stream")
            .body(())
            .unwrap();
        let (parts, ()) = response.into_parts();
        let streamed = String::from_utf8(response_head(&parts, false, None)).unwrap();
        assert!(streamed.starts_with("HTTP/1.1 200 OK\r\n"), "{streamed}");
        assert!(
            streamed.contains("connection: keep-alive\r\n"),
            "{streamed}"
        );
        assert!(streamed.contains("date: "), "{streamed}");
        assert!(
            streamed.ends_with("transfer-encoding: chunked\r\n\r\n"),
            "{streamed}"
        );
        let closing = String::from_utf8(response_head(&parts, true, Some(5))).unwrap();
        assert_eq!(closing.matches("connection:").count(), 1, "{closing}");
        assert!(closing.contains("connection: close\r\n"), "{closing}");
        assert!(closing.ends_with("content-length: 5\r\n\r\n"), "{closing}");
    }

    #[test]
    fn connection_close_is_heard() {
        let head =
            b"GET /api/trpc/notifications.onNew HTTP/1.1\r\nConnection: keep-alive, Close\r\n\r\n";
        assert!(parse_head(head, &streams()).expect("answered here").0.close);
    }
}
