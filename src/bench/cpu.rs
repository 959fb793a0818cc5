//! The CPU backend: the same harness with GEMM through matrixmultiply (f32 and f64), a memory
//! copy, and thread wake-up latency. It makes the harness, statistics, storage and the tab run
//! in CI and on boxes without a GPU. Timing is the host's monotonic clock.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Instant;

use super::check::{self, Check};
use super::{
    BenchBackend, DeviceInfo, Kind, Loop, Measured, Peaks, Precision, Request, Spec, Sustained,
};

/// Warm-up repetitions, untimed.
const WARMUP: usize = 2;

pub struct CpuBackend {
    info: DeviceInfo,
}

impl Default for CpuBackend {
    fn default() -> Self {
        Self::new()
    }
}

impl CpuBackend {
    pub fn new() -> CpuBackend {
        let name = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|s| {
                s.lines().find_map(|l| {
                    l.strip_prefix("model name")?
                        .split(':')
                        .nth(1)
                        .map(|v| v.trim().to_string())
                })
            })
            .unwrap_or_else(|| std::env::consts::ARCH.to_string());
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        CpuBackend {
            info: DeviceInfo {
                backend: "cpu".into(),
                name: format!("{name} ({threads} threads)"),
                uuid: format!("cpu-{}", crate::host::hostname()),
                driver: None,
                cuda: None,
                libraries: vec!["matrixmultiply 0.3 (sgemm, dgemm)".into()],
                peaks: Peaks::default(),
            },
        }
    }
}

fn timed(
    reps: usize,
    tick: &mut dyn FnMut(usize),
    cancel: &AtomicBool,
    mut once: impl FnMut(),
) -> Vec<f64> {
    for _ in 0..WARMUP {
        once();
    }
    let mut out = Vec::with_capacity(reps);
    for i in 0..reps {
        if cancel.load(Ordering::Relaxed) {
            break;
        }
        let t = Instant::now();
        once();
        out.push(t.elapsed().as_secs_f64());
        tick(i + 1);
    }
    out
}

/// Repeat `once` as `lp` says: timed repetitions, or back to back in windows (seconds per
/// repetition of each).
fn repeat(lp: Loop, cancel: &AtomicBool, mut once: impl FnMut()) -> Vec<f64> {
    match lp {
        Loop::Reps { reps, tick } => timed(reps, tick, cancel, once),
        Loop::For { secs, every, on } => {
            for _ in 0..WARMUP {
                once();
            }
            on(Sustained::Started);
            let start = Instant::now();
            let mut out = Vec::new();
            while start.elapsed().as_secs_f64() < secs && !cancel.load(Ordering::Relaxed) {
                let w = Instant::now();
                let mut n = 0u32;
                while w.elapsed().as_secs_f64() < every {
                    once();
                    n += 1;
                }
                let spr = w.elapsed().as_secs_f64() / f64::from(n);
                out.push(spr);
                on(Sustained::Window {
                    t: start.elapsed().as_secs_f64(),
                    seconds_per_rep: spr,
                });
            }
            out
        }
    }
}

impl BenchBackend for CpuBackend {
    fn device(&self) -> &DeviceInfo {
        &self.info
    }

    fn specs(&self, req: &Request) -> Vec<Spec> {
        let mut v = req.gemm_specs(
            &[Precision::Fp32, Precision::Fp64],
            &[256, 512, 1024],
            "matrixmultiply",
        );
        if req.wants(Kind::Membw) {
            // The copy follows the GEMM size when one is given (small in tests), else 256 MiB.
            let bytes = req
                .sizes
                .first()
                .map_or(256 << 20, |n| (n * n * 4).max(1 << 20));
            v.push(Spec::other(Kind::Membw, bytes, "cpu-copy"));
        }
        if req.wants(Kind::Launch) {
            v.push(Spec::other(Kind::Launch, 1000, "thread-wake"));
        }
        v
    }

    fn measure(
        &mut self,
        spec: &Spec,
        reps: usize,
        tick: &mut dyn FnMut(usize),
        cancel: &AtomicBool,
    ) -> Result<Measured, String> {
        match spec.kind {
            Kind::Gemm => {
                let p = spec.precision.ok_or("a GEMM needs a precision")?;
                gemm(spec.size as usize, p, Loop::Reps { reps, tick }, cancel)
            }
            Kind::Membw => {
                let n = spec.size as usize;
                let src: Vec<u8> = (0..n).map(|i| (i * 31 + 7) as u8).collect();
                let mut dst = vec![0u8; n];
                let seconds = timed(reps, tick, cancel, || {
                    dst.copy_from_slice(&src);
                    std::hint::black_box(&mut dst);
                });
                if dst[n / 2] != src[n / 2] {
                    return Err("the copy did not copy".into());
                }
                Ok(Measured {
                    seconds,
                    work: 2.0 * n as f64,
                    check: None,
                })
            }
            Kind::Launch => wake(spec.size as usize, reps, tick, cancel),
            Kind::H2d | Kind::D2h => Err("host-device copies need a GPU".into()),
        }
    }

    fn sustain(
        &mut self,
        spec: &Spec,
        secs: f64,
        every: f64,
        on: &mut dyn FnMut(Sustained),
        cancel: &AtomicBool,
    ) -> Result<Measured, String> {
        let p = spec.precision.ok_or("a sustained load is a GEMM")?;
        gemm(spec.size as usize, p, Loop::For { secs, every, on }, cancel)
    }
}

