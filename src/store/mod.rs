//! The SQLite store (through sqlx): opening with WAL, busy timeout and foreign keys, the embedded
//! migrations, and every query. The only room with SQL in it. Queries bind parameters as `$1, $2`
//! in ascending order, which SQLite and PostgreSQL both read.

mod bench;
pub mod chunk;
mod folded;
mod import;
pub mod logs;
mod models;
pub mod postgres;
mod runs;
mod series;
mod served;

pub use bench::StoredBench;
pub use models::ModelVersionRow;
pub use runs::{PairTable, Parts, RunOrder};
pub use series::{IngestBatch, IngestState};
pub use served::{ExperimentRow, ParamConflict};

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlSafeStr, SqlitePool};

use crate::domain::{NewRun, Run, RunRecord, RunStatus, Series, SeriesKind, SeriesSummary};
use crate::error::UserError;

/// How long a writer waits for another process's write to finish before giving up.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

fn migrator() -> Migrator {
    Migrator::with_migrations(vec![
        migration(1, "init", include_str!("migrations/0001_init.sql")),
        migration(
            2,
            "bench history",
            include_str!("migrations/0002_bench_history.sql"),
        ),
        migration(
            3,
            "bench conditions",
            include_str!("migrations/0003_bench_conditions.sql"),
        ),
        migration(
            4,
            "reliability",
            include_str!("migrations/0004_reliability.sql"),
        ),
        migration(5, "keys", include_str!("migrations/0005_keys.sql")),
        migration(
            6,
            "heartbeat",
            include_str!("migrations/0006_heartbeat.sql"),
        ),
        migration(7, "logs", include_str!("migrations/0007_logs.sql")),
    ])
}

/// One migration of either backend's list (they share versions and names; the DDL may differ).
pub(super) fn migration(version: i64, name: &str, sql: &'static str) -> Migration {
    Migration::new(
        version,
        name.to_string().into(),
        MigrationType::Simple,
        sql.into_sql_str(),
        false,
    )
}

#[derive(Clone, Debug)]
pub struct Store {
    pool: SqlitePool,
    path: PathBuf,
    read_only: bool,
}

impl Store {
    /// Open (creating if missing) the store at `path` and bring its schema up to date. A store in
    /// a workspace that cannot be written (a read-only filesystem or folder) is opened read-only
    /// instead, so it can still be listed and shown.
    pub async fn open(path: &Path) -> Result<Store, UserError> {
        let fail = |what: &str, e: &dyn std::fmt::Display| open_error(path, what, &e.to_string());
        // One process migrates at a time: a file lock beside the database.
        let lock_path = path.with_extension("db.lock");
        let lock = match std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
        {
            Ok(lock) => lock,
            Err(e) if cannot_write(&e) && path.is_file() => {
                return Self::open_read_only(path).await;
            }
            Err(e) => return Err(fail("cannot create the store's lock file", &e)),
        };
        lock.lock().map_err(|e| fail("cannot lock the store", &e))?;

        let opts = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .after_connect(|conn, _| Box::pin(folded::add_functions(conn)))
            .before_acquire(|conn, _| {
                Box::pin(async move {
                    // A transaction dropped after an error (a full disk at COMMIT) queues its
                    // rollback; if that rollback failed too, the connection would stay inside a
                    // transaction and every later BEGIN on it would fail. Such a connection is
                    // closed, and the pool opens a fresh one.
                    use sqlx::Connection;
                    if conn.is_in_transaction() {
                        conn.ping().await?;
                    }
                    Ok(!conn.is_in_transaction())
                })
            })
            .connect_with(opts)
            .await
            .map_err(|e| fail("cannot open the store", &e))?;
        migrator()
            .run(&pool)
            .await
            .map_err(|e| fail("cannot bring the store's schema up to date", &e))?;
        drop(lock);
        Ok(Store {
            pool,
            path: path.to_path_buf(),
            read_only: false,
        })
    }

