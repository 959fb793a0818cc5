//! The report of `gantry doctor` on a screen: one line a section, then each problem with its fix.

use super::super::out::outln;
use super::Report;

pub(super) fn print(r: &Report) {
    let b = &r.gantry;
    outln!(
        "gantry     {} ({}, {}) · needs glibc {} · this box has glibc {}",
        b.version,
        b.target,
        b.profile,
        b.glibc_floor.as_deref().unwrap_or("?"),
        b.glibc_here.as_deref().unwrap_or("?")
    );
    if let Some(w) = &r.workspace {
        outln!("workspace  {} ({})", w.root, w.source);
    }
    if let Some(s) = &r.store {
        let mut line = format!("store      {} {}", s.kind, s.location);
        if let Some(h) = &s.host {
            line += &format!(" · host {h}");
        }
        if let Some(v) = &s.server {
            line += &format!(" · {v}");
        }
        if let Some(v) = s.schema {
            line += &format!(" · schema {v}");
        }
        if let Some(ms) = s.latency_ms {
            line += &format!(" · {ms:.1} ms a round trip");
        }
        if let Some(b) = s.bytes {
            line += &format!(" · {}", crate::format::size(b));
        }
        if let Some(e) = &s.error {
            line += &format!(" · {e}");
        }
        outln!("{line}");
    }
    let c = &r.config;
    outln!(
        "config     {} ({}) · theme {}{}",
        c.config.as_deref().unwrap_or("no config directory"),
        if c.config_exists {
            "read"
        } else {
            "not there: built-in settings"
        },
        c.theme,
        c.workspace_config
            .as_deref()
            .map(|p| format!(" · workspace config {p}"))
            .unwrap_or_default()
    );
    let t = &r.terminal;
    outln!(
        "terminal   TERM={} · colours {} · {} · {}",
        t.term.as_deref().unwrap_or("unset"),
        t.colors,
        t.size
            .map(|(w, h)| format!("{w}×{h}"))
            .unwrap_or_else(|| "not a terminal".into()),
        if t.over_ssh { "over SSH" } else { "local" }
    );
    let n = &r.nvidia;
    match &n.error {
        Some(e) => outln!("NVIDIA     {} · {e}", n.source),
        None => {
            outln!(
                "NVIDIA     {} · driver {} · NVML {} · CUDA {}",
                n.source,
                n.driver.as_deref().unwrap_or("?"),
                n.nvml.as_deref().unwrap_or("n/a"),
                n.cuda.as_deref().unwrap_or("?")
            );
            for g in &n.gpus {
                outln!("  GPU {}    {} {}", g.index, g.name, g.uuid);
                if !g.unsupported.is_empty() {
                    outln!("           not given: {}", g.unsupported.join(", "));
                }
            }
        }
    }
    for (i, l) in r.cuda.iter().enumerate() {
        let head = if i == 0 { "CUDA" } else { "" };
        match (&l.path, &l.version) {
            (Some(p), v) => outln!(
                "{head:<10} {:<12} {} {p}",
                l.name,
                v.as_deref().unwrap_or("?")
            ),
            (None, _) => outln!(
                "{head:<10} {:<12} {}",
                l.name,
                l.error.as_deref().unwrap_or("not found")
            ),
        }
    }
    outln!("{:<10} {:<12} {}", "", "from", r.cuda_dir);
    let p = &r.python;
    match &p.error {
        Some(e) => outln!("python     {e}"),
        None => outln!(
            "python     {} ({}) · mlflow {} · torch {}",
            p.version.as_deref().unwrap_or("?"),
            p.path.as_deref().unwrap_or("?"),
            p.mlflow.as_deref().unwrap_or("not importable"),
            p.torch.as_deref().unwrap_or("not importable")
        ),
    }
    let warnings = r.problems.iter().filter(|p| p.level == "warning").count();
    outln!();
    if r.problems.is_empty() {
        outln!("all is well");
        return;
    }
    outln!(
        "{warnings} warning{}, {} note{}:",
        if warnings == 1 { "" } else { "s" },
        r.problems.len() - warnings,
        if r.problems.len() - warnings == 1 {
            ""
        } else {
            "s"
        }
    );
    for p in &r.problems {
        let mark = if p.level == "warning" { "!" } else { "·" };
        outln!("  {mark} {}: {}", p.area, p.what);
        outln!("      → {}", p.fix);
    }
}
