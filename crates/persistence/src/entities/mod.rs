//! SeaORM entities, one per table. They stay inside this crate: the rest of Tidings sees
//! domain types and the plain records of [`crate`].

pub mod group_members;
pub mod notification_types;
pub mod notifications;
pub mod organizations;
pub mod preferences;
pub mod service_keys;
pub mod sessions;
pub mod user_groups;
pub mod users;
