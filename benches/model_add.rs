//! `gantry model add` of a 2 GiB file: the real binary's peak RSS (from wait4) and time, copying
//! the file into the object store and, separately, by hard link. Target: RSS under 100 MB.
//! `cargo bench --bench model_add`; under `cargo test --benches` a 64 MiB smoke run.

mod common;

use std::process::Command;

/// Run gantry: (seconds, peak RSS in MB).
fn run(args: &[&str], cwd: &std::path::Path) -> (f64, f64) {
    common::run_reaped(
        Command::new(env!("CARGO_BIN_EXE_gantry"))
            .args(args)
            .current_dir(cwd),
    )
}

fn main() {
    let quick = common::quick();
    let mib: usize = if quick { 64 } else { 2048 };
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path();
    assert!(
        Command::new(env!("CARGO_BIN_EXE_gantry"))
            .arg("init")
            .arg(ws)
            .output()
            .unwrap()
            .status
            .success()
    );
    let path = ws.join("big.bin");
    common::write_noise(&path, mib);
    let (secs, rss) = run(&["model", "add", "big", "big.bin"], ws);
    println!(
        "model    add of a {mib} MiB file, copied into the object store: {secs:.1} s, peak RSS {rss:.1} MB"
    );
    std::fs::write(ws.join("other.bin"), b"x").unwrap();
    std::fs::copy(&path, ws.join("big2.bin")).unwrap();
    let (secs, rss) = run(&["model", "add", "big2", "big2.bin", "--hardlink"], ws);
    println!("model    add of a {mib} MiB file by hard link: {secs:.1} s, peak RSS {rss:.1} MB");
    let (secs, rss) = run(&["model", "checkout", "big@v1", "--to", "out"], ws);
    println!("model    checkout of it, verified: {secs:.1} s, peak RSS {rss:.1} MB");
}
