//! The tRPC HTTP adapter, following the wire protocol of `@trpc/server` v11 as observed:
//! GET for queries and POST for mutations at `/api/trpc/<path>`, the superjson `{"json": …}`
//! envelope, batches (`?batch=1`, comma-joined paths), and the error envelope with numeric codes.
//!
//! Decisions follow the reference's order: an unknown procedure (404) and a wrong method (405)
//! come before authentication (401), which comes before input parsing and validation (400).

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::header::{ALLOW, CACHE_CONTROL, CONNECTION, CONTENT_TYPE, VARY};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::future::join_all;
use futures::stream::{self, StreamExt};
use serde_json::{Value, json};
use tidings_procedures::{
    App, Ctx, Error, ErrorCode, EventStream, Kind, Output, Procedure, RawInput, Registry, SubEvent,
};

use crate::session::RequestAuth;

/// The largest request body Tidings reads.
pub const MAX_BODY: usize = 1024 * 1024;

#[derive(Clone, Debug)]
pub struct TrpcState {
    pub app: App,
    pub registry: Arc<Registry>,
    /// A subscription stream sends `event: ping` after this long without any event.
    pub ping_interval: Duration,
    /// The most calls one batch may hold.
    pub max_batch_size: usize,
}

/// The body and status of one call's answer.
struct Answer {
    status: StatusCode,
    /// The answer's JSON text.
    body: String,
    /// `Allow` for a wrong-method answer.
    allow: Option<&'static str>,
    /// `Retry-After` for a refusal that says when to come back.
    retry_after: Option<Duration>,
}

fn error_body(err: &Error, path: Option<&str>) -> Value {
    let (key, number, status) = err.code.wire();
    let mut data = json!({"code": key, "httpStatus": status});
    if let Some(path) = path {
        data["path"] = Value::String(path.to_owned());
    }
    json!({"error": {"json": {"message": err.message, "code": number, "data": data}}})
}

fn status_of(code: ErrorCode) -> StatusCode {
    StatusCode::from_u16(code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

fn error_answer(err: Error, path: &str) -> Answer {
    if err.code == ErrorCode::InternalServerError {
        tracing::error!(procedure = path, error = %err, "procedure failed");
    }
    Answer {
        status: status_of(err.code),
        body: error_body(&err, Some(path)).to_string(),
        allow: None,
        retry_after: err.retry_after,
    }
}

fn json_response(status: StatusCode, body: String, allow: Option<&'static str>) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(VARY, HeaderValue::from_static("trpc-accept, accept"));
    if let Some(allow) = allow {
        headers.insert(ALLOW, HeaderValue::from_static(allow));
    }
    response
}

/// A failure of the whole request, before any procedure is resolved: one error object with no
/// path, sent as text/plain like the reference does.
pub(crate) fn whole_request_error(err: Error) -> Response {
    let mut response = (status_of(err.code), error_body(&err, None).to_string()).into_response();
    crate::limits::retry_after(&mut response, &err);
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain;charset=UTF-8"),
    );
    headers.insert(VARY, HeaderValue::from_static("trpc-accept, accept"));
    response
}

/// Takes `{"json": x, "meta": …}` apart: `x`, with `null` meaning no input. A value that is
/// not an envelope is taken as the input itself, so hand-written calls work too.
fn unwrap_envelope(value: Value) -> RawInput {
    match value {
        Value::Object(mut map) if map.contains_key("json") => match map.remove("json") {
            Some(Value::Null) | None => RawInput::None,
            Some(inner) => RawInput::Json(strip_nulls(inner)),
        },
        Value::Null => RawInput::None,
        other => RawInput::Json(strip_nulls(other)),
    }
}

/// superjson writes an `undefined` field as `null` (with a note in `meta`): drop `null` fields
/// of the input object so they read as absent.
fn strip_nulls(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            Value::Object(map.into_iter().filter(|(_, v)| !v.is_null()).collect())
        }
        other => other,
    }
}

