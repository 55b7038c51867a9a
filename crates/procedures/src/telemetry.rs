//! The metrics Tidings records, named once. They go to the `metrics` facade; the gateway
//! installs the Prometheus recorder that `/metrics` renders, and without one they cost little.
//! Every procedure call is recorded here, where the registry dispatches it, so tRPC and JSON-RPC
//! are counted alike.

use std::time::Duration;

use tidings_domain::{Caller, Error};

/// Counter: calls by `procedure` and `code` (`OK` or the tRPC error key).
pub const REQUESTS: &str = "tidings_requests_total";
/// Histogram: call durations in seconds, by `procedure` and `code`.
pub const REQUEST_DURATION: &str = "tidings_request_duration_seconds";
/// Histogram: users reached by one fan-out (`notifications.notify`).
pub const FANOUT_RECIPIENTS: &str = "tidings_fanout_recipients";
/// Histogram: how long one fan-out's transaction took, in seconds.
pub const FANOUT_DURATION: &str = "tidings_fanout_duration_seconds";
/// Gauge: subscriptions open in this process.
pub const SUBSCRIPTIONS_OPEN: &str = "tidings_subscriptions_open";
/// Gauges: database pool connections open, idle, and the pool's cap.
pub const DB_CONNECTIONS: &str = "tidings_db_connections";
pub const DB_CONNECTIONS_IDLE: &str = "tidings_db_connections_idle";
pub const DB_CONNECTIONS_MAX: &str = "tidings_db_connections_max";
/// Counter: requests refused by a rate or concurrency limit, by `limit`.
pub const LIMITED: &str = "tidings_rate_limited_total";
/// Gauge: the delivery outbox's rows by `state` (`pending`, `sending`, `sent`, `failed`),
/// counted when `/metrics` is read.
pub const OUTBOX_DELIVERIES: &str = "tidings_outbox_deliveries";

/// Who called, for logs: never a secret, only ids and key names. Written only when a line
/// is, so a call whose log line is filtered out formats nothing.
struct CallerLabel<'a>(Option<&'a Caller>);

impl std::fmt::Display for CallerLabel<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            None => f.write_str("anonymous"),
            Some(Caller::User(u)) => write!(f, "user:{}", u.user_id.as_str()),
            Some(Caller::Service(s)) => write!(f, "service:{}", s.name),
        }
    }
}

/// Records one finished call: a counter, a duration, and a log line.
pub(crate) fn record_call(
    procedure: &'static str,
    caller: Option<&Caller>,
    elapsed: Duration,
    result: Result<(), &Error>,
) {
    let code = match result {
        Ok(()) => "OK",
        Err(e) => e.code.key(),
    };
    metrics::counter!(REQUESTS, "procedure" => procedure, "code" => code).increment(1);
    metrics::histogram!(REQUEST_DURATION, "procedure" => procedure, "code" => code)
        .record(elapsed.as_secs_f64());
    let duration_ms = elapsed.as_secs_f64() * 1000.0;
    let caller = CallerLabel(caller);
    match result {
        Err(e) if e.code == tidings_domain::ErrorCode::InternalServerError => tracing::error!(
            procedure,
            caller = %caller,
            duration_ms,
            code,
            error = %e,
            "call failed"
        ),
        _ => tracing::info!(procedure, caller = %caller, duration_ms, code, "call"),
    }
}