    /// Open an existing store only to read it: no lock file, no migration (a store whose schema
    /// is behind this gantry's is refused with what to do), and no write.
    async fn open_read_only(path: &Path) -> Result<Store, UserError> {
        let fail = |what: &str, e: &dyn std::fmt::Display| open_error(path, what, &e.to_string());
        let connect = |immutable: bool| {
            let opts = SqliteConnectOptions::new()
                .filename(path)
                .read_only(true)
                .immutable(immutable)
                .busy_timeout(BUSY_TIMEOUT);
            SqlitePoolOptions::new()
                .max_connections(4)
                .after_connect(|conn, _| Box::pin(folded::add_functions(conn)))
                .connect_with(opts)
        };
        let schema = |pool: SqlitePool| async move {
            let v: Option<i64> = sqlx::query("SELECT MAX(version) FROM _sqlx_migrations")
                .fetch_one(&pool)
                .await?
                .get(0);
            Ok::<_, sqlx::Error>((pool, v.unwrap_or(0)))
        };
        // A WAL database on a read-only filesystem cannot make its shared-memory file; opened
        // as immutable it is read as it is on disk (nobody can write it there either).
        let (pool, version) = match connect(false).await {
            Ok(pool) => match schema(pool).await {
                Ok(r) => r,
                Err(_) => schema(
                    connect(true)
                        .await
                        .map_err(|e| fail("cannot open the store", &e))?,
                )
                .await
                .map_err(|e| fail("cannot read the store", &e))?,
            },
            Err(_) => schema(
                connect(true)
                    .await
                    .map_err(|e| fail("cannot open the store", &e))?,
            )
            .await
            .map_err(|e| fail("cannot read the store", &e))?,
        };
        let want = migrator().iter().map(|m| m.version).max().unwrap_or(0);
        if version < want {
            return Err(UserError::new(format!(
                "the store at {} needs a schema upgrade, and its workspace cannot be written",
                path.display()
            ))
            .hint(
                "run any gantry command once where the workspace is writable, then read it here",
            ));
        }
        Ok(Store {
            pool,
            path: path.to_path_buf(),
            read_only: true,
        })
    }

    /// The SQLite library's version, e.g. `3.51.3`.
    pub async fn sqlite_version(&self) -> Result<String> {
        Ok(sqlx::query_scalar("SELECT sqlite_version()")
            .fetch_one(&self.pool)
            .await?)
    }

    /// The schema version: the newest migration applied.
    pub async fn schema_version(&self) -> Result<i64> {
        let v: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations")
            .fetch_one(&self.pool)
            .await?;
        Ok(v.unwrap_or(0))
    }

    /// Whether this store was opened only to read (its workspace cannot be written).
    pub fn read_only(&self) -> bool {
        self.read_only
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    async fn write_tx(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>> {
        // IMMEDIATE takes the write lock up front, so the busy timeout applies; a deferred
        // transaction that later upgrades fails at once with "database is locked".
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }
}

/// Turn an open failure into what a person can act on.
/// An error that says the place cannot be written (rather than that something is wrong).
fn cannot_write(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::PermissionDenied
        || e.kind() == std::io::ErrorKind::ReadOnlyFilesystem
}

fn open_error(path: &Path, what: &str, cause: &str) -> UserError {
    let p = path.display();
    let lower = cause.to_ascii_lowercase();
    let hint = if lower.contains("not a database") || lower.contains("malformed") {
        format!(
            "the file is not a SQLite database or is damaged; move it aside (mv {p} {p}.bad) and \
             run the command again to start an empty store, or restore it from a backup"
        )
    } else if lower.contains("readonly")
        || lower.contains("read-only")
        || lower.contains("read only")
    {
        "the workspace is on a read-only filesystem or lacks write permission; use a writable \
         --workspace DIR"
            .to_string()
    } else if lower.contains("previously applied but is missing") || lower.contains("newer") {
        "this store was written by a newer gantry; upgrade gantry to use it".to_string()
    } else {
        format!("check that {p} and its directory are readable and writable")
    };
    UserError::new(format!("{what} at {p}"))
        .cause(cause)
        .hint(hint)
}
