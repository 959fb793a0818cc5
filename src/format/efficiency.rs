//! A run's efficiency for people: one line of its GPU use (MFU both ways, TFLOP/s, energy,
//! GPU-hours, cost) and one of its hardware (the GPUs, driver, CUDA, power limit, PCIe link and
//! their bench fingerprint, or the command that makes one). `gantry show`, the run detail and the
//! models view print the same words.

use crate::domain::efficiency::{Hardware, RunEfficiency, energy_text};

/// "MFU 49.1% · 62.3% of measured · 485.7 TFLOP/s · 2.41 kWh · 3.2 GPU-h · 1.20 EUR"; None for
/// a run with none of them (imported, or never on a GPU).
pub fn use_line(e: &RunEfficiency) -> Option<String> {
    let mut parts = Vec::new();
    match (e.mfu, e.mfu_measured) {
        (Some(d), Some(m)) => parts.push(format!("MFU {d:.1}% · {m:.1}% of measured")),
        (Some(d), None) => parts.push(format!("MFU {d:.1}%")),
        (None, Some(m)) => parts.push(format!("MFU {m:.1}% of measured")),
        (None, None) => {}
    }
    if let Some(t) = e.tflops {
        parts.push(format!("{} TFLOP/s", super::four_digits(t)));
    }
    parts.extend(totals(e));
    (!parts.is_empty()).then(|| parts.join(" · "))
}

/// Energy, GPU-hours and cost: "2.41 kWh · 3.20 GPU-h · 1.20 EUR".
pub fn totals(e: &RunEfficiency) -> Vec<String> {
    let mut parts = Vec::new();
    if let Some(wh) = e.energy_wh {
        let cpu = e
            .cpu_energy_wh
            .filter(|c| *c > 0.0)
            .map(|c| format!(" (+{} CPU)", energy_text(c)))
            .unwrap_or_default();
        parts.push(format!("{}{cpu}", energy_text(wh)));
    } else if let Some(c) = e.cpu_energy_wh {
        parts.push(format!("{} CPU", energy_text(c)));
    }
    if let Some(h) = e.gpu_hours {
        parts.push(format!("{} GPU-h", gpu_hours_text(h)));
    }
    if let Some(c) = e.cost {
        parts.push(money(c, e.currency.as_deref()));
    }
    parts
}

/// GPU-hours: "0.0042", "3.20", "1250".
pub fn gpu_hours_text(h: f64) -> String {
    if h >= 100.0 {
        format!("{h:.0}")
    } else if h >= 0.1 {
        format!("{h:.2}")
    } else {
        format!("{h:.4}")
    }
}

/// "1.20 EUR", "0.0031 USD"; without a currency, the number.
pub fn money(x: f64, currency: Option<&str>) -> String {
    let n = if x.abs() >= 0.1 || x == 0.0 {
        format!("{x:.2}")
    } else {
        format!("{x:.4}")
    };
    match currency.filter(|c| !c.is_empty()) {
        Some(c) => format!("{n} {c}"),
        None => n,
    }
}

/// "NVIDIA H200 · driver 580.95.05 · CUDA 13.0 · 700 W · PCIe 5×16 · bench 710 TFLOP/s bf16,
/// 4100 GB/s (3d ago)"; several GPUs are counted, the first's facts shown.
pub fn hardware_line(hw: &Hardware, now_ms: i64) -> Option<String> {
    let g = hw.gpus.first()?;
    let mut parts = vec![hw.summary()];
    if let Some(d) = &g.driver {
        parts.push(format!("driver {d}"));
    }
    if let Some(c) = &g.cuda {
        parts.push(format!("CUDA {c}"));
    }
    if let Some(p) = g.power_limit_w {
        parts.push(format!("{p:.0} W"));
    }
    if let (Some(pg), Some(w)) = (g.pcie_gen, g.pcie_width) {
        parts.push(format!("PCIe {pg}×{w}"));
    }
    let missing = hw.gpus.iter().filter(|g| g.bench.is_none()).count();
    match &g.bench {
        Some(b) => {
            let mut f = Vec::new();
            if let Some(t) = b.gemm_bf16_tflops {
                f.push(format!("{} TFLOP/s bf16", super::four_digits(t)));
            }
            if let Some(m) = b.membw_gbs {
                f.push(format!("{} GB/s", super::four_digits(m)));
            }
            parts.push(format!(
                "bench {} ({})",
                f.join(", "),
                super::ago(b.at_ms, now_ms)
            ));
        }
        None => parts.push("no bench history: `gantry bench` makes one".into()),
    }
    if missing > 0 && g.bench.is_some() {
        parts.push(format!("{missing} GPU without bench history"));
    }
    Some(parts.join(" · "))
}

