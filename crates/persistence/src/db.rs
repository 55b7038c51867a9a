use std::time::Duration;

use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, DbErr, QueryResult,
    SqlErr, Statement, Value,
};
use tidings_domain::Error;
use tidings_migration::{Migrator, MigratorTrait};

/// Which database engine a [`Db`] talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A snapshot of the connection pool, for metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolUsage {
    pub open: u32,
    pub idle: u32,
    pub max: u32,
}

/// A pool of connections to Tidings' database.
#[derive(Clone, Debug)]
pub struct Db {
    pub(crate) conn: DatabaseConnection,
    backend: Backend,
}

impl Db {
    /// Connects to `url` (`sqlite://…` or `postgres://…`) without touching the schema.
    pub async fn connect(url: &str) -> Result<Self, Error> {
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            return Err(Error::bad_request(format!(
                "unsupported database URL {url:?}: use sqlite://… or postgres://…"
            )));
        };
        let mut options = ConnectOptions::new(url.to_owned());
        options
            .sqlx_logging(false)
            .connect_timeout(Duration::from_secs(5))
            .acquire_timeout(Duration::from_secs(5))
            // Ping only connections idle for a while (dropped by a server, proxy or firewall),
            // not on every checkout: that ping is one more round trip before every query.
            .test_before_acquire_if_idle_for(Duration::from_secs(30));
        match backend {
            Backend::Sqlite => {
                // WAL lets readers run beside the one writer; NORMAL sync is durable in WAL
                // mode except for the last transactions on power loss, never corrupting.
                options
                    .max_connections(8)
                    .min_connections(1)
                    .map_sqlx_sqlite_opts(|o| {
                        o.journal_mode(SqliteJournalMode::Wal)
                            .synchronous(SqliteSynchronous::Normal)
                            .busy_timeout(Duration::from_secs(10))
                            .foreign_keys(true)
                    });
            }
            Backend::Postgres => {
                options.max_connections(16).min_connections(1);
            }
        }
        let conn = Database::connect(options).await.map_err(classify)?;
        Ok(Self { conn, backend })
    }

    /// Connects and brings the schema up to date.
    pub async fn connect_and_migrate(url: &str) -> Result<Self, Error> {
        let db = Self::connect(url).await?;
        db.migrate().await?;
        Ok(db)
    }

    pub async fn migrate(&self) -> Result<(), Error> {
        Migrator::up(&self.conn, None).await.map_err(classify)
    }

    /// Rolls every migration back; for the migration round-trip test.
    pub async fn migrate_down_all(&self) -> Result<(), Error> {
        Migrator::down(&self.conn, None).await.map_err(classify)
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<(), Error> {
        self.conn.ping().await.map_err(classify)
    }

    /// How the connection pool is used right now: open connections, idle ones, the cap.
    pub fn pool_usage(&self) -> PoolUsage {
        let (size, idle, max) = match self.backend {
            Backend::Sqlite => {
                let pool = self.conn.get_sqlite_connection_pool();
                (
                    pool.size(),
                    pool.num_idle(),
                    pool.options().get_max_connections(),
                )
            }
            Backend::Postgres => {
                let pool = self.conn.get_postgres_connection_pool();
                (
                    pool.size(),
                    pool.num_idle(),
                    pool.options().get_max_connections(),
                )
            }
        };
        PoolUsage {
            open: size,
            idle: idle as u32,
            max,
        }
    }

    /// Runs `SELECT <json> AS row FROM …` gathered into one JSON array, so the rows come back
    /// as one value: on SQLite every row of a result is handed from the database thread on its
    /// own, which costs more than finding it.
    pub(crate) async fn json_rows<T: serde::de::DeserializeOwned>(
        &self,
        select: &str,
        values: Vec<sea_orm::Value>,
    ) -> Result<Vec<T>, Error> {
        let sql = match self.backend() {
            Backend::Sqlite => {
                format!("SELECT json_group_array(json(row)) AS rows FROM ({select})")
            }
            Backend::Postgres => format!(
                "SELECT CAST(COALESCE(json_agg(row), '[]') AS text) AS rows FROM ({select}) AS r"
            ),
        };
        let Some(row) = self.query_one(&sql, values).await? else {
            return Ok(Vec::new());
        };
        let text: String = get(&row, "rows")?;
        serde_json::from_str(&text).map_err(Error::internal)
    }

    pub async fn close(self) -> Result<(), Error> {
        self.conn.close().await.map_err(classify)
    }

    /// A statement written with `?` placeholders, numbered for PostgreSQL.
    pub(crate) fn stmt(&self, sql: &str, values: impl IntoIterator<Item = Value>) -> Statement {
        let (backend, sql) = match self.backend {
            Backend::Sqlite => (DbBackend::Sqlite, sql.to_owned()),
            Backend::Postgres => {
                let mut numbered = String::with_capacity(sql.len() + 8);
                let mut n = 0;
                for c in sql.chars() {
                    if c == '?' {
                        n += 1;
                        numbered.push('$');
                        numbered.push_str(&n.to_string());
                    } else {
                        numbered.push(c);
                    }
                }
                (DbBackend::Postgres, numbered)
            }
        };
        Statement::from_sql_and_values(backend, sql, values)
    }

    pub(crate) async fn query_one(
        &self,
        sql: &str,
        values: impl IntoIterator<Item = Value>,
    ) -> Result<Option<QueryResult>, Error> {
        self.conn
            .query_one_raw(self.stmt(sql, values))
            .await
            .map_err(classify)
    }

    pub(crate) async fn execute(
        &self,
        sql: &str,
        values: impl IntoIterator<Item = Value>,
    ) -> Result<u64, Error> {
        self.conn
            .execute_raw(self.stmt(sql, values))
            .await
            .map(|r| r.rows_affected())
            .map_err(classify)
    }

    /// A transaction that reads and then writes. On SQLite it takes the write lock at `BEGIN`
    /// (`BEGIN IMMEDIATE`, waiting out the busy timeout): a deferred transaction that read
    /// before another connection committed cannot upgrade to a writer and fails at once with
    /// SQLITE_BUSY. PostgreSQL begins as usual.
    pub(crate) async fn begin_write(&self) -> Result<sea_orm::DatabaseTransaction, Error> {
        use sea_orm::{SqliteTransactionMode, TransactionOptions, TransactionTrait};
        let options = TransactionOptions {
            sqlite_transaction_mode: (self.backend == Backend::Sqlite)
                .then_some(SqliteTransactionMode::Immediate),
            ..TransactionOptions::default()
        };
        self.conn
            .begin_with_options(options)
            .await
            .map_err(classify)
    }
}

