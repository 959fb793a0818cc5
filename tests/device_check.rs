//! scripts/device-check.sh run here, with no GPU: it gets through every part, says "no GPU" for
//! each that needs one, needs neither nvidia-smi nor a built target/device, and still writes its
//! summary and doctor's report under $OUT.

use std::process::Command;

#[test]
fn the_device_check_ends_cleanly_without_a_gpu() {
    if std::path::Path::new("/proc/driver/nvidia").exists() {
        return; // a GPU machine runs the real check (scripts/device-check.sh), not this one
    }
    let out_dir = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/device-check.sh");
    let out = Command::new("bash")
        .arg(script)
        .env("GANTRY_BIN", env!("CARGO_BIN_EXE_gantry"))
        .env("GANTRY_NVML_TESTS", "/nonexistent/nvml-tests")
        .env("GANTRY_CUDA_TESTS", "/nonexistent/cuda-tests")
        .env("OUT", out_dir.path())
        .env("HOME", home.path())
        .env("XDG_CONFIG_HOME", home.path().join("config"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in [
        "no GPU: gantry gpu exits 3 without an NVIDIA driver",
        "no GPU: gantry bench exits 3 without CUDA",
        "no GPU: no sustained load",
        "no comparison",
        "no /nonexistent/nvml-tests",
        "no /nonexistent/cuda-tests",
    ] {
        let found = text.contains(line)
            || (line == "no comparison" && text.contains("no torch comparison"));
        assert!(found, "missing {line:?} in:\n{text}");
    }
    let summary = std::fs::read_to_string(out_dir.path().join("summary.md")).unwrap();
    assert!(summary.starts_with("# gantry device check"), "{summary}");
    assert!(
        summary.contains("- GPU: none (no NVIDIA driver"),
        "{summary}"
    );
    assert!(
        summary.contains("- libcublas: - libcublas.so not found"),
        "{summary}"
    );
    let doctor: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.path().join("doctor.json")).unwrap())
            .unwrap();
    assert_eq!(doctor["nvidia"]["source"], "NVML");
    assert_eq!(
        std::fs::read_to_string(out_dir.path().join("device-check.txt")).unwrap(),
        text
    );
}
