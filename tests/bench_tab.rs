//! The Bench tab: update() for the checklist, the backend switch, run, the busy-GPU question and
//! cancel; snapshots idle, running, with results and history, and without CUDA; and a real run of
//! the CPU backend through the effect runner into a temporary store.

mod common;

use gantry::app::bench::Cuda;
use gantry::app::{Drawer, Effect, Modal, Msg, State, update};
use gantry::bench::{
    BenchResult, Check, Conditions, DeviceInfo, Event, Kind, Peaks, Precision, Spec, Stats, Unit,
};
use gantry::config::KeyChord;
use gantry::store::StoredBench;
use ratatui::Terminal;
use ratatui::backend::TestBackend;

fn key(s: &str) -> Msg {
    Msg::Key(KeyChord::parse(s).unwrap())
}

use common::screen;

fn h200() -> DeviceInfo {
    DeviceInfo {
        backend: "cuda".into(),
        name: "NVIDIA H200".into(),
        uuid: "GPU-h200-00-made-up".into(),
        driver: Some("580.95.05".into()),
        cuda: Some("13.0".into()),
        libraries: vec![
            "/usr/lib/x86_64-linux-gnu/libcuda.so.580.95.05".into(),
            "/opt/cuda/lib64/libcublas.so.13".into(),
            "/opt/cuda/lib64/libnvrtc.so.13".into(),
        ],
        peaks: Peaks::default(),
    }
}

fn result(spec: Spec, median: f64, peak: Option<f64>, ok: Option<bool>) -> BenchResult {
    let unit = spec.kind.unit();
    BenchResult {
        spec,
        unit,
        stats: Stats {
            median,
            min: median * 0.97,
            max: median * 1.01,
            stddev: median * 0.01,
            reps: 20,
        },
        peak,
        pct_of_peak: peak.map(|p| 100.0 * median / p),
        check: ok.map(|ok| Check {
            max_rel_err: if ok { 2e-4 } else { 0.5 },
            bound: 1e-2,
            samples: 64,
            ok,
        }),
        conditions: Some(gpu_during(None)),
    }
}

/// What the H200 went through: full clocks, or held down for `throttle`.
fn gpu_during(throttle: Option<&str>) -> Conditions {
    Conditions {
        samples: 8,
        sm_clock_mhz: Some(if throttle.is_some() { 1830 } else { 1980 }),
        sm_clock_min_mhz: Some(if throttle.is_some() { 1755 } else { 1980 }),
        sm_clock_max_mhz: Some(1980),
        power_w: Some(if throttle.is_some() { 699.0 } else { 652.0 }),
        power_limit_w: Some(700.0),
        temp_max_c: Some(63),
        throttle: throttle.into_iter().map(String::from).collect(),
        ..Default::default()
    }
}

fn stored(spec: &Spec, median: f64, when: i64) -> StoredBench {
    StoredBench {
        id: format!("{when}"),
        started_ms: when,
        host: "gpu01".into(),
        backend: "cuda".into(),
        device: "NVIDIA H200".into(),
        device_uuid: "GPU-h200-00-made-up".into(),
        driver: "580.95.05".into(),
        cuda: "13.0".into(),
        spec: spec.clone(),
        unit: spec.kind.unit(),
        stats: Stats {
            median,
            min: median,
            max: median,
            stddev: 0.0,
            reps: 20,
        },
        peak: None,
        pct_of_peak: None,
        check_ok: None,
        max_rel_err: None,
        conditions: None,
    }
}

fn on_the_bench_tab() -> State {
    let mut s = common::state();
    let out = update(&mut s, key("4"));
    assert!(out.effects.contains(&Effect::LoadBenchHistory));
    assert!(out.effects.contains(&Effect::ProbeCuda { gpu: 0 }));
    update(&mut s, Msg::BenchHistory(Ok(Vec::new())));
    s
}

fn specs() -> Vec<Spec> {
    vec![
        Spec::gemm(Precision::Bf16, 4096, "cublas"),
        Spec::gemm(Precision::Bf16, 8192, "cublas"),
        Spec::gemm(Precision::Fp32, 4096, "cublas"),
        Spec::gemm(Precision::Fp32, 8192, "cublas"),
        Spec::other(Kind::Membw, 1 << 30, "sm-triad"),
        Spec::other(Kind::Launch, 1000, "events"),
    ]
}

