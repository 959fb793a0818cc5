//! Benchmark types that cross rooms: what to run (`Spec`, `Request`), what came back
//! (`BenchResult`, `Stats`, `Check`, `Conditions`) and on what (`DeviceInfo`, `Peaks`). The
//! backends, statistics and peak tables that fill them live in bench/.

use serde::{Deserialize, Serialize};

/// At least this many timed repetitions per benchmark.
pub const MIN_REPS: usize = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    Fp32,
    Tf32,
    Fp16,
    Bf16,
    Fp64,
}

impl Precision {
    pub const GPU: [Precision; 4] = [
        Precision::Fp32,
        Precision::Tf32,
        Precision::Fp16,
        Precision::Bf16,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Precision::Fp32 => "fp32",
            Precision::Tf32 => "tf32",
            Precision::Fp16 => "fp16",
            Precision::Bf16 => "bf16",
            Precision::Fp64 => "fp64",
        }
    }
    pub fn parse(s: &str) -> Option<Precision> {
        [
            Precision::Fp32,
            Precision::Tf32,
            Precision::Fp16,
            Precision::Bf16,
            Precision::Fp64,
        ]
        .into_iter()
        .find(|p| p.as_str() == s)
    }
}

/// The benchmarks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Gemm,
    Membw,
    H2d,
    D2h,
    Launch,
}

impl Kind {
    pub const ALL: [Kind; 5] = [Kind::Gemm, Kind::Membw, Kind::H2d, Kind::D2h, Kind::Launch];
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Gemm => "gemm",
            Kind::Membw => "membw",
            Kind::H2d => "h2d",
            Kind::D2h => "d2h",
            Kind::Launch => "launch",
        }
    }
    pub fn title(self) -> &'static str {
        match self {
            Kind::Gemm => "GEMM",
            Kind::Membw => "Memory bandwidth",
            Kind::H2d => "Host to device",
            Kind::D2h => "Device to host",
            Kind::Launch => "Launch latency",
        }
    }
    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }
    pub fn unit(self) -> Unit {
        match self {
            Kind::Gemm => Unit::TflopS,
            Kind::Membw | Kind::H2d | Kind::D2h => Unit::GbS,
            Kind::Launch => Unit::Us,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Unit {
    #[serde(rename = "TFLOP/s")]
    TflopS,
    #[serde(rename = "GB/s")]
    GbS,
    #[serde(rename = "us")]
    Us,
}

impl Unit {
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::TflopS => "TFLOP/s",
            Unit::GbS => "GB/s",
            Unit::Us => "us",
        }
    }
    /// Whether a bigger number is better.
    pub fn higher_is_better(self) -> bool {
        !matches!(self, Unit::Us)
    }
}

/// One benchmark to run.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Spec {
    pub kind: Kind,
    /// GEMM only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub precision: Option<Precision>,
    /// GEMM: N of an N×N×N product. Copies: bytes. Launch: launches per repetition.
    pub size: u64,
    /// How: cublas, matrixmultiply, copy-engine, sm-copy, sm-triad, cpu-copy, pinned, pageable,
    /// events, wall, thread-wake.
    pub variant: String,
}

impl Spec {
    pub fn gemm(p: Precision, n: u64, variant: &str) -> Spec {
        Spec {
            kind: Kind::Gemm,
            precision: Some(p),
            size: n,
            variant: variant.into(),
        }
    }
    pub fn other(kind: Kind, size: u64, variant: &str) -> Spec {
        Spec {
            kind,
            precision: None,
            size,
            variant: variant.into(),
        }
    }
    /// "gemm bf16 8192", "membw sm-triad 1 GiB", "launch events".
    pub fn label(&self) -> String {
        match self.kind {
            Kind::Gemm => format!(
                "gemm {} {}",
                self.precision.map_or("", Precision::as_str),
                self.size
            ),
            Kind::Launch => format!("launch {}", self.variant),
            _ => format!(
                "{} {} {}",
                self.kind.as_str(),
                self.variant,
                transfer_size(self.size)
            ),
        }
    }
    /// The parameters as stored with a result.
    pub fn config(&self) -> serde_json::Value {
        let mut v = serde_json::json!({"size": self.size, "variant": self.variant});
        if let Some(p) = self.precision {
            v["precision"] = p.as_str().into();
        }
        v
    }
    /// What the numbers count, where it needs saying.
    pub fn counts(&self) -> Option<&'static str> {
        match (self.kind, self.variant.as_str()) {
            (Kind::Membw, "sm-triad") => Some("bytes read + written (2 read, 1 written)"),
            (Kind::Membw, _) => Some("bytes read + written"),
            (Kind::Launch, "events") => Some("GPU time per launch, from events over a burst"),
            (Kind::Launch, "wall") => Some("host time of launch + synchronize"),
            (Kind::Launch, _) => Some("one-way wake-up time"),
            _ => None,
        }
    }
}

/// What a backend measured for one spec: seconds per timed repetition and the work each did.
#[derive(Debug, Clone, PartialEq)]
pub struct Measured {
    pub seconds: Vec<f64>,
    /// FLOPs, bytes or launches per repetition.
    pub work: f64,
    pub check: Option<Check>,
}

