//! Tidings' storage: the only crate that holds SQL or SeaORM.
//!
//! It speaks domain types to its callers, keeps every transaction inside itself, and classifies
//! database errors once (unique violation → CONFLICT, lost connection → unavailable). It must not
//! depend on procedures, HTTP or any transport.

mod accounts;
mod banners;
pub mod bulk;
mod db;
mod deliveries;
mod entities;
mod fanout;
mod groups;
mod keys;
mod notifications;
mod preferences;
mod realtime;
mod sessions;
mod types;

pub use accounts::{NewUser, OrganizationRecord, UserChanges, UserRecord, UserUpsert, UsersPage};
pub use banners::{
    ActiveBanner, BannerChanges, BannerListing, BannerOrder, BannerPage, BannerRecord, NewBanner,
};
pub use db::{Backend, Db, PoolUsage};
pub use deliveries::{ClaimedDelivery, DeliveryFilter, DeliveryRecord, PushSubscriptionRecord};
pub use fanout::{
    Fanout, FanoutOutcome, GroupOperator, IDEMPOTENCY_WINDOW, IdRange, IdempotencyClaim, Recipients,
};
pub use groups::GroupRecord;
pub use keys::ServiceKeyRecord;
pub use notifications::{
    Counts, DeletedRecords, InboxPage, KeysOutcome, NewNotification, NotificationRecord,
    OwnedUpdate, RecordChanges, RecordFilter, RecordQuery, RecordsPage, TextMatch, TypeRecord,
};
pub use preferences::PreferenceOverride;
pub use realtime::{EVENTS_CHANNEL, FanOutMark, Heard};
pub use sessions::SessionLookup;
