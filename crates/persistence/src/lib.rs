//! Tidings' storage: the only crate that holds SQL or SeaORM.
//!
//! It speaks domain types to its callers, keeps every transaction inside itself, and classifies
//! database errors once (unique violation → CONFLICT, lost connection → unavailable). It must not
//! depend on procedures, HTTP or any transport.

mod accounts;
mod db;
mod entities;
mod keys;
mod notifications;
mod preferences;
mod sessions;

pub use accounts::{NewUser, OrganizationRecord, UserRecord};
pub use db::{Backend, Db};
pub use keys::ServiceKeyRecord;
pub use notifications::{
    Counts, InboxPage, NewNotification, NotificationRecord, OwnedUpdate, TypeRecord,
};
pub use preferences::PreferenceOverride;
pub use sessions::SessionLookup;
