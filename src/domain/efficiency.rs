//! How much work a run did on its GPUs, how close it came to their peak, and what it cost: the
//! formulas of docs/efficiency.md, without I/O. The supervisor (capture) and `gantry serve` feed
//! them samples; what they derive is stored as the run's `gantry/…` metrics, so the runs table,
//! filters, comparisons and the MLflow API see them as any other metric.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::bench::{Kind, Precision, StoredBench, TensorPeaks};

/// The metrics gantry derives for a run.
pub mod keys {
    /// Achieved TFLOP/s over each sample interval.
    pub const TFLOPS: &str = "gantry/tflops";
    /// Model FLOPs utilisation, percent of the datasheet peak of the run's GPUs.
    pub const MFU: &str = "gantry/mfu";
    /// MFU, percent of the median of the GPUs' own GEMM results in the bench history.
    pub const MFU_MEASURED: &str = "gantry/mfu_measured";
    /// The run's share of its GPUs' energy, Wh, cumulative.
    pub const ENERGY_WH: &str = "gantry/energy_wh";
    /// Hours each GPU held memory for the run, summed over GPUs, cumulative.
    pub const GPU_HOURS: &str = "gantry/gpu_hours";
    /// The run's share of its GPUs' power over the last interval, W.
    pub const POWER_W: &str = "gantry/power_w";
    /// The run's share of the host CPU packages' energy (RAPL), Wh, cumulative.
    pub const CPU_ENERGY_WH: &str = "gantry/cpu_energy_wh";
    /// Energy and GPU-hours at the configured prices, cumulative.
    pub const COST: &str = "gantry/cost";
    pub const ALL: [&str; 8] = [
        TFLOPS,
        MFU,
        MFU_MEASURED,
        ENERGY_WH,
        GPU_HOURS,
        POWER_W,
        CPU_ENERGY_WH,
        COST,
    ];
}

/// The tag holding a run's hardware provenance (JSON of `Hardware`).
pub const HARDWARE_TAG: &str = "gantry.hardware";
/// The tag naming the currency of `gantry/cost`.
pub const CURRENCY_TAG: &str = "gantry.currency";

/// Tags gantry keeps for itself, shown in their own words rather than as `key=value`.
pub fn is_internal_tag(k: &str) -> bool {
    k == HARDWARE_TAG
        || k == CURRENCY_TAG
        || k == super::preflight::TAG
        || k == super::flight::TAG
        || k.starts_with(super::alerts::TAG_PREFIX)
}

/// How a run declared the work of one step.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "from", rename_all = "snake_case")]
pub enum Work {
    /// `flops_per_step`, a param or a metric (`gantry: flops_per_step=…`).
    FlopsPerStep { flops: f64 },
    /// `tokens_per_step` and `n_params`: 6·N·T.
    SixNt { tokens: f64, params: f64 },
    /// A metric `perf/flops`: the FLOPs of each logged step, summed.
    Logged,
}

/// The names a run declares its work with.
pub const FLOPS_PER_STEP: &str = "flops_per_step";
pub const TOKENS_PER_STEP: &str = "tokens_per_step";
pub const N_PARAMS: &str = "n_params";
pub const PERF_FLOPS: &str = "perf/flops";
pub const PRECISION: &str = "precision";

/// 6·N·T: the FLOPs of one training step of a dense transformer with `n_params` parameters over
/// `tokens` tokens (forward 2·N·T, backward 4·N·T). It leaves out attention's own FLOPs (about
/// 12·layers·d·seq per token), recomputation and the optimizer, so it under-counts long contexts
/// and over-counts mixtures of experts (give the active parameters there).
pub fn six_n_t(n_params: f64, tokens: f64) -> f64 {
    6.0 * n_params * tokens
}

impl Work {
    /// The run's work from a lookup of its params and metrics by name (a metric's last value
    /// wins over a param), and whether `perf/flops` was logged.
    pub fn declared(get: impl Fn(&str) -> Option<f64>, logged: bool) -> Option<Work> {
        let pos = |k: &str| get(k).filter(|v| v.is_finite() && *v > 0.0);
        if let Some(flops) = pos(FLOPS_PER_STEP) {
            return Some(Work::FlopsPerStep { flops });
        }
        if let (Some(tokens), Some(params)) = (pos(TOKENS_PER_STEP), pos(N_PARAMS)) {
            return Some(Work::SixNt { tokens, params });
        }
        logged.then_some(Work::Logged)
    }

