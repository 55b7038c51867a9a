//! Tidings' domain: identifiers, channels, notification types, callers and the error vocabulary.
//!
//! Plain types and rules with no I/O. This crate must not depend on the database, on HTTP, or on
//! any transport: every other crate depends on it, and it depends on none of them.

mod caller;
mod channel;
mod error;
mod ids;
mod notification_type;
mod time;

pub use caller::{Caller, Role, ServiceCaller, UserCaller};
pub use channel::{Channel, NotificationStatus};
pub use error::{Error, ErrorCode};
pub use ids::{ExternalId, NotificationId, validate_email};
pub use notification_type::{ChannelSetting, GENERAL_TYPE_KEY, TypeChannels, validate_type_key};
pub use time::format_timestamp;
