//! GPU-aware runs through the real binary: `gantry run --gpu-replay` of the H200 recording (which
//! carries NVML's energy counter) on a script that declares its tokens per step, with a bench
//! history for that GPU in the store and prices in the config. `gantry show --json` must give the
//! TFLOP/s, both MFUs, the energy and GPU-hours, the cost and the hardware the formulas say.

mod common;

use std::path::{Path, PathBuf};

use serde_json::Value;

const H200: &str = "fixtures/gpu/h200-x1.made-up.jsonl";
const UUID: &str = "GPU-h200-00-made-up";

/// 10 logged steps a second by their `time` fields (so the rate does not depend on this box's
/// speed), 1e9 parameters and 4096 tokens a step declared through a `gantry:` line.
const SCRIPT: &str = r#"
import json, os, time
print("gantry: tokens_per_step=4096 n_params=1e9", flush=True)
m = open(os.environ["GANTRY_METRICS"], "a")
t0 = time.time()
for step in range(30):
    m.write(json.dumps({"step": step, "time": t0 + step * 0.1, "loss": 1 / (step + 1)}) + "\n")
    m.flush()
    time.sleep(0.1)
"#;

use common::gantry_in as gantry;

fn recording() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(H200)
}

/// A workspace whose store holds three bf16 GEMM results (700, 720, 710 TFLOP/s: median 710) and
/// one memory-bandwidth result for the recording's GPU, and a config with prices.
fn workspace() -> tempfile::TempDir {
    use gantry::bench::{DeviceInfo, Kind, Precision, Spec};
    let dir = common::initialized();
    std::fs::write(dir.path().join("train.py"), SCRIPT).unwrap();
    std::fs::create_dir_all(dir.path().join("config/gantry")).unwrap();
    std::fs::write(
        dir.path().join("config/gantry/config.toml"),
        "[cost]\nprice_per_kwh = 0.5\ngpu_hour_price = 3.0\ncurrency = \"EUR\"\n",
    )
    .unwrap();
    let device = DeviceInfo {
        backend: "cuda".into(),
        name: "NVIDIA H200".into(),
        uuid: UUID.into(),
        ..DeviceInfo::default()
    };
    let gemm = Spec::gemm(Precision::Bf16, 8192, "cublas");
    common::seed_bench(
        dir.path(),
        &device,
        &[
            (gemm.clone(), 700.0),
            (gemm.clone(), 720.0),
            (gemm, 710.0),
            (Spec::other(Kind::Membw, 1 << 30, "sm-triad"), 4100.0),
        ],
    );
    dir
}