/// The inputs of the calls in a request, by index, parsed only when a procedure reads them.
#[derive(Debug)]
enum Inputs {
    Single(RawInput),
    /// A batch's `{"0": envelope, …}`; an index missing from it has no input.
    Batch(Result<serde_json::Map<String, Value>, RawInput>),
}

impl Inputs {
    fn parse(text: Option<&str>, batch: bool) -> Self {
        let parsed = match text {
            None => None,
            Some(t) if t.trim().is_empty() => None,
            Some(t) => Some(serde_json::from_str::<Value>(t).map_err(|e| e.to_string())),
        };
        match (batch, parsed) {
            (false, None) => Inputs::Single(RawInput::None),
            (false, Some(Ok(v))) => Inputs::Single(unwrap_envelope(v)),
            (false, Some(Err(m))) => Inputs::Single(RawInput::Malformed(m)),
            (true, None) => Inputs::Batch(Ok(Default::default())),
            (true, Some(Ok(Value::Object(map)))) => Inputs::Batch(Ok(map)),
            (true, Some(Ok(_))) => Inputs::Batch(Err(RawInput::Malformed(
                "\"input\" needs to be an object when doing a batch call".to_owned(),
            ))),
            (true, Some(Err(m))) => Inputs::Batch(Err(RawInput::Malformed(m))),
        }
    }

    fn take(&mut self, index: usize) -> RawInput {
        match self {
            Inputs::Single(input) => std::mem::replace(input, RawInput::None),
            Inputs::Batch(Ok(map)) => map
                .remove(&index.to_string())
                .map_or(RawInput::None, unwrap_envelope),
            Inputs::Batch(Err(err)) => err.clone(),
        }
    }
}

fn query_param<'a>(query: &'a str, name: &str) -> Option<std::borrow::Cow<'a, str>> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then(|| {
            let v = v.replace('+', " ");
            std::borrow::Cow::Owned(
                percent_encoding::percent_decode_str(&v)
                    .decode_utf8_lossy()
                    .into_owned(),
            )
        })
    })
}

/// What a tRPC request asks for, read from its URL path, query string and body alone.
#[derive(Debug)]
pub struct ParsedRequest {
    /// Whether it is a batch (`?batch=1`).
    pub batch: bool,
    /// The procedure paths, in call order: one, or a batch's comma-separated list.
    pub paths: Vec<String>,
    inputs: Inputs,
}

impl ParsedRequest {
    /// The input of call `index`; each is handed out once (`None` afterwards).
    pub fn input(&mut self, index: usize) -> RawInput {
        self.inputs.take(index)
    }
}

/// Reads a tRPC request: `uri_path` is the URL path (`/api/trpc/<paths>`), `query` the query
/// string without `?`, `body` a POST's body (the input is then read from it rather than from
/// `?input=`). Pure and total: any bytes give an answer, malformed input a
/// [`RawInput::Malformed`] for the calls that read it.
pub fn parse_request(uri_path: &str, query: &str, body: Option<&str>) -> ParsedRequest {
    let raw_path = uri_path.strip_prefix("/api/trpc").unwrap_or_default();
    let raw_path = raw_path.trim_start_matches('/').trim_end_matches('/');
    let path = percent_encoding::percent_decode_str(raw_path)
        .decode_utf8_lossy()
        .into_owned();
    let batch = query_param(query, "batch").is_some_and(|b| b == "1" || b == "true");
    let input_text = match body {
        Some(body) => Some(std::borrow::Cow::Borrowed(body)),
        None => query_param(query, "input"),
    };
    let inputs = Inputs::parse(input_text.as_deref(), batch);
    let paths = if batch {
        path.split(',').map(str::to_owned).collect()
    } else {
        vec![path]
    };
    ParsedRequest {
        batch,
        paths,
        inputs,
    }
}

/// `{"result":{"data":{"json":…}}}` around a call's answer, which is copied as it is.
fn success_body(data: &Output) -> String {
    const OPEN: &str = r#"{"result":{"data":{"json":"#;
    const CLOSE: &str = "}}}";
    let json = data.json();
    let mut body = String::with_capacity(OPEN.len() + json.len() + CLOSE.len());
    body.push_str(OPEN);
    body.push_str(json);
    body.push_str(CLOSE);
    body
}

