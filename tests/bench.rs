//! `gantry bench` through the binary: no CUDA is a clear exit 3, the CPU backend end to end with
//! JSON, history stored and compared on the next run, and bad arguments.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

fn gantry(ws: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_gantry"))
        .arg("--workspace")
        .arg(ws)
        .args(args)
        .output()
        .unwrap()
}

fn workspace() -> (tempfile::TempDir, std::path::PathBuf) {
    let home = tempfile::tempdir().unwrap();
    let ws = home.path().join("ws");
    std::fs::create_dir_all(&ws).unwrap();
    assert!(gantry(&ws, &["init"]).status.success());
    (home, ws)
}

#[test]
fn without_cuda_bench_exits_3_and_names_the_missing_library() {
    if Path::new("/proc/driver/nvidia").exists() {
        return; // with a driver, CUDA opens: scripts/device-check.sh runs it there
    }
    let (_h, ws) = workspace();
    for args in [
        &["bench", "--only", "launch"][..],
        &["bench", "--only", "launch", "--gpu", "all"][..],
        &["bench", "--burn", "5"][..],
    ] {
        let out = gantry(&ws, args);
        assert_eq!(out.status.code(), Some(3), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("CUDA not available: libcuda.so"), "{err}");
        assert!(err.contains("--cpu"), "{err}");
    }
}

