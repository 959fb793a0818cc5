//! The PostgreSQL backend: the query files under sql/ compiled for PostgreSQL (`DB`), the write
//! transaction, and listings folded into one JSON value (`json_agg`), with doubles passed exactly
//! as their bits (`float8send`). Connecting and migrating are in postgres.rs.

// The query files are compiled once per backend, on purpose: each time for its own `DB`.
#![allow(clippy::duplicate_mod)]

use super::*;

pub(super) type DB = sqlx::Postgres;
pub(super) type DbRow = sqlx::postgres::PgRow;

#[path = "sql/bench.rs"]
mod bench;
#[path = "sql/copy.rs"]
mod copy;
#[path = "sql/import.rs"]
mod import;
#[path = "sql/logs.rs"]
mod logs;
#[path = "sql/models.rs"]
mod models;
#[path = "sql/pairs.rs"]
mod pairs;
#[path = "sql/runs.rs"]
mod runs;
#[path = "sql/series.rs"]
mod series;
#[path = "sql/served.rs"]
mod served;

/// The store's queries on a PostgreSQL pool.
#[derive(Clone, Debug)]
pub struct Backend {
    pub(super) pool: sqlx::Pool<DB>,
}

/// The key of the advisory lock every write transaction takes (`gantry` in ASCII).
const WRITE_LOCK: i64 = 0x67616e747279;

/// The first key of the two-key advisory locks on single runs (`gant`; PostgreSQL keeps
/// two-key locks apart from one-key ones).
const RUN_LOCKS: i32 = 0x67616e74;

/// The channel each commit notifies.
const CHANGES: &str = "gantry_changes";

impl Backend {
    /// A write transaction that may touch any rows (an experiment, several runs, the models
    /// index), one at a time across every host, as SQLite's `BEGIN IMMEDIATE` is within one: it
    /// takes the store's advisory lock alone. Its commit notifies `CHANGES` (a rollback does
    /// not), which every workbench on the store listens to. Locks go at commit or rollback.
    pub(super) async fn write_tx(&self) -> Result<sqlx::Transaction<'static, DB>> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1), pg_notify($2, '')")
            .bind(WRITE_LOCK)
            .bind(CHANGES)
            .execute(&mut *tx)
            .await?;
        Ok(tx)
    }

    /// A write transaction on one run's rows (its points, offsets, output, end, tags): the
    /// queries read and then write them (a series' chunk count, a file's offset), so writers of
    /// one run go one at a time (an advisory lock on the run), while other runs' writers go on
    /// beside them. It shares the store's lock, so a `write_tx` waits for it and it for one.
    pub(super) async fn run_tx(&self, run_id: &str) -> Result<sqlx::Transaction<'static, DB>> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "SELECT pg_advisory_xact_lock_shared($1), pg_advisory_xact_lock($2, hashtext($3)), \
             pg_notify($4, '')",
        )
        .bind(WRITE_LOCK)
        .bind(RUN_LOCKS)
        .bind(run_id)
        .bind(CHANGES)
        .execute(&mut *tx)
        .await?;
        Ok(tx)
    }

    /// Call `on_change` after each commit to the store by anyone (LISTEN `CHANGES`), at most
    /// every 100 ms, and once after the listening connection was lost and made again (what
    /// changed meanwhile was not heard). Stops when `on_change` returns false.
    pub(super) async fn watch(
        &self,
        on_change: impl Fn() -> bool + Send + 'static,
    ) -> Result<tokio::task::JoinHandle<()>> {
        let mut listener = sqlx::postgres::PgListener::connect_with(&self.pool).await?;
        listener.listen(CHANGES).await?;
        Ok(tokio::spawn(async move {
            loop {
                match listener.try_recv().await {
                    Ok(Some(_)) => {
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                        while listener.next_buffered().is_some() {}
                    }
                    // The connection was lost; the next call makes it again.
                    Ok(None) => {}
                    Err(e) => {
                        tracing::warn!("team store: listening for changes: {e}");
                        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                        continue;
                    }
                }
                if !on_change() {
                    return;
                }
            }
        }))
    }
}

/// A DOUBLE PRECISION column as its IEEE-754 bits in a BIGINT, which JSON carries exactly (NaN
/// and the infinities included). NULL stays NULL. Read back with `folded::real`.
macro_rules! exact_real {
    ($col:literal) => {
        concat!(
            "('x' || encode(float8send(",
            $col,
            "), 'hex'))::bit(64)::bigint"
        )
    };
}
pub(super) use exact_real;

/// The start of a folded read (see `fold_rows`): `COLS` of each row of the statement that
/// follows, up to `FOLD_CLOSE`, as one JSON array of arrays.
pub(super) fn fold_open(cols: &str) -> String {
    format!("SELECT COALESCE(json_agg(json_build_array({cols})), '[]')::text FROM (")
}

/// What closes `fold_open`.
pub(super) const FOLD_CLOSE: &str = ") AS folded";

/// Many rows as one: `SELECT json_agg(json_build_array(COLS)) FROM (SELECT COLS FROM …)`, one
/// value over the wire for a whole listing. `T` reads one row from its JSON array.
pub(super) async fn fold_rows<T: serde::de::DeserializeOwned>(
    pool: &sqlx::Pool<DB>,
    cols: &str,
    rest: &str,
    bind: Option<&str>,
) -> Result<Vec<T>> {
    let sql = format!("{}{rest}{FOLD_CLOSE}", fold_open(cols));
    // Every caller passes statements written here (only the bind is data).
    let mut q = sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(sql));
    if let Some(b) = bind {
        q = q.bind(b);
    }
    let text = q.fetch_one(pool).await?;
    serde_json::from_str(&text).with_context(|| format!("reading rows of: {rest}"))
}
