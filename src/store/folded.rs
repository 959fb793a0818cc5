//! Listings read as one value: SQLite folds a query's rows into one JSON array (`folded`), so
//! 10,000 runs cross from the database thread at once, not row by row; doubles pass exactly, as
//! their bits (`exact_real!`, through the SQL function `f64_bits` added to each connection); the
//! rows of runs as a listing reads them.

use super::*;
use libsqlite3_sys as ffi;

/// A REAL column as its IEEE-754 bits, an INTEGER that JSON carries exactly (JSON would keep 15
/// digits and has no Inf; `quote()` is exact only within some range and costs a decimal
/// conversion per value). NULL stays NULL. Read back with `real`.
macro_rules! exact_real {
    ($col:literal) => {
        concat!("f64_bits(", $col, ")")
    };
}
pub(super) use exact_real;

/// A REAL read through `exact_real!`.
pub(super) fn real(bits: Option<i64>) -> Option<f64> {
    bits.map(|b| f64::from_bits(b as u64))
}

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
pub(super) async fn folded<T: serde::de::DeserializeOwned>(
    pool: &SqlitePool,
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

/// Records by run id, for filling in their parts.
pub(super) struct ById<'a> {
    pub recs: &'a mut [RunRecord],
    pub index: &'a std::collections::HashMap<String, usize>,
}

impl ById<'_> {
    pub fn get_mut(&mut self, id: &str) -> Option<&mut RunRecord> {
        self.index.get(id).map(|&i| &mut self.recs[i])
    }
}

/// One run as `folded` reads it: the columns of `run_select!`, in order.
#[derive(serde::Deserialize)]
pub(super) struct RunRow(
    String,
    String,
    String,
    String,
    Option<i32>,
    i64,
    Option<i64>,
    String,
    String,
    Option<i64>,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<i64>,
    String,
    Option<i64>,
    String,
    String,
    String,
    Option<i64>,
);

impl RunRow {
    /// The listing's columns as a listing reads them, then the rest.
    pub fn into_run(self) -> Result<Run> {
        let mut run = ListingRow(
            self.0, self.1, self.2, self.3, self.4, self.5, self.6, self.7, self.20,
        )
        .into_run()?;
        run.user = self.8;
        run.pid = self.9;
        run.command = serde_json::from_str(&self.10).unwrap_or_else(|_| vec![self.10.clone()]);
        run.cwd = self.11;
        run.git_commit = self.12;
        run.git_branch = self.13;
        run.git_dirty = self.14.map(|d| d != 0);
        run.notes = self.15;
        run.pid_start = self.16;
        run.run_dir = self.17;
        run.env = serde_json::from_str(&self.18).unwrap_or_default();
        run.gpus = serde_json::from_str(&self.19).unwrap_or_default();
        Ok(run)
    }
}

/// One run as a listing reads it (see `Parts::listing`): id, experiment, name, status, exit code,
/// start, end, host and heartbeat; the rest of the run is left empty.
#[derive(serde::Deserialize)]
pub(super) struct ListingRow(
    String,
    String,
    String,
    String,
    Option<i32>,
    i64,
    Option<i64>,
    String,
    Option<i64>,
);

impl ListingRow {
    pub fn into_run(self) -> Result<Run> {
        Ok(Run {
            id: self.0,
            experiment: self.1,
            name: self.2,
            status: RunStatus::from_str(&self.3).map_err(|e| anyhow!(e))?,
            exit_code: self.4,
            started_ms: self.5,
            ended_ms: self.6,
            host: self.7,
            user: String::new(),
            pid: None,
            command: Vec::new(),
            cwd: String::new(),
            git_commit: None,
            git_branch: None,
            git_dirty: None,
            notes: String::new(),
            pid_start: None,
            run_dir: String::new(),
            env: Default::default(),
            gpus: Vec::new(),
            heartbeat_ms: self.8,
        })
    }
}
