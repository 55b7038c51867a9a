use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, Func};
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use tidings_domain::{
    ChannelSetting, Error, ExternalId, NotificationId, NotificationStatus, TypeChannels,
};

use crate::db::{Backend, Db, Flag, classify, get, parse_time};
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

/// A whole notification row as one JSON array, in [`RecordRow`]'s order.
fn record_json(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => {
            "json_array(lower(hex(id)), user_id, organization_id, type, title, message, data, \
             \"read\", read_at, seen_at, status, sender_id, collection, item, created_at)"
        }
        Backend::Postgres => {
            "json_build_array(replace(CAST(id AS text), '-', ''), user_id, organization_id, type, \
             title, message, data, \"read\", read_at, seen_at, status, sender_id, collection, item, \
             created_at)"
        }
    }
}

/// A notification row read as JSON (see [`record_json`]): a JSON array, whose elements serde
/// takes in the fields' order.
#[derive(serde::Deserialize)]
struct RecordRow {
    id: String,
    user_id: String,
    organization_id: String,
    kind: String,
    title: String,
    message: String,
    data: Option<String>,
    read: Flag,
    read_at: Option<String>,
    seen_at: Option<String>,
    status: String,
    sender_id: Option<String>,
    collection: Option<String>,
    item: Option<String>,
    created_at: String,
}

