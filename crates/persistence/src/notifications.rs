use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, Func};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    TransactionTrait,
};
use tidings_domain::{
    ChannelSetting, Error, ExternalId, NotificationId, NotificationStatus, TypeChannels,
};

use crate::db::{Db, classify, get};
use crate::entities::{notification_types, notifications, users};

/// A stored notification.
#[derive(Clone, Debug, PartialEq)]
pub struct NotificationRecord {
    pub id: NotificationId,
    pub user_id: ExternalId,
    pub organization_id: ExternalId,
    pub kind: String,
    pub title: String,
    pub message: String,
    pub data: Option<serde_json::Value>,
    pub read: bool,
    pub read_at: Option<DateTime<Utc>>,
    pub seen_at: Option<DateTime<Utc>>,
    pub status: NotificationStatus,
    pub sender_id: Option<String>,
    pub collection: Option<String>,
    pub item: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl From<notifications::Model> for NotificationRecord {
    fn from(m: notifications::Model) -> Self {
        Self {
            id: NotificationId(m.id),
            user_id: ExternalId::from_trusted(m.user_id),
            organization_id: ExternalId::from_trusted(m.organization_id),
            kind: m.r#type,
            title: m.title,
            message: m.message,
            data: m.data.and_then(|d| serde_json::from_str(&d).ok()),
            read: m.read,
            read_at: m.read_at,
            seen_at: m.seen_at,
            status: if m.status == "archived" {
                NotificationStatus::Archived
            } else {
                NotificationStatus::Inbox
            },
            sender_id: m.sender_id,
            collection: m.collection,
            item: m.item,
            created_at: m.created_at,
        }
    }
}

/// A notification to store; its recipient's organization is looked up on insert.
#[derive(Clone, Debug)]
pub struct NewNotification {
    pub user_id: ExternalId,
    pub kind: String,
    pub title: String,
    pub message: String,
    pub data: Option<serde_json::Value>,
    pub sender_id: Option<String>,
    pub collection: Option<String>,
    pub item: Option<String>,
}

/// One page of an inbox, newest first.
#[derive(Clone, Debug)]
pub struct InboxPage {
    pub items: Vec<NotificationRecord>,
    pub has_more: bool,
}

/// The numbers behind a bell badge, over the inbox (not the archive).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Counts {
    pub unread: u64,
    pub unseen: u64,
    pub total: u64,
}

/// What became of a change to a notification that must belong to the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OwnedUpdate {
    Done,
    NotFound,
    NotOwner,
}

/// A notification type with its templates and channel rules.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TypeRecord {
    pub channels: TypeChannels,
    pub description: String,
    pub title_template: String,
    pub message_template: String,
}

impl From<notification_types::Model> for TypeRecord {
    fn from(m: notification_types::Model) -> Self {
        let setting = |supported, default| ChannelSetting { supported, default };
        Self {
            channels: TypeChannels {
                key: m.key,
                email: setting(m.email_supported, m.email_default),
                in_app: setting(m.in_app_supported, m.in_app_default),
                push: setting(m.push_supported, m.push_default),
                required: m.required,
            },
            description: m.description,
            title_template: m.title_template,
            message_template: m.message_template,
        }
    }
}

impl Db {
    /// Every notification type, in the order they were added.
    pub async fn notification_types(&self) -> Result<Vec<TypeRecord>, Error> {
        notification_types::Entity::find()
            .order_by_asc(notification_types::Column::Position)
            .all(&self.conn)
            .await
            .map(|v| v.into_iter().map(Into::into).collect())
            .map_err(classify)
    }

    pub async fn notification_type(&self, key: &str) -> Result<Option<TypeRecord>, Error> {
        notification_types::Entity::find_by_id(key)
            .one(&self.conn)
            .await
            .map(|m| m.map(Into::into))
            .map_err(classify)
    }

    /// The users among `ids` that exist, with their organizations.
    pub async fn users_by_ids(&self, ids: &[ExternalId]) -> Result<Vec<crate::UserRecord>, Error> {
        let mut found = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(500) {
            let models = users::Entity::find()
                .filter(users::Column::Id.is_in(chunk.iter().map(|id| id.as_str())))
                .all(&self.conn)
                .await
                .map_err(classify)?;
            found.extend(models.into_iter().map(crate::UserRecord::from));
        }
        Ok(found)
    }

