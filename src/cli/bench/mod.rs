//! `gantry bench`: CUDA micro-benchmarks (or the CPU backend) with a progress bar per benchmark
//! on stderr, results against peak, stored as history and compared with this GPU's past.

use super::out::{self, out, outln};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use serde_json::json;

use crate::bench::{self, BenchBackend, BenchResult, DeviceInfo, Event, Kind, Precision, Request};
use crate::error::UserError;

mod burn;
mod history;
mod tables;

use burn::*;
use history::*;
use tables::*;

/// `gantry bench`
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Only these benchmarks: gemm, membw, h2d, d2h, launch (comma-separated)
    #[arg(long, value_delimiter = ',', value_name = "LIST")]
    pub only: Vec<String>,
    /// GEMM precisions: fp32, tf32, fp16, bf16 (fp64 on the CPU)
    #[arg(long, value_delimiter = ',', value_name = "LIST")]
    pub precision: Vec<String>,
    /// A GEMM size N (N×N×N) instead of the defaults; may be repeated
    #[arg(long, value_name = "N")]
    pub size: Vec<u64>,
    /// Timed repetitions per benchmark (at least 20)
    #[arg(long, default_value_t = bench::MIN_REPS, value_name = "N")]
    pub reps: usize,
    /// Print JSON (docs/cli-json.md)
    #[arg(long)]
    pub json: bool,
    /// Run the CPU backend (GEMM through matrixmultiply, memory copy, thread wake-up)
    #[arg(long)]
    pub cpu: bool,
    /// Run even when other processes use the GPU
    #[arg(long)]
    pub yes: bool,
    /// Which GPU, in CUDA's numbering (CUDA_VISIBLE_DEVICES applies), or `all`: each in turn,
    /// then the GPUs compared, the ones more than 5% behind the others flagged
    #[arg(long, default_value = "0", value_name = "INDEX|all")]
    pub gpu: GpuArg,
    /// A sustained load instead: one GEMM (the first --precision and --size; bf16 8192 on a GPU)
    /// back to back for SECS seconds, its throughput each second and what the GPU went through;
    /// with --gpu all, on every GPU at once
    #[arg(long, value_name = "SECS")]
    pub burn: Option<f64>,
    /// Run nothing: print the stored results, each device's benchmarks with their runs, trend,
    /// last median against the median before it, and any drop (--only filters)
    #[arg(long, conflicts_with = "burn")]
    pub history: bool,
}

/// `--gpu`: one GPU, or every GPU CUDA sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GpuArg {
    One(usize),
    All,
}

impl std::str::FromStr for GpuArg {
    type Err = String;
    fn from_str(s: &str) -> Result<GpuArg, String> {
        match s {
            "all" => Ok(GpuArg::All),
            n => n
                .parse()
                .map(GpuArg::One)
                .map_err(|_| format!("`{n}` is not a GPU: give an index (0, 1, …) or all")),
        }
    }
}

