//! The store (through sqlx): the embedded SQLite file by default (WAL, busy timeout, foreign
//! keys), or a PostgreSQL team store; the migrations of each, and every query. The only room with
//! SQL in it. One set of queries (sql/*.rs) serves both: lite.rs and pg.rs each compile those
//! files for their own database type, and `Store` hands each call to the backend it opened.
//! Queries bind parameters as `$1, $2` in ascending order, which SQLite and PostgreSQL both read.

pub mod chunk;
pub mod copy;
mod folded;
mod lite;
mod pg;
pub mod postgres;
mod types;
mod where_sql;

pub use crate::domain::bench::StoredBench;
pub use types::{
    Cell, Col, ExperimentRow, IngestBatch, IngestState, LOG_CHUNK_BYTES, ModelVersionRow,
    PageOrder, PairTable, ParamConflict, Parts, RunOrder, RunsBatch, Table,
};

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlSafeStr, SqlitePool};

use crate::domain::bench::{BenchResult, DeviceInfo};
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
        migration(
            8,
            "chunk storage",
            include_str!("migrations/0008_chunk_storage.sql"),
        ),
        migration(9, "run gpus", include_str!("migrations/0009_run_gpus.sql")),
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
    db: Db,
    place: String,
    read_only: bool,
}

/// The backend a store was opened on.
#[derive(Clone, Debug)]
enum Db {
    Lite(lite::Backend),
    Pg(pg::Backend),
}

/// Each query of sql/*.rs, handed to the backend the store was opened on.
macro_rules! delegate {
    ($(fn $name:ident(&self $(, $arg:ident: $ty:ty)*) -> $ret:ty;)*) => {
        impl Store {
            $(pub async fn $name(&self $(, $arg: $ty)*) -> $ret {
                match &self.db {
                    Db::Lite(b) => b.$name($($arg),*).await,
                    Db::Pg(b) => b.$name($($arg),*).await,
                }
            })*
        }
    };
}