    /// Stores notifications for existing recipients, all or none, in the order given.
    /// `organizations` gives each recipient's organization, keyed by user id.
    pub async fn insert_notifications(
        &self,
        new: Vec<(NewNotification, ExternalId)>,
    ) -> Result<Vec<NotificationRecord>, Error> {
        let now = Utc::now();
        let models: Vec<notifications::Model> = new
            .into_iter()
            .map(|(n, organization_id)| notifications::Model {
                id: NotificationId::generate().0,
                user_id: n.user_id.into_string(),
                organization_id: organization_id.into_string(),
                r#type: n.kind,
                title: n.title,
                message: n.message,
                data: n.data.as_ref().map(|d| d.to_string()),
                read: false,
                read_at: None,
                seen_at: None,
                status: NotificationStatus::Inbox.as_str().to_owned(),
                sender_id: n.sender_id,
                collection: n.collection,
                item: n.item,
                created_at: now,
            })
            .collect();
        let txn = self.conn.begin().await.map_err(classify)?;
        for chunk in models.chunks(200) {
            let active: Vec<notifications::ActiveModel> = chunk
                .iter()
                .cloned()
                .map(|m| notifications::ActiveModel {
                    id: Set(m.id),
                    user_id: Set(m.user_id),
                    organization_id: Set(m.organization_id),
                    r#type: Set(m.r#type),
                    title: Set(m.title),
                    message: Set(m.message),
                    data: Set(m.data),
                    read: Set(m.read),
                    read_at: Set(m.read_at),
                    seen_at: Set(m.seen_at),
                    status: Set(m.status),
                    sender_id: Set(m.sender_id),
                    collection: Set(m.collection),
                    item: Set(m.item),
                    created_at: Set(m.created_at),
                })
                .collect();
            notifications::Entity::insert_many(active)
                .exec_without_returning(&txn)
                .await
                .map_err(classify)?;
        }
        txn.commit().await.map_err(classify)?;
        Ok(models.into_iter().map(Into::into).collect())
    }

    /// One page of a user's notifications, newest first, strictly older than `before`.
    pub async fn inbox_page(
        &self,
        user_id: &ExternalId,
        status: NotificationStatus,
        unread_only: bool,
        before: Option<NotificationId>,
        limit: u64,
    ) -> Result<InboxPage, Error> {
        let mut query = notifications::Entity::find()
            .filter(notifications::Column::UserId.eq(user_id.as_str()))
            .filter(notifications::Column::Status.eq(status.as_str()));
        if unread_only {
            query = query.filter(notifications::Column::Read.eq(false));
        }
        if let Some(before) = before {
            query = query.filter(notifications::Column::Id.lt(before.0));
        }
        let mut items: Vec<NotificationRecord> = query
            .order_by_desc(notifications::Column::Id)
            .limit(limit + 1)
            .all(&self.conn)
            .await
            .map_err(classify)?
            .into_iter()
            .map(Into::into)
            .collect();
        let has_more = items.len() as u64 > limit;
        items.truncate(limit as usize);
        Ok(InboxPage { items, has_more })
    }

    pub async fn unread_count(&self, user_id: &ExternalId) -> Result<u64, Error> {
        let row = self
            .query_one(
                "SELECT COUNT(*) AS n FROM notifications \
                 WHERE user_id = ? AND status = 'inbox' AND \"read\" = ?",
                [user_id.as_str().into(), false.into()],
            )
            .await?;
        match row {
            Some(row) => Ok(get::<i64>(&row, "n")? as u64),
            None => Ok(0),
        }
    }

    pub async fn counts(&self, user_id: &ExternalId) -> Result<Counts, Error> {
        let row = self
            .query_one(
                "SELECT COUNT(*) AS total, \
                 COUNT(*) FILTER (WHERE \"read\" = ?) AS unread, \
                 COUNT(*) FILTER (WHERE seen_at IS NULL) AS unseen \
                 FROM notifications WHERE user_id = ? AND status = 'inbox'",
                [false.into(), user_id.as_str().into()],
            )
            .await?;
        let Some(row) = row else {
            return Ok(Counts {
                unread: 0,
                unseen: 0,
                total: 0,
            });
        };
        Ok(Counts {
            unread: get::<i64>(&row, "unread")? as u64,
            unseen: get::<i64>(&row, "unseen")? as u64,
            total: get::<i64>(&row, "total")? as u64,
        })
    }