    /// FLOPs per step, where constant.
    pub fn flops_per_step(&self) -> Option<f64> {
        match self {
            Work::FlopsPerStep { flops } => Some(*flops),
            Work::SixNt { tokens, params } => Some(six_n_t(*params, *tokens)),
            Work::Logged => None,
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Work::FlopsPerStep { flops } => format!("flops_per_step = {flops:.3e}"),
            Work::SixNt { tokens, params } => format!(
                "6·N·T = 6 × {params:.3e} params × {tokens:.0} tokens = {:.3e} FLOPs/step",
                six_n_t(*params, *tokens)
            ),
            Work::Logged => "perf/flops, logged each step".into(),
        }
    }
}

/// The precision a run declares (`precision`), bf16 when it declares none.
pub fn precision(declared: Option<&str>) -> Result<Precision, String> {
    match declared.map(|s| s.trim().to_ascii_lowercase()) {
        None => Ok(Precision::Bf16),
        Some(s) => {
            let s = match s.as_str() {
                "bfloat16" | "torch.bfloat16" => "bf16".to_string(),
                "float16" | "half" | "torch.float16" => "fp16".to_string(),
                "float32" | "torch.float32" => "fp32".to_string(),
                _ => s,
            };
            Precision::parse(&s).ok_or_else(|| {
                format!("precision {s:?} is not one of bf16, fp16, tf32, fp32, fp64")
            })
        }
    }
}

/// The datasheet's dense peak at `p`, FLOP/s; None where the table has none (FP32 and FP64 are
/// not in the tensor table: no datasheet MFU for them).
pub fn datasheet_peak(t: &TensorPeaks, p: Precision) -> Option<f64> {
    match p {
        Precision::Bf16 => t.bf16,
        Precision::Fp16 => Some(t.fp16),
        Precision::Tf32 => t.tf32,
        Precision::Fp32 | Precision::Fp64 => None,
    }
}

/// A GPU's own measured peak: the median of its GEMM results at one precision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Measured {
    /// FLOP/s.
    pub flops: f64,
    /// How many results it is the median of.
    pub results: usize,
    /// When the newest of them ran, ms since the epoch.
    pub newest_ms: i64,
}

/// The median of the GEMM results at `p` in `history` (one GPU's), checked results only (a
/// result whose check failed is no peak).
pub fn measured_peak(history: &[StoredBench], p: Precision) -> Option<Measured> {
    let picked: Vec<&StoredBench> = history
        .iter()
        .filter(|b| b.spec.kind == Kind::Gemm && b.spec.precision == Some(p))
        .filter(|b| b.check_ok != Some(false) && b.stats.median.is_finite())
        .collect();
    let values: Vec<f64> = picked.iter().map(|b| b.stats.median * 1e12).collect();
    Some(Measured {
        flops: super::bench::median(&values)?,
        results: values.len(),
        newest_ms: picked.iter().map(|b| b.started_ms).max()?,
    })
}

/// The median of a GPU's memory-bandwidth results, GB/s.
pub fn measured_membw(history: &[StoredBench]) -> Option<(f64, i64)> {
    let picked: Vec<&StoredBench> = history
        .iter()
        .filter(|b| b.spec.kind == Kind::Membw && b.check_ok != Some(false))
        .collect();
    let values: Vec<f64> = picked.iter().map(|b| b.stats.median).collect();
    Some((
        super::bench::median(&values)?,
        picked.iter().map(|b| b.started_ms).max()?,
    ))
}

/// MFU in percent: achieved over peak, both FLOP/s.
pub fn mfu_percent(achieved: f64, peak: f64) -> Option<f64> {
    (peak > 0.0 && achieved.is_finite()).then(|| achieved / peak * 100.0)
}

/// The run's share of one GPU over an interval, from the processes on it: `(is the run's, SM
/// utilisation %, memory bytes)`. By SM utilisation where any process has a sample; else by
/// memory; else an equal share per process.
pub fn run_share(procs: &[(bool, Option<f64>, Option<u64>)]) -> f64 {
    if !procs.iter().any(|p| p.0) {
        return 0.0;
    }
    let sm_all: f64 = procs.iter().filter_map(|p| p.1).sum();
    if sm_all > 0.0 {
        let run: f64 = procs.iter().filter(|p| p.0).filter_map(|p| p.1).sum();
        return (run / sm_all).clamp(0.0, 1.0);
    }
    let mem_all: u64 = procs.iter().filter_map(|p| p.2).sum();
    if mem_all > 0 {
        let run: u64 = procs.iter().filter(|p| p.0).filter_map(|p| p.2).sum();
        return (run as f64 / mem_all as f64).clamp(0.0, 1.0);
    }
    procs.iter().filter(|p| p.0).count() as f64 / procs.len() as f64
}

