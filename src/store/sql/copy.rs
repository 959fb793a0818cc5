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

/// `INSERT … ON CONFLICT (key) DO UPDATE` of every column of `t`.
fn upsert(t: &Table) -> String {
    let cols: Vec<&str> = t.cols.iter().map(|(c, _)| *c).collect();
    let marks: Vec<String> = (1..=cols.len()).map(|i| format!("${i}")).collect();
    let set: Vec<String> = cols
        .iter()
        .filter(|c| !t.key.contains(c))
        .map(|c| format!("{c} = excluded.{c}"))
        .collect();
    let tail = if set.is_empty() {
        "DO NOTHING".to_string()
    } else {
        format!("DO UPDATE SET {}", set.join(", "))
    };
    format!(
        "INSERT INTO {} ({}) VALUES ({}) ON CONFLICT ({}) {tail}",
        t.name,
        cols.join(", "),
        marks.join(", "),
        t.key.join(", ")
    )
}

async fn put(
    tx: &mut sqlx::Transaction<'static, DB>,
    sql: &str,
    row: &[Cell],
    then: Option<i64>,
) -> Result<Option<i64>> {
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.to_string()));
    for c in row {
        q = match c {
            Cell::I32(v) => q.bind(*v),
            Cell::I64(v) => q.bind(*v),
            Cell::F64(v) => q.bind(*v),
            Cell::Text(v) => q.bind(v.clone()),
            Cell::Blob(v) => q.bind(v.clone()),
        };
    }
    if let Some(v) = then {
        q = q.bind(v);
    }
    Ok(match q.fetch_optional(&mut **tx).await? {
        Some(r) if r.len() > 0 => Some(r.try_get(0)?),
        _ => None,
    })
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
            let sql = format!("DELETE FROM {} WHERE {column} = $1", t.name);
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(value)
                .execute(&mut *tx)
                .await?;
        }
        let sql = upsert(t);
        for row in rows {
            put(&mut tx, &sql, row, None).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// A run's series (the columns of `series`, its id left out) with their chunks (the columns
    /// of `chunks`, the series id left out).
    pub async fn run_series(
        &self,
        run_id: &str,
        series: &Table,
        chunks: &Table,
    ) -> Result<Vec<(Vec<Cell>, Vec<Vec<Cell>>)>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(select(series, "id, ", "run_id = $1")))
            .bind(run_id)
            .fetch_all(&self.pool)
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let id: i64 = r.try_get(0)?;
            let head = cells(r, series, 1)?;
            let sql = select(chunks, "", "series_id = $1");
            let crows = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(id)
                .fetch_all(&self.pool)
                .await?;
            let c = crows
                .iter()
                .map(|r| cells(r, chunks, 0))
                .collect::<Result<Vec<_>>>()?;
            out.push((head, c));
        }
        Ok(out)
    }

    /// Replace a run's series with `series` (as `run_series` reads them), in one transaction;
    /// each series gets this store's own id.
    pub async fn put_run_series(
        &self,
        run_id: &str,
        series: &Table,
        chunks: &Table,
        rows: &[(Vec<Cell>, Vec<Vec<Cell>>)],
    ) -> Result<()> {
        let mut tx = self.run_tx(run_id).await?;
        sqlx::query("DELETE FROM series WHERE run_id = $1")
            .bind(run_id)
            .execute(&mut *tx)
            .await?;
        let cols: Vec<&str> = series.cols.iter().map(|(c, _)| *c).collect();
        let marks: Vec<String> = (1..=cols.len()).map(|i| format!("${i}")).collect();
        let ins = format!(
            "INSERT INTO series ({}) VALUES ({}) RETURNING id",
            cols.join(", "),
            marks.join(", ")
        );
        let ccols: Vec<&str> = chunks.cols.iter().map(|(c, _)| *c).collect();
        let cmarks: Vec<String> = (1..=ccols.len() + 1).map(|i| format!("${i}")).collect();
        let cins = format!(
            "INSERT INTO series_chunks ({}, series_id) VALUES ({})",
            ccols.join(", "),
            cmarks.join(", ")
        );
        for (head, cs) in rows {
            let id = put(&mut tx, &ins, head, None)
                .await?
                .ok_or_else(|| anyhow!("no id for a copied series of run {run_id}"))?;
            for c in cs {
                put(&mut tx, &cins, c, Some(id)).await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }
}
