//! Accounts, sessions, service keys, notification types with the inbox API's nine types,
//! notifications and preference overrides.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Organizations {
    Table,
    Id,
    Name,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    OrganizationId,
    Email,
    Name,
    PasswordHash,
    Role,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Sessions {
    Table,
    Id,
    TokenHash,
    UserId,
    CreatedAt,
    ExpiresAt,
    RenewedAt,
}

#[derive(DeriveIden)]
enum ServiceKeys {
    Table,
    Id,
    Name,
    KeyHash,
    CreatedAt,
    RevokedAt,
}

#[derive(DeriveIden)]
enum NotificationTypes {
    Table,
    Key,
    Description,
    TitleTemplate,
    MessageTemplate,
    EmailSupported,
    EmailDefault,
    InAppSupported,
    InAppDefault,
    PushSupported,
    PushDefault,
    Required,
    Position,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Notifications {
    Table,
    Id,
    UserId,
    OrganizationId,
    Type,
    Title,
    Message,
    Data,
    Read,
    ReadAt,
    SeenAt,
    Status,
    SenderId,
    Collection,
    Item,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Preferences {
    Table,
    UserId,
    Channel,
    Type,
    Enabled,
    UpdatedAt,
}

fn created_at<T: IntoIden>(name: T) -> ColumnDef {
    ColumnDef::new(name)
        .timestamp_with_time_zone()
        .not_null()
        .default(Expr::current_timestamp())
        .to_owned()
}

fn flag<T: IntoIden>(name: T, default: bool) -> ColumnDef {
    ColumnDef::new(name)
        .boolean()
        .not_null()
        .default(default)
        .to_owned()
}

/// The inbox API's nine types, in its order, with its default preference matrix:
/// (key, description, title, message, [email, inApp, push] as (supported, default)).
type Seed = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    [(bool, bool); 3],
);

const ON: (bool, bool) = (true, true);
const OFF: (bool, bool) = (true, false);
const NO: (bool, bool) = (false, false);

const SEED_TYPES: [Seed; 9] = [
    (
        "ticketCreated",
        "New ticket assigned to you",
        "New Ticket",
        "Ticket #{{ ticketNumber }} was created: {{ ticketTitle }}",
        [ON, ON, NO],
    ),
    (
        "ticketAssigned",
        "Ticket assigned to you",
        "Ticket Assigned",
        "You've been assigned ticket #{{ ticketNumber }}: {{ ticketTitle }}",
        [ON, ON, ON],
    ),
    (
        "ticketUpdated",
        "Ticket you're watching was updated",
        "Ticket Updated",
        "Ticket #{{ ticketNumber }} was updated",
        [OFF, ON, NO],
    ),
    (
        "ticketResolved",
        "Ticket you created was resolved",
        "Ticket Resolved",
        "Ticket #{{ ticketNumber }} was resolved",
        [ON, ON, NO],
    ),
    (
        "newComment",
        "New comment on a ticket",
        "New Comment",
        "{{ author }} commented on ticket #{{ ticketNumber }}",
        [ON, ON, NO],
    ),
    (
        "mentions",
        "You were mentioned in a comment",
        "You were mentioned",
        "@{{ author }} mentioned you in ticket #{{ ticketNumber }}",
        [ON, ON, ON],
    ),
    (
        "slaWarning",
        "SLA approaching breach",
        "SLA Warning",
        "Ticket #{{ ticketNumber }} is about to breach its SLA",
        [ON, ON, OFF],
    ),
    (
        "slaBreach",
        "SLA has been breached",
        "SLA Breached",
        "Ticket #{{ ticketNumber }} has breached its SLA",
        [ON, ON, ON],
    ),
    (
        "weeklyReport",
        "Weekly performance report",
        "Weekly Report",
        "Your weekly performance report is ready",
        [ON, OFF, NO],
    ),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Organizations::Table)
                    .col(
                        ColumnDef::new(Organizations::Id)
                            .string_len(128)
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(Organizations::Name)
                            .string_len(200)
                            .not_null(),
                    )
                    .col(created_at(Organizations::CreatedAt))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Users::Table)
                    .col(
                        ColumnDef::new(Users::Id)
                            .string_len(128)
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(Users::OrganizationId)
                            .string_len(128)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Users::Email)
                            .string_len(320)
                            .null()
                            .unique_key(),
                    )
                    .col(
                        ColumnDef::new(Users::Name)
                            .string_len(200)
                            .not_null()
                            .default(""),
                    )
                    .col(ColumnDef::new(Users::PasswordHash).text().null())
                    .col(
                        ColumnDef::new(Users::Role)
                            .string_len(16)
                            .not_null()
                            .default("user"),
                    )
                    .col(created_at(Users::CreatedAt))
                    .col(created_at(Users::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Users::Table, Users::OrganizationId)
                            .to(Organizations::Table, Organizations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_users_organization")
                    .table(Users::Table)
                    .col(Users::OrganizationId)
                    .col(Users::Id)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Sessions::Table)
                    .col(ColumnDef::new(Sessions::Id).uuid().not_null().primary_key())
                    .col(
                        ColumnDef::new(Sessions::TokenHash)
                            .string_len(64)
                            .not_null()
                            .unique_key(),
                    )
                    .col(ColumnDef::new(Sessions::UserId).string_len(128).not_null())
                    .col(created_at(Sessions::CreatedAt))
                    .col(
                        ColumnDef::new(Sessions::ExpiresAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(created_at(Sessions::RenewedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Sessions::Table, Sessions::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_sessions_user")
                    .table(Sessions::Table)
                    .col(Sessions::UserId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(ServiceKeys::Table)
                    .col(
                        ColumnDef::new(ServiceKeys::Id)
                            .uuid()
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(ServiceKeys::Name)
                            .string_len(100)
                            .not_null()
                            .unique_key(),
                    )
                    .col(
                        ColumnDef::new(ServiceKeys::KeyHash)
                            .string_len(64)
                            .not_null()
                            .unique_key(),
                    )
                    .col(created_at(ServiceKeys::CreatedAt))
                    .col(
                        ColumnDef::new(ServiceKeys::RevokedAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(NotificationTypes::Table)
                    .col(
                        ColumnDef::new(NotificationTypes::Key)
                            .string_len(100)
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(NotificationTypes::Description)
                            .text()
                            .not_null()
                            .default(""),
                    )
                    .col(
                        ColumnDef::new(NotificationTypes::TitleTemplate)
                            .text()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(NotificationTypes::MessageTemplate)
                            .text()
                            .not_null(),
                    )
                    .col(flag(NotificationTypes::EmailSupported, true))
                    .col(flag(NotificationTypes::EmailDefault, true))
                    .col(flag(NotificationTypes::InAppSupported, true))
                    .col(flag(NotificationTypes::InAppDefault, true))
                    .col(flag(NotificationTypes::PushSupported, false))
                    .col(flag(NotificationTypes::PushDefault, false))
                    .col(flag(NotificationTypes::Required, false))
                    .col(
                        ColumnDef::new(NotificationTypes::Position)
                            .integer()
                            .not_null(),
                    )
                    .col(created_at(NotificationTypes::CreatedAt))
                    .col(created_at(NotificationTypes::UpdatedAt))
                    .to_owned(),
            )
            .await?;

        let mut insert = Query::insert()
            .into_table(NotificationTypes::Table)
            .columns([
                NotificationTypes::Key,
                NotificationTypes::Description,
                NotificationTypes::TitleTemplate,
                NotificationTypes::MessageTemplate,
                NotificationTypes::EmailSupported,
                NotificationTypes::EmailDefault,
                NotificationTypes::InAppSupported,
                NotificationTypes::InAppDefault,
                NotificationTypes::PushSupported,
                NotificationTypes::PushDefault,
                NotificationTypes::Required,
                NotificationTypes::Position,
            ])
            .to_owned();
        for (position, (key, description, title, message, [email, in_app, push])) in
            SEED_TYPES.into_iter().enumerate()
        {
            insert.values_panic([
                key.into(),
                description.into(),
                title.into(),
                message.into(),
                email.0.into(),
                email.1.into(),
                in_app.0.into(),
                in_app.1.into(),
                push.0.into(),
                push.1.into(),
                false.into(),
                (position as i32).into(),
            ]);
        }
        // The type of notifications created without one: required and inbox-only, so it is
        // never among a user's preferences.
        insert.values_panic([
            "general".into(),
            "A notification created without a type".into(),
            "{{ title }}".into(),
            "{{ message }}".into(),
            false.into(),
            false.into(),
            true.into(),
            true.into(),
            false.into(),
            false.into(),
            true.into(),
            (SEED_TYPES.len() as i32).into(),
        ]);
        manager.exec_stmt(insert).await?;

        manager
            .create_table(
                Table::create()
                    .table(Notifications::Table)
                    .col(
                        ColumnDef::new(Notifications::Id)
                            .uuid()
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(Notifications::UserId)
                            .string_len(128)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Notifications::OrganizationId)
                            .string_len(128)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Notifications::Type)
                            .string_len(100)
                            .not_null(),
                    )
                    .col(ColumnDef::new(Notifications::Title).text().not_null())
                    .col(ColumnDef::new(Notifications::Message).text().not_null())
                    // JSON kept as text: PostgreSQL's json casts from the jsonb that drivers send reorder keys,
                    // and a notification's data comes back exactly as it was given.
                    .col(ColumnDef::new(Notifications::Data).text().null())
                    .col(flag(Notifications::Read, false))
                    .col(
                        ColumnDef::new(Notifications::ReadAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .col(
                        ColumnDef::new(Notifications::SeenAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .col(
                        ColumnDef::new(Notifications::Status)
                            .string_len(16)
                            .not_null()
                            .default("inbox"),
                    )
                    .col(
                        ColumnDef::new(Notifications::SenderId)
                            .string_len(128)
                            .null(),
                    )
                    .col(
                        ColumnDef::new(Notifications::Collection)
                            .string_len(100)
                            .null(),
                    )
                    .col(ColumnDef::new(Notifications::Item).string_len(256).null())
                    .col(created_at(Notifications::CreatedAt))
                    // No foreign keys on this table: a fan-out writes a million rows at once and
                    // PostgreSQL checks a foreign key with a trigger per row. Rows are written
                    // only for existing users and types, and deleting a user deletes its rows.
                    .to_owned(),
            )
            .await?;
        // Every inbox read (a page, the unread page, the counts) walks one user's entries of
        // this index newest first; `read` rides along so unread filters need no table access.
        manager
            .create_index(
                Index::create()
                    .name("ix_notifications_inbox")
                    .table(Notifications::Table)
                    .col(Notifications::UserId)
                    .col(Notifications::Status)
                    .col(Notifications::Id)
                    .col(Notifications::Read)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Preferences::Table)
                    .col(
                        ColumnDef::new(Preferences::UserId)
                            .string_len(128)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Preferences::Channel)
                            .string_len(8)
                            .not_null(),
                    )
                    .col(ColumnDef::new(Preferences::Type).string_len(100).not_null())
                    .col(ColumnDef::new(Preferences::Enabled).boolean().not_null())
                    .col(created_at(Preferences::UpdatedAt))
                    .primary_key(
                        Index::create()
                            .col(Preferences::UserId)
                            .col(Preferences::Channel)
                            .col(Preferences::Type),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(Preferences::Table, Preferences::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(Preferences::Table, Preferences::Type)
                            .to(NotificationTypes::Table, NotificationTypes::Key)
                            .on_delete(ForeignKeyAction::Cascade)
                            .on_update(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            Preferences::Table.into_iden(),
            Notifications::Table.into_iden(),
            NotificationTypes::Table.into_iden(),
            ServiceKeys::Table.into_iden(),
            Sessions::Table.into_iden(),
            Users::Table.into_iden(),
            Organizations::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
