//! On a machine with an NVIDIA GPU and CUDA's libraries only (`cargo test --test cuda --
//! --ignored`, or the prebuilt binary scripts/device-check.sh runs): the CUDA backend opens,
//! names its device and libraries, and each benchmark runs, is checked and lands near its peak.

use std::sync::atomic::AtomicBool;

use gantry::bench::{self, BenchBackend, Kind, Precision, Request, Spec};

fn backend() -> Box<dyn BenchBackend + Send> {
    bench::open_cuda(0).unwrap_or_else(|e| panic!("the CUDA backend opens here: {e}"))
}

fn one(b: &mut dyn BenchBackend, spec: Spec) -> bench::BenchResult {
    let cancel = AtomicBool::new(false);
    let m = b
        .measure(&spec, bench::MIN_REPS, &mut |_| {}, &cancel)
        .unwrap();
    let r = bench::BenchResult::from_measured(spec, &m, &b.device().peaks).unwrap();
    println!(
        "{:<28} median {:>10.3} {} ({:.1}% of peak) check {:?}",
        r.spec.label(),
        r.stats.median,
        r.unit.as_str(),
        r.pct_of_peak.unwrap_or(f64::NAN),
        r.check.map(|c| (c.ok, c.max_rel_err))
    );
    r
}

#[test]
#[ignore = "needs an NVIDIA GPU with CUDA's libraries"]
fn the_device_and_its_libraries_are_named() {
    let b = backend();
    let d = b.device();
    println!("{d:#?}");
    assert_eq!(d.backend, "cuda");
    assert!(d.uuid.starts_with("GPU-") && !d.name.is_empty());
    assert!(d.cuda.is_some());
    for lib in ["libcuda.so", "libcublas", "libnvrtc"] {
        assert!(
            d.libraries.iter().any(|l| l.contains(lib)),
            "{lib} in {:?}",
            d.libraries
        );
    }
    assert!(
        d.peaks.memory.is_some() && d.peaks.fp32.is_some(),
        "{:?}",
        d.peaks
    );
    // The kernels are machine code for this GPU, not PTX left to the driver.
    assert!(
        d.libraries
            .iter()
            .any(|l| l.starts_with("kernels: CUBIN sm_")),
        "{:?}",
        d.libraries
    );
}

#[test]
#[ignore = "needs an NVIDIA GPU with CUDA's libraries"]
fn every_gemm_precision_is_right_and_fast() {
    let mut b = backend();
    for p in Precision::GPU {
        let r = one(b.as_mut(), Spec::gemm(p, 4096, "cublas"));
        assert!(r.correct(), "{r:?}");
        if let Some(pct) = r.pct_of_peak {
            assert!(
                pct > 20.0 && pct < 110.0,
                "{} at {pct:.1}% of peak",
                r.spec.label()
            );
        }
    }
}

#[test]
#[ignore = "needs an NVIDIA GPU with CUDA's libraries"]
fn bandwidth_copies_and_launches_run() {
    let mut b = backend();
    for v in ["copy-engine", "sm-copy", "sm-triad"] {
        let r = one(b.as_mut(), Spec::other(Kind::Membw, 256 << 20, v));
        assert!(
            r.pct_of_peak.unwrap() > 30.0 && r.pct_of_peak.unwrap() < 105.0,
            "{r:?}"
        );
    }
    for k in [Kind::H2d, Kind::D2h] {
        for v in ["pinned", "pageable"] {
            let r = one(b.as_mut(), Spec::other(k, 64 << 20, v));
            assert!(r.stats.median > 1.0, "{r:?}");
        }
    }
    for v in ["events", "wall"] {
        let r = one(b.as_mut(), Spec::other(Kind::Launch, 100, v));
        assert!(r.stats.median > 0.0 && r.stats.median < 1000.0, "{r:?}");
    }
    let specs = b.specs(&Request::default());
    assert!(specs.len() > 20);
}

#[test]
#[ignore = "needs an NVIDIA GPU with CUDA's libraries and NVML"]
fn results_carry_what_the_gpu_went_through() {
    let mut b = backend();
    let monitor = bench::monitor_for(b.device()).expect("NVML answers where CUDA does");
    let req = Request {
        only: vec![Kind::Gemm],
        sizes: vec![8192],
        precisions: vec![Precision::Bf16],
        ..Request::default()
    };
    let results = bench::run(
        b.as_mut(),
        &req,
        Some(&monitor),
        &mut |_| {},
        &AtomicBool::new(false),
    );
    let c = results[0].conditions.clone().expect("sampled while it ran");
    println!("gemm bf16 8192 ran with {c:?}");
    assert!(
        c.samples >= 1 && c.sm_clock_mhz.is_some_and(|m| m > 0),
        "{c:?}"
    );
    assert!(monitor.stopped().is_none(), "{:?}", monitor.stopped());
}

