//! `gantry model eval NAME@A NAME@B … -- CMD ARGS`: one evaluation over several versions of a
//! model, each checked out once into a cache keyed by its content, run as a tracked run on the
//! same GPU (in this process, as `gantry run` runs one, so capture is the same), compared metric by metric against
//! a baseline, and gated for CI. See docs/eval.md.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use serde::Serialize;
use serde_json::json;

use super::out::{self, outln};
use crate::domain::model::Manifest;
use crate::domain::{Direction, RunRecord, Series, SeriesKind};
use crate::error::UserError;
use crate::filter::gate::{self, Gate};
use crate::registry::Registry;
use crate::store::Store;
use crate::workspace::Workspace;

#[derive(clap::Args, Debug)]
pub struct EvalArgs {
    /// The versions: NAME@vN, NAME@alias or NAME (its latest), all of one model
    #[arg(required = true, value_name = "NAME@VERSION")]
    pub specs: Vec<String>,
    /// The GPU every version runs on: an index, a UUID, or `free` (an idle one, picked once)
    #[arg(long, value_name = "N|UUID|free")]
    pub gpu: Option<String>,
    /// Run each version K times, interleaved (A B A B …): the table shows medians and spreads
    #[arg(long, default_value_t = 1, value_name = "K")]
    pub repeat: usize,
    /// The version the others are compared with [default: the first]
    #[arg(long, value_name = "NAME@VERSION")]
    pub baseline: Option<String>,
    /// A condition every other version must meet against the baseline, such as
    /// 'val/acc>=baseline-0.002' or 'latency_p99<=1.1*baseline' (repeatable); exit 1 when one fails
    #[arg(long = "gate", value_name = "EXPR")]
    pub gates: Vec<String>,
    /// Print the comparison as JSON
    #[arg(long)]
    pub json: bool,
    /// The evaluation command, after `--`; `{model}` in it is the version's checkout
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<String>,
}

/// One version in the evaluation.
#[derive(Serialize)]
struct Version {
    spec: String,
    version: u32,
    dir: String,
    /// Whether its files were copied into the cache by this eval (false: already there).
    copied: bool,
    runs: Vec<String>,
    exit_codes: Vec<i32>,
    /// Per metric: median, min and max over the repeats.
    metrics: BTreeMap<String, Spread>,
}

#[derive(Serialize, Clone, Copy)]
struct Spread {
    median: f64,
    min: f64,
    max: f64,
}

#[derive(Serialize)]
struct GateResult {
    gate: String,
    version: String,
    value: Option<f64>,
    bound: Option<f64>,
    ok: bool,
}

