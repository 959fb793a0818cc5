//! Listings read as one value: SQLite folds a query's rows into one JSON array (`folded`), so
//! 10,000 runs cross from the database thread at once, not row by row; doubles pass exactly
//! (`exact_real!`); the rows of runs as a listing reads them.

use super::*;

/// A REAL column as text that parses back to the same bits. JSON would keep 15 digits and has
/// no Inf; SQLite's `quote()` gives enough digits, exactly between 1e-40 and 1e90 (checked over
/// random doubles: beyond, its conversion can be off in the last bits). Outside that range, or
/// for Inf, the text is `x` and the caller reads the value itself, as a double. NULL stays NULL.
macro_rules! exact_real {
    ($col:literal) => {
        concat!(
            "CASE WHEN ",
            $col,
            " IS NULL THEN NULL WHEN ",
            $col,
            " = 0 OR abs(",
            $col,
            ") BETWEEN 1e-40 AND 1e90 THEN quote(",
            $col,
            ") ELSE 'x' END"
        )
    };
}
pub(super) use exact_real;

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

/// A REAL column read through `exact_real!`: Err when the caller must read it as a double.
pub(super) fn real(v: &Option<String>) -> Result<Option<f64>, ()> {
    match v.as_deref() {
        None => Ok(None),
        Some(s) => s.parse().map(Some).map_err(|_| ()),
    }
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
);

impl RunRow {
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
            user: self.8,
            pid: self.9,
            command: serde_json::from_str(&self.10).unwrap_or_else(|_| vec![self.10.clone()]),
            cwd: self.11,
            git_commit: self.12,
            git_branch: self.13,
            git_dirty: self.14.map(|d| d != 0),
            notes: self.15,
            pid_start: self.16,
            run_dir: self.17,
            env: serde_json::from_str(&self.18).unwrap_or_default(),
            gpus: serde_json::from_str(&self.19).unwrap_or_default(),
        })
    }
}
