//! The demo runs' GPU use, made through the same code a real run's sampler uses: their declared
//! work (params in fixtures/demo/runs.json) through `StepClock` and `Throughput`, MFU against the
//! datasheet and against the demo GPU's bench history, energy through `EnergyMeter` fed a made-up
//! energy counter, cost at the demo's prices, and each run's hardware tag.

use anyhow::Result;

use crate::domain::conditions::keys as ck;
use crate::domain::efficiency::{
    self as eff, EnergyMeter, Fingerprint, GpuRead, Hardware, HardwareGpu, Prices, StepClock,
    Throughput, Work, keys,
};
use crate::domain::{Series, SeriesKind};
use crate::store::Store;

/// The demo's prices: what a cloud H200 or A100 hour and a kWh roughly cost.
pub fn prices() -> Prices {
    Prices {
        price_per_kwh: Some(0.15),
        gpu_hour_price: Some(2.50),
        currency: Some("USD".into()),
    }
}

/// One demo run, as seeded.
pub struct Made<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub host: &'a str,
    pub started_ms: i64,
    pub step_ms: i64,
    pub last_step: i64,
    pub params: &'a std::collections::BTreeMap<String, String>,
}

/// The GPU a demo run used: ResNets and the ViT on the demo box's A100 (which has bench
/// history), the GPT-2 runs on gpu02's H200 (which has none: the overview says how to make it).
pub fn gpu_of(name: &str) -> (&'static str, &'static str, f64) {
    if name.starts_with("gpt2") {
        ("NVIDIA H200", "GPU-h200-00-made-up", 700.0)
    } else {
        ("NVIDIA A100-SXM4-80GB", "GPU-a100-00-made-up", 400.0)
    }
}

