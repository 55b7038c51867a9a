//! Set-based bulk loading, for demo data and benchmarks: many rows per statement, many
//! statements per transaction, values bound exactly as the entity layer binds them (so rows
//! loaded here read back like rows written by the procedures).

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, Value};
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

/// The prime modulus of [`in_hashed_group`]'s hash (2^31 - 1), so every product below fits in
/// 64 bits.
const HASH_PRIME: i64 = 2_147_483_647;

/// The multiplier and offset of group number `group`'s hash.
fn group_hash_constants(group: u32) -> (i64, i64) {
    let g = i64::from(group);
    (1_000_003 + 7_919 * g, 12_345 + 104_729 * g)
}

/// Whether demo user number `user` (1 for `user-00001`) belongs to demo group number `group`
/// holding `share_percent` of the users: a quadratic hash of the user's number modulo a prime,
/// so memberships look random, groups are nearly independent of each other, and the SQL of
/// [`Db::bulk_create_hashed_group`] computes exactly the same set on every engine.
pub fn in_hashed_group(group: u32, user: u64, share_percent: u32) -> bool {
    let (a, b) = group_hash_constants(group);
    let h1 = ((user as i64 % HASH_PRIME) * a + b) % HASH_PRIME;
    let h = ((h1 * h1 % HASH_PRIME) * 69_621 + h1) % HASH_PRIME;
    h % 100 < i64::from(share_percent)
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
        let txn = self.begin_write().await?;
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

    /// Creates group `name` in `organization_id` with the organization's users `user-<n>` for
    /// which [`in_hashed_group`]`(group, n, share_percent)` holds, in one set-based statement;
    /// returns the group's id and how many members it got.
    pub async fn bulk_create_hashed_group(
        &self,
        organization_id: &ExternalId,
        name: &str,
        group: u32,
        share_percent: u32,
    ) -> Result<(Uuid, u64), Error> {
        let id = Uuid::now_v7();
        let now = Utc::now();
        let (a, b) = group_hash_constants(group);
        let txn = self.begin_write().await?;
        txn.execute_raw(self.stmt(
            "INSERT INTO user_groups (id, organization_id, name, created_at) VALUES (?, ?, ?, ?)",
            [
                id.into(),
                organization_id.as_str().into(),
                name.into(),
                now.into(),
            ],
        ))
        .await
        .map_err(classify)?;
        let p = HASH_PRIME;
        let members = txn
            .execute_raw(self.stmt(
                &format!(
                    "INSERT INTO group_members (group_id, user_id, created_at) \
                     SELECT ?, x.id, ? FROM (SELECT u.id, \
                     ((CAST(substr(u.id, 6) AS BIGINT) % {p}) * {a} + {b}) % {p} AS h1 \
                     FROM users u WHERE u.organization_id = ? AND u.id LIKE 'user-%') x \
                     WHERE (((x.h1 * x.h1 % {p}) * 69621 + x.h1) % {p}) % 100 < ?"
                ),
                [
                    id.into(),
                    now.into(),
                    organization_id.as_str().into(),
                    i64::from(share_percent).into(),
                ],
            ))
            .await
            .map_err(classify)?
            .rows_affected();
        txn.commit().await.map_err(classify)?;
        Ok((id, members))
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
    use super::{in_hashed_group, values_clause};

    #[test]
    fn hashed_groups_look_random_and_independent() {
        let users = 100_000u64;
        let (mut first, mut second, mut both) = (0u64, 0u64, 0u64);
        for n in 1..=users {
            let (a, b) = (in_hashed_group(1, n, 60), in_hashed_group(2, n, 60));
            first += u64::from(a);
            second += u64::from(b);
            both += u64::from(a && b);
        }
        for count in [first, second] {
            assert!((59_000..61_000).contains(&count), "{count}");
        }
        assert!((35_000..37_000).contains(&both), "{both}");
        assert!(!in_hashed_group(1, 1, 0));
        assert!(in_hashed_group(1, 1, 100));
    }

    #[test]
    fn values_clause_repeats_the_tuple() {
        assert_eq!(values_clause("(?,?)", 1), "(?,?)");
        assert_eq!(values_clause("(?,?)", 3), "(?,?),(?,?),(?,?)");
    }
}
