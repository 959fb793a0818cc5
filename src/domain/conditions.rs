//! "Why was this run slower?": what each run went through (its step rate, MFU, GPU, clocks,
//! power limit, throttling, processes sharing its GPUs, PCIe link, host CPU load and its GPU's
//! bench result nearest in time), and a verdict naming the likeliest cause of each slower run's
//! slowdown against the fastest. The sampler records the conditions as system series; the rules
//! are here, without I/O (docs/efficiency.md#why-slower).

use serde::Serialize;

/// System series the sampler records for this, per sample, over the GPUs the run holds.
pub mod keys {
    /// Mean SM clock, MHz.
    pub const SM_CLOCK: &str = "gpu_sm_clock_mhz";
    /// Board power and the power limit, summed, W.
    pub const POWER: &str = "gpu_power_w";
    pub const POWER_LIMIT: &str = "gpu_power_limit_w";
    /// Hottest GPU, °C.
    pub const TEMP: &str = "gpu_temp_c";
    /// 1 where any of the run's GPUs had its clocks held down for that reason at the sample.
    pub const THROTTLE_POWER: &str = "gpu_throttle_power";
    pub const THROTTLE_THERMAL: &str = "gpu_throttle_thermal";
    pub const THROTTLE_HW: &str = "gpu_throttle_hw";
    /// Processes not the run's on its GPUs.
    pub const OTHER_PROCS: &str = "gpu_other_procs";
    /// The whole host's CPU use, percent of all CPUs.
    pub const HOST_CPU: &str = "host_cpu_percent";
    pub const THROTTLES: [(&str, &str); 3] = [
        (THROTTLE_POWER, "power-capped"),
        (THROTTLE_THERMAL, "thermally throttled"),
        (THROTTLE_HW, "in hardware slowdown"),
    ];
}

/// What one run went through.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RunConditions {
    pub id: String,
    pub name: String,
    /// Median logged steps a second.
    pub steps_per_s: Option<f64>,
    /// Median MFU against the datasheet, percent.
    pub mfu: Option<f64>,
    /// "2× NVIDIA H200" and the first GPU's UUID.
    pub gpu: Option<String>,
    pub uuid: Option<String>,
    /// The datasheet's bf16 peak of its GPUs, TFLOP/s (for comparing GPU models).
    pub peak_tflops: Option<f64>,
    pub sm_clock_mhz: Option<f64>,
    pub power_limit_w: Option<f64>,
    pub power_w: Option<f64>,
    /// Share of samples spent in each throttle reason: (words, fraction), those above zero.
    pub throttled: Vec<(String, f64)>,
    /// The most processes seen sharing its GPUs at once.
    pub others: Option<f64>,
    pub pcie: Option<String>,
    pub host_cpu: Option<f64>,
    /// The bf16 GEMM median of its GPU's bench result nearest the run's start, and when it ran.
    pub bench_tflops: Option<(f64, i64)>,
}

impl RunConditions {
    fn throttled(&self, what: &str) -> f64 {
        self.throttled
            .iter()
            .find(|(w, _)| w == what)
            .map_or(0.0, |t| t.1)
    }
}

/// One verdict line per run slower than the fastest by more than 3%: "run B: 18% slower; its GPU
/// spent 40% of the time power-capped at 300 W". The causes are tried in this order, the first
/// that explains the gap named: a slower GPU model, throttling (power, thermal, hardware), a lower
/// power limit, a shared GPU, a lower SM clock, a slower bench result on the same model, a busy
/// host CPU; else "no difference in its conditions explains it".
pub fn verdicts(runs: &[RunConditions]) -> Vec<String> {
    verdicts_by_run(runs)
        .into_iter()
        .filter_map(|(id, v)| Some(format!("{}: {v}", runs.iter().find(|r| r.id == id)?.name)))
        .collect()
}

/// The verdicts by run id, without the run's name: "18% slower than A; …".
pub fn verdicts_by_run(runs: &[RunConditions]) -> Vec<(String, String)> {
    let Some(fast) = runs
        .iter()
        .filter(|r| r.steps_per_s.is_some())
        .max_by(|a, b| {
            a.steps_per_s
                .partial_cmp(&b.steps_per_s)
                .unwrap_or(std::cmp::Ordering::Equal)
        })
    else {
        return Vec::new();
    };
    let fast_rate = fast.steps_per_s.unwrap_or(0.0);
    let mut out = Vec::new();
    for r in runs {
        let Some(rate) = r.steps_per_s else { continue };
        if r.id == fast.id || fast_rate <= 0.0 || rate >= fast_rate * 0.97 {
            continue;
        }
        let slower = (1.0 - rate / fast_rate) * 100.0;
        out.push((
            r.id.clone(),
            format!("{slower:.0}% slower than {}; {}", fast.name, cause(r, fast)),
        ));
    }
    out
}

