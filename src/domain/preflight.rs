//! The preflight check before a run (`gantry run --preflight`): its settings, what it found on
//! each GPU and benchmark, and the judgement, all pure. `capture::preflight` measures; this file
//! says what counts as degraded. docs/preflight.md explains the checks.

use serde::{Deserialize, Serialize};

use super::bench::Unit;

/// What a degraded GPU does to the run: refuse to start it, or start it tagged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Block,
    Warn,
}

impl Mode {
    pub fn parse(s: &str) -> Option<Mode> {
        match s {
            "block" => Some(Mode::Block),
            "warn" => Some(Mode::Warn),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Block => "block",
            Mode::Warn => "warn",
        }
    }
}

/// `[preflight]` in the config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// A benchmark more than this fraction below its GPU's median is degraded.
    pub tolerance: f64,
    /// Seconds the whole check may take (`--preflight-secs`).
    pub seconds: f64,
    /// Past results a benchmark needs before its speed is judged: fewer, and it only builds
    /// history.
    pub min_history: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            tolerance: 0.05,
            seconds: 30.0,
            min_history: 3,
        }
    }
}

impl Settings {
    /// Why a setting cannot be used, if one cannot.
    pub fn problem(&self) -> Option<String> {
        if !(self.tolerance > 0.0 && self.tolerance < 1.0) {
            return Some(format!(
                "[preflight] tolerance = {} is not a fraction: give one between 0 and 1, such as 0.05",
                self.tolerance
            ));
        }
        if !(1.0..=3600.0).contains(&self.seconds) {
            return Some(format!(
                "[preflight] seconds = {} is out of range: give 1 to 3600",
                self.seconds
            ));
        }
        None
    }
}

/// One GPU's facts, read from NVML (or a recording) before and after the benchmarks.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GpuCheck {
    pub index: u32,
    pub name: String,
    pub uuid: String,
    /// The best link seen (at rest, or under the benchmarks' load) and the most it can train to.
    pub pcie_gen: Option<u32>,
    pub pcie_width: Option<u32>,
    pub pcie_gen_max: Option<u32>,
    pub pcie_width_max: Option<u32>,
    pub ecc_uncorrected: Option<u64>,
    /// The same counts at this GPU's last preflight, where there was one.
    pub ecc_before: Option<u64>,
    pub retired_pages: Option<u64>,
    pub retired_before: Option<u64>,
    pub retired_pending: Option<bool>,
    pub xids: Vec<u64>,
    /// Other processes on the GPU when the check began: their work slows its benchmarks.
    pub other_processes: Option<usize>,
}

/// One benchmark's result against its GPU's history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchCheck {
    /// "GPU 0" or "CPU", and the device's name and UUID.
    pub device: String,
    pub name: String,
    pub uuid: String,
    pub label: String,
    pub unit: Unit,
    pub value: f64,
    /// The median of the past results of the same benchmark on the same device, and how many.
    pub median: Option<f64>,
    pub past: usize,
    pub correct: bool,
    /// The clocks, power and temperature while it ran ("1410 MHz 700 W 83C").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<String>,
    /// What held the clocks down ("power cap"), empty when nothing did.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub held_by: String,
}

impl BenchCheck {
    /// How far below its median, as a fraction (negative: faster).
    pub fn short(&self) -> Option<f64> {
        let med = self.median?;
        if med == 0.0 {
            return None;
        }
        Some(if self.unit.higher_is_better() {
            (med - self.value) / med
        } else {
            (self.value - med) / med
        })
    }
}

/// What makes a GPU degraded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    Slow,
    Wrong,
    Pcie,
    Retired,
    Ecc,
    Xid,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    pub kind: FindingKind,
    pub uuid: String,
    /// In words, naming the device: "GPU 0 (NVIDIA H200): bf16 GEMM 8192 at 612 TFLOP/s, 14%
    /// below its median of 712; clocks held down by power cap".
    pub text: String,
}

/// How the check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Nothing found.
    Passed,
    /// Something found, and the run started (warn).
    Degraded,
    /// Something found, and the run was refused (block).
    Refused,
    /// Nothing could be benchmarked (no CUDA); the facts NVML gave were still judged.
    Unchecked,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Passed => "passed",
            Outcome::Degraded => "degraded",
            Outcome::Refused => "refused",
            Outcome::Unchecked => "unchecked",
        }
    }
}