#[test]
fn the_cpu_backend_measures_checks_stores_and_compares() {
    let (_h, ws) = workspace();
    let run = || {
        let out = gantry(&ws, &["bench", "--cpu", "--size", "64", "--json"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    let first = run();
    assert_eq!(first["device"]["backend"], "cpu");
    let results = first["results"].as_array().unwrap();
    let labels: Vec<&str> = results
        .iter()
        .map(|r| r["label"].as_str().unwrap())
        .collect();
    assert_eq!(
        labels,
        [
            "gemm fp32 64",
            "gemm fp64 64",
            "membw cpu-copy 1 MiB",
            "launch thread-wake"
        ]
    );
    for r in results {
        let s = &r["stats"];
        assert_eq!(s["reps"], 20);
        let (lo, med, hi) = (
            s["min"].as_f64().unwrap(),
            s["median"].as_f64().unwrap(),
            s["max"].as_f64().unwrap(),
        );
        assert!(lo > 0.0 && lo <= med && med <= hi, "{r}");
        assert!(s["stddev"].as_f64().unwrap() >= 0.0);
        assert_eq!(r["history"]["runs"], 0);
    }
    assert_eq!(results[0]["unit"], "TFLOP/s");
    assert_eq!(results[0]["check"]["ok"], true);
    assert_eq!(results[2]["unit"], "GB/s");
    assert_eq!(results[2]["counts"], "bytes read + written");
    assert_eq!(results[3]["unit"], "us");
    // The second run is compared with the first.
    let second = run();
    for r in second["results"].as_array().unwrap() {
        assert_eq!(r["history"]["runs"], 1, "{r}");
        assert!(r["history"]["median"].as_f64().is_some());
    }
    // The human table names the device and each result.
    let out = gantry(
        &ws,
        &[
            "bench",
            "--cpu",
            "--size",
            "32",
            "--only",
            "gemm",
            "--precision",
            "fp32",
        ],
    );
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("device ") && text.contains("gemm fp32 32") && text.contains("ok ("),
        "{text}"
    );
}

#[test]
fn bad_arguments_say_what_to_give() {
    let (_h, ws) = workspace();
    for (args, says) in [
        (&["bench", "--cpu", "--reps", "5"][..], "at least 20"),
        (
            &["bench", "--cpu", "--only", "gemm,nope"][..],
            "no benchmark `nope`",
        ),
        (
            &["bench", "--cpu", "--precision", "fp8"][..],
            "no precision `fp8`",
        ),
        (&["bench", "--cpu", "--size", "0"][..], "out of range"),
        (
            &["bench", "--cpu", "--burn", "0.5"][..],
            "--burn 0.5 is out of range",
        ),
        (
            &["bench", "--cpu", "--burn", "5", "--only", "membw"][..],
            "--burn runs a GEMM",
        ),
        (
            &["bench", "--gpu", "first"][..],
            "`first` is not a GPU: give an index (0, 1, …) or all",
        ),
    ] {
        let out = gantry(&ws, args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{args:?}: {err}");
    }
}

#[test]
fn the_cpu_sustains_a_load_and_says_how_it_held_up() {
    let (_h, ws) = workspace();
    let out = gantry(
        &ws,
        &["bench", "--cpu", "--burn", "2", "--size", "64", "--json"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["burn"]["label"], "gemm fp32 64");
    let d = &v["devices"][0];
    assert!(d["gpu"].is_null(), "the CPU is no GPU");
    let r = &d["result"];
    let windows = r["windows"].as_array().unwrap();
    assert!(!windows.is_empty() && windows.len() <= 2, "{r}");
    assert!(windows.iter().all(|w| w["value"].as_f64().unwrap() > 0.0));
    assert_eq!(r["check"]["ok"], true);
    assert!(r["sustained"].as_f64().unwrap() > 0.0);
    let out = gantry(&ws, &["bench", "--cpu", "--burn", "1", "--size", "32"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("sustained load: gemm fp32 32 for 1 s") && text.contains("HELD"),
        "{text}"
    );
    assert!(text.lines().nth(2).unwrap().ends_with("ok"), "{text}");
    // A precision the CPU has not: said, and a failure.
    let out = gantry(
        &ws,
        &["bench", "--cpu", "--burn", "1", "--precision", "bf16"],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("CPU: the CPU backend has no bf16 GEMM"),
        "{err}"
    );
}

#[test]
fn history_lists_each_devices_benchmarks_with_their_trend_and_drops() {
    let home = tempfile::tempdir().unwrap();
    let ws = home.path().join("demo");
    let out = Command::new(env!("CARGO_BIN_EXE_gantry"))
        .args(["demo", "--no-open"])
        .arg(&ws)
        .env("HOME", home.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    let out = gantry(&ws, &["bench", "--history"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("NVIDIA A100-SXM4-80GB (cuda) · "),
        "{text}"
    );
    let bf16 = text
        .lines()
        .find(|l| l.starts_with("gemm bf16 8192"))
        .expect(&text);
    assert!(
        bf16.contains("259.4 TFLOP/s") && bf16.ends_with("▼ 8.0% below median (sw thermal)"),
        "{bf16}"
    );
    let launch = text
        .lines()
        .find(|l| l.starts_with("launch events"))
        .unwrap();
    assert!(!launch.contains('▼'), "{launch}");
    let out = gantry(&ws, &["bench", "--history", "--only", "membw", "--json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = v.as_array().unwrap();
    assert_eq!(rows.len(), 1, "--only filters: {v}");
    assert_eq!(rows[0]["label"], "membw sm-triad 1 GiB");
    assert_eq!(rows[0]["runs"], 5);
    assert!(rows[0]["drop_pct"].is_null());
    // A workspace with none says so, and how to get some.
    let (_h, empty) = workspace();
    let out = gantry(&empty, &["bench", "--history"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no benchmark results are stored"));
}

#[test]
fn a_result_keeps_its_gpu_conditions_in_the_store() {
    use gantry::bench::{BenchResult, Conditions, DeviceInfo, Precision, Spec, Stats};
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store = gantry::store::Store::open(&dir.path().join("g.db"))
            .await
            .unwrap();
        let device = DeviceInfo {
            backend: "cuda".into(),
            name: "NVIDIA H200".into(),
            uuid: "GPU-1".into(),
            ..DeviceInfo::default()
        };
        let spec = Spec::gemm(Precision::Bf16, 8192, "cublas");
        let conditions = Conditions {
            samples: 4,
            sm_clock_mhz: Some(1830),
            sm_clock_min_mhz: Some(1755),
            sm_clock_max_mhz: Some(1980),
            power_w: Some(699.5),
            power_limit_w: Some(700.0),
            temp_max_c: Some(66),
            throttle: vec!["power cap".into(), "sw thermal".into()],
            ..Default::default()
        };
        let mut r = BenchResult {
            unit: spec.kind.unit(),
            spec,
            stats: Stats {
                median: 700.0,
                min: 690.0,
                max: 705.0,
                stddev: 3.0,
                reps: 20,
            },
            peak: None,
            pct_of_peak: None,
            check: None,
            conditions: Some(conditions.clone()),
        };
        store.record_bench(1, "h", &device, &r).await.unwrap();
        r.conditions = None;
        store.record_bench(2, "h", &device, &r).await.unwrap();
        let h = store.bench_history(Some("GPU-1")).await.unwrap();
        assert_eq!(h[0].conditions.as_ref(), Some(&conditions));
        assert_eq!(h[1].conditions, None, "none sampled is none stored");
    });
}
