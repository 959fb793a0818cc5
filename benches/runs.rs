//! `gantry runs` over the standard workload W (100 runs x 10 metrics x 10,000 steps = 10M points):
//! the listing in the library and the real binary end to end, plus loading one 10k-point series.
//! Targets: `gantry runs` over W in <= 100 ms; a 10k-point series in <= 1 ms.
//! `cargo bench --bench runs`; under `cargo test --benches` a small smoke run.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

mod common;

use gantry::domain::SeriesKind;
use gantry::filter;
use gantry::store::Store;

fn median(mut v: Vec<Duration>) -> (f64, f64, f64) {
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    (ms(v[v.len() / 2]), ms(v[0]), ms(v[v.len() - 1]))
}

fn main() {
    let quick = common::quick();
    let (runs, steps) = if quick { (5, 500) } else { (100, 10_000) };
    let rt = common::runtime();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join(".gantry/runs")).unwrap();
    let store = rt
        .block_on(Store::open(&dir.path().join(".gantry/gantry.db")))
        .unwrap();
    let t = Instant::now();
    let ids = rt.block_on(common::build_w(&store, runs, steps));
    let first = ids.last().unwrap().clone();
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