/// How an energy counter moved between two reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CounterStep {
    Advanced(u64),
    /// Past its largest value and round from zero.
    Wrapped(u64),
    /// Backwards: the driver was reloaded or the GPU reset, and the counter began again. What
    /// the interval used is unknown from the counter.
    Reset,
}

/// The step of a counter that wraps after `max` (u64::MAX for NVML's; RAPL's
/// `max_energy_range_uj`). A backwards move is a wrap only when the old value was in the top
/// quarter of the range and the new one in the bottom quarter: anything else is a reset.
pub fn counter_step(prev: u64, now: u64, max: u64) -> CounterStep {
    if now >= prev {
        return CounterStep::Advanced(now - prev);
    }
    let quarter = max / 4;
    if prev > max - quarter && now < quarter {
        CounterStep::Wrapped(max - prev + now + 1)
    } else {
        CounterStep::Reset
    }
}

/// One GPU's accounting for a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct GpuEnergy {
    /// The run's share, joules.
    pub run_j: f64,
    /// The whole GPU over the same intervals, joules.
    pub gpu_j: f64,
    /// Seconds the run held memory on it.
    pub held_s: f64,
    /// Intervals measured by the counter, by power × time (no counter, or after a reset), and
    /// those with neither.
    pub counted: u64,
    pub estimated: u64,
    pub unknown: u64,
    pub resets: u64,
    #[serde(skip)]
    last: Option<Reading>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Reading {
    energy_mj: Option<u64>,
    at_us: i64,
    power_w: Option<f64>,
}

/// One read of a GPU, for `EnergyMeter::observe`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GpuRead {
    pub energy_mj: Option<u64>,
    /// When it was read, µs since the epoch.
    pub at_us: i64,
    pub power_w: Option<f64>,
    /// The run's share of the GPU since the last read (`run_share`).
    pub share: f64,
    /// Whether the run held memory on it.
    pub held: bool,
}

/// Energy and GPU time of a run, per GPU by UUID.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct EnergyMeter {
    pub gpus: BTreeMap<String, GpuEnergy>,
}

impl EnergyMeter {
    /// Account the interval since the GPU's previous read. The first read of a GPU only sets
    /// where counting starts.
    pub fn observe(&mut self, uuid: &str, r: GpuRead) {
        let g = self.gpus.entry(uuid.to_string()).or_default();
        let now = Reading {
            energy_mj: r.energy_mj,
            at_us: r.at_us,
            power_w: r.power_w,
        };
        let Some(prev) = g.last.replace(now) else {
            return;
        };
        let dt = (r.at_us - prev.at_us) as f64 / 1e6;
        if dt <= 0.0 {
            return;
        }
        if r.held {
            g.held_s += dt;
        }
        let by_power = match (prev.power_w, r.power_w) {
            (Some(a), Some(b)) => Some((a + b) / 2.0 * dt),
            (None, Some(p)) | (Some(p), None) => Some(p * dt),
            (None, None) => None,
        };
        let joules = match (prev.energy_mj, r.energy_mj) {
            (Some(a), Some(b)) => match counter_step(a, b, u64::MAX) {
                CounterStep::Advanced(d) | CounterStep::Wrapped(d) => {
                    g.counted += 1;
                    Some(d as f64 / 1000.0)
                }
                CounterStep::Reset => {
                    g.resets += 1;
                    by_power.inspect(|_| g.estimated += 1)
                }
            },
            _ => by_power.inspect(|_| g.estimated += 1),
        };
        match joules {
            Some(j) => {
                g.gpu_j += j;
                g.run_j += j * r.share.clamp(0.0, 1.0);
            }
            None => g.unknown += 1,
        }
    }

    /// The run's energy, Wh, over all its GPUs.
    pub fn run_wh(&self) -> f64 {
        self.gpus.values().map(|g| g.run_j).sum::<f64>() / 3600.0
    }

    /// GPU-hours: the hours each GPU held memory for the run, summed.
    pub fn gpu_hours(&self) -> f64 {
        self.gpus.values().map(|g| g.held_s).sum::<f64>() / 3600.0
    }
}

/// What energy and GPU time cost (`[cost]` in the config).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Prices {
    /// Per kWh of energy (GPU and, where read, CPU).
    pub price_per_kwh: Option<f64>,
    /// Per GPU-hour (a cloud's hourly price divided by its GPUs).
    pub gpu_hour_price: Option<f64>,
    /// Shown beside costs: "USD", "EUR", "€".
    pub currency: Option<String>,
}

