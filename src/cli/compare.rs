use super::out::{self, out};
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::process::ExitCode;

use serde_json::json;

use crate::domain::{Direction, RunRecord, Series, SeriesKind};
use crate::error::UserError;
use crate::format::fit;

use super::common::{json_num, opt_num};
use crate::format::compact;

/// `gantry compare RUN RUN...`
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Two or more runs: ids, unique id prefixes or names; the first is the reference for deltas
    #[arg(required = true, num_args = 2..)]
    pub runs: Vec<String>,
    /// Only the params that differ between the runs
    #[arg(long)]
    pub diff_only: bool,
    /// Print JSON (docs/cli-json.md)
    #[arg(long)]
    pub json: bool,
}

/// One run's view of one metric.
struct Cell {
    last: Option<f64>,
    min: Option<f64>,
    max: Option<f64>,
    best: Option<(f64, i64)>,
}

pub async fn run(args: Args, workspace: &Option<std::path::PathBuf>) -> anyhow::Result<ExitCode> {
    let (_, store) = super::common::open(workspace).await?;
    let mut recs: Vec<RunRecord> = Vec::new();
    for r in &args.runs {
        let run = store.resolve_run(r).await?;
        if recs.iter().any(|x| x.run.id == run.id) {
            return Err(UserError::new(format!("`{r}` names run {} twice", run.short_id())).into());
        }
        recs.push(store.run_record(&run.id).await?.0);
    }
    let param_keys: BTreeSet<&String> = recs.iter().flat_map(|r| r.params.keys()).collect();
    let params: Vec<(&String, Vec<Option<&String>>, bool)> = param_keys
        .into_iter()
        .map(|k| {
            let vals: Vec<Option<&String>> = recs.iter().map(|r| r.params.get(k)).collect();
            let differs = vals.iter().any(|v| *v != vals[0]);
            (k, vals, differs)
        })
        .filter(|(_, _, d)| *d || !args.diff_only)
        .collect();
    let metric_keys: BTreeSet<String> = recs
        .iter()
        .flat_map(|r| r.metrics.keys().cloned())
        .collect();
    let mut metrics = Vec::new();
    for key in &metric_keys {
        let dir = Direction::guess(key);
        let mut cells = Vec::new();
        for r in &recs {
            let cell = match r.metrics.get(key) {
                None => Cell {
                    last: None,
                    min: None,
                    max: None,
                    best: None,
                },
                Some(s) => Cell {
                    last: s.last,
                    min: s.min,
                    max: s.max,
                    // The summary knows the best and its step; series written before it kept
                    // them are read.
                    best: match s.best(dir) {
                        Some(b) => Some(b),
                        None if s.min.is_some() => best(
                            &store
                                .load_series(&r.run.id, SeriesKind::Metric, key)
                                .await?,
                            dir,
                        ),
                        None => None,
                    },
                },
            };
            cells.push(cell);
        }
        metrics.push((key, dir, cells));
    }
    let mut conditions = Vec::with_capacity(recs.len());
    for r in &recs {
        conditions.push(crate::capture::conditions::load(&store, r).await?);
    }
    let verdicts = crate::domain::conditions::verdicts(&conditions);
    if args.json {
        let v = json!({
            "conditions": conditions,
            "verdicts": verdicts,
            "runs": recs.iter().map(|r| json!({"id": r.run.id, "name": r.run.name})).collect::<Vec<_>>(),
            "params": params.iter().map(|(k, vals, d)| json!({"key": k, "values": vals, "differs": d})).collect::<Vec<_>>(),
            "metrics": metrics.iter().map(|(k, dir, cells)| {
                let base = cells[0].last;
                json!({
                    "key": k,
                    "direction": dir,
                    "runs": cells.iter().zip(&recs).map(|(c, r)| json!({
                        "id": r.run.id,
                        "last": json_num(c.last),
                        "min": json_num(c.min),
                        "max": json_num(c.max),
                        "best": json_num(c.best.map(|b| b.0)),
                        "best_step": c.best.map(|b| b.1),
                        "delta_last": json_num(delta(c.last, base)),
                    })).collect::<Vec<_>>(),
                })
            }).collect::<Vec<_>>(),
        });
        out::json(&v)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut o = String::new();
    let col = ((78 - 20) / recs.len()).clamp(10, 24);
    let _ = write!(o, "  {:<18}", "PARAM");
    for r in &recs {
        let _ = write!(o, " {:<col$}", fit(&r.run.name, col));
    }
    o.push('\n');
    for (k, vals, differs) in &params {
        let _ = write!(o, "{} {:<18}", if *differs { "*" } else { " " }, fit(k, 18));
        for v in vals {
            let _ = write!(o, " {:<col$}", fit(v.map_or("-", |s| s.as_str()), col));
        }
        o.push('\n');
    }
    if params.is_empty() {
        o += if args.diff_only {
            "  (no params differ)\n"
        } else {
            "  (no params)\n"
        };
    } else if params.iter().any(|p| p.2) {
        o += "  (* marks params that differ)\n";
    }
    let w = (recs
        .iter()
        .map(|r| r.run.name.chars().count())
        .max()
        .unwrap_or(4))
    .clamp(4, 22);
    for (key, dir, cells) in &metrics {
        let way = match dir {
            Direction::Lower => "lower is better",
            Direction::Higher => "higher is better",
        };
        let _ = writeln!(o, "\n{key} ({way})");
        let _ = writeln!(
            o,
            "  {:<w$} {:>9} {:>9} {:>9} {:>16} {:>10}",
            "RUN", "LAST", "MIN", "MAX", "BEST@STEP", "Δ LAST"
        );
        let base = cells[0].last;
        for (i, (c, r)) in cells.iter().zip(&recs).enumerate() {
            let best = c
                .best
                .map_or_else(|| "-".into(), |(v, s)| format!("{}@{s}", compact(v)));
            let d = if i == 0 {
                "—".to_string()
            } else {
                delta(c.last, base).map_or_else(|| "-".into(), signed)
            };
            let _ = writeln!(
                o,
                "  {:<w$} {:>9} {:>9} {:>9} {:>16} {:>10}",
                fit(&r.run.name, w),
                opt_num(c.last),
                opt_num(c.min),
                opt_num(c.max),
                best,
                d
            );
        }
    }
    conditions_block(&mut o, &conditions, &verdicts);
    out!("{o}");
    Ok(ExitCode::SUCCESS)
}

/// "Why was this run slower?": each run's conditions side by side, rows that differ marked, and
/// the verdicts (docs/efficiency.md#why-slower).
fn conditions_block(
    o: &mut String,
    runs: &[crate::domain::conditions::RunConditions],
    verdicts: &[String],
) {
    let num = |x: Option<f64>, unit: &str, digits: usize| {
        x.map_or("-".to_string(), |v| format!("{v:.digits$}{unit}"))
    };
    let rows: Vec<(&str, Vec<String>)> = vec![
        (
            "steps/s",
            runs.iter()
                .map(|r| r.steps_per_s.map_or("-".into(), crate::format::four_digits))
                .collect(),
        ),
        ("MFU", runs.iter().map(|r| num(r.mfu, "%", 1)).collect()),
        (
            "GPU",
            runs.iter()
                .map(|r| r.gpu.clone().unwrap_or_else(|| "-".into()))
                .collect(),
        ),
        (
            "UUID",
            runs.iter()
                .map(|r| r.uuid.clone().unwrap_or_else(|| "-".into()))
                .collect(),
        ),
        (
            "SM clock",
            runs.iter()
                .map(|r| num(r.sm_clock_mhz, " MHz", 0))
                .collect(),
        ),
        (
            "power limit",
            runs.iter().map(|r| num(r.power_limit_w, " W", 0)).collect(),
        ),
        (
            "power",
            runs.iter().map(|r| num(r.power_w, " W", 0)).collect(),
        ),
        (
            "throttled",
            runs.iter()
                .map(|r| {
                    if r.throttled.is_empty() {
                        "-".to_string()
                    } else {
                        r.throttled
                            .iter()
                            .map(|(w, f)| format!("{w} {:.0}%", f * 100.0))
                            .collect::<Vec<_>>()
                            .join(", ")
                    }
                })
                .collect(),
        ),
        (
            "shared with",
            runs.iter().map(|r| num(r.others, " procs", 0)).collect(),
        ),
        (
            "PCIe",
            runs.iter()
                .map(|r| r.pcie.clone().unwrap_or_else(|| "-".into()))
                .collect(),
        ),
        (
            "host CPU",
            runs.iter().map(|r| num(r.host_cpu, "%", 0)).collect(),
        ),
        (
            "bench bf16",
            runs.iter()
                .map(|r| {
                    r.bench_tflops.map_or("-".into(), |(t, at)| {
                        format!(
                            "{t:.0} TFLOP/s ({})",
                            crate::format::ago(at, crate::domain::now_ms())
                        )
                    })
                })
                .collect(),
        ),
    ];
    if rows.iter().all(|(_, v)| v.iter().all(|x| x == "-")) {
        return;
    }
    let col = ((78 - 20) / runs.len()).clamp(10, 24);
    let _ = write!(o, "\n  {:<18}", "CONDITIONS");
    for r in runs {
        let _ = write!(o, " {:<col$}", fit(&r.name, col));
    }
    o.push('\n');
    for (label, vals) in rows.iter().filter(|(_, v)| v.iter().any(|x| x != "-")) {
        let differs = vals.iter().any(|v| *v != vals[0]);
        let _ = write!(o, "{} {:<18}", if differs { "*" } else { " " }, label);
        for v in vals {
            let _ = write!(o, " {:<col$}", fit(v, col));
        }
        o.push('\n');
    }
    for v in verdicts {
        let _ = writeln!(o, "  → {v}");
    }
}

/// The best value of a series and the step it was reached at (the first such step).
pub fn best(s: &Series, dir: Direction) -> Option<(f64, i64)> {
    s.best(dir)
}

fn delta(v: Option<f64>, base: Option<f64>) -> Option<f64> {
    Some(v? - base?)
}

fn signed(x: f64) -> String {
    if x > 0.0 {
        format!("+{}", compact(x))
    } else {
        compact(x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn best_skips_nan_and_keeps_the_first_step() {
        let s = Series {
            steps: vec![0, 1, 2, 3],
            times_ms: vec![0; 4],
            values: vec![3.0, f64::NAN, 1.0, 1.0],
        };
        assert_eq!(best(&s, Direction::Lower), Some((1.0, 2)));
        assert_eq!(best(&s, Direction::Higher), Some((3.0, 0)));
        assert_eq!(best(&Series::default(), Direction::Lower), None);
    }
}
