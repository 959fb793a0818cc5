//! Shared by the benches: quick mode, the runtime, medians, and the standard workload W.
#![allow(dead_code)]

use gantry::domain::{NewRun, RunStatus, Series, SeriesKind};
use gantry::store::Store;

/// Under `cargo test --benches` (no `--bench` argument) a bench makes a small smoke run.
pub fn quick() -> bool {
    !std::env::args().any(|a| a == "--bench")
}

/// The runtime every bench uses: two workers, as on the 2-core reference machine.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// (median, min, max) of some measurements.
pub fn median(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    (v[v.len() / 2], v[0], v[v.len() - 1])
}

/// Fill `store` with `runs` finished runs of 10 metrics x `steps` steps, params and tags.
/// Returns the run ids, newest first.
pub async fn build_w(store: &Store, runs: usize, steps: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for r in 0..runs {
        let started = 1_700_000_000_000 + r as i64 * 60_000;
        let run = store
            .create_run(&NewRun {
                name: format!("sweep-{r:03}"),
                experiment: format!("exp{}", r % 4),
                started_ms: started,
                host: "gpu01".into(),
                user: "bench".into(),
                command: vec!["python".into(), "train.py".into()],
                ..NewRun::default()
            })
            .await
            .unwrap();
        store
            .finish_run(&run.id, RunStatus::Finished, Some(0), started + 3_600_000)
            .await
            .unwrap();
        let params: Vec<(String, String)> = [
            ("lr", format!("{}", 1e-4 * (r + 1) as f64)),
            ("batch_size", "64".into()),
            ("seed", r.to_string()),
            ("opt", "adamw".into()),
            ("wd", "0.01".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        store.set_params(&run.id, &params).await.unwrap();
        store
            .set_tags(&run.id, &[("sweep".into(), "lr".into())])
            .await
            .unwrap();
        let mut s = Series::with_capacity(steps);
        for i in 0..steps {
            s.push(
                i as i64,
                started + i as i64 * 100,
                (i as f64 * 1e-3).cos() + r as f64 * 1e-3,
            );
        }
        let keys: Vec<String> = (0..10).map(|k| format!("metric/{k}")).collect();
        let batch: Vec<_> = keys
            .iter()
            .map(|k| (SeriesKind::Metric, k.as_str(), &s))
            .collect();
        store.append(&run.id, &batch).await.unwrap();
        ids.push(run.id);
    }
    ids.reverse();
    ids
}

/// A wide workspace, as a year of sweeps leaves it: `runs` runs of 5 metrics x 100 steps, each with
/// 30 params and 10 tags (the shape `gantry runs` was slow on at 10,000 runs).
pub async fn build_wide(store: &Store, runs: usize) {
    let keys: Vec<String> = (0..5).map(|k| format!("metric/{k}")).collect();
    for r in 0..runs {
        let started = 1_700_000_000_000 + r as i64 * 60_000;
        let run = store
            .create_run(&NewRun {
                name: format!("wide-{r:05}"),
                experiment: format!("exp{}", r % 10),
                started_ms: started,
                host: "gpu01".into(),
                user: "bench".into(),
                command: vec!["python".into(), "train.py".into()],
                ..NewRun::default()
            })
            .await
            .unwrap();
        store
            .finish_run(&run.id, RunStatus::Finished, Some(0), started + 600_000)
            .await
            .unwrap();
        let params: Vec<(String, String)> = (0..30)
            .map(|p| (format!("param_{p:02}"), format!("{}", (r * 31 + p) % 97)))
            .collect();
        store.set_params(&run.id, &params).await.unwrap();
        let tags: Vec<(String, String)> = (0..10)
            .map(|t| (format!("tag_{t}"), format!("v{}", (r + t) % 5)))
            .collect();
        store.set_tags(&run.id, &tags).await.unwrap();
        let mut s = Series::with_capacity(100);
        for i in 0..100 {
            s.push(
                i,
                started + i * 1000,
                f64::from((i as f32 + r as f32).sqrt()),
            );
        }
        let batch: Vec<_> = keys
            .iter()
            .map(|k| (SeriesKind::Metric, k.as_str(), &s))
            .collect();
        store.append(&run.id, &batch).await.unwrap();
    }
}
