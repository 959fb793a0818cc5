use serde::{Deserialize, Serialize};

/// What looking for GPUs found: NVML's answer, or why there is none.
#[derive(Debug, Clone, PartialEq)]
pub enum GpuProbe {
    Pending,
    Absent(String),
    Present { driver: String, names: Vec<String> },
}

/// One GPU at one moment. Every reading is optional: None is "n/a" (the driver lacks it). A field
/// missing from a report (another gantry version's, over ssh) reads as unknown.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GpuSample {
    pub index: u32,
    pub name: String,
    pub uuid: String,
    pub bus_id: String,
    /// SM utilisation, percent.
    pub util: Option<u32>,
    /// Memory controller utilisation, percent.
    pub mem_util: Option<u32>,
    pub mem_used: Option<u64>,
    pub mem_total: Option<u64>,
    /// Degrees C.
    pub temp: Option<u32>,
    pub temp_slowdown: Option<u32>,
    /// Watts.
    pub power: Option<f64>,
    pub power_limit: Option<f64>,
    /// MHz.
    pub sm_clock: Option<u32>,
    pub sm_clock_max: Option<u32>,
    pub mem_clock: Option<u32>,
    pub mem_clock_max: Option<u32>,
    /// Percent.
    pub fan: Option<u32>,
    pub pcie_gen: Option<u32>,
    pub pcie_width: Option<u32>,
    /// The highest PCIe generation and width the GPU and its slot can train to. A link below
    /// them under load is degraded (an idle GPU drops its link to save power: not a fault).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pcie_gen_max: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pcie_width_max: Option<u32>,
    /// KB/s.
    pub pcie_rx: Option<u32>,
    pub pcie_tx: Option<u32>,
    pub enc_util: Option<u32>,
    pub dec_util: Option<u32>,
    /// Why clocks are held down, in words; empty when nothing is.
    #[serde(default)]
    pub throttle: Vec<String>,
    /// Some(false) where the driver answered neither clock-event-reasons call: `throttle` is then
    /// unknown, not empty. None in recordings made before it was read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throttle_known: Option<bool>,
    /// NVML's total-energy counter, millijoules since the driver loaded, and when it was read
    /// (µs since the epoch): power over a window is the counter's difference over the time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub energy_mj: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_us: Option<i64>,
    pub ecc_uncorrected: Option<u64>,
    /// Memory retired for ECC errors: pages retired (before Ampere) plus rows remapped for
    /// uncorrectable errors (Ampere on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retired_pages: Option<u64>,
    /// A page retirement or row remap waits for the next GPU reset; Some(true) also when a
    /// remap failed (the GPU has run out of spare rows).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retired_pending: Option<bool>,
    /// The critical XID errors the driver reported since the previous sample (NVML's
    /// XidCriticalError events; a recording lists them in the frame they came in).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub xids: Vec<u64>,
    pub mig: Option<bool>,
    /// The MIG devices (compute instances) when MIG mode is on; empty otherwise.
    #[serde(default)]
    pub mig_instances: Vec<MigInstance>,
    pub persistence: Option<bool>,
    pub compute_mode: Option<String>,
}

/// One MIG device of a GPU in MIG mode: its place under the parent, name (the profile, such as
/// "NVIDIA H200 1g.18gb"), UUID and memory.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MigInstance {
    pub index: u32,
    pub name: String,
    pub uuid: String,
    pub mem_used: Option<u64>,
    pub mem_total: Option<u64>,
}

/// A process using a GPU.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GpuProcess {
    pub pid: u32,
    pub gpu: u32,
    pub mem_used: Option<u64>,
    /// SM utilisation from the last samples, percent; None when there was no sample.
    pub sm_util: Option<u32>,
}

/// Every GPU and GPU process at one moment.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GpuSnapshot {
    pub time_ms: i64,
    pub driver: Option<String>,
    /// The CUDA version the driver supports, as "13.0".
    pub cuda: Option<String>,
    #[serde(default)]
    pub gpus: Vec<GpuSample>,
    #[serde(default)]
    pub processes: Vec<GpuProcess>,
}

impl GpuSnapshot {
    /// The processes on the GPU with `uuid` (NVML numbers GPUs by PCI bus and CUDA by speed, so
    /// a GPU is named by its UUID), leaving out `except` (gantry's own pid). Where the UUID is
    /// unknown, the GPU at `fallback_index`.
    pub fn processes_on(&self, uuid: &str, fallback_index: u32, except: u32) -> Vec<&GpuProcess> {
        let index = self
            .gpus
            .iter()
            .find(|g| g.uuid == uuid)
            .map_or(fallback_index, |g| g.index);
        self.processes
            .iter()
            .filter(|p| p.gpu == index && p.pid != except)
            .collect()
    }
}