/// Runs one call: method, then access, then input, then the handler.
async fn run_call(
    procedure: &Procedure,
    method: &Method,
    auth: &RequestAuth,
    app: &App,
    client_ip: Option<std::net::IpAddr>,
    input: RawInput,
) -> Answer {
    let path = procedure.name;
    match (procedure.kind, method) {
        (Kind::Query, &Method::GET) | (Kind::Mutation, &Method::POST) => {}
        (Kind::Query, _) => {
            let err = Error::new(
                ErrorCode::MethodNotSupported,
                format!("Unsupported {method}-request to query procedure at path \"{path}\""),
            );
            return Answer {
                allow: Some("GET"),
                ..error_answer(err, path)
            };
        }
        (Kind::Mutation, _) => {
            let err = Error::new(
                ErrorCode::MethodNotSupported,
                format!("Unsupported {method}-request to mutation procedure at path \"{path}\""),
            );
            return Answer {
                allow: Some("POST"),
                ..error_answer(err, path)
            };
        }
        (Kind::Subscription, _) => {
            let err = Error::bad_request(format!(
                "Subscription procedure at path \"{path}\" needs a text/event-stream request"
            ));
            return error_answer(err, path);
        }
    }
    let caller = match &auth.caller {
        Ok(caller) => caller.clone(),
        Err(err) if procedure.access != tidings_procedures::Access::Public => {
            return error_answer(Error::new(err.code, err.message.clone()), path);
        }
        Err(_) => None,
    };
    if procedure.kind == Kind::Mutation
        && auth.via_cookie
        && caller.is_some()
        && !auth.origin_allowed
    {
        return error_answer(Error::forbidden("Origin not allowed"), path);
    }
    let ctx = Ctx {
        app: app.clone(),
        caller,
        session: auth.session.clone(),
        client_ip,
    };
    match procedure.call(ctx, input).await {
        Ok(data) => Answer {
            status: StatusCode::OK,
            body: success_body(&data),
            allow: None,
            retry_after: None,
        },
        Err(err) => error_answer(err, path),
    }
}

