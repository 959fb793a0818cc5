//! A Python with the mlflow client the interop fixtures were made with: target/interop-venv, made
//! on first use with pip. None (and a line saying why) where that cannot be done.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

static SETUP: Mutex<()> = Mutex::new(());

/// A python that imports mlflow and each of `extra` (module name, pip requirement).
pub fn python_with_mlflow(extra: &[(&str, &str)]) -> Option<PathBuf> {
    let _one_at_a_time = SETUP.lock().unwrap_or_else(|e| e.into_inner());
    let imports: Vec<&str> = std::iter::once("mlflow")
        .chain(extra.iter().map(|(m, _)| *m))
        .collect();
    let versions = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/interop/VERSIONS.txt");
    let version = std::fs::read_to_string(versions)
        .expect("fixtures/interop/VERSIONS.txt")
        .lines()
        .find_map(|l| l.strip_prefix("mlflow-skinny ").map(str::to_string))
        .expect("VERSIONS.txt names the mlflow-skinny version");
    let mlflow = format!("mlflow-skinny=={version}");
    let reqs: Vec<&str> = std::iter::once(mlflow.as_str())
        .chain(extra.iter().map(|(_, r)| *r))
        .collect();
    venv_with("target/interop-venv", &imports, &reqs)
}

/// A python with moto's S3 server and boto3: target/s3-venv, made on first use with pip. None
/// (and a line saying why) where that cannot be done.
pub fn python_with_moto() -> Option<PathBuf> {
    let _one_at_a_time = SETUP.lock().unwrap_or_else(|e| e.into_inner());
    venv_with(
        "target/s3-venv",
        &["moto.server", "boto3"],
        &["moto[server]", "boto3"],
    )
}

/// A venv at `dir` (under the crate) whose python imports `imports`, made with pip installing
/// `reqs` where it does not yet. None, and a line saying why, where that cannot be done.
fn venv_with(dir: &str, imports: &[&str], reqs: &[&str]) -> Option<PathBuf> {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let py = venv.join("bin/python");
    let has = |py: &Path| {
        Command::new(py)
            .args(["-c", &format!("import {}", imports.join(", "))])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if has(&py) {
        return Some(py);
    }
    let ok = (py.exists()
        || Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .output()
            .is_ok_and(|o| o.status.success()))
        && Command::new(venv.join("bin/pip"))
            .args(["install", "-q"])
            .args(reqs)
            .output()
            .is_ok_and(|o| o.status.success());
    if ok && has(&py) {
        Some(py)
    } else {
        super::skip(&format!(
            "could not set up python3 with {} in {}",
            reqs.join(" "),
            venv.display()
        ));
        None
    }
}

/// NVRTC from NVIDIA's `nvidia-cuda-nvrtc` wheel (CUDA 13; NVRTC needs no GPU): the folder that
/// holds libnvrtc.so.13, in target/nvrtc-venv, made on first use with pip. None (and a line
/// saying why) where that cannot be done.
pub fn nvrtc_wheel() -> Option<PathBuf> {
    let _one_at_a_time = SETUP.lock().unwrap_or_else(|e| e.into_inner());
    let py = venv_with(
        "target/nvrtc-venv",
        &["nvidia"],
        &["nvidia-cuda-nvrtc>=13,<14"],
    )?;
    let out = Command::new(&py)
        .args([
            "-c",
            "import glob, os, site; print(next(iter(sorted(glob.glob(os.path.join(site.getsitepackages()[0], 'nvidia', '*', 'lib', 'libnvrtc.so.*')))), ''))",
        ])
        .output()
        .ok()?;
    let lib = String::from_utf8_lossy(&out.stdout).trim().to_string();
    match Path::new(&lib).parent() {
        Some(dir) if !lib.is_empty() => Some(dir.to_path_buf()),
        _ => {
            super::skip("the nvidia-cuda-nvrtc wheel holds no libnvrtc.so.N");
            None
        }
    }
}
