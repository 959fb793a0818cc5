//! The demo runs' GPU use, made through the same code a real run's sampler uses: their declared
//! work (params in fixtures/demo/runs.json) through `StepClock` and `Throughput`, MFU against the
//! datasheet and against the demo GPU's bench history, energy through `EnergyMeter` fed a made-up
//! energy counter, cost at the demo's prices, and each run's hardware tag.

use anyhow::Result;

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
    // A sample every five logged steps; the counter advances by a power that follows the work.
    let mut counter: u64 = 7_200_000_000;
    let mut step = 0;
    while step <= r.last_step {
        let t = r.started_ms + step * r.step_ms;
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
    store
        .set_tags(
            r.id,
            &[
                (eff::HARDWARE_TAG.into(), serde_json::to_string(&hw)?),
                (eff::CURRENCY_TAG.into(), prices.currency().into()),
            ],
        )
        .await?;
    Ok(())
}
