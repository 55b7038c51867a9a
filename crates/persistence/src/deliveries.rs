//! The delivery outbox: claiming due rows under a lease, recording what became of each send,
//! and the push subscriptions and instance settings delivery needs.
//!
//! A claim moves due rows to `sending`, stamps them with the claimer's lease and pushes their
//! `next_attempt_at` to the lease's end, so a row whose claimer died becomes due again when the
//! lease runs out. Every later change names the lease, so a claimer that outlived its lease can
//! no longer touch a row someone else claimed since.

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, Value};
use tidings_domain::{Error, ExternalId};
use uuid::Uuid;

use crate::db::{Backend, Db, classify, get};

/// A row claimed for sending, with what to send.
#[derive(Clone, Debug)]
pub struct ClaimedDelivery {
    pub id: Uuid,
    /// `email` or `push`.
    pub channel: String,
    /// The email address, or the push endpoint.
    pub target: String,
    pub user_id: ExternalId,
    pub notification_id: Option<Uuid>,
    /// Attempts so far, this one included.
    pub attempts: i32,
    pub kind: String,
    pub title: String,
    pub message: String,
    pub data: Option<serde_json::Value>,
    /// The subscription's keys, for a push row whose subscription still exists.
    pub push_keys: Option<(String, String)>,
    pub created_at: DateTime<Utc>,
}

/// A delivery as `deliveries.list` and `notifications.get` show it.
#[derive(Clone, Debug, PartialEq)]
pub struct DeliveryRecord {
    pub id: Uuid,
    pub notification_id: Option<Uuid>,
    pub user_id: ExternalId,
    pub channel: String,
    pub target: String,
    pub state: String,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub sent_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Which deliveries `deliveries.list` shows, newest first.
#[derive(Clone, Debug, Default)]
pub struct DeliveryFilter {
    /// Only users of this organization (an admin's view).
    pub organization: Option<ExternalId>,
    pub state: Option<String>,
    pub channel: Option<String>,
    pub user_id: Option<ExternalId>,
    pub notification_id: Option<Uuid>,
    pub limit: u64,
    pub offset: u64,
}

/// A browser's push subscription.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PushSubscriptionRecord {
    pub endpoint: String,
    pub p256dh: String,
    pub auth: String,
}

fn uuid_list(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "SELECT unhex(replace(value, '-', '')) FROM json_each(?)",
        Backend::Postgres => "SELECT CAST(jsonb_array_elements_text(CAST(? AS jsonb)) AS uuid)",
    }
}

fn ids_json(ids: &[Uuid]) -> Value {
    let list: Vec<String> = ids.iter().map(Uuid::to_string).collect();
    serde_json::to_string(&list)
        .unwrap_or_else(|_| "[]".to_owned())
        .into()
}

const RECORD_COLUMNS: &str = "d.id, d.notification_id, d.user_id, d.channel, d.target, d.state, \
     d.attempts, d.next_attempt_at, d.last_error, d.sent_at, d.created_at, d.updated_at";

fn record(row: &sea_orm::QueryResult) -> Result<DeliveryRecord, Error> {
    Ok(DeliveryRecord {
        id: get(row, "id")?,
        notification_id: get(row, "notification_id")?,
        user_id: ExternalId::from_trusted(get(row, "user_id")?),
        channel: get(row, "channel")?,
        target: get(row, "target")?,
        state: get(row, "state")?,
        attempts: get(row, "attempts")?,
        next_attempt_at: get(row, "next_attempt_at")?,
        last_error: get(row, "last_error")?,
        sent_at: get(row, "sent_at")?,
        created_at: get(row, "created_at")?,
        updated_at: get(row, "updated_at")?,
    })
}

