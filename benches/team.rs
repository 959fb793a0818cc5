//! The PostgreSQL team store, measured side by side with the SQLite store on this machine:
//! - ingest from one writer and from four at once (points/s; targets 1M and 2M);
//! - `gantry runs` over W (100 runs x 10 metrics x 10k steps), whole process (target 100 ms);
//! - loading a 1M-point series (target 30 ms);
//! - a team of 64 hosts, each run logging 10k points/s in 250 ms ticks (the supervisor's), through
//!   one server: the lag of each tick, every point stored, and the server's and writers' CPU;
//! - a point written by one host to the reload in another's workbench (NOTIFY, then the run's
//!   series read again): the median.
//!
//! `cargo bench --bench team`; under `cargo test --benches` a small smoke run. The server is
//! `GANTRY_TEST_POSTGRES_URL`, else a throwaway cluster (tests/common/postgres.rs).
//! `GANTRY_BENCH_TEAM=ingest,runs,load,hosts,live` measures only those parts.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use gantry::domain::{NewRun, Series, SeriesKind};
use gantry::store::Store;

fn main() {
    let quick = common::quick();
    let rt = common::runtime();
    let tmp = tempfile::tempdir().unwrap();
    let url = || common::postgres::fresh_db().expect("a PostgreSQL server");
    let sqlite = |name: &str| tmp.path().join(format!("{name}.db"));
    let parts = std::env::var("GANTRY_BENCH_TEAM").unwrap_or_default();
    let want = |part: &str| parts.is_empty() || parts.split(',').any(|p| p == part);
    let reps = if quick { 3 } else { 9 };

    // Ingest.
    if want("ingest") {
        ingest_part(&rt, quick, &url, &sqlite);
    }
    if want("runs") {
        runs_part(&rt, quick, &url, tmp.path(), reps);
    }
    if want("load") {
        load_part(&rt, quick, &url, &sqlite, reps);
    }
    if want("hosts") {
        let (hosts, secs) = if quick { (8, 3) } else { (64, 60) };
        rt.block_on(team(&url(), hosts, secs));
    }
    if want("live") {
        rt.block_on(point_to_reload(&url(), if quick { 5 } else { 21 }));
    }
}

fn ingest_part(
    rt: &tokio::runtime::Runtime,
    quick: bool,
    url: &dyn Fn() -> String,
    sqlite: &dyn Fn(&str) -> std::path::PathBuf,
) {
    let (series, steps) = if quick { (4, 5_000) } else { (10, 100_000) };
    println!(
        "ingest: {series} series x {steps} steps per writer, appended in ticks of 2,500 points a series"
    );
    for writers in [1usize, 4] {
        let pg = url();
        let lite = sqlite(&format!("ingest{writers}"));
        for (name, open) in [("sqlite", None), ("postgres", Some(pg.as_str()))] {
            let rate = rt.block_on(ingest(open, &lite, writers, series, steps));
            println!(
                "  {writers} writer(s), {name:8}: {:>6.2}M points/s",
                rate / 1e6
            );
        }
    }
}

fn runs_part(
    rt: &tokio::runtime::Runtime,
    quick: bool,
    url: &dyn Fn() -> String,
    tmp: &std::path::Path,
    reps: usize,
) {
    let (w_runs, w_steps) = if quick { (10, 1_000) } else { (100, 10_000) };
    let exe = env!("CARGO_BIN_EXE_gantry");
    let pg = url();
    let ws_pg = tmp.join("w-pg");
    let ws_lite = tmp.join("w-lite");
    for (ws, store) in [(&ws_pg, Some(&pg)), (&ws_lite, None)] {
        std::fs::create_dir_all(ws).unwrap();
        let st = std::process::Command::new(exe)
            .arg("init")
            .arg(ws)
            .output()
            .unwrap();
        assert!(st.status.success(), "{st:?}");
        if let Some(u) = store {
            std::fs::write(ws.join(".gantry/config.toml"), format!("store = \"{u}\"\n")).unwrap();
        }
    }
    let t = Instant::now();
    rt.block_on(async {
        let s = Store::open_team(&pg).await.unwrap();
        common::build_w(&s, w_runs, w_steps).await;
        s.close().await;
        let s = Store::open(&ws_lite.join(".gantry/gantry.db"))
            .await
            .unwrap();
        common::build_w(&s, w_runs, w_steps).await;
        s.close().await;
    });
    println!(
        "W ({w_runs} runs x 10 metrics x {w_steps} steps) built in both in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let args = [
        "runs",
        "--filter",
        "param.opt=adamw",
        "--sort",
        "-metric.train/loss",
    ];
    let got = common::time_commands(&[(exe, &ws_pg), (exe, &ws_lite)], &args, reps);
    println!(
        "gantry runs {} (median of {reps}, whole process):",
        args[1..].join(" ")
    );
    for ((name, _), ((med, lo, hi), rss)) in [("postgres", 0), ("sqlite", 1)].iter().zip(got) {
        println!("  {name:8}: {med:6.1} ms ({lo:.1}-{hi:.1}), {rss:.0} MB");
    }
}

