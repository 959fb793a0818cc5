//! The workbench on the standard workload W (100 runs x 10 metrics x 10,000 steps):
//! - the first frame after process start (the real binary in a pseudo-terminal): target <= 200 ms;
//! - keypress to frame with 10 runs x 10k points overlaid (update + render): target <= 16 ms;
//! - RSS of the workbench with W loaded and 10 runs overlaid: target <= 150 MB;
//! - CPU while idle: target about 0;
//! - CPU on the GPUs tab with 8 GPUs at a 1 s refresh (a recording in real time): target < 1%.
//!
//! `cargo bench --bench tui`; under `cargo test --benches` a small smoke run.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use gantry::app::{Drawer, Effect, Keymap, Msg, State, update};
use gantry::config::{ColorMode, Config, KeyChord, Theme};
use gantry::domain::SeriesKind;
use gantry::store::Store;
use ratatui::Terminal;
use ratatui::backend::TestBackend;

#[path = "../tests/common/pty.rs"]
#[allow(dead_code)]
mod pty;

/// The real binary in a pty (the session tests/pty.rs uses), with this bench's process readings.
struct Pty(pty::Session);

impl Pty {
    fn start(ws: &std::path::Path, home: &std::path::Path) -> Pty {
        Pty::start_with(ws, home, &[])
    }

    fn start_with(ws: &std::path::Path, home: &std::path::Path, extra: &[&str]) -> Pty {
        let mut args = vec!["--workspace", ws.to_str().unwrap()];
        args.extend_from_slice(extra);
        Pty(pty::Session::start_sized(home, &args, 50, 160))
    }
    fn wait(&self, text: &str) {
        self.0.wait_text(text);
    }
    fn send(&mut self, s: &str) {
        self.0.send(s);
    }
    fn proc_status(&self, field: &str) -> f64 {
        common::proc_status_mb(self.0.child.process_id().unwrap(), field)
    }
    /// Prints the process's CPU over the next `secs` seconds.
    fn report_cpu(&self, tag: &str, what: &str, secs: f64) {
        let c0 = self.cpu_seconds();
        std::thread::sleep(Duration::from_secs_f64(secs));
        let c1 = self.cpu_seconds();
        println!(
            "{tag} CPU over {secs} s {what}: {:.3} s = {:.2}% of one core",
            c1 - c0,
            (c1 - c0) / secs * 100.0
        );
    }

    fn cpu_seconds(&self) -> f64 {
        common::proc_cpu_seconds(self.0.child.process_id().unwrap())
    }
}

fn main() {
    let quick = common::quick();
    let (runs, steps, reps) = if quick {
        (12, 500, 1)
    } else {
        (100, 10_000, 10)
    };
    let rt = common::runtime();
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().join("ws");
    std::fs::create_dir_all(ws.join(".gantry/runs")).unwrap();
    std::fs::create_dir_all(ws.join(".gantry/logs")).unwrap();
    let store = rt
        .block_on(Store::open(&ws.join(".gantry/gantry.db")))
        .unwrap();
    rt.block_on(common::build_w(&store, runs, steps));

    // 1. First frame, and the first frame with the run table, after process start.
    let (mut first, mut table) = (Vec::new(), Vec::new());
    for _ in 0..reps {
        let t = Instant::now();
        let mut p = Pty::start(&ws, dir.path());
        p.wait("gantry");
        first.push(t.elapsed().as_secs_f64() * 1e3);
        p.wait(&format!("Runs ({runs})"));
        table.push(t.elapsed().as_secs_f64() * 1e3);
        p.send("q");
        let _ = p.0.child.wait();
    }
    let (m, lo, hi) = common::median(first);
    println!(
        "start    first frame after process start: median {m:.1} ms (min {lo:.1}, max {hi:.1})"
    );
    let (m, lo, hi) = common::median(table);
    println!(
        "start    first frame listing W's {runs} runs: median {m:.1} ms (min {lo:.1}, max {hi:.1})"
    );

    // 2. RSS with W loaded and 10 runs overlaid in a run's detail; then idle CPU.
    let mut p = Pty::start(&ws, dir.path());
    p.wait(&format!("Runs ({runs})"));
    for _ in 0..9 {
        p.send(" j");
    }
    p.send(" \r");
    p.wait("metric/0");
    std::thread::sleep(Duration::from_millis(if quick { 300 } else { 1500 }));
    let (rss, hwm) = (p.proc_status("VmRSS:"), p.proc_status("VmHWM:"));
    println!(
        "memory   workbench with W loaded, 10 runs x 4 metrics x {steps} points overlaid: RSS {rss:.1} MB (peak {hwm:.1} MB)"
    );
    let idle = if quick { 1.0 } else { 10.0 };
    p.report_cpu("idle    ", "with nothing running", idle);
    p.send("q");
    let _ = p.0.child.wait();

    // 2b. The GPUs tab at its default 1 s refresh, 8 GPUs replayed in real time: the whole
    // process's CPU (sampler thread, updates, draws).
    let rec = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/gpu/h100-x8.made-up.jsonl"
    );
    let mut p = Pty::start_with(&ws, dir.path(), &["--gpu-replay", rec]);
    p.wait(&format!("Runs ({runs})"));
    p.send("3");
    p.wait("H100 80GB HBM3");
    std::thread::sleep(Duration::from_millis(1500));
    p.report_cpu("gpus    ", "on the GPUs tab, 8 GPUs at a 1 s refresh", idle);
    p.send("q");
    let _ = p.0.child.wait();

    // 3. Keypress to frame, in process: update() and render on a 160x50 test terminal.
    let (keymap, _) = Keymap::build(&Config::defaults());
    let mut state = State::new(
        keymap,
        Theme::load("default-dark", ColorMode::TrueColor, None).0,
    );
    state.size = (160, 50);
    let records = rt.block_on(store.run_records()).unwrap();
    update(&mut state, Msg::RunsLoaded(Ok(records)));
    let mut fx = Vec::new();
    for k in ["space", "j"]
        .iter()
        .cycle()
        .take(19)
        .chain(["space", "enter"].iter())
    {
        fx.extend(update(&mut state, Msg::Key(KeyChord::parse(k).unwrap())).effects);
    }
    let mut points = 0;
    for e in fx {
        if let Effect::LoadSeries(id) = e {
            let s = rt
                .block_on(store.load_series(&id.run, id.kind, &id.key))
                .unwrap_or_default();
            if id.kind == SeriesKind::Metric {
                points += s.len();
            }
            update(&mut state, Msg::SeriesLoaded(id, Ok(Arc::new(s))));
        }
    }
    let mut term = Terminal::new(TestBackend::new(160, 50)).unwrap();
    Drawer::draw(&mut term, &state).unwrap();
    let keys = ["l", "+", "X", "]", "h", "-", "X", "[", "Y", "Y", "X", "0"];
    let mut times = Vec::new();
    for k in keys.iter().cycle().take(if quick { 12 } else { 120 }) {
        let t = Instant::now();
        let out = update(&mut state, Msg::Key(KeyChord::parse(k).unwrap()));
        if out.redraw {
            Drawer::draw(&mut term, &state).unwrap();
        }
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let (m, lo, hi) = common::median(times);
    println!(
        "key      keypress to frame, {} runs overlaid ({points} points on screen), chart keys: median {m:.2} ms (min {lo:.2}, max {hi:.2})",
        state.runs.overlay().len()
    );
}
