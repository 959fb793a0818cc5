//! Micro-benchmarks against the device's peak: GEMM, memory bandwidth, host↔device copies and
//! launch latency. `BenchBackend` is the seam: `cuda.rs` (cudarc: cuBLAS, NVRTC kernels, CUDA
//! events) and `cpu.rs` (the same harness on the CPU, for CI and boxes without a GPU). `run`
//! drives a backend through a request: warm-up and timing live in the backends, statistics,
//! peaks and the correctness verdict here.

pub mod check;
pub mod conditions;
pub mod cpu;
pub mod cuda;
pub mod peaks;
pub mod stats;

use std::sync::atomic::{AtomicBool, Ordering};

pub use crate::domain::bench::{
    BenchResult, Burn, Check, Comparison, Conditions, DROP, DeviceInfo, Event, Kind, MIN_REPS,
    Measured, Peaks, Precision, Request, Spec, Stats, Sustained, TensorPeaks, Unit, Window,
    drop_below,
};
pub use conditions::Monitor;

impl Unit {
    /// The value of one repetition that did `work` (FLOPs, bytes, launches) in `seconds`.
    fn value(self, work: f64, seconds: f64) -> f64 {
        match self {
            Unit::TflopS => work / seconds / 1e12,
            Unit::GbS => work / seconds / 1e9,
            Unit::Us => seconds * 1e6 / work,
        }
    }
    /// A peak in base units (FLOP/s, bytes/s) in this unit.
    fn of_peak(self, v: f64) -> f64 {
        match self {
            Unit::TflopS => v / 1e12,
            Unit::GbS => v / 1e9,
            Unit::Us => v,
        }
    }
}

impl BenchResult {
    pub fn from_measured(spec: Spec, m: &Measured, peaks: &Peaks) -> Option<BenchResult> {
        let unit = spec.kind.unit();
        let values: Vec<f64> = m.seconds.iter().map(|s| unit.value(m.work, *s)).collect();
        let stats = Stats::of(&values)?;
        let peak = peak_for(&spec, peaks).map(|p| unit.of_peak(p));
        Some(BenchResult {
            pct_of_peak: peak.map(|p| 100.0 * stats.median / p),
            spec,
            unit,
            stats,
            peak,
            check: m.check,
            conditions: None,
        })
    }
    /// False when a correctness check failed.
    pub fn correct(&self) -> bool {
        self.check.is_none_or(|c| c.ok)
    }
}

/// The peak a spec is measured against, in base units (FLOP/s, bytes/s).
pub fn peak_for(spec: &Spec, peaks: &Peaks) -> Option<f64> {
    match spec.kind {
        Kind::Gemm => peaks.gemm(spec.precision?),
        Kind::Membw => peaks.memory,
        Kind::H2d | Kind::D2h => peaks.pcie,
        Kind::Launch => None,
    }
}

/// How a backend repeats what it times: `reps` times, or back to back for `secs` in windows of
/// about `every` seconds.
pub enum Loop<'a> {
    Reps {
        reps: usize,
        tick: &'a mut dyn FnMut(usize),
    },
    For {
        secs: f64,
        every: f64,
        on: &'a mut dyn FnMut(Sustained),
    },
}

/// Where benchmarks run.
pub trait BenchBackend {
    fn device(&self) -> &DeviceInfo;
    /// The specs a request asks of this backend, in the order they run.
    fn specs(&self, req: &Request) -> Vec<Spec>;
    /// Warm up, then time `reps` repetitions of `spec`, calling `tick` after each. Stops early
    /// (with what it has) when `cancel` is set.
    fn measure(
        &mut self,
        spec: &Spec,
        reps: usize,
        tick: &mut dyn FnMut(usize),
        cancel: &AtomicBool,
    ) -> Result<Measured, String>;
    /// Run the GEMM `spec` back to back for `secs` (a sustained load, as gpu-burn does),
    /// reporting each window of about `every` seconds. `Measured.seconds` holds the seconds per
    /// repetition of each window; the check is of the last product, computed over a poisoned
    /// output.
    fn sustain(
        &mut self,
        spec: &Spec,
        secs: f64,
        every: f64,
        on: &mut dyn FnMut(Sustained),
        cancel: &AtomicBool,
    ) -> Result<Measured, String> {
        let _ = (spec, secs, every, on, cancel);
        Err(format!(
            "the {} backend runs no sustained load",
            self.device().backend
        ))
    }
}