fn gemm(n: usize, p: Precision, lp: Loop, cancel: &AtomicBool) -> Result<Measured, String> {
    if n == 0 {
        return Err("a GEMM of size 0".into());
    }
    let a = check::inputs(n, p, 11);
    let b = check::inputs(n, p, 12);
    let at = check::positions(n, 64, 13);
    let work = 2.0 * (n as f64).powi(3);
    let (seconds, check): (Vec<f64>, Check) = match p {
        Precision::Fp32 => {
            let mut c = vec![0f32; n * n];
            let seconds = repeat(lp, cancel, || {
                c.fill(f32::NAN); // poison: an entry nothing writes fails the check
                unsafe {
                    matrixmultiply::sgemm(
                        n,
                        n,
                        n,
                        1.0,
                        a.as_ptr(),
                        n as isize,
                        1,
                        b.as_ptr(),
                        n as isize,
                        1,
                        0.0,
                        c.as_mut_ptr(),
                        n as isize,
                        1,
                    );
                }
            });
            (
                seconds,
                check::check_gemm(n, &a, &b, |i, j| f64::from(c[i * n + j]), &at, p),
            )
        }
        Precision::Fp64 => {
            let a64: Vec<f64> = a.iter().map(|x| f64::from(*x)).collect();
            let b64: Vec<f64> = b.iter().map(|x| f64::from(*x)).collect();
            let mut c = vec![0f64; n * n];
            let seconds = repeat(lp, cancel, || {
                c.fill(f64::NAN);
                unsafe {
                    matrixmultiply::dgemm(
                        n,
                        n,
                        n,
                        1.0,
                        a64.as_ptr(),
                        n as isize,
                        1,
                        b64.as_ptr(),
                        n as isize,
                        1,
                        0.0,
                        c.as_mut_ptr(),
                        n as isize,
                        1,
                    );
                }
            });
            (
                seconds,
                check::check_gemm(n, &a, &b, |i, j| c[i * n + j], &at, p),
            )
        }
        other => return Err(format!("the CPU backend has no {} GEMM", other.as_str())),
    };
    Ok(Measured {
        seconds,
        work,
        check: Some(check),
    })
}

/// Wake-up latency: a thread blocked on a channel is woken and answers; half a round trip, over
/// `n` round trips per repetition.
fn wake(
    n: usize,
    reps: usize,
    tick: &mut dyn FnMut(usize),
    cancel: &AtomicBool,
) -> Result<Measured, String> {
    let (to_tx, to_rx) = mpsc::channel::<u32>();
    let (back_tx, back_rx) = mpsc::channel::<u32>();
    let worker = std::thread::spawn(move || {
        while let Ok(x) = to_rx.recv() {
            if back_tx.send(x).is_err() {
                break;
            }
        }
    });
    let mut failed = false;
    let seconds = timed(reps, tick, cancel, || {
        for i in 0..n as u32 {
            if to_tx.send(i).is_err() || back_rx.recv() != Ok(i) {
                failed = true;
                return;
            }
        }
    });
    drop(to_tx);
    let _ = worker.join();
    if failed {
        return Err("the woken thread did not answer".into());
    }
    // Each round trip is two wake-ups.
    Ok(Measured {
        seconds,
        work: 2.0 * n as f64,
        check: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_run_measures_and_checks_everything() {
        let mut b = CpuBackend::new();
        let req = Request {
            sizes: vec![64],
            ..Request::default()
        };
        let specs = b.specs(&req);
        let labels: Vec<String> = specs.iter().map(Spec::label).collect();
        assert_eq!(
            labels,
            [
                "gemm fp32 64",
                "gemm fp64 64",
                "membw cpu-copy 1 MiB",
                "launch thread-wake"
            ]
        );
        let mut events = Vec::new();
        let results = super::super::run(
            &mut b,
            &req,
            None,
            &mut |e| events.push(e),
            &AtomicBool::new(false),
        );
        assert_eq!(results.len(), 4);
        for r in &results {
            assert_eq!(r.stats.reps, 20);
            assert!(
                r.stats.median > 0.0
                    && r.stats.min <= r.stats.median
                    && r.stats.median <= r.stats.max
            );
            assert!(r.correct(), "{r:?}");
        }
        assert!(results[0].check.is_some() && results[2].check.is_none());
        let progress = events
            .iter()
            .filter(|e| matches!(e, super::super::Event::Progress { .. }))
            .count();
        assert_eq!(progress, 80);
    }

    #[test]
    fn cancel_stops_between_and_inside_benchmarks() {
        let mut b = CpuBackend::new();
        let cancel = AtomicBool::new(false);
        let req = Request {
            sizes: vec![32],
            ..Request::default()
        };
        let mut seen = 0;
        let results = super::super::run(
            &mut b,
            &req,
            None,
            &mut |e| {
                if let super::super::Event::Progress { done, .. } = e {
                    seen += 1;
                    if done == 5 {
                        cancel.store(true, Ordering::Relaxed);
                    }
                }
            },
            &cancel,
        );
        assert!(results.is_empty(), "a cancelled benchmark is not a result");
        assert_eq!(seen, 5);
    }
}
