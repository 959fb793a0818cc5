//! The SQLite store (through sqlx): opening with WAL, busy timeout and foreign keys, the embedded
//! migrations, and every query. The only room with SQL in it. Queries bind parameters as `$1, $2`
//! in ascending order, which SQLite and PostgreSQL both read.

mod bench;
pub mod chunk;
mod served;

pub use bench::StoredBench;
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
        Migration::new(
            1,
            "init".into(),
            MigrationType::Simple,
            include_str!("migrations/0001_init.sql").into_sql_str(),
            false,
        ),
        Migration::new(
            2,
            "bench history".into(),
            MigrationType::Simple,
            include_str!("migrations/0002_bench_history.sql").into_sql_str(),
            false,
        ),
        Migration::new(
            3,
            "bench conditions".into(),
            MigrationType::Simple,
            include_str!("migrations/0003_bench_conditions.sql").into_sql_str(),
            false,
        ),
        Migration::new(
            4,
            "reliability".into(),
            MigrationType::Simple,
            include_str!("migrations/0004_reliability.sql").into_sql_str(),
            false,
        ),
    ])
}

/// How far one metrics file of a run has been stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IngestState {
    pub byte_offset: i64,
    pub line_count: i64,
    pub malformed: i64,
    /// How often the file was found rewritten in place and read again from its start.
    pub rewrites: i64,
    /// Lines read again from the start of a rewritten file (they had been read once before).
    pub reread: i64,
}

/// What one ingest step stores: points per series, the file position after them, and the
/// malformed lines to remember (line number, reason).
#[derive(Debug, Default)]
pub struct IngestBatch {
    /// Where the source stood when this batch was read.
    pub from_offset: i64,
    pub series: Vec<(SeriesKind, String, Series)>,
    pub state: IngestState,
    pub malformed: Vec<(i64, String)>,
    /// The file's first bytes as read (at most 256), to tell a rewrite from an append.
    pub head: Vec<u8>,
}

/// A registered model version, as the store indexes it.
#[derive(Debug, Clone, Default)]
pub struct ModelVersionRow {
    pub model: String,
    pub version: i64,
    pub commit: String,
    pub run_id: Option<String>,
    pub author: String,
    pub notes: String,
    pub total_bytes: i64,
}

#[derive(Debug, Clone, Copy)]
pub enum PairTable {
    Params,
    Tags,
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