/// The device a backend runs on.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DeviceInfo {
    /// cuda | cpu
    pub backend: String,
    pub name: String,
    pub uuid: String,
    pub driver: Option<String>,
    /// The CUDA version the driver supports, "13.0".
    pub cuda: Option<String>,
    /// The library files actually loaded (libcuda, libcublas, libnvrtc), or the CPU crate.
    pub libraries: Vec<String>,
    pub peaks: Peaks,
}

/// One result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchResult {
    pub spec: Spec,
    pub unit: Unit,
    pub stats: Stats,
    /// The peak in `unit`, where known.
    pub peak: Option<f64>,
    /// The median as a percentage of the peak.
    pub pct_of_peak: Option<f64>,
    pub check: Option<Check>,
    /// What the GPU went through while it ran (CUDA backend, with NVML).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Conditions>,
}

/// What to run.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// Empty: every benchmark.
    pub only: Vec<Kind>,
    /// GEMM sizes; empty: the backend's defaults.
    pub sizes: Vec<u64>,
    /// Empty: the backend's defaults.
    pub precisions: Vec<Precision>,
    pub reps: usize,
}

impl Default for Request {
    fn default() -> Self {
        Request {
            only: Vec::new(),
            sizes: Vec::new(),
            precisions: Vec::new(),
            reps: MIN_REPS,
        }
    }
}

impl Request {
    pub fn wants(&self, k: Kind) -> bool {
        self.only.is_empty() || self.only.contains(&k)
    }

    /// The GEMM specs asked of a backend that runs `supported` precisions (all of them by
    /// default) at `default_sizes` unless sizes are given.
    pub fn gemm_specs(
        &self,
        supported: &[Precision],
        default_sizes: &[u64],
        variant: &str,
    ) -> Vec<Spec> {
        if !self.wants(Kind::Gemm) {
            return Vec::new();
        }
        let precisions: Vec<Precision> = if self.precisions.is_empty() {
            supported.to_vec()
        } else {
            self.precisions
                .iter()
                .copied()
                .filter(|p| supported.contains(p))
                .collect()
        };
        let sizes = if self.sizes.is_empty() {
            default_sizes
        } else {
            &self.sizes[..]
        };
        precisions
            .iter()
            .flat_map(|p| sizes.iter().map(move |n| Spec::gemm(*p, *n, variant)))
            .collect()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    pub median: f64,
    pub min: f64,
    pub max: f64,
    /// Sample standard deviation (n - 1); 0 for a single value.
    pub stddev: f64,
    pub reps: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Check {
    /// The largest relative error among the sampled entries (infinite for a NaN).
    pub max_rel_err: f64,
    pub bound: f64,
    pub samples: usize,
    pub ok: bool,
}

/// A benchmark's GPU conditions, summarised from the samples taken while it ran.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Conditions {
    /// How many samples the summary is of.
    pub samples: usize,
    /// Median and lowest SM clock, MHz.
    pub sm_clock_mhz: Option<u32>,
    pub sm_clock_min_mhz: Option<u32>,
    /// The GPU's highest SM clock, MHz, for comparison.
    pub sm_clock_max_mhz: Option<u32>,
    /// Median power draw and the enforced limit, W.
    pub power_w: Option<f64>,
    pub power_limit_w: Option<f64>,
    /// Highest temperature, °C.
    pub temp_max_c: Option<u32>,
    /// Every reason the clocks were held down in any sample, in words, except "idle".
    pub throttle: Vec<String>,
    /// Where `power_w` comes from: "energy" (the total-energy counter's difference over the
    /// window) or "average" (the median of NVML's power readings, each a one-second average on
    /// Hopper). None in results stored before it was said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub power_from: Option<String>,
    /// No sample could read the throttle reasons: unknown, not "no throttling".
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub throttle_unknown: bool,
    /// The highest PCIe link generation and width seen while it ran: under load a link trains
    /// to its best, so one below the GPU's maximum is degraded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pcie_gen: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pcie_width: Option<u32>,
}

/// Dense tensor-core peaks of a known GPU, in FLOP/s, with where the figures come from.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct TensorPeaks {
    pub tf32: Option<f64>,
    pub fp16: f64,
    pub bf16: Option<f64>,
    /// The datasheet's memory bandwidth in bytes/s, where one figure fits every part of that name.
    pub memory: Option<f64>,
    pub source: &'static str,
}

/// The peaks a device has, as known: None where unknown.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Peaks {
    /// Bytes/s: what `membw`'s % of peak uses, the datasheet's figure where the GPU is known,
    /// else the one from its clocks.
    pub memory: Option<f64>,
    /// Bytes/s from the memory clock and bus width (2 × clock × width / 8).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_from_clocks: Option<f64>,
    /// "datasheet" or "clocks": where `memory` comes from.
    #[serde(skip_serializing_if = "str::is_empty")]
    pub memory_source: &'static str,
    /// FLOP/s.
    pub fp32: Option<f64>,
    pub tensor: Option<TensorPeaks>,
    /// Bytes/s per direction.
    pub pcie: Option<f64>,
}

