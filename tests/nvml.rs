//! On a machine with an NVIDIA GPU only (`cargo test --test nvml -- --ignored`, or the prebuilt
//! binary that scripts/device-check.sh runs): NVML answers, and `gantry gpu --json` agrees with
//! `nvidia-smi` within stated tolerances. GANTRY_BIN names the gantry binary where the build
//! path does not exist (the device machine).

use std::process::Command;

use gantry::gpu::source::{GpuSource, NvmlSource};

fn gantry() -> String {
    std::env::var("GANTRY_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_gantry").to_string())
}

#[test]
#[ignore = "needs an NVIDIA GPU and driver"]
fn nvml_reports_every_gpu_with_its_core_readings() {
    let mut src = NvmlSource::open().expect("NVML opens where there is a GPU");
    let snap = src.sample().unwrap();
    assert!(!snap.gpus.is_empty());
    assert!(snap.driver.is_some() && snap.cuda.is_some());
    for g in &snap.gpus {
        assert!(!g.name.is_empty() && g.uuid.starts_with("GPU-"), "{g:?}");
        assert!(g.mem_total.unwrap() > 1 << 30, "{g:?}");
        assert!(
            g.util.is_some() && g.temp.is_some() && g.power.is_some() && g.sm_clock.is_some(),
            "{g:?}"
        );
    }
    println!(
        "NVML: {} GPUs, driver {:?}, CUDA {:?}",
        snap.gpus.len(),
        snap.driver,
        snap.cuda
    );
    // PCIe throughput comes from a thread of its own after the first sample: later samples still
    // carry it, and no longer wait 2 × 20 ms per GPU for it.
    std::thread::sleep(std::time::Duration::from_millis(600));
    let t = std::time::Instant::now();
    let later = src.sample().unwrap();
    println!(
        "a later NVML sample took {:.1} ms; PCIe rx/tx of GPU 0: {:?}/{:?} KB/s (first sample {:?}/{:?})",
        t.elapsed().as_secs_f64() * 1e3,
        later.gpus[0].pcie_rx,
        later.gpus[0].pcie_tx,
        snap.gpus[0].pcie_rx,
        snap.gpus[0].pcie_tx
    );
    for (a, b) in snap.gpus.iter().zip(&later.gpus) {
        assert_eq!(
            a.pcie_rx.is_some(),
            b.pcie_rx.is_some(),
            "PCIe readings stay where the GPU has them"
        );
    }
}

/// Tolerances, stated: memory total exact; memory used within 5% + 64 MiB; temperature within 3 °C;
/// power within 15% + 10 W; SM clock within 15%; utilisation within 25 points (both tools sample
/// a moving quantity at slightly different moments).
#[test]
#[ignore = "needs an NVIDIA GPU and nvidia-smi"]
fn gantry_gpu_agrees_with_nvidia_smi() {
    let smi = Command::new("nvidia-smi")
        .args(["--query-gpu=index,memory.total,memory.used,temperature.gpu,power.draw,clocks.sm,utilization.gpu", "--format=csv,noheader,nounits"])
        .output()
        .expect("nvidia-smi runs");
    let out = Command::new(gantry())
        .args(["gpu", "--json", "--once"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mib = |b: &serde_json::Value| b.as_f64().unwrap() / 1_048_576.0;
    for line in String::from_utf8_lossy(&smi.stdout).lines() {
        let f: Vec<f64> = line
            .split(',')
            .map(|x| x.trim().parse().unwrap_or(f64::NAN))
            .collect();
        let g = &v["gpus"][f[0] as usize];
        let (total, used, temp, power, clock, util) = (f[1], f[2], f[3], f[4], f[5], f[6]);
        println!(
            "GPU {}: memory total {total} / {} MiB, used {used} / {:.0} MiB, {temp} / {} C, {power} / {} W, SM {clock} / {} MHz, util {util} / {} %",
            f[0],
            mib(&g["mem_total"]),
            mib(&g["mem_used"]),
            g["temp"],
            g["power"],
            g["sm_clock"],
            g["util"]
        );
        assert!((mib(&g["mem_total"]) - total).abs() <= 1.0, "memory total");
        assert!(
            (mib(&g["mem_used"]) - used).abs() <= used * 0.05 + 64.0,
            "memory used"
        );
        assert!(
            (g["temp"].as_f64().unwrap() - temp).abs() <= 3.0,
            "temperature"
        );
        if power.is_finite() {
            assert!(
                (g["power"].as_f64().unwrap() - power).abs() <= power * 0.15 + 10.0,
                "power"
            );
        }
        assert!(
            (g["sm_clock"].as_f64().unwrap() - clock).abs() <= clock * 0.15 + 1.0,
            "SM clock"
        );
        assert!(
            (g["util"].as_f64().unwrap() - util).abs() <= 25.0,
            "utilisation"
        );
    }
}

/// The total-energy counter that runs' energy comes from advances under load, by about what the
/// power readings say: a 4-second `gantry bench --burn` between two reads, the counter's
/// difference over the time against the mean of the power read meanwhile (within half either way:
/// the two are measured differently, and the power reading is an average over a window).
#[test]
#[ignore = "needs an NVIDIA GPU and driver"]
fn the_energy_counter_advances_under_load() {
    let mut src = NvmlSource::open().expect("NVML opens where there is a GPU");
    let first = src.sample().unwrap();
    let g0 = &first.gpus[0];
    let (Some(e0), Some(t0)) = (g0.energy_mj, g0.read_us) else {
        println!("GPU 0 has no total-energy counter: runs estimate energy from power");
        return;
    };
    let mut burn = Command::new(gantry())
        .args(["bench", "--burn", "4", "--gpu", "0", "--yes"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut powers = Vec::new();
    let started = std::time::Instant::now();
    while started.elapsed().as_secs_f64() < 4.0 {
        std::thread::sleep(std::time::Duration::from_millis(250));
        if let Some(p) = src.sample().unwrap().gpus[0].power {
            powers.push(p);
        }
    }
    let last = src.sample().unwrap();
    let _ = burn.wait();
    let (e1, t1) = (
        last.gpus[0].energy_mj.unwrap(),
        last.gpus[0].read_us.unwrap(),
    );
    assert!(e1 > e0, "the counter advanced: {e0} → {e1} mJ");
    let watts = (e1 - e0) as f64 / 1000.0 / ((t1 - t0) as f64 / 1e6);
    let mean = powers.iter().sum::<f64>() / powers.len().max(1) as f64;
    println!(
        "energy counter: {:.0} J over {:.2} s = {watts:.0} W; power readings' mean {mean:.0} W",
        (e1 - e0) as f64 / 1000.0,
        (t1 - t0) as f64 / 1e6
    );
    assert!(
        watts > mean * 0.5 && watts < mean * 1.5,
        "{watts:.0} W by the counter, {mean:.0} W by the readings"
    );
}
