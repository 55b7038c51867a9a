//! Change signals between Tidings processes, and the queries live subscriptions run.
//!
//! On PostgreSQL a signal is a `NOTIFY` on one channel, so every process on the database hears
//! every change; on SQLite there is one process and signals stay in memory (the caller's hub).

use std::time::Duration;

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use tidings_domain::{Error, ExternalId, NotificationId, NotificationStatus};
use tokio::sync::mpsc;

use crate::db::{Backend, Db, classify};
use crate::entities::notifications;
use crate::notifications::NotificationRecord;

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
