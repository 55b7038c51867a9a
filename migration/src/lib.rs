//! Tidings' schema, as an ordered list of sea-orm-migration steps.
//!
//! Migrations use their own identifiers and never import the persistence entities: an applied
//! migration is never edited, so it must not change when an entity does.

pub use sea_orm_migration::prelude::*;

mod m20261125_000001_create_schema;
mod m20261125_000002_fanout;
mod m20261125_000003_banners_records;
mod m20261125_000004_delivery;
mod m20261125_000005_inbox_seen;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261125_000001_create_schema::Migration),
            Box::new(m20261125_000002_fanout::Migration),
            Box::new(m20261125_000003_banners_records::Migration),
            Box::new(m20261125_000004_delivery::Migration),
            Box::new(m20261125_000005_inbox_seen::Migration),
        ]
    }
}