/// Run a sustained GEMM load of `spec` on `backend` for `secs`, in windows of `every` seconds,
/// each window with what `monitor` saw of the GPU in it; `on` hears of each window.
pub fn burn(
    backend: &mut dyn BenchBackend,
    spec: &Spec,
    secs: f64,
    every: f64,
    monitor: Option<&Monitor>,
    on: &mut dyn FnMut(&Window),
    cancel: &AtomicBool,
) -> Result<Burn, String> {
    if spec.kind != Kind::Gemm {
        return Err("a sustained load is a GEMM".into());
    }
    let unit = spec.kind.unit();
    let work = 2.0 * (spec.size as f64).powi(3);
    let mut windows: Vec<Window> = Vec::new();
    let mut all = Vec::new();
    let measured = backend.sustain(
        spec,
        secs,
        every,
        &mut |e| match e {
            Sustained::Started => {
                if let Some(m) = monitor {
                    m.clear();
                }
            }
            Sustained::Window { t, seconds_per_rep } => {
                let samples = monitor.map(Monitor::drain).unwrap_or_default();
                let w = Window {
                    t,
                    value: unit.value(work, seconds_per_rep),
                    conditions: Conditions::of(&samples),
                };
                all.extend(samples);
                on(&w);
                windows.push(w);
            }
        },
        cancel,
    )?;
    if windows.is_empty() {
        return Err("the load ended before its first window".into());
    }
    let values: Vec<f64> = windows.iter().map(|w| w.value).collect();
    let tenth = (values.len() / 10).max(1);
    let start = stats::median(&values[..tenth]).unwrap_or(f64::NAN);
    let end = stats::median(&values[values.len() - tenth..]).unwrap_or(f64::NAN);
    Ok(Burn {
        label: spec.label(),
        spec: spec.clone(),
        unit,
        seconds: windows.last().map_or(0.0, |w| w.t),
        start,
        end,
        sustained: end / start,
        min: values.iter().copied().fold(f64::INFINITY, f64::min),
        max: values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        conditions: Conditions::of(&all),
        check: measured.check,
        windows,
    })
}

/// Run every spec of `req` on `backend`. Stops between benchmarks (and inside one, through the
/// backend) when `cancel` is set. With a `monitor` on the benchmarked GPU, each result carries
/// the GPU's conditions from its first timed repetition to just after its last.
pub fn run(
    backend: &mut dyn BenchBackend,
    req: &Request,
    monitor: Option<&Monitor>,
    on: &mut dyn FnMut(Event),
    cancel: &AtomicBool,
) -> Vec<BenchResult> {
    let specs = backend.specs(req);
    run_specs(backend, specs, req.reps, monitor, on, cancel)
}

/// `run`, of the given specs (the preflight's few, chosen from the backend's own).
pub fn run_specs(
    backend: &mut dyn BenchBackend,
    specs: Vec<Spec>,
    reps: usize,
    monitor: Option<&Monitor>,
    on: &mut dyn FnMut(Event),
    cancel: &AtomicBool,
) -> Vec<BenchResult> {
    let total = specs.len();
    let reps = reps.max(MIN_REPS);
    let mut out = Vec::new();
    for (index, spec) in specs.into_iter().enumerate() {
        if cancel.load(Ordering::Relaxed) {
            break;
        }
        on(Event::Started {
            index,
            total,
            spec: spec.clone(),
        });
        let mut tick = |done: usize| {
            // Allocation, input and warm-up are behind: from here the GPU works on what is timed.
            if done == 1
                && let Some(m) = monitor
            {
                m.clear();
            }
            on(Event::Progress { index, done, reps })
        };
        let measured = backend.measure(&spec, reps, &mut tick, cancel);
        let conditions = monitor.and_then(|m| Conditions::of(&m.take()));
        match measured {
            Ok(m) if cancel.load(Ordering::Relaxed) && m.seconds.len() < reps => break,
            Ok(m) => match BenchResult::from_measured(spec.clone(), &m, &backend.device().peaks) {
                Some(mut result) => {
                    result.conditions = conditions;
                    on(Event::Finished {
                        index,
                        result: result.clone(),
                    });
                    out.push(result);
                }
                None => on(Event::Failed {
                    index,
                    spec,
                    error: "no repetition was timed".into(),
                }),
            },
            Err(error) => on(Event::Failed { index, spec, error }),
        }
    }
    out
}

