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

/// The shape of a generated workspace.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub name: &'static str,
    pub runs: usize,
    pub metrics: usize,
    pub steps: usize,
    pub params: usize,
    pub tags: usize,
}

impl Shape {
    pub fn points(&self) -> u64 {
        (self.runs * self.metrics * self.steps) as u64
    }
}

/// W100: 1,000 runs x 10 metrics x 100,000 steps (a billion points).
pub const W100: Shape = Shape {
    name: "W100",
    runs: 1_000,
    metrics: 10,
    steps: 100_000,
    params: 10,
    tags: 3,
};

/// Wwide: 10,000 runs x 20 metrics x 1,000 steps, each with 30 params and 10 tags.
pub const WWIDE: Shape = Shape {
    name: "Wwide",
    runs: 10_000,
    metrics: 20,
    steps: 1_000,
    params: 30,
    tags: 10,
};

/// One metric of one run as training writes them: float32 values (losses that fall with noise,
/// accuracies that rise, a stepped learning rate, noisy gradient norms), logged about every
/// 250 ms with a few ms of jitter.
pub fn metric_series(run: usize, metric: usize, steps: usize, started: i64) -> Series {
    let mut x = (run as u64 * 1_000_003 + metric as u64 * 7919) | 1;
    let mut noise = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x % 10_000) as f64 / 10_000.0 - 0.5
    };
    let mut s = Series::with_capacity(steps);
    let scale = steps.max(1) as f64;
    for i in 0..steps {
        let t = i as f64 / scale;
        let v = match metric % 4 {
            0 => 2.5 * (-5.0 * t).exp() + 0.3 + 0.05 * noise(),
            1 => 0.95 - 0.6 * (-4.0 * t).exp() + 0.01 * noise(),
            2 => 3e-4 * 0.5f64.powi((t * 4.0) as i32),
            _ => 1.0 + 0.5 * noise().abs() * (1.0 + run as f64 % 3.0),
        };
        let jitter = (noise() * 6.0) as i64;
        s.push(
            i as i64,
            started + i as i64 * 250 + jitter,
            f64::from(v as f32),
        );
    }
    s
}

/// Build `shape` straight into `store`, run by run (each run in a few transactions). Returns
/// the run ids, newest first.
pub async fn build_shape(store: &Store, shape: &Shape) -> Vec<String> {
    let keys: Vec<String> = (0..shape.metrics)
        .map(|m| {
            let kind = ["loss", "acc", "lr", "grad_norm"][m % 4];
            format!("{}/{kind}_{m}", if m % 2 == 0 { "train" } else { "val" })
        })
        .collect();
    let mut ids = Vec::with_capacity(shape.runs);
    for r in 0..shape.runs {
        let started = 1_700_000_000_000 + r as i64 * 60_000;
        let run = store
            .create_run(&NewRun {
                name: format!("{}-{r:05}", shape.name.to_lowercase()),
                experiment: format!("exp{}", r % 10),
                started_ms: started,
                host: format!("gpu{:02}", r % 8),
                user: "bench".into(),
                command: vec!["python".into(), "train.py".into()],
                ..NewRun::default()
            })
            .await
            .unwrap();
        let status = if r % 17 == 0 {
            RunStatus::Failed
        } else {
            RunStatus::Finished
        };
        store
            .finish_run(
                &run.id,
                status,
                Some(i32::from(r % 17 == 0)),
                started + 3_600_000,
            )
            .await
            .unwrap();
        let mut params: Vec<(String, String)> = vec![
            ("lr".into(), format!("{}", 1e-5 * (r % 100 + 1) as f64)),
            ("batch_size".into(), format!("{}", 32 << (r % 4))),
        ];
        params.extend(
            (2..shape.params).map(|p| (format!("param_{p:02}"), format!("{}", (r * 31 + p) % 97))),
        );
        store.set_params(&run.id, &params).await.unwrap();
        let tags: Vec<(String, String)> = (0..shape.tags)
            .map(|t| (format!("tag_{t}"), format!("v{}", (r + t) % 5)))
            .collect();
        store.set_tags(&run.id, &tags).await.unwrap();
        let series: Vec<Series> = (0..shape.metrics)
            .map(|m| metric_series(r, m, shape.steps, started))
            .collect();
        let batch: Vec<_> = keys
            .iter()
            .zip(&series)
            .map(|(k, s)| (SeriesKind::Metric, k.as_str(), s))
            .collect();
        store.append(&run.id, &batch).await.unwrap();
        ids.push(run.id);
    }
    ids.reverse();
    ids
}

