//! A run's console output in the store, in chunks as it is written (`run_logs`), so it can be
//! read from any host. Exactly once: a chunk is stored only at the stored log's end, and chunks
//! are keyed by their start, so a second writer of the same bytes stores nothing.

use super::*;

impl Backend {
    /// Where the stored output of a run ends, in bytes.
    pub async fn log_end(&self, run_id: &str) -> Result<i64> {
        let end: Option<i64> = sqlx::query_scalar(
            "SELECT CAST(MAX(byte_offset + n_bytes) AS BIGINT) FROM run_logs WHERE run_id = $1",
        )
        .bind(run_id)
        .fetch_one(&self.pool)
        .await?;
        Ok(end.unwrap_or(0))
    }

    /// Store `data`, the run's output from byte `from` on, if the stored output ends at `from`.
    /// Returns whether it did: false when another writer stored those bytes first (the caller
    /// reads `log_end` again and goes on from there).
    pub async fn append_log(&self, run_id: &str, from: i64, data: &[u8]) -> Result<bool> {
        if data.is_empty() {
            return Ok(true);
        }
        let mut tx = self.run_tx(run_id).await?;
        let end: Option<i64> = sqlx::query_scalar(
            "SELECT CAST(MAX(byte_offset + n_bytes) AS BIGINT) FROM run_logs WHERE run_id = $1",
        )
        .bind(run_id)
        .fetch_one(&mut *tx)
        .await?;
        if end.unwrap_or(0) != from {
            return Ok(false);
        }
        let mut at = from;
        for chunk in data.chunks(LOG_CHUNK_BYTES) {
            let stored = sqlx::query(
                "INSERT INTO run_logs (run_id, byte_offset, n_bytes, data) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (run_id, byte_offset) DO NOTHING",
            )
            .bind(run_id)
            .bind(at)
            .bind(chunk.len() as i64)
            .bind(chunk)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if stored == 0 {
                return Ok(false);
            }
            at += chunk.len() as i64;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// The run's stored output from byte `from` on, at most about `max` bytes (whole chunks), and
    /// the byte where what was returned ends.
    pub async fn log_from(&self, run_id: &str, from: i64, max: usize) -> Result<(Vec<u8>, i64)> {
        let rows = sqlx::query(
            "SELECT byte_offset, data FROM run_logs \
             WHERE run_id = $1 AND byte_offset + n_bytes > $2 ORDER BY byte_offset",
        )
        .bind(run_id)
        .bind(from)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::new();
        let mut end = from;
        for r in rows {
            let start: i64 = r.get(0);
            let data: &[u8] = r.get(1);
            if start > end {
                break; // a gap: never stored that way, but never read past it either
            }
            let skip = usize::try_from(end - start).unwrap_or(0).min(data.len());
            out.extend_from_slice(&data[skip..]);
            end = start + data.len() as i64;
            if out.len() >= max {
                break;
            }
        }
        Ok((out, end))
    }
}
