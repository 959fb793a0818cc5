use super::out::{self, out, outln};
use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use crate::format::size;
use crate::gpu::source::{GpuSnapshot, GpuSource, NvmlSource, ReplaySource};

/// `gantry gpu`
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Print JSON (docs/cli-json.md): the GPUs and their processes
    #[arg(long)]
    pub json: bool,
    /// Print once and exit (the default without --watch)
    #[arg(long, conflicts_with = "watch")]
    pub once: bool,
    /// Print again every SECS seconds until interrupted
    #[arg(long, value_name = "SECS")]
    pub watch: Option<f64>,
    /// Write snapshots to FILE as JSON lines (a recording --gpu-replay plays), every --watch SECS
    /// (default 1) for --samples
    #[arg(long, value_name = "FILE")]
    pub record: Option<PathBuf>,
    /// How many snapshots --record takes
    #[arg(long, default_value_t = 60)]
    pub samples: usize,
    /// The GPUs of every box of the fleet, a line per host (the config's [fleet], or --prometheus,
    /// --scrape and --ssh; docs/fleet.md)
    #[arg(long, conflicts_with_all = ["record", "watch"])]
    pub fleet: bool,
    /// The free GPUs across the fleet, most memory free first (docs/gpus.md says what free is);
    /// exits 1 when fewer than --count are free
    #[arg(long, conflicts_with_all = ["record", "watch", "fleet"])]
    pub free: bool,
    /// With --free: only GPUs with at least this much memory free (40G, 512M)
    #[arg(long, value_name = "SIZE", requires = "free")]
    pub min_mem: Option<String>,
    /// With --free: how many GPUs are needed
    #[arg(long, default_value_t = 1, requires = "free")]
    pub count: usize,
    /// Read the fleet from this Prometheus server (its HTTP API), instead of the config's
    #[arg(long, value_name = "URL")]
    pub prometheus: Option<String>,
    /// Read the fleet from this exporter's /metrics (dcgm-exporter, gantry serve); repeat for more
    #[arg(long, value_name = "HOST:PORT")]
    pub scrape: Vec<String>,
    /// Read the fleet from this host through your own ssh (running `gantry gpu --json --watch`
    /// there, else nvidia-smi); repeat for more
    #[arg(long, value_name = "HOST")]
    pub ssh: Vec<String>,
    /// Bearer token for the fleet's Prometheus or exporters
    #[arg(long, env = "GANTRY_FLEET_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Seconds each fleet source may take (default 5, or the config's timeout_s)
    #[arg(long, value_name = "SECS")]
    pub timeout: Option<f64>,
}

/// The source for this process: the replay named by `--gpu-replay`, else NVML.
pub fn open_source(replay: &Option<(PathBuf, f64)>) -> Result<Box<dyn GpuSource>, String> {
    match replay {
        Some((p, speed)) => {
            ReplaySource::open(p, *speed).map(|r| Box::new(r) as Box<dyn GpuSource>)
        }
        None => NvmlSource::open().map(|n| Box::new(n) as Box<dyn GpuSource>),
    }
}

