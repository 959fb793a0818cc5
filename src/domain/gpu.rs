/// What looking for GPUs found: NVML's answer, or why there is none.
#[derive(Debug, Clone, PartialEq)]
pub enum GpuProbe {
    Pending,
    Absent(String),
    Present { driver: String, names: Vec<String> },
}
