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
        Some(Conditions {
            samples: samples.len(),
            sm_clock_mhz: median(samples.iter().filter_map(|s| s.sm_clock).collect()),
            sm_clock_min_mhz: samples.iter().filter_map(|s| s.sm_clock).min(),
            sm_clock_max_mhz: samples.iter().filter_map(|s| s.sm_clock_max).max(),
            power_w: median(samples.iter().filter_map(|s| s.power).collect()),
            power_limit_w: samples
                .iter()
                .filter_map(|s| s.power_limit)
                .reduce(f64::max),
            temp_max_c: samples.iter().filter_map(|s| s.temp).max(),
            throttle,
        })
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