fn load_part(
    rt: &tokio::runtime::Runtime,
    quick: bool,
    url: &dyn Fn() -> String,
    sqlite: &dyn Fn(&str) -> std::path::PathBuf,
    reps: usize,
) {
    let n = if quick { 100_000 } else { 1_000_000 };
    let pg = url();
    rt.block_on(async {
        for (name, store) in [
            ("postgres", Store::open_team(&pg).await.unwrap()),
            ("sqlite", Store::open(&sqlite("load")).await.unwrap()),
        ] {
            let run = store.create_run(&new_run("big", "gpu01")).await.unwrap();
            let s = common::metric_series(0, 0, n, 1_700_000_000_000);
            store
                .append(&run.id, &[(SeriesKind::Metric, "loss", &s)])
                .await
                .unwrap();
            store.compact(&run.id).await.unwrap();
            let mut times = Vec::new();
            for _ in 0..reps {
                let t = Instant::now();
                let got = store
                    .load_series(&run.id, SeriesKind::Metric, "loss")
                    .await
                    .unwrap();
                times.push(t.elapsed().as_secs_f64() * 1e3);
                assert_eq!(got.len(), n);
            }
            let (med, lo, hi) = common::median(times);
            println!("load a {n}-point series, {name:8}: {med:6.1} ms ({lo:.1}-{hi:.1})");
            store.close().await;
        }
    });
}

fn new_run(name: &str, host: &str) -> NewRun {
    NewRun {
        name: name.into(),
        experiment: "bench".into(),
        started_ms: gantry::domain::now_ms(),
        host: host.into(),
        user: "bench".into(),
        ..NewRun::default()
    }
}

