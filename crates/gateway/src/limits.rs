//! Request limits in front of both RPC surfaces: rates per client address, per session and
//! per service key, a cap on requests served at once, and a time limit for each answer.
//!
//! A refused tRPC request gets the tRPC error envelope (`TOO_MANY_REQUESTS`, -32029, HTTP 429)
//! with `Retry-After`; a refused JSON-RPC request gets a JSON-RPC error with code -32029 for each
//! of its ids, so a client matches the answer to its call. Streams are limited when they open:
//! the time limit covers the answer's head, not a subscription's life.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tidings_procedures::{Error, ErrorCode, telemetry};
use tokio::sync::Semaphore;

use crate::config::Limits;

/// The client's address, as the limits layer determined it; procedures get it in `Ctx`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

type Keyed<K> = DefaultKeyedRateLimiter<K>;

/// The limiters of one server.
#[derive(Debug)]
pub struct Limiter {
    per_ip: Option<Keyed<IpAddr>>,
    per_session: Option<Keyed<[u8; 32]>>,
    per_service_key: Option<Keyed<[u8; 32]>>,
    trusted_proxies: Vec<IpAddr>,
    in_flight: Option<Arc<Semaphore>>,
    timeout: Option<Duration>,
    clock: DefaultClock,
}

/// `per_second` with bursts of twice that; none for 0.
fn keyed<K: std::hash::Hash + Eq + Clone>(per_second: u32) -> Option<Keyed<K>> {
    let rate = NonZeroU32::new(per_second)?;
    let burst = NonZeroU32::new(per_second.saturating_mul(2)).unwrap_or(rate);
    Some(RateLimiter::keyed(
        Quota::per_second(rate).allow_burst(burst),
    ))
}

impl Limiter {
    pub fn new(limits: &Limits) -> Self {
        Self {
            per_ip: keyed(limits.per_ip),
            per_session: keyed(limits.per_session),
            per_service_key: keyed(limits.per_service_key),
            trusted_proxies: limits.trusted_proxies.clone(),
            in_flight: (limits.max_concurrent_requests > 0)
                .then(|| Arc::new(Semaphore::new(limits.max_concurrent_requests))),
            timeout: limits.request_timeout,
            clock: DefaultClock::default(),
        }
    }

    /// Forgets clients idle long enough to have their whole burst back, so the tables hold
    /// only recent clients.
    pub fn forget_idle(&self) {
        if let Some(l) = &self.per_ip {
            l.retain_recent();
            l.shrink_to_fit();
        }
        for l in [&self.per_session, &self.per_service_key]
            .into_iter()
            .flatten()
        {
            l.retain_recent();
            l.shrink_to_fit();
        }
    }

    fn check<K: std::hash::Hash + Eq + Clone>(
        &self,
        limiter: &Option<Keyed<K>>,
        key: &K,
        name: &'static str,
    ) -> Result<(), Refusal> {
        let Some(limiter) = limiter else {
            return Ok(());
        };
        limiter.check_key(key).map_err(|not_until| {
            metrics::counter!(telemetry::LIMITED, "limit" => name).increment(1);
            let wait = not_until.wait_time_from(self.clock.now());
            Refusal(Error::too_many_requests(
                format!(
                    "Too many requests ({name}); retry in {} s",
                    retry_seconds(wait)
                ),
                wait,
            ))
        })
    }
}

struct Refusal(Error);

fn retry_seconds(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
}

/// The client's address: the peer, or, when the peer is a trusted proxy, the nearest address
/// in `X-Forwarded-For` that is not a trusted proxy (read from the right, since a client can
/// write anything on the left).
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpAddr]) -> IpAddr {
    if !trusted.contains(&peer) {
        return peer;
    }
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    for hop in hops.iter().rev() {
        match hop.parse::<IpAddr>() {
            Ok(ip) if trusted.contains(&ip) => continue,
            Ok(ip) => return ip,
            Err(_) => return peer,
        }
    }
    peer
}

