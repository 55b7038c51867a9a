//! Tidings' procedures: one registry of named queries, mutations and subscriptions.
//!
//! A procedure is an `async fn(&Ctx, Input) -> Result<Output, Error>` plus its name, its kind and
//! who may call it. Both RPC surfaces serve this one registry. This crate knows nothing of HTTP,
//! cookies, tRPC or JSON-RPC: transports hand it credentials and raw JSON input, and take back
//! JSON output, an [`Error`], and the session change a procedure asked for.

mod accounts;
mod auth;
mod background;
mod banners;
mod cache;
mod ctx;
mod deliveries;
mod delivery;
mod groups;
mod inbox;
mod input;
mod login_limits;
mod notify;
mod preferences;
mod realtime;
mod records;
mod registry;
pub mod telemetry;
mod templates;

pub use auth::{
    Credentials, SESSION_COOKIE, bootstrap_admin, create_service_key, hash_password,
    new_session_token, resolve_caller,
};
pub use background::Background;
pub use ctx::{App, AppConfig, Ctx, SessionChange, SessionSlot};
pub use delivery::{DeliveryConfig, DeliveryWorker, retry_delay};
pub use input::RawInput;
pub use login_limits::LoginLimiter;
pub use realtime::{Hub, Signal, SubEvent, SubscriptionLimits};
pub use registry::{Access, EventStream, Kind, Output, Procedure, Registry};
pub use tidings_domain::{Caller, Error, ErrorCode, ServiceCaller, UserCaller, format_timestamp};
pub use tidings_persistence::Db;