pub async fn run(
    args: EvalArgs,
    ws: &Workspace,
    store: &Store,
    reg: &Registry,
    replay: &Option<PathBuf>,
) -> anyhow::Result<ExitCode> {
    let gates: Vec<Gate> = args
        .gates
        .iter()
        .map(|g| {
            gate::parse(g).map_err(|e| {
                UserError::new(format!("--gate {}", e.pointed(g)))
                    .hint("METRIC OP BOUND, OP one of = != < <= > >=, BOUND a number, baseline, baseline+N, baseline-N or N*baseline (docs/eval.md)")
            })
        })
        .collect::<Result<_, _>>()?;
    if !(1..=100).contains(&args.repeat) {
        return Err(
            UserError::new(format!("--repeat {} is out of range", args.repeat))
                .hint("give 1 to 100")
                .into(),
        );
    }
    let versions: Vec<Manifest> = args
        .specs
        .iter()
        .map(|s| reg.resolve(s))
        .collect::<Result<_, _>>()?;
    let name = versions[0].name.clone();
    if let Some(other) = versions.iter().find(|m| m.name != name) {
        return Err(UserError::new(format!(
            "{} is another model than {name}: an eval compares versions of one model",
            other.name
        ))
        .into());
    }
    let mut seen = std::collections::BTreeSet::new();
    if let Some(dup) = versions.iter().find(|m| !seen.insert(m.version)) {
        return Err(
            UserError::new(format!("{name}@v{} is named twice", dup.version))
                .hint("name each version once; --repeat runs one several times")
                .into(),
        );
    }
    let baseline = match &args.baseline {
        None => 0,
        Some(b) => {
            let m = reg.resolve(b)?;
            versions
                .iter()
                .position(|v| v.version == m.version && v.name == m.name)
                .ok_or_else(|| {
                    UserError::new(format!(
                        "--baseline {b} is not among the versions evaluated"
                    ))
                    .hint("name it among the versions too")
                })?
        }
    };
    let gpu = pick_gpu(args.gpu.as_deref(), replay)?;
    let id = uuid::Uuid::new_v4().simple().to_string()[..8].to_string();
    let mut out: Vec<Version> = Vec::new();
    for m in &versions {
        let (dir, copied) = cached_checkout(ws, reg, m)?;
        out.push(Version {
            spec: format!("{}@v{}", m.name, m.version),
            version: m.version,
            dir: dir.display().to_string(),
            copied,
            runs: Vec::new(),
            exit_codes: Vec::new(),
            metrics: BTreeMap::new(),
        });
    }
    if !args.json {
        eprintln!(
            "gantry: eval {id}: {} versions of {name}{}{}",
            out.len(),
            if args.repeat > 1 {
                format!(", {} times each, interleaved", args.repeat)
            } else {
                String::new()
            },
            gpu.as_ref()
                .map(|(_, why)| format!(", on {why}"))
                .unwrap_or_default()
        );
    }
    for k in 0..args.repeat {
        for v in out.iter_mut() {
            let run_name = format!("eval-{id}-v{}-{}", v.version, k + 1);
            let code = run_one(
                ws,
                store,
                &args.command,
                &name,
                v,
                &id,
                &run_name,
                gpu.as_ref(),
            )
            .await?;
            if code != 0 {
                eprintln!(
                    "gantry: {} exited {code} (run {run_name}); the other versions still run",
                    v.spec
                );
            }
            v.runs.push(run_name);
            v.exit_codes.push(code);
        }
    }
    // What the runs recorded, and what eval adds to each: wall time, throughput, latency
    // percentiles and peak GPU memory.
    let records: Vec<RunRecord> = store
        .run_records()
        .await?
        .into_iter()
        .filter(|r| r.tags.get("eval") == Some(&id))
        .collect();
    for v in out.iter_mut() {
        let mut per_metric: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        for run_name in v.runs.iter_mut() {
            let Some(r) = records.iter().find(|r| r.run.name == *run_name) else {
                continue;
            };
            let mut values = r.last_values();
            let extra = speed(store, r).await;
            let batch: Vec<(String, Series)> = extra
                .iter()
                .map(|(k, x)| {
                    let mut s = Series::with_capacity(1);
                    s.push(0, crate::domain::now_ms(), *x);
                    (k.clone(), s)
                })
                .collect();
            let refs: Vec<(SeriesKind, &str, &Series)> = batch
                .iter()
                .map(|(k, s)| (SeriesKind::Metric, k.as_str(), s))
                .collect();
            store.append(&r.run.id, &refs).await?;
            // A per-request latency series is shown by its percentiles, not its last request.
            for lat in ["latency", "latency_ms"] {
                if extra.contains_key(&format!("{lat}_p50")) {
                    values.remove(lat);
                }
            }
            values.extend(extra);
            for (k, x) in values {
                per_metric.entry(k).or_default().push(x);
            }
            *run_name = r.run.id.clone();
        }
        v.metrics = per_metric
            .into_iter()
            .filter(|(_, xs)| !xs.is_empty())
            .map(|(k, mut xs)| {
                xs.sort_by(f64::total_cmp);
                let s = Spread {
                    median: crate::bench::stats::median(&xs).unwrap_or(xs[0]),
                    min: xs[0],
                    max: xs[xs.len() - 1],
                };
                (k, s)
            })
            .collect();
    }
    let results = check_gates(&gates, &out, baseline);
    for (i, v) in out.iter().enumerate() {
        let verdict = if i == baseline {
            "baseline"
        } else if results.iter().any(|g| g.version == v.spec && !g.ok) {
            "fail"
        } else {
            "pass"
        };
        for run in &v.runs {
            let _ = store
                .set_tags(run, &[("eval_gate".to_string(), verdict.to_string())])
                .await;
        }
    }
    let failed_runs = out.iter().any(|v| v.exit_codes.iter().any(|c| *c != 0));
    let failed_gates = results.iter().any(|g| !g.ok);
    let directions = crate::config::Config::load().0.metrics;
    if args.json {
        out::json(&json!({
            "eval": id,
            "model": name,
            "baseline": out[baseline].spec,
            "gpu": gpu.as_ref().map(|(v, _)| v),
            "repeat": args.repeat,
            "versions": out,
            "gates": results,
            "passed": !failed_gates && !failed_runs,
        }))?;
    } else {
        print_table(&out, baseline, &directions);
        for g in &results {
            let mark = if g.ok { "ok  " } else { "FAIL" };
            outln!(
                "{mark} {} for {}: {} against {}",
                g.gate,
                g.version,
                g.value
                    .map_or("no value".into(), crate::format::four_digits),
                g.bound
                    .map_or("no baseline value".into(), crate::format::four_digits)
            );
        }
        outln!(
            "eval {id}: {}",
            match (failed_gates, failed_runs) {
                (false, false) => "passed".to_string(),
                (true, _) => "a gate failed".to_string(),
                (false, true) => "a version's command failed".to_string(),
            }
        );
    }
    Ok(if failed_gates || failed_runs {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// The evaluations of `m`, oldest first: (eval id, run name, gate verdict).
pub async fn evaluated_by(
    store: &Store,
    m: &Manifest,
) -> anyhow::Result<Vec<(String, String, String)>> {
    let want = format!("{}@v{}", m.name, m.version);
    let mut runs: Vec<RunRecord> = store
        .run_records()
        .await?
        .into_iter()
        .filter(|r| r.tags.contains_key("eval") && r.tags.get("model") == Some(&want))
        .collect();
    runs.sort_by_key(|r| r.run.started_ms);
    Ok(runs
        .into_iter()
        .map(|r| {
            (
                r.tags["eval"].clone(),
                r.run.name.clone(),
                r.tags.get("eval_gate").cloned().unwrap_or_default(),
            )
        })
        .collect())
}

/// Ok when eval `id` evaluated `m` and its gates passed there; else why not, as an error that
/// refuses the promotion.
pub async fn gate_passed(store: &Store, id: &str, m: &Manifest) -> anyhow::Result<()> {
    let want = format!("{}@v{}", m.name, m.version);
    let runs: Vec<RunRecord> = store
        .run_records()
        .await?
        .into_iter()
        .filter(|r| r.tags.get("eval").map(String::as_str) == Some(id))
        .collect();
    if runs.is_empty() {
        return Err(UserError::new(format!("there is no eval {id}"))
            .hint("`gantry model eval` prints its id; `gantry runs --filter tag:eval=ID` lists its runs")
            .into());
    }
    let mine: Vec<&RunRecord> = runs
        .iter()
        .filter(|r| r.tags.get("model") == Some(&want))
        .collect();
    if mine.is_empty() {
        return Err(
            UserError::new(format!("eval {id} did not evaluate {want}; not promoted")).into(),
        );
    }
    match mine
        .iter()
        .find_map(|r| r.tags.get("eval_gate"))
        .map(String::as_str)
    {
        Some("pass") | Some("baseline") => Ok(()),
        Some("fail") => Err(UserError::new(format!(
            "{want} failed eval {id}'s gates; not promoted"
        ))
        .hint("`gantry model eval` again after fixing it, or promote without --if-eval")
        .into()),
        _ => {
            Err(UserError::new(format!("eval {id} never finished for {want}; not promoted")).into())
        }
    }
}

/// A version's files in `.gantry/cache/models/<content key>/`, checked out (and verified) only
/// the first time: (the folder, whether this call copied it).
fn cached_checkout(
    ws: &Workspace,
    reg: &Registry,
    m: &Manifest,
) -> anyhow::Result<(PathBuf, bool)> {
    let mut h = blake3::Hasher::new();
    let mut files: Vec<(&str, &str)> = m
        .files
        .iter()
        .map(|f| (f.path.as_str(), f.blake3.as_str()))
        .collect();
    files.sort();
    for (p, b) in files {
        h.update(p.as_bytes());
        h.update(b"\0");
        h.update(b.as_bytes());
        h.update(b"\n");
    }
    let key = h.finalize().to_hex()[..24].to_string();
    let dir = ws.dir().join("cache/models").join(&key);
    if dir.join(".complete").exists() {
        return Ok((dir, false));
    }
    let tmp = ws
        .dir()
        .join("cache/models")
        .join(format!(".{key}.tmp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp)?;
    reg.checkout(m, &tmp, &|_| {})?;
    std::fs::write(
        tmp.join(".complete"),
        format!("{}@v{}\n", m.name, m.version),
    )?;
    match std::fs::rename(&tmp, &dir) {
        Ok(()) => Ok((dir, true)),
        // Another eval made it meanwhile: theirs is as good.
        Err(_) if dir.join(".complete").exists() => {
            let _ = std::fs::remove_dir_all(&tmp);
            Ok((dir, false))
        }
        Err(e) => Err(
            UserError::new(format!("cannot fill the model cache {}", dir.display()))
                .cause(e)
                .into(),
        ),
    }
}

/// CUDA_VISIBLE_DEVICES for every version, with how to name it: an index or UUID as given, or
/// for `free` the idle GPU with the most memory free, read once through the GPUs room.
fn pick_gpu(
    arg: Option<&str>,
    replay: &Option<PathBuf>,
) -> Result<Option<(String, String)>, UserError> {
    let Some(arg) = arg else {
        return Ok(None);
    };
    if arg != "free" {
        return Ok(Some((arg.to_string(), format!("GPU {arg}"))));
    }
    use crate::gpu::source::{GpuSource, NvmlSource, ReplaySource};
    let snap = match replay {
        Some(p) => ReplaySource::open(p, 0.0).and_then(|mut s| s.sample()),
        None => NvmlSource::open().and_then(|mut s| s.sample()),
    }
    .map_err(|why| UserError::new(format!("--gpu free: {why}")))?;
    // The same rule as `gantry gpu --free`: no process, memory and utilisation under its bounds.
    let d = crate::fleet::FreeRule::default();
    let rule = crate::fleet::FreeRule {
        max_mem_used: crate::config::Config::load()
            .0
            .fleet
            .free_mem_used_mib
            .map_or(d.max_mem_used, |m| m << 20),
        ..d
    };
    let free = snap
        .gpus
        .iter()
        .filter(|g| {
            !snap.processes.iter().any(|p| p.gpu == g.index)
                && g.mem_used.is_some_and(|m| m <= rule.max_mem_used)
                && g.util.is_some_and(|u| u <= rule.max_util)
        })
        .max_by_key(|g| {
            g.mem_total
                .unwrap_or(0)
                .saturating_sub(g.mem_used.unwrap_or(0))
        });
    match free {
        Some(g) => Ok(Some((
            g.uuid.clone(),
            format!("GPU {} ({}, idle)", g.index, g.name),
        ))),
        None => Err(UserError::new("--gpu free: every GPU is in use")
            .hint("`gantry gpu` shows who holds them; pick one with --gpu N")),
    }
}

/// One run of the command on one version, as `gantry run` makes one (in this process: no
/// second start of gantry per version): its exit code. The command's output goes to standard
/// error, so the comparison alone is on standard output.
#[allow(clippy::too_many_arguments)]
async fn run_one(
    ws: &Workspace,
    store: &Store,
    command: &[String],
    model: &str,
    v: &Version,
    id: &str,
    run_name: &str,
    gpu: Option<&(String, String)>,
) -> anyhow::Result<i32> {
    use crate::capture::supervise::{self, Extra, RunRequest};
    let req = RunRequest {
        name: Some(run_name.to_string()),
        experiment: format!("eval/{model}"),
        params: Vec::new(),
        tags: vec![
            ("model".to_string(), format!("{model}@v{}", v.version)),
            ("eval".to_string(), id.to_string()),
        ],
        notes: String::new(),
        auto_params: false,
        command: command
            .iter()
            .map(|a| a.replace("{model}", &v.dir))
            .collect(),
    };
    let run = supervise::prepare(ws, store, &req).await?;
    let mut env = vec![("GANTRY_MODEL_DIR".to_string(), v.dir.clone())];
    if let Some((visible, _)) = gpu {
        env.push(("CUDA_VISIBLE_DEVICES".to_string(), visible.clone()));
    }
    let extra = Extra {
        env,
        stdout_to_stderr: true,
        sampling: super::common::sampling(),
    };
    let started = Instant::now();
    let code = match supervise::supervise_with(store, &run, false, SAMPLE_EVERY, &extra).await {
        Ok(code) => code,
        // The command could not start: the run is recorded as failed; say why and go on.
        Err(e) => {
            eprintln!("gantry: {}: {e:#}", v.spec);
            127
        }
    };
    tracing::info!(
        "eval {id}: {} took {:.3} s",
        v.spec,
        started.elapsed().as_secs_f64()
    );
    Ok(code)
}

/// How often an eval run's processes are sampled, as `gantry run`'s default.
const SAMPLE_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// What eval adds to a run: `wall_s`; `samples_per_s` and `tokens_per_s` from a `samples` or
/// `tokens` counter; `NAME_p50`, `_p90`, `_p99` of each per-request latency series (a metric
/// named `latency` or `latency_ms`, one point a request); `gpu_mem_peak_mb` from the sampler.
async fn speed(store: &Store, r: &RunRecord) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    let Some(end) = r.run.ended_ms else {
        return out;
    };
    let wall = (end - r.run.started_ms) as f64 / 1000.0;
    out.insert("wall_s".to_string(), wall);
    for counter in ["samples", "tokens"] {
        if let Some(n) = r.metrics.get(counter).and_then(|s| s.last)
            && wall > 0.0
        {
            out.insert(format!("{counter}_per_s"), n / wall);
        }
    }
    for lat in ["latency", "latency_ms"] {
        if !r.metrics.contains_key(lat) {
            continue;
        }
        if let Ok(s) = store.load_series(&r.run.id, SeriesKind::Metric, lat).await {
            let mut xs = s.values.clone();
            xs.retain(|x| x.is_finite());
            xs.sort_by(f64::total_cmp);
            for (q, tag) in [(0.5, "p50"), (0.9, "p90"), (0.99, "p99")] {
                if let Some(x) = quantile(&xs, q) {
                    out.insert(format!("{lat}_{tag}"), x);
                }
            }
        }
    }
    if let Ok(s) = store
        .load_series(&r.run.id, SeriesKind::System, "gpu_mem_mb")
        .await
        && let Some(peak) = s.values.iter().copied().reduce(f64::max)
    {
        out.insert("gpu_mem_peak_mb".to_string(), peak);
    }
    out
}

/// Which way a metric improves: eval's own (time and memory down, rates up), else the guess
/// from its name.
fn direction(metric: &str) -> Direction {
    match metric {
        "wall_s" | "gpu_mem_peak_mb" => Direction::Lower,
        m if m.ends_with("_per_s") => Direction::Higher,
        m => Direction::guess(m),
    }
}

/// The `q` quantile of sorted values, by the nearest rank.
fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

/// Each gate on each version but the baseline.
fn check_gates(gates: &[Gate], out: &[Version], baseline: usize) -> Vec<GateResult> {
    let mut results = Vec::new();
    for (i, v) in out.iter().enumerate() {
        if i == baseline {
            continue;
        }
        for g in gates {
            let value = v.metrics.get(&g.metric).map(|s| s.median);
            let base = out[baseline].metrics.get(&g.metric).map(|s| s.median);
            let bound = g.bound.value(base);
            results.push(GateResult {
                gate: g.text.clone(),
                version: v.spec.clone(),
                value,
                bound,
                ok: g.holds(value, base) == Some(true),
            });
        }
    }
    results
}

/// Each metric per version with its delta to the baseline, coloured by the metric's direction
/// on a terminal (`+` better, `-` worse otherwise).
fn print_table(out: &[Version], baseline: usize, directions: &BTreeMap<String, Direction>) {
    use std::io::IsTerminal;
    let colour = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let metrics: std::collections::BTreeSet<&String> =
        out.iter().flat_map(|v| v.metrics.keys()).collect();
    let w = metrics
        .iter()
        .map(|m| m.chars().count())
        .max()
        .unwrap_or(6)
        .max(6);
    let mut head = format!("{:<w$}", "METRIC");
    for v in out {
        head += &format!(" {:>22}", v.spec);
    }
    outln!("{head}");
    for m in metrics {
        let dir = directions.get(m).copied().unwrap_or_else(|| direction(m));
        let base = out[baseline].metrics.get(m).map(|s| s.median);
        let mut line = format!("{m:<w$}");
        for (i, v) in out.iter().enumerate() {
            let Some(s) = v.metrics.get(m) else {
                line += &format!(" {:>22}", "-");
                continue;
            };
            let mut cell = crate::format::four_digits(s.median);
            if s.max > s.min {
                cell += &format!(" ±{}", crate::format::four_digits((s.max - s.min) / 2.0));
            }
            let mut delta = String::new();
            if let (false, Some(b)) = (i == baseline, base) {
                let d = s.median - b;
                if d != 0.0 {
                    let better = dir.better(s.median, b);
                    let text = format!(
                        " ({}{})",
                        if d > 0.0 { "+" } else { "" },
                        crate::format::four_digits(d)
                    );
                    delta = match (colour, better) {
                        (true, true) => format!("\x1b[32m{text}\x1b[0m"),
                        (true, false) => format!("\x1b[31m{text}\x1b[0m"),
                        (false, true) => format!("{text}+"),
                        (false, false) => format!("{text}-"),
                    };
                }
            }
            let shown = format!("{cell}{delta}");
            let visible = cell.chars().count()
                + if delta.is_empty() {
                    0
                } else if colour {
                    delta.chars().count() - 9
                } else {
                    delta.chars().count()
                };
            line += &" ".repeat(23usize.saturating_sub(visible));
            line += &shown;
        }
        out::raw(&format!("{line}\n"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_by_nearest_rank() {
        let xs: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&xs, 0.5), Some(50.0));
        assert_eq!(quantile(&xs, 0.9), Some(90.0));
        assert_eq!(quantile(&xs, 0.99), Some(99.0));
        assert_eq!(quantile(&[3.0], 0.99), Some(3.0));
        assert_eq!(quantile(&[], 0.5), None);
    }
}
