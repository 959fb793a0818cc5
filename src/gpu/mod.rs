//! NVIDIA GPUs through NVML (nvml-wrapper), loaded at run time. No driver is a normal state with a
//! clear reason, never a panic.

pub mod source;

use nvml_wrapper::Nvml;
use nvml_wrapper::error::NvmlError;

use crate::domain::GpuProbe;

/// Ask NVML which GPUs this host has. Blocking (it loads a library): call off the async runtime.
pub fn probe() -> GpuProbe {
    let nvml = match Nvml::init() {
        Ok(n) => n,
        Err(e) => return GpuProbe::Absent(why_absent(&e)),
    };
    let driver = nvml.sys_driver_version().unwrap_or_else(|_| "n/a".into());
    let count = match nvml.device_count() {
        Ok(c) => c,
        Err(e) => return GpuProbe::Absent(format!("NVML cannot count GPUs: {e}")),
    };
    let names = (0..count)
        .map(|i| {
            nvml.device_by_index(i)
                .and_then(|d| d.name())
                .unwrap_or_else(|e| format!("GPU {i} (n/a: {e})"))
        })
        .collect();
    GpuProbe::Present { driver, names }
}

/// GPU use of a set of processes (a run's process tree), summed over all GPUs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProcessGpuUse {
    /// SM utilisation, percent of one GPU, summed over the processes' samples; None without samples.
    pub sm_util: Option<f64>,
    pub memory_bytes: u64,
    pub gpus: usize,
    /// The UUIDs of the GPUs they are on.
    pub uuids: Vec<String>,
}

/// Per-process GPU sampling for a run, holding one NVML handle.
pub struct ProcessSampler {
    nvml: Nvml,
    last_seen_us: u64,
}

impl ProcessSampler {
    /// None where there is no NVML: a normal state on hosts without NVIDIA GPUs.
    pub fn open() -> Option<ProcessSampler> {
        Nvml::init().ok().map(|nvml| ProcessSampler {
            nvml,
            last_seen_us: 0,
        })
    }

    /// Use by `pids` since the previous call. A field the driver lacks is left out, not fatal;
    /// NotFound from the utilisation query means no sample in the window.
    pub fn sample(&mut self, pids: &[i64]) -> ProcessGpuUse {
        let mut out = ProcessGpuUse::default();
        let wanted = |p: u32| pids.contains(&i64::from(p));
        let count = self.nvml.device_count().unwrap_or(0);
        let mut newest = self.last_seen_us;
        for i in 0..count {
            let Ok(dev) = self.nvml.device_by_index(i) else {
                continue;
            };
            let mut on_this = false;
            for procs in [
                dev.running_compute_processes(),
                dev.running_graphics_processes(),
            ] {
                for p in procs
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|p| wanted(p.pid))
                {
                    on_this = true;
                    if let nvml_wrapper::enums::device::UsedGpuMemory::Used(b) = p.used_gpu_memory {
                        out.memory_bytes += b;
                    }
                }
            }
            if on_this {
                out.gpus += 1;
                if let Ok(u) = dev.uuid() {
                    out.uuids.push(u);
                }
            }
            if let Ok(samples) = dev.process_utilization_stats(self.last_seen_us) {
                for s in samples.into_iter().filter(|s| wanted(s.pid)) {
                    *out.sm_util.get_or_insert(0.0) += f64::from(s.sm_util);
                    newest = newest.max(s.timestamp);
                }
            }
        }
        self.last_seen_us = newest;
        out
    }
}

/// The names of this host's GPUs, or none without NVML.
pub fn names() -> Vec<String> {
    match probe() {
        GpuProbe::Present { names, .. } => names,
        _ => Vec::new(),
    }
}

/// A person's reason for no NVML.
pub fn why_absent(e: &NvmlError) -> String {
    match e {
        NvmlError::LibloadingError(_) => {
            "no NVIDIA driver (libnvidia-ml.so.1 could not be loaded)".into()
        }
        NvmlError::DriverNotLoaded => "the NVIDIA driver is installed but not loaded".into(),
        NvmlError::NoPermission => "no permission to query the NVIDIA driver".into(),
        NvmlError::FailedToLoadSymbol(s) => format!("the NVIDIA driver is too old ({s} missing)"),
        other => format!("NVML failed to start: {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_never_panics_and_explains_absence() {
        // On a host without a driver this must be Absent with a reason; with one, Present.
        match probe() {
            GpuProbe::Absent(why) => assert!(!why.is_empty()),
            GpuProbe::Present { names, .. } => assert!(names.iter().all(|n| !n.is_empty())),
            GpuProbe::Pending => panic!("probe returned Pending"),
        }
    }
}
