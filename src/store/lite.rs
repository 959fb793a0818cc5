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
#[path = "sql/pairs.rs"]
mod pairs;
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

/// A TEXT argument (None for NULL); invalid UTF-8 is read lossily.
///
/// # Safety
/// `v` is a value SQLite passed to a function call, valid for the call.
unsafe fn text_arg<'a>(v: *mut ffi::sqlite3_value) -> Option<std::borrow::Cow<'a, str>> {
    // SAFETY: per the caller; `sqlite3_value_text` before `sqlite3_value_bytes`, as SQLite's
    // documentation asks, and the bytes stay valid until the call returns.
    unsafe {
        let p = ffi::sqlite3_value_text(v);
        if p.is_null() {
            return None;
        }
        let n = usize::try_from(ffi::sqlite3_value_bytes(v)).unwrap_or(0);
        Some(String::from_utf8_lossy(std::slice::from_raw_parts(p, n)))
    }
}

/// `gantry_contains(hay, needle)`: the run filter's case-insensitive substring
/// (`filter::contains`), 1 or 0.
unsafe extern "C" fn gantry_contains(
    ctx: *mut ffi::sqlite3_context,
    argc: std::ffi::c_int,
    argv: *mut *mut ffi::sqlite3_value,
) {
    // SAFETY: SQLite calls this with `argc` valid values (it is registered with two arguments).
    unsafe {
        let hit = argc == 2
            && match (text_arg(*argv), text_arg(*argv.add(1))) {
                (Some(hay), Some(needle)) => crate::filter::contains(&hay, &needle),
                _ => false,
            };
        ffi::sqlite3_result_int(ctx, hit as std::ffi::c_int);
    }
}

/// `gantry_param(value, op, want)`: a param's value against a filter's (`filter::param_test`),
/// `op` as `Op::code` gives it; 1 or 0.
unsafe extern "C" fn gantry_param(
    ctx: *mut ffi::sqlite3_context,
    argc: std::ffi::c_int,
    argv: *mut *mut ffi::sqlite3_value,
) {
    // SAFETY: SQLite calls this with `argc` valid values (it is registered with three arguments).
    unsafe {
        let op = crate::filter::Op::from_code(ffi::sqlite3_value_int64(*argv.add(1)));
        let hit = argc == 3
            && match (text_arg(*argv), op, text_arg(*argv.add(2))) {
                (Some(have), Some(op), Some(want)) => crate::filter::param_test(&have, op, &want),
                _ => false,
            };
        ffi::sqlite3_result_int(ctx, hit as std::ffi::c_int);
    }
}

type SqlFunction =
    unsafe extern "C" fn(*mut ffi::sqlite3_context, std::ffi::c_int, *mut *mut ffi::sqlite3_value);

/// gantry's SQL functions: name, number of arguments, the function.
const FUNCTIONS: [(&std::ffi::CStr, std::ffi::c_int, SqlFunction); 3] = [
    (c"f64_bits", 1, f64_bits),
    (c"gantry_contains", 2, gantry_contains),
    (c"gantry_param", 3, gantry_param),
];

/// Add gantry's SQL functions (`FUNCTIONS`) to a new connection.
pub(super) async fn add_functions(conn: &mut sqlx::SqliteConnection) -> Result<(), sqlx::Error> {
    let mut handle = conn.lock_handle().await?;
    let db = handle.as_raw_handle().as_ptr();
    for (name, n_args, f) in FUNCTIONS {
        // SAFETY: the handle is locked, so no other thread uses the connection meanwhile; the
        // name is a static C string and the function has no user data to free.
        let rc = unsafe {
            ffi::sqlite3_create_function_v2(
                db,
                name.as_ptr(),
                n_args,
                ffi::SQLITE_UTF8 | ffi::SQLITE_DETERMINISTIC | ffi::SQLITE_INNOCUOUS,
                std::ptr::null_mut(),
                Some(f),
                None,
                None,
                None,
            )
        };
        if rc != ffi::SQLITE_OK {
            return Err(sqlx::Error::Configuration(
                format!("cannot add the SQL function {name:?} (SQLite code {rc})").into(),
            ));
        }
    }
    Ok(())
}

impl Backend {
    /// The runs `filter` matches, in `order` (ties: newest first, then id), at most `limit` of
    /// them (0: all), and how many match in all: picked, ordered and cut in SQL
    /// (`where_sql`), so a listing of 10,000 runs reads only the page.
    pub async fn runs_where(
        &self,
        filter: Option<&crate::filter::Expr>,
        order: &PageOrder,
        desc: bool,
        limit: usize,
        now_ms: i64,
    ) -> Result<(Vec<Run>, i64)> {
        use super::where_sql::{Arg, Sql, count_query, page_query};
        fn bound(sql: Sql) -> sqlx::query::Query<'static, DB, sqlx::sqlite::SqliteArguments> {
            // The text is built from fixed pieces; every value from the filter is bound.
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.text));
            for a in sql.args {
                q = match a {
                    Arg::Text(t) => q.bind(t),
                    Arg::Int(i) => q.bind(i),
                    Arg::Real(x) => q.bind(x),
                };
            }
            q
        }
        let page = page_query(runs::RUN_COLUMNS, filter, order, desc, limit, now_ms);
        let rows = bound(page).fetch_all(&self.pool).await?;
        let runs = rows
            .iter()
            .map(runs::run_from_row)
            .collect::<Result<Vec<_>>>()?;
        // A page shorter than the limit is every match; else count them.
        let total = if limit == 0 || runs.len() < limit {
            runs.len() as i64
        } else {
            bound(count_query(filter, now_ms))
                .fetch_one(&self.pool)
                .await?
                .get::<i64, _>(0)
        };
        Ok((runs, total))
    }
}

/// The start of a folded read (see `fold_rows`): `COLS` of each row of the statement that
/// follows, up to `FOLD_CLOSE`, as one JSON array of arrays.
pub(super) fn fold_open(cols: &str) -> String {
    format!("SELECT COALESCE(json_group_array(json_array({cols})), '[]') FROM (")
}

/// What closes `fold_open`.
pub(super) const FOLD_CLOSE: &str = ")";

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
    let sql = format!("{}{rest}{FOLD_CLOSE}", fold_open(cols));
    // Every caller passes statements written here (only the bind is data).
    let mut q = sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(sql));
    if let Some(b) = bind {
        q = q.bind(b);
    }
    let text = q.fetch_one(pool).await?;
    serde_json::from_str(&text).with_context(|| format!("reading rows of: {rest}"))
}
