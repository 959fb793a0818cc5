//! Start-up of the shipped binaries, as whole processes, side by side in one run (alternating):
//! - `gantry --version`;
//! - `gantry runs` on an empty workspace;
//! - the workbench's first frame listing W's runs (100 runs x 10 metrics x 10,000 steps), in a pty.
//!
//! The binaries: this build's release binary (`cargo bench` builds it), the zigbuild binary of
//! `scripts/release.sh` (glibc 2.17, zlib linked in) and the wheel's entry point as pip installed
//! it (`target/dist/try/bin/gantry`: the stripped binary itself). Target: the zigbuild and wheel
//! binaries within 10% of the release build. Run `scripts/release.sh` first; a binary that is not
//! there is left out, saying so.
//!
//! `cargo bench --bench startup`; under `cargo test --benches` a small smoke run.

mod common;

use std::path::{Path, PathBuf};
use std::time::Instant;

use gantry::store::Store;

#[path = "../tests/common/pty.rs"]
#[allow(dead_code)]
mod pty;

fn main() {
    let quick = common::quick();
    let (runs, steps, reps) = if quick {
        (12, 500, 2)
    } else {
        (100, 10_000, 21)
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut bins: Vec<(&str, PathBuf)> = vec![("release", env!("CARGO_BIN_EXE_gantry").into())];
    for (name, path) in [
        ("zigbuild", "target/x86_64-unknown-linux-gnu/release/gantry"),
        ("wheel", "target/dist/try/bin/gantry"),
    ] {
        let p = root.join(path);
        if p.is_file() {
            bins.push((name, p));
        } else {
            println!(
                "{name:<9} left out: {} is not there (run scripts/release.sh)",
                p.display()
            );
        }
    }
    for (name, p) in &bins {
        let size = std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        println!("{name:<9} {} ({:.1} MB)", p.display(), size as f64 / 1e6);
    }

    let rt = common::runtime();
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty");
    let w = dir.path().join("w");
    for ws in [&empty, &w] {
        std::fs::create_dir_all(ws.join(".gantry/runs")).unwrap();
        std::fs::create_dir_all(ws.join(".gantry/logs")).unwrap();
    }
    let store = rt
        .block_on(Store::open(&empty.join(".gantry/gantry.db")))
        .unwrap();
    rt.block_on(store.close());
    let store = rt
        .block_on(Store::open(&w.join(".gantry/gantry.db")))
        .unwrap();
    rt.block_on(common::build_w(&store, runs, steps));
    rt.block_on(store.close());

    // --version and `runs` on an empty workspace, alternating between the binaries.
    for (what, args) in [
        ("--version", vec!["--version"]),
        ("runs (empty workspace)", vec!["runs"]),
    ] {
        let runs: Vec<(&str, &Path)> = bins
            .iter()
            .map(|(_, p)| (p.to_str().unwrap(), empty.as_path()))
            .collect();
        let timed = common::time_commands(&runs, &args, reps);
        report(what, &bins, timed.iter().map(|(t, _)| *t).collect());
    }

    // The workbench's first frame listing W's runs, alternating.
    let title = format!("Runs ({runs})");
    let mut frames: Vec<Vec<f64>> = vec![Vec::new(); bins.len()];
    for _ in 0..reps {
        for (i, (_, exe)) in bins.iter().enumerate() {
            let t = Instant::now();
            let mut p = pty::Session::start_exe(
                exe.to_str().unwrap(),
                dir.path(),
                &["--workspace", w.to_str().unwrap()],
                50,
                160,
            );
            p.wait_text(&title);
            frames[i].push(t.elapsed().as_secs_f64() * 1e3);
            p.send("q");
            let _ = p.child.wait();
        }
    }
    report(
        &format!("first frame listing W's {runs} runs"),
        &bins,
        frames.into_iter().map(common::median).collect(),
    );
}

/// One line per binary: median (min, max) and its ratio to the release build's median.
fn report(what: &str, bins: &[(&str, PathBuf)], timed: Vec<(f64, f64, f64)>) {
    let base = timed[0].0;
    for ((name, _), (m, lo, hi)) in bins.iter().zip(timed) {
        println!(
            "{name:<9} {what}: median {m:.2} ms (min {lo:.2}, max {hi:.2}), {:.2}x release",
            m / base
        );
    }
}