pub async fn handle(State(state): State<TrpcState>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    if parts.method == Method::HEAD {
        return StatusCode::NO_CONTENT.into_response();
    }
    let auth = parts
        .extensions
        .get::<RequestAuth>()
        .cloned()
        .unwrap_or_else(|| RequestAuth {
            caller: Ok(None),
            via_cookie: false,
            origin_allowed: true,
            session: Default::default(),
        });
    let query = parts.uri.query().unwrap_or_default();

    let body_text = if parts.method == Method::POST {
        match parts
            .headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
        {
            None => {
                return whole_request_error(Error::new(
                    ErrorCode::UnsupportedMediaType,
                    "Missing content-type header",
                ));
            }
            Some(ct)
                if !ct
                    .trim_start()
                    .to_ascii_lowercase()
                    .starts_with("application/json") =>
            {
                // The reference's message, byte for byte (its closing quote is missing).
                return whole_request_error(Error::new(
                    ErrorCode::UnsupportedMediaType,
                    format!("Unsupported content-type \"{ct}"),
                ));
            }
            Some(_) => {}
        }
        match read_body(body).await {
            Ok(bytes) => Some(String::from_utf8_lossy(&bytes).into_owned()),
            Err(response) => return response,
        }
    } else if parts.method == Method::GET {
        None
    } else {
        return whole_request_error(Error::new(
            ErrorCode::MethodNotSupported,
            format!("Unsupported {}-request", parts.method),
        ));
    };
    let ParsedRequest {
        batch,
        paths,
        mut inputs,
    } = parse_request(parts.uri.path(), query, body_text.as_deref());
    if paths.len() > state.max_batch_size {
        return whole_request_error(Error::field(
            "batch",
            format!(
                "at most {} calls in one batch, got {}",
                state.max_batch_size,
                paths.len()
            ),
        ));
    }
    let client_ip = parts
        .extensions
        .get::<crate::limits::ClientIp>()
        .map(|c| c.0);
    let procedures: Vec<Option<&Procedure>> = paths.iter().map(|p| state.registry.get(p)).collect();
    if let [Some(procedure)] = procedures.as_slice()
        && !batch
        && procedure.kind == Kind::Subscription
    {
        let input = with_last_event_id(inputs.take(0), &parts.headers, query);
        return subscription_response(
            &state,
            procedure.name,
            &parts.method,
            auth,
            client_ip,
            input,
        );
    }
    if batch {
        let mut kinds: Vec<Kind> = Vec::new();
        for kind in procedures.iter().flatten().map(|p| p.kind) {
            if !kinds.contains(&kind) {
                kinds.push(kind);
            }
        }
        if kinds.len() > 1 {
            let names: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
            return whole_request_error(Error::bad_request(format!(
                "Cannot mix procedure types in call: {}",
                names.join(", ")
            )));
        }
    }

    let calls = paths
        .iter()
        .zip(&procedures)
        .enumerate()
        .map(|(index, (path, procedure))| {
            let input = inputs.take(index);
            let auth = &auth;
            let app = &state.app;
            let method = &parts.method;
            async move {
                match procedure {
                    None => error_answer(
                        Error::not_found(format!("No procedure found on path \"{path}\"")),
                        path,
                    ),
                    Some(p) if batch && p.kind == Kind::Subscription => {
                        error_answer(Error::bad_request("Cannot batch subscription calls"), path)
                    }
                    Some(p) => run_call(p, method, auth, app, client_ip, input).await,
                }
            }
        });
    let mut answers = join_all(calls).await;

    if !batch {
        let answer = answers.pop().expect("one call");
        return with_retry_after(
            json_response(answer.status, answer.body, answer.allow),
            answer.retry_after,
        );
    }
    let first = answers.first().map(|a| a.status).unwrap_or(StatusCode::OK);
    let status = if answers.iter().all(|a| a.status == first) {
        first
    } else {
        StatusCode::MULTI_STATUS
    };
    // The reference sets `Allow` on the shared response headers whenever a call in the batch
    // has the wrong method, whatever the batch's status; the last such call's value wins.
    let allow = answers.iter().rev().find_map(|a| a.allow);
    let retry = answers.iter().filter_map(|a| a.retry_after).max();
    let bodies: Vec<&str> = answers.iter().map(|a| a.body.as_str()).collect();
    let body = format!("[{}]", bodies.join(","));
    with_retry_after(json_response(status, body, allow), retry)
}

fn with_retry_after(mut response: Response, wait: Option<Duration>) -> Response {
    if let Some(wait) = wait {
        let err = Error {
            retry_after: Some(wait),
            ..Error::new(ErrorCode::TooManyRequests, "")
        };
        crate::limits::retry_after(&mut response, &err);
    }
    response
}

/// tRPC's resume rule: the `Last-Event-ID` header, else `?lastEventId=` (else `?Last-Event-Id=`),
/// goes into `input.lastEventId`, over any value the input had.
fn with_last_event_id(input: RawInput, headers: &axum::http::HeaderMap, query: &str) -> RawInput {
    let id = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| query_param(query, "lastEventId").map(|c| c.into_owned()))
        .or_else(|| query_param(query, "Last-Event-Id").map(|c| c.into_owned()));
    let Some(id) = id else { return input };
    match input {
        RawInput::None => RawInput::Json(json!({ "lastEventId": id })),
        RawInput::Json(Value::Object(mut map)) => {
            map.insert("lastEventId".to_owned(), Value::String(id));
            RawInput::Json(Value::Object(map))
        }
        other => other,
    }
}

/// One server-sent event, ended by two blank lines as tRPC writes them.
fn sse_frame(event: Option<&str>, data: &str, id: Option<&str>) -> Bytes {
    let mut frame = String::with_capacity(data.len() + 48);
    if let Some(event) = event {
        frame.push_str("event: ");
        frame.push_str(event);
        frame.push('\n');
    }
    frame.push_str("data: ");
    frame.push_str(data);
    frame.push('\n');
    if let Some(id) = id {
        frame.push_str("id: ");
        frame.push_str(id);
        frame.push('\n');
    }
    frame.push_str("\n\n");
    Bytes::from(frame)
}

