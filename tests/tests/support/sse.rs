//! A small reader of tRPC's server-sent events over real HTTP, shared by the realtime suites.
//!
//! Every frame tRPC writes is `event: <name>\n` (absent for data), `data: <text>\n`,
//! `id: <id>\n` (tracked data only), then `\n\n`: so frames end with `\n\n\n` and JSON data never
//! holds a raw newline. [`Sse::next`] checks each frame against exactly that shape, and every wait
//! is bounded, so a broken stream fails the test instead of hanging it.
#![allow(dead_code)]

use std::time::Duration;

use reqwest::header::HeaderMap;
use serde_json::Value;
use tidings_tests::encode_component;

/// How long a test waits for the next event before failing.
pub const WAIT: Duration = Duration::from_secs(5);

/// `?input=` of the no-input envelope, as `httpSubscriptionLink` sends it.
pub const NO_INPUT: &str = "%7B%22json%22%3Anull%2C%22meta%22%3A%7B%22values%22%3A%5B%22undefined%22%5D%2C%22v%22%3A1%7D%7D";

/// The path and query of a subscription with the no-input envelope.
pub fn path(procedure: &str) -> String {
    format!("/api/trpc/{procedure}?input={NO_INPUT}")
}

/// The path and query of a subscription with input `{"json": input}`.
pub fn path_with(procedure: &str, input: &Value) -> String {
    let envelope = serde_json::json!({ "json": input });
    format!(
        "/api/trpc/{procedure}?input={}",
        encode_component(&envelope.to_string())
    )
}

/// One event as received.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// The frame's exact text, up to and including its closing blank lines.
    pub raw: String,
    pub event: Option<String>,
    pub data: String,
    pub id: Option<String>,
}

impl Event {
    /// The data as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.data)
            .unwrap_or_else(|e| panic!("event data is not JSON ({e}): {:?}", self.raw))
    }

    pub fn is_ping(&self) -> bool {
        self.event.as_deref() == Some("ping")
    }
}

/// An open (or refused) subscription response.
pub struct Sse {
    pub status: u16,
    pub headers: HeaderMap,
    response: reqwest::Response,
    buffer: String,
    ended: bool,
    /// Everything received so far, for failure messages.
    pub received: String,
}

impl std::fmt::Debug for Sse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sse")
            .field("status", &self.status)
            .field("received", &self.received)
            .finish_non_exhaustive()
    }
}

/// Where and how to open a subscription.
#[derive(Clone, Debug, Default)]
pub struct Open<'a> {
    pub base: &'a str,
    /// The `tidings_session` token, if any.
    pub cookie: Option<&'a str>,
    pub bearer: Option<&'a str>,
    pub headers: &'a [(&'a str, &'a str)],
    /// POST this body (with `content-type: application/json`) instead of a GET.
    pub post: Option<&'a str>,
}

impl Open<'_> {
    pub async fn at(&self, path_and_query: &str) -> Sse {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("http client");
        let url = format!("{}{path_and_query}", self.base);
        let mut req = match self.post {
            Some(body) => http
                .post(url)
                .header("content-type", "application/json")
                .body(body.to_owned()),
            None => http.get(url),
        };
        req = req.header("accept", "text/event-stream");
        if let Some(cookie) = self.cookie {
            req = req.header("cookie", format!("tidings_session={cookie}"));
        }
        if let Some(key) = self.bearer {
            req = req.header("authorization", format!("Bearer {key}"));
        }
        for (name, value) in self.headers {
            req = req.header(*name, *value);
        }
        let response = tokio::time::timeout(WAIT, req.send())
            .await
            .expect("the response headers come within 5 s")
            .expect("request sent");
        Sse {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            response,
            buffer: String::new(),
            ended: false,
            received: String::new(),
        }
    }
}

