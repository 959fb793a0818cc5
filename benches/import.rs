//! Importing an MLflow store of 100 runs x 10 metrics x 10,000 steps (10M points), from the
//! FileStore tree and from a SQLite store with MLflow's schema, in points per second.
//! Target: >= 1,000,000 points/s. `cargo bench --bench import`; under `cargo test --benches` a
//! small smoke run.

mod common;

use std::io::Write;
use std::time::Instant;

use gantry::interop;
use gantry::store::Store;

fn main() {
    let quick = common::quick();
    let (runs, metrics, steps) = if quick {
        (3, 3, 100)
    } else {
        (100, 10, 10_000)
    };
    let points = runs * metrics * steps;
    let rt = common::runtime();
    let dir = tempfile::tempdir().unwrap();

    // A FileStore tree as MLflow writes it.
    let root = dir.path().join("mlruns");
    let exp = root.join("1");
    std::fs::create_dir_all(&exp).unwrap();
    std::fs::write(
        exp.join("meta.yaml"),
        "experiment_id: '1'\nname: sweep\nlifecycle_stage: active\n",
    )
    .unwrap();
    for r in 0..runs {
        let id = format!("{:032x}", r + 1);
        let run = exp.join(&id);
        std::fs::create_dir_all(run.join("metrics/train")).unwrap();
        std::fs::create_dir_all(run.join("params")).unwrap();
        std::fs::write(
            run.join("meta.yaml"),
            format!("run_id: {id}\nrun_name: run-{r}\nstart_time: 1795000000000\nend_time: 1795003600000\nstatus: 3\nuser_id: bench\nlifecycle_stage: active\nexperiment_id: '1'\n"),
        )
        .unwrap();
        std::fs::write(run.join("params/lr"), format!("{}", 1e-4 * (r + 1) as f64)).unwrap();
        for m in 0..metrics {
            let mut f = std::io::BufWriter::new(
                std::fs::File::create(run.join(format!("metrics/train/m{m}"))).unwrap(),
            );
            for s in 0..steps {
                writeln!(
                    f,
                    "{} {} {s}",
                    1_795_000_000_000u64 + s as u64 * 100,
                    ((s * (m + 1)) as f64 * 1e-3).sin()
                )
                .unwrap();
            }
        }
    }
    let (m, lo, hi) = time_imports(
        &rt,
        dir.path(),
        "f",
        &root,
        points,
        if quick { 1 } else { 3 },
    );
    println!(
        "import   MLflow FileStore, {runs} runs x {metrics} metrics x {steps} steps ({points} points): median {m:.2} s (min {lo:.2}, max {hi:.2}) = {:.2} M points/s",
        points as f64 / m / 1e6
    );

    // The same in a SQLite store with MLflow's tables.
    let db = dir.path().join("mlflow.db");
    mlflow_db(&rt, &db, runs, metrics, steps, 1);
    let (m, lo, hi) = time_imports(&rt, dir.path(), "d", &db, points, if quick { 1 } else { 3 });
    println!(
        "import   MLflow SQLite store, same size: median {m:.2} s (min {lo:.2}, max {hi:.2}) = {:.2} M points/s",
        points as f64 / m / 1e6
    );

    // Many small runs, as a year of sweeps leaves them: the cost per run, not per point.
    let (runs, metrics, steps, params) = if quick {
        (50, 5, 100, 30)
    } else {
        (4_000, 5, 100, 30)
    };
    let points = runs * metrics * steps;
    // GANTRY_BENCH_KEEP=DIR keeps this store there as small.db (to import with another binary).
    let db = std::env::var_os("GANTRY_BENCH_KEEP")
        .map_or_else(|| dir.path().to_path_buf(), std::path::PathBuf::from)
        .join("small.db");
    let _ = std::fs::remove_file(&db);
    mlflow_db(&rt, &db, runs, metrics, steps, params);
    let (m, lo, hi) = time_imports(&rt, dir.path(), "s", &db, points, if quick { 1 } else { 3 });
    println!(
        "import   MLflow SQLite store, {runs} runs x {metrics} metrics x {steps} steps, {params} params each ({points} points): median {m:.2} s (min {lo:.2}, max {hi:.2}) = {:.2} M points/s, {:.2} ms a run",
        points as f64 / m / 1e6,
        m * 1e3 / runs as f64
    );
    // The two halves: reading MLflow's store, and storing the runs read (the batched store path
    // that any copy of many runs takes).
    let t = Instant::now();
    let (read, _) = rt.block_on(interop::mlflow::read_db(&db)).unwrap();
    let reading = t.elapsed().as_secs_f64();
    let mut storing = Vec::new();
    for rep in 0..if quick { 1 } else { 3 } {
        let store = rt
            .block_on(Store::open(&dir.path().join(format!("b{rep}.db"))))
            .unwrap();
        let t = Instant::now();
        for batch in read.chunks(256) {
            rt.block_on(store.import_runs(batch)).unwrap();
        }
        storing.push(t.elapsed().as_secs_f64());
    }
    let (m, lo, hi) = common::median(storing);
    println!(
        "import   of which reading MLflow's store: {reading:.2} s; storing {runs} runs in batches of 256: median {m:.2} s (min {lo:.2}, max {hi:.2}) = {:.2} M points/s",
        points as f64 / m / 1e6
    );
    // Copying those runs from one gantry store into another (`gantry store copy`, `gantry sync`).
    let from = rt.block_on(Store::open(&dir.path().join("b0.db"))).unwrap();
    let mut copying = Vec::new();
    for rep in 0..if quick { 1 } else { 3 } {
        let to = rt
            .block_on(Store::open(&dir.path().join(format!("c{rep}.db"))))
            .unwrap();
        let t = Instant::now();
        let done = rt
            .block_on(gantry::store::copy::copy(&from, &to, None, |_, _| {}))
            .unwrap();
        copying.push(t.elapsed().as_secs_f64());
        assert_eq!(done.points as usize, points);
    }
    let (m, lo, hi) = common::median(copying);
    println!(
        "copy     the same {runs} runs from one gantry store into another: median {m:.2} s (min {lo:.2}, max {hi:.2}) = {:.2} M points/s",
        points as f64 / m / 1e6
    );
}