/// A row read as JSON becomes the entity's model, which [`NotificationRecord`] is made from.
fn model_of(row: RecordRow) -> Result<notifications::Model, Error> {
    Ok(notifications::Model {
        id: uuid::Uuid::parse_str(&row.id).map_err(Error::internal)?,
        user_id: row.user_id,
        organization_id: row.organization_id,
        r#type: row.kind,
        title: row.title,
        message: row.message,
        data: row.data,
        read: row.read.0,
        read_at: row.read_at.as_deref().map(parse_time).transpose()?,
        seen_at: row.seen_at.as_deref().map(parse_time).transpose()?,
        status: row.status,
        sender_id: row.sender_id,
        collection: row.collection,
        item: row.item,
        created_at: parse_time(&row.created_at)?,
    })
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
            data: m.data.and_then(|text| match serde_json::from_str(&text) {
                Ok(data) => Some(data),
                // Tidings writes only JSON there; a row edited by hand is shown without it.
                Err(e) => {
                    tracing::warn!(id = %m.id, error = %e, "a notification's data is not JSON; left out");
                    None
                }
            }),
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
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
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
        self.insert_records(new, &[]).await
    }

    /// As [`Db::insert_notifications`], queueing in the same transaction the email and push
    /// deliveries each recipient's preferences allow for the types in `kinds` (a record whose
    /// type is not listed queues nothing).
    pub async fn insert_records(
        &self,
        new: Vec<(NewNotification, ExternalId)>,
        kinds: &[TypeChannels],
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
        let txn = self.begin_write().await?;
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
        for m in &models {
            if let Some(kind) = kinds.iter().find(|k| k.key == m.r#type) {
                self.queue_record_deliveries(&txn, m, kind).await?;
            }
        }
        txn.commit().await.map_err(classify)?;
        Ok(models.into_iter().map(Into::into).collect())
    }

    /// Writes the outbox rows of one record: its content once (as a message sharing the
    /// record's id), an email row when the recipient has an address and wants this type by
    /// email, a push row per subscription when they want it by push.
    async fn queue_record_deliveries(
        &self,
        txn: &sea_orm::DatabaseTransaction,
        m: &notifications::Model,
        kind: &TypeChannels,
    ) -> Result<(), Error> {
        use sea_orm::ConnectionTrait;
        use tidings_domain::Channel;
        if !kind.email.supported && !kind.push.supported {
            return Ok(());
        }
        let exec = |sql: String, values: Vec<sea_orm::Value>| async move {
            txn.execute_raw(self.stmt(&sql, values))
                .await
                .map_err(classify)
        };
        exec(
            "INSERT INTO messages (id, \"type\", title, message, data, sender_id, created_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?)"
                .to_owned(),
            vec![
                m.id.into(),
                m.r#type.as_str().into(),
                m.title.as_str().into(),
                m.message.as_str().into(),
                m.data.clone().into(),
                m.sender_id.clone().into(),
                m.created_at.into(),
            ],
        )
        .await?;
        for channel in [Channel::Email, Channel::Push] {
            if !kind.setting(channel).supported {
                continue;
            }
            let wanted = crate::fanout::channel_expr(kind, channel, "p");
            let (target, from) = match channel {
                Channel::Email => ("u.email", " WHERE u.email IS NOT NULL AND"),
                _ => (
                    "s.endpoint",
                    " JOIN push_subscriptions s ON s.user_id = u.id WHERE",
                ),
            };
            let id = crate::fanout::Dialect(self.backend()).uuid_per_row();
            exec(
                format!(
                    "INSERT INTO deliveries (id, message_id, notification_id, user_id, channel, \
                     target, state, attempts, next_attempt_at, created_at, updated_at) \
                     SELECT {id}, ?, ?, u.id, ?, {target}, 'pending', 0, ?, ?, ? FROM users u \
                     LEFT JOIN preferences p ON p.user_id = u.id AND p.channel = ? AND p.\"type\" = ?\
                     {from} u.id = ? AND {wanted}"
                ),
                vec![
                    crate::fanout::id_prefix().into(),
                    m.id.into(),
                    m.id.into(),
                    channel.as_str().into(),
                    m.created_at.into(),
                    m.created_at.into(),
                    m.created_at.into(),
                    channel.as_str().into(),
                    m.r#type.as_str().into(),
                    m.user_id.as_str().into(),
                ],
            )
            .await?;
        }
        Ok(())
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
        // The limit is written into the SQL, not bound: SQLite's planner reads a bound LIMIT,
        // which makes the statement re-prepare on every execution (~7% of the CPU of a list).
        let mut sql = format!(
            "SELECT {} AS row FROM notifications WHERE user_id = ? AND status = ?",
            record_json(self.backend())
        );
        let mut values: Vec<sea_orm::Value> = vec![user_id.as_str().into(), status.as_str().into()];
        if unread_only {
            sql.push_str(" AND \"read\" = ?");
            values.push(false.into());
        }
        if let Some(before) = before {
            sql.push_str(" AND id < ?");
            values.push(before.0.into());
        }
        sql.push_str(&format!(" ORDER BY id DESC LIMIT {}", limit + 1));
        // The rows come back gathered in one JSON value (see `Db::json_rows`).
        let mut items = self
            .json_rows::<RecordRow>(&sql, values)
            .await?
            .into_iter()
            .map(|row| model_of(row).map(NotificationRecord::from))
            .collect::<Result<Vec<_>, Error>>()?;
        items.sort_by_key(|n| std::cmp::Reverse(n.id));
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

// Records: notifications as admins (inside their organization) and services (everywhere) manage
// them, Directus-style.

/// How a text field of a record must match.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TextMatch {
    Eq(String),
    In(Vec<String>),
    /// `true`: the field is empty (NULL); `false`: it is set.
    Null(bool),
}

/// Which records a query reads; every field given must hold.
#[derive(Clone, Debug, Default)]
pub struct RecordFilter {
    pub recipient: Option<TextMatch>,
    pub sender_id: Option<TextMatch>,
    pub status: Option<TextMatch>,
    pub kind: Option<TextMatch>,
    pub collection: Option<TextMatch>,
    pub item: Option<TextMatch>,
    pub read: Option<bool>,
    pub created_gt: Option<DateTime<Utc>>,
    pub created_gte: Option<DateTime<Utc>>,
    pub created_lt: Option<DateTime<Utc>>,
    pub created_lte: Option<DateTime<Utc>>,
}

