//! The SQLite backend: the query files under sql/ compiled for SQLite (`DB`), the write
//! transaction (`BEGIN IMMEDIATE`), and listings folded into one JSON value, with doubles passed
//! exactly as their bits through the SQL function `f64_bits` added to each connection.

// The query files are compiled once per backend, on purpose: each time for its own `DB`.
#![allow(clippy::duplicate_mod)]

use super::*;
use libsqlite3_sys as ffi;

pub(super) type DB = sqlx::Sqlite;
pub(super) type DbRow = sqlx::sqlite::SqliteRow;

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
#[path = "sql/runs.rs"]
mod runs;
#[path = "sql/series.rs"]
mod series;
#[path = "sql/served.rs"]
mod served;

/// The store's queries on a SQLite pool.
#[derive(Clone, Debug)]
pub struct Backend {
    pub(super) pool: sqlx::Pool<DB>,
}

impl Backend {
    pub(super) async fn write_tx(&self) -> Result<sqlx::Transaction<'static, DB>> {
        // IMMEDIATE takes the write lock up front, so the busy timeout applies; a deferred
        // transaction that later upgrades fails at once with "database is locked".
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }

    /// A write transaction on one run's rows: SQLite has one writer at a time anyway.
    pub(super) async fn run_tx(&self, _run_id: &str) -> Result<sqlx::Transaction<'static, DB>> {
        self.write_tx().await
    }
}

/// A REAL column as its IEEE-754 bits, an INTEGER that JSON carries exactly (JSON would keep 15
/// digits and has no Inf; `quote()` is exact only within some range and costs a decimal
/// conversion per value). NULL stays NULL. Read back with `real`.
macro_rules! exact_real {
    ($col:literal) => {
        concat!("f64_bits(", $col, ")")
    };
}
pub(super) use exact_real;

/// `f64_bits(x)`: the bits of a REAL as an INTEGER; an INTEGER (a REAL column keeps whole numbers
/// as integers) as the bits of the same number as a double; NULL for anything else.
unsafe extern "C" fn f64_bits(
    ctx: *mut ffi::sqlite3_context,
    argc: std::ffi::c_int,
    argv: *mut *mut ffi::sqlite3_value,
) {
    // SAFETY: SQLite calls this with `argc` valid values (it is registered with one argument).
    unsafe {
        if argc != 1 {
            ffi::sqlite3_result_null(ctx);
            return;
        }
        let v = *argv;
        match ffi::sqlite3_value_type(v) {
            ffi::SQLITE_FLOAT | ffi::SQLITE_INTEGER => {
                ffi::sqlite3_result_int64(ctx, ffi::sqlite3_value_double(v).to_bits() as i64)
            }
            _ => ffi::sqlite3_result_null(ctx),
        }
    }
}

/// Add gantry's SQL functions (`f64_bits`) to a new connection.
pub(super) async fn add_functions(conn: &mut sqlx::SqliteConnection) -> Result<(), sqlx::Error> {
    let mut handle = conn.lock_handle().await?;
    let db = handle.as_raw_handle().as_ptr();
    // SAFETY: the handle is locked, so no other thread uses the connection meanwhile; the name
    // is a static C string and the function has no user data to free.
    let rc = unsafe {
        ffi::sqlite3_create_function_v2(
            db,
            c"f64_bits".as_ptr(),
            1,
            ffi::SQLITE_UTF8 | ffi::SQLITE_DETERMINISTIC | ffi::SQLITE_INNOCUOUS,
            std::ptr::null_mut(),
            Some(f64_bits),
            None,
            None,
            None,
        )
    };
    if rc != ffi::SQLITE_OK {
        return Err(sqlx::Error::Configuration(
            format!("cannot add the SQL function f64_bits (SQLite code {rc})").into(),
        ));
    }
    Ok(())
}

/// Many rows as one: `SELECT json_group_array(json_array(COLS)) FROM (SELECT COLS FROM …)`, so a
/// listing of 10,000 runs crosses from the database thread as one value rather than 10,000 rows
/// (sqlx hands each row over on its own, which costs more than reading it). `T` reads one row
/// from its JSON array.
pub(super) async fn fold_rows<T: serde::de::DeserializeOwned>(
    pool: &sqlx::Pool<DB>,
    cols: &str,
    rest: &str,
    bind: Option<&str>,
) -> Result<Vec<T>> {
    let sql = format!("SELECT COALESCE(json_group_array(json_array({cols})), '[]') FROM ({rest})");
    // Every caller passes statements written here (only the bind is data).
    let mut q = sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(sql));
    if let Some(b) = bind {
        q = q.bind(b);
    }
    let text = q.fetch_one(pool).await?;
    serde_json::from_str(&text).with_context(|| format!("reading rows of: {rest}"))
}