/// Opens `path_and_query` as `client` (its cookie or key), with extra request headers.
pub async fn open_as(
    client: &tidings_tests::Client,
    path_and_query: &str,
    headers: &[(&str, &str)],
) -> Sse {
    Open {
        base: &client.base,
        cookie: client.cookie.as_deref(),
        bearer: client.bearer.as_deref(),
        headers,
        post: None,
    }
    .at(path_and_query)
    .await
}

/// Parses one frame (without its closing `\n\n\n`), checking it has exactly tRPC's shape.
fn parse_frame(raw: &str) -> Event {
    let body = raw
        .strip_suffix("\n\n\n")
        .expect("a frame ends with \\n\\n\\n");
    let mut lines = body.split('\n').peekable();
    let event = lines
        .next_if(|l| l.starts_with("event: "))
        .map(|l| l["event: ".len()..].to_owned());
    let data = lines
        .next()
        .and_then(|l| l.strip_prefix("data: "))
        .unwrap_or_else(|| panic!("a frame has a `data: ` line: {raw:?}"))
        .to_owned();
    let id = lines
        .next_if(|l| l.starts_with("id: "))
        .map(|l| l["id: ".len()..].to_owned());
    assert!(
        lines.next().is_none(),
        "unexpected lines in the frame {raw:?}"
    );
    Event {
        raw: raw.to_owned(),
        event,
        data,
        id,
    }
}

impl Sse {
    /// The next event, or `None` when the server ended the response; fails the test when
    /// nothing comes within [`WAIT`].
    pub async fn next(&mut self) -> Option<Event> {
        self.next_within(WAIT).await
    }

    /// As [`Sse::next`], waiting at most `wait`.
    pub async fn next_within(&mut self, wait: Duration) -> Option<Event> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(end) = self.buffer.find("\n\n\n") {
                let raw: String = self.buffer.drain(..end + 3).collect();
                return Some(parse_frame(&raw));
            }
            if self.ended {
                assert!(
                    self.buffer.is_empty(),
                    "the response ended inside a frame: {:?}",
                    self.buffer
                );
                return None;
            }
            match tokio::time::timeout_at(deadline, self.response.chunk()).await {
                Err(_) => panic!(
                    "no event within {wait:?}; received so far: {:?}",
                    self.received
                ),
                Ok(Ok(Some(bytes))) => {
                    let text = std::str::from_utf8(&bytes).expect("UTF-8 event text");
                    self.received.push_str(text);
                    self.buffer.push_str(text);
                }
                Ok(Ok(None)) => self.ended = true,
                Ok(Err(e)) => panic!("the stream broke ({e}); received: {:?}", self.received),
            }
        }
    }

    /// The next event, which must be there.
    pub async fn event(&mut self) -> Event {
        match self.next().await {
            Some(event) => event,
            None => panic!(
                "the response ended; expected an event; received: {:?}",
                self.received
            ),
        }
    }

    /// The next event that is not a ping.
    pub async fn data(&mut self) -> Event {
        loop {
            let event = self.event().await;
            if !event.is_ping() {
                return event;
            }
        }
    }

    /// `connected` first, exactly as tRPC writes it.
    pub async fn connected(&mut self) {
        let event = self.event().await;
        assert_eq!(event.raw, "event: connected\ndata: {}\n\n\n");
    }

    /// The response ends now (nothing but the end of the body).
    pub async fn ends(&mut self) {
        if let Some(event) = self.next().await {
            panic!("expected the end of the response, got {event:?}");
        }
    }

    /// The next event is a `serialized-error`; its `json` object is returned.
    pub async fn serialized_error(&mut self) -> Value {
        let event = self.event().await;
        assert_eq!(
            event.event.as_deref(),
            Some("serialized-error"),
            "{event:?}"
        );
        assert_eq!(event.id, None);
        let value = event.json();
        let keys: Vec<&str> = value
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        assert_eq!(keys, ["json"], "{event:?}");
        value["json"].clone()
    }
}
