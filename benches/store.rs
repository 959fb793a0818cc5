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
    bytes_per_point(&rt, if quick { 20_000 } else { 1_000_000 });
}

/// Bytes a point takes, for three shapes of metric: as chunks (version 1, raw 8-byte values,
/// against version 2, deltas of deltas and XOR-compressed values) and on disk (the whole SQLite
/// file after compaction, version 2).
fn bytes_per_point(rt: &tokio::runtime::Runtime, n: usize) {
    use gantry::store::chunk;
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut noise = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % 1_000_000) as f64 / 1e6
    };
    let mut shapes: Vec<(&str, Series)> = Vec::new();
    let mut loss = 2.5f32;
    let mut f32s = Series::with_capacity(n);
    let mut noisy = Series::with_capacity(n);
    for i in 0..n {
        loss *= 0.9997 + noise() as f32 * 1e-4;
        let t = 1_700_000_000_000 + i as i64 * 1000;
        f32s.push(i as i64, t, f64::from(loss));
        noisy.push(
            i as i64,
            t + (noise() * 40.0) as i64,
            noise() * 0.1 + 1.0 / (1.0 + i as f64),
        );
    }
    shapes.push(("W's smooth f64 (sin)", series(n, 0)));
    shapes.push(("float32 loss curve, 1 s apart", f32s));
    shapes.push(("noisy f64, jittered times", noisy));
    for (name, s) in shapes {
        let (mut v1, mut v2, mut buf) = (0usize, 0usize, Vec::new());
        let (mut c1, mut c2) = (Vec::new(), Vec::new());
        for start in (0..n).step_by(chunk::CHUNK_POINTS) {
            let end = (start + chunk::CHUNK_POINTS).min(n);
            chunk::encode_v1(&s, start..end, &mut buf);
            v1 += buf.len();
            c1.push(buf.clone());
            chunk::encode(&s, start..end, &mut buf);
            v2 += buf.len();
            c2.push(buf.clone());
        }
        // Decoding every chunk, the two versions alternately, 9 times each.
        let (mut d1, mut d2) = (Vec::new(), Vec::new());
        for _ in 0..9 {
            for (chunks, times) in [(&c1, &mut d1), (&c2, &mut d2)] {
                let t = Instant::now();
                let mut out = Series::with_capacity(n);
                for c in chunks.iter() {
                    chunk::decode(c, &mut out).unwrap();
                }
                times.push(t.elapsed());
                assert_eq!(out.len(), n);
            }
        }
        let (m1, _, _) = median(d1);
        let (m2, _, _) = median(d2);
        println!(
            "decode   {name}, {n} points: v1 {:.1} ms, v2 {:.1} ms (medians of 9, alternating)",
            ms(m1),
            ms(m2)
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gantry.db");
        let store = rt.block_on(Store::open(&path)).unwrap();
        let id = rt
            .block_on(store.create_run(&run_record("bytes")))
            .unwrap()
            .id;
        rt.block_on(async {
            for start in (0..n).step_by(1000) {
                let mut b = Series::default();
                for i in start..(start + 1000).min(n) {
                    b.push(s.steps[i], s.times_ms[i], s.values[i]);
                }
                store
                    .append(&id, &[(SeriesKind::Metric, "m", &b)])
                    .await
                    .unwrap();
            }
            store.compact(&id).await.unwrap();
            store.close().await;
        });
        let disk: u64 = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("gantry.db"))
            .filter(|e| !e.file_name().to_string_lossy().ends_with(".lock"))
            .map(|e| e.metadata().unwrap().len())
            .sum();
        println!(
            "bytes    {name}, {n} points: chunks v1 {:.2} B/point, v2 {:.2} B/point ({:.0}%); on disk (v2) {:.2} B/point",
            v1 as f64 / n as f64,
            v2 as f64 / n as f64,
            100.0 * v2 as f64 / v1 as f64,
            disk as f64 / n as f64
        );
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