/// Compare the same benchmarks run on several GPUs, spec by spec, in the order first seen.
pub fn compare(per_gpu: &[(DeviceInfo, Vec<BenchResult>)]) -> Vec<Comparison> {
    let mut specs: Vec<(Spec, Unit)> = Vec::new();
    for (_, results) in per_gpu {
        for r in results {
            if !specs.iter().any(|(s, _)| *s == r.spec) {
                specs.push((r.spec.clone(), r.unit));
            }
        }
    }
    specs
        .into_iter()
        .filter_map(|(spec, unit)| {
            let medians: Vec<Option<f64>> = per_gpu
                .iter()
                .map(|(_, rs)| rs.iter().find(|r| r.spec == spec).map(|r| r.stats.median))
                .collect();
            let all: Vec<f64> = medians.iter().flatten().copied().collect();
            let median = stats::median(&all)?;
            let behind = medians
                .iter()
                .enumerate()
                .filter_map(|(g, m)| Some((g, drop_below((*m)?, unit, &all)?)))
                .collect();
            Some(Comparison {
                label: spec.label(),
                spec,
                unit,
                medians,
                median,
                behind,
            })
        })
        .collect()
}

/// Open the CUDA backend on GPU `ordinal`, or say why not.
pub fn open_cuda(ordinal: usize) -> Result<Box<dyn BenchBackend + Send>, String> {
    cuda::CudaBackend::open(ordinal).map(|b| Box::new(b) as Box<dyn BenchBackend + Send>)
}

/// A monitor of the GPU a backend runs on, through NVML: None for the CPU backend, or where NVML
/// does not answer (the results then carry no conditions).
pub fn monitor_for(device: &DeviceInfo) -> Option<Monitor> {
    if device.backend != "cuda" || device.uuid.is_empty() {
        return None;
    }
    let nvml = crate::error::contain("opening NVML", crate::gpu::source::NvmlSource::open)
        .ok()?
        .ok()?;
    Some(Monitor::start(
        Box::new(nvml),
        device.uuid.clone(),
        conditions::EVERY,
    ))
}

pub fn open_cpu() -> Box<dyn BenchBackend + Send> {
    Box::new(cpu::CpuBackend::new())
}

/// Open the backend asked for: the CPU's, or CUDA on GPU `gpu` (CUDA's numbering). A panic inside
/// CUDA's libraries becomes an error that says so. The one way the CLI and the workbench open one.
pub fn open_backend(cpu: bool, gpu: usize) -> Result<Box<dyn BenchBackend + Send>, String> {
    if cpu {
        return Ok(open_cpu());
    }
    crate::error::contain("opening CUDA", || open_cuda(gpu)).and_then(|r| r)
}

/// Run `req` on `backend` with its GPU sampled throughout (where NVML answers), a panic inside the
/// libraries contained. Returns the results, and why the sampling stopped early if it did.
pub fn run_sampled(
    backend: &mut dyn BenchBackend,
    req: &Request,
    on: &mut dyn FnMut(Event),
    cancel: &AtomicBool,
) -> (Result<Vec<BenchResult>, String>, Option<String>) {
    let monitor = monitor_for(backend.device());
    let ran = crate::error::contain("the benchmarks", || {
        run(backend, req, monitor.as_ref(), on, cancel)
    });
    let stopped = monitor.as_ref().and_then(|m| m.stopped());
    (ran, stopped)
}