impl Prices {
    /// The cost of `energy_wh` and `gpu_hours`; None where no price is set.
    pub fn cost(&self, energy_wh: f64, gpu_hours: f64) -> Option<f64> {
        if self.price_per_kwh.is_none() && self.gpu_hour_price.is_none() {
            return None;
        }
        Some(
            self.price_per_kwh.unwrap_or(0.0) * energy_wh / 1000.0
                + self.gpu_hour_price.unwrap_or(0.0) * gpu_hours,
        )
    }

    pub fn currency(&self) -> &str {
        self.currency.as_deref().unwrap_or("")
    }
}

/// The hardware a run ran on: its tag `gantry.hardware`, carried by the model versions it made.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Hardware {
    pub host: String,
    pub gpus: Vec<HardwareGpu>,
}

/// One GPU of a run, as it was when the run first used it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HardwareGpu {
    pub name: String,
    pub uuid: String,
    pub driver: Option<String>,
    pub cuda: Option<String>,
    pub power_limit_w: Option<f64>,
    pub pcie_gen: Option<u32>,
    pub pcie_width: Option<u32>,
    /// The latest bench results of this GPU when the run started: its fingerprint.
    pub bench: Option<Fingerprint>,
}

/// A GPU's bench fingerprint: the medians of its bf16 GEMM and memory-bandwidth results.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Fingerprint {
    pub gemm_bf16_tflops: Option<f64>,
    pub membw_gbs: Option<f64>,
    /// The newest result's time, ms since the epoch.
    pub at_ms: i64,
}

impl Fingerprint {
    /// From one GPU's bench history; None where it has neither result.
    pub fn of(history: &[StoredBench]) -> Option<Fingerprint> {
        let gemm = measured_peak(history, Precision::Bf16);
        let bw = measured_membw(history);
        if gemm.is_none() && bw.is_none() {
            return None;
        }
        Some(Fingerprint {
            gemm_bf16_tflops: gemm.as_ref().map(|m| m.flops / 1e12),
            membw_gbs: bw.map(|b| b.0),
            at_ms: gemm
                .map(|m| m.newest_ms)
                .into_iter()
                .chain(bw.map(|b| b.1))
                .max()
                .unwrap_or(0),
        })
    }
}

impl Hardware {
    pub fn parse(tag: &str) -> Option<Hardware> {
        serde_json::from_str(tag).ok()
    }

