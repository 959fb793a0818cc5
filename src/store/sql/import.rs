//! Runs imported from other tools (MLflow, TensorBoard): created or replaced, many runs to a
//! transaction (a transaction per run cost more than its rows for runs of a few hundred points).

use super::runs::experiment_id_tx;
use super::series::append_tx;
use super::*;

impl Backend {
    /// Store a run read from another tool, creating it or updating it in place: its record, params
    /// and tags are upserted and its metric series replaced, all in one transaction. Returns true
    /// when the run is new.
    pub async fn import_run(&self, run: &crate::domain::ImportedRun) -> Result<bool> {
        Ok(self.import_runs(std::slice::from_ref(run)).await?[0])
    }

    /// Store several imported runs in one transaction (all or none); for each, whether it is new.
    /// An error names the run it came from.
    pub async fn import_runs(&self, runs: &[crate::domain::ImportedRun]) -> Result<Vec<bool>> {
        let mut tx = self.write_tx().await?;
        let ids: std::collections::HashSet<&str> = runs.iter().map(|r| r.id.as_str()).collect();
        // The whole batch in a few statements; where that fails (or a run comes twice), run by
        // run, so an error names its run.
        if ids.len() == runs.len() {
            sqlx::query("SAVEPOINT import_batch")
                .execute(&mut *tx)
                .await?;
            match import_batch_tx(&mut tx, runs).await {
                Ok(new) => {
                    tx.commit().await?;
                    return Ok(new);
                }
                Err(_) => {
                    sqlx::query("ROLLBACK TO import_batch")
                        .execute(&mut *tx)
                        .await?;
                }
            }
        }
        let mut new = Vec::with_capacity(runs.len());
        for run in runs {
            new.push(
                import_tx(&mut tx, run)
                    .await
                    .with_context(|| format!("storing run {} ({})", run.id, run.name))?,
            );
        }
        tx.commit().await?;
        Ok(new)
    }
}

/// A chunk row: series id, seq, first step, last step, points, encoded bytes.
type ChunkRow = (i64, i64, i64, i64, i64, Vec<u8>);

/// Rows to a statement: SQLite takes at most 32,766 bound values in one.
const ROWS_PER_STATEMENT: usize = 2_000;

