//! What CUDA and NVML say before any benchmark: whether the libraries are there, the GPUs CUDA
//! sees, the library files actually loaded, and the device's facts from NVML.

use super::*;

/// Why CUDA cannot be used here, naming the library that is missing; None when the driver and
/// cuBLAS load. NVRTC is not needed to open: without it only the kernels' benchmarks fail.
pub fn missing_library() -> Option<String> {
    // One directory for cuBLAS, cuBLASLt and NVRTC, loaded before cudarc opens any of them.
    if let Err(why) = super::choose::prepare() {
        return Some(format!("CUDA libraries: {why}"));
    }
    // Safety: these only try to open the libraries by name.
    unsafe {
        if !cudarc::driver::sys::is_culib_present() {
            return Some("CUDA not available: libcuda.so (the NVIDIA driver) was not found".into());
        }
        if !cudarc::cublas::sys::is_culib_present() {
            return Some(
                "CUDA not available: libcublas.so was not found (install cuBLAS, or add its \
                 directory to LD_LIBRARY_PATH)"
                    .into(),
            );
        }
    }
    None
}

/// The GPUs CUDA sees, in its numbering (which CUDA_VISIBLE_DEVICES and CUDA_DEVICE_ORDER
/// change): name and UUID, read without creating a context.
pub fn list_devices() -> Result<Vec<(String, String)>, String> {
    if let Some(why) = missing_library() {
        return Err(why);
    }
    use cudarc::driver::result::{self, device};
    result::init().map_err(|e| format!("CUDA not available: {e:?}"))?;
    let count = device::get_count().map_err(|e| format!("CUDA not available: {e:?}"))?;
    (0..count)
        .map(|i| {
            let d = device::get(i).map_err(err("a device"))?;
            let name = device::get_name(d).map_err(err("a device's name"))?;
            let uuid = device::get_uuid(d)
                .map(|u| uuid_text(&u.bytes, &name))
                .unwrap_or_default();
            Ok((name, uuid))
        })
        .collect()
}

/// "GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx", as NVML and nvidia-smi write it; "MIG-…" for a
/// MIG slice (CUDA names it "NVIDIA H100 80GB HBM3 MIG 1g.10gb"), which NVML knows by that UUID.
pub(super) fn uuid_text(bytes: &[std::ffi::c_char; 16], name: &str) -> String {
    let b: Vec<u8> = bytes.iter().map(|c| *c as u8).collect();
    let hex =
        |r: std::ops::Range<usize>| b[r].iter().map(|x| format!("{x:02x}")).collect::<String>();
    let kind = if is_mig(name) { "MIG" } else { "GPU" };
    format!(
        "{kind}-{}-{}-{}-{}-{}",
        hex(0..4),
        hex(4..6),
        hex(6..8),
        hex(8..10),
        hex(10..16)
    )
}

/// What was measured with: each CUDA library's name, version and file (the ones this process
/// loaded: the same names, so the same handles), and how the kernels were compiled.
/// Whether CUDA's name for a device is a MIG slice's.
pub(super) fn is_mig(name: &str) -> bool {
    name.split_whitespace().any(|w| w == "MIG")
}

/// The SMs of the whole GPU a MIG slice is cut from, for the known MIG-capable parts.
pub(super) fn full_gpu_sms(name: &str) -> Option<u32> {
    let n = name.to_ascii_uppercase();
    if n.contains("H100 PCIE") {
        Some(114)
    } else if ["H100", "H200", "GH200", "H20"]
        .iter()
        .any(|g| n.contains(g))
    {
        Some(132)
    } else if n.contains("A100") {
        Some(108)
    } else if n.contains("A30") {
        Some(56)
    } else {
        None
    }
}

