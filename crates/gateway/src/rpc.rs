//! JSON-RPC 2.0 for internal services, served by jsonrpsee at `POST /rpc` and WebSocket
//! `GET /rpc`, generated from the same procedure registry as tRPC.
//!
//! `params` is the procedure's input object (or absent), `result` its output; an error carries
//! the tRPC number, the message and `data: {code, httpStatus, path}`. Credentials are checked on
//! every call, so on a long-lived WebSocket a revoked session or key stops working at once.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use futures::future::Either;
use jsonrpsee::core::SubscriptionError;
use jsonrpsee::core::middleware::{Batch, BatchEntry, BatchEntryErr, Notification};
use jsonrpsee::server::middleware::rpc::{RpcServiceBuilder, RpcServiceT};
use jsonrpsee::server::{
    MethodResponse, PendingSubscriptionSink, RpcModule, ServerConfig, StopHandle,
    SubscriptionCloseResponse, SubscriptionMessage, TowerServiceBuilder,
};
use jsonrpsee::types::{ErrorObjectOwned, Params, Request as RpcRequest};
use serde_json::{Value, json};
use tidings_procedures::{
    App, Credentials, Ctx, Error, Kind, Procedure, RawInput, Registry, SessionSlot, SubEvent,
    resolve_caller,
};

/// What the JSON-RPC route needs per request.
#[derive(Clone)]
pub struct RpcState {
    allowed_origins: Arc<Vec<String>>,
    builder: TowerServiceBuilder<
        tower::layer::util::Stack<KnownMethodsLayer, tower::layer::util::Identity>,
        tower::layer::util::Identity,
    >,
    methods: jsonrpsee::Methods,
    stop: StopHandle,
}

impl std::fmt::Debug for RpcState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RpcState").finish_non_exhaustive()
    }
}

/// The credentials of a JSON-RPC request, looked up again on every call, and whether its
/// `Origin` (if any) may use the session cookie.
#[derive(Clone, Debug)]
pub struct RpcCredentials {
    pub credentials: Credentials,
    pub origin_allowed: bool,
}

fn error_object(err: &Error, path: &str) -> ErrorObjectOwned {
    if err.code == tidings_procedures::ErrorCode::InternalServerError {
        tracing::error!(procedure = path, error = %err, "procedure failed");
    }
    let (key, number, status) = err.code.wire();
    let mut data = json!({"code": key, "httpStatus": status, "path": path});
    if let Some(wait) = err.retry_after {
        data["retryAfter"] = json!(wait.as_secs().max(1));
    }
    ErrorObjectOwned::owned(number, err.message.clone(), Some(data))
}

/// `params` as a procedure input: an object is the input; `[input]` (positional) also works.
fn input(params: &Params<'_>) -> RawInput {
    let Some(text) = params.as_str() else {
        return RawInput::None;
    };
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Array(mut items)) if items.len() <= 1 => {
            items.pop().map_or(RawInput::None, RawInput::Json)
        }
        Ok(value) => RawInput::Json(value),
        Err(e) => RawInput::Malformed(e.to_string()),
    }
}

async fn context(app: &App, extensions: &jsonrpsee::Extensions) -> Result<Ctx, Error> {
    let RpcCredentials {
        credentials,
        origin_allowed,
    } = extensions
        .get::<RpcCredentials>()
        .cloned()
        .unwrap_or(RpcCredentials {
            credentials: Credentials::default(),
            origin_allowed: true,
        });
    // A browser opens a WebSocket to any origin with its cookies, and the page that opened it
    // reads every answer: a cookie is good only from this server's own or an allowed origin
    // (cross-site WebSocket hijacking). Keys are not sent by browsers on their own.
    if credentials.bearer_key.is_none() && credentials.session_token.is_some() && !origin_allowed {
        return Err(Error::forbidden("Origin not allowed"));
    }
    let caller = resolve_caller(app, &credentials, &SessionSlot::default()).await?;
    Ok(Ctx {
        app: app.clone(),
        caller,
        session: SessionSlot::default(),
        client_ip: extensions.get::<crate::limits::ClientIp>().map(|c| c.0),
    })
}