/// Points/s of `writers` writers (each its own connection pool, as each host has), each
/// appending `series` series of `steps` steps in ticks of 2,500 points a series.
async fn ingest(
    pg: Option<&str>,
    lite: &std::path::Path,
    writers: usize,
    series: usize,
    steps: usize,
) -> f64 {
    let open = || async {
        match pg {
            Some(u) => Store::open_team(u).await.unwrap(),
            None => Store::open(lite).await.unwrap(),
        }
    };
    let data: Arc<Vec<Series>> = Arc::new(
        (0..series)
            .map(|m| common::metric_series(1, m, steps, 0))
            .collect(),
    );
    let mut tasks = Vec::new();
    let t = Instant::now();
    for w in 0..writers {
        let store = open().await;
        let data = data.clone();
        tasks.push(tokio::spawn(async move {
            let run = store
                .create_run(&new_run(&format!("w{w}"), &format!("gpu{w:02}")))
                .await
                .unwrap();
            let keys: Vec<String> = (0..data.len()).map(|m| format!("m{m}")).collect();
            let tick = 2_500;
            let mut at = 0;
            while at < steps {
                let end = (at + tick).min(steps);
                let parts: Vec<Series> = data.iter().map(|s| slice(s, at, end)).collect();
                let batch: Vec<(SeriesKind, &str, &Series)> = parts
                    .iter()
                    .zip(&keys)
                    .map(|(s, k)| (SeriesKind::Metric, k.as_str(), s))
                    .collect();
                store.append(&run.id, &batch).await.unwrap();
                at = end;
            }
            store.compact(&run.id).await.unwrap();
            store.close().await;
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    (writers * series * steps) as f64 / t.elapsed().as_secs_f64()
}

fn slice(s: &Series, a: usize, b: usize) -> Series {
    let mut out = Series::with_capacity(b - a);
    for i in a..b {
        out.push(s.steps[i], s.times_ms[i], s.values[i]);
    }
    out
}

/// CPU seconds (user + system) of every process whose command is `postgres`.
fn postgres_cpu() -> f64 {
    let tick = 100.0; // USER_HZ
    let mut total = 0.0;
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        let Some((head, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        if !head.ends_with("(postgres") {
            continue;
        }
        let f: Vec<&str> = rest.split_whitespace().collect();
        // utime, stime, and cutime, cstime: a backend's time goes to the server's main process
        // when the backend ends.
        total += f[11..15]
            .iter()
            .map(|x| x.parse::<f64>().unwrap_or(0.0))
            .sum::<f64>()
            / tick;
    }
    total
}

fn own_cpu() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let rest = stat.rsplit_once(')').unwrap().1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    (f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap()) / 100.0
}

/// `hosts` writers, each a run logging 10k points/s (2,500 points of one metric each 250 ms),
/// for `secs` seconds through one server. The lag is how late a tick's append ends after its
/// due time; a growing lag is a growing backlog.
async fn team(url: &str, hosts: usize, secs: u64) {
    let stored = Arc::new(AtomicU64::new(0));
    let (pg0, me0) = (postgres_cpu(), own_cpu());
    let start = Instant::now();
    let mut tasks = Vec::new();
    for h in 0..hosts {
        let store = Store::open_team(url).await.unwrap();
        let stored = stored.clone();
        tasks.push(tokio::spawn(async move {
            let run = store
                .create_run(&new_run(&format!("host{h}"), &format!("gpu{h:02}")))
                .await
                .unwrap();
            let ticks = secs * 4;
            let mut lags = Vec::new();
            for k in 0..ticks {
                let due = start + Duration::from_millis(250 * (k + 1));
                tokio::time::sleep_until(due.into()).await;
                let mut s = Series::with_capacity(2_500);
                for i in 0..2_500u64 {
                    let step = (k * 2_500 + i) as i64;
                    s.push(step, step, step as f64 * 0.5);
                }
                store
                    .append(&run.id, &[(SeriesKind::Metric, "loss", &s)])
                    .await
                    .unwrap();
                stored.fetch_add(2_500, Ordering::Relaxed);
                lags.push(due.elapsed().as_secs_f64() * 1e3);
            }
            let n = store
                .load_series(&run.id, SeriesKind::Metric, "loss")
                .await
                .unwrap()
                .len();
            store.close().await;
            (lags, n)
        }));
    }
    let mut first = Vec::new();
    let mut last = Vec::new();
    let mut points = 0;
    for t in tasks {
        let (lags, n) = t.await.unwrap();
        let q = lags.len() / 4;
        first.extend_from_slice(&lags[..q.max(1)]);
        last.extend_from_slice(&lags[lags.len() - q.max(1)..]);
        points += n;
    }
    let wall = start.elapsed().as_secs_f64();
    let (pg_cpu, my_cpu) = (postgres_cpu() - pg0, own_cpu() - me0);
    let want = hosts as u64 * secs * 4 * 2_500;
    let (f, _, fmax) = common::median(first);
    let (l, _, lmax) = common::median(last);
    println!(
        "{hosts} hosts x 10k points/s for {secs} s ({}k points/s in all): {points} of {want} points stored; \
         tick lag median {f:.0} ms (max {fmax:.0}) in the first quarter, {l:.0} ms (max {lmax:.0}) in the last; \
         CPU: postgres {:.0}%, writers {:.0}% (of one core)",
        hosts * 10,
        100.0 * pg_cpu / wall,
        100.0 * my_cpu / wall
    );
    assert_eq!(points as u64, want, "every point stored");
    let _ = stored;
}

/// One host appends a point to its running run; another listens (as the workbench does) and,
/// when told, reads the run's series again: the time from before the append to the point read.
async fn point_to_reload(url: &str, reps: usize) {
    let writer = Store::open_team(url).await.unwrap();
    let reader = Store::open_team(url).await.unwrap();
    let run = writer.create_run(&new_run("live", "gpu01")).await.unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let _task = reader
        .watch_changes(move || tx.send(()).is_ok())
        .await
        .unwrap()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    while rx.try_recv().is_ok() {}
    let mut times = Vec::new();
    for k in 0..reps {
        let mut s = Series::default();
        s.push(k as i64, k as i64, k as f64);
        let t = Instant::now();
        writer
            .append(&run.id, &[(SeriesKind::Metric, "loss", &s)])
            .await
            .unwrap();
        loop {
            rx.recv().await.unwrap();
            let got = reader
                .load_series(&run.id, SeriesKind::Metric, "loss")
                .await
                .unwrap();
            if got.steps.last() == Some(&(k as i64)) {
                break;
            }
        }
        times.push(t.elapsed().as_secs_f64() * 1e3);
        tokio::time::sleep(Duration::from_millis(200)).await;
        while rx.try_recv().is_ok() {}
    }
    let (med, lo, hi) = common::median(times);
    println!(
        "a point on one host to its reload on another (NOTIFY, gathered 100 ms, series read): median {med:.0} ms ({lo:.0}-{hi:.0})"
    );
}