/// The whole check, kept with the run as its `gantry.preflight` tag.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub checked_ms: i64,
    pub mode: Mode,
    pub seconds: f64,
    /// "cuda", "cpu" or "none".
    pub backend: String,
    pub outcome: Outcome,
    pub gpus: Vec<GpuCheck>,
    pub benchmarks: Vec<BenchCheck>,
    pub findings: Vec<Finding>,
    /// Why something was not checked (no CUDA, out of time), in words.
    #[serde(default)]
    pub notes: Vec<String>,
}

/// The tag a run's preflight report is kept in, and the one that says its outcome.
pub const TAG: &str = "gantry.preflight";
pub const OUTCOME_TAG: &str = "preflight";

impl Report {
    /// Judge what was measured: the findings, and the outcome under `mode`.
    pub fn judge(&mut self, settings: &Settings) {
        self.findings = findings(&self.gpus, &self.benchmarks, settings);
        self.outcome = if !self.findings.is_empty() {
            match self.mode {
                Mode::Block => Outcome::Refused,
                Mode::Warn => Outcome::Degraded,
            }
        } else if self.backend == "none" {
            Outcome::Unchecked
        } else {
            Outcome::Passed
        };
    }
}

/// A measured figure as people read one: 612, 24.8, 3.07.
pub fn fig(x: f64) -> String {
    match x.abs() {
        a if a >= 100.0 => format!("{x:.0}"),
        a if a >= 10.0 => format!("{x:.1}"),
        _ => format!("{x:.2}"),
    }
}

/// "GPU 0 (NVIDIA H200)".
fn gpu_name(g: &GpuCheck) -> String {
    format!("GPU {} ({})", g.index, g.name)
}

/// "Gen5 x16", with what is known.
pub fn link(generation: Option<u32>, width: Option<u32>) -> String {
    match (generation, width) {
        (Some(g), Some(w)) => format!("Gen{g} x{w}"),
        (Some(g), None) => format!("Gen{g}"),
        (None, Some(w)) => format!("x{w}"),
        (None, None) => "unknown".into(),
    }
}

