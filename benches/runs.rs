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

    wide(&rt, quick);
}

/// `gantry runs --limit 50` over the wide workspace, whole process: without a filter, with a
/// filter on a param and a sort on a metric. With `GANTRY_BENCH_BASELINE=PATH` (another gantry
/// binary), that one is timed too, alternately, so the two are compared in one run.
fn wide(rt: &tokio::runtime::Runtime, quick: bool) {
    let runs = if quick { 200 } else { 10_000 };
    let dir = tempfile::tempdir().unwrap();
    // GANTRY_BENCH_KEEP=DIR builds the workspace there and keeps it (to profile against).
    let keep = std::env::var_os("GANTRY_BENCH_KEEP").map(std::path::PathBuf::from);
    let root = keep.clone().unwrap_or_else(|| dir.path().to_path_buf());
    std::fs::create_dir_all(root.join(".gantry/runs")).unwrap();
    let store = rt
        .block_on(Store::open(&root.join(".gantry/gantry.db")))
        .unwrap();
    let t = Instant::now();
    rt.block_on(common::build_wide(&store, runs));
    rt.block_on(store.close());
    println!(
        "built    wide: {runs} runs x 5 metrics x 100 steps, 30 params and 10 tags each, in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let mut bins = vec![("this", env!("CARGO_BIN_EXE_gantry").to_string())];
    if let Ok(b) = std::env::var("GANTRY_BENCH_BASELINE") {
        bins.push(("baseline", b));
    }
    for args in [
        vec!["runs", "--limit", "50"],
        vec![
            "runs",
            "--limit",
            "50",
            "--filter",
            "status:finished exp:exp3",
        ],
        vec![
            "runs",
            "--limit",
            "50",
            "--filter",
            "param.param_03>=50",
            "--sort",
            "-metric.metric/2",
        ],
        vec!["runs", "--limit", "50", "--json"],
    ] {
        let runs: Vec<(&str, &std::path::Path)> = bins
            .iter()
            .map(|(_, exe)| (exe.as_str(), root.as_path()))
            .collect();
        let timed = common::time_commands(&runs, &args, if quick { 1 } else { 9 });
        for ((name, _), ((m, lo, hi), rss)) in bins.iter().zip(timed) {
            println!(
                "wide     `gantry {}` ({name}): median {m:.1} ms (min {lo:.1}, max {hi:.1}), peak RSS {rss:.0} MB",
                args.join(" "),
            );
        }
    }
}
