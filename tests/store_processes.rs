//! Several processes writing one store at once lose no rows and never fail with "database is
//! locked". This file is its own harness: the parent runs the test binary again as writers.

use std::process::Command;

use gantry::domain::{NewRun, Series, SeriesKind};
use gantry::store::Store;

const WRITERS: usize = 6;
const RUNS_EACH: usize = 15;
const KEYS: usize = 5;
const POINTS: usize = 400;
const BATCH: usize = 50;

fn main() {
    if let Ok(path) = std::env::var("GANTRY_TEST_WRITER_DB") {
        let me: usize = std::env::var("GANTRY_TEST_WRITER_ID")
            .unwrap()
            .parse()
            .unwrap();
        writer(&path, me);
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("gantry.db");
    let exe = std::env::current_exe().unwrap();
    // All writers start on a database that does not exist yet: opening and migrating race too.
    let children: Vec<_> = (0..WRITERS)
        .map(|i| {
            Command::new(&exe)
                .env("GANTRY_TEST_WRITER_DB", &db)
                .env("GANTRY_TEST_WRITER_ID", i.to_string())
                .spawn()
                .expect("spawn writer")
        })
        .collect();
    let mut failed = 0;
    for mut c in children {
        if !c.wait().unwrap().success() {
            failed += 1;
        }
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (runs, series, points) = rt.block_on(async {
        let s = Store::open(&db).await.unwrap();
        s.counts().await.unwrap()
    });
    let want = (
        (WRITERS * RUNS_EACH) as i64,
        (WRITERS * RUNS_EACH * KEYS) as i64,
        (WRITERS * RUNS_EACH * KEYS * POINTS) as i64,
    );
    let ok = failed == 0 && (runs, series, points) == want;
    println!(
        "{WRITERS} writer processes: {failed} failed; runs/series/points {:?}, expected {:?}",
        (runs, series, points),
        want
    );
    println!("{} passed, {} failed", usize::from(ok), usize::from(!ok));
    if !ok {
        std::process::exit(1);
    }
}

fn writer(path: &str, me: usize) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store = Store::open(std::path::Path::new(path)).await.expect("open");
        for r in 0..RUNS_EACH {
            let run = store
                .create_run(&NewRun {
                    experiment: format!("exp{}", r % 3),
                    name: format!("w{me}-r{r}"),
                    started_ms: (me * 1000 + r) as i64,
                    host: "h".into(),
                    user: "u".into(),
                    command: vec!["x".into()],
                    ..NewRun::default()
                })
                .await
                .expect("create run");
            store
                .set_params(&run.id, &[("writer".into(), me.to_string())])
                .await
                .expect("params");
            for start in (0..POINTS).step_by(BATCH) {
                let mut s = Series::default();
                for i in start..start + BATCH {
                    s.push(i as i64, i as i64, i as f64);
                }
                let keys: Vec<String> = (0..KEYS).map(|k| format!("m{k}")).collect();
                let batch: Vec<_> = keys
                    .iter()
                    .map(|k| (SeriesKind::Metric, k.as_str(), &s))
                    .collect();
                store.append(&run.id, &batch).await.expect("append");
            }
        }
    });
}
