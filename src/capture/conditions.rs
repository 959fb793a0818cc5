//! A run's conditions, read back from what its sampler stored: the series of
//! `domain::conditions::keys`, its metric points for the step rate, its `gantry/mfu`, its hardware
//! tag and its GPU's bench history. For `gantry compare` and the workbench's compare view.

use crate::domain::conditions::{RunConditions, keys, steps_per_s};
use crate::domain::efficiency::{HARDWARE_TAG, Hardware, keys as eff_keys};
use crate::domain::{RunRecord, SeriesKind};
use crate::store::Store;

/// The conditions of the run `rec` (a whole record: its metrics, tags).
pub async fn load(store: &Store, rec: &RunRecord) -> anyhow::Result<RunConditions> {
    let id = &rec.run.id;
    let system = |key: &'static str| async move {
        store
            .load_series(id, SeriesKind::System, key)
            .await
            .map(|s| s.values)
            .unwrap_or_default()
    };
    let median = |v: &[f64]| crate::domain::bench::median(v);
    // The step clock: the metric with the most points (gantry's own aside).
    let clock = rec
        .metrics
        .iter()
        .filter(|(k, _)| !k.starts_with("gantry/"))
        .max_by_key(|(_, s)| s.n_points)
        .map(|(k, _)| k.clone());
    let steps_per_s = match clock {
        Some(k) => {
            let s = store.load_series(id, SeriesKind::Metric, &k).await?;
            steps_per_s(&s.steps, &s.times_ms)
        }
        None => None,
    };
    let mfu = if rec.metrics.contains_key(eff_keys::MFU) {
        median(
            &store
                .load_series(id, SeriesKind::Metric, eff_keys::MFU)
                .await?
                .values,
        )
    } else {
        None
    };
    let hw = rec.tags.get(HARDWARE_TAG).and_then(|t| Hardware::parse(t));
    let first = hw.as_ref().and_then(|h| h.gpus.first());
    let peak_tflops = hw.as_ref().and_then(|h| {
        h.gpus
            .iter()
            .map(|g| {
                crate::bench::peaks::tensor_peaks(&g.name)
                    .and_then(|(_, t)| t.bf16.map(|b| b / 1e12))
            })
            .sum::<Option<f64>>()
    });
    let mut throttled = Vec::new();
    for (key, what) in keys::THROTTLES {
        let v = system(key).await;
        if !v.is_empty() {
            let share = v.iter().filter(|x| **x > 0.0).count() as f64 / v.len() as f64;
            if share > 0.0 {
                throttled.push((what.to_string(), share));
            }
        }
    }
    let others = system(keys::OTHER_PROCS)
        .await
        .into_iter()
        .fold(None, |m: Option<f64>, x| Some(m.map_or(x, |m| m.max(x))));
    let bench_tflops = match first {
        Some(g) => {
            let history = store.bench_history(Some(&g.uuid)).await?;
            history
                .iter()
                .filter(|b| {
                    b.spec.kind == crate::domain::bench::Kind::Gemm
                        && b.spec.precision == Some(crate::domain::bench::Precision::Bf16)
                        && b.check_ok != Some(false)
                })
                .min_by_key(|b| (b.started_ms - rec.run.started_ms).abs())
                .map(|b| (b.stats.median, b.started_ms))
        }
        None => None,
    };
    Ok(RunConditions {
        id: id.clone(),
        name: rec.run.name.clone(),
        steps_per_s,
        mfu,
        gpu: hw.as_ref().map(|h| h.summary()).filter(|s| !s.is_empty()),
        uuid: first.map(|g| g.uuid.clone()),
        peak_tflops,
        sm_clock_mhz: median(&system(keys::SM_CLOCK).await),
        power_limit_w: median(&system(keys::POWER_LIMIT).await)
            .or_else(|| first.and_then(|g| g.power_limit_w)),
        power_w: median(&system(keys::POWER).await),
        throttled,
        others,
        pcie: first.and_then(|g| Some(format!("gen{}×{}", g.pcie_gen?, g.pcie_width?))),
        host_cpu: median(&system(keys::HOST_CPU).await),
        bench_tflops,
    })
}
