//! The GPU sampler and tab, without NVML (a recording stands in for the driver):
//! - one sampler tick's own work for 8 GPUs and 200 processes (naming runs, /proc facts, the
//!   history ring buffers): target <= 2 ms;
//! - drawing the GPUs tab, as a share of one core at a 1 s refresh: target < 1%.
//!
//! `cargo bench --bench gpu`; under `cargo test --benches` a small smoke run.

mod common;

use std::collections::HashMap;
use std::time::Instant;

use gantry::app::gpus::GpuTick;
use gantry::app::{Drawer, HostCpu, Keymap, Msg, State, update};
use gantry::config::{ColorMode, Config, KeyChord, Theme};
use gantry::gpu::source::{GpuProcess, GpuSource, ReplaySource};
use gantry::store::Store;
use ratatui::Terminal;
use ratatui::backend::TestBackend;

/// CPU time of the whole process (all threads), in ms.
fn cpu_ms() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec we pass.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 * 1e3 + ts.tv_nsec as f64 / 1e6
}

fn main() {
    let quick = common::quick();
    let reps = if quick { 3 } else { 200 };
    let rt = common::runtime();
    let dir = tempfile::tempdir().unwrap();
    let store = rt.block_on(Store::open(&dir.path().join("g.db"))).unwrap();
    let rec = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/gpu/h100-x8.made-up.jsonl"
    );
    let mut src = ReplaySource::open(std::path::Path::new(rec), 0.0).unwrap();
    // 200 processes of our own, each with its /proc entry read as on a busy box.
    let mut children: Vec<std::process::Child> = (0..200)
        .map(|_| {
            std::process::Command::new("sleep")
                .arg("600")
                .spawn()
                .unwrap()
        })
        .collect();
    let pids: Vec<u32> = children.iter().map(|c| c.id()).collect();
    let (keymap, _) = Keymap::build(&Config::defaults());
    let mut state = State::new(
        keymap,
        Theme::load("default-dark", ColorMode::TrueColor, None).0,
    );
    state.size = (160, 50);
    update(&mut state, Msg::Key(KeyChord::parse("3").unwrap()));
    let mut cpu = HostCpu::default();
    let mut describer = gantry::capture::procs::Describer::default();
    let mut tick_times = Vec::new();
    let mut tick_cpu = Vec::new();
    let mut draw_times = Vec::new();
    let mut term = Terminal::new(TestBackend::new(160, 50)).unwrap();
    for _ in 0..reps {
        let mut snap = src.sample().unwrap();
        snap.processes = pids
            .iter()
            .enumerate()
            .map(|(i, &pid)| GpuProcess {
                pid,
                gpu: (i % 8) as u32,
                mem_used: Some(1 << 30),
                sm_util: Some(50),
            })
            .collect();
        let t = Instant::now();
        let c = cpu_ms();
        let procs: HashMap<_, _> = describer.describe_with_parents(&pids);
        let run_id_of = |pid: u32| procs.get(&pid).and_then(|i| i.run_id.clone());
        let owners = rt.block_on(gantry::capture::owners::owners_with(
            &store, &snap, &run_id_of,
        ));
        let tick = GpuTick {
            snapshot: snap,
            owners,
            procs,
            host: cpu.sample(),
            source: "replay".into(),
        };
        update(&mut state, Msg::GpuSample(Box::new(tick)));
        tick_times.push(t.elapsed().as_secs_f64() * 1e3);
        tick_cpu.push(cpu_ms() - c);
        let t = Instant::now();
        Drawer::draw(&mut term, &state).unwrap();
        draw_times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    for c in &mut children {
        let _ = c.kill();
        let _ = c.wait();
    }
    let (m, lo, hi) = common::median(tick_cpu);
    println!(
        "gpu      sampler tick, 8 GPUs and {} processes, without NVML: CPU median {m:.3} ms (min {lo:.3}, max {hi:.3})",
        pids.len()
    );
    let (m, lo, hi) = common::median(tick_times);
    println!(
        "gpu      the same tick in wall time (it waits on the store's thread): median {m:.3} ms (min {lo:.3}, max {hi:.3})"
    );
    let (m, lo, hi) = common::median(draw_times);
    println!(
        "gpu      drawing the GPUs tab (160x50): median {m:.3} ms (min {lo:.3}, max {hi:.3}) = {:.3}% of one core at a 1 s refresh",
        m / 10.0
    );
}