async fn run_subscription(
    app: App,
    procedure: &Procedure,
    params: Params<'static>,
    pending: PendingSubscriptionSink,
    extensions: jsonrpsee::Extensions,
) -> SubscriptionCloseResponse {
    let name = procedure.name;
    let opened = match context(&app, &extensions).await {
        Ok(ctx) => procedure.subscribe(ctx, input(&params)).await,
        Err(err) => Err(err),
    };
    let mut events = match opened {
        Ok(events) => events,
        Err(err) => {
            pending.reject(error_object(&err, name)).await;
            return SubscriptionCloseResponse::None;
        }
    };
    let Ok(sink) = pending.accept().await else {
        return SubscriptionCloseResponse::None;
    };
    loop {
        let event = tokio::select! {
            _ = sink.closed() => return SubscriptionCloseResponse::None,
            event = events.next() => event,
        };
        match event {
            Some(Ok(SubEvent::Data { id, data })) => {
                #[derive(serde::Serialize)]
                struct Message<'a> {
                    id: &'a Option<String>,
                    data: &'a tidings_procedures::Output,
                }
                let message = Message {
                    id: &id,
                    data: &data,
                };
                let Ok(raw) = serde_json::value::to_raw_value(&message) else {
                    return SubscriptionCloseResponse::None;
                };
                if sink.send(SubscriptionMessage::from(raw)).await.is_err() {
                    return SubscriptionCloseResponse::None;
                }
            }
            Some(Err(err)) => {
                // The subscriber learns why its stream ended: a final error notification
                // carrying the same error object as a failed call.
                tracing::warn!(procedure = name, error = %err, "subscription ended by an error");
                return match serde_json::value::to_raw_value(&error_object(&err, name)) {
                    Ok(raw) => {
                        SubscriptionCloseResponse::NotifErr(SubscriptionError::from_json(raw))
                    }
                    Err(_) => SubscriptionCloseResponse::None,
                };
            }
            None => return SubscriptionCloseResponse::None,
        }
    }
}

/// Answers a call to a method Tidings does not have as tRPC does, with NOT_FOUND (-32004) and
/// the usual `data`, instead of jsonrpsee's bare "Method not found".
#[derive(Clone)]
pub struct KnownMethods<S> {
    inner: S,
    known: Arc<std::collections::HashSet<&'static str>>,
}

/// Wraps jsonrpsee's service in [`KnownMethods`].
#[derive(Clone)]
pub struct KnownMethodsLayer(Arc<std::collections::HashSet<&'static str>>);

impl<S> tower::Layer<S> for KnownMethodsLayer {
    type Service = KnownMethods<S>;

    fn layer(&self, inner: S) -> KnownMethods<S> {
        KnownMethods {
            inner,
            known: self.0.clone(),
        }
    }
}

impl<S> KnownMethods<S> {
    fn unknown(&self, method: &str) -> Option<ErrorObjectOwned> {
        (!self.known.contains(method)).then(|| {
            error_object(
                &Error::not_found(format!("No procedure found on path \"{method}\"")),
                method,
            )
        })
    }
}

impl<S> RpcServiceT for KnownMethods<S>
where
    S: RpcServiceT<
            MethodResponse = MethodResponse,
            BatchResponse = MethodResponse,
            NotificationResponse = MethodResponse,
        > + Send
        + Sync,
{
    type MethodResponse = MethodResponse;
    type BatchResponse = MethodResponse;
    type NotificationResponse = MethodResponse;

    fn call<'a>(
        &self,
        request: RpcRequest<'a>,
    ) -> impl Future<Output = MethodResponse> + Send + 'a {
        match self.unknown(request.method_name()) {
            None => Either::Left(self.inner.call(request)),
            Some(err) => {
                Either::Right(std::future::ready(MethodResponse::error(request.id(), err)))
            }
        }
    }

    fn batch<'a>(&self, mut batch: Batch<'a>) -> impl Future<Output = MethodResponse> + Send + 'a {
        for entry in batch.iter_mut() {
            if let Ok(BatchEntry::Call(request)) = entry
                && let Some(err) = self.unknown(request.method_name())
            {
                *entry = Err(BatchEntryErr::new(request.id(), err));
            }
        }
        self.inner.batch(batch)
    }

    fn notification<'a>(
        &self,
        n: Notification<'a>,
    ) -> impl Future<Output = MethodResponse> + Send + 'a {
        self.inner.notification(n)
    }
}

