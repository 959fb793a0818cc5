//! Shared test helpers: a State with fixed clock, host and workspace, and demo-like runs.
#![allow(dead_code)]

pub mod postgres;
pub mod pty;

use gantry::app::{Keymap, State};
use gantry::config::{ColorMode, Config, Theme};
use gantry::domain::{Run, RunRecord, RunStatus, SeriesSummary};

/// 2026-11-29 12:00:00 UTC.
pub const NOW_MS: i64 = 1_795_953_600_000;

/// The gantry binary run in workspace `ws`, with a config directory of its own there and no
/// store or workspace from the environment.
pub fn gantry_in(ws: &std::path::Path) -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_gantry"));
    c.current_dir(ws)
        .env("XDG_CONFIG_HOME", ws.join("config"))
        .env_remove("GANTRY_STORE")
        .env_remove("GANTRY_WORKSPACE");
    c
}

/// A new workspace: `gantry init` in a temporary directory (its config directory is `config/`
/// inside it, as `gantry_in` sets).
pub fn initialized() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let out = gantry_in(dir.path())
        .arg("init")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    dir
}

/// Store each (spec, median) as a past benchmark result of `device` in the workspace's store.
pub fn seed_bench(
    ws: &std::path::Path,
    device: &gantry::bench::DeviceInfo,
    results: &[(gantry::bench::Spec, f64)],
) {
    use gantry::bench::{BenchResult, Stats};
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store = gantry::store::Store::open(&ws.join(".gantry/gantry.db"))
            .await
            .unwrap();
        for (i, (spec, median)) in results.iter().enumerate() {
            let r = BenchResult {
                unit: spec.kind.unit(),
                spec: spec.clone(),
                stats: Stats {
                    median: *median,
                    min: *median,
                    max: *median,
                    stddev: 0.0,
                    reps: 20,
                },
                peak: None,
                pct_of_peak: None,
                check: None,
                conditions: None,
            };
            store
                .record_bench(1_000 + i as i64, "h", device, &r)
                .await
                .unwrap();
        }
        store.close().await;
    });
}

/// The first snapshot of a made-up recording in fixtures/gpu (`a100-x2`, `h100-x8`, `h200-x1`),
/// at NOW_MS.
pub fn gpu_recording(name: &str) -> gantry::domain::GpuSnapshot {
    use gantry::gpu::source::GpuSource;
    let p = format!(
        "{}/fixtures/gpu/{name}.made-up.jsonl",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut r = gantry::gpu::source::ReplaySource::open(std::path::Path::new(&p), 0.0).unwrap();
    let mut s = r.sample().unwrap();
    s.time_ms = NOW_MS;
    s
}

pub fn state() -> State {
    let (keymap, d) = Keymap::build(&Config::defaults());
    assert!(d.is_empty());
    let theme = Theme::load("default-dark", ColorMode::TrueColor, None).0;
    let mut s = State::new(keymap, theme);
    s.workspace = "~/proj".into();
    s.host = "gpu01".into();
    s.clock = "12:00".into();
    s.now_ms = NOW_MS;
    s.size = (120, 40);
    s.runs.loaded = true;
    s
}

pub fn run(
    i: usize,
    name: &str,
    status: RunStatus,
    minutes_ago: i64,
    minutes_long: Option<i64>,
) -> Run {
    let started_ms = NOW_MS - minutes_ago * 60_000;
    Run {
        id: format!("{i:08x}{}", "0".repeat(24)),
        experiment: if name.starts_with("gpt") {
            "lm"
        } else {
            "vision"
        }
        .into(),
        name: name.into(),
        status,
        exit_code: (status == RunStatus::Failed).then_some(1),
        started_ms,
        ended_ms: minutes_long.map(|m| started_ms + m * 60_000),
        host: "gpu01".into(),
        user: "ana".into(),
        pid: None,
        pid_start: None,
        command: vec!["python".into(), "train.py".into()],
        cwd: "/home/ana/proj".into(),
        git_commit: None,
        git_branch: None,
        git_dirty: None,
        notes: String::new(),
        run_dir: String::new(),
        env: Default::default(),
        gpus: Vec::new(),
        heartbeat_ms: None,
    }
}

pub fn some_runs(n: usize) -> Vec<Run> {
    let statuses = [
        RunStatus::Running,
        RunStatus::Failed,
        RunStatus::Finished,
        RunStatus::Killed,
        RunStatus::Crashed,
    ];
    (0..n)
        .map(|i| {
            let st = statuses[i % statuses.len()];
            let long = (st != RunStatus::Running).then_some(10 + i as i64);
            run(
                i,
                &format!("resnet50-trial-{i:03}"),
                st,
                30 + 60 * i as i64,
                long,
            )
        })
        .collect()
}

/// Runs with params, tags and a `loss` and `acc` metric, as the store would give them.
pub fn some_records(n: usize) -> Vec<RunRecord> {
    some_runs(n)
        .into_iter()
        .enumerate()
        .map(|(i, run)| {
            let summary = |key: &str, last: f64| SeriesSummary {
                key: key.into(),
                n_points: 100,
                last_step: Some(99),
                last: Some(last),
                min: Some(last / 2.0),
                max: Some(last * 2.0),
                min_step: Some(50),
                max_step: Some(0),
            };
            RunRecord {
                run,
                params: [
                    ("lr".to_string(), format!("{}", 0.1 / (i + 1) as f64)),
                    ("bs".into(), "64".into()),
                ]
                .into(),
                tags: if i % 2 == 0 {
                    [("baseline".to_string(), "true".to_string())].into()
                } else {
                    Default::default()
                },
                metrics: [
                    ("loss".to_string(), summary("loss", 1.0 / (i + 1) as f64)),
                    ("acc".into(), summary("acc", 0.5)),
                ]
                .into(),
                malformed: 0,
                models: Vec::new(),
            }
        })
        .collect()
}

pub mod python;
pub mod serve;
pub mod sshd;

/// Skip a test that cannot run here, saying why; under `GANTRY_TEST_STRICT=1` (CI) fail instead,
/// so nothing skips silently there. Returns `()` so a test can `return common::skip(...)`.
pub fn skip(why: &str) {
    if std::env::var("GANTRY_TEST_STRICT").is_ok_and(|v| v == "1") {
        panic!("cannot run under GANTRY_TEST_STRICT=1: {why}");
    }
    eprintln!("skipped: {why}");
}

/// The screen `s` draws at `w` by `h`, as text.
pub fn screen(s: &State, w: u16, h: u16) -> String {
    draw(s, w, h).backend().to_string()
}

/// The screen `s` draws at `w` by `h`, cells with their styles (a moved highlight is a change).
pub fn cells(s: &State, w: u16, h: u16) -> ratatui::buffer::Buffer {
    draw(s, w, h).backend().buffer().clone()
}

fn draw(s: &State, w: u16, h: u16) -> ratatui::Terminal<ratatui::backend::TestBackend> {
    use gantry::app::Drawer;
    let mut t = ratatui::Terminal::new(ratatui::backend::TestBackend::new(w, h)).unwrap();
    Drawer::draw(&mut t, s).unwrap();
    t
}

/// A tmpfs mounted for one test (root only), unmounted when dropped.
pub struct Tmpfs(pub std::path::PathBuf);

impl Tmpfs {
    /// Mount a tmpfs of `size` (`256k`, `2m`) at `at`; None where mounting is not allowed.
    pub fn mount(at: &std::path::Path, size: &str) -> Option<Tmpfs> {
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .output()
            .is_ok_and(|o| o.status.success());
        ok.then(|| Tmpfs(at.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).output();
    }
}