/// A page of records to read: in `organization` when given, newest or oldest first.
#[derive(Clone, Debug)]
pub struct RecordQuery {
    pub organization: Option<ExternalId>,
    pub filter: RecordFilter,
    pub newest_first: bool,
    pub limit: u64,
    pub offset: u64,
    /// Count every record in scope (the organization, or all).
    pub total_count: bool,
    /// Count the records the filter matches.
    pub filter_count: bool,
}

/// A page of records with the counts asked for.
#[derive(Clone, Debug)]
pub struct RecordsPage {
    pub items: Vec<NotificationRecord>,
    pub total_count: Option<u64>,
    pub filter_count: Option<u64>,
}

/// The fields a records update sets; `None` leaves a field as it is, `Some(None)` clears it.
#[derive(Clone, Debug, Default)]
pub struct RecordChanges {
    pub title: Option<String>,
    pub message: Option<String>,
    pub status: Option<NotificationStatus>,
    /// `true` marks read (keeping the first read time), `false` unread (clearing it).
    pub read: Option<bool>,
    pub data: Option<Option<serde_json::Value>>,
    pub collection: Option<Option<String>>,
    pub item: Option<Option<String>>,
}

/// What became of a change to records named by key: all of them, or none because some keys
/// name no record (in the caller's organization).
#[derive(Clone, Debug, PartialEq)]
pub enum KeysOutcome<T> {
    Done(T),
    Unknown(Vec<NotificationId>),
}

/// The records a delete removed: how many, and whose they were (each user once).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeletedRecords {
    pub count: u64,
    pub users: Vec<ExternalId>,
}

/// Keys per `IN (…)` list: far under SQLite's 32,766 and PostgreSQL's 65,535 parameters.
const KEYS_PER_STATEMENT: usize = 1000;

fn text_condition(
    cond: sea_orm::Condition,
    column: notifications::Column,
    m: &Option<TextMatch>,
) -> sea_orm::Condition {
    match m {
        None => cond,
        Some(TextMatch::Eq(v)) => cond.add(column.eq(v.as_str())),
        Some(TextMatch::In(v)) => cond.add(column.is_in(v.iter().map(String::as_str))),
        Some(TextMatch::Null(true)) => cond.add(column.is_null()),
        Some(TextMatch::Null(false)) => cond.add(column.is_not_null()),
    }
}

fn scope_condition(organization: Option<&ExternalId>) -> sea_orm::Condition {
    let cond = sea_orm::Condition::all();
    match organization {
        Some(org) => cond.add(notifications::Column::OrganizationId.eq(org.as_str())),
        None => cond,
    }
}

fn filter_condition(cond: sea_orm::Condition, f: &RecordFilter) -> sea_orm::Condition {
    use notifications::Column as C;
    let mut cond = text_condition(cond, C::UserId, &f.recipient);
    cond = text_condition(cond, C::SenderId, &f.sender_id);
    cond = text_condition(cond, C::Status, &f.status);
    cond = text_condition(cond, C::Type, &f.kind);
    cond = text_condition(cond, C::Collection, &f.collection);
    cond = text_condition(cond, C::Item, &f.item);
    if let Some(read) = f.read {
        cond = cond.add(C::Read.eq(read));
    }
    if let Some(at) = f.created_gt {
        cond = cond.add(C::CreatedAt.gt(at));
    }
    if let Some(at) = f.created_gte {
        cond = cond.add(C::CreatedAt.gte(at));
    }
    if let Some(at) = f.created_lt {
        cond = cond.add(C::CreatedAt.lt(at));
    }
    if let Some(at) = f.created_lte {
        cond = cond.add(C::CreatedAt.lte(at));
    }
    cond
}

/// `keys` without repeats, in their first order.
fn distinct(keys: &[NotificationId]) -> Vec<NotificationId> {
    let mut seen = std::collections::HashSet::with_capacity(keys.len());
    keys.iter().copied().filter(|k| seen.insert(*k)).collect()
}