/// Ends `txn` as `done` says: commits after success, rolls back at once after failure, so no
/// lock taken in it outlives the call.
pub(crate) async fn finish<T>(
    txn: sea_orm::DatabaseTransaction,
    done: Result<T, Error>,
) -> Result<T, Error> {
    match done {
        Ok(value) => {
            txn.commit().await.map_err(classify)?;
            Ok(value)
        }
        Err(err) => {
            let _ = txn.rollback().await;
            Err(err)
        }
    }
}

/// Turns a database error into what a client may see: a conflict for a unique violation, an
/// unavailable database for a lost connection, an internal error otherwise.
pub(crate) fn classify(err: DbErr) -> Error {
    if let Some(SqlErr::UniqueConstraintViolation(_)) = err.sql_err() {
        return Error::conflict("Already exists");
    }
    match err {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => Error::unavailable(err),
        other => Error::internal(other),
    }
}

/// Reads a column, classifying a decoding failure as internal.
pub(crate) fn get<T: sea_orm::TryGetable>(row: &QueryResult, column: &str) -> Result<T, Error> {
    row.try_get::<T>("", column).map_err(classify)
}

/// A boolean as SQLite (0 or 1) or PostgreSQL (false or true) writes it in JSON.
pub(crate) struct Flag(pub(crate) bool);

impl<'de> serde::Deserialize<'de> for Flag {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::Bool(b) => Ok(Flag(b)),
            serde_json::Value::Number(n) => Ok(Flag(n.as_i64() != Some(0))),
            other => Err(serde::de::Error::custom(format!("not a boolean: {other}"))),
        }
    }
}

/// A timestamp as the engines write it in JSON: RFC 3339 (PostgreSQL, and SQLite's text as
/// written through sqlx), or SQLite's `YYYY-MM-DD HH:MM:SS[.fff]` in UTC.
pub(crate) fn parse_time(text: &str) -> Result<chrono::DateTime<chrono::Utc>, Error> {
    use chrono::{DateTime, NaiveDateTime, Utc};
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Ok(t) = DateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f%:z") {
        return Ok(t.with_timezone(&Utc));
    }
    ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())
        .map(|t| t.and_utc())
        .ok_or_else(|| Error::internal_reason(format!("unreadable timestamp {text:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_read_in_every_form_the_engines_write() {
        let want = "2026-11-02T05:06:01.626Z";
        for text in [
            "2026-11-02T05:06:01.626+00:00",
            "2026-11-02T06:06:01.626+01:00",
            "2026-11-02 05:06:01.626+00:00",
            "2026-11-02 05:06:01.626",
            "2026-11-02T05:06:01.626",
        ] {
            let t = parse_time(text).unwrap();
            assert_eq!(tidings_domain::format_timestamp(t), want, "{text}");
        }
        assert!(parse_time("yesterday").is_err());
    }

    #[test]
    fn flags_read_as_either_engine_writes_them() {
        let flags: Vec<Flag> = serde_json::from_str("[true, false, 1, 0]").unwrap();
        let flags: Vec<bool> = flags.into_iter().map(|f| f.0).collect();
        assert_eq!(flags, [true, false, true, false]);
        assert!(serde_json::from_str::<Flag>("\"yes\"").is_err());
    }
}