/// A SQLite store with MLflow's tables: `runs` runs of `metrics` x `steps` points and `params`
/// params each.
fn mlflow_db(
    rt: &tokio::runtime::Runtime,
    db: &std::path::Path,
    runs: usize,
    metrics: usize,
    steps: usize,
    params: usize,
) {
    rt.block_on(async {
        let s = sqlx::SqlitePool::connect(&format!("sqlite://{}?mode=rwc", db.display())).await.unwrap();
        for ddl in [
            "CREATE TABLE experiments (experiment_id INTEGER PRIMARY KEY, name TEXT, lifecycle_stage TEXT)",
            "CREATE TABLE runs (run_uuid TEXT PRIMARY KEY, name TEXT, status TEXT, start_time BIGINT, end_time BIGINT, user_id TEXT, lifecycle_stage TEXT, experiment_id INTEGER, source_name TEXT)",
            "CREATE TABLE params (key TEXT, value TEXT, run_uuid TEXT)",
            "CREATE TABLE tags (key TEXT, value TEXT, run_uuid TEXT)",
            "CREATE TABLE metrics (key TEXT, value FLOAT, timestamp BIGINT, run_uuid TEXT, step BIGINT, is_nan BOOLEAN)",
            "CREATE INDEX m_run ON metrics (run_uuid, key, step)",
            "INSERT INTO experiments VALUES (1, 'sweep', 'active')",
        ] {
            sqlx::query(ddl).execute(&s).await.unwrap();
        }
        let mut tx = s.begin().await.unwrap();
        for r in 0..runs {
            let id = format!("{:032x}", r + 1);
            sqlx::query("INSERT INTO runs VALUES ($1, $2, 'FINISHED', 1795000000000, 1795003600000, 'bench', 'active', 1, '')")
                .bind(&id)
                .bind(format!("run-{r}"))
                .execute(&mut *tx)
                .await
                .unwrap();
            for p in 0..params {
                sqlx::query("INSERT INTO params VALUES ($1, $2, $3)")
                    .bind(format!("param_{p:02}"))
                    .bind(format!("{}", (r * 31 + p) % 97))
                    .bind(&id)
                    .execute(&mut *tx)
                    .await
                    .unwrap();
            }
            for m in 0..metrics {
                // One statement per series: a recursive CTE makes its rows.
                sqlx::query(
                    "WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i + 1 < $1) \
                     INSERT INTO metrics SELECT $2, (i * $3 % 997) / 997.0, 1795000000000 + i * 100, $4, i, 0 FROM s",
                )
                .bind(steps as i64)
                .bind(format!("train/m{m}"))
                .bind((m + 1) as i64)
                .bind(&id)
                .execute(&mut *tx)
                .await
                .unwrap();
            }
        }
        tx.commit().await.unwrap();
        s.close().await;
    });
}

/// Import `source` into `reps` fresh stores; (median, min, max) seconds.
fn time_imports(
    rt: &tokio::runtime::Runtime,
    dir: &std::path::Path,
    tag: &str,
    source: &std::path::Path,
    points: usize,
    reps: usize,
) -> (f64, f64, f64) {
    let mut times = Vec::new();
    for rep in 0..reps {
        let store = rt
            .block_on(Store::open(&dir.join(format!("{tag}{rep}.db"))))
            .unwrap();
        let t = Instant::now();
        let sum = rt
            .block_on(interop::import_mlflow(&store, source, &|_, _| {}))
            .unwrap();
        times.push(t.elapsed().as_secs_f64());
        assert_eq!(sum.points, points);
    }
    times.sort_by(f64::total_cmp);
    (times[times.len() / 2], times[0], times[times.len() - 1])
}
