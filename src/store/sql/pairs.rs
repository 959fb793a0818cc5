//! A run's params and tags: set, read, deleted, and read for every run at once (by key, the
//! runs table's own tags, or all), for listings.

use super::fold_rows as folded;
use super::*;

impl Backend {
    pub async fn set_params(&self, run_id: &str, params: &[(String, String)]) -> Result<()> {
        self.set_pairs(
            "INSERT INTO params (run_id, key, value) VALUES ($1, $2, $3) \
                        ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value",
            run_id,
            params,
        )
        .await
    }

    pub async fn set_tags(&self, run_id: &str, tags: &[(String, String)]) -> Result<()> {
        self.set_pairs(
            "INSERT INTO tags (run_id, key, value) VALUES ($1, $2, $3) \
                        ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value",
            run_id,
            tags,
        )
        .await
    }

    pub async fn params(&self, run_id: &str) -> Result<Vec<(String, String)>> {
        self.pairs(
            "SELECT key, value FROM params WHERE run_id = $1 ORDER BY key",
            run_id,
        )
        .await
    }

    pub async fn tags(&self, run_id: &str) -> Result<Vec<(String, String)>> {
        self.pairs(
            "SELECT key, value FROM tags WHERE run_id = $1 ORDER BY key",
            run_id,
        )
        .await
    }

    /// Remove tags from a run.
    pub async fn delete_tags(&self, run_id: &str, keys: &[String]) -> Result<()> {
        let mut tx = self.run_tx(run_id).await?;
        for k in keys {
            sqlx::query("DELETE FROM tags WHERE run_id = $1 AND key = $2")
                .bind(run_id)
                .bind(k)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Every (run id, key, value) of params or tags, for all runs at once.
    /// One param of every run that has it: (run, key, value).
    pub async fn params_with_key(&self, key: &str) -> Result<Vec<(String, String, String)>> {
        folded(
            &self.pool,
            "run_id, key, value",
            "SELECT run_id, key, value FROM params WHERE key = $1",
            Some(key),
        )
        .await
    }

    /// One tag of every run that has it: (run, key, value), through the index on the key.
    pub async fn tags_with_key(&self, key: &str) -> Result<Vec<(String, String, String)>> {
        folded(
            &self.pool,
            "run_id, key, value",
            "SELECT run_id, key, value FROM tags WHERE key = $1",
            Some(key),
        )
        .await
    }

    /// gantry's own tags a runs table reads (`domain::table_tags`), of every run: one statement,
    /// found through the index on the key.
    pub async fn table_tags(&self) -> Result<Vec<(String, String, String)>> {
        // The keys are gantry's own constants, written into the statement (no quote in them).
        let keys: Vec<String> = crate::domain::table_tags()
            .iter()
            .map(|k| format!("'{k}'"))
            .collect();
        let sql = format!(
            "SELECT run_id, key, value FROM tags WHERE key IN ({})",
            keys.join(", ")
        );
        folded(&self.pool, "run_id, key, value", &sql, None).await
    }

    pub async fn all_pairs(&self, table: PairTable) -> Result<Vec<(String, String, String)>> {
        let sql = match table {
            PairTable::Params => "SELECT run_id, key, value FROM params ORDER BY run_id, key",
            PairTable::Tags => "SELECT run_id, key, value FROM tags ORDER BY run_id, key",
        };
        folded(&self.pool, "run_id, key, value", sql, None).await
    }

    async fn set_pairs(
        &self,
        sql: &'static str,
        run_id: &str,
        pairs: &[(String, String)],
    ) -> Result<()> {
        let mut tx = self.run_tx(run_id).await?;
        for (k, v) in pairs {
            sqlx::query(sql)
                .bind(run_id)
                .bind(k)
                .bind(v)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn pairs(&self, sql: &'static str, run_id: &str) -> Result<Vec<(String, String)>> {
        let rows = sqlx::query(sql).bind(run_id).fetch_all(&self.pool).await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }
}
