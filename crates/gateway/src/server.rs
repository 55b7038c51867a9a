use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use tidings_procedures::{App, AppConfig, Db, DeliveryWorker, Error, Registry, SubscriptionLimits};
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::Config;
use crate::limits::{self, Limiter};
use crate::observe;
use crate::rpc::{self, RpcState};
use crate::session::{self, SessionState};
use crate::trpc::{self, TrpcState};

/// A server running in the background; [`RunningServer::stop`] drains it and waits.
#[derive(Debug)]
pub struct RunningServer {
    pub addr: SocketAddr,
    pub db: Db,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

impl RunningServer {
    /// Stops accepting, lets in-flight requests finish, and waits for the server to end.
    pub async fn stop(mut self) -> std::io::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        match (&mut self.task).await {
            Ok(result) => result,
            Err(e) => Err(std::io::Error::other(e)),
        }
    }

    /// Waits until the server ends by itself (a signal, or a fatal error).
    pub async fn wait(mut self) -> std::io::Result<()> {
        match (&mut self.task).await {
            Ok(result) => result,
            Err(e) => Err(std::io::Error::other(e)),
        }
    }
}

async fn healthz() -> Response {
    json_status(StatusCode::OK, r#"{"status":"ok"}"#)
}

async fn readyz(State(app): State<App>) -> Response {
    match app.db.ping().await {
        Ok(()) => json_status(StatusCode::OK, r#"{"status":"ready"}"#),
        Err(e) => {
            tracing::warn!(error = %e, "database not ready");
            json_status(
                StatusCode::SERVICE_UNAVAILABLE,
                r#"{"status":"unavailable","reason":"database unreachable"}"#,
            )
        }
    }
}

fn json_status(status: StatusCode, body: &'static str) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// Builds every route of the service over one app and registry; `stop` ends JSON-RPC
/// connections.
fn router(
    app: App,
    registry: Arc<Registry>,
    config: &Config,
    limiter: Arc<Limiter>,
    stop: jsonrpsee::server::StopHandle,
) -> Router {
    let json_rpc = Router::new()
        .route("/rpc", any(rpc::handle))
        .with_state(RpcState::new(
            app.clone(),
            registry.clone(),
            config.max_subscriptions_per_user as u32,
            Arc::new(config.allowed_origins.clone()),
            stop,
        ));
    let session_state = SessionState {
        app: app.clone(),
        allowed_origins: Arc::new(config.allowed_origins.clone()),
        cookie_secure: config.cookie_secure,
    };
    let rpc = Router::new()
        .route("/api/trpc", any(trpc::handle))
        .route("/api/trpc/{*path}", any(trpc::handle))
        .with_state(TrpcState {
            app: app.clone(),
            registry,
            ping_interval: config.sse_ping,
            max_batch_size: config.limits.max_batch_size,
        })
        .layer(axum::middleware::from_fn_with_state(
            session_state,
            session::layer,
        ));
    // Health checks and metrics stay outside the limits: a load balancer or Prometheus must
    // never be throttled.
    let limited = rpc
        .merge(json_rpc)
        .layer(axum::middleware::from_fn_with_state(limiter, limits::layer));
    let mut router = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(observe::metrics))
        .with_state(app)
        .merge(limited)
        .merge(crate::web::router())
        .layer(axum::middleware::from_fn(observe::layer));
    if !config.allowed_origins.is_empty() {
        let origins: Vec<HeaderValue> = config
            .allowed_origins
            .iter()
            .filter_map(|o| HeaderValue::from_str(o).ok())
            .collect();
        router = router.layer(
            CorsLayer::new()
                .allow_origin(AllowOrigin::list(origins))
                .allow_credentials(true)
                .allow_methods([Method::GET, Method::POST])
                .allow_headers([
                    header::CONTENT_TYPE,
                    header::AUTHORIZATION,
                    header::HeaderName::from_static("trpc-accept"),
                ]),
        );
    }
    router
}

/// Connects, migrates, creates the first admin on an empty database, binds and serves in the
/// background. The admin's one-time password is printed to standard error.
pub async fn start(config: Config) -> Result<RunningServer, Error> {
    let db = Db::connect_and_migrate(&config.database_url).await?;
    if let Some((email, password)) =
        tidings_procedures::bootstrap_admin(&db, &config.admin_email).await?
    {
        eprintln!("Created the first admin: {email} with one-time password {password}");
    }
    let app = App::start(
        db.clone(),
        AppConfig {
            session_ttl: config.session_ttl,
            subscriptions: SubscriptionLimits {
                per_user: config.max_subscriptions_per_user,
                total: config.max_subscriptions,
            },
            login_failures_per_minute: config.limits.login_failures_per_minute,
            delivery: config.delivery.clone(),
        },
    )
    .await?;
    let worker = if config.delivery.enabled {
        Some(DeliveryWorker::start(&app).await?)
    } else {
        None
    };
    observe::prometheus();
    let (stop, rpc_server) = jsonrpsee::server::stop_channel();
    let hub = app.hub.clone();
    let background = app.background.clone();
    let limiter = Arc::new(Limiter::new(&config.limits));
    forget_idle_clients(&app, limiter.clone());
    let registry = Arc::new(Registry::new());
    // Event streams are answered off hyper's connection buffers (see `listen`).
    let streams = Arc::new(crate::listen::StreamPaths::new(
        registry
            .iter()
            .filter(|p| p.kind == tidings_procedures::Kind::Subscription)
            .map(|p| format!("/api/trpc/{}", p.name)),
    ));
    let router = router(app, registry, &config, limiter, stop);
    let listener = TcpListener::bind(config.listen).await.map_err(|e| {
        Error::bad_request(format!(
            "TIDINGS_LISTEN: cannot listen on {}: {e}",
            config.listen
        ))
    })?;
    let addr = listener.local_addr().map_err(Error::internal)?;
    let (tx, rx) = oneshot::channel::<()>();
    let grace = config.limits.shutdown_grace;
    let task = tokio::spawn(async move {
        // When the stop began, for the grace period's deadline.
        let (began_tx, mut began) = watch::channel(None::<Instant>);
        let serve = crate::listen::serve(listener, router, streams, async move {
            tokio::select! {
                _ = rx => {}
                _ = shutdown_signal() => {}
            }
            tracing::info!(
                grace_seconds = grace.as_secs(),
                "stopping: no new connections, finishing requests in flight"
            );
            let _ = began_tx.send(Some(Instant::now()));
            // Long-lived streams would hold the drain open: end them, each with a last event.
            hub.close();
            let _ = rpc_server.stop();
        });
        let out_of_time = async {
            let _ = began.wait_for(Option::is_some).await;
            tokio::time::sleep(grace).await;
        };
        tokio::select! {
            () = serve => {}
            _ = out_of_time => {
                tracing::warn!("the grace period ran out; requests still in flight are dropped");
            }
        }
        // Then background work gets what is left of the grace period.
        let left = began
            .borrow()
            .map_or(grace, |began| grace.saturating_sub(began.elapsed()));
        // The delivery worker stops claiming, finishes its sends and hands back the rest.
        if let Some(worker) = worker
            && tokio::time::timeout(left, worker.stop()).await.is_err()
        {
            tracing::warn!("the delivery worker did not stop within the grace period");
        }
        let left = began
            .borrow()
            .map_or(grace, |began| grace.saturating_sub(began.elapsed()));
        if !background
            .shutdown(left.max(Duration::from_millis(100)))
            .await
        {
            tracing::warn!("background tasks did not stop within the grace period");
        }
        tracing::info!("stopped");
        Ok(())
    });
    tracing::info!(%addr, "Tidings is listening");
    Ok(RunningServer {
        addr,
        db,
        shutdown: Some(tx),
        task,
    })
}

/// Every minute, drops rate-limit state of clients gone quiet and refreshes the metrics'
/// histograms; ends when the server stops.
fn forget_idle_clients(app: &App, limiter: Arc<Limiter>) {
    let hub = app.hub.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        tick.tick().await;
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    limiter.forget_idle();
                    observe::prometheus().run_upkeep();
                }
                _ = hub.closed() => return,
            }
        }
    });
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
