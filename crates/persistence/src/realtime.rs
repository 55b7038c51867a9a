//! Change signals between Tidings processes, and the queries live subscriptions run.
//!
//! On PostgreSQL a signal is a `NOTIFY` on one channel, so every process on the database hears
//! every change; on SQLite there is one process and signals stay in memory (the caller's hub).

use std::collections::HashMap;
use std::time::Duration;

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use tidings_domain::{Error, ExternalId, NotificationId, NotificationStatus};
use tokio::sync::mpsc;

use crate::db::{Backend, Db, Flag, classify, parse_time};
use crate::entities::notifications;
use crate::fanout::IdRange;
use crate::notifications::{Counts, NotificationRecord};

/// One user's item of a fan-out: what differs between the items of one fan-out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FanOutMark {
    pub user_id: ExternalId,
    pub id: NotificationId,
    pub read: bool,
    pub seen_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// Users per statement when reading for many subscribers at once.
const USERS_PER_STATEMENT: usize = 500;

/// The PostgreSQL channel Tidings signals on.
pub const EVENTS_CHANNEL: &str = "tidings_events";

/// What a listener hears.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Heard {
    /// A signal's payload.
    Signal(String),
    /// The connection dropped and came back: signals may have been missed.
    Reconnected,
}

impl Db {
    /// Sends a signal to every process listening on this database; on SQLite there is no one
    /// else to tell, and this does nothing.
    pub async fn signal(&self, payload: &str) -> Result<(), Error> {
        if self.backend() != Backend::Postgres {
            return Ok(());
        }
        self.execute(
            "SELECT pg_notify(?, ?)",
            [EVENTS_CHANNEL.into(), payload.into()],
        )
        .await
        .map(|_| ())
    }

    /// Listens for signals from every process on this PostgreSQL database, reconnecting as
    /// needed; `None` on SQLite.
    pub async fn listen(&self) -> Result<Option<mpsc::Receiver<Heard>>, Error> {
        if self.backend() != Backend::Postgres {
            return Ok(None);
        }
        let pool = self.conn.get_postgres_connection_pool().clone();
        let mut listener = sea_orm::sqlx::postgres::PgListener::connect_with(&pool)
            .await
            .map_err(Error::unavailable)?;
        listener
            .listen(EVENTS_CHANNEL)
            .await
            .map_err(Error::unavailable)?;
        let (tx, rx) = mpsc::channel(1024);
        tokio::spawn(async move {
            loop {
                let heard = match listener.try_recv().await {
                    Ok(Some(n)) => Heard::Signal(n.payload().to_owned()),
                    Ok(None) => Heard::Reconnected,
                    Err(e) => {
                        if pool.is_closed() {
                            return;
                        }
                        tracing::warn!(error = %e, "lost the PostgreSQL listener; retrying");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        Heard::Reconnected
                    }
                };
                if tx.send(heard).await.is_err() {
                    return;
                }
            }
        });
        Ok(Some(rx))
    }

    /// A user's inbox items newer than `after`, oldest first, at most `limit`.
    pub async fn inbox_after(
        &self,
        user_id: &ExternalId,
        after: Option<NotificationId>,
        limit: u64,
    ) -> Result<Vec<NotificationRecord>, Error> {
        let mut query = notifications::Entity::find()
            .filter(notifications::Column::UserId.eq(user_id.as_str()))
            .filter(notifications::Column::Status.eq(NotificationStatus::Inbox.as_str()));
        if let Some(after) = after {
            query = query.filter(notifications::Column::Id.gt(after.0));
        }
        query
            .order_by_asc(notifications::Column::Id)
            .limit(limit)
            .all(&self.conn)
            .await
            .map(|v| v.into_iter().map(Into::into).collect())
            .map_err(classify)
    }

