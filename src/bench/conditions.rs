//! What the GPU was doing while a benchmark ran: its SM clock, power, temperature and the reasons
//! its clocks were held down, sampled from the same `GpuSource` as the GPUs tab (NVML, or a
//! recording in tests). A result well below its history is then explained, or not, by what the
//! card went through: a power cap or a thermal slowdown reads differently from a slow driver.
//!
//! `Monitor` samples one GPU, found by UUID, on a thread of its own every `every` (20 ms by
//! default). `run` keeps the samples from a benchmark's first timed repetition to the first
//! sample after its last, so that even a benchmark shorter than the interval has one.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

pub use crate::domain::bench::Conditions;

use crate::gpu::source::{GpuSample, GpuSource};

/// How often the monitor samples the GPU.
pub const EVERY: Duration = Duration::from_millis(20);

fn median<T: Copy + PartialOrd>(mut v: Vec<T>) -> Option<T> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    Some(v[v.len() / 2])
}

impl Conditions {
    /// The summary of `samples`; None when there are none.
    pub fn of(samples: &[GpuSample]) -> Option<Conditions> {
        if samples.is_empty() {
            return None;
        }
        let mut throttle: Vec<String> = Vec::new();
        for s in samples {
            for w in &s.throttle {
                if w != "idle" && !throttle.contains(w) {
                    throttle.push(w.clone());
                }
            }
        }
        let read = samples
            .iter()
            .filter_map(|s| Some((s.energy_mj?, s.read_us?)));
        let by_energy = read
            .clone()
            .next()
            .zip(read.clone().next_back())
            .and_then(|((e0, t0), (e1, t1))| power_from_energy(e0, t0, e1, t1));
        let (power_w, power_from) = match by_energy {
            Some(w) => (Some(w), Some("energy".to_string())),
            None => {
                let avg = median(samples.iter().filter_map(|s| s.power).collect());
                (avg, avg.map(|_| "average".to_string()))
            }
        };
        Some(Conditions {
            samples: samples.len(),
            sm_clock_mhz: median(samples.iter().filter_map(|s| s.sm_clock).collect()),
            sm_clock_min_mhz: samples.iter().filter_map(|s| s.sm_clock).min(),
            sm_clock_max_mhz: samples.iter().filter_map(|s| s.sm_clock_max).max(),
            power_w,
            power_from,
            power_limit_w: samples
                .iter()
                .filter_map(|s| s.power_limit)
                .reduce(f64::max),
            temp_max_c: samples.iter().filter_map(|s| s.temp).max(),
            throttle,
            throttle_unknown: samples.iter().all(|s| s.throttle_known == Some(false)),
            pcie_gen: samples.iter().filter_map(|s| s.pcie_gen).max(),
            pcie_width: samples.iter().filter_map(|s| s.pcie_width).max(),
        })
    }

    /// The throttle reasons in words: "unknown" where the driver could not say.
    pub fn throttle_words(&self) -> String {
        if self.throttle_unknown {
            "unknown (the driver gives no clock-event reasons)".into()
        } else {
            self.throttle.join(", ")
        }
    }

    /// Whether the clocks were held down for a reason other than idling.
    pub fn throttled(&self) -> bool {
        !self.throttle.is_empty()
    }

    /// "1980 MHz 652 W 61C", with whatever is known.
    pub fn brief(&self) -> String {
        let mut parts = Vec::new();
        if let Some(c) = self.sm_clock_mhz {
            parts.push(format!("{c} MHz"));
        }
        if let Some(p) = self.power_w {
            parts.push(format!("{p:.0} W"));
        }
        if let Some(t) = self.temp_max_c {
            parts.push(format!("{t}C"));
        }
        parts.join(" ")
    }
}

/// Mean power in W over a window, from the total-energy counter read at its start (`e0` mJ at
/// `t0` µs) and end: None for a window under 50 ms (the counter's steps would dominate) or an
/// answer no GPU draws (over 5 kW: the driver reloaded and the counter restarted). A counter
/// that passed u64::MAX wraps around to the right difference.
pub fn power_from_energy(e0: u64, t0: i64, e1: u64, t1: i64) -> Option<f64> {
    let dt = (t1 - t0) as f64 / 1e6;
    if dt < 0.05 {
        return None;
    }
    let w = e1.wrapping_sub(e0) as f64 / 1000.0 / dt;
    (w.is_finite() && w <= 5000.0).then_some(w)
}

#[derive(Default)]
struct Shared {
    samples: Vec<GpuSample>,
    /// Samples taken since the monitor started, kept or not.
    taken: u64,
    /// Why sampling stopped, if it did.
    stopped: Option<String>,
}

/// Samples one GPU on a thread of its own until dropped.
pub struct Monitor {
    shared: Arc<(Mutex<Shared>, Condvar)>,
    on: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    every: Duration,
}

