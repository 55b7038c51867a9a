use std::sync::{Arc, Mutex};
use std::time::Duration;

use tidings_domain::{Caller, Error, UserCaller};
use tidings_persistence::Db;

/// Settings the procedures need, built once by the composition root.
#[derive(Clone, Debug)]
pub struct AppConfig {
    /// How long a session lives without use (sliding expiry).
    pub session_ttl: Duration,
}

impl Default for AppConfig {
    fn default() -> Self {
        Self {
            session_ttl: Duration::from_secs(30 * 24 * 60 * 60),
        }
    }
}

/// What every procedure call shares: the database and the configuration.
#[derive(Clone, Debug)]
pub struct App {
    pub db: Db,
    pub config: Arc<AppConfig>,
}

impl App {
    pub fn new(db: Db, config: AppConfig) -> Self {
        Self {
            db,
            config: Arc::new(config),
        }
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

/// One procedure call's context: the app, who is calling, and the session slot.
#[derive(Clone, Debug)]
pub struct Ctx {
    pub app: App,
    pub caller: Option<Caller>,
    pub session: SessionSlot,
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