/// `import_tx` for many runs (ids distinct) in a statement per table.
async fn import_batch_tx(
    tx: &mut sqlx::Transaction<'static, DB>,
    runs: &[crate::domain::ImportedRun],
) -> Result<Vec<bool>> {
    use sqlx::QueryBuilder;
    let mut exps = std::collections::HashMap::new();
    for run in runs {
        if !exps.contains_key(&run.experiment) {
            let id = experiment_id_tx(tx, &run.experiment).await?;
            exps.insert(run.experiment.clone(), id);
        }
    }
    let mut existing = std::collections::HashSet::new();
    for part in runs.chunks(ROWS_PER_STATEMENT) {
        let mut q = QueryBuilder::<DB>::new("SELECT id FROM runs WHERE id IN (");
        let mut list = q.separated(", ");
        for r in part {
            list.push_bind(&r.id);
        }
        q.push(")");
        for row in q.build().fetch_all(&mut **tx).await? {
            existing.insert(row.get::<String, _>(0));
        }
    }
    for part in runs.chunks(ROWS_PER_STATEMENT) {
        let mut q = QueryBuilder::<DB>::new(
            "INSERT INTO runs (id, experiment_id, name, status, started_ms, ended_ms, host, \
             user_name, command, cwd, git_commit, git_branch) ",
        );
        q.push_values(part, |mut b, run| {
            let status = run.status.unwrap_or(if run.ended_ms.is_some() {
                RunStatus::Finished
            } else {
                RunStatus::Running
            });
            b.push_bind(&run.id)
                .push_bind(&exps[&run.experiment])
                .push_bind(&run.name)
                .push_bind(status.as_str())
                .push_bind(run.started_ms)
                .push_bind(run.ended_ms)
                .push_bind(&run.host)
                .push_bind(&run.user)
                .push_bind(serde_json::to_string(&run.command).unwrap_or_default())
                .push_bind("")
                .push_bind(&run.git_commit)
                .push_bind(&run.git_branch);
        });
        q.push(
            " ON CONFLICT (id) DO UPDATE SET experiment_id = excluded.experiment_id, \
             name = excluded.name, status = excluded.status, started_ms = excluded.started_ms, \
             ended_ms = excluded.ended_ms, host = excluded.host, user_name = excluded.user_name, \
             command = excluded.command, git_commit = excluded.git_commit, \
             git_branch = excluded.git_branch",
        );
        q.build().execute(&mut **tx).await?;
    }
    for table in ["params", "tags"] {
        let rows: Vec<(&str, &str, &str)> = runs
            .iter()
            .flat_map(|r| {
                let pairs = if table == "params" {
                    &r.params
                } else {
                    &r.tags
                };
                pairs
                    .iter()
                    .map(|(k, v)| (r.id.as_str(), k.as_str(), v.as_str()))
            })
            .collect();
        for part in rows.chunks(ROWS_PER_STATEMENT) {
            let mut q =
                QueryBuilder::<DB>::new(format!("INSERT INTO {table} (run_id, key, value) "));
            q.push_values(part, |mut b, (id, k, v)| {
                b.push_bind(*id).push_bind(*k).push_bind(*v);
            });
            q.push(" ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value");
            q.build().execute(&mut **tx).await?;
        }
    }
    for part in runs.chunks(ROWS_PER_STATEMENT) {
        let mut q =
            QueryBuilder::<DB>::new("DELETE FROM series WHERE kind = 'metric' AND run_id IN (");
        let mut list = q.separated(", ");
        for r in part {
            list.push_bind(&r.id);
        }
        q.push(")");
        q.build().execute(&mut **tx).await?;
    }
    // Series rows, then their chunks, each in as few statements as the bound-value limit allows.
    let series: Vec<(&str, &str, &Series)> = runs
        .iter()
        .flat_map(|r| {
            r.metrics
                .iter()
                .filter(|(_, s)| !s.is_empty())
                .map(|(k, s)| (r.id.as_str(), k.as_str(), s))
        })
        .collect();
    let mut ids = std::collections::HashMap::new();
    for part in series.chunks(ROWS_PER_STATEMENT) {
        let mut q = QueryBuilder::<DB>::new(
            "INSERT INTO series (run_id, kind, key, n_points, n_chunks, last_step, last_value, \
             min_value, max_value, min_step, max_step) ",
        );
        q.push_values(part, |mut b, (run, key, s)| {
            let sum = super::series::BatchSummary::of(s);
            b.push_bind(*run)
                .push_bind("metric")
                .push_bind(*key)
                .push_bind(s.len() as i64)
                .push_bind(s.len().div_ceil(chunk::CHUNK_POINTS) as i64)
                .push_bind(sum.last_step)
                .push_bind(sum.last)
                .push_bind(sum.lo.map(|x| x.0))
                .push_bind(sum.hi.map(|x| x.0))
                .push_bind(sum.lo.map(|x| x.1))
                .push_bind(sum.hi.map(|x| x.1));
        });
        q.push(" RETURNING id, run_id, key");
        for row in q.build().fetch_all(&mut **tx).await? {
            ids.insert(
                (row.get::<String, _>(1), row.get::<String, _>(2)),
                row.get::<i64, _>(0),
            );
        }
    }
    let mut chunks: Vec<ChunkRow> = Vec::new();
    let mut bytes = 0usize;
    for (run, key, s) in &series {
        let id = *ids
            .get(&(run.to_string(), key.to_string()))
            .ok_or_else(|| anyhow!("series {key} of run {run} was not stored"))?;
        for (seq, start) in (0..s.len()).step_by(chunk::CHUNK_POINTS).enumerate() {
            let end = (start + chunk::CHUNK_POINTS).min(s.len());
            let mut buf = Vec::new();
            chunk::encode(s, start..end, &mut buf);
            bytes += buf.len();
            chunks.push((
                id,
                seq as i64,
                s.steps[start],
                s.steps[end - 1],
                (end - start) as i64,
                buf,
            ));
        }
        if chunks.len() >= ROWS_PER_STATEMENT || bytes >= 16 << 20 {
            insert_chunks(tx, &chunks).await?;
            chunks.clear();
            bytes = 0;
        }
    }
    insert_chunks(tx, &chunks).await?;
    Ok(runs.iter().map(|r| !existing.contains(&r.id)).collect())
}

async fn insert_chunks(tx: &mut sqlx::Transaction<'static, DB>, chunks: &[ChunkRow]) -> Result<()> {
    if chunks.is_empty() {
        return Ok(());
    }
    let mut q = sqlx::QueryBuilder::<DB>::new(
        "INSERT INTO series_chunks (series_id, seq, first_step, last_step, n_points, data) ",
    );
    q.push_values(chunks, |mut b, (id, seq, first, last, n, data)| {
        b.push_bind(*id)
            .push_bind(*seq)
            .push_bind(*first)
            .push_bind(*last)
            .push_bind(*n)
            .push_bind(data.as_slice());
    });
    q.build().execute(&mut **tx).await?;
    Ok(())
}

async fn import_tx(
    tx: &mut sqlx::Transaction<'static, DB>,
    run: &crate::domain::ImportedRun,
) -> Result<bool> {
    let exp = experiment_id_tx(tx, &run.experiment).await?;
    let existed = sqlx::query("SELECT 1 FROM runs WHERE id = $1")
        .bind(&run.id)
        .fetch_optional(&mut **tx)
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
        .execute(&mut **tx)
        .await?;
    // Params and tags: one statement each (a row per pair), not one per pair.
    for (table, pairs) in [("params", &run.params), ("tags", &run.tags)] {
        for part in pairs.chunks(300) {
            let mut q =
                sqlx::QueryBuilder::<DB>::new(format!("INSERT INTO {table} (run_id, key, value) "));
            q.push_values(part, |mut b, (k, v)| {
                b.push_bind(&run.id).push_bind(k).push_bind(v);
            });
            q.push(" ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value");
            q.build().execute(&mut **tx).await?;
        }
    }
    sqlx::query("DELETE FROM series WHERE run_id = $1 AND kind = 'metric'")
        .bind(&run.id)
        .execute(&mut **tx)
        .await?;
    let batch: Vec<(SeriesKind, &str, &Series)> = run
        .metrics
        .iter()
        .map(|(k, s)| (SeriesKind::Metric, k.as_str(), s))
        .collect();
    append_tx(tx, &run.id, &batch).await?;
    Ok(!existed)
}