impl Peaks {
    /// The GEMM peak for a precision, in FLOP/s.
    pub fn gemm(&self, p: Precision) -> Option<f64> {
        match p {
            Precision::Fp32 => self.fp32,
            Precision::Fp64 => None,
            Precision::Tf32 => self.tensor?.tf32,
            Precision::Fp16 => Some(self.tensor?.fp16),
            Precision::Bf16 => self.tensor?.bf16,
        }
    }
}

impl Stats {
    /// None for no values. NaN values are left out.
    pub fn of(values: &[f64]) -> Option<Stats> {
        let mut v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        let mean = v.iter().sum::<f64>() / n as f64;
        let stddev = if n > 1 {
            (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt()
        } else {
            0.0
        };
        Some(Stats {
            median,
            min: v[0],
            max: v[n - 1],
            stddev,
            reps: n,
        })
    }
}

/// The median of some values (None when empty).
pub fn median(values: &[f64]) -> Option<f64> {
    Stats::of(values).map(|s| s.median)
}

/// A transfer's size as benchmarks choose them: whole GiB where it divides, else MiB (`1 GiB`,
/// What a sustained load reports as it goes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Sustained {
    /// Inputs are ready and warmed up: timing starts now.
    Started,
    /// A window ended `t` seconds after the start; a repetition took `seconds_per_rep` in it.
    Window { t: f64, seconds_per_rep: f64 },
}

/// One window of a sustained load.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Window {
    /// Seconds from the start to the window's end.
    pub t: f64,
    /// In the spec's unit (TFLOP/s).
    pub value: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Conditions>,
}

/// A sustained load on one device: how its throughput held up, and what the GPU went through.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Burn {
    pub label: String,
    pub spec: Spec,
    pub unit: Unit,
    pub seconds: f64,
    /// The median of the first and of the last tenth of the windows (at least one each).
    pub start: f64,
    pub end: f64,
    /// `end` as a fraction of `start`.
    pub sustained: f64,
    pub min: f64,
    pub max: f64,
    /// Over the whole load.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Conditions>,
    pub check: Option<Check>,
    pub windows: Vec<Window>,
}

impl Burn {
    pub fn correct(&self) -> bool {
        self.check.is_none_or(|c| c.ok)
    }
}

/// What a run reports as it goes.
// A few events a benchmark: a result inline costs less than a box each.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Started {
        index: usize,
        total: usize,
        spec: Spec,
    },
    Progress {
        index: usize,
        done: usize,
        reps: usize,
    },
    Finished {
        index: usize,
        result: BenchResult,
    },
    Failed {
        index: usize,
        spec: Spec,
        error: String,
    },
}

/// One benchmark across the GPUs of a box: each GPU's median (None where it has no result), and
/// the GPUs more than [`DROP`] behind the median of all of them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    pub label: String,
    pub spec: Spec,
    pub unit: Unit,
    /// By GPU, in the order given.
    pub medians: Vec<Option<f64>>,
    /// The median of the GPUs' medians.
    pub median: f64,
    /// (GPU, how far behind, as a fraction).
    pub behind: Vec<(usize, f64)>,
}

/// A result worse than this fraction below its GPU's median history is flagged.
pub const DROP: f64 = 0.05;

/// How far `value` falls short of the median of `past` results of the same benchmark on the
/// same GPU, as a fraction, when that is more than [`DROP`]. Lower is worse for throughputs,
/// higher for latencies.
pub fn drop_below(value: f64, unit: Unit, past: &[f64]) -> Option<f64> {
    let med = median(past)?;
    if med == 0.0 {
        return None;
    }
    let short = if unit.higher_is_better() {
        (med - value) / med
    } else {
        (value - med) / med
    };
    (short > DROP).then_some(short)
}

/// A stored result.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredBench {
    pub id: String,
    pub started_ms: i64,
    pub host: String,
    pub backend: String,
    pub device: String,
    pub device_uuid: String,
    pub driver: String,
    pub cuda: String,
    pub spec: Spec,
    pub unit: Unit,
    pub stats: Stats,
    pub peak: Option<f64>,
    pub pct_of_peak: Option<f64>,
    pub check_ok: Option<bool>,
    pub max_rel_err: Option<f64>,
    pub conditions: Option<Conditions>,
}

/// `256 MiB`).
fn transfer_size(n: u64) -> String {
    if n >= 1 << 30 && n.is_multiple_of(1 << 30) {
        format!("{} GiB", n >> 30)
    } else {
        format!("{} MiB", n >> 20)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transfer_sizes_read_as_chosen() {
        assert_eq!(transfer_size(1 << 30), "1 GiB");
        assert_eq!(transfer_size(256 << 20), "256 MiB");
        assert_eq!(
            Spec::other(Kind::Membw, 1 << 30, "sm-triad").label(),
            "membw sm-triad 1 GiB"
        );
    }
}