/// The runs table's header for one of gantry's own metrics.
pub fn column_label(key: &str) -> Option<&'static str> {
    use crate::domain::efficiency::keys;
    Some(match key {
        k if k == keys::ENERGY_WH => "energy",
        k if k == keys::GPU_HOURS => "GPU-h",
        k if k == keys::COST => "cost",
        k if k == keys::MFU => "MFU",
        k if k == keys::MFU_MEASURED => "MFU measured",
        k if k == keys::TFLOPS => "TFLOP/s",
        k if k == keys::POWER_W => "power",
        k if k == keys::CPU_ENERGY_WH => "CPU energy",
        _ => return None,
    })
}

/// One of gantry's own metrics in its unit: "2.41 kWh", "49.1%", "589 W"; None for others.
pub fn column_value(key: &str, v: f64, currency: Option<&str>) -> Option<String> {
    use crate::domain::efficiency::keys;
    Some(match key {
        k if k == keys::ENERGY_WH || k == keys::CPU_ENERGY_WH => energy_text(v),
        k if k == keys::GPU_HOURS => gpu_hours_text(v),
        k if k == keys::COST => money(v, currency),
        k if k == keys::MFU || k == keys::MFU_MEASURED => format!("{v:.1}%"),
        k if k == keys::TFLOPS => super::four_digits(v),
        k if k == keys::POWER_W => format!("{v:.0} W"),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::efficiency::{Fingerprint, HardwareGpu};

    #[test]
    fn lines_say_what_is_known() {
        let e = RunEfficiency {
            mfu: Some(49.09),
            mfu_measured: Some(62.31),
            tflops: Some(485.7),
            energy_wh: Some(2410.0),
            gpu_hours: Some(3.2),
            cost: Some(1.2),
            currency: Some("EUR".into()),
            ..Default::default()
        };
        assert_eq!(
            use_line(&e).unwrap(),
            "MFU 49.1% · 62.3% of measured · 485.7 TFLOP/s · 2.41 kWh · 3.20 GPU-h · 1.20 EUR"
        );
        assert_eq!(use_line(&RunEfficiency::default()), None);
        let mut hw = Hardware {
            host: "gpu01".into(),
            gpus: vec![HardwareGpu {
                name: "NVIDIA H200".into(),
                driver: Some("580.95.05".into()),
                cuda: Some("13.0".into()),
                power_limit_w: Some(700.0),
                pcie_gen: Some(5),
                pcie_width: Some(16),
                ..Default::default()
            }],
        };
        assert_eq!(
            hardware_line(&hw, 0).unwrap(),
            "NVIDIA H200 · driver 580.95.05 · CUDA 13.0 · 700 W · PCIe 5×16 · no bench history: `gantry bench` makes one"
        );
        hw.gpus[0].bench = Some(Fingerprint {
            gemm_bf16_tflops: Some(710.0),
            membw_gbs: Some(4100.0),
            at_ms: 0,
        });
        assert!(
            hardware_line(&hw, 3 * 86_400_000)
                .unwrap()
                .ends_with("bench 710.0 TFLOP/s bf16, 4100 GB/s (3d ago)")
        );
    }
}
