//! Rows as they are, for `gantry store copy` and `gantry sync`: a table's rows read and written
//! whole (typed by the table's spec, so the two backends' rows cross exactly), and a run's
//! series with their chunks, whose ids each store gives its own.

use super::*;

fn cells(r: &DbRow, t: &Table, skip: usize) -> Result<Vec<Cell>> {
    let mut row = Vec::with_capacity(t.cols.len());
    for (i, (_, col)) in t.cols.iter().enumerate() {
        let i = i + skip;
        let c = match col {
            Col::I32 => Cell::I32(r.try_get(i)?),
            Col::I64 => Cell::I64(r.try_get(i)?),
            Col::F64 => Cell::F64(r.try_get(i)?),
            Col::Text => Cell::Text(r.try_get(i)?),
            Col::Blob => Cell::Blob(r.try_get(i)?),
        };
        row.push(c);
    }
    Ok(row)
}

fn select(t: &Table, extra: &str, filter: &str) -> String {
    let cols: Vec<&str> = t.cols.iter().map(|(c, _)| *c).collect();
    format!(
        "SELECT {extra}{} FROM {} WHERE {filter} ORDER BY {}",
        cols.join(", "),
        t.name,
        t.key.join(", ")
    )
}

/// ` ON CONFLICT (key) DO UPDATE SET` every other column of `t` (`DO NOTHING` without one).
fn on_conflict(t: &Table) -> String {
    let set: Vec<String> = t
        .cols
        .iter()
        .map(|(c, _)| *c)
        .filter(|c| !t.key.contains(c))
        .map(|c| format!("{c} = excluded.{c}"))
        .collect();
    let tail = if set.is_empty() {
        "DO NOTHING".to_string()
    } else {
        format!("DO UPDATE SET {}", set.join(", "))
    };
    format!(" ON CONFLICT ({}) {tail}", t.key.join(", "))
}

type Builder = sqlx::QueryBuilder<DB>;

/// Bind a row's cells, each in its place in a `VALUES` list. The builder writes each backend's
/// own placeholders (SQLite's `?`: a numbered `$N` costs SQLite a lookup through every name of
/// the statement, so a statement of thousands took seconds).
fn push_cells<Sep: std::fmt::Display>(
    b: &mut sqlx::query_builder::Separated<'_, DB, Sep>,
    row: &[Cell],
) {
    for c in row {
        match c {
            Cell::I32(v) => b.push_bind(*v),
            Cell::I64(v) => b.push_bind(*v),
            Cell::F64(v) => b.push_bind(*v),
            Cell::Text(v) => b.push_bind(v.clone()),
            Cell::Blob(v) => b.push_bind(v.clone()),
        };
    }
}

/// A folded row of text and integers as cells of `t`.
fn unfold(t: &Table, row: Vec<serde_json::Value>) -> Result<Vec<Cell>> {
    use serde_json::Value;
    if row.len() != t.cols.len() {
        return Err(anyhow!("a row of {} with {} values", t.name, row.len()));
    }
    t.cols
        .iter()
        .zip(row)
        .map(|((name, col), v)| {
            let bad = || anyhow!("{}.{name}: unexpected value {v}", t.name);
            Ok(match (col, &v) {
                (Col::Text, Value::String(s)) => Cell::Text(Some(s.clone())),
                (Col::Text, Value::Null) => Cell::Text(None),
                (Col::I64, Value::Null) => Cell::I64(None),
                (Col::I64, Value::Number(n)) => Cell::I64(Some(n.as_i64().ok_or_else(bad)?)),
                (Col::I32, Value::Null) => Cell::I32(None),
                (Col::I32, Value::Number(n)) => Cell::I32(Some(
                    n.as_i64()
                        .and_then(|x| i32::try_from(x).ok())
                        .ok_or_else(bad)?,
                )),
                _ => return Err(bad()),
            })
        })
        .collect()
}

/// `SELECT cols FROM t WHERE column IN (values) ORDER BY key`, `extra` columns first.
fn select_in(t: &Table, extra: &str, column: &str, values: &[String]) -> Builder {
    let cols: Vec<&str> = t.cols.iter().map(|(c, _)| *c).collect();
    let mut q = Builder::new(format!(
        "SELECT {extra}{} FROM {} WHERE {column} IN (",
        cols.join(", "),
        t.name
    ));
    in_list(&mut q, values);
    q.push(format!(") ORDER BY {}", t.key.join(", ")));
    q
}

