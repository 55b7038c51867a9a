use std::any::Any;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use futures::future::BoxFuture;
use futures::stream::BoxStream;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use serde_json::value::RawValue;
use tidings_domain::{Caller, Error, Role};

use crate::input::{RawInput, decode};
use crate::realtime::{self, SubEvent};
use crate::{
    Ctx, accounts, auth, banners, deliveries, groups, inbox, notify, preferences, records,
    telemetry,
};

/// How a procedure is called.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Query,
    Mutation,
    Subscription,
}

impl Kind {
    pub const fn as_str(self) -> &'static str {
        match self {
            Kind::Query => "query",
            Kind::Mutation => "mutation",
            Kind::Subscription => "subscription",
        }
    }
}

/// Who may call a procedure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Anyone, signed in or not.
    Public,
    /// A signed-in user, acting on their own data.
    User,
    /// An admin user (within their organization) or a service key (instance-wide).
    Admin,
    /// A service key only.
    Service,
}

/// A call's answer, serialized to JSON once. Transports write it into their envelopes as it
/// is, and a cached answer is shared rather than copied.
#[derive(Clone, Debug)]
pub struct Output(Arc<RawValue>);

impl Output {
    /// Serializes `value`; an `Output` is taken as it is.
    pub fn new<T: Serialize + 'static>(value: &T) -> Result<Self, Error> {
        if let Some(output) = (value as &dyn Any).downcast_ref::<Output>() {
            return Ok(output.clone());
        }
        serde_json::value::to_raw_value(value)
            .map(|raw| Self(raw.into()))
            .map_err(Error::internal)
    }

    /// The JSON text.
    pub fn json(&self) -> &str {
        self.0.get()
    }

    /// The answer as a JSON value, for callers that look inside it.
    pub fn to_value(&self) -> Value {
        serde_json::from_str(self.0.get()).unwrap_or(Value::Null)
    }
}

/// Two answers are equal when their JSON texts are.
impl PartialEq for Output {
    fn eq(&self, other: &Self) -> bool {
        self.json() == other.json()
    }
}

impl Serialize for Output {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

type CallHandler =
    Box<dyn Fn(Ctx, Value) -> BoxFuture<'static, Result<Output, Error>> + Send + Sync>;

/// The events of an open subscription; an `Err` ends it.
pub type EventStream = BoxStream<'static, Result<SubEvent, Error>>;

type SubscribeHandler =
    Box<dyn Fn(Ctx, Value) -> BoxFuture<'static, Result<EventStream, Error>> + Send + Sync>;

/// Decodes a procedure's input without running it: what the handler would refuse as input.
type Decoder = fn(Value) -> Result<(), Error>;

/// What runs a procedure: a call answers once, a subscription streams events. Each carries
/// the decoder of its input, so inputs can be checked alone (by the fuzz targets).
enum Handler {
    Call(CallHandler, Decoder),
    Subscribe(SubscribeHandler, Decoder),
}

/// The decoder of a typed input `I`.
fn decoder<I: DeserializeOwned>(value: Value) -> Result<(), Error> {
    decode::<I>(value).map(|_| ())
}

/// A named procedure with its kind, its access rule and its handler.
pub struct Procedure {
    pub name: &'static str,
    pub kind: Kind,
    pub access: Access,
    /// Whether the procedure reads its input; one that does not never parses it.
    pub takes_input: bool,
    handler: Handler,
}

impl fmt::Debug for Procedure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Procedure")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("access", &self.access)
            .finish()
    }
}

impl Procedure {
    /// Checks access, then decodes the input (only when the procedure reads it).
    fn prepare(&self, ctx: &Ctx, input: RawInput) -> Result<Value, Error> {
        check_access(self.access, ctx.caller.as_ref())?;
        if self.takes_input {
            input.into_value()
        } else {
            Ok(Value::Object(Default::default()))
        }
    }

    /// Runs a query or mutation: access first, then input decoding, then the handler. Every
    /// call is counted, timed and logged (`telemetry`), on whichever transport it came.
    pub async fn call(&self, ctx: Ctx, input: RawInput) -> Result<Output, Error> {
        let started = Instant::now();
        let caller = ctx.caller.clone();
        let result = self.call_unrecorded(ctx, input).await;
        telemetry::record_call(
            self.name,
            caller.as_ref(),
            started.elapsed(),
            result.as_ref().map(|_| ()),
        );
        result
    }

    async fn call_unrecorded(&self, ctx: Ctx, input: RawInput) -> Result<Output, Error> {
        let input = self.prepare(&ctx, input)?;
        match &self.handler {
            Handler::Call(handler, _) => handler(ctx, input).await,
            Handler::Subscribe(..) => Err(Error::bad_request(format!(
                "{} is a subscription",
                self.name
            ))),
        }
    }

