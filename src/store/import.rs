//! Runs imported from other tools (MLflow, TensorBoard): created or replaced, many runs to a
//! transaction (a transaction per run cost more than its rows for runs of a few hundred points).

use super::runs::experiment_id_tx;
use super::series::append_tx;
use super::*;

impl Store {
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

async fn import_tx(
    tx: &mut sqlx::Transaction<'static, sqlx::Sqlite>,
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
            let mut q = sqlx::QueryBuilder::<sqlx::Sqlite>::new(format!(
                "INSERT INTO {table} (run_id, key, value) "
            ));
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
