//! Tidings' storage: the only crate that holds SQL or SeaORM.
//!
//! It speaks domain types to its callers, keeps every transaction inside itself, and classifies
//! database errors once (unique violation → CONFLICT, lost connection → unavailable). It must not
//! depend on procedures, HTTP or any transport.

mod accounts;
pub mod bulk;
mod db;
mod entities;
mod fanout;
mod groups;
mod keys;
mod notifications;
mod preferences;
mod sessions;
mod types;

pub use accounts::{NewUser, OrganizationRecord, UserChanges, UserRecord, UserUpsert, UsersPage};
pub use db::{Backend, Db};
pub use fanout::{
    Fanout, FanoutOutcome, GroupOperator, IDEMPOTENCY_WINDOW, IdempotencyClaim, Recipients,
};
pub use groups::GroupRecord;
pub use keys::ServiceKeyRecord;
pub use notifications::{
    Counts, InboxPage, NewNotification, NotificationRecord, OwnedUpdate, TypeRecord,
};
pub use preferences::PreferenceOverride;
pub use sessions::SessionLookup;
