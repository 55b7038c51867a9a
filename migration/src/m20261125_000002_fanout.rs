//! Groups and memberships, messages and the delivery outbox, push subscriptions and idempotency
//! keys: what fan-out to many users needs.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Organizations {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum UserGroups {
    Table,
    Id,
    OrganizationId,
    Name,
    CreatedAt,
}

#[derive(DeriveIden)]
enum GroupMembers {
    Table,
    GroupId,
    UserId,
    CreatedAt,
}

/// What one send said (its type, title, message and data), once for all its recipients.
#[derive(DeriveIden)]
enum Messages {
    Table,
    Id,
    Type,
    Title,
    Message,
    Data,
    SenderId,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Deliveries {
    Table,
    Id,
    MessageId,
    NotificationId,
    UserId,
    Channel,
    Target,
    State,
    Attempts,
    NextAttemptAt,
    LastError,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum PushSubscriptions {
    Table,
    Id,
    UserId,
    Endpoint,
    P256dh,
    Auth,
    CreatedAt,
}

#[derive(DeriveIden)]
enum IdempotencyKeys {
    Table,
    Scope,
    Key,
    RequestHash,
    Response,
    CreatedAt,
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
                    .table(UserGroups::Table)
                    .col(
                        ColumnDef::new(UserGroups::Id)
                            .uuid()
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(UserGroups::OrganizationId)
                            .string_len(128)
                            .not_null(),
                    )
                    .col(ColumnDef::new(UserGroups::Name).string_len(200).not_null())
                    .col(now(UserGroups::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(UserGroups::Table, UserGroups::OrganizationId)
                            .to(Organizations::Table, Organizations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_user_groups_name")
                    .table(UserGroups::Table)
                    .col(UserGroups::OrganizationId)
                    .col(UserGroups::Name)
                    .unique()
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(GroupMembers::Table)
                    .col(ColumnDef::new(GroupMembers::GroupId).uuid().not_null())
                    .col(
                        ColumnDef::new(GroupMembers::UserId)
                            .string_len(128)
                            .not_null(),
                    )
                    .col(now(GroupMembers::CreatedAt))
                    .primary_key(
                        Index::create()
                            .col(GroupMembers::GroupId)
                            .col(GroupMembers::UserId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(GroupMembers::Table, GroupMembers::GroupId)
                            .to(UserGroups::Table, UserGroups::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(GroupMembers::Table, GroupMembers::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_group_members_user")
                    .table(GroupMembers::Table)
                    .col(GroupMembers::UserId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Messages::Table)
                    .col(ColumnDef::new(Messages::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(Messages::Type).string_len(100).not_null())
                    .col(ColumnDef::new(Messages::Title).text().not_null())
                    .col(ColumnDef::new(Messages::Message).text().not_null())
                    .col(ColumnDef::new(Messages::Data).text().null())
                    .col(ColumnDef::new(Messages::SenderId).string_len(128).null())
                    .col(now(Messages::CreatedAt))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Deliveries::Table)
                    .col(
                        ColumnDef::new(Deliveries::Id)
                            .uuid()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Deliveries::MessageId).uuid().not_null())
                    .col(ColumnDef::new(Deliveries::NotificationId).uuid().null())
                    .col(
                        ColumnDef::new(Deliveries::UserId)
                            .string_len(128)
                            .not_null(),
                    )
                    .col(ColumnDef::new(Deliveries::Channel).string_len(8).not_null())
                    .col(ColumnDef::new(Deliveries::Target).text().not_null())
                    .col(
                        ColumnDef::new(Deliveries::State)
                            .string_len(16)
                            .not_null()
                            .default("pending"),
                    )
                    .col(
                        ColumnDef::new(Deliveries::Attempts)
                            .integer()
                            .not_null()
                            .default(0),
                    )
                    .col(now(Deliveries::NextAttemptAt))
                    .col(ColumnDef::new(Deliveries::LastError).text().null())
                    .col(now(Deliveries::CreatedAt))
                    .col(now(Deliveries::UpdatedAt))
                    // No foreign keys, as on notifications: a fan-out writes a row per recipient.
                    .to_owned(),
            )
            .await?;
        // Workers claim due rows by state and time.
        manager
            .create_index(
                Index::create()
                    .name("ix_deliveries_due")
                    .table(Deliveries::Table)
                    .col(Deliveries::State)
                    .col(Deliveries::NextAttemptAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_deliveries_notification")
                    .table(Deliveries::Table)
                    .col(Deliveries::NotificationId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(PushSubscriptions::Table)
                    .col(
                        ColumnDef::new(PushSubscriptions::Id)
                            .uuid()
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(PushSubscriptions::UserId)
                            .string_len(128)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(PushSubscriptions::Endpoint)
                            .string_len(2048)
                            .not_null()
                            .unique_key(),
                    )
                    .col(
                        ColumnDef::new(PushSubscriptions::P256dh)
                            .string_len(256)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(PushSubscriptions::Auth)
                            .string_len(128)
                            .not_null(),
                    )
                    .col(now(PushSubscriptions::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(PushSubscriptions::Table, PushSubscriptions::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_push_subscriptions_user")
                    .table(PushSubscriptions::Table)
                    .col(PushSubscriptions::UserId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(IdempotencyKeys::Table)
                    .col(
                        ColumnDef::new(IdempotencyKeys::Scope)
                            .string_len(200)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(IdempotencyKeys::Key)
                            .string_len(200)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(IdempotencyKeys::RequestHash)
                            .string_len(64)
                            .not_null(),
                    )
                    .col(ColumnDef::new(IdempotencyKeys::Response).text().not_null())
                    .col(now(IdempotencyKeys::CreatedAt))
                    .primary_key(
                        Index::create()
                            .col(IdempotencyKeys::Scope)
                            .col(IdempotencyKeys::Key),
                    )
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            IdempotencyKeys::Table.into_iden(),
            PushSubscriptions::Table.into_iden(),
            Deliveries::Table.into_iden(),
            Messages::Table.into_iden(),
            GroupMembers::Table.into_iden(),
            UserGroups::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