    /// What a fan-out (its new items have ids in `ids`) brought each of `users`, oldest first:
    /// the users subscribed to this process, read in a few statements.
    ///
    /// Every item of one fan-out was written by one statement with one rendered content, so
    /// only what differs per item (user, id, read, seen) is read, from the inbox index alone,
    /// as one JSON row per statement (a row per item costs more to hand over than to find); the
    /// content is the same as any one item's ([`Db::notification`]).
    pub async fn fan_out_marks(
        &self,
        users: &[&str],
        ids: IdRange,
    ) -> Result<Vec<FanOutMark>, Error> {
        let item = match self.backend() {
            Backend::Sqlite => "json_array(user_id, lower(hex(id)), \"read\", seen_at)",
            Backend::Postgres => {
                "json_build_array(user_id, replace(CAST(id AS text), '-', ''), \"read\", seen_at)"
            }
        };
        let mut found = Vec::new();
        for chunk in users.chunks(USERS_PER_STATEMENT) {
            let marks = vec!["?"; chunk.len()].join(", ");
            let mut values: Vec<sea_orm::Value> = vec![
                NotificationStatus::Inbox.as_str().into(),
                ids.first.0.into(),
                ids.last.0.into(),
            ];
            values.extend(chunk.iter().map(|u| (*u).into()));
            let rows: Vec<(String, String, Flag, Option<String>)> = self
                .json_rows(
                    &format!(
                        "SELECT {item} AS row FROM notifications \
                         WHERE status = ? AND id BETWEEN ? AND ? AND user_id IN ({marks})"
                    ),
                    values,
                )
                .await?;
            for (user, id, read, seen) in rows {
                found.push(FanOutMark {
                    user_id: ExternalId::from_trusted(user),
                    id: NotificationId(uuid::Uuid::parse_str(&id).map_err(Error::internal)?),
                    read: read.0,
                    seen_at: seen.as_deref().map(parse_time).transpose()?,
                });
            }
        }
        found.sort_by_key(|m| m.id);
        Ok(found)
    }

    /// The inbox counts of each of `users` (zero for a user without items), in a few statements.
    pub async fn counts_of(&self, users: &[&str]) -> Result<Vec<(ExternalId, Counts)>, Error> {
        let mut counts: HashMap<&str, Counts> =
            users.iter().map(|u| (*u, Counts::default())).collect();
        let row = match self.backend() {
            Backend::Sqlite => "json_array(user_id, total, unread, unseen)",
            Backend::Postgres => "json_build_array(user_id, total, unread, unseen)",
        };
        for chunk in users.chunks(USERS_PER_STATEMENT) {
            let marks = vec!["?"; chunk.len()].join(", ");
            let mut values: Vec<sea_orm::Value> = vec![false.into()];
            values.extend(chunk.iter().map(|u| (*u).into()));
            let rows: Vec<(String, u64, u64, u64)> = self
                .json_rows(
                    &format!(
                        "SELECT {row} AS row FROM (SELECT user_id, COUNT(*) AS total, \
                         COUNT(*) FILTER (WHERE \"read\" = ?) AS unread, \
                         COUNT(*) FILTER (WHERE seen_at IS NULL) AS unseen \
                         FROM notifications WHERE status = 'inbox' AND user_id IN ({marks}) \
                         GROUP BY user_id) AS c"
                    ),
                    values,
                )
                .await?;
            for (user, total, unread, unseen) in rows {
                if let Some(entry) = counts.get_mut(user.as_str()) {
                    *entry = Counts {
                        unread,
                        unseen,
                        total,
                    };
                }
            }
        }
        Ok(counts
            .into_iter()
            .map(|(user, c)| (ExternalId::from_trusted(user.to_owned()), c))
            .collect())
    }

    /// The id of a user's newest inbox item.
    pub async fn newest_inbox_id(
        &self,
        user_id: &ExternalId,
    ) -> Result<Option<NotificationId>, Error> {
        let page = self
            .inbox_page(user_id, NotificationStatus::Inbox, false, None, 1)
            .await?;
        Ok(page.items.first().map(|n| n.id))
    }
}