/// A whole GPU's peaks cut to a MIG slice: the tensor peaks by its share of the SMs, the memory
/// bandwidth by its share of the memory (a 3g slice of an H100 has 60 of 132 SMs but half the
/// memory slices); unknown without that share. FP32 already counts the slice's own SMs.
pub(super) fn slice_peaks(mut p: Peaks, sm_share: f64, mem_share: Option<f64>) -> Peaks {
    if let Some(t) = p.tensor.as_mut() {
        t.fp16 *= sm_share;
        t.tf32 = t.tf32.map(|x| x * sm_share);
        t.bf16 = t.bf16.map(|x| x * sm_share);
        t.memory = t.memory.zip(mem_share).map(|(x, s)| x * s);
    }
    match mem_share {
        Some(s) => {
            p.memory = p.memory.map(|x| x * s);
            p.memory_from_clocks = p.memory_from_clocks.map(|x| x * s);
        }
        None => {
            p.memory = None;
            p.memory_from_clocks = None;
            p.memory_source = "";
        }
    }
    p
}

/// Why there are no kernels, where NVRTC cannot be loaded.
pub(super) fn nvrtc_missing() -> Option<String> {
    // Safety: this only tries to open the library by name.
    (!unsafe { cudarc::nvrtc::sys::is_culib_present() }).then(|| {
        "libnvrtc.so was not found (install CUDA's NVRTC, `pip install nvidia-cuda-nvrtc`, or add \
         its directory to LD_LIBRARY_PATH): the SM bandwidth and launch benchmarks need it"
            .to_string()
    })
}

pub(super) fn library_lines(driver_cuda: &Option<String>, kernels: String) -> Vec<String> {
    let libs = super::libs::libraries();
    let mut out: Vec<String> = libs
        .iter()
        .map(|l| match &l.path {
            Some(p) => format!("{} {} {p}", l.name, l.version.as_deref().unwrap_or("?")),
            None => format!("{} {}", l.name, l.error.as_deref().unwrap_or("not found")),
        })
        .collect();
    out.push(format!("kernels: {kernels}"));
    if let Ok(c) = super::choose::prepare() {
        out.push(format!("chosen: {}", c.why));
    }
    if let (Some(nvrtc), Some(cuda)) = (
        libs.iter()
            .find(|l| l.name == "libnvrtc")
            .and_then(|l| l.version.clone()),
        driver_cuda,
    ) && let Some(w) = super::compile::newer_than_driver(&nvrtc, cuda)
    {
        tracing::warn!("{w}");
        out.push(format!("warning: {w}"));
    }
    out
}

/// What NVML says of the device, where it answers.
#[derive(Default)]
pub(super) struct NvmlFacts {
    pub(super) sm_mhz: Option<u32>,
    pub(super) mem_mhz: Option<u32>,
    pub(super) bus_bits: Option<u32>,
    pub(super) link_gen: Option<u32>,
    pub(super) link_width: Option<u32>,
    pub(super) driver: Option<String>,
    /// For a MIG slice: its memory over its parent GPU's.
    pub(super) mig_memory_share: Option<f64>,
}

pub(super) fn nvml_facts(uuid: &str) -> NvmlFacts {
    use nvml_wrapper::enum_wrappers::device::Clock;
    let Ok(nvml) = nvml_wrapper::Nvml::init() else {
        return NvmlFacts::default();
    };
    let driver = nvml.sys_driver_version().ok();
    let Ok(d) = nvml.device_by_uuid(uuid) else {
        return NvmlFacts {
            driver,
            ..NvmlFacts::default()
        };
    };
    let mig_memory_share = d.mig_parent_device().ok().and_then(|parent| {
        let slice = d.memory_info().ok()?.total as f64;
        let whole = parent.memory_info().ok()?.total as f64;
        (whole > 0.0).then(|| slice / whole)
    });
    NvmlFacts {
        mig_memory_share,
        sm_mhz: d.max_clock_info(Clock::SM).ok(),
        mem_mhz: d.max_clock_info(Clock::Memory).ok(),
        bus_bits: d.memory_bus_width().ok(),
        link_gen: d.max_pcie_link_gen().ok(),
        link_width: d.max_pcie_link_width().ok(),
        driver,
    }
}
