//! Model versions as the store indexes them (the registry is the truth; this is for joins with runs).

use super::*;

impl Backend {
    /// Remember a registered model version (the registry in git is the truth; this row links runs
    /// to the versions made from them).
    pub async fn record_model_version(&self, v: &ModelVersionRow) -> Result<()> {
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO model_versions (model, version, commit_id, run_id, created_ms, author, notes, total_bytes) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (model, version) DO UPDATE SET \
             commit_id = excluded.commit_id, run_id = excluded.run_id, notes = excluded.notes",
        )
        .bind(&v.model)
        .bind(v.version)
        .bind(&v.commit)
        .bind(&v.run_id)
        .bind(crate::domain::now_ms())
        .bind(&v.author)
        .bind(&v.notes)
        .bind(v.total_bytes)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The model versions made from a run: (model, version).
    pub async fn models_of_run(&self, run_id: &str) -> Result<Vec<(String, i64)>> {
        let rows = sqlx::query(
            "SELECT model, version FROM model_versions WHERE run_id = $1 ORDER BY model, version",
        )
        .bind(run_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }
}