#[test]
fn the_checklist_toggles_and_steps_the_size() {
    let mut s = on_the_bench_tab();
    assert_eq!(s.bench.request().only.len(), 5);
    update(&mut s, key("space")); // GEMM off
    assert!(!s.bench.request().only.contains(&Kind::Gemm));
    update(&mut s, key("down")); // fp32
    update(&mut s, key("space"));
    assert!(!s.bench.request().precisions.contains(&Precision::Fp32));
    for _ in 0..4 {
        update(&mut s, key("down"));
    }
    update(&mut s, key("space")); // size: all -> 1024
    assert_eq!(s.bench.request().sizes, [1024]);
    update(&mut s, key("space"));
    assert_eq!(s.bench.request().sizes, [2048]);
    update(&mut s, key("c"));
    assert!(s.bench.cpu);
    update(&mut s, key("up"));
    update(&mut s, key("up"));
    update(&mut s, key("up"));
    update(&mut s, key("up"));
    update(&mut s, key("space")); // fp32 back on; the CPU adds fp64
    let p = s.bench.request().precisions;
    assert!(p.contains(&Precision::Fp32) && p.contains(&Precision::Fp64));
}

#[test]
fn without_cuda_r_says_why_and_the_cpu_backend_runs() {
    let mut s = on_the_bench_tab();
    let why = "CUDA not available: libcuda.so (the NVIDIA driver) was not found".to_string();
    update(&mut s, Msg::BenchProbed(Err(why.clone())));
    assert_eq!(s.bench.cuda, Cuda::Unavailable(why.clone()));
    let out = update(&mut s, key("r"));
    assert!(out.effects.is_empty());
    assert!(s.toast.as_deref().unwrap().starts_with(&why));
    insta::assert_snapshot!("cuda_not_available", screen(&s, 120, 30));

    update(&mut s, key("c"));
    let out = update(&mut s, key("r"));
    let run = out.effects.iter().find_map(|e| match e {
        Effect::RunBench { request, cpu, .. } => Some((request.clone(), *cpu)),
        _ => None,
    });
    let (req, cpu) = run.expect("r runs the CPU backend");
    assert!(cpu && req.expect("benchmarks are checked").reps >= 20);
    assert!(s.bench.running);
    let again = update(&mut s, key("r"));
    assert!(again.effects.is_empty(), "one run at a time");
    let out = update(&mut s, key("esc"));
    assert_eq!(out.effects, [Effect::CancelBench]);
    let spec = Spec::gemm(Precision::Fp32, 256, "matrixmultiply");
    update(
        &mut s,
        Msg::BenchEvent(Event::Started {
            index: 0,
            total: 8,
            spec: spec.clone(),
        }),
    );
    update(
        &mut s,
        Msg::BenchEvent(Event::Finished {
            index: 0,
            result: result(spec, 0.04, None, Some(true)),
        }),
    );
    let cpu = DeviceInfo {
        backend: "cpu".into(),
        name: "cpu".into(),
        ..DeviceInfo::default()
    };
    update(&mut s, Msg::BenchDone(Ok(cpu)));
    assert_eq!(s.toast.as_deref(), Some("cancelled: 1 of 8 benchmarks ran"));
    assert!(!s.bench.running);
}

#[test]
fn a_busy_gpu_is_listed_and_asked_about() {
    use gantry::gpu::source::{GpuProcess, GpuSnapshot};
    let mut s = on_the_bench_tab();
    update(&mut s, Msg::BenchProbed(Ok(h200())));
    s.gpus.snapshot = Some(GpuSnapshot {
        processes: vec![GpuProcess {
            pid: 4242,
            gpu: 0,
            mem_used: Some(1 << 30),
            sm_util: Some(80),
        }],
        ..GpuSnapshot::default()
    });
    let out = update(&mut s, key("r"));
    assert!(out.effects.is_empty());
    assert!(
        matches!(&s.modal, Some(Modal::Confirm { lines, .. }) if lines[1].starts_with("  pid 4242"))
    );
    let text = screen(&s, 120, 30);
    assert!(
        text.contains("1 other processes use GPU 0") && text.contains("Run anyway? y/N"),
        "{text}"
    );
    let out = update(&mut s, key("n"));
    assert!(out.effects.is_empty() && !s.bench.running);
    update(&mut s, key("r"));
    let out = update(&mut s, key("y"));
    assert!(matches!(
        out.effects[..],
        [Effect::RunBench { cpu: false, .. }]
    ));
}