/// Everything that makes a GPU degraded, in the order found: its benchmarks (slow, wrong), then
/// its facts (PCIe link, retired memory, ECC errors, XIDs).
pub fn findings(gpus: &[GpuCheck], benches: &[BenchCheck], s: &Settings) -> Vec<Finding> {
    let mut out = Vec::new();
    for b in benches {
        let who = format!("{} ({})", b.device, b.name);
        if !b.correct {
            out.push(Finding {
                kind: FindingKind::Wrong,
                uuid: b.uuid.clone(),
                text: format!(
                    "{who}: {} computed a wrong result: the GPU or its libraries are faulty",
                    b.label
                ),
            });
            continue;
        }
        if b.past < s.min_history {
            continue;
        }
        let (Some(short), Some(med)) = (b.short(), b.median) else {
            continue;
        };
        if short > s.tolerance {
            let mut text = format!(
                "{who}: {} at {} {}, {:.0}% below its median of {} ({} runs)",
                b.label,
                fig(b.value),
                b.unit.as_str(),
                short * 100.0,
                fig(med),
                b.past
            );
            if let Some(n) = gpus
                .iter()
                .find(|g| g.uuid == b.uuid)
                .and_then(|g| g.other_processes)
                .filter(|n| *n > 0)
            {
                text.push_str(&format!(
                    "; {n} other process{} used the GPU meanwhile (`gantry gpu` names them)",
                    if n == 1 { "" } else { "es" }
                ));
            }
            match (&b.held_by, &b.conditions) {
                (h, Some(c)) if !h.is_empty() => {
                    text.push_str(&format!("; clocks held down by {h} ({c})"))
                }
                (h, None) if !h.is_empty() => text.push_str(&format!("; clocks held down by {h}")),
                (_, Some(c)) => text.push_str(&format!("; nothing held the clocks down ({c})")),
                _ => {}
            }
            out.push(Finding {
                kind: FindingKind::Slow,
                uuid: b.uuid.clone(),
                text,
            });
        }
    }
    for g in gpus {
        let who = gpu_name(g);
        let below =
            |now: Option<u32>, max: Option<u32>| matches!((now, max), (Some(n), Some(m)) if n < m);
        if below(g.pcie_gen, g.pcie_gen_max) || below(g.pcie_width, g.pcie_width_max) {
            out.push(Finding {
                kind: FindingKind::Pcie,
                uuid: g.uuid.clone(),
                text: format!(
                    "{who}: PCIe link at {}, below its {} even under load: reseat the card or check the slot and riser",
                    link(g.pcie_gen, g.pcie_width),
                    link(g.pcie_gen_max, g.pcie_width_max)
                ),
            });
        }
        if g.retired_pending == Some(true) {
            out.push(Finding {
                kind: FindingKind::Retired,
                uuid: g.uuid.clone(),
                text: format!(
                    "{who}: a memory page retirement or row remap waits for a GPU reset (or a remap failed): reset the GPU before long runs"
                ),
            });
        } else if let (Some(now), Some(before)) = (g.retired_pages, g.retired_before)
            && now > before
        {
            out.push(Finding {
                kind: FindingKind::Retired,
                uuid: g.uuid.clone(),
                text: format!(
                    "{who}: {} more memory pages or rows retired since the last check ({before} → {now})",
                    now - before
                ),
            });
        }
        // The volatile counter starts again at a driver reload: fewer is a reset, not a repair.
        if let (Some(now), Some(before)) = (g.ecc_uncorrected, g.ecc_before)
            && now > before
        {
            out.push(Finding {
                kind: FindingKind::Ecc,
                uuid: g.uuid.clone(),
                text: format!(
                    "{who}: {} new uncorrected ECC errors since the last check ({before} → {now})",
                    now - before
                ),
            });
        }
        if !g.xids.is_empty() {
            let list: Vec<String> = g.xids.iter().map(|x| x.to_string()).collect();
            out.push(Finding {
                kind: FindingKind::Xid,
                uuid: g.uuid.clone(),
                text: format!(
                    "{who}: the driver reported XID {} (see NVIDIA's XID catalogue; `dmesg` has the details)",
                    list.join(", ")
                ),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gemm(value: f64, median: f64, past: usize) -> BenchCheck {
        BenchCheck {
            device: "GPU 0".into(),
            name: "NVIDIA H200".into(),
            uuid: "GPU-a".into(),
            label: "gemm bf16 8192".into(),
            unit: Unit::TflopS,
            value,
            median: Some(median),
            past,
            correct: true,
            conditions: Some("1410 MHz 700 W 83C".into()),
            held_by: "power cap".into(),
        }
    }

    fn gpu() -> GpuCheck {
        GpuCheck {
            index: 0,
            name: "NVIDIA H200".into(),
            uuid: "GPU-a".into(),
            pcie_gen: Some(5),
            pcie_width: Some(16),
            pcie_gen_max: Some(5),
            pcie_width_max: Some(16),
            ecc_uncorrected: Some(0),
            ecc_before: Some(0),
            ..Default::default()
        }
    }

    #[test]
    fn a_benchmark_past_the_tolerance_is_slow_and_names_what_held_it() {
        let s = Settings::default();
        let f = findings(&[gpu()], &[gemm(612.0, 712.0, 5)], &s);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].kind, FindingKind::Slow);
        assert_eq!(
            f[0].text,
            "GPU 0 (NVIDIA H200): gemm bf16 8192 at 612 TFLOP/s, 14% below its median of 712 \
             (5 runs); clocks held down by power cap (1410 MHz 700 W 83C)"
        );
        // A GPU others were using says so.
        let shared = GpuCheck {
            other_processes: Some(2),
            ..gpu()
        };
        let f = findings(&[shared], &[gemm(612.0, 712.0, 5)], &s);
        assert!(
            f[0].text
                .contains("(5 runs); 2 other processes used the GPU meanwhile"),
            "{}",
            f[0].text
        );
        // Within the tolerance, or without enough history: nothing.
        assert!(findings(&[gpu()], &[gemm(690.0, 712.0, 5)], &s).is_empty());
        assert!(findings(&[gpu()], &[gemm(612.0, 712.0, 2)], &s).is_empty());
        let loose = Settings {
            tolerance: 0.2,
            ..s.clone()
        };
        assert!(findings(&[gpu()], &[gemm(612.0, 712.0, 5)], &loose).is_empty());
        // A latency is slow when higher.
        let launch = BenchCheck {
            unit: Unit::Us,
            label: "launch events".into(),
            value: 3.0,
            median: Some(2.0),
            ..gemm(0.0, 0.0, 5)
        };
        assert_eq!(findings(&[], &[launch], &s)[0].kind, FindingKind::Slow);
    }

    #[test]
    fn a_wrong_result_is_a_fault_whatever_its_speed() {
        let b = BenchCheck {
            correct: false,
            ..gemm(800.0, 712.0, 0)
        };
        let f = findings(&[], &[b], &Settings::default());
        assert_eq!(f[0].kind, FindingKind::Wrong);
        assert!(
            f[0].text.contains("computed a wrong result"),
            "{}",
            f[0].text
        );
    }

    #[test]
    fn hardware_facts_are_faults() {
        let s = Settings::default();
        assert!(findings(&[gpu()], &[], &s).is_empty());
        let narrow = GpuCheck {
            pcie_gen: Some(4),
            pcie_width: Some(8),
            ..gpu()
        };
        let f = findings(&[narrow], &[], &s);
        assert_eq!(f[0].kind, FindingKind::Pcie);
        assert!(
            f[0].text
                .contains("PCIe link at Gen4 x8, below its Gen5 x16"),
            "{}",
            f[0].text
        );
        let ecc = GpuCheck {
            ecc_uncorrected: Some(3),
            ecc_before: Some(1),
            ..gpu()
        };
        let f = findings(&[ecc], &[], &s);
        assert_eq!(f[0].kind, FindingKind::Ecc);
        assert!(
            f[0].text
                .contains("2 new uncorrected ECC errors since the last check (1 → 3)")
        );
        // A reset counter (fewer than before) is not a fault; nor is a count with no past.
        let reset = GpuCheck {
            ecc_uncorrected: Some(0),
            ecc_before: Some(4),
            ..gpu()
        };
        let first = GpuCheck {
            ecc_uncorrected: Some(4),
            ecc_before: None,
            ..gpu()
        };
        assert!(findings(&[reset, first], &[], &s).is_empty());
        let xid = GpuCheck {
            xids: vec![79, 48],
            ..gpu()
        };
        let f = findings(&[xid], &[], &s);
        assert_eq!(f[0].kind, FindingKind::Xid);
        assert!(f[0].text.contains("XID 79, 48"), "{}", f[0].text);
        let pending = GpuCheck {
            retired_pending: Some(true),
            ..gpu()
        };
        assert_eq!(findings(&[pending], &[], &s)[0].kind, FindingKind::Retired);
        let more = GpuCheck {
            retired_pages: Some(3),
            retired_before: Some(1),
            ..gpu()
        };
        assert!(
            findings(&[more], &[], &s)[0]
                .text
                .contains("2 more memory pages")
        );
    }

    #[test]
    fn the_outcome_follows_the_mode() {
        let mut r = Report {
            checked_ms: 0,
            mode: Mode::Block,
            seconds: 1.0,
            backend: "cuda".into(),
            outcome: Outcome::Passed,
            gpus: vec![gpu()],
            benchmarks: vec![gemm(612.0, 712.0, 5)],
            findings: Vec::new(),
            notes: Vec::new(),
        };
        r.judge(&Settings::default());
        assert_eq!(r.outcome, Outcome::Refused);
        r.mode = Mode::Warn;
        r.judge(&Settings::default());
        assert_eq!(r.outcome, Outcome::Degraded);
        r.benchmarks.clear();
        r.judge(&Settings::default());
        assert_eq!(r.outcome, Outcome::Passed);
        r.backend = "none".into();
        r.judge(&Settings::default());
        assert_eq!(r.outcome, Outcome::Unchecked);
        let back: Report = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn settings_out_of_range_are_named() {
        assert!(Settings::default().problem().is_none());
        let bad = Settings {
            tolerance: 5.0,
            ..Settings::default()
        };
        assert!(bad.problem().unwrap().contains("tolerance = 5"));
    }
}
