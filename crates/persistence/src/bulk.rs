//! Set-based bulk loading, for demo data and benchmarks: many rows per statement, many
//! statements per transaction, values bound exactly as the entity layer binds them (so rows
//! loaded here read back like rows written by the procedures).

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, TransactionTrait, Value};
use tidings_domain::{Error, ExternalId, NotificationId, Role};
use uuid::Uuid;

use crate::db::{Backend, Db, classify};

/// Rows per `INSERT … VALUES (…), (…)` statement: well under SQLite's 32,766 and
/// PostgreSQL's 65,535 bound parameters for the widest row below.
const ROWS_PER_STATEMENT: usize = 1000;

/// A user to load in bulk, without a password (it can only sign in through a session).
#[derive(Clone, Debug)]
pub struct BulkUser {
    pub id: ExternalId,
    pub email: Option<String>,
    pub name: String,
}

/// A notification to load in bulk, with its whole state (read, seen, when).
#[derive(Clone, Debug)]
pub struct BulkNotification {
    pub id: NotificationId,
    pub user_id: ExternalId,
    pub organization_id: ExternalId,
    pub kind: String,
    pub title: String,
    pub message: String,
    pub data: Option<serde_json::Value>,
    pub read_at: Option<DateTime<Utc>>,
    pub seen_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// A session to load in bulk: only the token's hash is stored.
#[derive(Clone, Debug)]
pub struct BulkSession {
    pub user_id: ExternalId,
    pub token_hash: String,
}

/// `(?,?,…)` repeated `rows` times, with `tuple` as each row's placeholder list.
fn values_clause(tuple: &str, rows: usize) -> String {
    let mut sql = String::with_capacity((tuple.len() + 1) * rows);
    for i in 0..rows {
        if i > 0 {
            sql.push(',');
        }
        sql.push_str(tuple);
    }
    sql
}

impl Db {
    /// Runs `head VALUES <tuple>,… tail` over `rows`, `ROWS_PER_STATEMENT` at a time, in one
    /// transaction; returns the rows affected.
    async fn insert_chunked<T>(
        &self,
        head: &str,
        tuple: &str,
        tail: &str,
        rows: &[T],
        bind: impl Fn(&T, &mut Vec<Value>),
    ) -> Result<u64, Error> {
        let txn = self.conn.begin().await.map_err(classify)?;
        if self.backend() == Backend::Sqlite {
            // For this connection (a loader's connections end with it): a page cache large
            // enough for the indexes being filled (2 MiB by default), and statement journals in
            // memory rather than temporary files, which each multi-row INSERT writes to.
            for pragma in ["PRAGMA cache_size = -262144", "PRAGMA temp_store = MEMORY"] {
                txn.execute_raw(self.stmt(pragma, []))
                    .await
                    .map_err(classify)?;
            }
        }
        let mut affected = 0;
        for chunk in rows.chunks(ROWS_PER_STATEMENT) {
            let sql = format!("{head} VALUES {}{tail}", values_clause(tuple, chunk.len()));
            let mut values = Vec::with_capacity(chunk.len() * 12);
            for row in chunk {
                bind(row, &mut values);
            }
            affected += txn
                .execute_raw(self.stmt(&sql, values))
                .await
                .map_err(classify)?
                .rows_affected();
        }
        txn.commit().await.map_err(classify)?;
        Ok(affected)
    }

    /// Creates the organization unless it exists, then the users whose ids are not taken;
    /// returns how many users were created.
    pub async fn bulk_insert_users(
        &self,
        organization_id: &ExternalId,
        organization_name: &str,
        users: &[BulkUser],
    ) -> Result<u64, Error> {
        let now = Utc::now();
        self.execute(
            "INSERT INTO organizations (id, name, created_at) VALUES (?, ?, ?) \
             ON CONFLICT (id) DO NOTHING",
            [
                organization_id.as_str().into(),
                organization_name.into(),
                now.into(),
            ],
        )
        .await?;
        self.insert_chunked(
            "INSERT INTO users (id, organization_id, email, name, password_hash, role, \
             created_at, updated_at)",
            "(?,?,?,?,NULL,?,?,?)",
            " ON CONFLICT DO NOTHING",
            users,
            |u, v| {
                v.extend([
                    u.id.as_str().into(),
                    organization_id.as_str().into(),
                    u.email.clone().into(),
                    u.name.as_str().into(),
                    Role::User.as_str().into(),
                    now.into(),
                    now.into(),
                ])
            },
        )
        .await
    }

    /// Stores notifications (status inbox) in one transaction; returns how many.
    pub async fn bulk_insert_notifications(
        &self,
        notifications: &[BulkNotification],
    ) -> Result<u64, Error> {
        self.insert_chunked(
            "INSERT INTO notifications (id, user_id, organization_id, type, title, message, \
             data, \"read\", read_at, seen_at, status, created_at)",
            "(?,?,?,?,?,?,?,?,?,?,'inbox',?)",
            "",
            notifications,
            |n, v| {
                v.extend([
                    n.id.0.into(),
                    n.user_id.as_str().into(),
                    n.organization_id.as_str().into(),
                    n.kind.as_str().into(),
                    n.title.as_str().into(),
                    n.message.as_str().into(),
                    // Stored as JSON text, as the entity layer stores it.
                    n.data.as_ref().map(|d| d.to_string()).into(),
                    n.read_at.is_some().into(),
                    n.read_at.into(),
                    n.seen_at.into(),
                    n.created_at.into(),
                ])
            },
        )
        .await
    }

    /// Stores sessions that expire at `expires_at`; returns how many.
    pub async fn bulk_insert_sessions(
        &self,
        sessions: &[BulkSession],
        expires_at: DateTime<Utc>,
    ) -> Result<u64, Error> {
        let now = Utc::now();
        self.insert_chunked(
            "INSERT INTO sessions (id, token_hash, user_id, created_at, expires_at, renewed_at)",
            "(?,?,?,?,?,?)",
            "",
            sessions,
            |s, v| {
                v.extend([
                    Uuid::now_v7().into(),
                    s.token_hash.as_str().into(),
                    s.user_id.as_str().into(),
                    now.into(),
                    expires_at.into(),
                    now.into(),
                ])
            },
        )
        .await
    }

    /// After a bulk load, leaves the tables as a long-running database would have them. On
    /// PostgreSQL: planner statistics and a vacuumed table, whose visibility map lets counts
    /// be index-only scans (what autovacuum does some time later). On SQLite: nothing, as
    /// Tidings never runs ANALYZE there; with the STAT4 statistics that ANALYZE gathers (the
    /// bundled SQLite has STAT4), every statement filtering indexed columns by bound values
    /// is re-prepared on each execution, which costs more than the plans gain.
    pub async fn refresh_after_bulk_load(&self) -> Result<(), Error> {
        match self.backend() {
            Backend::Sqlite => Ok(()),
            Backend::Postgres => self.execute("VACUUM ANALYZE", []).await.map(|_| ()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::values_clause;

    #[test]
    fn values_clause_repeats_the_tuple() {
        assert_eq!(values_clause("(?,?)", 1), "(?,?)");
        assert_eq!(values_clause("(?,?)", 3), "(?,?),(?,?),(?,?)");
    }
}
