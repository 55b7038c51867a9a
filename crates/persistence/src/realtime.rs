//! Change signals between Tidings processes, and the queries live subscriptions run.
//!
//! On PostgreSQL a signal is a `NOTIFY` on one channel, so every process on the database hears
//! every change; on SQLite there is one process and signals stay in memory (the caller's hub).

use std::collections::HashMap;
use std::time::Duration;

use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use tidings_domain::{Error, ExternalId, NotificationId, NotificationStatus};
use tokio::sync::mpsc;

use crate::db::{Backend, Db, classify, get};
use crate::entities::notifications;
use crate::fanout::IdRange;
use crate::notifications::{Counts, NotificationRecord};

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

    /// The inbox items of `users` with ids in `ids` (one fan-out's), oldest first: what a
    /// fan-out brought the users subscribed to this process, read in a few statements.
    pub async fn inbox_in_range(
        &self,
        users: &[&str],
        ids: IdRange,
    ) -> Result<Vec<NotificationRecord>, Error> {
        let mut items: Vec<NotificationRecord> = Vec::new();
        for chunk in users.chunks(USERS_PER_STATEMENT) {
            let rows = notifications::Entity::find()
                .filter(notifications::Column::UserId.is_in(chunk.iter().copied()))
                .filter(notifications::Column::Status.eq(NotificationStatus::Inbox.as_str()))
                .filter(notifications::Column::Id.between(ids.first.0, ids.last.0))
                .all(&self.conn)
                .await
                .map_err(classify)?;
            items.extend(rows.into_iter().map(NotificationRecord::from));
        }
        items.sort_by_key(|n| n.id);
        Ok(items)
    }

    /// The inbox counts of each of `users` (zero for a user without items), in a few statements.
    pub async fn counts_of(&self, users: &[&str]) -> Result<Vec<(ExternalId, Counts)>, Error> {
        let mut counts: HashMap<&str, Counts> =
            users.iter().map(|u| (*u, Counts::default())).collect();
        for chunk in users.chunks(USERS_PER_STATEMENT) {
            let marks = vec!["?"; chunk.len()].join(", ");
            let mut values: Vec<sea_orm::Value> = vec![false.into()];
            values.extend(chunk.iter().map(|u| (*u).into()));
            let rows = self
                .conn
                .query_all_raw(self.stmt(
                    &format!(
                        "SELECT user_id, COUNT(*) AS total, \
                         COUNT(*) FILTER (WHERE \"read\" = ?) AS unread, \
                         COUNT(*) FILTER (WHERE seen_at IS NULL) AS unseen \
                         FROM notifications WHERE status = 'inbox' AND user_id IN ({marks}) \
                         GROUP BY user_id"
                    ),
                    values,
                ))
                .await
                .map_err(classify)?;
            for row in rows {
                let user: String = get(&row, "user_id")?;
                if let Some(entry) = counts.get_mut(user.as_str()) {
                    *entry = Counts {
                        unread: get::<i64>(&row, "unread")? as u64,
                        unseen: get::<i64>(&row, "unseen")? as u64,
                        total: get::<i64>(&row, "total")? as u64,
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