#[test]
fn the_gpu_row_picks_a_gpu_by_cuda_number_and_finds_its_processes_by_uuid() {
    use gantry::gpu::source::{GpuProcess, GpuSample, GpuSnapshot};
    let mut s = on_the_bench_tab();
    update(
        &mut s,
        Msg::BenchGpus(vec![
            ("NVIDIA H200".into(), "GPU-h200-00-made-up".into()),
            ("NVIDIA H200".into(), "GPU-h200-01-made-up".into()),
        ]),
    );
    update(&mut s, Msg::BenchProbed(Ok(h200())));
    // NVML lists the second CUDA GPU first (PCI order against CUDA's fastest-first), and a
    // process uses it.
    let gpu = |index: u32, uuid: &str| GpuSample {
        index,
        uuid: uuid.into(),
        ..GpuSample::default()
    };
    s.gpus.snapshot = Some(GpuSnapshot {
        gpus: vec![gpu(0, "GPU-h200-01-made-up"), gpu(1, "GPU-h200-00-made-up")],
        processes: vec![GpuProcess {
            pid: 4242,
            gpu: 0,
            mem_used: Some(1 << 30),
            sm_util: Some(80),
        }],
        ..GpuSnapshot::default()
    });
    // CUDA's GPU 0 is NVML's 1, which is idle: r runs at once.
    let out = update(&mut s, key("r"));
    assert!(
        matches!(out.effects[..], [Effect::RunBench { gpu: 0, .. }]),
        "{:?}",
        out.effects
    );
    update(&mut s, Msg::BenchDone(Ok(h200())));
    // The GPU row is the last: space steps to GPU 1 and asks CUDA about it.
    for _ in 0..11 {
        update(&mut s, key("down"));
    }
    let out = update(&mut s, key("space"));
    assert_eq!(out.effects, [Effect::ProbeCuda { gpu: 1 }]);
    assert_eq!(s.bench.gpu, 1);
    let text = screen(&s, 120, 30);
    assert!(text.contains("GPU 1/2: H200"), "{text}");
    assert!(
        !text.contains("driver 580.95.05"),
        "GPU 0's facts are not shown for GPU 1: {text}"
    );
    assert_eq!(
        s.bench.history_device().as_deref(),
        Some("GPU-h200-01-made-up")
    );
    // CUDA's GPU 1 is NVML's 0, which pid 4242 uses: r asks first.
    let out = update(&mut s, key("r"));
    assert!(out.effects.is_empty());
    let text = screen(&s, 120, 30);
    assert!(text.contains("1 other processes use GPU 1"), "{text}");
    let out = update(&mut s, key("y"));
    assert!(matches!(out.effects[..], [Effect::RunBench { gpu: 1, .. }]));
    // The CPU backend has no GPU to pick.
    update(&mut s, Msg::BenchDone(Ok(h200())));
    update(&mut s, key("c"));
    let out = update(&mut s, key("space"));
    assert!(out.effects.is_empty() && s.bench.gpu == 1);
}