    /// "2× NVIDIA H200": the GPU models and how many of each.
    pub fn summary(&self) -> String {
        let mut counts: Vec<(&str, usize)> = Vec::new();
        for g in &self.gpus {
            match counts.iter_mut().find(|(n, _)| *n == g.name) {
                Some(c) => c.1 += 1,
                None => counts.push((&g.name, 1)),
            }
        }
        counts
            .iter()
            .map(|(n, c)| {
                if *c > 1 {
                    format!("{c}× {n}")
                } else {
                    n.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join(" + ")
    }
}

/// The efficiency figures of a run as its metrics hold them, for the overview, `show` and the
/// models view: each the last value of its `gantry/…` metric.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RunEfficiency {
    pub tflops: Option<f64>,
    pub mfu: Option<f64>,
    pub mfu_measured: Option<f64>,
    pub energy_wh: Option<f64>,
    pub gpu_hours: Option<f64>,
    pub cpu_energy_wh: Option<f64>,
    pub cost: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
}

impl RunEfficiency {
    /// From a run's record: its `gantry/…` metrics (TFLOP/s and MFU as medians over the run
    /// are not in a summary: the last interval's value is shown) and its currency tag.
    pub fn of(r: &super::RunRecord) -> RunEfficiency {
        Self::from_lasts(
            |k| r.metrics.get(k).and_then(|s| s.last),
            r.tags.get(CURRENCY_TAG).cloned(),
        )
    }

    /// From the last value of each metric, as `last` gives them.
    pub fn from_lasts(last: impl Fn(&str) -> Option<f64>, currency: Option<String>) -> Self {
        RunEfficiency {
            tflops: last(keys::TFLOPS),
            mfu: last(keys::MFU),
            mfu_measured: last(keys::MFU_MEASURED),
            energy_wh: last(keys::ENERGY_WH),
            gpu_hours: last(keys::GPU_HOURS),
            cpu_energy_wh: last(keys::CPU_ENERGY_WH),
            cost: last(keys::COST),
            currency,
        }
    }

    pub fn is_empty(&self) -> bool {
        *self == RunEfficiency::default()
    }

    /// Sum of several runs' energy, GPU-hours and cost (a model's lineage).
    pub fn add(&mut self, o: &RunEfficiency) {
        fn plus(a: &mut Option<f64>, b: Option<f64>) {
            if let Some(b) = b {
                *a = Some(a.unwrap_or(0.0) + b);
            }
        }
        plus(&mut self.energy_wh, o.energy_wh);
        plus(&mut self.gpu_hours, o.gpu_hours);
        plus(&mut self.cpu_energy_wh, o.cpu_energy_wh);
        plus(&mut self.cost, o.cost);
        if self.currency.is_none() {
            self.currency.clone_from(&o.currency);
        }
    }
}

/// What a run's metric stream says about its progress: the latest step and when it was logged,
/// the FLOPs logged through `perf/flops`, and the work values declared as metrics. The ingest
/// keeps one per metrics file; the supervisor merges them at each sample.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StepClock {
    pub step: Option<i64>,
    pub time_ms: i64,
    pub logged_flops: f64,
    pub logged: bool,
    /// The last `flops_per_step`, `tokens_per_step` and `n_params` logged as metrics.
    pub declared: BTreeMap<&'static str, f64>,
    /// How many NaN or Inf points were stored, and the latest: (key, step).
    pub nonfinite: (u64, Option<(String, i64)>),
    /// Loss-like metrics (names ending in `loss`): (last, best) of the finite values.
    pub losses: BTreeMap<String, (f64, f64)>,
}

impl StepClock {
    /// A run's progress as the store's metric summaries tell it, for a watcher that does not
    /// read the metric stream (`gantry serve`'s runs): the newest step and when this watcher
    /// first saw it (`prev`), each loss-like metric's last and best, and the metrics whose last
    /// value is NaN or infinite, each (metric, step) counted once in `seen`.
    pub fn from_summaries<'a>(
        metrics: impl Iterator<Item = &'a crate::domain::SeriesSummary>,
        prev: &StepClock,
        now_ms: i64,
        seen: &mut std::collections::BTreeSet<(String, i64)>,
    ) -> StepClock {
        let mut c = StepClock {
            nonfinite: prev.nonfinite.clone(),
            ..StepClock::default()
        };
        for m in metrics.filter(|m| !m.key.starts_with("gantry/")) {
            let (Some(step), Some(last)) = (m.last_step, m.last) else {
                continue;
            };
            c.step = c.step.max(Some(step));
            if !last.is_finite() {
                if seen.insert((m.key.clone(), step)) {
                    c.nonfinite.0 += 1;
                    c.nonfinite.1 = Some((m.key.clone(), step));
                }
            } else if m.key.ends_with("loss") {
                let best = m
                    .min
                    .filter(|b| b.is_finite())
                    .map_or(last, |b| b.min(last));
                c.losses.insert(m.key.clone(), (last, best));
            }
        }
        c.time_ms = if c.step.is_some() && c.step == prev.step {
            prev.time_ms
        } else {
            now_ms
        };
        c
    }

    /// One metric point as stored.
    #[inline]
    pub fn see(&mut self, key: &str, step: i64, time_ms: i64, value: f64) {
        if self.step.is_none_or(|s| step > s) {
            self.step = Some(step);
            self.time_ms = time_ms;
        }
        if !value.is_finite() {
            self.nonfinite.0 += 1;
            self.nonfinite.1 = Some((key.to_string(), step));
        } else if key.ends_with("loss") {
            match self.losses.get_mut(key) {
                Some((last, best)) => {
                    *last = value;
                    *best = best.min(value);
                }
                None => {
                    self.losses.insert(key.to_string(), (value, value));
                }
            }
        }
        if key.len() < 8 || !matches!(key.as_bytes()[0], b'f' | b't' | b'n' | b'p') {
            return;
        }
        match key {
            PERF_FLOPS if value.is_finite() && value > 0.0 => {
                self.logged_flops += value;
                self.logged = true;
            }
            FLOPS_PER_STEP => {
                self.declared.insert(FLOPS_PER_STEP, value);
            }
            TOKENS_PER_STEP => {
                self.declared.insert(TOKENS_PER_STEP, value);
            }
            N_PARAMS => {
                self.declared.insert(N_PARAMS, value);
            }
            _ => {}
        }
    }

    /// Several files' clocks as one.
    pub fn merge(&mut self, o: &StepClock) {
        if let Some(s) = o.step
            && self.step.is_none_or(|m| s > m)
        {
            self.step = Some(s);
            self.time_ms = o.time_ms;
        }
        self.logged_flops += o.logged_flops;
        self.logged |= o.logged;
        self.nonfinite.0 += o.nonfinite.0;
        if o.nonfinite.1.is_some() {
            self.nonfinite.1.clone_from(&o.nonfinite.1);
        }
        for (k, (last, best)) in &o.losses {
            let e = self.losses.entry(k.clone()).or_insert((*last, *best));
            *e = (*last, e.1.min(*best));
        }
        for (k, v) in &o.declared {
            self.declared.insert(k, *v);
        }
    }
}

