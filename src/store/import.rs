//! Runs imported from other tools (MLflow, TensorBoard): one transaction per run, created or replaced.

use super::runs::experiment_id_tx;
use super::series::append_tx;
use super::*;

impl Store {
    /// Store a run read from another tool, creating it or updating it in place: its record, params
    /// and tags are upserted and its metric series replaced, all in one transaction. Returns true
    /// when the run is new.
    pub async fn import_run(&self, run: &crate::domain::ImportedRun) -> Result<bool> {
        let mut tx = self.write_tx().await?;
        let exp = experiment_id_tx(&mut tx, &run.experiment).await?;
        let existed = sqlx::query("SELECT 1 FROM runs WHERE id = $1")
            .bind(&run.id)
            .fetch_optional(&mut *tx)
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
        .execute(&mut *tx)
        .await?;
        for (sql, pairs) in [
            (
                "INSERT INTO params (run_id, key, value) VALUES ($1, $2, $3) ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value",
                &run.params,
            ),
            (
                "INSERT INTO tags (run_id, key, value) VALUES ($1, $2, $3) ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value",
                &run.tags,
            ),
        ] {
            for (k, v) in pairs {
                sqlx::query(sql)
                    .bind(&run.id)
                    .bind(k)
                    .bind(v)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        sqlx::query("DELETE FROM series WHERE run_id = $1 AND kind = 'metric'")
            .bind(&run.id)
            .execute(&mut *tx)
            .await?;
        let batch: Vec<(SeriesKind, &str, &Series)> = run
            .metrics
            .iter()
            .map(|(k, s)| (SeriesKind::Metric, k.as_str(), s))
            .collect();
        append_tx(&mut tx, &run.id, &batch).await?;
        tx.commit().await?;
        Ok(!existed)
    }
}