#[test]
fn a_sustained_load_alone_is_charted_second_by_second() {
    use gantry::bench::{Burn, Conditions, Window};
    let mut s = on_the_bench_tab();
    update(&mut s, Msg::BenchProbed(Ok(h200())));
    // The load row steps through its lengths; the benchmarks are unchecked one by one.
    for _ in 0..10 {
        update(&mut s, key("down"));
    }
    update(&mut s, key("space"));
    assert_eq!(s.bench.burn_text(), "[x] Sustained load 30 s");
    update(&mut s, key("space"));
    for _ in 0..10 {
        update(&mut s, key("up"));
    }
    update(&mut s, key("space")); // GEMM off
    for i in [6, 7, 8, 9] {
        s.bench.cursor = i;
        update(&mut s, key("space"));
    }
    assert!(s.bench.kinds.is_empty());
    let out = update(&mut s, key("r"));
    let spec = Spec::gemm(Precision::Bf16, 8192, "cublas");
    assert_eq!(
        out.effects,
        [Effect::RunBench {
            request: None,
            cpu: false,
            gpu: 0,
            burn: Some((spec.clone(), 60.0)),
        }]
    );
    let during = |clock: u32, throttle: Option<&str>| Conditions {
        samples: 50,
        sm_clock_mhz: Some(clock),
        sm_clock_min_mhz: Some(clock),
        sm_clock_max_mhz: Some(1980),
        power_w: Some(699.0),
        power_limit_w: Some(700.0),
        temp_max_c: Some(70),
        throttle: throttle.into_iter().map(String::from).collect(),
        ..Default::default()
    };
    let mut windows = Vec::new();
    for i in 0..60 {
        let hot = i >= 30;
        let w = Window {
            t: f64::from(i + 1),
            value: if hot { 688.0 } else { 702.0 },
            conditions: Some(during(
                if hot { 1830 } else { 1980 },
                hot.then_some("power cap"),
            )),
        };
        windows.push(w.clone());
        update(&mut s, Msg::BenchWindow(w));
    }
    let text = screen(&s, 120, 40);
    assert!(
        text.contains("Sustained gemm bf16 8192 · 60/60 s · 688.0 TFLOP/s"),
        "{text}"
    );
    let burned = Burn {
        label: spec.label(),
        spec: spec.clone(),
        unit: Unit::TflopS,
        seconds: 60.0,
        start: 702.0,
        end: 688.0,
        sustained: 688.0 / 702.0,
        min: 688.0,
        max: 702.0,
        conditions: Some(Conditions {
            sm_clock_min_mhz: Some(1830),
            ..during(1905, Some("power cap"))
        }),
        check: Some(Check {
            max_rel_err: 2e-4,
            bound: 1e-2,
            samples: 64,
            ok: true,
        }),
        windows,
    };
    update(&mut s, Msg::BenchBurned(Ok(burned)));
    update(&mut s, Msg::BenchDone(Ok(h200())));
    assert_eq!(
        s.toast.as_deref(),
        Some("NVIDIA H200: sustained load held 98.0% (702.0 → 688.0 TFLOP/s)")
    );
    let text = screen(&s, 120, 40);
    assert!(
        text.contains("Sustained gemm bf16 8192: 702.0 → 688.0 TFLOP/s, held 98.0%")
            && text.contains("1905 MHz 699 W 70C · power cap"),
        "{text}"
    );
    insta::assert_snapshot!("sustained", text);
}

#[test]
fn snapshots_idle_running_and_with_results_and_history() {
    let mut s = on_the_bench_tab();
    update(&mut s, Msg::BenchProbed(Ok(h200())));
    insta::assert_snapshot!("idle", screen(&s, 120, 30));

    let specs = specs();
    s.bench.start();
    let total = specs.len();
    for (i, spec) in specs.iter().enumerate().take(3) {
        update(
            &mut s,
            Msg::BenchEvent(Event::Started {
                index: i,
                total,
                spec: spec.clone(),
            }),
        );
        if i < 2 {
            let mut r = result(spec.clone(), [610.0, 705.0][i], Some(989.4), Some(true));
            if i == 1 {
                r.conditions = Some(gpu_during(Some("power cap")));
            }
            update(
                &mut s,
                Msg::BenchEvent(Event::Finished {
                    index: i,
                    result: r,
                }),
            );
        } else {
            update(
                &mut s,
                Msg::BenchEvent(Event::Progress {
                    index: i,
                    done: 7,
                    reps: 20,
                }),
            );
        }
    }
    let text = screen(&s, 120, 30);
    assert!(
        text.contains("running 3/6") && text.contains("7/20"),
        "{text}"
    );
    insta::assert_snapshot!("running", text);

    for (i, spec) in specs.iter().enumerate().skip(2) {
        update(
            &mut s,
            Msg::BenchEvent(Event::Started {
                index: i,
                total,
                spec: spec.clone(),
            }),
        );
        let (median, peak, ok) = match i {
            2 => (48.1, Some(66.9), Some(false)),
            3 => (51.3, Some(66.9), Some(true)),
            4 => (3650.0, Some(4917.0), None),
            _ => (2.1, None, None),
        };
        update(
            &mut s,
            Msg::BenchEvent(Event::Finished {
                index: i,
                result: result(spec.clone(), median, peak, ok),
            }),
        );
    }
    let out = update(&mut s, Msg::BenchDone(Ok(h200())));
    assert_eq!(out.effects, [Effect::LoadBenchHistory]);
    assert!(
        s.toast
            .as_deref()
            .unwrap()
            .contains("failed the correctness check")
    );
    // Stored history: bf16 8192 dropped below its median, triad held steady.
    let mut h = Vec::new();
    for (i, m) in [700.0, 712.0, 708.0].iter().enumerate() {
        h.push(stored(&specs[1], *m, i as i64));
        h.push(stored(&specs[4], 3640.0 + i as f64, i as i64));
    }
    let mut newest = stored(&specs[1], 640.0, 10);
    newest.conditions = Some(gpu_during(Some("power cap")));
    h.push(newest);
    h.push(stored(&specs[4], 3650.0, 10));
    update(&mut s, Msg::BenchHistory(Ok(h)));
    let text = screen(&s, 120, 40);
    assert!(text.contains("▼ 9.6% below median (power cap)"), "{text}");
    assert!(
        text.contains("ok power cap"),
        "the throttle beside the result: {text}"
    );
    assert!(
        text.contains("GPU during: 1755-1980 MHz · up to 699 W · up to 63C"),
        "{text}"
    );
    assert!(text.contains("GEMM TFLOP/s by size"));
    assert!(text.contains("WRONG"));
    assert!(text.contains("CUDA · NVIDIA H200 · CUDA 13.0 · driver 580.95.05 · libcuda.so.580.95.05, libcublas.so.13, libnvrtc.so.13"));
    insta::assert_snapshot!("results", text);
    // The drop is in the bad colour.
    let mut t = Terminal::new(TestBackend::new(120, 40)).unwrap();
    Drawer::draw(&mut t, &s).unwrap();
    let buf = t.backend().buffer().clone();
    let bad = s.theme.fg(gantry::config::Role::Bad).fg;
    let row = (0..40u16)
        .find(|y| {
            (0..120u16)
                .map(|x| buf[(x, *y)].symbol().to_string())
                .collect::<String>()
                .contains("▼ 9.6%")
        })
        .unwrap();
    let x = (0..120u16)
        .find(|x| buf[(*x, row)].symbol() == "▼")
        .unwrap();
    assert_eq!(buf[(x, row)].fg, bad.unwrap());
}