fn sse_error(err: &Error, path: &str) -> Bytes {
    if err.code == ErrorCode::InternalServerError {
        tracing::error!(procedure = path, error = %err, "subscription failed");
    }
    let body = error_body(err, Some(path));
    sse_frame(Some("serialized-error"), &body["error"].to_string(), None)
}

/// A subscription over tRPC's server-sent events: always `200 text/event-stream`, `connected`
/// first, then data events (tracked by id), pings when idle, and errors as `serialized-error`
/// events, so the client keeps the error's code.
fn subscription_response(
    state: &TrpcState,
    path: &'static str,
    method: &Method,
    auth: RequestAuth,
    client_ip: Option<std::net::IpAddr>,
    input: RawInput,
) -> Response {
    let registry = state.registry.clone();
    let app = state.app.clone();
    let ping = state.ping_interval;
    let hub = state.app.hub.clone();
    let wrong_method = *method != Method::GET;
    let method_text = method.to_string();
    let events = async move {
        let failed = |err: Error| stream::iter([sse_error(&err, path)]).boxed();
        if wrong_method {
            return failed(Error::new(
                ErrorCode::MethodNotSupported,
                format!(
                    "Unsupported {method_text}-request to subscription procedure at path \"{path}\""
                ),
            ));
        }
        let caller = match auth.caller {
            Ok(caller) => caller,
            Err(err) => return failed(Error::new(err.code, err.message.clone())),
        };
        let ctx = Ctx {
            app,
            caller,
            session: auth.session,
            client_ip,
        };
        let Some(procedure) = registry.get(path) else {
            return failed(Error::not_found(format!(
                "No procedure found on path \"{path}\""
            )));
        };
        match procedure.subscribe(ctx, input).await {
            Ok(events) => until_closed(pump(events, ping, path), hub, path).boxed(),
            Err(err) => failed(err),
        }
    };
    // `connected` (the client's `onStarted`) goes out once the subscription is open, so an item
    // created after the client saw it is never missed; a refusal still comes after it.
    // Boxed, so the opening's future (access, input, the first reads) is freed once it is
    // done rather than kept, at its full size, in every open stream.
    let body = stream::once(Box::pin(events))
        .flat_map(|events| stream::iter([sse_frame(Some("connected"), "{}", None)]).chain(events))
        .map(Ok::<_, std::convert::Infallible>);
    let mut response = Response::new(Body::from_stream(body));
    let headers = response.headers_mut();
    headers.insert(
        CACHE_CONTROL,
        HeaderValue::from_static("no-cache, no-transform"),
    );
    headers.insert(CONNECTION, HeaderValue::from_static("keep-alive"));
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(VARY, HeaderValue::from_static("trpc-accept, accept"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    if wrong_method {
        headers.insert(ALLOW, HeaderValue::from_static("GET"));
    }
    response
}

/// Ends a stream when the process begins to stop, with a last `serialized-error` event of code
/// `SERVICE_UNAVAILABLE`. `return` would tell the client the subscription is over for good
/// (`onComplete`, no reconnect); this retryable code instead makes it reconnect after a few
/// seconds with `Last-Event-ID` (WIRE.md §9), to another instance or to this one restarted,
/// and miss nothing.
fn until_closed(
    events: impl futures::Stream<Item = Bytes> + Send + 'static,
    hub: tidings_procedures::Hub,
    path: &'static str,
) -> impl futures::Stream<Item = Bytes> {
    let closing: futures::future::BoxFuture<'static, ()> =
        Box::pin(async move { hub.closed().await });
    stream::unfold(Some((events.boxed(), closing)), move |state| async move {
        let (mut events, mut closing) = state?;
        tokio::select! {
            biased;
            _ = &mut closing => {
                let err = Error::new(
                    ErrorCode::ServiceUnavailable,
                    "Tidings is restarting; reconnect to resume",
                );
                Some((sse_error(&err, path), None))
            }
            event = events.next() => event.map(|frame| (frame, Some((events, closing)))),
        }
    })
}

/// Frames a subscription's events, with a ping after `ping` of silence; a failure ends the
/// stream with `serialized-error`, the subscription's own end with `return`.
fn pump(
    events: EventStream,
    ping: Duration,
    path: &'static str,
) -> impl futures::Stream<Item = Bytes> {
    stream::unfold(Some(events), move |events| async move {
        let mut events = events?;
        match tokio::time::timeout(ping, events.next()).await {
            Err(_) => Some((sse_frame(Some("ping"), "", None), Some(events))),
            Ok(Some(Ok(SubEvent::Data { id, data }))) => {
                let data = format!(r#"{{"json":{}}}"#, data.json());
                Some((sse_frame(None, &data, id.as_deref()), Some(events)))
            }
            Ok(Some(Err(err))) => Some((sse_error(&err, path), None)),
            Ok(None) => Some((sse_frame(Some("return"), "", None), None)),
        }
    })
}

async fn read_body(body: Body) -> Result<Bytes, Response> {
    axum::body::to_bytes(body, MAX_BODY).await.map_err(|_| {
        whole_request_error(Error::new(
            ErrorCode::PayloadTooLarge,
            format!("Request body is larger than {MAX_BODY} bytes"),
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes() {
        assert_eq!(
            unwrap_envelope(json!({"json": null, "meta": {"v": 1}})),
            RawInput::None
        );
        assert_eq!(
            unwrap_envelope(json!({"json": {"limit": 2}})),
            RawInput::Json(json!({"limit": 2}))
        );
        assert_eq!(
            unwrap_envelope(json!({"json": {"limit": 1, "cursor": null}})),
            RawInput::Json(json!({"limit": 1}))
        );
        assert_eq!(
            unwrap_envelope(json!({"limit": 20})),
            RawInput::Json(json!({"limit": 20}))
        );
    }

    #[test]
    fn batch_inputs() {
        let mut inputs = Inputs::parse(Some(r#"{"1":{"json":{"limit":0}}}"#), true);
        assert_eq!(inputs.take(0), RawInput::None);
        assert_eq!(inputs.take(1), RawInput::Json(json!({"limit": 0})));
        let mut inputs = Inputs::parse(Some("\"x\""), true);
        assert!(
            matches!(inputs.take(0), RawInput::Malformed(m) if m.contains("needs to be an object"))
        );
        let mut inputs = Inputs::parse(Some("{bad"), false);
        assert!(matches!(inputs.take(0), RawInput::Malformed(_)));
    }

    #[test]
    fn requests_parse_from_path_query_and_body() {
        let mut get = parse_request(
            "/api/trpc/notifications%2Elist,auth.me/",
            "batch=1&input=%7B%221%22%3A%7B%22json%22%3A%7B%22limit%22%3A2%7D%7D%7D",
            None,
        );
        assert!(get.batch);
        assert_eq!(get.paths, ["notifications.list", "auth.me"]);
        assert_eq!(get.input(0), RawInput::None);
        assert_eq!(get.input(1), RawInput::Json(json!({"limit": 2})));
        // A POST reads its body, not `?input=`; without `batch` a comma is part of the path.
        let mut post = parse_request("/api/trpc/a,b", "input=1", Some(r#"{"json":{"id":"x"}}"#));
        assert!(!post.batch);
        assert_eq!(post.paths, ["a,b"]);
        assert_eq!(post.input(0), RawInput::Json(json!({"id": "x"})));
        assert_eq!(post.input(0), RawInput::None, "an input is handed out once");
    }

    #[test]
    fn query_params_decode() {
        let q = "batch=1&input=%7B%22json%22%3Anull%7D";
        assert_eq!(query_param(q, "batch").as_deref(), Some("1"));
        assert_eq!(query_param(q, "input").as_deref(), Some("{\"json\":null}"));
        assert_eq!(query_param(q, "nope"), None);
    }
}
