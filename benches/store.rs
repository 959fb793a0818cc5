//! Store speed: series ingest (points/s) and series load time, for the layout the Runs issues need
//! (>= 2M points/s ingested; a 10k-point series in <= 1 ms; a 1M-point series in <= 20 ms).
//! Run with `cargo bench --bench store` (or `just bench`). Prints medians of repeated runs.

mod common;

use std::time::{Duration, Instant};

use gantry::domain::{NewRun, Series, SeriesKind};
use gantry::store::Store;

fn median(mut v: Vec<Duration>) -> (Duration, Duration, Duration) {
    v.sort();
    (v[v.len() / 2], v[0], v[v.len() - 1])
}

fn run_record(name: &str) -> NewRun {
    NewRun {
        experiment: "bench".into(),
        name: name.into(),
        host: "h".into(),
        user: "u".into(),
        command: vec!["train".into()],
        ..NewRun::default()
    }
}

fn series(n: usize, offset: usize) -> Series {
    let mut s = Series::with_capacity(n);
    for i in offset..offset + n {
        s.push(
            i as i64,
            1_700_000_000_000 + i as i64 * 50,
            (i as f64 * 0.001).sin(),
        );
    }
    s
}

fn main() {
    // `cargo test --benches` runs this with --bench absent: do a tiny smoke run only.
    let quick = common::quick();
    let rt = common::runtime();
    let (runs, keys, steps, batch_steps, reps) = if quick {
        (2, 3, 2_000, 500, 1)
    } else {
        (10, 10, 10_000, 1_000, 5)
    };
    let points = runs * keys * steps;
    let key_names: Vec<String> = (0..keys).map(|k| format!("metric/{k}")).collect();

    // Ingest: W-shaped (runs × metrics × steps), appended as a live run would, in batches.
    let mut ingest = Vec::new();
    for rep in 0..reps {
        let dir = tempfile::tempdir().unwrap();
        let store = rt
            .block_on(Store::open(&dir.path().join("gantry.db")))
            .unwrap();
        let ids: Vec<String> = (0..runs)
            .map(|r| {
                rt.block_on(store.create_run(&run_record(&format!("r{rep}-{r}"))))
                    .unwrap()
                    .id
            })
            .collect();
        let batches: Vec<Series> = (0..steps)
            .step_by(batch_steps)
            .map(|s| series(batch_steps, s))
            .collect();
        let t = Instant::now();
        rt.block_on(async {
            for id in &ids {
                for b in &batches {
                    let batch: Vec<_> = key_names
                        .iter()
                        .map(|k| (SeriesKind::Metric, k.as_str(), b))
                        .collect();
                    store.append(id, &batch).await.unwrap();
                }
            }
        });
        ingest.push(t.elapsed());
        let (_, _, n) = rt.block_on(store.counts()).unwrap();
        assert_eq!(n as usize, points);
    }
    let (med, lo, hi) = median(ingest);
    println!(
        "ingest   {runs} runs x {keys} metrics x {steps} steps ({points} points, batches of {batch_steps} steps): \
         median {:.1} ms (min {:.1}, max {:.1}) = {:.2} M points/s",
        ms(med),
        ms(lo),
        ms(hi),
        points as f64 / med.as_secs_f64() / 1e6
    );

    // Load: one 10k-point series and one 1M-point series.
    let dir = tempfile::tempdir().unwrap();
    let store = rt
        .block_on(Store::open(&dir.path().join("gantry.db")))
        .unwrap();
    let id = rt
        .block_on(store.create_run(&run_record("load")))
        .unwrap()
        .id;
    for (key, n, loads) in [
        ("s10k", 10_000, 50),
        ("s1m", if quick { 50_000 } else { 1_000_000 }, 15),
    ] {
        rt.block_on(async {
            for start in (0..n).step_by(100_000) {
                let s = series((n - start).min(100_000), start);
                store
                    .append(&id, &[(SeriesKind::Metric, key, &s)])
                    .await
                    .unwrap();
            }
        });
        let loads = if quick { 2 } else { loads };
        let mut times = Vec::new();
        for _ in 0..loads {
            let t = Instant::now();
            let s = rt
                .block_on(store.load_series(&id, SeriesKind::Metric, key))
                .unwrap();
            times.push(t.elapsed());
            assert_eq!(s.len(), n);
        }
        let (med, lo, hi) = median(times);
        println!(
            "load     one {n}-point series: median {:.3} ms (min {:.3}, max {:.3}) over {loads} loads",
            ms(med),
            ms(lo),
            ms(hi)
        );
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