    /// Opens a subscription: access first, then input decoding, then the stream of events.
    /// Opening is counted and timed like a call.
    pub async fn subscribe(&self, ctx: Ctx, input: RawInput) -> Result<EventStream, Error> {
        let started = Instant::now();
        let caller = ctx.caller.clone();
        let result = self.subscribe_unrecorded(ctx, input).await;
        telemetry::record_call(
            self.name,
            caller.as_ref(),
            started.elapsed(),
            result.as_ref().map(|_| ()),
        );
        result
    }

    async fn subscribe_unrecorded(&self, ctx: Ctx, input: RawInput) -> Result<EventStream, Error> {
        let input = self.prepare(&ctx, input)?;
        match &self.handler {
            Handler::Subscribe(handler, _) => handler(ctx, input).await,
            Handler::Call(..) => Err(Error::bad_request(format!(
                "{} is not a subscription",
                self.name
            ))),
        }
    }
}

impl Procedure {
    /// Decodes `input` as a call would, without checking access or running the handler: the
    /// error a call would answer for this input, if its input is what is wrong.
    pub fn decode_input(&self, input: RawInput) -> Result<(), Error> {
        if !self.takes_input {
            return Ok(());
        }
        let value = input.into_value()?;
        match &self.handler {
            Handler::Call(_, decode) | Handler::Subscribe(_, decode) => decode(value),
        }
    }
}

fn check_access(access: Access, caller: Option<&Caller>) -> Result<(), Error> {
    match (access, caller) {
        (Access::Public, _) => Ok(()),
        (_, None) => Err(Error::unauthorized()),
        (Access::User, Some(Caller::User(_))) => Ok(()),
        (Access::User, Some(Caller::Service(_))) => {
            Err(Error::forbidden("This procedure needs a user session"))
        }
        (Access::Admin, Some(Caller::Service(_))) => Ok(()),
        (Access::Admin, Some(Caller::User(u))) if u.role == Role::Admin => Ok(()),
        (Access::Admin, Some(Caller::User(_))) => Err(Error::forbidden("Requires the admin role")),
        (Access::Service, Some(Caller::Service(_))) => Ok(()),
        (Access::Service, Some(Caller::User(_))) => {
            Err(Error::forbidden("This procedure needs a service key"))
        }
    }
}

/// Every procedure Tidings serves, by name.
pub struct Registry {
    procedures: HashMap<&'static str, Procedure>,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.procedures.keys()).finish()
    }
}

/// Wraps a typed procedure function as a handler over JSON.
fn handler<I, O, F, Fut>(f: F) -> Handler
where
    I: DeserializeOwned + Send + 'static,
    O: Serialize + 'static,
    F: Fn(Ctx, I) -> Fut + Send + Sync + Copy + 'static,
    Fut: Future<Output = Result<O, Error>> + Send + 'static,
{
    Handler::Call(
        Box::new(move |ctx, value| {
            Box::pin(async move {
                let input = decode::<I>(value)?;
                let output = f(ctx, input).await?;
                Output::new(&output)
            })
        }),
        decoder::<I>,
    )
}

/// Wraps a typed subscription function as a handler over JSON.
fn subscription<I, F, Fut>(f: F) -> Handler
where
    I: DeserializeOwned + Send + 'static,
    F: Fn(Ctx, I) -> Fut + Send + Sync + Copy + 'static,
    Fut: Future<Output = Result<EventStream, Error>> + Send + 'static,
{
    Handler::Subscribe(
        Box::new(move |ctx, value| {
            Box::pin(async move {
                let input = decode::<I>(value)?;
                f(ctx, input).await
            })
        }),
        decoder::<I>,
    )
}

/// Wraps a procedure that takes its input as raw JSON, for inputs that may be an object or an
/// array; `decode` is the part of it that reads the input.
fn raw_handler<O, F, Fut>(f: F, decode: Decoder) -> Handler
where
    O: Serialize + 'static,
    F: Fn(Ctx, Value) -> Fut + Send + Sync + Copy + 'static,
    Fut: Future<Output = Result<O, Error>> + Send + 'static,
{
    Handler::Call(
        Box::new(move |ctx, value| {
            Box::pin(async move {
                let output = f(ctx, value).await?;
                Output::new(&output)
            })
        }),
        decode,
    )
}

/// Marks a procedure without input: whatever the transport received is ignored.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NoInput {}

impl Default for Registry {
    fn default() -> Self {
        Self::new()
    }
}

