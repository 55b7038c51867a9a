use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tidings_domain::{Caller, Error, UserCaller};
use tidings_persistence::Db;

use crate::background::Background;
use crate::login_limits::LoginLimiter;
use tokio::sync::Notify;

use crate::delivery::DeliveryConfig;
use crate::realtime::{Hub, SubscriptionLimits};

/// Settings the procedures need, built once by the composition root.
#[derive(Clone, Debug)]
pub struct AppConfig {
    /// How long a session lives without use (sliding expiry).
    pub session_ttl: Duration,
    /// Caps on open subscriptions.
    pub subscriptions: SubscriptionLimits,
    /// Failed sign-ins allowed per email and per client address each minute; 0 = no limit.
    pub login_failures_per_minute: u32,
    /// How email and push deliveries are sent and retried.
    pub delivery: DeliveryConfig,
}

impl Default for AppConfig {
    fn default() -> Self {
        Self {
            session_ttl: Duration::from_secs(30 * 24 * 60 * 60),
            subscriptions: SubscriptionLimits::default(),
            login_failures_per_minute: 10,
            delivery: DeliveryConfig::default(),
        }
    }
}

/// What every procedure call shares: the database, the configuration and the live-update hub.
#[derive(Clone, Debug)]
pub struct App {
    pub db: Db,
    pub config: Arc<AppConfig>,
    pub hub: Hub,
    /// Failed sign-ins by email and by client address.
    pub login_limiter: Arc<LoginLimiter>,
    /// Tasks that run beside the requests and are stopped on shutdown.
    pub background: Background,
    /// Woken when this process queues deliveries, so a worker need not wait for its next poll.
    pub outbox: Arc<Notify>,
}

impl App {
    /// An app whose hub has not started hearing other processes; see [`App::start`].
    pub fn new(db: Db, config: AppConfig) -> Self {
        let hub = Hub::new(db.clone(), config.subscriptions);
        Self {
            db,
            login_limiter: Arc::new(LoginLimiter::new(config.login_failures_per_minute)),
            config: Arc::new(config),
            hub,
            background: Background::default(),
            outbox: Arc::new(Notify::new()),
        }
    }

    /// An app that hears changes made by other processes on the same database.
    pub async fn start(db: Db, config: AppConfig) -> Result<Self, Error> {
        let app = Self::new(db, config);
        app.hub.start().await?;
        Ok(app)
    }
}

/// A change to the caller's browser session that the transport must carry out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SessionChange {
    /// Set the session cookie to this token for this long.
    Set { token: String, max_age: Duration },
    /// Remove the session cookie.
    Clear,
}

/// Where a procedure leaves a [`SessionChange`] for the transport to apply.
#[derive(Clone, Debug, Default)]
pub struct SessionSlot(Arc<Mutex<Option<SessionChange>>>);

impl SessionSlot {
    pub fn set(&self, change: SessionChange) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(change);
    }

    pub fn take(&self) -> Option<SessionChange> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

/// One procedure call's context: the app, who is calling, from where, and the session slot.
#[derive(Clone, Debug)]
pub struct Ctx {
    pub app: App,
    pub caller: Option<Caller>,
    pub session: SessionSlot,
    /// The client's address as the transport determined it (none for the command line).
    pub client_ip: Option<IpAddr>,
}

impl Ctx {
    pub fn db(&self) -> &Db {
        &self.app.db
    }

    /// The signed-in user; the registry has already checked that there is one.
    pub(crate) fn user(&self) -> Result<&UserCaller, Error> {
        match &self.caller {
            Some(Caller::User(user)) => Ok(user),
            _ => Err(Error::unauthorized()),
        }
    }
}