    /// The id of experiment `name`, created when missing.
    pub async fn experiment_id(&self, name: &str) -> Result<String> {
        let mut tx = self.write_tx().await?;
        let id = experiment_id_tx(&mut tx, name).await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Record a new run with status `running`.
    pub async fn create_run(&self, new: &NewRun) -> Result<Run> {
        let id = if new.id.is_empty() {
            crate::domain::new_run_id()
        } else {
            new.id.clone()
        };
        let command = serde_json::to_string(&new.command)?;
        let env = serde_json::to_string(&new.env)?;
        let gpus = serde_json::to_string(&new.gpus)?;
        let mut tx = self.write_tx().await?;
        let exp = experiment_id_tx(&mut tx, &new.experiment).await?;
        sqlx::query(
            "INSERT INTO runs (id, experiment_id, name, status, started_ms, host, user_name, pid, \
             command, cwd, git_commit, git_branch, git_dirty, notes, run_dir, env, gpus) \
             VALUES ($1, $2, $3, 'running', $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
        )
        .bind(&id)
        .bind(&exp)
        .bind(&new.name)
        .bind(new.started_ms)
        .bind(&new.host)
        .bind(&new.user)
        .bind(new.pid)
        .bind(&command)
        .bind(&new.cwd)
        .bind(&new.git_commit)
        .bind(&new.git_branch)
        .bind(new.git_dirty)
        .bind(&new.notes)
        .bind(&new.run_dir)
        .bind(&env)
        .bind(&gpus)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.run(&id).await
    }

    /// Record the process that runs the command: its pid and start time (clock ticks).
    pub async fn set_pid(&self, id: &str, pid: i64, pid_start: Option<i64>) -> Result<()> {
        let mut tx = self.write_tx().await?;
        sqlx::query("UPDATE runs SET pid = $1, pid_start = $2 WHERE id = $3")
            .bind(pid)
            .bind(pid_start)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// How many runs an experiment has; used to name new runs.
    pub async fn count_runs_in(&self, experiment: &str) -> Result<i64> {
        let row = sqlx::query(
            "SELECT COUNT(*) FROM runs r JOIN experiments e ON e.id = r.experiment_id WHERE e.name = $1",
        )
        .bind(experiment)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.get(0))
    }

    /// Record the `gantry run` process that supervises a run (this process).
    pub async fn set_supervisor(&self, id: &str, pid: i64, start: Option<i64>) -> Result<()> {
        let mut tx = self.write_tx().await?;
        sqlx::query("UPDATE runs SET supervisor_pid = $1, supervisor_start = $2 WHERE id = $3")
            .bind(pid)
            .bind(start)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The supervising process of a run: (pid, start time in clock ticks).
    pub async fn supervisor(&self, id: &str) -> Result<Option<(i64, Option<i64>)>> {
        let row = sqlx::query("SELECT supervisor_pid, supervisor_start FROM runs WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.and_then(|r| Some((r.get::<Option<i64>, _>(0)?, r.get(1)))))
    }

    /// Record how a run ended, as the process that ran it knows it: this replaces `running`, and a
    /// `crashed` guessed by another command, never an end already recorded. Returns whether it did.
    pub async fn finish_run(
        &self,
        id: &str,
        status: RunStatus,
        exit_code: Option<i32>,
        ended_ms: i64,
    ) -> Result<bool> {
        self.end_run(
            "UPDATE runs SET status = $1, exit_code = $2, ended_ms = $3 \
             WHERE id = $4 AND status IN ('running', 'crashed')",
            id,
            status,
            exit_code,
            ended_ms,
        )
        .await
    }

    /// Mark a run crashed, only if it is still `running` (compare-and-set: an end its supervisor
    /// recorded meanwhile stays). Returns whether it did.
    pub async fn mark_crashed(&self, id: &str, ended_ms: i64) -> Result<bool> {
        self.end_run(
            "UPDATE runs SET status = $1, exit_code = $2, ended_ms = $3 \
             WHERE id = $4 AND status = 'running'",
            id,
            RunStatus::Crashed,
            None,
            ended_ms,
        )
        .await
    }

    async fn end_run(
        &self,
        sql: &'static str,
        id: &str,
        status: RunStatus,
        exit_code: Option<i32>,
        ended_ms: i64,
    ) -> Result<bool> {
        let mut tx = self.write_tx().await?;
        let r = sqlx::query(sql)
            .bind(status.as_str())
            .bind(exit_code)
            .bind(ended_ms)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(r.rows_affected() > 0)
    }

    pub async fn set_params(&self, run_id: &str, params: &[(String, String)]) -> Result<()> {
        self.set_pairs(
            "INSERT INTO params (run_id, key, value) VALUES ($1, $2, $3) \
                        ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value",
            run_id,
            params,
        )
        .await
    }

    pub async fn set_tags(&self, run_id: &str, tags: &[(String, String)]) -> Result<()> {
        self.set_pairs(
            "INSERT INTO tags (run_id, key, value) VALUES ($1, $2, $3) \
                        ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value",
            run_id,
            tags,
        )
        .await
    }

    async fn set_pairs(
        &self,
        sql: &'static str,
        run_id: &str,
        pairs: &[(String, String)],
    ) -> Result<()> {
        let mut tx = self.write_tx().await?;
        for (k, v) in pairs {
            sqlx::query(sql)
                .bind(run_id)
                .bind(k)
                .bind(v)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn params(&self, run_id: &str) -> Result<Vec<(String, String)>> {
        self.pairs(
            "SELECT key, value FROM params WHERE run_id = $1 ORDER BY key",
            run_id,
        )
        .await
    }

    pub async fn tags(&self, run_id: &str) -> Result<Vec<(String, String)>> {
        self.pairs(
            "SELECT key, value FROM tags WHERE run_id = $1 ORDER BY key",
            run_id,
        )
        .await
    }

    async fn pairs(&self, sql: &'static str, run_id: &str) -> Result<Vec<(String, String)>> {
        let rows = sqlx::query(sql).bind(run_id).fetch_all(&self.pool).await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    /// Append points to several series of one run in one transaction. Points are cut into chunks
    /// of at most `chunk::CHUNK_POINTS`.
    pub async fn append(&self, run_id: &str, batch: &[(SeriesKind, &str, &Series)]) -> Result<()> {
        let mut tx = self.write_tx().await?;
        append_tx(&mut tx, run_id, batch).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Store one batch read from a run's metrics file: its points, how far the file was read, and
    /// the lines it rejected, all in one transaction, so a crash never stores a line twice. The
    /// batch is stored only if the source still stands at `batch.from_offset`; otherwise another
    /// reader got there first, nothing is written, and this returns false.
    pub async fn ingest(&self, run_id: &str, source: &str, batch: &IngestBatch) -> Result<bool> {
        let mut tx = self.write_tx().await?;
        let now: i64 =
            sqlx::query("SELECT byte_offset FROM ingest_sources WHERE run_id = $1 AND source = $2")
                .bind(run_id)
                .bind(source)
                .fetch_optional(&mut *tx)
                .await?
                .map_or(0, |r| r.get(0));
        if now != batch.from_offset {
            tx.rollback().await?;
            return Ok(false);
        }
        let refs: Vec<(SeriesKind, &str, &Series)> = batch
            .series
            .iter()
            .map(|(k, key, s)| (*k, key.as_str(), s))
            .collect();
        append_tx(&mut tx, run_id, &refs).await?;
        sqlx::query(
            "INSERT INTO ingest_sources (run_id, source, byte_offset, line_count, malformed, \
             head, rewrites, reread) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (run_id, source) DO UPDATE SET \
             byte_offset = excluded.byte_offset, line_count = excluded.line_count, \
             malformed = excluded.malformed, head = excluded.head, \
             rewrites = excluded.rewrites, reread = excluded.reread",
        )
        .bind(run_id)
        .bind(source)
        .bind(batch.state.byte_offset)
        .bind(batch.state.line_count)
        .bind(batch.state.malformed)
        .bind(&batch.head)
        .bind(batch.state.rewrites)
        .bind(batch.state.reread)
        .execute(&mut *tx)
        .await?;
        for (line_no, reason) in &batch.malformed {
            sqlx::query(
                "INSERT INTO malformed_lines (run_id, source, line_no, reason) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (run_id, source, line_no) DO NOTHING",
            )
            .bind(run_id)
            .bind(source)
            .bind(line_no)
            .bind(reason)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// How far a run's metrics file has been stored, and the file's first bytes as read.
    pub async fn ingest_state(&self, run_id: &str, source: &str) -> Result<(IngestState, Vec<u8>)> {
        let row = sqlx::query(
            "SELECT byte_offset, line_count, malformed, rewrites, reread, head FROM ingest_sources \
             WHERE run_id = $1 AND source = $2",
        )
        .bind(run_id)
        .bind(source)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map_or_else(Default::default, |r| {
            (
                IngestState {
                    byte_offset: r.get(0),
                    line_count: r.get(1),
                    malformed: r.get(2),
                    rewrites: r.get(3),
                    reread: r.get(4),
                },
                r.get::<Option<Vec<u8>>, _>(5).unwrap_or_default(),
            )
        }))
    }

    /// The metrics files of a run found rewritten in place: (source, rewrites, lines read again).
    pub async fn rewrites(&self, run_id: &str) -> Result<Vec<(String, i64, i64)>> {
        let rows = sqlx::query(
            "SELECT source, rewrites, reread FROM ingest_sources \
             WHERE run_id = $1 AND rewrites > 0 ORDER BY source",
        )
        .bind(run_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect())
    }

    /// The first malformed lines of a run, per source: (source, line, reason), and the total.
    pub async fn malformed(&self, run_id: &str) -> Result<(Vec<(String, i64, String)>, i64)> {
        let rows = sqlx::query(
            "SELECT source, line_no, reason FROM malformed_lines WHERE run_id = $1 ORDER BY source, line_no",
        )
        .bind(run_id)
        .fetch_all(&self.pool)
        .await?;
        let total: i64 =
            sqlx::query("SELECT COALESCE(SUM(malformed), 0) FROM ingest_sources WHERE run_id = $1")
                .bind(run_id)
                .fetch_one(&self.pool)
                .await?
                .get(0);
        Ok((
            rows.iter()
                .map(|r| (r.get(0), r.get(1), r.get(2)))
                .collect(),
            total,
        ))
    }

    /// The last step stored for each metric of a run (to continue auto-incremented steps).
    pub async fn last_steps(&self, run_id: &str) -> Result<Vec<(String, i64)>> {
        let rows = sqlx::query(
            "SELECT key, last_step FROM series WHERE run_id = $1 AND kind = 'metric' AND last_step IS NOT NULL",
        )
        .bind(run_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    /// Summaries (count, last, min, max) of every series of the given kind, for all runs at once.
    pub async fn series_summaries(&self, kind: SeriesKind) -> Result<Vec<(String, SeriesSummary)>> {
        let rows = sqlx::query(
            "SELECT run_id, key, n_points, last_step, last_value, min_value, max_value FROM series \
             WHERE kind = $1 ORDER BY run_id, key",
        )
        .bind(kind.as_str())
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| {
                (
                    r.get(0),
                    SeriesSummary {
                        key: r.get(1),
                        n_points: r.get(2),
                        last_step: r.get(3),
                        last: last_value(r.get(2), r.get(4)),
                        min: r.get(5),
                        max: r.get(6),
                    },
                )
            })
            .collect())
    }

    /// Every run with its params, tags and metric summaries, newest first: four queries in all.
    pub async fn run_records(&self) -> Result<Vec<RunRecord>> {
        let runs = self.runs().await?;
        let mut by_id: std::collections::HashMap<String, RunRecord> = runs
            .iter()
            .map(|r| {
                (
                    r.id.clone(),
                    RunRecord {
                        run: r.clone(),
                        params: Default::default(),
                        tags: Default::default(),
                        metrics: Default::default(),
                        malformed: 0,
                        models: Vec::new(),
                    },
                )
            })
            .collect();
        for (id, k, v) in self.all_pairs(PairTable::Params).await? {
            if let Some(rec) = by_id.get_mut(&id) {
                rec.params.insert(k, v);
            }
        }
        for (id, k, v) in self.all_pairs(PairTable::Tags).await? {
            if let Some(rec) = by_id.get_mut(&id) {
                rec.tags.insert(k, v);
            }
        }
        for (id, s) in self.series_summaries(SeriesKind::Metric).await? {
            if let Some(rec) = by_id.get_mut(&id) {
                rec.metrics.insert(s.key.clone(), s);
            }
        }
        let bad = sqlx::query("SELECT run_id, SUM(malformed) FROM ingest_sources GROUP BY run_id")
            .fetch_all(&self.pool)
            .await?;
        for row in bad {
            if let Some(rec) = by_id.get_mut(row.get::<&str, _>(0)) {
                rec.malformed = row.get(1);
            }
        }
        let made = sqlx::query("SELECT run_id, model, version FROM model_versions WHERE run_id IS NOT NULL ORDER BY model, version")
            .fetch_all(&self.pool)
            .await?;
        for row in made {
            if let Some(rec) = by_id.get_mut(row.get::<&str, _>(0)) {
                rec.models.push((row.get(1), row.get(2)));
            }
        }
        Ok(runs.iter().filter_map(|r| by_id.remove(&r.id)).collect())
    }

    /// One run's record, with its system series summaries too.
    pub async fn run_record(&self, id: &str) -> Result<(RunRecord, Vec<SeriesSummary>)> {
        let run = self.run(id).await?;
        let params = self.params(id).await?.into_iter().collect();
        let tags = self.tags(id).await?.into_iter().collect();
        let mut metrics = std::collections::BTreeMap::new();
        let mut system = Vec::new();
        for kind in [SeriesKind::Metric, SeriesKind::System] {
            let rows = sqlx::query(
                "SELECT key, n_points, last_step, last_value, min_value, max_value FROM series \
                 WHERE run_id = $1 AND kind = $2 ORDER BY key",
            )
            .bind(id)
            .bind(kind.as_str())
            .fetch_all(&self.pool)
            .await?;
            for r in rows {
                let s = SeriesSummary {
                    key: r.get(0),
                    n_points: r.get(1),
                    last_step: r.get(2),
                    last: last_value(r.get(1), r.get(3)),
                    min: r.get(4),
                    max: r.get(5),
                };
                match kind {
                    SeriesKind::Metric => {
                        metrics.insert(s.key.clone(), s);
                    }
                    SeriesKind::System => system.push(s),
                }
            }
        }
        let malformed = self.malformed(id).await?.1;
        let models = self.models_of_run(id).await?;
        Ok((
            RunRecord {
                run,
                params,
                tags,
                metrics,
                malformed,
                models,
            },
            system,
        ))
    }

    /// Store a run read from another tool, creating it or updating it in place: its record, params
    /// and tags are upserted and its metric series replaced, all in one transaction. Returns true
    /// when the run is new.
    pub async fn import_run(&self, run: &crate::domain::ImportedRun) -> Result<bool> {
        let mut tx = self.write_tx().await?;
        let exp = experiment_id_tx(&mut tx, &run.experiment).await?;
        let existed = sqlx::query("SELECT 1 FROM runs WHERE id = $1")
            .bind(&run.id)
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
        let status = run.status.unwrap_or(if run.ended_ms.is_some() {
            RunStatus::Finished
        } else {
            RunStatus::Running
        });
        sqlx::query(
            "INSERT INTO runs (id, experiment_id, name, status, started_ms, ended_ms, host, user_name, command, cwd, \
             git_commit, git_branch) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, '', $10, $11) \
             ON CONFLICT (id) DO UPDATE SET experiment_id = excluded.experiment_id, name = excluded.name, \
             status = excluded.status, started_ms = excluded.started_ms, ended_ms = excluded.ended_ms, \
             host = excluded.host, user_name = excluded.user_name, command = excluded.command, \
             git_commit = excluded.git_commit, git_branch = excluded.git_branch",
        )
        .bind(&run.id)
        .bind(&exp)
        .bind(&run.name)
        .bind(status.as_str())
        .bind(run.started_ms)
        .bind(run.ended_ms)
        .bind(&run.host)
        .bind(&run.user)
        .bind(serde_json::to_string(&run.command)?)
        .bind(&run.git_commit)
        .bind(&run.git_branch)
        .execute(&mut *tx)
        .await?;
        for (sql, pairs) in [
            (
                "INSERT INTO params (run_id, key, value) VALUES ($1, $2, $3) ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value",
                &run.params,
            ),
            (
                "INSERT INTO tags (run_id, key, value) VALUES ($1, $2, $3) ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value",
                &run.tags,
            ),
        ] {
            for (k, v) in pairs {
                sqlx::query(sql)
                    .bind(&run.id)
                    .bind(k)
                    .bind(v)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        sqlx::query("DELETE FROM series WHERE run_id = $1 AND kind = 'metric'")
            .bind(&run.id)
            .execute(&mut *tx)
            .await?;
        let batch: Vec<(SeriesKind, &str, &Series)> = run
            .metrics
            .iter()
            .map(|(k, s)| (SeriesKind::Metric, k.as_str(), s))
            .collect();
        append_tx(&mut tx, &run.id, &batch).await?;
        tx.commit().await?;
        Ok(!existed)
    }

    /// Remember a registered model version (the registry in git is the truth; this row links runs
    /// to the versions made from them).
    pub async fn record_model_version(&self, v: &ModelVersionRow) -> Result<()> {
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO model_versions (model, version, commit_id, run_id, created_ms, author, notes, total_bytes) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (model, version) DO UPDATE SET \
             commit_id = excluded.commit_id, run_id = excluded.run_id, notes = excluded.notes",
        )
        .bind(&v.model)
        .bind(v.version)
        .bind(&v.commit)
        .bind(&v.run_id)
        .bind(crate::domain::now_ms())
        .bind(&v.author)
        .bind(&v.notes)
        .bind(v.total_bytes)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The model versions made from a run: (model, version).
    pub async fn models_of_run(&self, run_id: &str) -> Result<Vec<(String, i64)>> {
        let rows = sqlx::query(
            "SELECT model, version FROM model_versions WHERE run_id = $1 ORDER BY model, version",
        )
        .bind(run_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    /// Give a run a new name.
    pub async fn rename_run(&self, id: &str, name: &str) -> Result<()> {
        let mut tx = self.write_tx().await?;
        sqlx::query("UPDATE runs SET name = $1 WHERE id = $2")
            .bind(name)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Remove tags from a run.
    pub async fn delete_tags(&self, run_id: &str, keys: &[String]) -> Result<()> {
        let mut tx = self.write_tx().await?;
        for k in keys {
            sqlx::query("DELETE FROM tags WHERE run_id = $1 AND key = $2")
                .bind(run_id)
                .bind(k)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Every (run id, key, value) of params or tags, for all runs at once.
    pub async fn all_pairs(&self, table: PairTable) -> Result<Vec<(String, String, String)>> {
        let sql = match table {
            PairTable::Params => "SELECT run_id, key, value FROM params ORDER BY run_id, key",
            PairTable::Tags => "SELECT run_id, key, value FROM tags ORDER BY run_id, key",
        };
        let rows = sqlx::query(sql).fetch_all(&self.pool).await?;
        Ok(rows
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect())
    }

    /// Delete runs and everything of theirs in the store. Returns how many were deleted.
    pub async fn delete_runs(&self, ids: &[String]) -> Result<u64> {
        let mut tx = self.write_tx().await?;
        let mut n = 0;
        for id in ids {
            n += sqlx::query("DELETE FROM runs WHERE id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        }
        tx.commit().await?;
        Ok(n)
    }

    /// Rewrite a run's series whose points are spread over many small chunks (a live run appends a
    /// little every 250 ms) into full chunks, so loading them stays fast.
    pub async fn compact(&self, run_id: &str) -> Result<usize> {
        let rows =
            sqlx::query("SELECT id, kind, key, n_points, n_chunks FROM series WHERE run_id = $1")
                .bind(run_id)
                .fetch_all(&self.pool)
                .await?;
        let mut rewritten = 0;
        for r in rows {
            let (id, kind, key, n, chunks): (i64, String, String, i64, i64) =
                (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4));
            let full = (n as usize).div_ceil(chunk::CHUNK_POINTS).max(1) as i64;
            if chunks <= full + 1 {
                continue;
            }
            let kind = if kind == "system" {
                SeriesKind::System
            } else {
                SeriesKind::Metric
            };
            let series = self.load_series(run_id, kind, &key).await?;
            let mut tx = self.write_tx().await?;
            sqlx::query("DELETE FROM series_chunks WHERE series_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM series WHERE id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            append_tx(&mut tx, run_id, &[(kind, key.as_str(), &series)]).await?;
            tx.commit().await?;
            rewritten += 1;
        }
        Ok(rewritten)
    }

    /// All points of one series, in the order they were appended.
    pub async fn load_series(&self, run_id: &str, kind: SeriesKind, key: &str) -> Result<Series> {
        let head = sqlx::query(
            "SELECT id, n_points FROM series WHERE run_id = $1 AND kind = $2 AND key = $3",
        )
        .bind(run_id)
        .bind(kind.as_str())
        .bind(key)
        .fetch_optional(&self.pool)
        .await?;
        let Some(head) = head else {
            return Err(anyhow!(
                "run {run_id} has no {} series `{key}`",
                kind.as_str()
            ));
        };
        let id: i64 = head.get(0);
        let n: i64 = head.get(1);
        let mut series = Series::with_capacity(usize::try_from(n).unwrap_or(0));
        let rows = sqlx::query("SELECT data FROM series_chunks WHERE series_id = $1 ORDER BY seq")
            .bind(id)
            .fetch_all(&self.pool)
            .await?;
        for row in &rows {
            let data: &[u8] = row.try_get(0)?;
            chunk::decode(data, &mut series)
                .map_err(|e| anyhow!("series `{key}` of run {run_id} is damaged: {e}"))?;
        }
        Ok(series)
    }

    /// The keys of a run's series of one kind, sorted.
    pub async fn series_keys(&self, run_id: &str, kind: SeriesKind) -> Result<Vec<String>> {
        let rows =
            sqlx::query("SELECT key FROM series WHERE run_id = $1 AND kind = $2 ORDER BY key")
                .bind(run_id)
                .bind(kind.as_str())
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    pub async fn run(&self, id: &str) -> Result<Run> {
        let row = sqlx::query(RUN_SELECT_BY_ID)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| anyhow!("no run with id {id}"))?;
        run_from_row(&row)
    }

    /// Runs with one status, newest first.
    pub async fn runs_with_status(&self, status: RunStatus) -> Result<Vec<Run>> {
        let rows = sqlx::query(RUN_SELECT_BY_STATUS)
            .bind(status.as_str())
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(run_from_row).collect()
    }

    /// Every run, newest first.
    pub async fn runs(&self) -> Result<Vec<Run>> {
        let rows = sqlx::query(RUN_SELECT_ALL).fetch_all(&self.pool).await?;
        rows.iter().map(run_from_row).collect()
    }

    /// The run a person means: an exact id, else a unique name, else a unique id prefix.
    pub async fn resolve_run(&self, what: &str) -> Result<Run, UserError> {
        let db = |e: sqlx::Error| UserError::new("cannot read runs from the store").cause(e);
        let rows = |rows: Vec<sqlx::sqlite::SqliteRow>| -> Result<Vec<Run>, UserError> {
            rows.iter()
                .map(run_from_row)
                .collect::<Result<Vec<_>>>()
                .map_err(|e| UserError::new("cannot read runs from the store").cause(e))
        };
        let exact = rows(
            sqlx::query(RUN_SELECT_BY_ID)
                .bind(what)
                .fetch_all(&self.pool)
                .await
                .map_err(db)?,
        )?;
        if let Some(run) = exact.into_iter().next() {
            return Ok(run);
        }
        let named = rows(
            sqlx::query(RUN_SELECT_BY_NAME)
                .bind(what)
                .fetch_all(&self.pool)
                .await
                .map_err(db)?,
        )?;
        match named.len() {
            0 => {}
            1 => return Ok(named.into_iter().next().expect("one")),
            n => {
                return Err(UserError::new(format!("{n} runs are named `{what}`"))
                    .hint(format!("use an id instead: {}", list_ids(&named))));
            }
        }
        if !what.is_empty() && what.chars().all(|c| c.is_ascii_hexdigit()) {
            let like = format!("{}%", what.to_ascii_lowercase());
            let found = rows(
                sqlx::query(RUN_SELECT_BY_PREFIX)
                    .bind(&like)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db)?,
            )?;
            match found.len() {
                0 => {}
                1 => return Ok(found.into_iter().next().expect("one")),
                n => {
                    return Err(
                        UserError::new(format!("`{what}` is the start of {n} run ids"))
                            .hint(format!("give more of the id: {}", list_ids(&found))),
                    );
                }
            }
        }
        Err(
            UserError::new(format!("no run has the id or name `{what}`"))
                .hint("`gantry runs` lists the runs in this workspace"),
        )
    }

    /// Counts for quick summaries: (runs, series, points).
    pub async fn counts(&self) -> Result<(i64, i64, i64)> {
        let row = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM runs), (SELECT COUNT(*) FROM series), \
             (SELECT COALESCE(SUM(n_points), 0) FROM series)",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok((row.get(0), row.get(1), row.get(2)))
    }
}

/// The run columns `run_from_row` reads, followed by the rest of the statement.
macro_rules! run_select {
    ($tail:literal) => {
        concat!(
            "SELECT r.id, e.name, r.name, r.status, r.exit_code, r.started_ms, r.ended_ms, \
             r.host, r.user_name, r.pid, r.command, r.cwd, r.git_commit, r.git_branch, \
             r.git_dirty, r.notes, r.pid_start, r.run_dir, r.env, r.gpus \
             FROM runs r JOIN experiments e ON e.id = r.experiment_id ",
            $tail
        )
    };
}
const RUN_SELECT_ALL: &str = run_select!("ORDER BY r.started_ms DESC, r.id");
const RUN_SELECT_BY_ID: &str = run_select!("WHERE r.id = $1");
const RUN_SELECT_BY_STATUS: &str =
    run_select!("WHERE r.status = $1 ORDER BY r.started_ms DESC, r.id");
const RUN_SELECT_BY_PREFIX: &str =
    run_select!("WHERE r.id LIKE $1 ORDER BY r.started_ms DESC, r.id");
const RUN_SELECT_BY_NAME: &str = run_select!("WHERE r.name = $1 ORDER BY r.started_ms DESC, r.id");

fn run_from_row(r: &sqlx::sqlite::SqliteRow) -> Result<Run> {
    let status: String = r.get(3);
    let command: String = r.get(10);
    Ok(Run {
        id: r.get(0),
        experiment: r.get(1),
        name: r.get(2),
        status: RunStatus::from_str(&status).map_err(|e| anyhow!(e))?,
        exit_code: r.get(4),
        started_ms: r.get(5),
        ended_ms: r.get(6),
        host: r.get(7),
        user: r.get(8),
        pid: r.get(9),
        command: serde_json::from_str(&command).unwrap_or_else(|_| vec![command.clone()]),
        cwd: r.get(11),
        git_commit: r.get(12),
        git_branch: r.get(13),
        git_dirty: r.get(14),
        notes: r.get(15),
        pid_start: r.get(16),
        run_dir: r.get(17),
        env: serde_json::from_str(r.get::<&str, _>(18)).unwrap_or_default(),
        gpus: serde_json::from_str(r.get::<&str, _>(19)).unwrap_or_default(),
    })
}

async fn append_tx(
    tx: &mut sqlx::Transaction<'static, sqlx::Sqlite>,
    run_id: &str,
    batch: &[(SeriesKind, &str, &Series)],
) -> Result<()> {
    let mut buf = Vec::new();
    for (kind, key, series) in batch {
        if series.is_empty() {
            continue;
        }
        let n = series.len();
        let chunks = n.div_ceil(chunk::CHUNK_POINTS) as i64;
        let (mut lo, mut hi) = (None::<f64>, None::<f64>);
        for &v in series.values.iter().filter(|v| !v.is_nan()) {
            lo = Some(lo.map_or(v, |m| m.min(v)));
            hi = Some(hi.map_or(v, |m| m.max(v)));
        }
        // One statement creates or updates the series row with this batch's summary and reserves
        // its chunk numbers; RETURNING says where they start. CASE, not MIN()/MAX() of two values,
        // keeps it portable to PostgreSQL (which spells those LEAST/GREATEST).
        let row = sqlx::query(
            "INSERT INTO series (run_id, kind, key, n_points, n_chunks, last_step, last_value, min_value, max_value) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT (run_id, kind, key) DO UPDATE SET \
               n_points = series.n_points + excluded.n_points, \
               n_chunks = series.n_chunks + excluded.n_chunks, \
               last_step = excluded.last_step, \
               last_value = excluded.last_value, \
               min_value = CASE WHEN series.min_value IS NULL OR excluded.min_value < series.min_value \
                                THEN COALESCE(excluded.min_value, series.min_value) ELSE series.min_value END, \
               max_value = CASE WHEN series.max_value IS NULL OR excluded.max_value > series.max_value \
                                THEN COALESCE(excluded.max_value, series.max_value) ELSE series.max_value END \
             RETURNING id, n_chunks",
        )
        .bind(run_id)
        .bind(kind.as_str())
        .bind(*key)
        .bind(n as i64)
        .bind(chunks)
        .bind(series.steps[n - 1])
        .bind(series.values[n - 1])
        .bind(lo)
        .bind(hi)
        .fetch_one(&mut **tx)
        .await
        .with_context(|| format!("series {key} of run {run_id}"))?;
        let series_id: i64 = row.get(0);
        let first_seq: i64 = row.get::<i64, _>(1) - chunks;
        for (seq, start) in (first_seq..).zip((0..n).step_by(chunk::CHUNK_POINTS)) {
            let end = (start + chunk::CHUNK_POINTS).min(n);
            chunk::encode(series, start..end, &mut buf);
            sqlx::query(
                "INSERT INTO series_chunks (series_id, seq, first_step, last_step, n_points, data) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(series_id)
            .bind(seq)
            .bind(series.steps[start])
            .bind(series.steps[end - 1])
            .bind((end - start) as i64)
            .bind(&buf)
            .execute(&mut **tx)
            .await?;
        }
    }
    Ok(())
}

async fn experiment_id_tx(
    tx: &mut sqlx::Transaction<'static, sqlx::Sqlite>,
    name: &str,
) -> Result<String> {
    if let Some(row) = sqlx::query("SELECT id FROM experiments WHERE name = $1")
        .bind(name)
        .fetch_optional(&mut **tx)
        .await?
    {
        return Ok(row.get(0));
    }
    let id = uuid::Uuid::new_v4().simple().to_string();
    sqlx::query("INSERT INTO experiments (id, name, created_ms) VALUES ($1, $2, $3)")
        .bind(&id)
        .bind(name)
        .bind(crate::domain::now_ms())
        .execute(&mut **tx)
        .await?;
    Ok(id)
}

/// SQLite stores a NaN REAL as NULL: a series with points and no last value ended on NaN.
fn last_value(n_points: i64, stored: Option<f64>) -> Option<f64> {
    match stored {
        None if n_points > 0 => Some(f64::NAN),
        v => v,
    }
}

fn list_ids(runs: &[Run]) -> String {
    let mut s: Vec<String> = runs
        .iter()
        .take(5)
        .map(|r| format!("{} ({})", r.short_id(), r.name))
        .collect();
    if runs.len() > 5 {
        s.push("…".into());
    }
    s.join(", ")
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
