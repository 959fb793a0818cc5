//! What `gantry bench` prints: the results table against peak and history, its JSON, the verdict line, and the comparison across GPUs.

use super::*;

/// One line under the table: how many results, which fell below this device's history (and
/// what held the clocks down), and whether every check passed.
pub(super) fn verdict(rows: &[Row]) -> String {
    let below: Vec<String> = rows
        .iter()
        .filter(|(_, _, d)| d.is_some())
        .map(
            |(r, _, _)| match r.conditions.as_ref().filter(|c| c.throttled()) {
                Some(c) => format!("{} ({})", r.spec.label(), c.throttle.join(", ")),
                None => r.spec.label(),
            },
        )
        .collect();
    let compared = rows.iter().filter(|(_, past, _)| !past.is_empty()).count();
    let wrong = rows.iter().filter(|(r, _, _)| !r.correct()).count();
    let checked = rows.iter().filter(|(r, _, _)| r.check.is_some()).count();
    let mut parts = vec![format!(
        "{} result{}",
        rows.len(),
        if rows.len() == 1 { "" } else { "s" }
    )];
    parts.push(match (compared, below.len()) {
        (0, _) => "the first on this device: the next run is compared with them".into(),
        (n, 0) => format!("{n} compared with this device's history, none below it"),
        (n, _) => format!(
            "{n} compared, ▼ below this device's history: {}",
            below.join(", ")
        ),
    });
    if checked > 0 {
        parts.push(match wrong {
            0 => format!("all {checked} checks ok"),
            w => format!("{w} of {checked} checks WRONG"),
        });
    }
    parts.join(" · ")
}

pub(super) fn run_json(run: &GpuRun) -> serde_json::Value {
    json!({
        "device": run.device,
        "started_ms": run.started,
        "results": run.rows.iter().map(|(r, past, drop)| result_json(r, past, *drop)).collect::<Vec<_>>(),
    })
}

/// Each benchmark's median on every GPU, with the GPUs behind the others flagged.
pub(super) fn comparison_table(compared: &[bench::Comparison]) -> String {
    use std::fmt::Write;
    let mut o = String::new();
    let gpus = compared.first().map_or(0, |c| c.medians.len());
    let _ = write!(o, "{:<28} {:<8}", "GPUs COMPARED", "UNIT");
    for i in 0..gpus {
        let _ = write!(o, " {:>9}", format!("GPU {i}"));
    }
    let _ = writeln!(o, "  behind the others");
    for c in compared {
        let _ = write!(o, "{:<28} {:<8}", c.label, c.unit.as_str());
        for m in &c.medians {
            let _ = write!(
                o,
                " {:>9}",
                m.map_or("-".to_string(), crate::format::four_digits)
            );
        }
        let behind: Vec<String> = c
            .behind
            .iter()
            .map(|(g, d)| format!("▼ GPU {g} {:.1}%", 100.0 * d))
            .collect();
        let _ = writeln!(
            o,
            "  {}",
            if behind.is_empty() {
                "-".to_string()
            } else {
                behind.join(", ")
            }
        );
    }
    o
}

pub(super) fn result_json(r: &BenchResult, past: &[f64], drop: Option<f64>) -> serde_json::Value {
    let mut v = serde_json::to_value(r).unwrap_or_default();
    v["label"] = r.spec.label().into();
    v["counts"] = r.spec.counts().into();
    v["history"] = json!({
        "runs": past.len(),
        "median": bench::stats::median(past),
        "drop_pct": drop.map(|d| 100.0 * d),
    });
    v
}

pub(super) fn table(device: &DeviceInfo, rows: &[(&BenchResult, Vec<f64>, Option<f64>)]) -> String {
    use std::fmt::Write;
    let mut o = String::new();
    let _ = writeln!(o, "device   {} ({})", device.name, device.backend);
    if device.backend == "cuda" {
        let _ = writeln!(
            o,
            "driver   {} · CUDA {}",
            device.driver.as_deref().unwrap_or("n/a"),
            device.cuda.as_deref().unwrap_or("n/a")
        );
    }
    let _ = writeln!(o, "loaded   {}", device.libraries.join(", "));
    if let Some(m) = device.peaks.memory {
        let clocks = match device.peaks.memory_from_clocks {
            Some(c) if device.peaks.memory_source == "datasheet" => {
                format!(" ({:.2} TB/s from its clocks)", c / 1e12)
            }
            _ => String::new(),
        };
        let _ = writeln!(
            o,
            "memory   peak {:.2} TB/s from the {}{clocks}: membw's PEAK% uses it",
            m / 1e12,
            if device.peaks.memory_source == "datasheet" {
                "datasheet"
            } else {
                "clocks"
            }
        );
    }
    let _ = writeln!(o);
    // What the GPU went through, where a monitor sampled it.
    let gpu_col = rows.iter().any(|(r, _, _)| r.conditions.is_some());
    let gpu_head = if gpu_col {
        format!(" {:<19}", "GPU DURING")
    } else {
        String::new()
    };
    let _ = writeln!(
        o,
        "{:<28} {:>10} {:<8} {:>21} {:>9} {:>7}{gpu_head}  check",
        "BENCHMARK", "MEDIAN", "UNIT", "MIN-MAX", "STDDEV", "PEAK%"
    );
    for (r, past, drop) in rows {
        let n = crate::format::four_digits;
        let check = match r.check {
            None => "-".to_string(),
            Some(c) if c.ok => format!("ok ({:.1e})", c.max_rel_err),
            Some(c) => format!("WRONG ({:.1e} > {:.0e})", c.max_rel_err, c.bound),
        };
        let gpu = if gpu_col {
            format!(
                " {:<19}",
                r.conditions.as_ref().map_or("-".to_string(), |c| c.brief())
            )
        } else {
            String::new()
        };
        let _ = write!(
            o,
            "{:<28} {:>10} {:<8} {:>21} {:>9} {:>7}{gpu}  {check}",
            r.spec.label(),
            n(r.stats.median),
            r.unit.as_str(),
            format!("{}-{}", n(r.stats.min), n(r.stats.max)),
            n(r.stats.stddev),
            r.pct_of_peak.map_or("-".into(), |p| format!("{p:.1}")),
        );
        if let Some(d) = drop {
            let _ = write!(
                o,
                "  ▼ {:.1}% below this GPU's median of {} runs",
                100.0 * d,
                past.len()
            );
        }
        match r.conditions.as_ref() {
            Some(c) if c.throttled() => {
                let _ = write!(o, "  throttled: {}", c.throttle.join(", "));
            }
            Some(c) if c.throttle_unknown => {
                let _ = write!(o, "  throttling: {}", c.throttle_words());
            }
            _ => {}
        }
        let _ = writeln!(o);
    }
    o
}