impl Db {
    /// A page of records, newest (or oldest) first by id, which is creation order (UUID v7).
    pub async fn query_records(&self, q: &RecordQuery) -> Result<RecordsPage, Error> {
        use sea_orm::{PaginatorTrait, QuerySelect};
        let scope = scope_condition(q.organization.as_ref());
        let matching = filter_condition(scope.clone(), &q.filter);
        let order = if q.newest_first {
            sea_orm::Order::Desc
        } else {
            sea_orm::Order::Asc
        };
        let items = notifications::Entity::find()
            .filter(matching.clone())
            .order_by(notifications::Column::Id, order)
            .offset(q.offset)
            .limit(q.limit)
            .all(&self.conn)
            .await
            .map_err(classify)?
            .into_iter()
            .map(Into::into)
            .collect();
        let filter_count = if q.filter_count {
            Some(
                notifications::Entity::find()
                    .filter(matching)
                    .count(&self.conn)
                    .await
                    .map_err(classify)?,
            )
        } else {
            None
        };
        let total_count = if q.total_count {
            Some(
                notifications::Entity::find()
                    .filter(scope)
                    .count(&self.conn)
                    .await
                    .map_err(classify)?,
            )
        } else {
            None
        };
        Ok(RecordsPage {
            items,
            total_count,
            filter_count,
        })
    }

    /// The `(id, user_id)` of the records among `keys` (in `organization`, when given).
    async fn existing_records(
        &self,
        txn: &sea_orm::DatabaseTransaction,
        keys: &[NotificationId],
        organization: Option<&ExternalId>,
    ) -> Result<std::collections::HashMap<uuid::Uuid, String>, Error> {
        use sea_orm::QuerySelect;
        let mut found = std::collections::HashMap::with_capacity(keys.len());
        for chunk in keys.chunks(KEYS_PER_STATEMENT) {
            let rows: Vec<(uuid::Uuid, String)> = notifications::Entity::find()
                .select_only()
                .column(notifications::Column::Id)
                .column(notifications::Column::UserId)
                .filter(scope_condition(organization))
                .filter(notifications::Column::Id.is_in(chunk.iter().map(|k| k.0)))
                .into_tuple()
                .all(txn)
                .await
                .map_err(classify)?;
            found.extend(rows);
        }
        Ok(found)
    }

    /// Makes `changes` to every record among `keys` (in `organization`, when given), all or
    /// none; returns the records as they now are, in the order of `keys`.
    pub async fn update_records(
        &self,
        keys: &[NotificationId],
        organization: Option<&ExternalId>,
        changes: &RecordChanges,
    ) -> Result<KeysOutcome<Vec<NotificationRecord>>, Error> {
        let keys = distinct(keys);
        let txn = self.begin_write().await?;
        let done = self
            .update_records_in(&txn, &keys, organization, changes)
            .await;
        crate::db::finish(txn, done).await
    }