fn in_list(q: &mut Builder, values: &[String]) {
    let mut list = q.separated(", ");
    for v in values {
        list.push_bind(v.clone());
    }
}

/// Values bound in one statement at most: under SQLite's limit (32,766) and PostgreSQL's (65,535).
const MAX_BINDS: usize = 30_000;

/// Insert (or update, by `t`'s key) `rows` of `t` in multi-row statements.
async fn upsert_rows(
    tx: &mut sqlx::Transaction<'static, DB>,
    t: &Table,
    rows: &[Vec<Cell>],
) -> Result<()> {
    let cols: Vec<&str> = t.cols.iter().map(|(c, _)| *c).collect();
    for part in rows.chunks((MAX_BINDS / cols.len()).max(1)) {
        let mut q = Builder::new(format!("INSERT INTO {} ({}) ", t.name, cols.join(", ")));
        q.push_values(part, |mut b, row| push_cells(&mut b, row));
        q.push(on_conflict(t));
        q.build().execute(&mut **tx).await?;
    }
    Ok(())
}

/// Delete the rows of `table` whose `column` is one of `values`.
async fn delete_in(
    tx: &mut sqlx::Transaction<'static, DB>,
    table: &str,
    column: &str,
    values: &[String],
) -> Result<()> {
    for part in values.chunks(MAX_BINDS) {
        let mut q = Builder::new(format!("DELETE FROM {table} WHERE {column} IN ("));
        in_list(&mut q, part);
        q.push(")");
        q.build().execute(&mut **tx).await?;
    }
    Ok(())
}

impl Backend {
    /// The rows of `t` where `filter` holds (a statement written here, binding `$1` to `bind`
    /// when given), in key order.
    pub async fn rows(
        &self,
        t: &Table,
        filter: &str,
        bind: Option<&str>,
    ) -> Result<Vec<Vec<Cell>>> {
        let sql = select(t, "", filter);
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        if let Some(b) = bind {
            q = q.bind(b);
        }
        let rows = q.fetch_all(&self.pool).await?;
        rows.iter().map(|r| cells(r, t, 0)).collect()
    }

    /// The rows of `t` whose `column` is one of `values`, in key order within each part of
    /// `values` read together.
    pub async fn rows_in(
        &self,
        t: &Table,
        column: &str,
        values: &[String],
    ) -> Result<Vec<Vec<Cell>>> {
        // Tables of text and integers cross folded into one JSON value (thousands of params
        // would otherwise cross one row at a time); the others row by row.
        let foldable = t
            .cols
            .iter()
            .all(|(_, c)| matches!(c, Col::Text | Col::I32 | Col::I64));
        let mut out = Vec::new();
        for part in values.chunks(MAX_BINDS) {
            if foldable {
                let cols: Vec<&str> = t.cols.iter().map(|(c, _)| *c).collect();
                let cols = cols.join(", ");
                let mut q = Builder::new(super::fold_open(&cols));
                q.push(format!("SELECT {cols} FROM {} WHERE {column} IN (", t.name));
                in_list(&mut q, part);
                q.push(")");
                q.push(super::FOLD_CLOSE);
                let text: String = q.build_query_scalar().fetch_one(&self.pool).await?;
                let rows: Vec<Vec<serde_json::Value>> = serde_json::from_str(&text)
                    .with_context(|| format!("reading the rows of {}", t.name))?;
                for r in rows {
                    out.push(unfold(t, r)?);
                }
                continue;
            }
            for r in select_in(t, "", column, part)
                .build()
                .fetch_all(&self.pool)
                .await?
            {
                out.push(cells(&r, t, 0)?);
            }
        }
        Ok(out)
    }