/// Store the run's `gantry/…` series and its hardware and currency tags.
pub async fn seed(store: &Store, r: &Made<'_>) -> Result<()> {
    let (name, uuid, limit) = gpu_of(r.name);
    let history = store.bench_history(Some(uuid)).await?;
    let precision = eff::precision(r.params.get(eff::PRECISION).map(String::as_str))
        .map_err(anyhow::Error::msg)?;
    let datasheet = crate::bench::peaks::tensor_peaks(name)
        .and_then(|(_, t)| eff::datasheet_peak(&t, precision));
    let measured = eff::measured_peak(&history, precision).map(|m| m.flops);
    let get = |k: &str| r.params.get(k)?.parse().ok();
    let work = Work::declared(get, false);
    let prices = prices();
    let (mut clock, mut tp, mut meter) = (
        StepClock::default(),
        Throughput::default(),
        EnergyMeter::default(),
    );
    let mut out: Vec<(&str, Series)> = keys::ALL
        .iter()
        .filter(|k| **k != keys::CPU_ENERGY_WH)
        .map(|k| (*k, Series::default()))
        .collect();
    let mut push = |key: &str, step: i64, t: i64, v: f64| {
        if let Some((_, s)) = out.iter_mut().find(|(k, _)| *k == key) {
            s.push(step, t, v);
        }
    };
    // The conditions the sampler records. gpt2-124m-lr6e-4's H200 was power-capped at 500 W
    // about half the time: the compare view explains why it is slower than gpt2-124m-lr3e-4.
    let capped = r.name == "gpt2-124m-lr6e-4";
    let limit = if capped { 500.0 } else { limit };
    let mut conditions: Vec<(&str, Series)> = [
        ck::SM_CLOCK,
        ck::POWER,
        ck::POWER_LIMIT,
        ck::THROTTLE_POWER,
        ck::OTHER_PROCS,
        ck::HOST_CPU,
    ]
    .into_iter()
    .map(|k| (k, Series::default()))
    .collect();
    // A sample every five logged steps; the counter advances by a power that follows the work.
    let mut counter: u64 = 7_200_000_000;
    let mut step = 0;
    while step <= r.last_step {
        let t = r.started_ms + step * r.step_ms;
        let held_down = capped && (step / 5) % 9 < 4;
        let max_clock = if name.contains("H200") {
            1980.0
        } else {
            1410.0
        };
        for (k, s) in conditions.iter_mut() {
            let v = match *k {
                ck::SM_CLOCK if held_down => max_clock * 0.82,
                ck::SM_CLOCK => max_clock,
                ck::POWER => limit * if held_down { 1.0 } else { 0.8 },
                ck::POWER_LIMIT => limit,
                ck::THROTTLE_POWER => f64::from(u8::from(held_down)),
                ck::OTHER_PROCS => 0.0,
                _ => 30.0 + (step % 7) as f64,
            };
            s.push(t / 1000, t, v);
        }
        clock.see("train/loss", step, t, 0.0);
        let power = limit * (0.78 + 0.04 * ((step as f64) / 17.0).sin());
        meter.observe(
            uuid,
            GpuRead {
                energy_mj: Some(counter),
                at_us: t * 1000,
                power_w: Some(power),
                share: 1.0,
                held: true,
            },
        );
        counter += (power * 5.0 * r.step_ms as f64) as u64;
        if step > 0 {
            let (wh, gh) = (meter.run_wh(), meter.gpu_hours());
            push(keys::ENERGY_WH, step, t, wh);
            push(keys::GPU_HOURS, step, t, gh);
            push(keys::POWER_W, step, t, power);
            if let Some(c) = prices.cost(wh, gh) {
                push(keys::COST, step, t, c);
            }
        }
        if let Some(w) = &work
            && let Some(flops) = tp.tick(&clock, w)
        {
            push(keys::TFLOPS, step, t, flops / 1e12);
            if let Some(m) = datasheet.and_then(|p| eff::mfu_percent(flops, p)) {
                push(keys::MFU, step, t, m);
            }
            if let Some(m) = measured.and_then(|p| eff::mfu_percent(flops, p)) {
                push(keys::MFU_MEASURED, step, t, m);
            }
        }
        step += 5;
    }
    let batch: Vec<_> = out
        .iter()
        .filter(|(_, s)| !s.values.is_empty())
        .map(|(k, s)| (SeriesKind::Metric, *k, s))
        .collect();
    store.append(r.id, &batch).await?;
    let batch: Vec<_> = conditions
        .iter()
        .map(|(k, s)| (SeriesKind::System, *k, s))
        .collect();
    store.append(r.id, &batch).await?;
    let hw = Hardware {
        host: r.host.to_string(),
        gpus: vec![HardwareGpu {
            name: name.into(),
            uuid: uuid.into(),
            driver: Some("580.95.05".into()),
            cuda: Some("13.0".into()),
            power_limit_w: Some(limit),
            pcie_gen: Some(if name.contains("H200") { 5 } else { 4 }),
            pcie_width: Some(16),
            bench: Fingerprint::of(&history),
        }],
    };
    let mut tags = vec![
        (eff::HARDWARE_TAG.to_string(), serde_json::to_string(&hw)?),
        (eff::CURRENCY_TAG.to_string(), prices.currency().to_string()),
    ];
    // The alerts their supervisors would have raised: the ViT's loss went NaN, the capped GPT-2's
    // H200 throttled, and the silent GPT-2 stopped logging.
    use crate::domain::alerts::{Alert, Kind};
    let last_t = r.started_ms + r.last_step * r.step_ms;
    let alert = |kind: Kind, message: &str, cleared: Option<i64>| Alert {
        kind,
        message: message.into(),
        step: Some(r.last_step),
        raised_ms: last_t,
        cleared_ms: cleared,
    };
    let alerts = match r.name {
        "vit-small-adamw" => vec![alert(
            Kind::Nan,
            &format!("train/loss is not a number at step {}", r.last_step),
            None,
        )],
        "gpt2-124m-lr6e-4" => vec![alert(
            Kind::Throttle,
            "GPU clocks held down: power cap",
            Some(last_t + 60_000),
        )],
        "gpt2-124m-bs64" => vec![alert(
            Kind::Stall,
            "no new step for 10 min (threshold 10 min)",
            None,
        )],
        "resnet50-warmup" => vec![alert(
            Kind::Divergence,
            "train/loss is 3.4270, 3.4× its best 1.0080",
            None,
        )],
        "resnet50-cosine" => vec![alert(
            Kind::ThroughputDrop,
            "9.100 steps/s, 35% below its median 14.000",
            Some(last_t + 30_000),
        )],
        "gpt2-124m-bs32" => vec![
            alert(Kind::GpuErrors, "XID 79 on GPU-h200-00-made-up", None),
            alert(Kind::IdleGpu, "holds GPU memory at 0% SM for 10 min", None),
        ],
        _ => Vec::new(),
    };
    for a in alerts {
        tags.push((a.kind.tag(), serde_json::to_string(&a)?));
    }
    store.set_tags(r.id, &tags).await?;
    Ok(())
}

