//! Outage and announcement banners with their per-user dismissals, and the index that keeps an
//! admin's record queries inside its own organization.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Notifications {
    Table,
    OrganizationId,
    Id,
}

#[derive(DeriveIden)]
enum Banners {
    Table,
    Id,
    Title,
    Message,
    Link,
    LinkText,
    Type,
    IsDismissible,
    IsActive,
    StartDate,
    EndDate,
    NotificationTo,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum BannerDismissals {
    Table,
    BannerId,
    UserId,
    DismissedAt,
}

fn now<T: IntoIden>(name: T) -> ColumnDef {
    ColumnDef::new(name)
        .timestamp_with_time_zone()
        .not_null()
        .default(Expr::current_timestamp())
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Banners::Table)
                    .col(ColumnDef::new(Banners::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(Banners::Title).string_len(200).not_null())
                    .col(ColumnDef::new(Banners::Message).text().not_null())
                    .col(ColumnDef::new(Banners::Link).string_len(2048).null())
                    .col(ColumnDef::new(Banners::LinkText).string_len(100).null())
                    .col(ColumnDef::new(Banners::Type).string_len(16).not_null())
                    .col(ColumnDef::new(Banners::IsDismissible).boolean().not_null())
                    .col(ColumnDef::new(Banners::IsActive).boolean().not_null())
                    .col(
                        ColumnDef::new(Banners::StartDate)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Banners::EndDate)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    // The targeted organizations as a JSON array of ids, `[]` for all. A list
                    // rather than a table with a foreign key: it is read and written whole, only
                    // the one active banner is ever matched against it, and deleting an
                    // organization must not widen a banner aimed at it alone to everyone.
                    .col(ColumnDef::new(Banners::NotificationTo).text().not_null())
                    .col(now(Banners::CreatedAt))
                    .col(now(Banners::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        // At most one active banner, whatever the application does: activations are serialized
        // by the application (see persistence), and this index makes a lost race a conflict
        // rather than a second active banner.
        manager
            .create_index(
                Index::create()
                    .name("ux_banners_one_active")
                    .table(Banners::Table)
                    .col(Banners::IsActive)
                    .unique()
                    .and_where(Expr::col(Banners::IsActive).eq(true))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(BannerDismissals::Table)
                    .col(ColumnDef::new(BannerDismissals::BannerId).uuid().not_null())
                    .col(
                        ColumnDef::new(BannerDismissals::UserId)
                            .string_len(128)
                            .not_null(),
                    )
                    .col(now(BannerDismissals::DismissedAt))
                    .primary_key(
                        Index::create()
                            .col(BannerDismissals::BannerId)
                            .col(BannerDismissals::UserId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(BannerDismissals::Table, BannerDismissals::BannerId)
                            .to(Banners::Table, Banners::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(BannerDismissals::Table, BannerDismissals::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // Deleting a user cascades here; without this index each such delete scans the table.
        manager
            .create_index(
                Index::create()
                    .name("ix_banner_dismissals_user")
                    .table(BannerDismissals::Table)
                    .col(BannerDismissals::UserId)
                    .to_owned(),
            )
            .await?;

        // Admins query records inside their own organization, newest first by id (UUID v7).
        // Without this index every such query reads every organization's rows; with it, a page
        // is a range scan that stops after `limit` rows. Recipient filters already have the
        // inbox index, and the service's instance-wide queries the primary key. It costs fan-out
        // one more index entry per row: on PostgreSQL, inserting a million rows writes 483 MB of
        // WAL instead of 395 MB, and the index takes 39 MB per million rows. The only index
        // added to this table.
        manager
            .create_index(
                Index::create()
                    .name("ix_notifications_organization")
                    .table(Notifications::Table)
                    .col(Notifications::OrganizationId)
                    .col(Notifications::Id)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("ix_notifications_organization")
                    .table(Notifications::Table)
                    .to_owned(),
            )
            .await?;
        for table in [
            BannerDismissals::Table.into_iden(),
            Banners::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