    /// In one transaction: delete the rows of `t` whose `column` is `value` (when given), then
    /// insert or update `rows`.
    pub async fn put_rows(
        &self,
        t: &Table,
        replace: Option<(&str, &str)>,
        rows: &[Vec<Cell>],
    ) -> Result<()> {
        let mut tx = self.write_tx().await?;
        if let Some((column, value)) = replace {
            delete_in(&mut tx, t.name, column, &[value.to_string()]).await?;
        }
        upsert_rows(&mut tx, t, rows).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The series of runs `run_ids` (the columns of `series`, its id left out) with their
    /// chunks (the columns of `chunks`, the series id left out), two statements for them all.
    pub async fn series_of(
        &self,
        run_ids: &[String],
        series: &Table,
        chunks: &Table,
    ) -> Result<Vec<(Vec<Cell>, Vec<Vec<Cell>>)>> {
        let mut out = Vec::new();
        for part in run_ids.chunks(MAX_BINDS) {
            let rows = select_in(series, "id, ", "run_id", part)
                .build()
                .fetch_all(&self.pool)
                .await?;
            let mut at: std::collections::HashMap<i64, usize> = Default::default();
            for r in &rows {
                at.insert(r.try_get(0)?, out.len());
                out.push((cells(r, series, 1)?, Vec::new()));
            }
            let cols: Vec<&str> = chunks.cols.iter().map(|(c, _)| *c).collect();
            let mut q = Builder::new(format!(
                "SELECT series_id, {} FROM series_chunks WHERE series_id IN \
                 (SELECT id FROM series WHERE run_id IN (",
                cols.join(", ")
            ));
            in_list(&mut q, part);
            q.push(")) ORDER BY series_id, seq");
            for r in q.build().fetch_all(&self.pool).await? {
                let sid: i64 = r.try_get(0)?;
                let i = *at
                    .get(&sid)
                    .ok_or_else(|| anyhow!("a chunk of series {sid}, which was not read"))?;
                out[i].1.push(cells(&r, chunks, 1)?);
            }
        }
        Ok(out)
    }

    /// Write a batch of whole runs in one transaction: each run's row inserted or updated, its
    /// rows of each table and its series replaced; each series gets this store's own id.
    pub async fn put_runs(&self, b: &RunsBatch<'_>) -> Result<()> {
        let mut tx = self.write_tx().await?;
        upsert_rows(&mut tx, b.runs.0, &b.runs.1).await?;
        for (t, rows) in &b.tables {
            delete_in(&mut tx, t.name, "run_id", b.ids).await?;
            upsert_rows(&mut tx, t, rows).await?;
        }
        delete_in(&mut tx, "series", "run_id", b.ids).await?;
        // The series, then their chunks under the ids the series got here (found by run, kind
        // and key: a multi-row RETURNING promises no order).
        let cols: Vec<&str> = b.series.cols.iter().map(|(c, _)| *c).collect();
        let at = |name: &str| cols.iter().position(|c| *c == name);
        let (Some(run_at), Some(kind_at), Some(key_at)) = (at("run_id"), at("kind"), at("key"))
        else {
            return Err(anyhow!("the series spec names no run_id, kind or key"));
        };
        let text = |c: &Cell| match c {
            Cell::Text(Some(s)) => s.clone(),
            _ => String::new(),
        };
        let mut ids: std::collections::HashMap<(String, String, String), i64> = Default::default();
        let heads: Vec<&Vec<Cell>> = b.series_rows.iter().map(|(h, _)| h).collect();
        for part in heads.chunks((MAX_BINDS / cols.len()).max(1)) {
            let mut q = Builder::new(format!("INSERT INTO series ({}) ", cols.join(", ")));
            q.push_values(part, |mut b, h| push_cells(&mut b, h));
            q.push(" RETURNING id, run_id, kind, key");
            for r in q.build().fetch_all(&mut *tx).await? {
                ids.insert((r.try_get(1)?, r.try_get(2)?, r.try_get(3)?), r.try_get(0)?);
            }
        }
        let ccols: Vec<&str> = b.chunks.cols.iter().map(|(c, _)| *c).collect();
        let mut rows: Vec<(i64, &Vec<Cell>)> = Vec::new();
        for (head, cs) in &b.series_rows {
            let key = (
                text(&head[run_at]),
                text(&head[kind_at]),
                text(&head[key_at]),
            );
            let id = *ids
                .get(&key)
                .ok_or_else(|| anyhow!("no id for the copied series {key:?}"))?;
            rows.extend(cs.iter().map(|c| (id, c)));
        }
        // Chunks hold up to a few hundred kB each: a statement takes at most 64 of them.
        for part in rows.chunks(64) {
            let mut q = Builder::new(format!(
                "INSERT INTO series_chunks ({}, series_id) ",
                ccols.join(", ")
            ));
            q.push_values(part, |mut b, (id, c)| {
                push_cells(&mut b, c);
                b.push_bind(*id);
            });
            q.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
