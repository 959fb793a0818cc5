//! The text of what changed between two versions of a model.

use crate::domain::{FileEntry, Manifest};

/// What changed from version a to version b.
pub fn manifest_diff(a: &Manifest, b: &Manifest) -> String {
    use std::fmt::Write;
    let mut o = String::new();
    let _ = writeln!(o, "{}@v{} -> {}@v{}", a.name, a.version, b.name, b.version);
    let (ra, rb) = (
        a.run.clone().unwrap_or_default(),
        b.run.clone().unwrap_or_default(),
    );
    let keys: std::collections::BTreeSet<&String> =
        ra.metrics.keys().chain(rb.metrics.keys()).collect();
    if !keys.is_empty() {
        let _ = writeln!(o, "\nmetrics");
        for k in keys {
            let (x, y) = (ra.metrics.get(k), rb.metrics.get(k));
            let d = match (x, y) {
                (Some(x), Some(y)) => {
                    let d = y - x;
                    let better = crate::domain::Direction::guess(k).better(*y, *x);
                    format!(
                        "{}{} ({})",
                        if d > 0.0 { "+" } else { "" },
                        super::compact(d),
                        if d == 0.0 {
                            "same"
                        } else if better {
                            "better"
                        } else {
                            "worse"
                        }
                    )
                }
                _ => String::new(),
            };
            let _ = writeln!(
                o,
                "  {k:<24} {:>10} -> {:<10} {d}",
                x.map_or("-".into(), |v| super::compact(*v)),
                y.map_or("-".into(), |v| super::compact(*v))
            );
        }
    }
    let pk: std::collections::BTreeSet<&String> =
        ra.params.keys().chain(rb.params.keys()).collect();
    let changed: Vec<_> = pk
        .into_iter()
        .filter(|k| ra.params.get(*k) != rb.params.get(*k))
        .collect();
    if !changed.is_empty() {
        let _ = writeln!(o, "\nparams");
        for k in changed {
            let _ = writeln!(
                o,
                "  {k:<24} {} -> {}",
                ra.params.get(k).map_or("-", |v| v),
                rb.params.get(k).map_or("-", |v| v)
            );
        }
    }
    let _ = writeln!(o, "\nfiles");
    let fa: std::collections::BTreeMap<&str, &FileEntry> =
        a.files.iter().map(|f| (f.path.as_str(), f)).collect();
    let fb: std::collections::BTreeMap<&str, &FileEntry> =
        b.files.iter().map(|f| (f.path.as_str(), f)).collect();
    let mut any = false;
    for (p, f) in &fb {
        match fa.get(p) {
            None => {
                any = true;
                let _ = writeln!(o, "  + {p} ({})", super::size(f.size));
            }
            Some(old) if old.blake3 != f.blake3 => {
                any = true;
                let _ = writeln!(
                    o,
                    "  ~ {p} ({} -> {})",
                    super::size(old.size),
                    super::size(f.size)
                );
            }
            _ => {}
        }
    }
    for (p, f) in &fa {
        if !fb.contains_key(p) {
            any = true;
            let _ = writeln!(o, "  - {p} ({})", super::size(f.size));
        }
    }
    if !any {
        let _ = writeln!(o, "  (the same files)");
    }
    let (ca, cb) = (ra.code_commit.as_deref(), rb.code_commit.as_deref());
    let _ = writeln!(
        o,
        "\ncode     {}",
        match (ca, cb) {
            (Some(x), Some(y)) if x == y => format!("the same commit {}", &x[..x.len().min(12)]),
            (Some(x), Some(y)) => format!(
                "{}..{} (git log {}..{})",
                &x[..x.len().min(12)],
                &y[..y.len().min(12)],
                &x[..x.len().min(12)],
                &y[..y.len().min(12)]
            ),
            _ => "unknown for one or both".into(),
        }
    );
    o
}
