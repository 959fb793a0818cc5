//! A preflight report in words: the lines `gantry run --preflight` and `gantry show` print, and
//! the one line of a run's overview.

use crate::domain::preflight::{Outcome, Report, fig, link};

/// "refused in 12.4 s: GPU 0 (NVIDIA H200): gemm bf16 8192 at 612 TFLOP/s, 14% below … (+1
/// more)", or "passed in 8.1 s: 3 benchmarks on 1 GPU".
pub fn summary(r: &Report) -> String {
    let head = format!("{} in {:.1} s", r.outcome.as_str(), r.seconds);
    if let Some(first) = r.findings.first() {
        let more = match r.findings.len() {
            1 => String::new(),
            n => format!(" (+{} more)", n - 1),
        };
        return format!("{head}: {}{more}", first.text);
    }
    if r.outcome == Outcome::Unchecked {
        return format!(
            "{head}: {}",
            r.notes
                .first()
                .map_or("nothing benchmarked", |n| n.as_str())
        );
    }
    let devices = {
        let mut d: Vec<&str> = r.benchmarks.iter().map(|b| b.uuid.as_str()).collect();
        d.dedup();
        d.len()
    };
    format!(
        "{head}: {} benchmarks on {} {}, {} GPU{} checked",
        r.benchmarks.len(),
        devices,
        if r.backend == "cpu" {
            "CPU"
        } else {
            "device(s)"
        },
        r.gpus.len(),
        if r.gpus.len() == 1 { "" } else { "s" }
    )
}

/// Every benchmark and GPU checked, then each finding, then the notes.
pub fn lines(r: &Report) -> Vec<String> {
    let mut out = vec![format!(
        "{} ({}) in {:.1} s on the {} backend",
        r.outcome.as_str(),
        r.mode.as_str(),
        r.seconds,
        r.backend
    )];
    for b in &r.benchmarks {
        let against = match (b.median, b.short()) {
            (Some(m), Some(s)) => format!(
                "median {} of {} run{}, {:+.1}%",
                fig(m),
                b.past,
                if b.past == 1 { "" } else { "s" },
                -s * 100.0
            ),
            _ => "first result: its history starts".into(),
        };
        let mut line = format!(
            "  {} {}: {} {} ({against})",
            b.device,
            b.label,
            fig(b.value),
            b.unit.as_str()
        );
        if !b.correct {
            line.push_str(" WRONG RESULT");
        }
        if let Some(c) = &b.conditions {
            line.push_str(&format!(" · {c}"));
        }
        if !b.held_by.is_empty() {
            line.push_str(&format!(", held by {}", b.held_by));
        }
        out.push(line);
    }
    for g in &r.gpus {
        let count = |now: Option<u64>, before: Option<u64>| match (now, before) {
            (Some(n), Some(b)) => format!("{n} (was {b})"),
            (Some(n), None) => n.to_string(),
            _ => "n/a".into(),
        };
        out.push(format!(
            "  GPU {} ({}): PCIe {} of {} · ECC uncorrected {} · retired {}{} · XID {}",
            g.index,
            g.name,
            link(g.pcie_gen, g.pcie_width),
            link(g.pcie_gen_max, g.pcie_width_max),
            count(g.ecc_uncorrected, g.ecc_before),
            count(g.retired_pages, g.retired_before),
            if g.retired_pending == Some(true) {
                ", pending"
            } else {
                ""
            },
            if g.xids.is_empty() {
                "none".to_string()
            } else {
                g.xids
                    .iter()
                    .map(|x| x.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        ));
    }
    for f in &r.findings {
        out.push(format!("  ! {}", f.text));
    }
    for n in &r.notes {
        out.push(format!("  note: {n}"));
    }
    out
}
