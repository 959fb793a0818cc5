//! Series: appending points in chunks, the exactly-once ingest of metrics files with its offsets and malformed lines, summaries, loading, compaction.

use super::*;

/// What a batch of points adds to its series' summary: the last step and value, and the
/// minimum and maximum (NaN skipped) with the first step of each.
pub(super) struct BatchSummary {
    pub last_step: i64,
    pub last: f64,
    pub lo: Option<(f64, i64)>,
    pub hi: Option<(f64, i64)>,
}

impl BatchSummary {
    /// Of a series with at least one point.
    pub fn of(series: &Series) -> BatchSummary {
        let (mut lo, mut hi) = (None::<(f64, i64)>, None::<(f64, i64)>);
        for (&v, &st) in series.values.iter().zip(&series.steps) {
            if v.is_nan() {
                continue;
            }
            if lo.is_none_or(|(m, _)| v < m) {
                lo = Some((v, st));
            }
            if hi.is_none_or(|(m, _)| v > m) {
                hi = Some((v, st));
            }
        }
        let n = series.len();
        BatchSummary {
            last_step: series.steps[n - 1],
            last: series.values[n - 1],
            lo,
            hi,
        }
    }
}

pub(super) async fn append_tx(
    tx: &mut sqlx::Transaction<'static, DB>,
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
        let BatchSummary { lo, hi, .. } = BatchSummary::of(series);
        // One statement creates or updates the series row with this batch's summary and reserves
        // its chunk numbers; RETURNING says where they start. CASE, not MIN()/MAX() of two values,
        // keeps it portable to PostgreSQL (which spells those LEAST/GREATEST).
        let row = sqlx::query(
            "INSERT INTO series (run_id, kind, key, n_points, n_chunks, last_step, last_value, \
               min_value, max_value, min_step, max_step) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
             ON CONFLICT (run_id, kind, key) DO UPDATE SET \
               n_points = series.n_points + excluded.n_points, \
               n_chunks = series.n_chunks + excluded.n_chunks, \
               last_step = excluded.last_step, \
               last_value = excluded.last_value, \
               min_step = CASE WHEN excluded.min_value IS NOT NULL AND \
                                    (series.min_value IS NULL OR excluded.min_value < series.min_value) \
                               THEN excluded.min_step ELSE series.min_step END, \
               max_step = CASE WHEN excluded.max_value IS NOT NULL AND \
                                    (series.max_value IS NULL OR excluded.max_value > series.max_value) \
                               THEN excluded.max_step ELSE series.max_step END, \
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
        .bind(lo.map(|x| x.0))
        .bind(hi.map(|x| x.0))
        .bind(lo.map(|x| x.1))
        .bind(hi.map(|x| x.1))
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

/// SQLite stores a NaN REAL as NULL: a series with points and no last value ended on NaN.
pub(super) fn last_value(n_points: i64, stored: Option<f64>) -> Option<f64> {
    match stored {
        None if n_points > 0 => Some(f64::NAN),
        v => v,
    }
}

impl Backend {
    /// Append points to several series of one run in one transaction. Points are cut into chunks
    /// of at most `chunk::CHUNK_POINTS`.
    pub async fn append(&self, run_id: &str, batch: &[(SeriesKind, &str, &Series)]) -> Result<()> {
        let mut tx = self.run_tx(run_id).await?;
        append_tx(&mut tx, run_id, batch).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Store one batch read from a run's metrics file: its points, how far the file was read, and
    /// the lines it rejected, all in one transaction, so a crash never stores a line twice. The
    /// batch is stored only if the source still stands at `batch.from_offset`; otherwise another
    /// reader got there first, nothing is written, and this returns false.
    pub async fn ingest(&self, run_id: &str, source: &str, batch: &IngestBatch) -> Result<bool> {
        let mut tx = self.run_tx(run_id).await?;
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
            sqlx::query("SELECT CAST(COALESCE(SUM(malformed), 0) AS BIGINT) FROM ingest_sources WHERE run_id = $1")
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
    /// Every metric key and every param key in the store, sorted (the column chooser's names).
    pub async fn column_keys(&self) -> Result<(Vec<String>, Vec<String>)> {
        let metrics = sqlx::query_scalar(
            "SELECT DISTINCT key FROM series WHERE kind = 'metric' ORDER BY key",
        )
        .fetch_all(&self.pool)
        .await?;
        let params = sqlx::query_scalar("SELECT DISTINCT key FROM params ORDER BY key")
            .fetch_all(&self.pool)
            .await?;
        Ok((metrics, params))
    }

    /// How many runs have each metric.
    pub async fn metric_counts(&self) -> Result<Vec<(String, i64)>> {
        Ok(sqlx::query_as(
            "SELECT key, COUNT(*) FROM series WHERE kind = 'metric' GROUP BY key ORDER BY key",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn series_summaries(&self, kind: SeriesKind) -> Result<Vec<(String, SeriesSummary)>> {
        summaries_folded(
            &self.pool,
            "SELECT run_id, key, n_points, last_step, last_value, min_value, max_value, min_step, \
             max_step FROM series \
             WHERE kind = $1 ORDER BY run_id, key",
            Some(kind.as_str()),
        )
        .await
    }

    /// One metric's last value for every run that has it: a summary with the point count, last
    /// step and last value (min, max and their steps left empty), read from the `series_by_key`
    /// index alone. What a listing filters, sorts and shows; a run read whole has the rest.
    pub async fn metric_lasts_with_key(&self, key: &str) -> Result<Vec<(String, SeriesSummary)>> {
        type Row = (String, i64, Option<i64>, Option<i64>);
        let rows: Vec<Row> = super::fold_rows(
            &self.pool,
            concat!(
                "run_id, n_points, last_step, ",
                super::exact_real!("last_value")
            ),
            "SELECT run_id, n_points, last_step, last_value FROM series \
             WHERE key = $1 AND kind = 'metric'",
            Some(key),
        )
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for (run, n, last_step, last) in rows {
            let last = super::folded::real(last);
            out.push((
                run,
                SeriesSummary {
                    key: key.to_string(),
                    n_points: n,
                    last_step,
                    last: last_value(n, last),
                    min: None,
                    max: None,
                    min_step: None,
                    max_step: None,
                },
            ));
        }
        Ok(out)
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
            let mut tx = self.run_tx(run_id).await?;
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
        // Each chunk is decoded as it arrives, while the database sends the next.
        use futures::TryStreamExt;
        let mut rows =
            sqlx::query("SELECT data FROM series_chunks WHERE series_id = $1 ORDER BY seq")
                .bind(id)
                .fetch(&self.pool);
        while let Some(row) = rows.try_next().await? {
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
}

/// Series summaries of the series rows `rest` selects, folded into one value (see `folded`).
async fn summaries_folded(
    pool: &sqlx::Pool<DB>,
    rest: &str,
    bind: Option<&str>,
) -> Result<Vec<(String, SeriesSummary)>> {
    type Row = (
        String,
        String,
        i64,
        Option<i64>,
        Option<i64>,
        Option<i64>,
        Option<i64>,
        Option<i64>,
        Option<i64>,
    );
    let cols = concat!(
        "run_id, key, n_points, last_step, ",
        super::exact_real!("last_value"),
        ", ",
        super::exact_real!("min_value"),
        ", ",
        super::exact_real!("max_value"),
        ", min_step, max_step"
    );
    let rows: Vec<Row> = super::fold_rows(pool, cols, rest, bind).await?;
    use super::folded::real;
    Ok(rows
        .into_iter()
        .map(
            |(run, key, n, last_step, last, min, max, min_step, max_step)| {
                (
                    run,
                    SeriesSummary {
                        key,
                        n_points: n,
                        last_step,
                        last: last_value(n, real(last)),
                        min: real(min),
                        max: real(max),
                        min_step,
                        max_step,
                    },
                )
            },
        )
        .collect())
}