    async fn update_records_in(
        &self,
        txn: &sea_orm::DatabaseTransaction,
        keys: &[NotificationId],
        organization: Option<&ExternalId>,
        c: &RecordChanges,
    ) -> Result<KeysOutcome<Vec<NotificationRecord>>, Error> {
        use notifications::Column as C;
        use sea_orm::sea_query::{Expr, Func};
        let existing = self.existing_records(txn, keys, organization).await?;
        let unknown: Vec<NotificationId> = keys
            .iter()
            .filter(|k| !existing.contains_key(&k.0))
            .copied()
            .collect();
        if !unknown.is_empty() {
            return Ok(KeysOutcome::Unknown(unknown));
        }
        let now = Utc::now();
        let statement = || {
            let mut update = notifications::Entity::update_many();
            if let Some(v) = &c.title {
                update = update.col_expr(C::Title, Expr::value(v.as_str()));
            }
            if let Some(v) = &c.message {
                update = update.col_expr(C::Message, Expr::value(v.as_str()));
            }
            if let Some(v) = c.status {
                update = update.col_expr(C::Status, Expr::value(v.as_str()));
            }
            match c.read {
                Some(true) => {
                    update = update.col_expr(C::Read, Expr::value(true)).col_expr(
                        C::ReadAt,
                        Func::coalesce([Expr::col(C::ReadAt), Expr::value(now)]).into(),
                    );
                }
                Some(false) => {
                    update = update
                        .col_expr(C::Read, Expr::value(false))
                        .col_expr(C::ReadAt, Expr::value(Option::<DateTime<Utc>>::None));
                }
                None => {}
            }
            if let Some(v) = &c.data {
                update = update.col_expr(C::Data, Expr::value(v.as_ref().map(|d| d.to_string())));
            }
            if let Some(v) = &c.collection {
                update = update.col_expr(C::Collection, Expr::value(v.clone()));
            }
            if let Some(v) = &c.item {
                update = update.col_expr(C::Item, Expr::value(v.clone()));
            }
            update.filter(scope_condition(organization))
        };
        let mut changed = 0;
        for chunk in keys.chunks(KEYS_PER_STATEMENT) {
            changed += statement()
                .filter(C::Id.is_in(chunk.iter().map(|k| k.0)))
                .exec(txn)
                .await
                .map_err(classify)?
                .rows_affected;
        }
        if changed != keys.len() as u64 {
            return Err(Error::conflict(
                "keys: some notifications were deleted meanwhile, try again",
            ));
        }
        let mut updated: std::collections::HashMap<uuid::Uuid, NotificationRecord> =
            std::collections::HashMap::with_capacity(keys.len());
        for chunk in keys.chunks(KEYS_PER_STATEMENT) {
            let models = notifications::Entity::find()
                .filter(C::Id.is_in(chunk.iter().map(|k| k.0)))
                .all(txn)
                .await
                .map_err(classify)?;
            updated.extend(models.into_iter().map(|m| (m.id, m.into())));
        }
        Ok(KeysOutcome::Done(
            keys.iter().filter_map(|k| updated.remove(&k.0)).collect(),
        ))
    }

    /// Deletes every record among `keys` (in `organization`, when given), all or none.
    pub async fn delete_records(
        &self,
        keys: &[NotificationId],
        organization: Option<&ExternalId>,
    ) -> Result<KeysOutcome<DeletedRecords>, Error> {
        let keys = distinct(keys);
        let txn = self.begin_write().await?;
        let done = self.delete_records_in(&txn, &keys, organization).await;
        crate::db::finish(txn, done).await
    }

    async fn delete_records_in(
        &self,
        txn: &sea_orm::DatabaseTransaction,
        keys: &[NotificationId],
        organization: Option<&ExternalId>,
    ) -> Result<KeysOutcome<DeletedRecords>, Error> {
        let existing = self.existing_records(txn, keys, organization).await?;
        let unknown: Vec<NotificationId> = keys
            .iter()
            .filter(|k| !existing.contains_key(&k.0))
            .copied()
            .collect();
        if !unknown.is_empty() {
            return Ok(KeysOutcome::Unknown(unknown));
        }
        let mut deleted = 0;
        for chunk in keys.chunks(KEYS_PER_STATEMENT) {
            deleted += notifications::Entity::delete_many()
                .filter(scope_condition(organization))
                .filter(notifications::Column::Id.is_in(chunk.iter().map(|k| k.0)))
                .exec(txn)
                .await
                .map_err(classify)?
                .rows_affected;
        }
        if deleted != keys.len() as u64 {
            return Err(Error::conflict(
                "keys: some notifications were deleted meanwhile, try again",
            ));
        }
        let mut users: Vec<ExternalId> = existing
            .into_values()
            .map(ExternalId::from_trusted)
            .collect();
        users.sort();
        users.dedup();
        Ok(KeysOutcome::Done(DeletedRecords {
            count: deleted,
            users,
        }))
    }
}
