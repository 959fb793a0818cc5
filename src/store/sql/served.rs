//! The queries `gantry serve` needs beyond the rest of the store: experiments listed and created
//! by name, params added only where they do not change a stored value, and run updates as the
//! MLflow API makes them.

use super::*;

impl Backend {
    /// Every experiment, oldest first.
    pub async fn experiments(&self) -> Result<Vec<ExperimentRow>> {
        let rows =
            sqlx::query("SELECT id, name, created_ms FROM experiments ORDER BY created_ms, id")
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.iter().map(experiment_from_row).collect())
    }

    pub async fn experiment_by_id(&self, id: &str) -> Result<Option<ExperimentRow>> {
        let row = sqlx::query("SELECT id, name, created_ms FROM experiments WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(experiment_from_row))
    }

    pub async fn experiment_by_name(&self, name: &str) -> Result<Option<ExperimentRow>> {
        let row = sqlx::query("SELECT id, name, created_ms FROM experiments WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(experiment_from_row))
    }

    /// Create experiment `name`; None when one of that name exists already.
    pub async fn create_experiment(&self, name: &str) -> Result<Option<ExperimentRow>> {
        let mut tx = self.write_tx().await?;
        let exists = sqlx::query("SELECT 1 FROM experiments WHERE name = $1")
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
        if exists {
            return Ok(None);
        }
        let row = ExperimentRow {
            id: uuid::Uuid::new_v4().simple().to_string(),
            name: name.to_string(),
            created_ms: crate::domain::now_ms(),
        };
        sqlx::query("INSERT INTO experiments (id, name, created_ms) VALUES ($1, $2, $3)")
            .bind(&row.id)
            .bind(&row.name)
            .bind(row.created_ms)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some(row))
    }

    /// Whether run `id` exists.
    pub async fn has_run(&self, id: &str) -> Result<bool> {
        Ok(sqlx::query("SELECT 1 FROM runs WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .is_some())
    }

    /// How many runs are running.
    pub async fn count_running(&self) -> Result<i64> {
        let row = sqlx::query("SELECT COUNT(*) FROM runs WHERE status = 'running'")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.get(0))
    }

    /// Add params that the run does not have yet; a param it has with the same value is left as
    /// it is. If any param would change a stored value, nothing is written and the first such
    /// param comes back.
    pub async fn add_params(
        &self,
        run_id: &str,
        params: &[(String, String)],
    ) -> Result<Option<ParamConflict>> {
        let mut tx = self.run_tx(run_id).await?;
        for (k, v) in params {
            let stored = sqlx::query("SELECT value FROM params WHERE run_id = $1 AND key = $2")
                .bind(run_id)
                .bind(k)
                .fetch_optional(&mut *tx)
                .await?;
            match stored {
                Some(row) => {
                    let stored: String = row.get(0);
                    if &stored != v {
                        return Ok(Some(ParamConflict {
                            key: k.clone(),
                            stored,
                            new: v.clone(),
                        }));
                    }
                }
                None => {
                    sqlx::query("INSERT INTO params (run_id, key, value) VALUES ($1, $2, $3)")
                        .bind(run_id)
                        .bind(k)
                        .bind(v)
                        .execute(&mut *tx)
                        .await?;
                }
            }
        }
        tx.commit().await?;
        Ok(None)
    }

    /// Change a run's status (running again clears its end), end time and name; None leaves a
    /// field as it is.
    pub async fn update_run(
        &self,
        id: &str,
        status: Option<RunStatus>,
        ended_ms: Option<i64>,
        name: Option<&str>,
    ) -> Result<()> {
        let mut tx = self.run_tx(id).await?;
        if let Some(s) = status {
            let sql = if s == RunStatus::Running {
                "UPDATE runs SET status = $1, ended_ms = NULL WHERE id = $2"
            } else {
                "UPDATE runs SET status = $1 WHERE id = $2"
            };
            sqlx::query(sql)
                .bind(s.as_str())
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        if let Some(t) = ended_ms {
            sqlx::query("UPDATE runs SET ended_ms = $1 WHERE id = $2")
                .bind(t)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        if let Some(n) = name {
            sqlx::query("UPDATE runs SET name = $1 WHERE id = $2")
                .bind(n)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

impl Backend {
    /// Merge the small chunks at the end of each series of a run into one, up to a full chunk.
    /// A client that logs point by point makes a chunk per point; merging the tail now and then
    /// keeps loading fast while the run goes on, at a bounded cost (at most one chunk's points
    /// are rewritten). Returns how many series were merged.
    pub async fn merge_tails(&self, run_id: &str) -> Result<usize> {
        let series = sqlx::query("SELECT id, n_points, n_chunks FROM series WHERE run_id = $1")
            .bind(run_id)
            .fetch_all(&self.pool)
            .await?;
        let mut merged = 0;
        for row in series {
            let (id, n, chunks): (i64, i64, i64) = (row.get(0), row.get(1), row.get(2));
            let full = (n as usize).div_ceil(chunk::CHUNK_POINTS) as i64;
            if chunks <= full + 1 {
                continue;
            }
            let mut tx = self.run_tx(run_id).await?;
            let rows = sqlx::query(
                "SELECT seq, n_points, data FROM series_chunks WHERE series_id = $1                  ORDER BY seq DESC LIMIT 4096",
            )
            .bind(id)
            .fetch_all(&mut *tx)
            .await?;
            // The trailing chunks that fit in one.
            let mut take = 0;
            let mut points = 0usize;
            for r in &rows {
                let k: i64 = r.get(1);
                if points + k as usize > chunk::CHUNK_POINTS {
                    break;
                }
                points += k as usize;
                take += 1;
            }
            if take < 2 {
                continue;
            }
            let tail = &rows[..take];
            let first_seq: i64 = tail[take - 1].get(0);
            let mut all = Series::with_capacity(points);
            for r in tail.iter().rev() {
                chunk::decode(r.get::<&[u8], _>(2), &mut all)
                    .map_err(|e| anyhow::anyhow!("a chunk of run {run_id} is damaged: {e}"))?;
            }
            let mut buf = Vec::new();
            chunk::encode(&all, 0..all.len(), &mut buf);
            sqlx::query("DELETE FROM series_chunks WHERE series_id = $1 AND seq >= $2")
                .bind(id)
                .bind(first_seq)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT INTO series_chunks (series_id, seq, first_step, last_step, n_points, data)                  VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(id)
            .bind(first_seq)
            .bind(all.steps[0])
            .bind(all.steps[all.len() - 1])
            .bind(all.len() as i64)
            .bind(&buf)
            .execute(&mut *tx)
            .await?;
            sqlx::query("UPDATE series SET n_chunks = $1 WHERE id = $2")
                .bind(first_seq + 1)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            merged += 1;
        }
        Ok(merged)
    }
}

fn experiment_from_row(r: &DbRow) -> ExperimentRow {
    ExperimentRow {
        id: r.get(0),
        name: r.get(1),
        created_ms: r.get(2),
    }
}
