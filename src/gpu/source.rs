//! The `GpuSource` seam: where GPU samples come from. `NvmlSource` asks the driver through NVML;
//! `ReplaySource` plays a recording (JSON lines of `GpuSnapshot`, as `gantry gpu --record`
//! writes them), for the demo, tests and machines without a GPU. A field the driver cannot give
//! (FailedToLoadSymbol, NotSupported, no permission) is None, shown as n/a; the GPU stays.

use std::io::BufRead;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use crate::domain::{GpuProcess, GpuSample, GpuSnapshot, MigInstance};
use nvml_wrapper::Nvml;
use nvml_wrapper::bitmasks::device::ThrottleReasons;
use nvml_wrapper::enum_wrappers::device::{
    Clock, EccCounter, MemoryError, PcieUtilCounter, TemperatureSensor, TemperatureThreshold,
};

/// Where samples come from.
pub trait GpuSource: Send {
    /// The next snapshot. `Err` is a reason a person can read (no driver, recording ended).
    fn sample(&mut self) -> Result<GpuSnapshot, String>;
    /// How to name this source ("NVML", "replay of FILE").
    fn describe(&self) -> String;
    /// The GPU whose UUID is `uuid`, for the bench monitor, which asks fifty times a second:
    /// None when there is no such GPU. A source may answer with fewer readings than `sample`
    /// (NVML gives utilisation, clocks, power, temperature and throttle reasons).
    fn sample_gpu(&mut self, uuid: &str) -> Result<Option<GpuSample>, String> {
        Ok(self.sample()?.gpus.into_iter().find(|g| g.uuid == uuid))
    }
    /// The snapshot of now without waiting: a replay skips to its latest frame due (a run's
    /// sampler, which asks every few seconds, must neither wait nor fall behind the recording).
    fn sample_now(&mut self) -> Result<GpuSnapshot, String> {
        self.sample()
    }
}

/// Throttle reasons in words.
pub fn throttle_words(r: ThrottleReasons) -> Vec<String> {
    let mut v = Vec::new();
    for (flag, word) in [
        (ThrottleReasons::GPU_IDLE, "idle"),
        (ThrottleReasons::APPLICATIONS_CLOCKS_SETTING, "app clocks"),
        (ThrottleReasons::SW_POWER_CAP, "power cap"),
        (ThrottleReasons::HW_SLOWDOWN, "hw slowdown"),
        (ThrottleReasons::SYNC_BOOST, "sync boost"),
        (ThrottleReasons::SW_THERMAL_SLOWDOWN, "sw thermal"),
        (ThrottleReasons::HW_THERMAL_SLOWDOWN, "hw thermal"),
        (ThrottleReasons::HW_POWER_BRAKE_SLOWDOWN, "power brake"),
        (ThrottleReasons::DISPLAY_CLOCK_SETTING, "display clocks"),
    ] {
        if r.contains(flag) {
            v.push(word.to_string());
        }
    }
    v
}

/// NVML, initialised once, asked from the sampler's thread, with PCIe throughput read on a thread
/// of its own: NVML measures it by watching a byte counter for 20 ms, so two readings of eight
/// GPUs would hold a tick for 320 ms.
pub struct NvmlSource {
    nvml: Arc<Nvml>,
    last_seen_us: u64,
    /// The latest (rx, tx) in KB/s of each GPU by index, kept by the PCIe thread.
    pcie: Arc<Mutex<Vec<PcieReading>>>,
    /// Whether the PCIe thread runs; set to false when the source is dropped.
    pcie_on: Option<Arc<AtomicBool>>,
    /// The event set every GPU's critical XID errors are registered in, made at the first
    /// sample; None before, or where the driver has no events.
    xids: Option<XidEvents>,
}

/// An NVML event set of critical XID errors, owned by one source and freed with it.
struct XidEvents {
    set: nvml_wrapper_sys::bindings::nvmlEventSet_t,
    /// Whether any GPU could be registered: false leaves the set unused.
    registered: bool,
}

