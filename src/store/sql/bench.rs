//! Benchmark history: each result with the host, GPU (UUID and name), driver, CUDA version,
//! parameters, statistics, % of peak and the correctness verdict.

use super::*;
use crate::domain::bench::{BenchResult, DeviceInfo, Kind, Precision, Spec, Stats, Unit};

impl Backend {
    /// Store one result of a run that started at `started_ms` on `device`.
    pub async fn record_bench(
        &self,
        started_ms: i64,
        host: &str,
        device: &DeviceInfo,
        r: &BenchResult,
    ) -> Result<String> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO bench_results (id, started_ms, host, backend, device, benchmark, config, \
             unit, median, min_value, max_value, stddev, repetitions, peak, device_uuid, driver, \
             cuda_version, pct_of_peak, check_ok, max_rel_err, conditions) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, \
             $18, $19, $20, $21)",
        )
        .bind(&id)
        .bind(started_ms)
        .bind(host)
        .bind(&device.backend)
        .bind(&device.name)
        .bind(r.spec.kind.as_str())
        .bind(r.spec.config().to_string())
        .bind(r.unit.as_str())
        .bind(r.stats.median)
        .bind(r.stats.min)
        .bind(r.stats.max)
        .bind(r.stats.stddev)
        .bind(r.stats.reps as i64)
        .bind(r.peak)
        .bind(&device.uuid)
        .bind(device.driver.clone().unwrap_or_default())
        .bind(device.cuda.clone().unwrap_or_default())
        .bind(r.pct_of_peak)
        .bind(r.check.map(|c| i64::from(c.ok)))
        .bind(r.check.map(|c| c.max_rel_err).filter(|e| e.is_finite()))
        .bind(
            r.conditions
                .as_ref()
                .and_then(|c| serde_json::to_string(c).ok()),
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Stored results, oldest first; only one device's when `device_uuid` is given.
    pub async fn bench_history(&self, device_uuid: Option<&str>) -> Result<Vec<StoredBench>> {
        let rows = sqlx::query(
            "SELECT id, started_ms, host, backend, device, device_uuid, driver, cuda_version, \
             benchmark, config, unit, median, min_value, max_value, stddev, repetitions, peak, \
             pct_of_peak, check_ok, max_rel_err, conditions FROM bench_results \
             WHERE $1 IS NULL OR device_uuid = $1 ORDER BY started_ms, id",
        )
        .bind(device_uuid)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let kind = Kind::parse(r.get::<&str, _>(8));
            let config: serde_json::Value =
                serde_json::from_str(r.get::<&str, _>(9)).unwrap_or_default();
            let Some(kind) = kind else { continue };
            let spec = Spec {
                kind,
                precision: config["precision"].as_str().and_then(Precision::parse),
                size: config["size"].as_u64().unwrap_or(0),
                variant: config["variant"].as_str().unwrap_or("").to_string(),
            };
            let unit = match r.get::<&str, _>(10) {
                "TFLOP/s" => Unit::TflopS,
                "GB/s" => Unit::GbS,
                _ => Unit::Us,
            };
            out.push(StoredBench {
                id: r.get(0),
                started_ms: r.get(1),
                host: r.get(2),
                backend: r.get(3),
                device: r.get(4),
                device_uuid: r.get(5),
                driver: r.get(6),
                cuda: r.get(7),
                spec,
                unit,
                stats: Stats {
                    median: r.get(11),
                    min: r.get(12),
                    max: r.get(13),
                    stddev: r.get(14),
                    reps: r.get::<i64, _>(15) as usize,
                },
                peak: r.get(16),
                pct_of_peak: r.get(17),
                check_ok: r.get::<Option<i64>, _>(18).map(|v| v != 0),
                max_rel_err: r.get(19),
                conditions: r
                    .get::<Option<&str>, _>(20)
                    .and_then(|j| serde_json::from_str(j).ok()),
            });
        }
        Ok(out)
    }
}