    pub async fn mark_read(
        &self,
        user_id: &ExternalId,
        id: NotificationId,
    ) -> Result<OwnedUpdate, Error> {
        let done = notifications::Entity::update_many()
            .col_expr(notifications::Column::Read, Expr::value(true))
            .col_expr(
                notifications::Column::ReadAt,
                Func::coalesce([
                    Expr::col(notifications::Column::ReadAt),
                    Expr::value(Utc::now()),
                ])
                .into(),
            )
            .filter(notifications::Column::Id.eq(id.0))
            .filter(notifications::Column::UserId.eq(user_id.as_str()))
            .exec(&self.conn)
            .await
            .map_err(classify)?;
        self.owned_outcome(user_id, id, done.rows_affected).await
    }

    pub async fn archive(
        &self,
        user_id: &ExternalId,
        id: NotificationId,
    ) -> Result<OwnedUpdate, Error> {
        let done = notifications::Entity::update_many()
            .col_expr(
                notifications::Column::Status,
                Expr::value(NotificationStatus::Archived.as_str()),
            )
            .filter(notifications::Column::Id.eq(id.0))
            .filter(notifications::Column::UserId.eq(user_id.as_str()))
            .exec(&self.conn)
            .await
            .map_err(classify)?;
        self.owned_outcome(user_id, id, done.rows_affected).await
    }

    pub async fn delete_notification(
        &self,
        user_id: &ExternalId,
        id: NotificationId,
    ) -> Result<OwnedUpdate, Error> {
        let done = notifications::Entity::delete_many()
            .filter(notifications::Column::Id.eq(id.0))
            .filter(notifications::Column::UserId.eq(user_id.as_str()))
            .exec(&self.conn)
            .await
            .map_err(classify)?;
        self.owned_outcome(user_id, id, done.rows_affected).await
    }

    /// After a change filtered by owner touched `rows`: done, or why not.
    async fn owned_outcome(
        &self,
        user_id: &ExternalId,
        id: NotificationId,
        rows: u64,
    ) -> Result<OwnedUpdate, Error> {
        if rows > 0 {
            return Ok(OwnedUpdate::Done);
        }
        let owner = self
            .query_one(
                "SELECT user_id FROM notifications WHERE id = ?",
                [id.0.into()],
            )
            .await?;
        match owner {
            None => Ok(OwnedUpdate::NotFound),
            Some(row) if get::<String>(&row, "user_id")? == user_id.as_str() => {
                Ok(OwnedUpdate::Done)
            }
            Some(_) => Ok(OwnedUpdate::NotOwner),
        }
    }

    /// Marks every unread inbox item read; returns how many changed.
    pub async fn mark_all_read(&self, user_id: &ExternalId) -> Result<u64, Error> {
        self.execute(
            "UPDATE notifications SET \"read\" = ?, read_at = ? \
             WHERE user_id = ? AND status = 'inbox' AND \"read\" = ?",
            [
                true.into(),
                Utc::now().into(),
                user_id.as_str().into(),
                false.into(),
            ],
        )
        .await
    }

    /// Marks every unseen inbox item seen; returns how many changed.
    pub async fn mark_all_seen(&self, user_id: &ExternalId) -> Result<u64, Error> {
        self.execute(
            "UPDATE notifications SET seen_at = ? \
             WHERE user_id = ? AND status = 'inbox' AND seen_at IS NULL",
            [Utc::now().into(), user_id.as_str().into()],
        )
        .await
    }

    /// A notification by id, whoever it belongs to.
    pub async fn notification(
        &self,
        id: NotificationId,
    ) -> Result<Option<NotificationRecord>, Error> {
        notifications::Entity::find_by_id(id.0)
            .one(&self.conn)
            .await
            .map(|m| m.map(Into::into))
            .map_err(classify)
    }
}
