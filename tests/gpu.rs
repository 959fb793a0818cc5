//! `gantry gpu` on recordings (fixtures/gpu, made up from the cards' figures) and without a
//! driver; the JSON schema; record and replay; GPU processes named with the runs that own them.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const H100: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/fixtures/gpu/h100-x8.made-up.jsonl"
);

fn gantry(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gantry"))
        .args(args)
        .env_remove("GANTRY_WORKSPACE")
        .output()
        .unwrap()
}

fn nvml_present() -> bool {
    gantry(&["gpu", "--json"]).status.code() != Some(3)
}

#[test]
fn without_a_driver_it_exits_3_with_one_line() {
    if nvml_present() {
        return common::skip("this machine has an NVIDIA driver, and this test is of one without");
    }
    let o = gantry(&["gpu"]);
    assert_eq!(o.status.code(), Some(3));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("no NVIDIA driver"), "{err}");
}

#[test]
fn a_recording_prints_every_gpu_and_process() {
    let o = gantry(&["--gpu-replay", H100, "gpu"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let t = String::from_utf8(o.stdout).unwrap();
    assert!(
        t.starts_with("driver 580.95.05 · CUDA 13.0 · 8 GPUs"),
        "{t}"
    );
    assert_eq!(
        t.lines().filter(|l| l.contains("H100 80GB HBM3")).count(),
        8
    );
    assert!(t.contains("gen5x16") && t.contains("idle"), "{t}");
    assert_eq!(
        t.lines().filter(|l| l.starts_with("410")).count(),
        7,
        "one process per busy GPU"
    );
}

#[test]
fn json_keys_are_stable() {
    let o = gantry(&["--gpu-replay", H100, "gpu", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let keys = |v: &serde_json::Value| {
        let mut k = v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
        k.sort();
        k
    };
    assert_eq!(keys(&v), ["cuda", "driver", "gpus", "processes", "time_ms"]);
    assert_eq!(
        keys(&v["gpus"][0]),
        [
            "bus_id",
            "compute_mode",
            "dec_util",
            "ecc_uncorrected",
            "enc_util",
            "energy_mj",
            "fan",
            "index",
            "mem_clock",
            "mem_clock_max",
            "mem_total",
            "mem_used",
            "mem_util",
            "mig",
            "mig_instances",
            "name",
            "pcie_gen",
            "pcie_rx",
            "pcie_tx",
            "pcie_width",
            "persistence",
            "power",
            "power_limit",
            "read_us",
            "sm_clock",
            "sm_clock_max",
            "temp",
            "temp_slowdown",
            "throttle",
            "util",
            "uuid"
        ]
    );
    assert_eq!(
        keys(&v["processes"][0]),
        [
            "command",
            "elapsed_secs",
            "gpu",
            "job",
            "mem_used",
            "pid",
            "rss",
            "run",
            "sm_util",
            "user"
        ]
    );
    assert!(
        v["processes"][0]["command"].is_null(),
        "a pid with no /proc entry here has no command"
    );
    assert!(v["gpus"][0]["fan"].is_null(), "n/a is null");
}

#[test]
fn json_with_watch_is_one_object_a_line() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_gantry"))
        .args(["--gpu-replay", H100, "gpu", "--json", "--watch", "0.1"])
        .env_remove("GANTRY_WORKSPACE")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(child.stdout.take().unwrap()));
    for _ in 0..3 {
        let line = lines.next().unwrap().unwrap();
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["gpus"].as_array().unwrap().len(), 8);
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn record_then_replay() {
    let dir = tempfile::tempdir().unwrap();
    let rec = dir.path().join("rec.jsonl");
    let o = gantry(&[
        "--gpu-replay",
        H100,
        "gpu",
        "--record",
        rec.to_str().unwrap(),
        "--samples",
        "3",
        "--watch",
        "0.05",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(std::fs::read_to_string(&rec).unwrap().lines().count(), 3);
    let o = gantry(&["--gpu-replay", rec.to_str().unwrap(), "gpu", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["gpus"].as_array().unwrap().len(), 8);
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(&bad, "{oops\n").unwrap();
    let o = gantry(&["--gpu-replay", bad.to_str().unwrap(), "gpu"]);
    assert_eq!(o.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&o.stderr).contains("bad.jsonl:1: not a GPU snapshot"));
}

/// A recording with one process on GPU 0: `pid`.
fn recording_with(dir: &Path, pid: u32) -> PathBuf {
    let snap = serde_json::json!({
        "time_ms": 1, "driver": "580", "cuda": "13.0",
        "gpus": [{"index": 0, "name": "NVIDIA H200", "uuid": "u", "bus_id": "b"}],
        "processes": [{"pid": pid, "gpu": 0, "mem_used": 1024, "sm_util": 50}]
    });
    let p = dir.join(format!("with-{pid}.jsonl"));
    std::fs::write(&p, format!("{snap}\n")).unwrap();
    p
}

fn run_pid(ws: &Path, name: &str) -> u32 {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let o = Command::new(env!("CARGO_BIN_EXE_gantry"))
            .arg("--workspace")
            .arg(ws)
            .args(["show", name, "--json"])
            .output()
            .unwrap();
        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&o.stdout)
            && let Some(p) = v["pid"].as_u64()
        {
            return p as u32;
        }
        assert!(Instant::now() < deadline, "the run never started");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn gpu_processes_are_named_with_their_runs() {
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path();
    let g = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_gantry"))
            .arg("--workspace")
            .arg(ws)
            .args(args)
            .output()
            .unwrap()
    };
    assert!(g(&["init"]).status.success());
    // By GANTRY_RUN_ID in the process's environment.
    assert!(
        g(&["run", "-d", "-n", "by-env", "--", "sleep", "4"])
            .status
            .success()
    );
    let pid = run_pid(ws, "by-env");
    let rec = recording_with(ws, pid);
    let o = g(&["--gpu-replay", rec.to_str().unwrap(), "gpu", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["processes"][0]["run"]["name"], "by-env", "{v}");
    assert_eq!(v["processes"][0]["command"], "sleep 4", "{v}");
    assert!(v["processes"][0]["rss"].as_u64().unwrap() > 0, "{v}");
    assert!(v["processes"][0]["user"].is_string(), "{v}");
    // By the run's process tree, when the variable was taken away.
    assert!(
        g(&[
            "run",
            "-d",
            "-n",
            "by-tree",
            "--",
            "env",
            "-u",
            "GANTRY_RUN_ID",
            "sleep",
            "4"
        ])
        .status
        .success()
    );
    let pid = run_pid(ws, "by-tree");
    let rec = recording_with(ws, pid);
    let t = String::from_utf8(g(&["--gpu-replay", rec.to_str().unwrap(), "gpu"]).stdout).unwrap();
    let line = t
        .lines()
        .find(|l| l.starts_with(&pid.to_string()))
        .expect(&t);
    // env has exec'd sleep by now, or is about to: either way the command ends with it.
    assert!(
        line.contains("by-tree (") && line.ends_with("sleep 4"),
        "{t}"
    );
}

#[test]
fn a_process_of_no_run_is_named_with_its_batch_job() {
    let dir = tempfile::tempdir().unwrap();
    let mut job = Command::new("sleep")
        .arg("5")
        .env("SLURM_JOB_ID", "777")
        .spawn()
        .unwrap();
    let rec = recording_with(dir.path(), job.id());
    // Give exec a moment to set up the environment the table reads.
    std::thread::sleep(Duration::from_millis(100));
    let o = gantry(&["--gpu-replay", rec.to_str().unwrap(), "gpu", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["processes"][0]["job"], "slurm 777", "{v}");
    assert!(v["processes"][0]["run"].is_null());
    let o = gantry(&["--gpu-replay", rec.to_str().unwrap(), "gpu"]);
    let t = String::from_utf8(o.stdout).unwrap();
    let line = t
        .lines()
        .find(|l| l.starts_with(&job.id().to_string()))
        .expect(&t);
    assert!(
        line.contains("slurm 777") && line.ends_with("sleep 5"),
        "{line}"
    );
    job.kill().unwrap();
    job.wait().unwrap();
}

#[test]
fn mig_devices_are_listed_under_their_gpu_in_table_and_json() {
    use gantry::gpu::source::{GpuSnapshot, MigInstance};
    let first = std::fs::read_to_string(H100).unwrap();
    let mut snap: GpuSnapshot = serde_json::from_str(first.lines().next().unwrap()).unwrap();
    snap.gpus.truncate(1);
    snap.gpus[0].mig = Some(true);
    snap.gpus[0].mig_instances = vec![
        MigInstance {
            index: 0,
            name: "NVIDIA H100 80GB HBM3 3g.40gb".into(),
            uuid: "MIG-made-up-0".into(),
            mem_used: Some(2 << 30),
            mem_total: Some(40 << 30),
        },
        MigInstance {
            index: 1,
            name: "NVIDIA H100 80GB HBM3 3g.40gb".into(),
            uuid: "MIG-made-up-1".into(),
            mem_used: None,
            mem_total: None,
        },
    ];
    let dir = tempfile::tempdir().unwrap();
    let rec = dir.path().join("mig.jsonl");
    std::fs::write(&rec, serde_json::to_string(&snap).unwrap() + "\n").unwrap();
    let rec = rec.to_str().unwrap();
    let o = gantry(&["--gpu-replay", rec, "gpu"]);
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(o.status.success(), "{text}");
    let line = text.lines().find(|l| l.contains("MIG 0")).expect(&text);
    assert!(
        line.contains("2.0/40.0 GiB") && line.contains("MIG-made-up-0"),
        "{line}"
    );
    let line = text.lines().find(|l| l.contains("MIG 1")).expect(&text);
    assert!(line.contains("n/a"), "{line}");
    let o = gantry(&["--gpu-replay", rec, "gpu", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let m = &v["gpus"][0]["mig_instances"];
    assert_eq!(m[0]["uuid"], "MIG-made-up-0");
    assert_eq!(m[0]["mem_total"], 40u64 << 30);
    assert!(m[1]["mem_used"].is_null());
}