#[test]
fn the_cpu_backend_runs_through_the_effect_runner_into_the_store() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let store = gantry::store::Store::open(&dir.path().join("gantry.db"))
            .await
            .unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let runner = gantry::app::EffectRunner::new(store.clone(), tx, dir.path().to_path_buf());
        let mut s = on_the_bench_tab();
        update(&mut s, key("c"));
        s.bench.size = 1; // 1024 is the first fixed size; make it small below
        let mut request = s.bench.request();
        request.sizes = vec![48];
        s.bench.start();
        runner.run(Effect::RunBench {
            request: Some(request),
            cpu: true,
            gpu: 0,
            burn: Some((Spec::gemm(Precision::Fp32, 48, "matrixmultiply"), 1.0)),
        });
        let mut windows = 0;
        let device = loop {
            match tokio::time::timeout(std::time::Duration::from_secs(60), rx.recv())
                .await
                .unwrap()
                .unwrap()
            {
                Msg::BenchDone(r) => break r.unwrap(),
                m @ Msg::BenchEvent(_) => {
                    update(&mut s, m);
                }
                m @ Msg::BenchWindow(_) => {
                    windows += 1;
                    update(&mut s, m);
                }
                m @ Msg::BenchBurned(_) => {
                    update(&mut s, m);
                }
                other => panic!("unexpected {other:?}"),
            }
        };
        assert_eq!(device.backend, "cpu");
        update(&mut s, Msg::BenchDone(Ok(device)));
        // After the benchmarks, the sustained load: a second, checked.
        assert_eq!(windows, 1);
        let burned = s.bench.burned.clone().unwrap().unwrap();
        assert!(burned.correct() && burned.windows.len() == 1);
        assert!(
            s.toast.as_deref().unwrap().contains("sustained load held"),
            "{:?}",
            s.toast
        );
        let labels: Vec<&str> = s.bench.rows.iter().map(|r| r.label.as_str()).collect();
        assert_eq!(
            labels,
            [
                "gemm fp32 48",
                "gemm fp64 48",
                "membw cpu-copy 1 MiB",
                "launch thread-wake"
            ]
        );
        assert!(
            s.bench
                .rows
                .iter()
                .all(|r| r.result.as_ref().is_some_and(|x| x.correct()))
        );
        let h = store.bench_history(None).await.unwrap();
        assert_eq!(h.len(), 4);
        let first = &s.bench.rows[0].result.as_ref().unwrap().spec;
        let h0 = h
            .iter()
            .find(|x| &x.spec == first)
            .expect("stored with its spec");
        assert_eq!(h0.unit, Unit::TflopS);
        assert_eq!(h0.check_ok, Some(true));
        assert_eq!(h0.stats.reps, 20);
    });
}