pub(super) fn request(args: &Args) -> Result<Request, UserError> {
    let only = args
        .only
        .iter()
        .map(|s| {
            Kind::parse(s.trim()).ok_or_else(|| {
                UserError::new(format!("--only: no benchmark `{s}`"))
                    .hint("choose from gemm, membw, h2d, d2h, launch")
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let precisions = args
        .precision
        .iter()
        .map(|s| {
            Precision::parse(s.trim()).ok_or_else(|| {
                UserError::new(format!("--precision: no precision `{s}`"))
                    .hint("choose from fp32, tf32, fp16, bf16 (fp64 with --cpu)")
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if args.reps < bench::MIN_REPS {
        return Err(UserError::new(format!(
            "--reps {} is too few: medians and spreads need at least {} repetitions",
            args.reps,
            bench::MIN_REPS
        )));
    }
    if let Some(bad) = args.size.iter().find(|n| **n == 0 || **n > 65536) {
        return Err(UserError::new(format!("--size {bad} is out of range"))
            .hint("give N between 1 and 65536"));
    }
    Ok(Request {
        only,
        sizes: args.size.clone(),
        precisions,
        reps: args.reps,
    })
}

/// Other processes on the GPU with `uuid`: (pid, name, memory bytes), from one NVML sample.
pub(super) fn busy(uuid: &str) -> Vec<(u32, String, Option<u64>)> {
    use crate::gpu::source::{GpuSource, NvmlSource};
    // A panic inside the NVML library is contained like everywhere else: no check, no crash.
    let Ok(Ok(snap)) = crate::error::contain("asking NVML", || {
        NvmlSource::open().and_then(|mut s| s.sample())
    }) else {
        return Vec::new();
    };
    snap.processes_on(uuid, u32::MAX, std::process::id())
        .into_iter()
        .map(|p| {
            let name = std::fs::read_to_string(format!("/proc/{}/comm", p.pid))
                .map(|s| s.trim().to_string())
                .unwrap_or_else(|_| "?".into());
            (p.pid, name, p.mem_used)
        })
        .collect()
}

pub async fn run(args: Args, workspace: &Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let req = request(&args)?;
    let (_, store) = super::common::open(workspace).await?;
    let cancel = Arc::new(AtomicBool::new(false));
    {
        let cancel = cancel.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                cancel.store(true, std::sync::atomic::Ordering::Relaxed);
            }
        });
    }
    if args.history {
        return history(&args, &req, &store).await;
    }
    if let Some(secs) = args.burn {
        if !(1.0..=86_400.0).contains(&secs) {
            return Err(UserError::new(format!("--burn {secs} is out of range"))
                .hint("give the seconds of load, from 1 to 86400")
                .into());
        }
        if !args.only.is_empty() && args.only.iter().any(|o| o != "gemm") {
            return Err(
                UserError::new("--burn runs a GEMM: --only has no place beside it")
                    .hint("drop --only, or run the benchmarks without --burn")
                    .into(),
            );
        }
        return burn(&args, &req, secs, &cancel).await;
    }
    let gpus: Vec<usize> = match (args.cpu, args.gpu) {
        (true, _) => vec![0],
        (false, GpuArg::One(i)) => vec![i],
        (false, GpuArg::All) => {
            let listed = tokio::task::spawn_blocking(|| {
                crate::error::contain("listing the GPUs", bench::cuda::list_devices).and_then(|r| r)
            });
            match listed.await? {
                Ok(list) if !list.is_empty() => (0..list.len()).collect(),
                Ok(_) => {
                    eprintln!("gantry: CUDA not available: the driver sees no GPU");
                    return Ok(ExitCode::from(3));
                }
                Err(why) => {
                    eprintln!(
                        "gantry: {why}\n  to fix: `gantry bench --cpu` runs the same harness on the CPU"
                    );
                    return Ok(ExitCode::from(3));
                }
            }
        }
    };
    let mut runs: Vec<GpuRun> = Vec::new();
    for (n, gpu) in gpus.iter().enumerate() {
        if cancel.load(std::sync::atomic::Ordering::Relaxed) {
            break;
        }
        if gpus.len() > 1 && !args.json {
            if n > 0 {
                outln!();
            }
            outln!("== GPU {gpu} of {}", gpus.len());
        }
        match one(&args, &req, *gpu, &store, &cancel).await? {
            One::Ran(run) => {
                if args.json {
                    if gpus.len() == 1 {
                        out::json(&run_json(&run))?;
                    }
                } else {
                    let refs: Vec<_> = run
                        .rows
                        .iter()
                        .map(|(r, p, d)| (r, p.clone(), *d))
                        .collect();
                    out!("{}", table(&run.device, &refs));
                    outln!("{}", verdict(&run.rows));
                }
                runs.push(*run);
            }
            One::Exit(code) if gpus.len() == 1 => return Ok(code),
            One::Exit(_) => {}
        }
    }
    if gpus.len() > 1 {
        let per_gpu: Vec<(DeviceInfo, Vec<BenchResult>)> = runs
            .iter()
            .map(|g| {
                let results = g.rows.iter().map(|(r, _, _)| r.clone()).collect();
                (g.device.clone(), results)
            })
            .collect();
        let compared = bench::compare(&per_gpu);
        if args.json {
            let out = json!({
                "runs": runs.iter().map(run_json).collect::<Vec<_>>(),
                "comparison": compared,
            });
            out::json(&out)?;
        } else {
            outln!();
            out!("{}", comparison_table(&compared));
        }
    }
    if runs
        .iter()
        .flat_map(|g| &g.rows)
        .any(|(r, _, _)| !r.correct())
    {
        eprintln!(
            "gantry: a correctness check failed: the GPU or its libraries computed a wrong result"
        );
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

/// The GPUs (CUDA's numbering) `--gpu` names, or why there are none (the exit code, said).
pub(super) async fn chosen_gpus(
    arg: GpuArg,
) -> anyhow::Result<Result<Vec<(usize, String)>, ExitCode>> {
    let listed = tokio::task::spawn_blocking(|| {
        crate::error::contain("listing the GPUs", bench::cuda::list_devices).and_then(|r| r)
    });
    let list = match listed.await? {
        Ok(list) if !list.is_empty() => list,
        Ok(_) => {
            eprintln!("gantry: CUDA not available: the driver sees no GPU");
            return Ok(Err(ExitCode::from(3)));
        }
        Err(why) => {
            eprintln!(
                "gantry: {why}\n  to fix: `gantry bench --cpu` runs the same harness on the CPU"
            );
            return Ok(Err(ExitCode::from(3)));
        }
    };
    let uuids = list.into_iter().map(|(_, u)| u).enumerate();
    match arg {
        GpuArg::All => Ok(Ok(uuids.collect())),
        GpuArg::One(i) => match uuids.clone().find(|(n, _)| *n == i) {
            Some(g) => Ok(Ok(vec![g])),
            None => Err(UserError::new(format!(
                "there is no GPU {i}: CUDA sees {}",
                uuids.count()
            ))
            .hint("`gantry gpu` lists the GPUs; pick one with --gpu INDEX, or --gpu all")
            .into()),
        },
    }
}

/// Asks before loading a GPU that other processes use; false when the answer is no.
pub(super) fn go_ahead(uuid: &str, what: &str, yes: bool) -> anyhow::Result<bool> {
    let others = busy(uuid);
    if others.is_empty() || yes {
        return Ok(true);
    }
    eprintln!("gantry: other processes use {what} ({uuid}):");
    for (pid, name, mem) in &others {
        let mem = mem.map_or("n/a".into(), crate::format::size);
        eprintln!("  pid {pid:<8} {name:<20} {mem}");
    }
    eprintln!("  their work would slow the benchmarks, and the benchmarks theirs");
    if !std::io::stdin().is_terminal() {
        return Ok(false);
    }
    eprint!("run anyway? [y/N] ");
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    Ok(matches!(line.trim(), "y" | "Y" | "yes"))
}

/// "CPU" or "GPU 3", for messages about one device of a load.
pub(super) fn device_name(cpu: bool, gpu: usize) -> String {
    if cpu {
        "CPU".into()
    } else {
        format!("GPU {gpu}")
    }
}

/// A result, this device's earlier medians of the same benchmark, and how far it falls behind
/// them (when flagged).
pub(super) type Row = (BenchResult, Vec<f64>, Option<f64>);

/// One GPU's (or the CPU's) run: the device, when it started, its results.
pub(super) struct GpuRun {
    device: DeviceInfo,
    started: i64,
    rows: Vec<Row>,
}

/// What one GPU's (or the CPU's) benchmarks came to.
pub(super) enum One {
    Ran(Box<GpuRun>),
    /// Not run: the exit code, its reason already on stderr.
    Exit(ExitCode),
}

/// Open the backend for GPU `gpu` (or the CPU), ask when others use the GPU, run `req` with a
/// progress bar per benchmark, and store the results.
pub(super) async fn one(
    args: &Args,
    req: &Request,
    gpu: usize,
    store: &crate::store::Store,
    cancel: &Arc<AtomicBool>,
) -> anyhow::Result<One> {
    let cpu = args.cpu;
    if !cpu {
        // Asked before gantry makes a CUDA context of its own, so it never counts itself: inside
        // a container NVML names gantry by its host pid, which is not `std::process::id()`.
        let listed = tokio::task::spawn_blocking(|| {
            crate::error::contain("listing the GPUs", bench::cuda::list_devices).and_then(|r| r)
        })
        .await?;
        if let Ok(list) = listed
            && let Some((name, uuid)) = list.get(gpu)
            && !go_ahead(uuid, name, args.yes)?
        {
            return Err(UserError::new(format!("not run: GPU {gpu} is in use"))
                .hint("wait for those processes, or pass --yes to run anyway")
                .into());
        }
    }
    let backend: Box<dyn BenchBackend + Send> = if cpu {
        bench::open_cpu()
    } else {
        let opened = tokio::task::spawn_blocking(move || bench::open_backend(false, gpu));
        match opened.await? {
            Ok(b) => b,
            Err(why) if why.starts_with("there is no GPU") => {
                return Err(UserError::new(why)
                    .hint("`gantry gpu` lists the GPUs; pick one with --gpu INDEX, or --gpu all")
                    .into());
            }
            Err(why) => {
                eprintln!(
                    "gantry: {why}\n  to fix: `gantry bench --cpu` runs the same harness on the CPU"
                );
                return Ok(One::Exit(ExitCode::from(3)));
            }
        }
    };
    let device = backend.device().clone();
    let started = crate::domain::now_ms();
    let show = !args.json || std::io::stderr().is_terminal();
    let (req, cancel) = (req.clone(), cancel.clone());
    let results = tokio::task::spawn_blocking(move || {
        let mut backend = backend;
        let bars = MultiProgress::new();
        if !show {
            bars.set_draw_target(indicatif::ProgressDrawTarget::hidden());
        }
        let style = ProgressStyle::with_template("{prefix:<28} {bar:30} {pos:>3}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar());
        let mut current: Option<ProgressBar> = None;
        let mut on = |e: Event| match e {
            Event::Started { index, total, spec } => {
                let pb = bars.add(ProgressBar::new(req.reps.max(bench::MIN_REPS) as u64));
                pb.set_style(style.clone());
                pb.set_prefix(format!("[{}/{total}] {}", index + 1, spec.label()));
                current = Some(pb);
            }
            Event::Progress { done, .. } => {
                if let Some(pb) = &current {
                    pb.set_position(done as u64);
                }
            }
            Event::Finished { result, .. } => {
                if let Some(pb) = current.take() {
                    pb.finish_with_message(format!(
                        "{} {}",
                        crate::format::four_digits(result.stats.median),
                        result.unit.as_str()
                    ));
                }
            }
            Event::Failed { error, .. } => {
                if let Some(pb) = current.take() {
                    pb.abandon_with_message(format!("failed: {error}"));
                }
            }
        };
        let (ran, stopped) = bench::run_sampled(backend.as_mut(), &req, &mut on, &cancel);
        if let Some(why) = stopped {
            eprintln!("gantry: the GPU's clocks and power were not sampled throughout: {why}");
        }
        ran
    })
    .await?
    .map_err(|why| UserError::new(why).hint("the log (gantry where) has the details"))?;

    let history = store.bench_history(Some(&device.uuid)).await?;
    let host = crate::host::hostname();
    let mut rows = Vec::new();
    for r in results {
        let past: Vec<f64> = history
            .iter()
            .filter(|h| h.spec == r.spec)
            .map(|h| h.stats.median)
            .collect();
        let drop = bench::drop_below(r.stats.median, r.unit, &past);
        store.record_bench(started, &host, &device, &r).await?;
        rows.push((r, past, drop));
    }
    Ok(One::Ran(Box::new(GpuRun {
        device,
        started,
        rows,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::{Conditions, Kind, Precision, Spec, Stats, Unit};

    fn result(spec: Spec, median: f64, conditions: Option<Conditions>) -> BenchResult {
        BenchResult {
            unit: spec.kind.unit(),
            spec,
            stats: Stats {
                median,
                min: median * 0.99,
                max: median * 1.01,
                stddev: median * 0.004,
                reps: 20,
            },
            peak: None,
            pct_of_peak: None,
            check: None,
            conditions,
        }
    }

    #[test]
    fn the_verdict_names_what_fell_below_and_why() {
        let spec = Spec::gemm(Precision::Bf16, 8192, "cublas");
        let hot = Conditions {
            throttle: vec!["power cap".into()],
            ..Conditions::default()
        };
        let first = vec![(result(spec.clone(), 700.0, None), vec![], None)];
        assert_eq!(
            verdict(&first),
            "1 result · the first on this device: the next run is compared with them"
        );
        let rows = vec![
            (
                result(spec.clone(), 640.0, Some(hot)),
                vec![700.0],
                Some(0.086),
            ),
            (
                result(Spec::other(Kind::Launch, 1000, "events"), 2.1, None),
                vec![2.1],
                None,
            ),
        ];
        assert_eq!(
            verdict(&rows),
            "2 results · 2 compared, ▼ below this device's history: gemm bf16 8192 (power cap)"
        );
    }

    #[test]
    fn the_comparison_names_the_gpu_behind_the_others() {
        let spec = Spec::gemm(Precision::Bf16, 8192, "cublas");
        let gpu = |m: f64| (DeviceInfo::default(), vec![result(spec.clone(), m, None)]);
        let c = bench::compare(&[gpu(702.0), gpu(640.0), gpu(699.0)]);
        let text = comparison_table(&c);
        let mut lines = text.lines();
        let head = lines.next().unwrap();
        assert!(
            head.starts_with("GPUs COMPARED") && head.contains("GPU 2"),
            "{text}"
        );
        let row = lines.next().unwrap();
        assert!(row.starts_with("gemm bf16 8192"), "{text}");
        assert!(row.contains("702.0") && row.contains("640.0"), "{text}");
        assert!(row.ends_with("▼ GPU 1 8.4%"), "{text}");
    }

    #[test]
    fn the_table_shows_what_the_gpu_went_through_and_why_it_was_slow() {
        let device = DeviceInfo {
            backend: "cuda".into(),
            name: "NVIDIA H200".into(),
            ..DeviceInfo::default()
        };
        let hot = Conditions {
            samples: 9,
            sm_clock_mhz: Some(1755),
            power_w: Some(699.4),
            temp_max_c: Some(71),
            throttle: vec!["power cap".into()],
            ..Conditions::default()
        };
        let a = result(
            Spec::gemm(Precision::Bf16, 8192, "cublas"),
            640.0,
            Some(hot),
        );
        let b = result(Spec::other(Kind::Launch, 1000, "events"), 2.1, None);
        assert_eq!(a.unit, Unit::TflopS);
        let text = table(
            &device,
            &[(&a, vec![700.0, 712.0], Some(0.09)), (&b, vec![], None)],
        );
        let line = text
            .lines()
            .find(|l| l.starts_with("gemm bf16 8192"))
            .unwrap();
        assert!(line.contains("1755 MHz 699 W 71C"), "{line}");
        assert!(
            line.ends_with("▼ 9.0% below this GPU's median of 2 runs  throttled: power cap"),
            "{line}"
        );
        let line = text
            .lines()
            .find(|l| l.starts_with("launch events"))
            .unwrap();
        assert!(line.contains(" - "), "no conditions: {line}");
        assert!(text.contains("GPU DURING"));
        // Without a monitor (the CPU backend) there is no such column.
        let text = table(&device, &[(&b, vec![], None)]);
        assert!(!text.contains("GPU DURING"), "{text}");
    }
}