pub async fn run(
    args: Args,
    workspace: &Option<PathBuf>,
    replay: &Option<PathBuf>,
    speed: f64,
) -> anyhow::Result<ExitCode> {
    if args.fleet
        || args.free
        || args.prometheus.is_some()
        || !args.scrape.is_empty()
        || !args.ssh.is_empty()
    {
        let min_mem = match &args.min_mem {
            Some(m) => super::fleet::parse_size(m)?,
            None => 0,
        };
        let ask = super::fleet::Ask {
            prometheus: &args.prometheus,
            scrape: &args.scrape,
            ssh: &args.ssh,
            token: &args.token,
            timeout: args.timeout,
            json: args.json,
            free: args.free.then_some((min_mem, args.count)),
        };
        let cfg = crate::config::Config::load().0.fleet;
        return super::fleet::run(ask, &cfg, workspace).await;
    }
    let mut src = match open_source(&replay.clone().map(|p| (p, speed))) {
        Ok(s) => s,
        Err(why) => {
            eprintln!("gantry: {why}");
            return Ok(ExitCode::from(3));
        }
    };
    if let Some(path) = &args.record {
        let every = Duration::from_secs_f64(args.watch.unwrap_or(1.0).max(0.05));
        let mut out = std::fs::File::create(path)?;
        for i in 0..args.samples {
            let snap = src.sample().map_err(|e| anyhow::anyhow!(e))?;
            writeln!(out, "{}", serde_json::to_string(&snap)?)?;
            if i + 1 < args.samples {
                tokio::time::sleep(every).await;
            }
        }
        eprintln!(
            "recorded {} snapshots of {} to {}",
            args.samples,
            src.describe(),
            path.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    // Processes are named with the runs that own them, where a workspace is at hand.
    let store = match super::resolve(workspace) {
        Ok(ws) => super::common::open_store(&ws).await.ok(),
        Err(_) => None,
    };
    // User, command and memory of each GPU process, from /proc (a process in another pid
    // namespace, as from inside a container, is not there: null).
    let mut describer = crate::capture::procs::Describer::default();
    // --watch to a terminal redraws in place; to a file or pipe, tables follow one another.
    let in_place = args.watch.is_some() && !args.json && std::io::stdout().is_terminal();
    loop {
        let snap = src.sample().map_err(|e| anyhow::anyhow!(e))?;
        let owners = match &store {
            Some(s) => crate::capture::owners::owners(s, &snap).await,
            None => HashMap::new(),
        };
        let pids: Vec<u32> = snap.processes.iter().map(|p| p.pid).collect();
        let described = describer.describe(&pids);
        if args.json {
            let mut v = serde_json::to_value(&snap)?;
            if let Some(procs) = v["processes"].as_array_mut() {
                for p in procs {
                    let pid = p["pid"].as_u64().unwrap_or(0) as u32;
                    p["run"] = owners.get(&pid).map_or(
                        serde_json::Value::Null,
                        |(id, name)| serde_json::json!({"id": id, "name": name}),
                    );
                    let info = described.get(&pid);
                    p["user"] = serde_json::json!(info.map(|i| &i.user));
                    p["command"] = serde_json::json!(info.map(|i| &i.command));
                    p["rss"] = serde_json::json!(info.map(|i| i.rss));
                    p["elapsed_secs"] = serde_json::json!(info.map(|i| i.elapsed_secs));
                    p["job"] = serde_json::json!(info.and_then(|i| i.job.as_ref()));
                }
            }
            if args.watch.is_some() {
                // A stream: one object a line (JSON Lines), for jq or a log.
                out::json_line(&v)?;
            } else {
                out::json(&v)?;
            }
        } else if in_place {
            // As `watch` does: each table over the last, with when and how to stop.
            let now = chrono::Local::now().format("%H:%M:%S");
            out::raw("\x1b[H\x1b[2J");
            out!(
                "{}\nevery {}s · {now} · ctrl-c stops\n",
                table(&snap, &owners, &described),
                args.watch.unwrap_or(1.0)
            );
        } else {
            out!("{}", table(&snap, &owners, &described));
        }
        let Some(secs) = args.watch else { break };
        std::io::stdout().flush()?;
        tokio::time::sleep(Duration::from_secs_f64(secs.max(0.1))).await;
        if !args.json && !in_place {
            outln!();
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn opt<T: std::fmt::Display>(v: Option<T>, unit: &str) -> String {
    v.map_or_else(|| "n/a".into(), |x| format!("{x}{unit}"))
}

/// Like nvidia-smi, denser: a line per GPU, then the GPU processes with their user, memory, run
/// and command.
pub fn table(
    snap: &GpuSnapshot,
    owners: &HashMap<u32, (String, String)>,
    procs: &HashMap<u32, crate::capture::procs::ProcInfo>,
) -> String {
    use std::fmt::Write;
    let mut o = String::new();
    let _ = writeln!(
        o,
        "driver {} · CUDA {} · {} GPUs",
        snap.driver.as_deref().unwrap_or("n/a"),
        snap.cuda.as_deref().unwrap_or("n/a"),
        snap.gpus.len()
    );
    let _ = writeln!(
        o,
        "{:<3} {:<18} {:>5} {:>17} {:>9} {:>11} {:>11} {:>9}  THROTTLE",
        "GPU", "NAME", "UTIL", "MEMORY", "TEMP", "POWER", "SM MHz", "PCIe"
    );
    for g in &snap.gpus {
        let mem = match (g.mem_used, g.mem_total) {
            (Some(u), Some(t)) => format!("{}/{}", size(u).replace(" GiB", ""), size(t)),
            _ => "n/a".into(),
        };
        let temp = format!("{}/{}", opt(g.temp, ""), opt(g.temp_slowdown, "C"));
        let power = format!(
            "{}/{}",
            opt(g.power.map(|p| p.round() as u64), ""),
            opt(g.power_limit.map(|p| p.round() as u64), "W")
        );
        let clock = format!("{}/{}", opt(g.sm_clock, ""), opt(g.sm_clock_max, ""));
        let pcie = match (g.pcie_gen, g.pcie_width) {
            (Some(a), Some(b)) => format!("gen{a}x{b}"),
            _ => "n/a".into(),
        };
        let _ = writeln!(
            o,
            "{:<3} {:<18} {:>5} {:>17} {:>9} {:>11} {:>11} {:>9}  {}",
            g.index,
            crate::format::fit(&g.name.replace("NVIDIA ", ""), 18),
            opt(g.util, "%"),
            mem,
            temp,
            power,
            clock,
            pcie,
            if g.throttle.is_empty() {
                "-".into()
            } else {
                g.throttle.join(", ")
            }
        );
        for m in &g.mig_instances {
            let mem = match (m.mem_used, m.mem_total) {
                (Some(u), Some(t)) => format!("{}/{}", size(u).replace(" GiB", ""), size(t)),
                _ => "n/a".into(),
            };
            let _ = writeln!(
                o,
                "  MIG {:<2} {:<20} {:>17}  {}",
                m.index,
                crate::format::fit(&m.name.replace("NVIDIA ", ""), 20),
                mem,
                m.uuid
            );
        }
    }
    if !snap.processes.is_empty() {
        let runs: Vec<String> = snap
            .processes
            .iter()
            .map(|p| {
                owners.get(&p.pid).map_or_else(
                    || {
                        procs
                            .get(&p.pid)
                            .and_then(|i| i.job.clone())
                            .unwrap_or_else(|| "-".to_string())
                    },
                    |(id, name)| format!("{name} ({})", &id[..8.min(id.len())]),
                )
            })
            .collect();
        let run_w = runs
            .iter()
            .map(|r| r.chars().count())
            .max()
            .unwrap_or(3)
            .clamp(3, 40);
        let _ = writeln!(
            o,
            "\n{:<8} {:<10} {:<3} {:>10} {:>4} {:>10}  {:<run_w$}  COMMAND",
            "PID", "USER", "GPU", "GPU MEM", "SM%", "RSS", "RUN"
        );
        for (p, run) in snap.processes.iter().zip(&runs) {
            let info = procs.get(&p.pid);
            let _ = writeln!(
                o,
                "{:<8} {:<10} {:<3} {:>10} {:>4} {:>10}  {:<run_w$}  {}",
                p.pid,
                crate::format::fit(info.map_or("n/a", |i| i.user.as_str()), 10),
                p.gpu,
                p.mem_used.map_or("n/a".into(), size),
                opt(p.sm_util, ""),
                info.map_or("n/a".into(), |i| size(i.rss)),
                crate::format::fit(run, run_w),
                info.map_or("n/a (no /proc entry here)", |i| i.command.as_str()),
            );
        }
    }
    o
}