/// Achieved FLOP/s between two samples: the work done since the previous sample over the time
/// between the steps' log times (not the samples' times: a step logged late is not counted slow).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Throughput {
    prev: Option<(f64, i64)>,
}

impl Throughput {
    /// FLOP/s since the previous call; None at the first, or when no step was logged since.
    pub fn tick(&mut self, clock: &StepClock, work: &Work) -> Option<f64> {
        let done = match work {
            Work::Logged => clock.logged_flops,
            w => clock.step? as f64 * w.flops_per_step()?,
        };
        let now = (done, clock.time_ms);
        let Some(prev) = self.prev else {
            self.prev = Some(now);
            return None;
        };
        let (df, dt) = (now.0 - prev.0, (now.1 - prev.1) as f64 / 1000.0);
        if dt <= 0.0 || df <= 0.0 {
            // No step since: keep the older mark, so the next interval spans the stall.
            if df < 0.0 {
                self.prev = Some(now);
            }
            return None;
        }
        self.prev = Some(now);
        Some(df / dt)
    }
}

/// Energy for people: "850 Wh", "2.41 kWh", "1.20 MWh".
pub fn energy_text(wh: f64) -> String {
    if wh >= 1e6 {
        format!("{:.2} MWh", wh / 1e6)
    } else if wh >= 1e3 {
        format!("{:.2} kWh", wh / 1e3)
    } else if wh >= 10.0 {
        format!("{wh:.0} Wh")
    } else {
        format!("{wh:.2} Wh")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clock_from_the_stores_summaries() {
        use crate::domain::SeriesSummary;
        let m = |key: &str, step: i64, last: f64, min: f64| SeriesSummary {
            key: key.into(),
            n_points: 10,
            last_step: Some(step),
            last: Some(last),
            min: Some(min),
            max: Some(last),
            min_step: None,
            max_step: None,
        };
        let mut seen = std::collections::BTreeSet::new();
        let a = [m("train/loss", 10, 2.0, 0.5), m("gantry/mfu", 99, 0.3, 0.3)];
        let c = StepClock::from_summaries(a.iter(), &StepClock::default(), 1_000, &mut seen);
        assert_eq!((c.step, c.time_ms), (Some(10), 1_000));
        assert_eq!(c.losses["train/loss"], (2.0, 0.5));
        // No new step: the time stays the one it was first seen at (a stall is measured from it).
        let same = StepClock::from_summaries(a.iter(), &c, 9_000, &mut seen);
        assert_eq!(same.time_ms, 1_000);
        let b = [m("train/loss", 11, f64::NAN, 0.5)];
        let nan = StepClock::from_summaries(b.iter(), &same, 10_000, &mut seen);
        assert_eq!(nan.nonfinite, (1, Some(("train/loss".into(), 11))));
        // The same NaN again is not counted twice.
        let again = StepClock::from_summaries(b.iter(), &nan, 11_000, &mut seen);
        assert_eq!(again.nonfinite.0, 1);
    }
    use crate::domain::bench::{Spec, Stats, Unit};

    fn bench(kind: Kind, p: Option<Precision>, median: f64, at: i64, ok: bool) -> StoredBench {
        StoredBench {
            id: format!("b{at}"),
            started_ms: at,
            host: "h".into(),
            backend: "cuda".into(),
            device: "NVIDIA H200".into(),
            device_uuid: "GPU-1".into(),
            driver: String::new(),
            cuda: String::new(),
            spec: Spec {
                kind,
                precision: p,
                size: 8192,
                variant: "cublas".into(),
            },
            unit: Unit::TflopS,
            stats: Stats {
                median,
                min: median,
                max: median,
                stddev: 0.0,
                reps: 5,
            },
            peak: None,
            pct_of_peak: None,
            check_ok: Some(ok),
            max_rel_err: None,
            conditions: None,
        }
    }

    #[test]
    fn six_n_t_counts_forward_and_backward() {
        // A 7B model over a 4M-token step: 6 × 7e9 × 4,194,304 = 1.7616e17 FLOPs.
        let f = six_n_t(7e9, 4_194_304.0);
        assert!((f - 1.761_607_68e17).abs() / f < 1e-9, "{f}");
        let get = |k: &str| match k {
            "tokens_per_step" => Some(4_194_304.0),
            "n_params" => Some(7e9),
            _ => None,
        };
        let w = Work::declared(get, false).unwrap();
        assert_eq!(w.flops_per_step(), Some(f));
        // A declared flops_per_step wins; perf/flops is the last resort; nothing is None.
        let both = |k: &str| {
            if k == "flops_per_step" {
                Some(1e15)
            } else {
                get(k)
            }
        };
        assert_eq!(
            Work::declared(both, true),
            Some(Work::FlopsPerStep { flops: 1e15 })
        );
        assert_eq!(Work::declared(|_| None, true), Some(Work::Logged));
        assert_eq!(Work::declared(|_| None, false), None);
        // Zero, negative or non-finite declarations are no declaration.
        assert_eq!(Work::declared(|_| Some(-1.0), false), None);
        assert_eq!(Work::declared(|_| Some(f64::NAN), false), None);
    }

    #[test]
    fn mfu_against_both_references() {
        let h200 = crate::domain::bench::TensorPeaks {
            tf32: Some(494.5e12),
            fp16: 989.5e12,
            bf16: Some(989.5e12),
            memory: Some(4.8e12),
            source: "test",
        };
        // 400 TFLOP/s achieved: 40.4% of the datasheet's 989.5.
        let ds = datasheet_peak(&h200, precision(None).unwrap()).unwrap();
        let m = mfu_percent(400e12, ds).unwrap();
        assert!((m - 40.424).abs() < 0.01, "{m}");
        // The GPU's own bf16 GEMM median over three results (710, 720, 700; one failed its
        // check and a fp16 result are left out): 710 TFLOP/s, so 56.3%.
        let h = [
            bench(Kind::Gemm, Some(Precision::Bf16), 710.0, 1, true),
            bench(Kind::Gemm, Some(Precision::Bf16), 720.0, 3, true),
            bench(Kind::Gemm, Some(Precision::Bf16), 700.0, 2, true),
            bench(Kind::Gemm, Some(Precision::Bf16), 100.0, 9, false),
            bench(Kind::Gemm, Some(Precision::Fp16), 900.0, 5, true),
            bench(Kind::Membw, None, 4100.0, 4, true),
        ];
        let measured = measured_peak(&h, Precision::Bf16).unwrap();
        assert_eq!(measured.results, 3);
        assert_eq!(measured.newest_ms, 3);
        assert!((measured.flops - 710e12).abs() < 1.0);
        let mm = mfu_percent(400e12, measured.flops).unwrap();
        assert!((mm - 56.338).abs() < 0.01, "{mm}");
        assert!(measured_peak(&h, Precision::Tf32).is_none());
        let fp = Fingerprint::of(&h).unwrap();
        assert_eq!(fp.gemm_bf16_tflops, Some(710.0));
        assert_eq!(fp.membw_gbs, Some(4100.0));
        assert_eq!(fp.at_ms, 4);
        // FP32 has no tensor-table peak; names of precisions are read as frameworks write them.
        assert_eq!(datasheet_peak(&h200, Precision::Fp32), None);
        assert_eq!(precision(Some("torch.bfloat16")), Ok(Precision::Bf16));
        assert!(precision(Some("fp8")).unwrap_err().contains("fp8"));
    }

    #[test]
    fn energy_is_split_between_two_processes_on_one_gpu() {
        // The run's process at 60% SM, another at 20%: the run gets 3/4.
        let s = run_share(&[(true, Some(60.0), Some(10)), (false, Some(20.0), Some(30))]);
        assert!((s - 0.75).abs() < 1e-12);
        // No SM samples: by memory, 10 of 40 GB.
        let s = run_share(&[(true, None, Some(10)), (false, None, Some(30))]);
        assert!((s - 0.25).abs() < 1e-12);
        // Neither: equal shares; not on the GPU: nothing.
        assert_eq!(run_share(&[(true, None, None), (false, None, None)]), 0.5);
        assert_eq!(run_share(&[(false, Some(50.0), None)]), 0.0);
        let mut m = EnergyMeter::default();
        let read = |mj, s: i64, share| GpuRead {
            energy_mj: Some(mj),
            at_us: s * 1_000_000,
            power_w: Some(500.0),
            share,
            held: true,
        };
        m.observe("GPU-1", read(1_000_000, 0, 0.75));
        // 10 s at 500 W: 5000 J on the GPU, 3750 J the run's.
        m.observe("GPU-1", read(6_000_000, 10, 0.75));
        let g = &m.gpus["GPU-1"];
        assert!((g.gpu_j - 5000.0).abs() < 1e-9 && (g.run_j - 3750.0).abs() < 1e-9);
        assert!((m.run_wh() - 3750.0 / 3600.0).abs() < 1e-12);
        assert!((m.gpu_hours() - 10.0 / 3600.0).abs() < 1e-12);
    }

    #[test]
    fn counter_wrapping_or_going_backwards_is_handled() {
        assert_eq!(counter_step(10, 25, u64::MAX), CounterStep::Advanced(15));
        assert_eq!(
            counter_step(u64::MAX - 4, 5, u64::MAX),
            CounterStep::Wrapped(10)
        );
        // RAPL's range is small: 262143328850 µJ on many CPUs.
        let max = 262_143_328_850;
        assert_eq!(counter_step(max - 100, 50, max), CounterStep::Wrapped(151));
        // Backwards from the middle: a driver reload, not a wrap.
        assert_eq!(counter_step(5_000_000, 1_000, u64::MAX), CounterStep::Reset);
        let mut m = EnergyMeter::default();
        let read = |mj, s: i64, power| GpuRead {
            energy_mj: mj,
            at_us: s * 1_000_000,
            power_w: power,
            share: 1.0,
            held: true,
        };
        m.observe("G", read(Some(9_000_000), 0, Some(300.0)));
        m.observe("G", read(Some(12_000_000), 10, Some(300.0)));
        // The reset's interval is estimated from power: 10 s at 300 W, never a negative or a
        // whole counter's worth.
        m.observe("G", read(Some(1_000), 20, Some(300.0)));
        m.observe("G", read(Some(3_001_000), 30, Some(300.0)));
        // The counter gone: the power read at one end of the interval stands for it; with no
        // power at either end the interval is unknown, and not counted.
        m.observe("G", read(None, 40, None));
        m.observe("G", read(None, 50, None));
        let g = &m.gpus["G"];
        assert_eq!((g.counted, g.estimated, g.resets, g.unknown), (2, 2, 1, 1));
        assert!((g.gpu_j - 12000.0).abs() < 1e-9, "{}", g.gpu_j);
        assert!((g.held_s - 50.0).abs() < 1e-9);
    }

    #[test]
    fn throughput_from_steps_or_logged_flops() {
        let mut c = StepClock::default();
        let mut t = Throughput::default();
        let w = Work::FlopsPerStep { flops: 2e12 };
        c.see("loss", 10, 1_000, 1.0);
        assert_eq!(t.tick(&c, &w), None);
        // 50 steps in 2 s at 2 TFLOP each: 50 TFLOP/s.
        c.see("loss", 60, 3_000, 1.0);
        assert_eq!(t.tick(&c, &w), Some(50e12));
        // No step since: nothing, and the stall is in the next interval.
        assert_eq!(t.tick(&c, &w), None);
        c.see("loss", 70, 5_000, 1.0);
        assert_eq!(t.tick(&c, &w), Some(10e12));
        // perf/flops: the logged FLOPs over the time.
        let mut c = StepClock::default();
        let mut t = Throughput::default();
        c.see("perf/flops", 1, 0, 1e12);
        assert!(c.logged);
        t.tick(&c, &Work::Logged);
        c.see("perf/flops", 2, 500, 3e12);
        assert_eq!(t.tick(&c, &Work::Logged), Some(6e12));
        c.see("tokens_per_step", 2, 500, 4096.0);
        let mut m = StepClock::default();
        m.merge(&c);
        assert_eq!(m.declared.get(TOKENS_PER_STEP), Some(&4096.0));
        assert_eq!(m.step, Some(2));
    }

    #[test]
    fn costs_hardware_and_texts() {
        let p = Prices {
            price_per_kwh: Some(0.30),
            gpu_hour_price: Some(2.0),
            currency: Some("EUR".into()),
        };
        // 2 kWh and 3 GPU-hours: 0.60 + 6.00.
        assert!((p.cost(2000.0, 3.0).unwrap() - 6.6).abs() < 1e-12);
        assert_eq!(Prices::default().cost(1.0, 1.0), None);
        assert_eq!(energy_text(850.0), "850 Wh");
        assert_eq!(energy_text(2410.0), "2.41 kWh");
        assert_eq!(energy_text(1.5), "1.50 Wh");
        let hw = Hardware {
            host: "a".into(),
            gpus: vec![
                HardwareGpu {
                    name: "NVIDIA H200".into(),
                    ..Default::default()
                },
                HardwareGpu {
                    name: "NVIDIA H200".into(),
                    ..Default::default()
                },
            ],
        };
        assert_eq!(hw.summary(), "2× NVIDIA H200");
        let back = Hardware::parse(&serde_json::to_string(&hw).unwrap()).unwrap();
        assert_eq!(back, hw);
    }
}