// Safety: the set is a handle NVML may be asked about from any thread; only the source that owns
// it asks, one call at a time (`&mut self`).
unsafe impl Send for XidEvents {}

type PcieReading = (Option<u32>, Option<u32>);

/// Pause between two rounds of PCIe readings.
const PCIE_EVERY: Duration = Duration::from_millis(250);

/// One round of PCIe readings: rx and tx of every GPU, 20 ms each. A GPU that does not support
/// them answers at once.
fn read_pcie(nvml: &Nvml) -> Vec<PcieReading> {
    let count = nvml.device_count().unwrap_or(0);
    (0..count)
        .map(|i| match nvml.device_by_index(i) {
            Ok(d) => (
                d.pcie_throughput(PcieUtilCounter::Receive).ok(),
                d.pcie_throughput(PcieUtilCounter::Send).ok(),
            ),
            Err(_) => (None, None),
        })
        .collect()
}

impl NvmlSource {
    pub fn open() -> Result<NvmlSource, String> {
        Nvml::init()
            .map(|nvml| NvmlSource {
                nvml: Arc::new(nvml),
                last_seen_us: 0,
                pcie: Arc::new(Mutex::new(Vec::new())),
                pcie_on: None,
                xids: None,
            })
            .map_err(|e| super::why_absent(&e))
    }

    /// NVML without PCIe throughput (no thread reading it): what a run's sampler needs.
    pub fn open_light() -> Result<NvmlSource, String> {
        let mut s = Self::open()?;
        s.pcie_on = Some(Arc::new(AtomicBool::new(false)));
        Ok(s)
    }

    /// The critical XID errors since the last call, by GPU index: the event set is made and every
    /// GPU that supports the event registered at the first call (which sees none yet). NVML
    /// reports the latest XID of a GPU for every event waiting, so repeats are kept once.
    fn xid_errors(&mut self) -> Vec<(u32, u64)> {
        let lib = self.nvml.lib();
        let Some(events) = &self.xids else {
            let (Ok(create), Ok(register)) = (
                lib.nvmlEventSetCreate.as_ref(),
                lib.nvmlDeviceRegisterEvents.as_ref(),
            ) else {
                return Vec::new();
            };
            let mut set: nvml_wrapper_sys::bindings::nvmlEventSet_t = std::ptr::null_mut();
            // Safety: the call writes one handle; 0 is NVML_SUCCESS.
            if unsafe { create(&mut set) } != 0 || set.is_null() {
                return Vec::new();
            }
            let mut registered = false;
            for i in 0..self.nvml.device_count().unwrap_or(0) {
                let Ok(d) = self.nvml.device_by_index(i) else {
                    continue;
                };
                let kind = u64::from(nvml_wrapper_sys::bindings::nvmlEventTypeXidCriticalError);
                // Safety: the device handle is live while `d` is; the set was made above. A GPU
                // that does not support the event answers NotSupported and is left out.
                registered |= unsafe { register(d.handle(), kind, set) } == 0;
            }
            self.xids = Some(XidEvents { set, registered });
            return Vec::new();
        };
        let Ok(wait) = lib.nvmlEventSetWait_v2.as_ref() else {
            return Vec::new();
        };
        let mut seen: Vec<(u32, u64)> = Vec::new();
        if !events.registered {
            return seen;
        }
        // At most 64 events a sample: a storm of XIDs must not hold the sampler.
        for _ in 0..64 {
            // Safety: zeroed is a valid nvmlEventData_t (handles and integers); a timeout of 0
            // returns at once, 0 being NVML_SUCCESS with `data` written.
            let mut data: nvml_wrapper_sys::bindings::nvmlEventData_t =
                unsafe { std::mem::zeroed() };
            if unsafe { wait(events.set, &mut data, 0) } != 0 {
                break;
            }
            let mut index: std::ffi::c_uint = u32::MAX;
            if let Ok(idx) = lib.nvmlDeviceGetIndex.as_ref() {
                // Safety: the event's device handle is one NVML gave; the call writes one integer.
                unsafe { idx(data.device, &mut index) };
            }
            let e = (index, data.eventData);
            if !seen.contains(&e) {
                seen.push(e);
            }
        }
        seen
    }