delegate! {
    // sql/bench.rs
    fn record_bench(&self, started_ms: i64, host: &str, device: &DeviceInfo, r: &BenchResult) -> Result<String>;
    fn bench_history(&self, device_uuid: Option<&str>) -> Result<Vec<StoredBench>>;
    // sql/copy.rs
    fn rows(&self, t: &Table, filter: &str, bind: Option<&str>) -> Result<Vec<Vec<Cell>>>;
    fn put_rows(&self, t: &Table, replace: Option<(&str, &str)>, rows: &[Vec<Cell>]) -> Result<()>;
    fn rows_in(&self, t: &Table, column: &str, values: &[String]) -> Result<Vec<Vec<Cell>>>;
    fn series_of(&self, run_ids: &[String], series: &Table, chunks: &Table) -> Result<Vec<(Vec<Cell>, Vec<Vec<Cell>>)>>;
    fn put_runs(&self, batch: &RunsBatch<'_>) -> Result<()>;
    // sql/import.rs
    fn import_run(&self, run: &crate::domain::ImportedRun) -> Result<bool>;
    fn import_runs(&self, runs: &[crate::domain::ImportedRun]) -> Result<Vec<bool>>;
    // sql/logs.rs
    fn log_end(&self, run_id: &str) -> Result<i64>;
    fn append_log(&self, run_id: &str, from: i64, data: &[u8]) -> Result<bool>;
    fn log_from(&self, run_id: &str, from: i64, max: usize) -> Result<(Vec<u8>, i64)>;
    // sql/models.rs
    fn record_model_version(&self, v: &ModelVersionRow) -> Result<()>;
    fn models_of_run(&self, run_id: &str) -> Result<Vec<(String, i64)>>;
    // sql/runs.rs
    fn experiment_id(&self, name: &str) -> Result<String>;
    fn create_run(&self, new: &NewRun) -> Result<Run>;
    fn set_pid(&self, id: &str, pid: i64, pid_start: Option<i64>) -> Result<()>;
    fn count_runs_in(&self, experiment: &str) -> Result<i64>;
    fn set_supervisor(&self, id: &str, pid: i64, start: Option<i64>) -> Result<()>;
    fn heartbeat(&self, id: &str, now_ms: i64) -> Result<()>;
    fn add_run_gpus(&self, id: &str, uuids: &[String], now_ms: i64) -> Result<()>;
    fn run_gpus(&self, id: &str) -> Result<Vec<String>>;
    fn running_gpus(&self) -> Result<Vec<(String, String)>>;
    fn supervisor(&self, id: &str) -> Result<Option<(i64, Option<i64>)>>;
    fn finish_run(&self, id: &str, status: RunStatus, exit_code: Option<i32>, ended_ms: i64) -> Result<bool>;
    fn mark_crashed(&self, id: &str, ended_ms: i64) -> Result<bool>;
    fn set_params(&self, run_id: &str, params: &[(String, String)]) -> Result<()>;
    fn set_tags(&self, run_id: &str, tags: &[(String, String)]) -> Result<()>;
    fn params(&self, run_id: &str) -> Result<Vec<(String, String)>>;
    fn tags(&self, run_id: &str) -> Result<Vec<(String, String)>>;
    fn run_records(&self) -> Result<Vec<RunRecord>>;
    fn run_records_with(&self, parts: Parts) -> Result<Vec<RunRecord>>;
    fn fill_records(&self, recs: &mut [RunRecord], parts: &Parts) -> Result<()>;
    fn run_record(&self, id: &str) -> Result<(RunRecord, Vec<SeriesSummary>)>;
    fn rename_run(&self, id: &str, name: &str) -> Result<()>;
    fn delete_tags(&self, run_id: &str, keys: &[String]) -> Result<()>;
    fn params_with_key(&self, key: &str) -> Result<Vec<(String, String, String)>>;
    fn all_pairs(&self, table: PairTable) -> Result<Vec<(String, String, String)>>;
    fn tags_with_key(&self, key: &str) -> Result<Vec<(String, String, String)>>;
    fn table_tags(&self) -> Result<Vec<(String, String, String)>>;
    fn delete_runs(&self, ids: &[String]) -> Result<u64>;
    fn run(&self, id: &str) -> Result<Run>;
    fn runs_with_status(&self, status: RunStatus) -> Result<Vec<Run>>;
    fn runs_listing(&self) -> Result<Vec<Run>>;
    fn runs(&self) -> Result<Vec<Run>>;
    fn resolve_run(&self, what: &str) -> Result<Run, UserError>;
    fn counts(&self) -> Result<(i64, i64, i64)>;
    // sql/series.rs
    fn append(&self, run_id: &str, batch: &[(SeriesKind, &str, &Series)]) -> Result<()>;
    fn ingest(&self, run_id: &str, source: &str, batch: &IngestBatch) -> Result<bool>;
    fn ingest_state(&self, run_id: &str, source: &str) -> Result<(IngestState, Vec<u8>)>;
    fn rewrites(&self, run_id: &str) -> Result<Vec<(String, i64, i64)>>;
    fn malformed(&self, run_id: &str) -> Result<(Vec<(String, i64, String)>, i64)>;
    fn last_steps(&self, run_id: &str) -> Result<Vec<(String, i64)>>;
    fn column_keys(&self) -> Result<(Vec<String>, Vec<String>)>;
    fn metric_counts(&self) -> Result<Vec<(String, i64)>>;
    fn series_summaries(&self, kind: SeriesKind) -> Result<Vec<(String, SeriesSummary)>>;
    fn metric_lasts_with_key(&self, key: &str) -> Result<Vec<(String, SeriesSummary)>>;
    fn compact(&self, run_id: &str) -> Result<usize>;
    fn load_series(&self, run_id: &str, kind: SeriesKind, key: &str) -> Result<Series>;
    fn series_keys(&self, run_id: &str, kind: SeriesKind) -> Result<Vec<String>>;
    // sql/served.rs
    fn experiments(&self) -> Result<Vec<ExperimentRow>>;
    fn experiment_by_id(&self, id: &str) -> Result<Option<ExperimentRow>>;
    fn experiment_by_name(&self, name: &str) -> Result<Option<ExperimentRow>>;
    fn create_experiment(&self, name: &str) -> Result<Option<ExperimentRow>>;
    fn has_run(&self, id: &str) -> Result<bool>;
    fn count_running(&self) -> Result<i64>;
    fn add_params(&self, run_id: &str, params: &[(String, String)]) -> Result<Option<ParamConflict>>;
    fn update_run(&self, id: &str, status: Option<RunStatus>, ended_ms: Option<i64>, name: Option<&str>) -> Result<()>;
    fn merge_tails(&self, run_id: &str) -> Result<usize>;
}

impl Store {
    /// A page of runs picked, ordered and cut by the database, with how many match in all; None
    /// where this store can't do it in SQL, and the caller filters and sorts run records itself.
    /// SQLite does every filter and every order but a param's (`where_sql`); PostgreSQL orders a
    /// listing without a filter by a run column.
    pub async fn runs_page(
        &self,
        filter: Option<&crate::filter::Expr>,
        order: &PageOrder,
        desc: bool,
        limit: usize,
        now_ms: i64,
    ) -> Result<Option<(Vec<Run>, i64)>> {
        match (&self.db, filter, order) {
            (Db::Lite(b), ..) => Ok(Some(
                b.runs_where(filter, order, desc, limit, now_ms).await?,
            )),
            (Db::Pg(b), None, PageOrder::Column(c)) if limit > 0 => {
                Ok(Some(b.runs_page(*c, desc, limit).await?))
            }
            _ => Ok(None),
        }
    }

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
            .after_connect(|conn, _| Box::pin(lite::add_functions(conn)))
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
            db: Db::Lite(lite::Backend { pool }),
            place: path.display().to_string(),
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
                .after_connect(|conn, _| Box::pin(lite::add_functions(conn)))
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
            db: Db::Lite(lite::Backend { pool }),
            place: path.display().to_string(),
            read_only: true,
        })
    }

    /// The database's version: the SQLite library's (`SQLite 3.51.3`) or the PostgreSQL server's
    /// (`PostgreSQL 15.14 (Debian …)`).
    pub async fn engine_version(&self) -> Result<String> {
        Ok(match &self.db {
            Db::Lite(b) => {
                let v: String = sqlx::query_scalar("SELECT sqlite_version()")
                    .fetch_one(&b.pool)
                    .await?;
                format!("SQLite {v}")
            }
            Db::Pg(b) => {
                let v: String = sqlx::query_scalar("SELECT current_setting('server_version')")
                    .fetch_one(&b.pool)
                    .await?;
                format!("PostgreSQL {v}")
            }
        })
    }

    /// The schema version: the newest migration applied.
    pub async fn schema_version(&self) -> Result<i64> {
        let q = "SELECT MAX(version) FROM _sqlx_migrations";
        let v: Option<i64> = match &self.db {
            Db::Lite(b) => sqlx::query_scalar(q).fetch_one(&b.pool).await?,
            Db::Pg(b) => sqlx::query_scalar(q).fetch_one(&b.pool).await?,
        };
        Ok(v.unwrap_or(0))
    }

    /// For a team store, a task that calls `on_change` after each commit by anyone, however
    /// far away (PostgreSQL's LISTEN/NOTIFY), until it returns false; None for a SQLite store,
    /// whose file is watched instead.
    pub async fn watch_changes(
        &self,
        on_change: impl Fn() -> bool + Send + 'static,
    ) -> Option<Result<tokio::task::JoinHandle<()>>> {
        match &self.db {
            Db::Lite(_) => None,
            Db::Pg(b) => Some(b.watch(on_change).await),
        }
    }

    /// Whether this is a PostgreSQL team store.
    pub fn is_team(&self) -> bool {
        matches!(self.db, Db::Pg(_))
    }

    /// Whether this store was opened only to read (its workspace cannot be written).
    pub fn read_only(&self) -> bool {
        self.read_only
    }

    /// Where the store is: the SQLite file's path, or `user@host:port/database`.
    pub fn place(&self) -> &str {
        &self.place
    }

    /// Connect to the PostgreSQL team store at `url` and bring its schema up to date.
    pub async fn open_team(url: &str) -> Result<Store, UserError> {
        Self::open_team_within(url, postgres::CONNECT_TIMEOUT).await
    }

    /// The same, giving up on a server that has not answered `within`.
    pub async fn open_team_within(url: &str, within: Duration) -> Result<Store, UserError> {
        let team = postgres::open(url, within).await?;
        Ok(Store {
            db: Db::Pg(pg::Backend { pool: team.pool }),
            place: team.place,
            read_only: false,
        })
    }

    pub async fn close(&self) {
        match &self.db {
            Db::Lite(b) => b.pool.close().await,
            Db::Pg(b) => b.pool.close().await,
        }
    }
}

/// Whether `e` is the database refusing this role a right (PostgreSQL's `42501`: a role that
/// may only read, asked to write).
pub fn refused_a_right(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<sqlx::Error>()
            .and_then(|s| s.as_database_error())
            .and_then(|d| d.code())
            .is_some_and(|code| code == "42501")
    })
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