/// A sustained load of `spec` for `secs` in one-second windows, sampled and contained likewise.
pub fn burn_sampled(
    backend: &mut dyn BenchBackend,
    spec: &Spec,
    secs: f64,
    on: &mut dyn FnMut(&Window),
    cancel: &AtomicBool,
) -> Result<Burn, String> {
    let monitor = monitor_for(backend.device());
    crate::error::contain("the sustained load", || {
        burn(backend, spec, secs, 1.0, monitor.as_ref(), on, cancel)
    })
    .and_then(|r| r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu::source::{GpuSample, GpuSnapshot, GpuSource};
    use std::sync::Arc;
    use std::time::Duration;

    /// A GPU that idles at 345 MHz until `hot`, then runs at 1980 MHz against a power cap.
    struct Card {
        hot: Arc<AtomicBool>,
    }

    impl GpuSource for Card {
        fn sample(&mut self) -> Result<GpuSnapshot, String> {
            let hot = self.hot.load(Ordering::SeqCst);
            Ok(GpuSnapshot {
                gpus: vec![GpuSample {
                    uuid: "GPU-test".into(),
                    sm_clock: Some(if hot { 1980 } else { 345 }),
                    power: Some(if hot { 699.0 } else { 80.0 }),
                    temp: Some(if hot { 70 } else { 35 }),
                    throttle: vec![if hot { "power cap" } else { "idle" }.into()],
                    ..Default::default()
                }],
                ..Default::default()
            })
        }
        fn describe(&self) -> String {
            "test card".into()
        }
    }

    /// Sets up for 80 ms with the card idle, then times 20 repetitions with it hot.
    struct Slow {
        hot: Arc<AtomicBool>,
        info: DeviceInfo,
    }

    impl BenchBackend for Slow {
        fn device(&self) -> &DeviceInfo {
            &self.info
        }
        fn specs(&self, _: &Request) -> Vec<Spec> {
            vec![Spec::other(Kind::Launch, 1, "test")]
        }
        fn measure(
            &mut self,
            _: &Spec,
            reps: usize,
            tick: &mut dyn FnMut(usize),
            _: &AtomicBool,
        ) -> Result<Measured, String> {
            std::thread::sleep(Duration::from_millis(80));
            self.hot.store(true, Ordering::SeqCst);
            // A sample read just before is stored well before the first repetition ends.
            std::thread::sleep(Duration::from_millis(40));
            for i in 1..=reps {
                tick(i);
                std::thread::sleep(Duration::from_millis(3));
            }
            Ok(Measured {
                seconds: vec![1e-3; reps],
                work: 1.0,
                check: None,
            })
        }
    }

    /// A load whose throughput fades by 1% a window: 2 TFLOP/s at first.
    struct Fading {
        info: DeviceInfo,
    }

    impl BenchBackend for Fading {
        fn device(&self) -> &DeviceInfo {
            &self.info
        }
        fn specs(&self, _: &Request) -> Vec<Spec> {
            Vec::new()
        }
        fn measure(
            &mut self,
            _: &Spec,
            _: usize,
            _: &mut dyn FnMut(usize),
            _: &AtomicBool,
        ) -> Result<Measured, String> {
            Err("not here".into())
        }
        fn sustain(
            &mut self,
            _: &Spec,
            _: f64,
            _: f64,
            on: &mut dyn FnMut(Sustained),
            _: &AtomicBool,
        ) -> Result<Measured, String> {
            on(Sustained::Started);
            let seconds: Vec<f64> = (0..20).map(|i| 1.0 + 0.01 * f64::from(i)).collect();
            for (i, s) in seconds.iter().enumerate() {
                on(Sustained::Window {
                    t: (i + 1) as f64,
                    seconds_per_rep: *s,
                });
            }
            Ok(Measured {
                seconds,
                work: 2e12,
                check: None,
            })
        }
    }

    #[test]
    fn a_sustained_load_reports_how_it_held_up() {
        // 2 · (10⁴)³ FLOP a product: 2 TFLOP/s at 1 s a product.
        let spec = Spec::gemm(Precision::Bf16, 10_000, "test");
        let mut seen = 0;
        let b = burn(
            &mut Fading {
                info: DeviceInfo::default(),
            },
            &spec,
            20.0,
            1.0,
            None,
            &mut |_| seen += 1,
            &AtomicBool::new(false),
        )
        .unwrap();
        assert_eq!((seen, b.windows.len()), (20, 20));
        // The first and last tenth: two windows each.
        let v = |s: f64| 2.0 / s;
        assert!(
            (b.start - (v(1.0) + v(1.01)) / 2.0).abs() < 1e-9,
            "{}",
            b.start
        );
        assert!(
            (b.end - (v(1.18) + v(1.19)) / 2.0).abs() < 1e-9,
            "{}",
            b.end
        );
        assert!((b.sustained - b.end / b.start).abs() < 1e-12 && b.sustained < 0.86);
        assert!((b.min - v(1.19)).abs() < 1e-12 && (b.max - 2.0).abs() < 1e-12);
        assert_eq!(b.seconds, 20.0);
        // The CPU and a backend without the load say so.
        let e = burn(
            &mut Slow {
                hot: Arc::new(AtomicBool::new(true)),
                info: DeviceInfo {
                    backend: "test".into(),
                    ..DeviceInfo::default()
                },
            },
            &spec,
            1.0,
            1.0,
            None,
            &mut |_| {},
            &AtomicBool::new(false),
        )
        .unwrap_err();
        assert_eq!(e, "the test backend runs no sustained load");
    }

    #[test]
    fn the_cpu_sustains_a_checked_load_with_the_gpu_conditions_of_each_window() {
        let monitor = Monitor::start(
            Box::new(Card {
                hot: Arc::new(AtomicBool::new(true)),
            }),
            "GPU-test".into(),
            Duration::from_millis(5),
        );
        let spec = Spec::gemm(Precision::Fp32, 48, "matrixmultiply");
        let b = burn(
            &mut cpu::CpuBackend::new(),
            &spec,
            0.5,
            0.1,
            Some(&monitor),
            &mut |_| {},
            &AtomicBool::new(false),
        )
        .unwrap();
        assert!(b.windows.len() >= 3, "{:?}", b.windows);
        assert!(b.correct() && b.check.is_some());
        assert!(b.windows.iter().all(|w| w.value > 0.0));
        assert!(
            b.windows.iter().all(|w| w
                .conditions
                .as_ref()
                .is_some_and(|c| c.throttle == ["power cap"])),
            "{:?}",
            b.windows
        );
        assert_eq!(
            b.conditions.as_ref().and_then(|c| c.sm_clock_mhz),
            Some(1980)
        );
    }

    #[test]
    fn the_gpu_behind_the_others_is_flagged() {
        let r = |spec: &Spec, median: f64| BenchResult {
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
            check: None,
            conditions: None,
        };
        let gemm = Spec::gemm(Precision::Bf16, 8192, "cublas");
        let launch = Spec::other(Kind::Launch, 1000, "events");
        let gpu = |g: &[f64], l: Option<f64>| {
            let mut v = vec![r(&gemm, g[0])];
            v.extend(l.map(|l| r(&launch, l)));
            (DeviceInfo::default(), v)
        };
        let c = compare(&[
            gpu(&[702.0], Some(2.1)),
            gpu(&[698.0], Some(2.1)),
            gpu(&[640.0], Some(2.4)),
            gpu(&[705.0], None),
        ]);
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].label, "gemm bf16 8192");
        assert_eq!(c[0].median, 700.0, "the middle two of four, averaged");
        assert_eq!(c[0].behind.len(), 1);
        assert_eq!(c[0].behind[0].0, 2, "GPU 2 is the slow one");
        assert!((c[0].behind[0].1 - 60.0 / 700.0).abs() < 1e-12);
        // Latency: higher is worse; a GPU without the result is left out.
        assert_eq!(c[1].medians, [Some(2.1), Some(2.1), Some(2.4), None]);
        assert_eq!(c[1].behind.iter().map(|b| b.0).collect::<Vec<_>>(), [2]);
    }

    #[test]
    fn results_carry_the_gpu_conditions_of_their_timed_part_only() {
        let hot = Arc::new(AtomicBool::new(false));
        let monitor = Monitor::start(
            Box::new(Card { hot: hot.clone() }),
            "GPU-test".into(),
            Duration::from_millis(5),
        );
        let mut b = Slow {
            hot,
            info: DeviceInfo::default(),
        };
        let results = run(
            &mut b,
            &Request::default(),
            Some(&monitor),
            &mut |_| {},
            &AtomicBool::new(false),
        );
        let c = results[0].conditions.as_ref().expect("sampled");
        assert!(c.samples >= 2, "{c:?}");
        assert_eq!(
            c.sm_clock_min_mhz,
            Some(1980),
            "set-up and warm-up are left out"
        );
        assert_eq!(c.throttle, ["power cap"]);
        assert!(monitor.stopped().is_none());
    }

    #[test]
    fn a_monitor_of_a_gpu_not_there_says_so_and_results_have_no_conditions() {
        let monitor = Monitor::start(
            Box::new(Card {
                hot: Arc::new(AtomicBool::new(true)),
            }),
            "GPU-other".into(),
            Duration::from_millis(5),
        );
        let mut cpu = cpu::CpuBackend::new();
        let req = Request {
            only: vec![Kind::Launch],
            ..Request::default()
        };
        let results = run(
            &mut cpu,
            &req,
            Some(&monitor),
            &mut |_| {},
            &AtomicBool::new(false),
        );
        assert!(results[0].conditions.is_none());
        assert!(
            monitor.stopped().unwrap().contains("no GPU GPU-other"),
            "{:?}",
            monitor.stopped()
        );
    }

    #[test]
    fn units_turn_work_and_time_into_values() {
        assert!((Unit::TflopS.value(2e12, 0.5) - 4.0).abs() < 1e-12);
        assert!((Unit::GbS.value(3e9, 1.5) - 2.0).abs() < 1e-12);
        assert!((Unit::Us.value(1000.0, 0.004) - 4.0).abs() < 1e-12);
        assert!(!Unit::Us.higher_is_better());
    }

    #[test]
    fn results_carry_percent_of_peak() {
        let spec = Spec::gemm(Precision::Fp32, 1024, "cublas");
        let work = 2.0 * 1024f64.powi(3);
        let m = Measured {
            seconds: vec![work / 50e12; 20],
            work,
            check: None,
        };
        let peaks = Peaks {
            fp32: Some(100e12),
            ..Peaks::default()
        };
        let r = BenchResult::from_measured(spec, &m, &peaks).unwrap();
        assert!((r.stats.median - 50.0).abs() < 1e-9);
        assert!((r.pct_of_peak.unwrap() - 50.0).abs() < 1e-9);
        assert_eq!(r.unit, Unit::TflopS);
    }

    #[test]
    fn drops_are_flagged_past_five_percent_either_way() {
        let past = [100.0, 102.0, 98.0, 101.0];
        assert_eq!(drop_below(96.0, Unit::TflopS, &past), None);
        let d = drop_below(90.0, Unit::TflopS, &past).unwrap();
        assert!((d - 0.10 / 1.005).abs() < 0.01, "{d}");
        assert_eq!(
            drop_below(120.0, Unit::GbS, &past),
            None,
            "faster is no drop"
        );
        assert!(
            drop_below(110.0, Unit::Us, &past).is_some(),
            "a slower launch is"
        );
        assert_eq!(drop_below(90.0, Unit::Us, &past), None);
        assert_eq!(drop_below(1.0, Unit::TflopS, &[]), None);
    }

    #[test]
    fn labels() {
        assert_eq!(
            Spec::gemm(Precision::Bf16, 8192, "cublas").label(),
            "gemm bf16 8192"
        );
        assert_eq!(
            Spec::other(Kind::Membw, 1 << 30, "sm-triad").label(),
            "membw sm-triad 1 GiB"
        );
        assert_eq!(
            Spec::other(Kind::H2d, 64 << 20, "pinned").label(),
            "h2d pinned 64 MiB"
        );
        assert_eq!(Kind::parse("d2h"), Some(Kind::D2h));
        assert_eq!(Precision::parse("tf32"), Some(Precision::Tf32));
    }
}