    /// The latest PCIe readings. The first call reads them itself, so that a single sample
    /// (`gantry gpu --once`) has them, and starts the thread that keeps them fresh.
    fn pcie(&mut self) -> Vec<PcieReading> {
        if self.pcie_on.is_none() {
            let first = read_pcie(&self.nvml);
            let supported = first.iter().any(|(rx, tx)| rx.is_some() || tx.is_some());
            *self.pcie.lock().unwrap_or_else(|e| e.into_inner()) = first.clone();
            let on = Arc::new(AtomicBool::new(supported));
            self.pcie_on = Some(on.clone());
            if supported {
                let (nvml, shared) = (self.nvml.clone(), self.pcie.clone());
                let spawned = std::thread::Builder::new()
                    .name("gantry-pcie".into())
                    .spawn(move || {
                        while on.load(Ordering::Relaxed) {
                            std::thread::sleep(PCIE_EVERY);
                            let now = read_pcie(&nvml);
                            *shared.lock().unwrap_or_else(|e| e.into_inner()) = now;
                        }
                    });
                if spawned.is_err() {
                    // No thread: the first readings stay, and the rest of each sample is whole.
                    self.pcie_on = Some(Arc::new(AtomicBool::new(false)));
                }
            }
            return first;
        }
        self.pcie.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// What both a full sample and the bench monitor's read of a GPU: utilisation, temperature,
/// power and limit, clocks and the throttle reasons.
fn core_readings(d: &nvml_wrapper::Device) -> GpuSample {
    let util = d.utilization_rates().ok();
    GpuSample {
        util: util.as_ref().map(|u| u.gpu),
        mem_util: util.as_ref().map(|u| u.memory),
        temp: d.temperature(TemperatureSensor::Gpu).ok(),
        power: d.power_usage().ok().map(|mw| f64::from(mw) / 1000.0),
        power_limit: d
            .enforced_power_limit()
            .ok()
            .map(|mw| f64::from(mw) / 1000.0),
        sm_clock: d.clock_info(Clock::SM).ok(),
        sm_clock_max: d.max_clock_info(Clock::SM).ok(),
        mem_clock: d.clock_info(Clock::Memory).ok(),
        pcie_gen: d.current_pcie_link_gen().ok(),
        pcie_width: d.current_pcie_link_width().ok(),
        throttle: clock_event_reasons(d)
            .map(throttle_words)
            .unwrap_or_default(),
        throttle_known: Some(clock_event_reasons(d).is_some()),
        energy_mj: d.total_energy_consumption().ok(),
        read_us: Some(chrono::Utc::now().timestamp_micros()),
        ..Default::default()
    }
}

/// Why the clocks are held down: nvmlDeviceGetCurrentClocksEventReasons (the current call), else
/// the deprecated ThrottleReasons one; None where the driver has neither.
fn clock_event_reasons(d: &nvml_wrapper::Device) -> Option<ThrottleReasons> {
    let nvml = d.nvml();
    if let Ok(sym) = nvml.lib().nvmlDeviceGetCurrentClocksEventReasons.as_ref() {
        let mut bits: std::ffi::c_ulonglong = 0;
        // Safety: the handle is live for `d`'s lifetime; the call writes one integer; 0 is
        // NVML_SUCCESS.
        let rc = unsafe { sym(d.handle(), &mut bits) };
        if rc == 0 {
            return Some(ThrottleReasons::from_bits_truncate(bits));
        }
    }
    d.current_throttle_reasons().ok()
}

impl Drop for NvmlSource {
    fn drop(&mut self) {
        if let Some(on) = &self.pcie_on {
            on.store(false, Ordering::Relaxed);
        }
        if let Some(events) = self.xids.take()
            && let Ok(free) = self.nvml.lib().nvmlEventSetFree.as_ref()
        {
            // Safety: the set was made by this source and is freed once, before NVML shuts down
            // (the Arc<Nvml> field drops after this).
            unsafe { free(events.set) };
        }
    }
}

/// Memory retired for ECC errors and whether more waits for a reset: retired pages (before
/// Ampere) plus rows remapped for uncorrectable errors (Ampere on); None where neither is read.
fn retirement(d: &nvml_wrapper::Device) -> (Option<u64>, Option<bool>) {
    use nvml_wrapper::enum_wrappers::device::RetirementCause;
    let mut count: Option<u64> = None;
    let mut pending: Option<bool> = None;
    for cause in [
        RetirementCause::MultipleSingleBitEccErrors,
        RetirementCause::DoubleBitEccError,
    ] {
        if let Ok(pages) = d.retired_pages(cause) {
            *count.get_or_insert(0) += pages.len() as u64;
        }
    }
    if let Ok(p) = d.are_pages_pending_retired() {
        pending = Some(p);
    }
    if let Ok(sym) = d.nvml().lib().nvmlDeviceGetRemappedRows.as_ref() {
        let (mut corr, mut unc, mut wait, mut failed): (
            std::ffi::c_uint,
            std::ffi::c_uint,
            std::ffi::c_uint,
            std::ffi::c_uint,
        ) = (0, 0, 0, 0);
        // Safety: the handle is live for `d`'s lifetime; the call writes four integers.
        if unsafe { sym(d.handle(), &mut corr, &mut unc, &mut wait, &mut failed) } == 0 {
            *count.get_or_insert(0) += u64::from(unc);
            pending = Some(pending.unwrap_or(false) || wait != 0 || failed != 0);
        }
    }
    (count, pending)
}

impl GpuSource for NvmlSource {
    fn describe(&self) -> String {
        "NVML".into()
    }

    fn sample_gpu(&mut self, uuid: &str) -> Result<Option<GpuSample>, String> {
        let Ok(d) = self.nvml.device_by_uuid(uuid) else {
            return Ok(None);
        };
        Ok(Some(GpuSample {
            index: d.index().unwrap_or(0),
            uuid: uuid.to_string(),
            ..core_readings(&d)
        }))
    }

    fn sample(&mut self) -> Result<GpuSnapshot, String> {
        let pcie = self.pcie();
        let xids = self.xid_errors();
        let n = &self.nvml;
        let count = n
            .device_count()
            .map_err(|e| format!("NVML cannot count GPUs: {e}"))?;
        let mut snap = GpuSnapshot {
            time_ms: crate::domain::now_ms(),
            driver: n.sys_driver_version().ok(),
            cuda: n
                .sys_cuda_driver_version()
                .ok()
                .map(|v| format!("{}.{}", v / 1000, (v % 1000) / 10)),
            ..Default::default()
        };
        let mut newest = self.last_seen_us;
        for i in 0..count {
            let Ok(d) = n.device_by_index(i) else {
                continue;
            };
            let mem = d.memory_info().ok();
            let (retired_pages, retired_pending) = retirement(&d);
            let mig = d.mig_mode().ok().map(|m| m.current == 1);
            let mut mig_instances = Vec::new();
            if mig == Some(true) {
                // Slots without a compute instance answer NotFound: skipped.
                for m in 0..d.mig_device_count().unwrap_or(0) {
                    let Ok(md) = d.mig_device_by_index(m) else {
                        continue;
                    };
                    let mm = md.memory_info().ok();
                    mig_instances.push(MigInstance {
                        index: m,
                        name: md.name().unwrap_or_else(|_| "n/a".into()),
                        uuid: md.uuid().unwrap_or_default(),
                        mem_used: mm.as_ref().map(|x| x.used),
                        mem_total: mm.as_ref().map(|x| x.total),
                    });
                }
            }
            snap.gpus.push(GpuSample {
                index: i,
                name: d.name().unwrap_or_else(|_| "n/a".into()),
                uuid: d.uuid().unwrap_or_default(),
                bus_id: d.pci_info().map(|p| p.bus_id).unwrap_or_default(),
                mem_used: mem.as_ref().map(|m| m.used),
                mem_total: mem.as_ref().map(|m| m.total),
                temp_slowdown: d.temperature_threshold(TemperatureThreshold::Slowdown).ok(),
                mem_clock_max: d.max_clock_info(Clock::Memory).ok(),
                fan: d.fan_speed(0).ok(),
                pcie_gen_max: d.max_pcie_link_gen().ok(),
                pcie_width_max: d.max_pcie_link_width().ok(),
                pcie_rx: pcie.get(i as usize).and_then(|p| p.0),
                pcie_tx: pcie.get(i as usize).and_then(|p| p.1),
                enc_util: d.encoder_utilization().ok().map(|u| u.utilization),
                dec_util: d.decoder_utilization().ok().map(|u| u.utilization),
                ecc_uncorrected: d
                    .total_ecc_errors(MemoryError::Uncorrected, EccCounter::Volatile)
                    .ok(),
                retired_pages,
                retired_pending,
                xids: xids
                    .iter()
                    .filter(|(g, _)| *g == i)
                    .map(|(_, x)| *x)
                    .collect(),
                mig,
                mig_instances,
                persistence: d.is_in_persistent_mode().ok(),
                compute_mode: d.compute_mode().ok().map(|m| format!("{m:?}")),
                ..core_readings(&d)
            });
            let mut procs: Vec<GpuProcess> = Vec::new();
            for list in [
                d.running_compute_processes(),
                d.running_graphics_processes(),
            ] {
                for p in list.unwrap_or_default() {
                    if procs.iter().any(|q| q.pid == p.pid) {
                        continue;
                    }
                    let mem_used = match p.used_gpu_memory {
                        nvml_wrapper::enums::device::UsedGpuMemory::Used(b) => Some(b),
                        nvml_wrapper::enums::device::UsedGpuMemory::Unavailable => None,
                    };
                    procs.push(GpuProcess {
                        pid: p.pid,
                        gpu: i,
                        mem_used,
                        sm_util: None,
                    });
                }
            }
            // NotFound means no sample in the window: the processes keep sm_util None.
            if let Ok(samples) = d.process_utilization_stats(self.last_seen_us) {
                for s in samples {
                    newest = newest.max(s.timestamp);
                    if let Some(p) = procs.iter_mut().find(|p| p.pid == s.pid) {
                        p.sm_util = Some(s.sm_util);
                    }
                }
            }
            snap.processes.extend(procs);
        }
        self.last_seen_us = newest;
        Ok(snap)
    }
}

/// Plays a recording: one `GpuSnapshot` per JSON line, paced by their timestamps divided by
/// `speed` (0: as fast as asked), looping at the end.
pub struct ReplaySource {
    name: String,
    frames: Vec<GpuSnapshot>,
    next: usize,
    speed: f64,
    started: Instant,
}

impl ReplaySource {
    pub fn open(path: &Path, speed: f64) -> Result<ReplaySource, String> {
        let f = std::fs::File::open(path)
            .map_err(|e| format!("cannot read the GPU recording {}: {e}", path.display()))?;
        let mut frames = Vec::new();
        for (i, line) in std::io::BufReader::new(f).lines().enumerate() {
            let line = line.map_err(|e| format!("{}: {e}", path.display()))?;
            if line.trim().is_empty() {
                continue;
            }
            frames.push(
                serde_json::from_str(&line).map_err(|e| {
                    format!("{}:{}: not a GPU snapshot: {e}", path.display(), i + 1)
                })?,
            );
        }
        Self::from_frames(path.display().to_string(), frames, speed)
    }

    pub fn from_frames(
        name: String,
        frames: Vec<GpuSnapshot>,
        speed: f64,
    ) -> Result<ReplaySource, String> {
        if frames.is_empty() {
            return Err(format!("the GPU recording {name} is empty"));
        }
        if !speed.is_finite() || speed < 0.0 {
            return Err(format!(
                "--gpu-replay-speed {speed} is not a speed: give 0 (as fast as asked), 1 (real time) or more"
            ));
        }
        Ok(ReplaySource {
            name,
            frames,
            next: 0,
            speed,
            started: Instant::now(),
        })
    }

    /// How long after the replay began frame `i` is due.
    fn due(&self, i: usize) -> Duration {
        if self.speed <= 0.0 {
            return Duration::ZERO;
        }
        let dt =
            (self.frames[i].time_ms - self.frames[0].time_ms).max(0) as f64 / 1000.0 / self.speed;
        Duration::from_secs_f64(dt)
    }
}

impl GpuSource for ReplaySource {
    fn describe(&self) -> String {
        format!("replay of {}", self.name)
    }

    fn sample(&mut self) -> Result<GpuSnapshot, String> {
        if self.next >= self.frames.len() {
            self.next = 0;
            self.started = Instant::now();
        }
        let due = self.due(self.next);
        let elapsed = self.started.elapsed();
        if due > elapsed {
            std::thread::sleep(due - elapsed);
        }
        let mut snap = self.frames[self.next].clone();
        snap.time_ms = crate::domain::now_ms();
        self.next += 1;
        Ok(snap)
    }

    fn sample_now(&mut self) -> Result<GpuSnapshot, String> {
        if self.speed <= 0.0 {
            // Not paced by time: each ask is the next frame.
            return self.sample();
        }
        if self.next >= self.frames.len() {
            self.next = 0;
            self.started = Instant::now();
        }
        let elapsed = self.started.elapsed();
        while self.next + 1 < self.frames.len() && self.due(self.next + 1) <= elapsed {
            self.next += 1;
        }
        self.sample()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replay_reads_loops_and_reports_bad_lines() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("rec.jsonl");
        let a = GpuSnapshot {
            time_ms: 1000,
            gpus: vec![GpuSample {
                index: 0,
                name: "A".into(),
                util: Some(50),
                ..Default::default()
            }],
            ..Default::default()
        };
        let b = GpuSnapshot {
            time_ms: 2000,
            ..a.clone()
        };
        std::fs::write(
            &p,
            format!(
                "{}\n\n{}\n",
                serde_json::to_string(&a).unwrap(),
                serde_json::to_string(&b).unwrap()
            ),
        )
        .unwrap();
        let mut r = ReplaySource::open(&p, 0.0).unwrap();
        for _ in 0..3 {
            assert_eq!(r.sample().unwrap().gpus[0].util, Some(50));
        }
        std::fs::write(&p, "{\"time_ms\": 1}\nnot json\n").unwrap();
        let e = ReplaySource::open(&p, 0.0).err().unwrap();
        assert!(e.contains("rec.jsonl:2: not a GPU snapshot"), "{e}");
        std::fs::write(&p, "").unwrap();
        assert!(
            ReplaySource::open(&p, 0.0)
                .err()
                .unwrap()
                .contains("is empty")
        );
        for bad in [-1.0, f64::NAN, f64::INFINITY] {
            let e = ReplaySource::from_frames("rec".into(), vec![a.clone()], bad)
                .err()
                .unwrap();
            assert!(e.contains("is not a speed"), "{e}");
        }
        let mut fast =
            ReplaySource::from_frames("rec".into(), vec![a.clone(), b.clone()], 10.0).unwrap();
        // Replayed frames are stamped with the time they are played, not the time recorded.
        let before = crate::domain::now_ms();
        assert!(fast.sample().unwrap().time_ms >= before);
    }

    #[test]
    fn nvml_absence_is_a_reason_not_a_panic() {
        // With a driver this opens; without, it says why.
        if let Err(why) = NvmlSource::open() {
            assert!(!why.is_empty());
        }
    }

    #[test]
    fn throttle_reasons_in_words() {
        let w =
            throttle_words(ThrottleReasons::SW_POWER_CAP | ThrottleReasons::HW_THERMAL_SLOWDOWN);
        assert_eq!(w, ["power cap", "hw thermal"]);
    }
}