/// `EXE --workspace WS ARGS` for each (exe, workspace), alternating, `reps` times each, as whole
/// processes under /usr/bin/time: per binary (median, min, max) milliseconds and peak RSS in MB.
/// A command that fails stops the bench with its stderr.
pub fn time_commands(
    runs: &[(&str, &std::path::Path)],
    args: &[&str],
    reps: usize,
) -> Vec<((f64, f64, f64), f64)> {
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); runs.len()];
    let mut rss = vec![0.0f64; runs.len()];
    for _ in 0..reps {
        for (i, (exe, ws)) in runs.iter().enumerate() {
            let t = std::time::Instant::now();
            let out = std::process::Command::new("/usr/bin/time")
                .args(["-f", "%M", exe, "--workspace", ws.to_str().unwrap()])
                .args(args)
                .output()
                .unwrap();
            times[i].push(t.elapsed().as_secs_f64() * 1e3);
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let kb: f64 = String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .and_then(|l| l.trim().parse().ok())
                .unwrap_or(f64::NAN);
            rss[i] = rss[i].max(kb / 1024.0);
        }
    }
    times.into_iter().map(median).zip(rss).collect()
}

/// A field of /proc/PID/status in MB (VmRSS:, VmHWM:), NaN where it cannot be read.
pub fn proc_status_mb(pid: u32, field: &str) -> f64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    text.lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        .unwrap_or(f64::NAN)
        / 1024.0
}

/// User and system CPU seconds a process has used, from /proc/PID/stat.
pub fn proc_cpu_seconds(pid: u32) -> f64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let f: Vec<&str> = text[text.rfind(')').unwrap() + 2..]
        .split_whitespace()
        .collect();
    (f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap())
        / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64
}

/// The PostgreSQL server the team benches use: `GANTRY_TEST_POSTGRES_URL`, else a throwaway
/// cluster, as the tests make it.
#[path = "../../tests/common/postgres.rs"]
pub mod postgres;

/// For tests/common/postgres.rs: a bench without its server stops with the reason.
pub fn skip(why: &str) {
    panic!("{why}");
}

/// `mib` MiB of incompressible-looking bytes (xorshift), written in 1 MiB pieces.
pub fn write_noise(path: &std::path::Path, mib: usize) {
    use std::io::Write;
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut x = 0x9e3779b97f4a7c15u64;
    let mut block = vec![0u8; 1 << 20];
    for _ in 0..mib {
        for c in block.chunks_exact_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            c.copy_from_slice(&x.to_le_bytes());
        }
        f.write_all(&block).unwrap();
    }
    f.flush().unwrap();
}

/// Run a command and reap it with wait4, which also gives its peak RSS: (seconds, MB). It must
/// succeed. (Clippy cannot see that wait4 reaps the child.)
#[allow(clippy::zombie_processes)]
pub fn run_reaped(cmd: &mut std::process::Command) -> (f64, f64) {
    let t = std::time::Instant::now();
    let child = cmd.spawn().unwrap();
    let mut status = 0;
    // SAFETY: a zeroed rusage is valid; wait4 fills it for our own child.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut ru) };
    assert_eq!(pid, child.id() as i32);
    assert_eq!(status, 0, "{cmd:?} failed");
    (t.elapsed().as_secs_f64(), ru.ru_maxrss as f64 / 1024.0)
}
