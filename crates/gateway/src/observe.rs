//! Observability: the Prometheus recorder behind `GET /metrics`, and the request id that ties a
//! request's log lines together and comes back in `X-Request-Id`.

use std::sync::OnceLock;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tidings_procedures::{App, telemetry};
use tracing::Instrument;

pub const REQUEST_ID: &str = "x-request-id";

/// Seconds: from half a millisecond (a cached inbox read) to a minute (a large fan-out).
const DURATION_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0,
];
const RECIPIENT_BUCKETS: &[f64] = &[
    1.0,
    10.0,
    100.0,
    1_000.0,
    10_000.0,
    100_000.0,
    1_000_000.0,
    10_000_000.0,
];

fn builder() -> PrometheusBuilder {
    let builder = PrometheusBuilder::new();
    let with = |b: PrometheusBuilder, name: &str, buckets: &[f64]| {
        b.set_buckets_for_metric(Matcher::Full(name.to_owned()), buckets)
            .expect("bucket lists are not empty")
    };
    let builder = with(builder, telemetry::REQUEST_DURATION, DURATION_BUCKETS);
    let builder = with(builder, telemetry::FANOUT_DURATION, DURATION_BUCKETS);
    with(builder, telemetry::FANOUT_RECIPIENTS, RECIPIENT_BUCKETS)
}

/// The process's Prometheus recorder, installed on first use. Metrics are per process, so
/// several servers in one process (as in tests) share it; if another recorder was installed
/// first, `/metrics` still answers, with what this process's own gauges say.
pub fn prometheus() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| match builder().install_recorder() {
        Ok(handle) => handle,
        Err(e) => {
            tracing::warn!(error = %e, "another metrics recorder is installed; /metrics shows gauges only");
            builder().build_recorder().handle()
        }
    })
}

/// `GET /metrics`: the gauges read now, then everything in the Prometheus text format.
pub async fn metrics(State(app): State<App>) -> Response {
    let handle = prometheus();
    metrics::gauge!(telemetry::SUBSCRIPTIONS_OPEN).set(app.hub.open() as f64);
    let pool = app.db.pool_usage();
    metrics::gauge!(telemetry::DB_CONNECTIONS).set(pool.open);
    metrics::gauge!(telemetry::DB_CONNECTIONS_IDLE).set(pool.idle);
    metrics::gauge!(telemetry::DB_CONNECTIONS_MAX).set(pool.max);
    match app.db.delivery_states().await {
        Ok(states) => {
            for state in ["pending", "sending", "sent", "failed"] {
                let n = states
                    .iter()
                    .find(|(s, _)| s == state)
                    .map_or(0, |(_, n)| *n);
                metrics::gauge!(telemetry::OUTBOX_DELIVERIES, "state" => state).set(n as f64);
            }
        }
        Err(e) => tracing::warn!(error = %e, "could not count the outbox for /metrics"),
    }
    handle.run_upkeep();
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        handle.render(),
    )
        .into_response()
}

/// A caller's own request id is kept when it is short and plain (so it cannot forge log
/// lines); otherwise a fresh UUID v7 is made.
fn request_id(request: &Request) -> String {
    request
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|id| {
            (1..=128).contains(&id.len())
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
        })
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string())
}

/// Runs the request inside a `request` span carrying its id, and echoes the id.
pub async fn layer(request: Request, next: Next) -> Response {
    let id = request_id(&request);
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %request.method(),
        path = request.uri().path(),
    );
    let mut response = next.run(request).instrument(span).await;
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    response
}
