//! A Python with the mlflow client the interop fixtures were made with: target/interop-venv, made
//! on first use with pip. None (and a line saying why) where that cannot be done.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

static SETUP: Mutex<()> = Mutex::new(());

/// A python that imports mlflow and each of `extra` (module name, pip requirement).
pub fn python_with_mlflow(extra: &[(&str, &str)]) -> Option<PathBuf> {
    let _one_at_a_time = SETUP.lock().unwrap_or_else(|e| e.into_inner());
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/interop-venv");
    let py = venv.join("bin/python");
    let imports: Vec<&str> = std::iter::once("mlflow")
        .chain(extra.iter().map(|(m, _)| *m))
        .collect();
    let has = |py: &Path| {
        Command::new(py)
            .args(["-c", &format!("import {}", imports.join(", "))])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if has(&py) {
        return Some(py);
    }
    let versions = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/interop/VERSIONS.txt");
    let version = std::fs::read_to_string(versions)
        .expect("fixtures/interop/VERSIONS.txt")
        .lines()
        .find_map(|l| l.strip_prefix("mlflow-skinny ").map(str::to_string))
        .expect("VERSIONS.txt names the mlflow-skinny version");
    let mut reqs = vec![format!("mlflow-skinny=={version}")];
    reqs.extend(extra.iter().map(|(_, r)| r.to_string()));
    let ok = (py.exists()
        || Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .output()
            .is_ok_and(|o| o.status.success()))
        && Command::new(venv.join("bin/pip"))
            .args(["install", "-q"])
            .args(&reqs)
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

/// A python with moto's S3 server and boto3: target/s3-venv, made on first use with pip. None
/// (and a line saying why) where that cannot be done.
pub fn python_with_moto() -> Option<PathBuf> {
    let _one_at_a_time = SETUP.lock().unwrap_or_else(|e| e.into_inner());
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/s3-venv");
    let py = venv.join("bin/python");
    let has = |py: &Path| {
        Command::new(py)
            .args(["-c", "import moto.server, boto3"])
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
            .args(["install", "-q", "moto[server]", "boto3"])
            .output()
            .is_ok_and(|o| o.status.success());
    if ok && has(&py) {
        Some(py)
    } else {
        super::skip(&format!(
            "could not set up python3 with moto[server] and boto3 in {}",
            venv.display()
        ));
        None
    }
}