impl Registry {
    #[rustfmt::skip]
    pub fn new() -> Self {
        use Access::*;
        use Kind::*;
        let mut registry = Self { procedures: HashMap::new() };
        // Accounts and sessions.
        registry.add("auth.login", Mutation, Public, true, handler(auth::login));
        registry.add("auth.logout", Mutation, User, false, handler(auth::logout));
        registry.add("auth.logoutAll", Mutation, User, false, handler(auth::logout_all));
        registry.add("auth.me", Query, User, false, handler(auth::me));
        registry.add("sessions.create", Mutation, Service, true, handler(auth::create_session));
        registry.add("organizations.create", Mutation, Admin, true, handler(accounts::create_organization));
        registry.add("users.create", Mutation, Admin, true, handler(accounts::create_user));
        registry.add("organizations.list", Query, Admin, false, handler(accounts::list_organizations));
        registry.add("users.list", Query, Admin, true, handler(accounts::list_users));
        registry.add("users.update", Mutation, Admin, true, handler(accounts::update_user));
        registry.add("users.delete", Mutation, Admin, true, handler(accounts::delete_user));
        registry.add("users.upsertMany", Mutation, Admin, true, handler(accounts::upsert_many));
        // Groups.
        registry.add("groups.create", Mutation, Admin, true, handler(groups::create));
        registry.add("groups.list", Query, Admin, true, handler(groups::list));
        registry.add("groups.addMembers", Mutation, Admin, true, handler(groups::add_members));
        registry.add("groups.removeMembers", Mutation, Admin, true, handler(groups::remove_members));
        // Records.
        registry.add("notifications.create", Mutation, Admin, true, raw_handler(records::create, records::decode_create));
        registry.add("notifications.get", Query, Admin, true, handler(records::get));
        registry.add("notifications.query", Query, Admin, true, handler(records::query));
        registry.add("notifications.update", Mutation, Admin, true, handler(records::update));
        registry.add("notifications.updateMany", Mutation, Admin, true, handler(records::update_many));
        registry.add("notifications.deleteMany", Mutation, Admin, true, handler(records::delete_many));
        // Banners.
        registry.add("banners.create", Mutation, Admin, true, handler(banners::create));
        registry.add("banners.update", Mutation, Admin, true, handler(banners::update));
        registry.add("banners.delete", Mutation, Admin, true, handler(banners::delete));
        registry.add("banners.list", Query, Admin, true, handler(banners::list));
        registry.add("banners.current", Query, User, false, handler(banners::current));
        registry.add("banners.dismiss", Mutation, User, true, handler(banners::dismiss));
        // Fan-out and the types it renders.
        registry.add("notifications.notify", Mutation, Admin, true, raw_handler(notify::notify, notify::decode_notify));
        registry.add("notificationTypes.upsert", Mutation, Admin, true, handler(notify::upsert_type));
        registry.add("notificationTypes.list", Query, Admin, false, handler(notify::list_types));
        // The inbox.
        registry.add("notifications.list", Query, User, true, handler(inbox::list));
        registry.add("notifications.unreadCount", Query, User, false, handler(inbox::unread_count));
        registry.add("notifications.counts", Query, User, false, handler(inbox::counts));
        registry.add("notifications.markAsRead", Mutation, User, true, handler(inbox::mark_as_read));
        registry.add("notifications.markAllAsRead", Mutation, User, true, handler(inbox::mark_all_as_read));
        registry.add("notifications.markAllAsSeen", Mutation, User, true, handler(inbox::mark_all_as_seen));
        registry.add("notifications.delete", Mutation, User, true, handler(inbox::delete));
        registry.add("notifications.archive", Mutation, User, true, handler(inbox::archive));
        // Live updates.
        registry.add("notifications.onNew", Subscription, User, true, subscription(realtime::on_new));
        registry.add("notifications.onCounts", Subscription, User, false, subscription(realtime::on_counts));
        // Preferences.
        registry.add("notifications.getPreferences", Query, User, false, handler(preferences::get));
        registry.add("notifications.updatePreferences", Mutation, User, true, handler(preferences::update));
        registry.add("notifications.disableAllEmail", Mutation, User, true, handler(preferences::disable_all_email));
        registry.add("notifications.types", Query, User, false, handler(preferences::list_types));
        // Delivery by email and push.
        registry.add("deliveries.list", Query, Admin, true, handler(deliveries::list));
        registry.add("push.vapidPublicKey", Query, Public, false, handler(deliveries::vapid_public_key));
        registry.add("push.subscribe", Mutation, User, true, handler(deliveries::subscribe));
        registry.add("push.unsubscribe", Mutation, User, true, handler(deliveries::unsubscribe));
        registry
    }

    fn add(
        &mut self,
        name: &'static str,
        kind: Kind,
        access: Access,
        takes_input: bool,
        handler: Handler,
    ) {
        let procedure = Procedure {
            name,
            kind,
            access,
            takes_input,
            handler,
        };
        assert!(
            self.procedures.insert(name, procedure).is_none(),
            "procedure {name} registered twice"
        );
    }

    pub fn get(&self, name: &str) -> Option<&Procedure> {
        self.procedures.get(name)
    }

    /// Every procedure, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = &Procedure> {
        let mut all: Vec<_> = self.procedures.values().collect();
        all.sort_by_key(|p| p.name);
        all.into_iter()
    }
}