/// The likeliest cause of `slow` being slower than `fast`.
fn cause(slow: &RunConditions, fast: &RunConditions) -> String {
    if let (Some(a), Some(b)) = (slow.peak_tflops, fast.peak_tflops)
        && slow.gpu != fast.gpu
        && a < b * 0.95
    {
        return format!(
            "it ran on {} ({:.0}% of the {}'s datasheet peak)",
            slow.gpu.as_deref().unwrap_or("another GPU"),
            a / b * 100.0,
            fast.gpu.as_deref().unwrap_or("other GPU")
        );
    }
    for (_, what) in keys::THROTTLES {
        let (s, f) = (slow.throttled(what), fast.throttled(what));
        if s >= 0.1 && s - f >= 0.1 {
            let at = match (what, slow.power_limit_w) {
                ("power-capped", Some(w)) => format!(" at {w:.0} W"),
                _ => String::new(),
            };
            return format!("its GPU spent {:.0}% of the time {what}{at}", s * 100.0);
        }
    }
    if let (Some(a), Some(b)) = (slow.power_limit_w, fast.power_limit_w)
        && a < b * 0.95
    {
        return format!("its GPU's power limit was {a:.0} W against {b:.0} W");
    }
    if slow.others.unwrap_or(0.0) >= 1.0 && fast.others.unwrap_or(0.0) < 1.0 {
        let n = slow.others.unwrap_or(0.0);
        return format!(
            "its GPU was shared with {n:.0} other process{}",
            if n >= 2.0 { "es" } else { "" }
        );
    }
    if let (Some(a), Some(b)) = (slow.sm_clock_mhz, fast.sm_clock_mhz)
        && a < b * 0.93
    {
        return format!("its SM clock ran at {a:.0} MHz against {b:.0} MHz");
    }
    if let (Some((a, _)), Some((b, _))) = (slow.bench_tflops, fast.bench_tflops)
        && a < b * 0.95
    {
        return format!(
            "its GPU benchmarks {:.0}% slower ({a:.0} against {b:.0} TFLOP/s bf16)",
            (1.0 - a / b) * 100.0
        );
    }
    if let (Some(a), Some(b)) = (slow.host_cpu, fast.host_cpu)
        && a >= 85.0
        && a - b >= 20.0
    {
        return format!("the host's CPUs were {a:.0}% busy against {b:.0}%");
    }
    "no difference in its recorded conditions explains it (check its params and data)".into()
}

/// The median of `values`' positive-time rates: steps a second between consecutive points of a
/// series (`steps`, `times_ms`), over intervals where the step advanced.
pub fn steps_per_s(steps: &[i64], times_ms: &[i64]) -> Option<f64> {
    let rates: Vec<f64> = steps
        .windows(2)
        .zip(times_ms.windows(2))
        .filter(|(s, t)| s[1] > s[0] && t[1] > t[0])
        .map(|(s, t)| (s[1] - s[0]) as f64 / ((t[1] - t[0]) as f64 / 1000.0))
        .collect();
    super::bench::median(&rates)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(name: &str, rate: f64) -> RunConditions {
        RunConditions {
            id: name.into(),
            name: name.into(),
            steps_per_s: Some(rate),
            gpu: Some("NVIDIA H200".into()),
            peak_tflops: Some(989.4),
            sm_clock_mhz: Some(1980.0),
            power_limit_w: Some(700.0),
            others: Some(0.0),
            host_cpu: Some(30.0),
            ..Default::default()
        }
    }

    #[test]
    fn a_power_cap_is_named_with_its_share_of_the_time() {
        let a = run("A", 10.0);
        let mut b = run("B", 8.2);
        b.power_limit_w = Some(300.0);
        b.sm_clock_mhz = Some(1500.0);
        b.throttled = vec![("power-capped".into(), 0.4)];
        assert_eq!(
            verdicts(&[a, b]),
            ["B: 18% slower than A; its GPU spent 40% of the time power-capped at 300 W"]
        );
    }

    #[test]
    fn thermal_throttling_a_shared_gpu_and_a_slower_model() {
        let a = run("A", 10.0);
        let mut hot = run("hot", 7.0);
        hot.throttled = vec![("thermally throttled".into(), 0.55)];
        let mut shared = run("shared", 6.0);
        shared.others = Some(2.0);
        let mut a100 = run("a100", 3.5);
        a100.gpu = Some("NVIDIA A100-SXM4-80GB".into());
        a100.peak_tflops = Some(312.0);
        a100.power_limit_w = Some(400.0);
        let v = verdicts(&[a, hot, shared, a100]);
        assert_eq!(
            v,
            [
                "hot: 30% slower than A; its GPU spent 55% of the time thermally throttled",
                "shared: 40% slower than A; its GPU was shared with 2 other processes",
                "a100: 65% slower than A; it ran on NVIDIA A100-SXM4-80GB (32% of the NVIDIA H200's datasheet peak)",
            ]
        );
    }

    #[test]
    fn nothing_to_explain_and_nothing_explaining() {
        // Within 3%: no verdict. Slower with the same conditions: said so.
        assert!(verdicts(&[run("A", 10.0), run("B", 9.8)]).is_empty());
        let v = verdicts(&[run("A", 10.0), run("B", 5.0)]);
        assert!(
            v[0].contains("no difference in its recorded conditions"),
            "{v:?}"
        );
        // A slower bench result on the same model, or a busy host.
        let mut b = run("B", 8.0);
        b.bench_tflops = Some((640.0, 0));
        let mut a = run("A", 10.0);
        a.bench_tflops = Some((712.0, 0));
        assert!(verdicts(&[a.clone(), b])[0].contains("benchmarks 10% slower"));
        let mut c = run("C", 8.0);
        c.host_cpu = Some(97.0);
        assert!(verdicts(&[a, c])[0].contains("CPUs were 97% busy against 30%"));
    }

    #[test]
    fn step_rate_is_the_median_over_advancing_intervals() {
        // 10 steps a second, one stall (no step), one slow interval.
        let steps = [0, 10, 20, 20, 30, 40];
        let times = [0, 1000, 2000, 3000, 5000, 6000];
        assert_eq!(steps_per_s(&steps, &times), Some(10.0));
        assert_eq!(steps_per_s(&[1], &[1]), None);
    }
}