fn run(ws: &Path, name: &str, extra: &[&str]) -> Value {
    let out = gantry(ws)
        .arg("--gpu-replay")
        .arg(recording())
        .args(extra)
        .args([
            "run",
            "--name",
            name,
            "--sample-every",
            "0.3",
            "--",
            "python3",
            "train.py",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let show = gantry(ws).args(["show", "--json", name]).output().unwrap();
    assert!(show.status.success(), "{show:?}");
    serde_json::from_slice(&show.stdout).unwrap()
}

fn close(a: f64, b: f64, rel: f64) -> bool {
    ((a - b) / b).abs() <= rel
}

#[test]
fn a_replayed_run_gets_mfu_both_ways_energy_cost_and_hardware() {
    let ws = workspace();
    let v = run(ws.path(), "t", &[]);
    let e = &v["efficiency"];
    assert_eq!(e["work"]["declared"]["from"], "six_nt", "{e}");
    assert_eq!(e["precision"], "bf16");
    // 6 × 1e9 × 4096 FLOPs a step, 10 steps a second: 245.76 TFLOP/s in every interval.
    let flops = e["work"]["flops_per_step"].as_f64().unwrap();
    assert!(close(flops, 2.4576e13, 1e-12), "{flops}");
    let tflops = e["tflops"]["median"].as_f64().unwrap();
    assert!(close(tflops, 245.76, 1e-6), "{e}");
    // Against the H200's datasheet (989.4 dense bf16) and its own GEMM median (710).
    let r = &e["references"][0];
    assert_eq!(r["uuid"], UUID);
    assert_eq!(r["measured_tflops"].as_f64(), Some(710.0));
    assert_eq!(r["measured_results"].as_u64(), Some(3));
    let ds = r["datasheet_tflops"].as_f64().unwrap();
    let mfu = e["mfu"]["median"].as_f64().unwrap();
    assert!(close(mfu, 245.76 / ds * 100.0, 1e-6), "{mfu} vs {ds}");
    let measured = e["mfu_measured"]["median"].as_f64().unwrap();
    assert!(close(measured, 245.76 / 710.0 * 100.0, 1e-6), "{measured}");
    // Energy from the recording's counter: the run alone on the GPU gets all of it, at the
    // recording's power (about 500 to 650 W), for the time it held the GPU.
    let wh = e["energy_wh"].as_f64().unwrap();
    let gh = e["gpu_hours"].as_f64().unwrap();
    assert!(wh > 0.0 && gh > 0.0, "{e}");
    let watts = wh / gh;
    assert!(
        (450.0..700.0).contains(&watts),
        "{watts} W from {wh} Wh over {gh} GPU-h"
    );
    assert!(gh * 3600.0 < 10.0, "held at most the run's life: {gh}");
    // 0.5 EUR/kWh and 3 EUR/GPU-h, as the last sample priced them.
    let cost = e["cost"].as_f64().unwrap();
    assert!(close(cost, wh / 1000.0 * 0.5 + gh * 3.0, 1e-6), "{cost}");
    assert_eq!(e["currency"], "EUR");
    let hw = &e["hardware"]["gpus"][0];
    assert_eq!(hw["name"], "NVIDIA H200");
    assert_eq!(hw["driver"], "580.95.05");
    assert_eq!(hw["cuda"], "13.0");
    assert_eq!(hw["power_limit_w"].as_f64(), Some(700.0));
    assert_eq!(hw["pcie_gen"].as_u64(), Some(5));
    assert_eq!(hw["bench"]["gemm_bf16_tflops"].as_f64(), Some(710.0));
    assert_eq!(hw["bench"]["membw_gbs"].as_f64(), Some(4100.0));
    // The same figures are metrics: filters and sorting reach them.
    let out = gantry(ws.path())
        .args(["runs", "--json", "--filter", "energy>0Wh mfu>10%"])
        .output()
        .unwrap();
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    let out = gantry(ws.path())
        .args(["runs", "--json", "--filter", "energy>1MWh"])
        .output()
        .unwrap();
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 0, "{listed}");
}

#[test]
fn a_recorded_process_that_is_not_the_runs_gets_no_energy() {
    let ws = workspace();
    // The recording's only process is pid 41000: named as another, the run never holds the GPU.
    let v = run(ws.path(), "other", &["--gpu-replay-pid", "7"]);
    let e = &v["efficiency"];
    assert!(e["energy_wh"].is_null(), "{e}");
    assert!(e["hardware"].is_null(), "{e}");
    // Its work still gives TFLOP/s, with no GPU to compare with.
    assert!(
        close(e["tflops"]["median"].as_f64().unwrap(), 245.76, 1e-6),
        "{e}"
    );
    assert!(e["mfu"]["median"].is_null(), "{e}");
    let v = run(ws.path(), "own", &["--gpu-replay-pid", "41000"]);
    assert!(v["efficiency"]["energy_wh"].as_f64().unwrap() > 0.0);
}

#[test]
fn a_model_adds_up_its_lineage_and_compares_its_training_hardware() {
    let ws = workspace();
    let a = run(ws.path(), "base", &[]);
    let b = run(ws.path(), "tune", &[]);
    let wh = |v: &Value| v["efficiency"]["energy_wh"].as_f64().unwrap();
    let ckpt = ws.path().join("ckpt");
    std::fs::create_dir_all(&ckpt).unwrap();
    let add = |bytes: &str, extra: &[&str]| {
        std::fs::write(ckpt.join("w.bin"), bytes).unwrap();
        let out = gantry(ws.path())
            .args(["model", "add", "lm", "ckpt"])
            .args(extra)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    };
    add("one", &["--run", "base"]);
    add("two", &["--run", "tune", "--from", "lm@latest"]);
    let out = gantry(ws.path())
        .args(["model", "show", "lm@v2", "--json"])
        .output()
        .unwrap();
    let m: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        m["from"], "lm@v1",
        "an alias is kept as the version it named"
    );
    let l = &m["lineage"];
    assert_eq!(l["versions"], serde_json::json!(["lm@v2", "lm@v1"]));
    assert_eq!(l["runs"].as_u64(), Some(2));
    assert!(
        close(l["own"]["energy_wh"].as_f64().unwrap(), wh(&b), 1e-9),
        "{l}"
    );
    assert!(
        close(
            l["total"]["energy_wh"].as_f64().unwrap(),
            wh(&a) + wh(&b),
            1e-9
        ),
        "{l}"
    );
    assert_eq!(m["run"]["hardware"]["gpus"][0]["name"], "NVIDIA H200");
    let text = gantry(ws.path())
        .args(["model", "show", "lm@v2"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("from     lm@v1"), "{text}");
    assert!(text.contains("over 2 runs of 2 versions"), "{text}");
    // On the same recording: the same GPU, driver and CUDA (exit 0). On the A100 recording:
    // another model, slower by the datasheets (no bench history for the A100), exit 1.
    let verify = |rec: &str| {
        let out = gantry(ws.path())
            .arg("--gpu-replay")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join(rec))
            .args(["model", "verify", "--hardware", "lm@v2", "--json"])
            .output()
            .unwrap();
        let v: Value =
            serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out:?}"));
        (out.status.code(), v)
    };
    let (code, v) = verify(H200);
    assert_eq!(code, Some(0), "{v}");
    assert_eq!(v["gpus"][0]["same_model"], true);
    let (code, v) = verify("fixtures/gpu/a100-x2.made-up.jsonl");
    assert_eq!(code, Some(1), "{v}");
    let g = &v["gpus"][0];
    assert_eq!(g["same_model"], false);
    assert_eq!(g["speed_from"], "datasheet");
    let ratio = g["speed_ratio"].as_f64().unwrap();
    assert!(
        ratio < 0.5,
        "an A100 is much slower than an H200 by the datasheets: {ratio}"
    );
    // No GPU at all here: exit 3, said plainly (on a box with a driver, its GPUs answer).
    if !matches!(gantry::gpu::probe(), gantry::domain::GpuProbe::Absent(_)) {
        return;
    }
    let out = gantry(ws.path())
        .args(["model", "verify", "--hardware", "lm@v2"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("no GPU here to compare with"));
}