#[test]
#[ignore = "needs an NVIDIA GPU with CUDA's libraries and NVML"]
fn a_sustained_load_holds_and_is_checked() {
    let mut b = backend();
    let monitor = bench::monitor_for(b.device());
    let spec = Spec::gemm(Precision::Bf16, 8192, "cublas");
    let burn = bench::burn(
        b.as_mut(),
        &spec,
        5.0,
        1.0,
        monitor.as_ref(),
        &mut |w| println!("{:>5.1} s {:>8.1} TFLOP/s {:?}", w.t, w.value, w.conditions),
        &AtomicBool::new(false),
    )
    .unwrap();
    println!(
        "sustained {:.3} (start {:.1}, end {:.1}, min {:.1} TFLOP/s) check {:?} conditions {:?}",
        burn.sustained, burn.start, burn.end, burn.min, burn.check, burn.conditions
    );
    assert!(burn.correct() && burn.check.is_some(), "{:?}", burn.check);
    assert!(burn.windows.len() >= 4, "{:?}", burn.windows);
}

/// A small GEMM timed one batch of back-to-back repetitions per event pair reads what the same
/// GEMM reads in a sustained run of much larger batches: the host's submission no longer sits
/// inside a 2 µs window. Within 10%.
#[test]
#[ignore = "needs an NVIDIA GPU with CUDA's libraries"]
fn a_small_gemm_is_timed_as_fairly_as_a_long_batch() {
    let mut b = backend();
    let spec = Spec::gemm(Precision::Bf16, 1024, "cublas");
    let timed = one(b.as_mut(), spec.clone());
    let cancel = AtomicBool::new(false);
    let long = b.sustain(&spec, 2.0, 0.25, &mut |_| {}, &cancel).unwrap();
    let mut per_rep = long.seconds.clone();
    per_rep.sort_by(f64::total_cmp);
    let batched = long.work / per_rep[per_rep.len() / 2] / 1e12;
    let ratio = timed.stats.median / batched;
    println!(
        "gemm bf16 1024: {:.1} TFLOP/s timed, {batched:.1} in long batches: ratio {ratio:.3}",
        timed.stats.median
    );
    assert!((0.9..=1.1).contains(&ratio), "{ratio}");
}

/// Power over a sustained load from the total-energy counter agrees with nvidia-smi's
/// power.draw sampled across the same seconds, within 10%.
#[test]
#[ignore = "needs an NVIDIA GPU with CUDA's libraries, NVML and nvidia-smi"]
fn power_from_the_energy_counter_agrees_with_nvidia_smi() {
    let mut b = backend();
    let monitor = bench::monitor_for(b.device()).expect("NVML answers where CUDA does");
    let uuid = b.device().uuid.clone();
    let smi = std::thread::spawn(move || {
        let mut watts = Vec::new();
        std::thread::sleep(std::time::Duration::from_secs(2));
        for _ in 0..12 {
            let out = std::process::Command::new("nvidia-smi")
                .args([
                    &format!("--id={uuid}"),
                    "--query-gpu=power.draw",
                    "--format=csv,noheader,nounits",
                ])
                .output()
                .expect("nvidia-smi runs");
            if let Ok(w) = String::from_utf8_lossy(&out.stdout).trim().parse::<f64>() {
                watts.push(w);
            }
            std::thread::sleep(std::time::Duration::from_millis(500));
        }
        watts
    });
    let spec = Spec::gemm(Precision::Bf16, 8192, "cublas");
    let burn = bench::burn(
        b.as_mut(),
        &spec,
        10.0,
        1.0,
        Some(&monitor),
        &mut |_| {},
        &AtomicBool::new(false),
    )
    .unwrap();
    let watts = smi.join().unwrap();
    let smi_mean = watts.iter().sum::<f64>() / watts.len() as f64;
    let c = burn.conditions.expect("sampled while it ran");
    println!(
        "power {:?} W from {:?}; nvidia-smi {smi_mean:.0} W over {} readings",
        c.power_w,
        c.power_from,
        watts.len()
    );
    assert_eq!(c.power_from.as_deref(), Some("energy"), "{c:?}");
    let ratio = c.power_w.unwrap() / smi_mean;
    assert!((0.9..=1.1).contains(&ratio), "{ratio}");
}