/// Five days of benchmark history on the recording's first GPU, the last day's bf16 GEMM 8%
/// below its median, so the Bench tab has history to show and a drop to flag.
/// What the demo's A100 went through during a benchmark: full clocks, except on the last day's
/// bf16 GEMM, which a thermal slowdown explains.
fn demo_conditions(spec: &crate::bench::Spec, day: usize) -> Option<crate::bench::Conditions> {
    use crate::bench::Kind;
    let hot = day == 4 && spec.precision == Some(crate::bench::Precision::Bf16);
    let power = match spec.kind {
        Kind::Gemm => 392.0,
        Kind::Membw => 305.0,
        Kind::H2d | Kind::D2h => 118.0,
        Kind::Launch => 88.0,
    };
    Some(crate::bench::Conditions {
        samples: 12,
        sm_clock_mhz: Some(if hot { 1245 } else { 1410 }),
        sm_clock_min_mhz: Some(if hot { 1185 } else { 1395 }),
        sm_clock_max_mhz: Some(1410),
        power_w: Some(power),
        power_limit_w: Some(400.0),
        temp_max_c: Some(if hot { 87 } else { 61 + day as u32 % 3 }),
        throttle: if hot {
            vec!["sw thermal".into()]
        } else {
            Vec::new()
        },
        ..Default::default()
    })
}

pub async fn seed_bench(store: &Store, now_ms: i64) -> Result<()> {
    use crate::bench::{BenchResult, Check, DeviceInfo, Kind, Peaks, Precision, Spec, Stats};
    let device = DeviceInfo {
        backend: "cuda".into(),
        name: "NVIDIA A100-SXM4-80GB".into(),
        uuid: "GPU-a100-00-made-up".into(),
        driver: Some("580.95.05".into()),
        cuda: Some("13.0".into()),
        libraries: vec![
            "libcuda.so.1".into(),
            "libcublas.so.13".into(),
            "libnvrtc.so.13".into(),
        ],
        peaks: Peaks::default(),
    };
    let series: [(Spec, Option<f64>, [f64; 5]); 6] = [
        (
            Spec::gemm(Precision::Bf16, 8192, "cublas"),
            Some(312.0),
            [281.0, 283.5, 280.2, 282.9, 259.4],
        ),
        (
            Spec::gemm(Precision::Tf32, 8192, "cublas"),
            Some(156.0),
            [141.2, 142.0, 140.8, 141.7, 141.1],
        ),
        (
            Spec::gemm(Precision::Fp32, 8192, "cublas"),
            Some(19.5),
            [18.9, 19.0, 18.8, 19.1, 18.9],
        ),
        (
            Spec::other(Kind::Membw, 1 << 30, "sm-triad"),
            Some(2039.0),
            [1720.0, 1722.5, 1718.1, 1725.3, 1721.0],
        ),
        (
            Spec::other(Kind::H2d, 1 << 30, "pinned"),
            Some(31.5),
            [24.8, 24.9, 24.7, 24.9, 24.8],
        ),
        (
            Spec::other(Kind::Launch, 1000, "events"),
            None,
            [2.31, 2.29, 2.33, 2.30, 2.32],
        ),
    ];
    for day in 0..5 {
        let started = now_ms - (5 - day as i64) * 86_400_000;
        for (spec, peak, medians) in &series {
            let m = medians[day];
            let r = BenchResult {
                unit: spec.kind.unit(),
                stats: Stats {
                    median: m,
                    min: m * 0.985,
                    max: m * 1.01,
                    stddev: m * 0.006,
                    reps: 20,
                },
                peak: *peak,
                pct_of_peak: peak.map(|p| 100.0 * m / p),
                check: (spec.kind == Kind::Gemm).then_some(Check {
                    max_rel_err: 1.2e-3,
                    bound: crate::bench::check::bound(spec.precision.unwrap_or(Precision::Fp32)),
                    samples: 64,
                    ok: true,
                }),
                spec: spec.clone(),
                conditions: demo_conditions(spec, day),
            };
            store
                .record_bench(started, super::demo::DEMO_HOST, &device, &r)
                .await?;
        }
    }
    Ok(())
}
