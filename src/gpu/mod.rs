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
