//! Ingest from a run's metrics JSONL into the store (parse + store), in points per second, for the
//! standard workload's shape: runs × 10 metrics × 10,000 steps. Target: >= 2,000,000 points/s.
//! `cargo bench --bench ingest`; under `cargo test --benches` it does a small smoke run.

mod common;

use std::io::Write;
use std::time::{Duration, Instant};

use gantry::capture::ingest::{SOURCE_METRICS, Tail};
use gantry::domain::NewRun;
use gantry::store::Store;

fn main() {
    let quick = common::quick();
    let (runs, steps, reps) = if quick {
        (1, 1_000, 1)
    } else {
        (10, 10_000, 5)
    };
    let metrics = 10;
    let rt = common::runtime();
    let dir = tempfile::tempdir().unwrap();
    // One metrics file per run, as a training script writes it: one JSON line per step.
    let mut bytes = 0;
    let files: Vec<_> = (0..runs)
        .map(|r| {
            let path = dir.path().join(format!("run{r}.jsonl"));
            let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
            for s in 0..steps {
                let mut line = format!("{{\"step\": {s}, \"time\": {:.3}", 1.7e9 + s as f64 * 0.05);
                for m in 0..metrics {
                    line += &format!(
                        ", \"train/metric_{m}\": {}",
                        ((s * (m + 1)) as f64 * 1e-3).sin() * 3.0
                    );
                }
                line += "}\n";
                bytes += line.len();
                f.write_all(line.as_bytes()).unwrap();
            }
            path
        })
        .collect();
    let points = runs * steps * metrics;
    let mut times = Vec::new();
    for rep in 0..reps {
        let store = rt
            .block_on(Store::open(&dir.path().join(format!("g{rep}.db"))))
            .unwrap();
        let ids: Vec<String> = (0..runs)
            .map(|r| {
                let new = NewRun {
                    name: format!("r{r}"),
                    experiment: "bench".into(),
                    ..NewRun::default()
                };
                rt.block_on(store.create_run(&new)).unwrap().id
            })
            .collect();
        let t = Instant::now();
        let stored: usize = rt.block_on(async {
            let mut n = 0;
            for (id, path) in ids.iter().zip(&files) {
                let mut tail = Tail::open(&store, id, SOURCE_METRICS, path).await.unwrap();
                loop {
                    let r = tail.step(&store, 0, true).await.unwrap();
                    n += r.points;
                    if !r.more {
                        break;
                    }
                }
            }
            n
        });
        times.push(t.elapsed());
        assert_eq!(stored, points);
    }
    times.sort();
    let med: Duration = times[times.len() / 2];
    println!(
        "ingest   {runs} JSONL files x {steps} lines x {metrics} metrics ({points} points, {:.1} MB): \
         median {:.1} ms (min {:.1}, max {:.1}) = {:.2} M points/s",
        bytes as f64 / 1e6,
        med.as_secs_f64() * 1e3,
        times[0].as_secs_f64() * 1e3,
        times[times.len() - 1].as_secs_f64() * 1e3,
        points as f64 / med.as_secs_f64() / 1e6
    );
}
