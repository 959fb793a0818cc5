//! `gantry runs` over the standard workload W (100 runs x 10 metrics x 10,000 steps = 10M points):
//! the listing in the library and the real binary end to end, plus loading one 10k-point series.
//! Targets: `gantry runs` over W in <= 100 ms; a 10k-point series in <= 1 ms.
//! `cargo bench --bench runs`; under `cargo test --benches` a small smoke run.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use gantry::domain::{NewRun, Series, SeriesKind};
use gantry::filter;
use gantry::store::Store;

fn median(mut v: Vec<Duration>) -> (f64, f64, f64) {
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    (ms(v[v.len() / 2]), ms(v[0]), ms(v[v.len() - 1]))
}

fn main() {
    let quick = !std::env::args().any(|a| a == "--bench");
    let (runs, steps) = if quick { (5, 500) } else { (100, 10_000) };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join(".gantry/runs")).unwrap();
    let store = rt
        .block_on(Store::open(&dir.path().join(".gantry/gantry.db")))
        .unwrap();
    let t = Instant::now();
    let mut first = String::new();
    rt.block_on(async {
        for r in 0..runs {
            let run = store
                .create_run(&NewRun {
                    name: format!("sweep-{r:03}"),
                    experiment: format!("exp{}", r % 4),
                    started_ms: 1_700_000_000_000 + r as i64 * 60_000,
                    host: "gpu01".into(),
                    user: "bench".into(),
                    command: vec!["python".into(), "train.py".into()],
                    ..NewRun::default()
                })
                .await
                .unwrap();
            store
                .finish_run(
                    &run.id,
                    gantry::domain::RunStatus::Finished,
                    Some(0),
                    1_700_000_000_000 + r as i64 * 60_000 + 3_600_000,
                )
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
                .set_tags(
                    &run.id,
                    &[
                        ("sweep".into(), "lr".into()),
                        ("owner".into(), "bench".into()),
                    ],
                )
                .await
                .unwrap();
            let mut s = Series::with_capacity(steps);
            for i in 0..steps {
                s.push(
                    i as i64,
                    1_700_000_000_000 + i as i64 * 100,
                    (i as f64 * 1e-3).cos() + r as f64 * 1e-3,
                );
            }
            let keys: Vec<String> = (0..10).map(|k| format!("metric/{k}")).collect();
            let batch: Vec<_> = keys
                .iter()
                .map(|k| (SeriesKind::Metric, k.as_str(), &s))
                .collect();
            store.append(&run.id, &batch).await.unwrap();
            if r == 0 {
                first = run.id;
            }
        }
    });
    println!(
        "built    W: {runs} runs x 10 metrics x {steps} steps in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    // The library path of `gantry runs --filter ... --sort ...`: load, filter, sort, format.
    let expr = filter::parse("exp:exp1 | param.lr>=0.005").unwrap();
    let mut times = Vec::new();
    let mut shown = 0;
    for _ in 0..if quick { 2 } else { 30 } {
        let t = Instant::now();
        let recs = rt.block_on(store.run_records()).unwrap();
        let mut keep: Vec<_> = recs
            .iter()
            .filter(|r| {
                let last: BTreeMap<String, f64> = r.last_values();
                expr.matches(&filter::Subject {
                    run: &r.run,
                    params: &r.params,
                    tags: &r.tags,
                    metrics: &last,
                })
            })
            .collect();
        keep.sort_by_key(|r| std::cmp::Reverse(r.run.started_ms));
        shown = keep.len();
        let text: String = keep
            .iter()
            .map(|r| format!("{} {} {}\n", r.run.short_id(), r.run.name, r.run.status))
            .collect();
        std::hint::black_box(text);
        times.push(t.elapsed());
    }
    let (m, lo, hi) = median(times);
    println!(
        "list     run records + filter + sort over W ({shown} shown): median {m:.2} ms (min {lo:.2}, max {hi:.2})"
    );

    // The real binary, end to end (process start, store open, recovery check, listing).
    let exe = env!("CARGO_BIN_EXE_gantry");
    let mut times = Vec::new();
    for _ in 0..if quick { 1 } else { 15 } {
        let t = Instant::now();
        let out = std::process::Command::new(exe)
            .args([
                "--workspace",
                dir.path().to_str().unwrap(),
                "runs",
                "--limit",
                "0",
            ])
            .output()
            .unwrap();
        times.push(t.elapsed());
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let (m, lo, hi) = median(times);
    println!(
        "cli      `gantry runs --limit 0` over W, whole process: median {m:.1} ms (min {lo:.1}, max {hi:.1})"
    );

    let mut times = Vec::new();
    for _ in 0..if quick { 2 } else { 50 } {
        let t = Instant::now();
        let s = rt
            .block_on(store.load_series(&first, SeriesKind::Metric, "metric/3"))
            .unwrap();
        times.push(t.elapsed());
        assert_eq!(s.len(), steps);
    }
    let (m, lo, hi) = median(times);
    println!("load     one {steps}-point series of W: median {m:.3} ms (min {lo:.3}, max {hi:.3})");
}
