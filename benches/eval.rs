//! `gantry model eval` around a command that exits at once (`true`), as whole processes, cache
//! warm: its time per version, beside `gantry run -- true` (what each version costs at least:
//! eval runs each version through it) and `true` alone, alternating in one run. Target: 30 ms or
//! less per version.
//!
//! `cargo bench --bench eval`; under `cargo test --benches` a small smoke run.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Instant;

fn gantry(ws: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_gantry"));
    c.current_dir(ws)
        .env("HOME", ws)
        .env("XDG_CONFIG_HOME", ws.join("config"))
        .env_remove("GANTRY_STORE")
        .args(args);
    c
}

fn timed(c: &mut Command) -> f64 {
    let t = Instant::now();
    let out = c.output().unwrap();
    assert!(out.status.success(), "{out:?}");
    t.elapsed().as_secs_f64() * 1e3
}

fn main() {
    let reps = if common::quick() { 2 } else { 15 };
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path();
    assert!(gantry(ws, &["init", "."]).status().unwrap().success());
    for v in 1..=3 {
        std::fs::write(ws.join("weights.bin"), vec![v as u8; 1 << 20]).unwrap();
        assert!(
            gantry(ws, &["model", "add", "m", "weights.bin"])
                .output()
                .unwrap()
                .status
                .success()
        );
    }
    let eval = [
        "model", "eval", "m@v1", "m@v2", "m@v3", "--json", "--", "true",
    ];
    // Warm the checkout cache.
    timed(&mut gantry(ws, &eval));
    let (mut e, mut r, mut t) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..reps {
        e.push(timed(&mut gantry(ws, &eval)));
        r.push(timed(&mut gantry(ws, &["run", "--", "true"])));
        t.push(timed(&mut Command::new("true")));
    }
    let (em, elo, ehi) = common::median(e);
    let (rm, rlo, rhi) = common::median(r);
    let (tm, _, _) = common::median(t);
    println!("eval of 3 versions around `true`: median {em:.1} ms (min {elo:.1}, max {ehi:.1})");
    println!(
        "per version: {:.1} ms ({:.1} ms over the command itself)",
        em / 3.0,
        (em - 3.0 * tm) / 3.0
    );
    println!("gantry run -- true: median {rm:.1} ms (min {rlo:.1}, max {rhi:.1})");
    println!(
        "eval's own per version, over gantry run: {:.1} ms; true alone {tm:.2} ms",
        em / 3.0 - rm
    );
}