/// "Why was this run slower?": the same script at 20 and 10 steps a second, on the H200 and on
/// the A100 recordings; `gantry compare --json` gives each run's conditions as its sampler saw
/// them, and names the slower GPU model.
#[test]
fn compare_says_why_a_run_was_slower() {
    let ws = workspace();
    std::fs::write(
        ws.path().join("rate.py"),
        r#"
import json, os, sys, time
rate = float(sys.argv[1])
m = open(os.environ["GANTRY_METRICS"], "a")
t0 = time.time()
for step in range(int(rate * 2)):
    m.write(json.dumps({"step": step, "time": t0 + step / rate, "loss": 1 / (step + 1)}) + "\n")
    m.flush()
    time.sleep(1 / rate)
"#,
    )
    .unwrap();
    for (name, rec, rate) in [
        ("fast", H200, "20"),
        ("slow", "fixtures/gpu/a100-x2.made-up.jsonl", "10"),
    ] {
        let out = gantry(ws.path())
            .arg("--gpu-replay")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join(rec))
            .args(["run", "--name", name, "--sample-every", "0.3", "--"])
            .args(["python3", "rate.py", rate])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    }
    let out = gantry(ws.path())
        .args(["compare", "fast", "slow", "--json"])
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let c = &v["conditions"];
    assert!(
        close(c[0]["steps_per_s"].as_f64().unwrap(), 20.0, 1e-6),
        "{c}"
    );
    assert!(
        close(c[1]["steps_per_s"].as_f64().unwrap(), 10.0, 1e-6),
        "{c}"
    );
    assert_eq!(c[0]["gpu"], "NVIDIA H200");
    assert_eq!(c[1]["gpu"], "NVIDIA A100-SXM4-80GB");
    assert_eq!(c[0]["power_limit_w"].as_f64(), Some(700.0));
    assert_eq!(c[1]["power_limit_w"].as_f64(), Some(400.0));
    assert_eq!(c[0]["sm_clock_mhz"].as_f64(), Some(1980.0));
    assert_eq!(c[1]["sm_clock_mhz"].as_f64(), Some(1410.0));
    assert_eq!(c[1]["others"].as_f64(), Some(0.0));
    // The results were stored at 1.000 to 1.003 s after the epoch: the newest is nearest.
    assert_eq!(
        c[0]["bench_tflops"][0].as_f64(),
        Some(710.0),
        "nearest in time: {c}"
    );
    let verdicts = v["verdicts"].as_array().unwrap();
    assert_eq!(verdicts.len(), 1, "{v}");
    let text = verdicts[0].as_str().unwrap();
    assert!(
        text.starts_with("slow: 50% slower than fast; it ran on NVIDIA A100-SXM4-80GB (32% of"),
        "{text}"
    );
    let out = gantry(ws.path())
        .args(["compare", "fast", "slow"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("* power limit        700 W"), "{text}");
    assert!(text.contains("→ slow: 50% slower than fast"), "{text}");
}