/// A jsonrpsee module with every procedure of `registry`.
fn module(app: App, registry: Arc<Registry>) -> RpcModule<()> {
    let mut module = RpcModule::new(());
    for procedure in registry.iter() {
        let name = procedure.name;
        let app = app.clone();
        let registry = registry.clone();
        let registered = match procedure.kind {
            Kind::Query | Kind::Mutation => module
                .register_async_method(name, move |params, _, extensions| {
                    let app = app.clone();
                    let registry = registry.clone();
                    async move {
                        let procedure = registry.get(name).expect("registered");
                        let ctx = context(&app, &extensions)
                            .await
                            .map_err(|e| error_object(&e, name))?;
                        procedure
                            .call(ctx, input(&params))
                            .await
                            .map_err(|e| error_object(&e, name))
                    }
                })
                .map(|_| ()),
            Kind::Subscription => {
                // jsonrpsee wants 'static names; a handful per process start.
                let unsubscribe: &'static str =
                    Box::leak(format!("{name}.unsubscribe").into_boxed_str());
                module
                    .register_subscription(
                        name,
                        name,
                        unsubscribe,
                        move |params, pending, _, extensions| {
                            let app = app.clone();
                            let registry = registry.clone();
                            async move {
                                let procedure = registry.get(name).expect("registered");
                                run_subscription(app, procedure, params, pending, extensions).await
                            }
                        },
                    )
                    .map(|_| ())
            }
        };
        if let Err(e) = registered {
            tracing::error!(procedure = name, error = %e, "could not register a JSON-RPC method");
        }
    }
    module
}

impl RpcState {
    pub fn new(
        app: App,
        registry: Arc<Registry>,
        max_subscriptions_per_connection: u32,
        allowed_origins: Arc<Vec<String>>,
        stop: StopHandle,
    ) -> Self {
        let config = ServerConfig::builder()
            .max_request_body_size(crate::trpc::MAX_BODY as u32)
            .max_subscriptions_per_connection(max_subscriptions_per_connection)
            .build();
        let methods: jsonrpsee::Methods = module(app, registry).into();
        let known = Arc::new(
            methods
                .method_names()
                .collect::<std::collections::HashSet<_>>(),
        );
        let builder = jsonrpsee::server::Server::builder()
            .set_config(config)
            .set_rpc_middleware(RpcServiceBuilder::new().layer(KnownMethodsLayer(known)))
            .to_service_builder();
        Self {
            allowed_origins,
            builder,
            methods,
            stop,
        }
    }
}

/// Hands a request at `/rpc` to jsonrpsee, which answers it or upgrades it to a WebSocket.
pub async fn handle(State(state): State<RpcState>, mut request: Request) -> Response {
    let credentials = crate::session::credentials(request.headers());
    let origin_allowed = crate::session::origin_allowed(request.headers(), &state.allowed_origins);
    request.extensions_mut().insert(RpcCredentials {
        credentials,
        origin_allowed,
    });
    let mut service = state
        .builder
        .build(state.methods.clone(), state.stop.clone());
    match tower::Service::call(&mut service, request).await {
        Ok(response) => response.map(Body::new),
        Err(e) => {
            tracing::error!(error = %e, "JSON-RPC transport failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}