impl Monitor {
    /// Start sampling the GPU whose UUID is `uuid` from `source` every `every`.
    pub fn start(mut source: Box<dyn GpuSource>, uuid: String, every: Duration) -> Monitor {
        let shared = Arc::new((Mutex::new(Shared::default()), Condvar::new()));
        let on = Arc::new(AtomicBool::new(true));
        let (s, o) = (shared.clone(), on.clone());
        let thread = std::thread::Builder::new()
            .name("bench-monitor".into())
            .spawn(move || {
                while o.load(Ordering::Relaxed) {
                    let got = source.sample_gpu(&uuid);
                    let (lock, cv) = &*s;
                    let mut g = lock.lock().unwrap_or_else(|e| e.into_inner());
                    match got {
                        Ok(Some(sample)) => {
                            g.samples.push(sample);
                            g.taken += 1;
                        }
                        Ok(None) => {
                            g.stopped = Some(format!("no GPU {uuid} in the samples"));
                        }
                        Err(e) => g.stopped = Some(e),
                    }
                    let stop = g.stopped.is_some();
                    drop(g);
                    cv.notify_all();
                    if stop {
                        break;
                    }
                    std::thread::sleep(every);
                }
            })
            .ok();
        if thread.is_none() {
            shared.0.lock().unwrap_or_else(|e| e.into_inner()).stopped =
                Some("cannot start the monitor's thread".into());
        }
        Monitor {
            shared,
            on,
            thread,
            every,
        }
    }

    /// Forget the samples so far.
    pub fn clear(&self) {
        self.shared
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .samples
            .clear();
    }

    /// Hand over every sample since the last `clear`, `take` or `drain`, without waiting.
    pub fn drain(&self) -> Vec<GpuSample> {
        std::mem::take(
            &mut self
                .shared
                .0
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .samples,
        )
    }

    /// Wait for the next sample (or a while, if sampling stopped), then hand over every sample
    /// since the last `clear` or `take`.
    pub fn take(&self) -> Vec<GpuSample> {
        let (lock, cv) = &*self.shared;
        let mut g = lock.lock().unwrap_or_else(|e| e.into_inner());
        let want = g.taken + 1;
        let deadline = std::time::Instant::now() + self.every * 5 + Duration::from_millis(200);
        while g.taken < want && g.stopped.is_none() {
            let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) else {
                break;
            };
            g = cv
                .wait_timeout(g, left)
                .map(|(g, _)| g)
                .unwrap_or_else(|e| e.into_inner().0);
        }
        std::mem::take(&mut g.samples)
    }

    /// Why sampling stopped, if it did.
    pub fn stopped(&self) -> Option<String> {
        self.shared
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .stopped
            .clone()
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        self.on.store(false, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(clock: u32, power: f64, temp: u32, throttle: &[&str]) -> GpuSample {
        GpuSample {
            uuid: "GPU-a".into(),
            sm_clock: Some(clock),
            sm_clock_max: Some(1980),
            power: Some(power),
            power_limit: Some(700.0),
            temp: Some(temp),
            throttle: throttle.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn power_is_the_energy_counters_difference_over_the_window() {
        // 700 W for half a second: 350 J.
        assert_eq!(
            power_from_energy(1_000_000, 0, 1_350_000, 500_000),
            Some(700.0)
        );
        // A counter that passed u64::MAX.
        let w = power_from_energy(u64::MAX - 99_999, 0, 250_000, 500_000).unwrap();
        assert!((w - 700.0).abs() < 1e-9, "{w}");
        // A driver reload restarts the counter: no answer rather than a wrong one.
        assert_eq!(power_from_energy(9_000_000_000, 0, 1_000, 500_000), None);
        // Too short a window to trust.
        assert_eq!(power_from_energy(0, 0, 10, 20_000), None);
    }

    #[test]
    fn conditions_take_power_from_the_energy_counter_where_it_reads() {
        let at = |mj: u64, us: i64| GpuSample {
            power: Some(690.0),
            energy_mj: Some(mj),
            read_us: Some(us),
            ..Default::default()
        };
        let c = Conditions::of(&[at(0, 0), at(200_000, 300_000), at(420_000, 600_000)]).unwrap();
        assert_eq!(c.power_w, Some(700.0));
        assert_eq!(c.power_from.as_deref(), Some("energy"));
        // A recording without the counter: the median of the averages, said so.
        let c = Conditions::of(&[sample(1980, 690.0, 60, &[])]).unwrap();
        assert_eq!(
            (c.power_w, c.power_from.as_deref()),
            (Some(690.0), Some("average"))
        );
        // No clock-event reasons from the driver: unknown, not "no throttling".
        let blind = GpuSample {
            throttle_known: Some(false),
            ..Default::default()
        };
        let c = Conditions::of(&[blind]).unwrap();
        assert!(c.throttle_unknown && !c.throttled());
        assert!(c.throttle_words().starts_with("unknown"));
    }

    #[test]
    fn a_summary_of_the_samples() {
        let c = Conditions::of(&[
            sample(1980, 640.0, 60, &["idle"]),
            sample(1755, 700.0, 66, &["power cap"]),
            sample(1830, 698.0, 64, &["power cap", "sw thermal"]),
        ])
        .unwrap();
        assert_eq!(c.samples, 3);
        assert_eq!(c.sm_clock_mhz, Some(1830));
        assert_eq!(c.sm_clock_min_mhz, Some(1755));
        assert_eq!(c.sm_clock_max_mhz, Some(1980));
        assert_eq!(c.power_w, Some(698.0));
        assert_eq!(c.temp_max_c, Some(66));
        assert_eq!(
            c.throttle,
            ["power cap", "sw thermal"],
            "idle is no throttle"
        );
        assert!(c.throttled());
        assert_eq!(c.brief(), "1830 MHz 698 W 66C");
        assert_eq!(Conditions::of(&[]), None);
        let idle = Conditions::of(&[sample(345, 70.0, 31, &["idle"])]).unwrap();
        assert!(!idle.throttled());
    }
}
