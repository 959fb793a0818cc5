//! `gantry bench --history`: the stored results by device, each benchmark's trend, its last median against the median before it, and any drop.

use super::*;

/// `--history`: the stored results by device, host and benchmark, oldest device first.
pub(super) async fn history(
    args: &Args,
    req: &Request,
    store: &crate::store::Store,
) -> anyhow::Result<ExitCode> {
    let all = store.bench_history(None).await?;
    // (device UUID, host) in the order first stored, then each benchmark in that order.
    let mut devices: Vec<(&str, &str)> = Vec::new();
    for h in &all {
        if !devices.contains(&(h.device_uuid.as_str(), h.host.as_str())) {
            devices.push((h.device_uuid.as_str(), h.host.as_str()));
        }
    }
    let now = crate::domain::now_ms();
    let mut json_rows = Vec::new();
    let mut text = String::new();
    for (uuid, host) in devices {
        let mine: Vec<&crate::store::StoredBench> = all
            .iter()
            .filter(|h| h.device_uuid == uuid && h.host == host && req.wants(h.spec.kind))
            .collect();
        let Some(first) = mine.first() else { continue };
        let mut specs: Vec<&bench::Spec> = Vec::new();
        for h in &mine {
            if !specs.contains(&&h.spec) {
                specs.push(&h.spec);
            }
        }
        specs.sort_by_key(|s| (s.kind, s.precision, s.size, s.variant.clone()));
        use std::fmt::Write;
        let _ = writeln!(
            text,
            "{}{} ({}) · {host} · {}",
            if text.is_empty() { "" } else { "\n" },
            first.device,
            first.backend,
            uuid
        );
        let head = format!(
            "{:<28} {:>4}  {:<10} {:>18} {:>13}  {:<9}",
            "BENCHMARK", "RUNS", "TREND", "LAST", "MEDIAN BEFORE", "LAST RUN"
        );
        let _ = writeln!(text, "{}", head.trim_end());
        for spec in specs {
            let runs: Vec<&&crate::store::StoredBench> =
                mine.iter().filter(|h| &h.spec == spec).collect();
            let Some(last) = runs.last() else { continue };
            let values: Vec<f64> = runs.iter().map(|h| h.stats.median).collect();
            let before = &values[..values.len() - 1];
            let med = bench::stats::median(before);
            let drop = bench::drop_below(last.stats.median, last.unit, before);
            let throttle = last
                .conditions
                .as_ref()
                .filter(|c| c.throttled())
                .map(|c| c.throttle.join(", "));
            let mut line = format!(
                "{:<28} {:>4}  {:<10} {:>18} {:>13}  {:<9}",
                spec.label(),
                runs.len(),
                crate::format::sparkline(&values, 10),
                format!(
                    "{} {}",
                    crate::format::four_digits(last.stats.median),
                    last.unit.as_str()
                ),
                med.map_or("-".into(), crate::format::four_digits),
                crate::format::ago(last.started_ms, now),
            );
            if let Some(d) = drop {
                line.push_str(&format!("  ▼ {:.1}% below median", 100.0 * d));
            }
            if let Some(t) = &throttle {
                line.push_str(&format!(" ({t})"));
            }
            let _ = writeln!(text, "{}", line.trim_end());
            json_rows.push(json!({
                "device": last.device, "device_uuid": uuid, "host": host, "backend": last.backend,
                "label": spec.label(), "spec": spec, "unit": last.unit,
                "runs": runs.len(), "medians": values,
                "last": last.stats.median, "last_ms": last.started_ms,
                "median_before": med, "drop_pct": drop.map(|d| 100.0 * d),
                "conditions": last.conditions,
            }));
        }
    }
    if args.json {
        out::json(&json_rows)?;
    } else if text.is_empty() {
        eprintln!("gantry: no benchmark results are stored in this workspace yet");
        eprintln!("  to fix: `gantry bench` (or `gantry bench --cpu`) runs them and stores each");
    } else {
        out!("{text}");
    }
    Ok(ExitCode::SUCCESS)
}