impl Db {
    /// Claims up to `limit` due rows (pending, or held by a lease that ran out) under `lease`
    /// until `lease_until`, counting the attempt. On PostgreSQL `SKIP LOCKED` lets several
    /// processes claim at once without ever claiming one row twice; on SQLite the statement
    /// holds the write lock.
    pub async fn claim_deliveries(
        &self,
        lease: Uuid,
        limit: u64,
        lease_until: DateTime<Utc>,
    ) -> Result<Vec<ClaimedDelivery>, Error> {
        let now = Utc::now();
        let lock = match self.backend() {
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let claimed = self
            .conn
            .query_all_raw(self.stmt(
                &format!(
                    "UPDATE deliveries SET state = 'sending', lease = ?, attempts = attempts + 1, \
                     next_attempt_at = ?, updated_at = ? WHERE id IN (SELECT id FROM deliveries \
                     WHERE state IN ('pending', 'sending') AND next_attempt_at <= ? \
                     ORDER BY next_attempt_at LIMIT ?{lock}) RETURNING id"
                ),
                [
                    lease.into(),
                    lease_until.into(),
                    now.into(),
                    now.into(),
                    (limit as i64).into(),
                ],
            ))
            .await
            .map_err(classify)?;
        if claimed.is_empty() {
            return Ok(Vec::new());
        }
        let ids = claimed
            .iter()
            .map(|row| get::<Uuid>(row, "id"))
            .collect::<Result<Vec<_>, _>>()?;
        let rows = self
            .conn
            .query_all_raw(self.stmt(
                &format!(
                    "SELECT d.id, d.channel, d.target, d.user_id, d.notification_id, d.attempts, \
                     d.created_at, m.\"type\" AS kind, m.title, m.message, m.data, s.p256dh, s.auth \
                     FROM deliveries d JOIN messages m ON m.id = d.message_id \
                     LEFT JOIN push_subscriptions s ON d.channel = 'push' AND s.endpoint = d.target \
                     WHERE d.id IN ({}) AND d.lease = ? ORDER BY d.id",
                    uuid_list(self.backend())
                ),
                [ids_json(&ids), lease.into()],
            ))
            .await
            .map_err(classify)?;
        rows.iter()
            .map(|row| {
                let p256dh: Option<String> = get(row, "p256dh")?;
                let auth: Option<String> = get(row, "auth")?;
                let data: Option<String> = get(row, "data")?;
                Ok(ClaimedDelivery {
                    id: get(row, "id")?,
                    channel: get(row, "channel")?,
                    target: get(row, "target")?,
                    user_id: ExternalId::from_trusted(get(row, "user_id")?),
                    notification_id: get(row, "notification_id")?,
                    attempts: get(row, "attempts")?,
                    kind: get(row, "kind")?,
                    title: get(row, "title")?,
                    message: get(row, "message")?,
                    data: data.and_then(|d| serde_json::from_str(&d).ok()),
                    push_keys: p256dh.zip(auth),
                    created_at: get(row, "created_at")?,
                })
            })
            .collect()
    }

    /// Marks rows still held by `lease` as sent; returns how many were.
    pub async fn deliveries_sent(&self, lease: Uuid, ids: &[Uuid]) -> Result<u64, Error> {
        if ids.is_empty() {
            return Ok(0);
        }
        let now = Utc::now();
        self.execute(
            &format!(
                "UPDATE deliveries SET state = 'sent', sent_at = ?, updated_at = ?, lease = NULL, \
                 last_error = NULL WHERE id IN ({}) AND lease = ?",
                uuid_list(self.backend())
            ),
            [now.into(), now.into(), ids_json(ids), lease.into()],
        )
        .await
    }

    /// Puts a row held by `lease` back to wait until `at`, keeping the error it got.
    pub async fn delivery_retry(
        &self,
        lease: Uuid,
        id: Uuid,
        at: DateTime<Utc>,
        error: &str,
    ) -> Result<u64, Error> {
        self.execute(
            "UPDATE deliveries SET state = 'pending', next_attempt_at = ?, last_error = ?, \
             updated_at = ?, lease = NULL WHERE id = ? AND lease = ?",
            [
                at.into(),
                error.into(),
                Utc::now().into(),
                id.into(),
                lease.into(),
            ],
        )
        .await
    }

    /// Gives up on a row held by `lease`, with the error that ended it.
    pub async fn delivery_failed(&self, lease: Uuid, id: Uuid, error: &str) -> Result<u64, Error> {
        self.execute(
            "UPDATE deliveries SET state = 'failed', last_error = ?, updated_at = ?, lease = NULL \
             WHERE id = ? AND lease = ?",
            [error.into(), Utc::now().into(), id.into(), lease.into()],
        )
        .await
    }

    /// Hands rows still held by `lease` back, due now and without counting the attempt: for a
    /// worker that stops before sending them.
    pub async fn release_deliveries(&self, lease: Uuid, ids: &[Uuid]) -> Result<u64, Error> {
        if ids.is_empty() {
            return Ok(0);
        }
        let now = Utc::now();
        self.execute(
            &format!(
                "UPDATE deliveries SET state = 'pending', attempts = attempts - 1, \
                 next_attempt_at = ?, updated_at = ?, lease = NULL WHERE id IN ({}) AND lease = ?",
                uuid_list(self.backend())
            ),
            [now.into(), now.into(), ids_json(ids), lease.into()],
        )
        .await
    }

    /// Deliveries matching `f`, newest first.
    pub async fn list_deliveries(&self, f: &DeliveryFilter) -> Result<Vec<DeliveryRecord>, Error> {
        let mut sql = format!("SELECT {RECORD_COLUMNS} FROM deliveries d");
        let mut values: Vec<Value> = Vec::new();
        let mut clauses: Vec<&str> = Vec::new();
        if let Some(org) = &f.organization {
            sql.push_str(" JOIN users u ON u.id = d.user_id");
            clauses.push("u.organization_id = ?");
            values.push(org.as_str().into());
        }
        if let Some(state) = &f.state {
            clauses.push("d.state = ?");
            values.push(state.as_str().into());
        }
        if let Some(channel) = &f.channel {
            clauses.push("d.channel = ?");
            values.push(channel.as_str().into());
        }
        if let Some(user) = &f.user_id {
            clauses.push("d.user_id = ?");
            values.push(user.as_str().into());
        }
        if let Some(id) = f.notification_id {
            clauses.push("d.notification_id = ?");
            values.push(id.into());
        }
        if !clauses.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&clauses.join(" AND "));
        }
        sql.push_str(" ORDER BY d.id DESC LIMIT ? OFFSET ?");
        values.push((f.limit as i64).into());
        values.push((f.offset as i64).into());
        let rows = self
            .conn
            .query_all_raw(self.stmt(&sql, values))
            .await
            .map_err(classify)?;
        rows.iter().map(record).collect()
    }

    /// How many deliveries are in each state, for tests and benchmarks.
    pub async fn delivery_states(&self) -> Result<Vec<(String, i64)>, Error> {
        let rows = self
            .conn
            .query_all_raw(self.stmt(
                "SELECT state, COUNT(*) AS n FROM deliveries GROUP BY state ORDER BY state",
                [],
            ))
            .await
            .map_err(classify)?;
        rows.iter()
            .map(|row| Ok((get(row, "state")?, get(row, "n")?)))
            .collect()
    }

    /// Stores a browser's subscription for `user`, replacing the keys of a known endpoint.
    pub async fn save_push_subscription(
        &self,
        user: &ExternalId,
        s: &PushSubscriptionRecord,
    ) -> Result<(), Error> {
        self.execute(
            "INSERT INTO push_subscriptions (id, user_id, endpoint, p256dh, auth, created_at) \
             VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (endpoint) DO UPDATE SET \
             user_id = excluded.user_id, p256dh = excluded.p256dh, auth = excluded.auth",
            [
                Uuid::now_v7().into(),
                user.as_str().into(),
                s.endpoint.as_str().into(),
                s.p256dh.as_str().into(),
                s.auth.as_str().into(),
                Utc::now().into(),
            ],
        )
        .await
        .map(|_| ())
    }

    /// Removes `user`'s subscription at `endpoint`; whether there was one.
    pub async fn remove_push_subscription(
        &self,
        user: &ExternalId,
        endpoint: &str,
    ) -> Result<bool, Error> {
        self.execute(
            "DELETE FROM push_subscriptions WHERE user_id = ? AND endpoint = ?",
            [user.as_str().into(), endpoint.into()],
        )
        .await
        .map(|n| n > 0)
    }

    /// Removes the subscription at `endpoint`, which its push service said is gone.
    pub async fn forget_push_endpoint(&self, endpoint: &str) -> Result<(), Error> {
        self.execute(
            "DELETE FROM push_subscriptions WHERE endpoint = ?",
            [endpoint.into()],
        )
        .await
        .map(|_| ())
    }

    /// The setting `key`, if stored.
    pub async fn setting(&self, key: &str) -> Result<Option<String>, Error> {
        match self
            .query_one("SELECT value FROM settings WHERE \"key\" = ?", [key.into()])
            .await?
        {
            Some(row) => get(&row, "value").map(Some),
            None => Ok(None),
        }
    }

    /// The setting `key`, storing `value` first when there is none; returns what is stored, so
    /// processes starting together agree on one value.
    pub async fn setting_or_insert(&self, key: &str, value: &str) -> Result<String, Error> {
        self.execute(
            "INSERT INTO settings (\"key\", value, created_at) VALUES (?, ?, ?) \
             ON CONFLICT (\"key\") DO NOTHING",
            [key.into(), value.into(), Utc::now().into()],
        )
        .await?;
        let row = self
            .query_one("SELECT value FROM settings WHERE \"key\" = ?", [key.into()])
            .await?
            .ok_or_else(|| Error::internal_reason("setting vanished"))?;
        get(&row, "value")
    }
}