fn digest(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// The limits middleware for `/api/trpc` and `/rpc`.
pub async fn layer(
    State(limiter): State<Arc<Limiter>>,
    mut request: Request,
    next: Next,
) -> Response {
    let json_rpc = request.uri().path().starts_with("/rpc");
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let ip = peer.map(|peer| client_ip(peer, request.headers(), &limiter.trusted_proxies));
    if let Some(ip) = ip {
        request.extensions_mut().insert(ClientIp(ip));
    }
    let checked = (|| {
        if let Some(ip) = ip {
            limiter.check(&limiter.per_ip, &ip, "ip")?;
        }
        let credentials = crate::session::credentials(request.headers());
        if let Some(key) = &credentials.bearer_key {
            limiter.check(&limiter.per_service_key, &digest(key), "service_key")?;
        } else if let Some(token) = &credentials.session_token {
            limiter.check(&limiter.per_session, &digest(token), "session")?;
        }
        Ok(())
    })();
    if let Err(Refusal(err)) = checked {
        return refuse(err, json_rpc, request).await;
    }
    let _permit = match &limiter.in_flight {
        None => None,
        Some(semaphore) => match semaphore.clone().try_acquire_owned() {
            Ok(permit) => Some(permit),
            Err(_) => {
                metrics::counter!(telemetry::LIMITED, "limit" => "concurrency").increment(1);
                let err = Error {
                    retry_after: Some(Duration::from_secs(1)),
                    ..Error::new(
                        ErrorCode::ServiceUnavailable,
                        "Too many requests in progress; retry shortly",
                    )
                };
                return refuse(err, json_rpc, request).await;
            }
        },
    };
    match limiter.timeout {
        None => next.run(request).await,
        Some(timeout) => match tokio::time::timeout(timeout, next.run(request)).await {
            Ok(response) => response,
            Err(_) => {
                metrics::counter!(telemetry::LIMITED, "limit" => "timeout").increment(1);
                let err = Error::new(
                    ErrorCode::ServiceUnavailable,
                    format!("The request took longer than {} s", timeout.as_secs()),
                );
                if json_rpc {
                    json_rpc_errors(&err, &[Value::Null])
                } else {
                    crate::trpc::whole_request_error(err)
                }
            }
        },
    }
}

/// The refusal in the caller's protocol. For JSON-RPC the body is read (it is small and
/// bounded) to answer each call by its id.
async fn refuse(err: Error, json_rpc: bool, request: Request) -> Response {
    if !json_rpc {
        return crate::trpc::whole_request_error(err);
    }
    if request.method() != axum::http::Method::POST {
        // A WebSocket upgrade: no JSON-RPC frame to answer in.
        let mut response = (
            StatusCode::from_u16(err.code.http_status()).unwrap_or(StatusCode::TOO_MANY_REQUESTS),
            err.message.clone(),
        )
            .into_response();
        retry_after(&mut response, &err);
        return response;
    }
    let body = axum::body::to_bytes(request.into_body(), crate::trpc::MAX_BODY)
        .await
        .unwrap_or_default();
    let ids: Vec<Value> = match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Array(calls)) => calls.iter().map(|c| c["id"].clone()).collect(),
        Ok(call) => vec![call["id"].clone()],
        Err(_) => vec![Value::Null],
    };
    json_rpc_errors(&err, &ids)
}

/// One JSON-RPC error per id (an array for a batch), `HTTP 200` as JSON-RPC answers errors,
/// with `Retry-After` when the error says when.
fn json_rpc_errors(err: &Error, ids: &[Value]) -> Response {
    let (key, number, status) = err.code.wire();
    let mut data = json!({"code": key, "httpStatus": status});
    if let Some(wait) = err.retry_after {
        data["retryAfter"] = json!(retry_seconds(wait));
    }
    let answers: Vec<Value> = ids
        .iter()
        .map(|id| {
            json!({"jsonrpc": "2.0", "id": id, "error": {"code": number, "message": err.message, "data": data}})
        })
        .collect();
    let body = if answers.len() == 1 {
        answers[0].to_string()
    } else {
        Value::Array(answers).to_string()
    };
    let mut response = (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        Body::from(body),
    )
        .into_response();
    retry_after(&mut response, err);
    response
}

/// Sets `Retry-After` (whole seconds, at least 1) when the error says when to retry.
pub fn retry_after(response: &mut Response, err: &Error) {
    if let Some(wait) = err.retry_after {
        response.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from(retry_seconds(wait).max(1)),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forwarded(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let client: IpAddr = "203.0.113.7".parse().unwrap();
        let headers = forwarded("198.51.100.1, 203.0.113.7, 10.0.0.1");
        // Not trusted: the header is ignored.
        assert_eq!(client_ip(proxy, &headers, &[]), proxy);
        // Trusted: the nearest untrusted hop, never the client-written left end.
        assert_eq!(client_ip(proxy, &headers, &[proxy]), client);
        // Garbage stops the walk at the proxy itself.
        assert_eq!(client_ip(proxy, &forwarded("nonsense"), &[proxy]), proxy);
        assert_eq!(client_ip(proxy, &HeaderMap::new(), &[proxy]), proxy);
    }

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(retry_seconds(Duration::from_millis(1)), 1);
        assert_eq!(retry_seconds(Duration::from_secs(2)), 2);
        assert_eq!(retry_seconds(Duration::from_millis(2001)), 3);
    }
}
