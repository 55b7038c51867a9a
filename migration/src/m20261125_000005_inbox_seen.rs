//! The inbox index gains `seen_at`, so the counts (total, unread, unseen) of a user's inbox are
//! answered from the index alone: without it, the unseen count read every one of the user's
//! rows, which at a thousand notifications a user made `counts` hundreds of times slower than
//! a page read. A fan-out inserts `seen_at` as NULL, which costs the index almost nothing.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Notifications {
    Table,
    UserId,
    Status,
    Id,
    Read,
    SeenAt,
}

/// The index before this step, and the one that replaces it.
const INBOX: &str = "ix_notifications_inbox";
const INBOX_SEEN: &str = "ix_notifications_inbox_seen";

/// The inbox index, with `seen_at` or (as before this step) without.
fn inbox_index(with_seen: bool) -> IndexCreateStatement {
    let mut index = Index::create();
    index
        .name(if with_seen { INBOX_SEEN } else { INBOX })
        .table(Notifications::Table)
        .col(Notifications::UserId)
        .col(Notifications::Status)
        .col(Notifications::Id)
        .col(Notifications::Read);
    if with_seen {
        index.col(Notifications::SeenAt);
    }
    index.to_owned()
}

/// Creates one inbox index, then drops the other (plain SQL that both engines read alike).
async fn switch_inbox_index(manager: &SchemaManager<'_>, with_seen: bool) -> Result<(), DbErr> {
    manager.create_index(inbox_index(with_seen)).await?;
    let old = if with_seen { INBOX } else { INBOX_SEEN };
    manager
        .get_connection()
        .execute_unprepared(&format!("DROP INDEX IF EXISTS {old}"))
        .await?;
    Ok(())
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        switch_inbox_index(manager, true).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        switch_inbox_index(manager, false).await
    }
}
