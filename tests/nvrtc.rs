//! NVRTC for real, with no GPU: NVIDIA's `nvidia-cuda-nvrtc` wheel (CUDA 13, fetched into
//! target/nvrtc-venv) compiles gantry's benchmark kernels to machine code for Hopper, Ampere and
//! Blackwell, and `gantry doctor` names that NVRTC, its file and version. The loader reads
//! LD_LIBRARY_PATH when a process starts, so each check runs in a child given the wheel's folder.

mod common;

use std::process::Command;

/// This test binary again, running only `name` (an ignored test) with NVRTC on the loader's path.
fn with_nvrtc(name: &str) -> Option<String> {
    let dir = common::python::nvrtc_wheel()?;
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            name,
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("LD_LIBRARY_PATH", &dir)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("1 passed"), "{text}");
    Some(text)
}

#[test]
fn the_kernels_compile_to_machine_code_for_the_devices_own_architecture() {
    let Some(text) = with_nvrtc("cubins_with_nvrtc_on_the_path") else {
        return;
    };
    assert!(text.contains("CUBIN sm_90 (NVRTC 13."), "{text}");
}

#[test]
#[ignore = "started by the_kernels_compile_to_machine_code_… with NVRTC on LD_LIBRARY_PATH"]
fn cubins_with_nvrtc_on_the_path() {
    use gantry::bench::cuda::compile::{Image, kernels_for};
    // Safety: only opens the library by name.
    assert!(
        unsafe { cudarc::nvrtc::sys::is_culib_present() },
        "no NVRTC on the path"
    );
    for (major, minor) in [(9, 0), (8, 0), (10, 0)] {
        let (image, what) = kernels_for(major, minor).unwrap();
        println!("{what}");
        match image {
            Image::Cubin(bytes) => {
                // An ELF object: what the driver loads with no JIT.
                assert_eq!(&bytes[..4], b"\x7fELF", "{what}");
                assert!(what.starts_with(&format!("CUBIN sm_{major}{minor} (NVRTC 13.")));
            }
            Image::Ptx(text) => panic!("PTX where a CUBIN was wanted: {what}\n{text:.200}"),
        }
    }
}

#[test]
fn doctor_names_the_nvrtc_it_would_load() {
    let Some(dir) = common::python::nvrtc_wheel() else {
        return;
    };
    let ws = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_gantry"))
        .args(["--workspace"])
        .arg(ws.path())
        .args(["doctor", "--json"])
        .env("LD_LIBRARY_PATH", &dir)
        .env("HOME", ws.path())
        .env("XDG_CONFIG_HOME", ws.path().join("config"))
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    let nvrtc = v["cuda"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["name"] == "libnvrtc")
        .unwrap();
    assert!(
        nvrtc["version"].as_str().unwrap().starts_with("13."),
        "{nvrtc}"
    );
    let path = nvrtc["path"].as_str().unwrap();
    assert!(
        path.contains("nvidia") && path.contains("libnvrtc.so.13"),
        "{nvrtc}"
    );
}
