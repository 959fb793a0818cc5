//! `gantry demo`: a workspace seeded from the bundled fixtures (fixtures/demo, embedded in the
//! binary so it works anywhere), then the workbench on it.

use super::out::outln;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow};
use serde::Deserialize;

use crate::capture::ingest::{SOURCE_METRICS, Tail};
use crate::capture::protocol::parse_line;
use crate::domain::{NewRun, RunStatus, Series, SeriesKind};
use crate::error::UserError;
use crate::store::Store;
use crate::workspace::Workspace;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Where to build it [default: a new folder under the user's cache directory]
    pub dir: Option<PathBuf>,
    /// Build and seed the workspace, print its path, and do not open the workbench
    #[arg(long)]
    pub no_open: bool,
}

/// The demo's runs come from another machine, so no local process check marks them crashed.
pub(super) const DEMO_HOST: &str = "gpu01";

/// A small training script that reports metrics, written into the demo folder to try `gantry run`.
/// The demo's evaluation script for `gantry model eval` (stdlib only).
const EVAL_SCRIPT: &str = include_str!("../../fixtures/scripts/eval.py");

const TRAIN_SCRIPT: &str = include_str!("../../fixtures/scripts/train.py");

const RUNS_JSON: &str = include_str!("../../fixtures/demo/runs.json");

/// A made-up recording of a two-GPU box (fixtures/gpu), played when this host has no GPU.
const DEMO_GPUS: &str = include_str!("../../fixtures/gpu/a100-x2.made-up.jsonl");

/// The rest of the running demo run, replayed live while the demo is open.
const LIVE: &str = include_str!("../../fixtures/demo/live/resnet50-warmup.jsonl");

macro_rules! metrics_files {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!("../../fixtures/demo/metrics/", $name, ".jsonl")))),*]
    };
}
const METRICS: &[(&str, &str)] = metrics_files![
    "resnet50-baseline",
    "resnet50-cosine",
    "resnet50-warmup",
    "vit-small-adamw",
    "gpt2-124m-lr3e-4",
    "gpt2-124m-lr6e-4",
    "gpt2-124m-bs32",
    "gpt2-124m-bs64",
];

#[derive(Deserialize)]
struct DemoRun {
    name: String,
    /// The box it ran on, where not the demo's own (`gpu01`): a team's runs come from several.
    #[serde(default)]
    host: Option<String>,
    /// A running run whose gantry went silent this many minutes ago: shown `lost`.
    #[serde(default)]
    heartbeat_min_ago: Option<i64>,
    experiment: String,
    status: RunStatus,
    exit_code: Option<i32>,
    started_min_ago: i64,
    step_ms: i64,
    command: Vec<String>,
    params: BTreeMap<String, String>,
    tags: BTreeMap<String, String>,
    git_commit: String,
    git_branch: String,
    git_dirty: bool,
}

pub async fn run(
    args: Args,
    theme: Option<String>,
    gpu_replay: Option<(PathBuf, f64)>,
) -> Result<ExitCode> {
    let dir = match args.dir {
        Some(d) => d,
        None => default_dir()?,
    };
    std::fs::create_dir_all(&dir).map_err(|e| {
        UserError::new(format!(
            "cannot create the demo directory {}",
            dir.display()
        ))
        .cause(e)
        .hint("give a writable directory: gantry demo DIR")
    })?;
    let ws = Workspace::init(&dir)?;
    super::start_logging(&ws);
    let store = Store::open(&ws.db_path()).await?;
    let (runs, _, _) = store.counts().await?;
    let live = if runs == 0 {
        let live = seed(&ws, &store, crate::domain::now_ms()).await?;
        tracing::info!("demo workspace seeded");
        live
    } else {
        None
    };
    if !args.no_open {
        let live_id = live.as_ref().map(|(id, _)| id.clone());
        let feeder = live.map(|(id, dir)| {
            let store = store.clone();
            tokio::spawn(async move {
                if let Err(e) = feed(store, id, dir).await {
                    tracing::warn!("demo feed: {e:#}");
                }
            })
        });
        // Without a GPU here, the demo plays a recording of a two-GPU box.
        let mut stand_in = None;
        let replay = match gpu_replay {
            Some(p) => Some(p),
            None if crate::gpu::source::NvmlSource::open().is_err() => {
                let p = ws.dir().join("gpu-demo.jsonl");
                stand_in = live_id.as_deref().and_then(StandIn::spawn);
                std::fs::write(&p, demo_gpus(stand_in.as_ref().map(|s| s.pid())))?;
                Some((p, 1.0))
            }
            None => None,
        };
        // Starting the boxes waits on their first lines: off the async threads.
        let fleet = {
            let ws = ws.clone();
            tokio::task::spawn_blocking(move || DemoFleet::spawn(&ws))
                .await
                .ok()
                .flatten()
        };
        super::workbench::open_with_fleet(
            &ws,
            theme,
            replay,
            fleet.as_ref().map(DemoFleet::sources),
        )
        .await?;
        drop(fleet);
        drop(stand_in);
        if let Some(f) = feeder {
            f.abort();
        }
    }
    store.close().await;
    let train = ws.root.join("train.py");
    if !train.exists() {
        std::fs::write(&train, TRAIN_SCRIPT)
            .with_context(|| format!("writing {}", train.display()))?;
    }
    let eval = ws.root.join("eval.py");
    if !eval.exists() {
        std::fs::write(&eval, EVAL_SCRIPT)
            .with_context(|| format!("writing {}", eval.display()))?;
    }
    let w = format!("gantry --workspace {}", shell_path(&ws.root));
    outln!("demo workspace: {}", ws.root.display());
    outln!("open it again with: {w}");
    outln!("try:");
    outln!("  {w} runs --filter 'exp:vision' --sort -metric.val/acc");
    outln!("  {w} export resnet50-cosine --format csv");
    outln!(
        "  {w} model ls   (and: model show resnet50@production, model diff resnet50@v1 resnet50@v2)"
    );
    outln!("  {w}   (3: GPUs; m switches the chart, s sorts, / filters and t trees the processes)");
    outln!(
        "  {w}   (4: Bench; the A100's history flags a drop and the thermal slowdown behind it; c picks the CPU backend, r runs)"
    );
    outln!("  {w} bench --cpu   (or, on a GPU box: {w} bench); {w} bench --history");
    outln!(
        "  {w} bench --cpu --burn 10   (a sustained load; on a GPU box: bench --burn 60 --gpu all)"
    );
    outln!(
        "  {w} show resnet50-cosine   (MFU against the A100's datasheet and its own bench results, energy, GPU-hours, cost)"
    );
    outln!(
        "  {w} runs --filter 'energy>100Wh' --sort -metric.gantry/mfu   (and: model show gpt2-124m@v2, what it and its lineage cost)"
    );
    outln!(
        "  {w} compare gpt2-124m-lr3e-4 gpt2-124m-lr6e-4   (why the second is slower: its GPU's conditions, and a verdict)"
    );
    outln!(
        "  {w} runs --filter alert:nan   (alerts: nan, divergence, stall, idle_gpu, throughput_drop, throttle, gpu_errors; gantry run --alert K=V)"
    );
    outln!(
        "  {w} show vit-small-adamw   (the flight recorder kept the minutes before its NaN and crash; in the workbench, e jumps to them on the charts)"
    );
    outln!(
        "  {w} show {}   (refused by its preflight: a PCIe link at x8; {w} run --preflight -- CMD)",
        super::demo_health::NAME
    );
    outln!(
        "  {w} doctor   (what this box offers gantry: store, config, terminal, driver, CUDA libraries, python)"
    );
    outln!(
        "  {w} serve   (then MLFLOW_TRACKING_URI=http://127.0.0.1:5000 python3 your_mlflow_script.py logs here; curl 127.0.0.1:5000/metrics)"
    );
    outln!("  {w} compare resnet50-baseline resnet50-cosine resnet50-warmup");
    outln!(
        "  cd {} && gantry run -- python3 train.py --lr 1e-3 --epochs 2",
        shell_path(&ws.root)
    );
    outln!(
        "  cd {} && gantry model eval resnet50@v1 resnet50@v2 resnet50@v3 --gate 'val/acc>=baseline-0.01' -- python3 eval.py {{model}}",
        shell_path(&ws.root)
    );
    Ok(ExitCode::SUCCESS)
}

/// A real process standing in for the recording's training process, with the live demo run's
/// GANTRY_RUN_ID: the GPUs tab names its run, and Enter opens it. Killed with the demo.
struct StandIn(std::process::Child);

impl StandIn {
    fn spawn(run_id: &str) -> Option<StandIn> {
        std::process::Command::new("sleep")
            .arg("86400")
            .env("GANTRY_RUN_ID", run_id)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .map_err(|e| tracing::warn!("demo: no stand-in GPU process: {e}"))
            .ok()
            .map(StandIn)
    }

    fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The demo's fleet: three boxes, each a `gantry serve` of this binary playing a recording on a
/// loopback port (box-a's second A100 held down by a thermal slowdown, box-c idle: a free GPU),
/// and 127.0.0.1:1, where nothing answers: stale. Stopped when dropped.
struct DemoFleet {
    servers: Vec<std::process::Child>,
    targets: Vec<String>,
}

/// The boxes: name, recording, and what is changed in it.
const DEMO_BOXES: [(&str, &str); 3] = [
    (
        "box-a",
        include_str!("../../fixtures/gpu/a100-x2.made-up.jsonl"),
    ),
    (
        "box-b",
        include_str!("../../fixtures/gpu/h100-x8.made-up.jsonl"),
    ),
    (
        "box-c",
        include_str!("../../fixtures/gpu/h200-x1.made-up.jsonl"),
    ),
];

impl DemoFleet {
    fn spawn(ws: &Workspace) -> Option<DemoFleet> {
        use std::io::BufRead;
        let exe = std::env::current_exe().ok()?;
        let mut fleet = DemoFleet {
            servers: Vec::new(),
            targets: Vec::new(),
        };
        for (name, recording) in DEMO_BOXES {
            let frames: Vec<String> = recording
                .lines()
                .take(20)
                .filter_map(|l| {
                    let mut snap: crate::domain::GpuSnapshot = serde_json::from_str(l).ok()?;
                    for g in &mut snap.gpus {
                        match name {
                            "box-a" if g.index == 1 => {
                                g.throttle = vec!["hw thermal".into()];
                                g.temp = Some(91);
                            }
                            "box-c" => {
                                g.util = Some(0);
                                g.mem_used = Some(300 << 20);
                                g.power = Some(75.0);
                            }
                            _ => {}
                        }
                    }
                    if name == "box-c" {
                        snap.processes.clear();
                    }
                    serde_json::to_string(&snap).ok()
                })
                .collect();
            let path = ws.dir().join(format!("fleet-{name}.jsonl"));
            if std::fs::write(&path, frames.join("\n") + "\n").is_err() {
                continue;
            }
            let child = std::process::Command::new(&exe)
                .arg("--workspace")
                .arg(&ws.root)
                .arg("--gpu-replay")
                .arg(&path)
                .args(["serve", "--bind", "127.0.0.1:0"])
                .env("GANTRY_HOST", name)
                .env_remove("GANTRY_TOKEN")
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::null())
                .spawn();
            let Ok(mut child) = child else {
                tracing::warn!("demo: no fleet box {name}");
                continue;
            };
            let mut line = String::new();
            if let Some(out) = child.stdout.take() {
                let _ = std::io::BufReader::new(out).read_line(&mut line);
            }
            match line.trim().strip_prefix("listening on http://") {
                Some(addr) => fleet.targets.push(addr.to_string()),
                None => {
                    let _ = child.kill();
                    let _ = child.wait();
                    continue;
                }
            }
            fleet.servers.push(child);
        }
        // Port 1 on loopback: nothing listens there, so gpu07 is stale.
        fleet.targets.push("127.0.0.1:1".into());
        (fleet.servers.len() == DEMO_BOXES.len()).then_some(fleet)
    }

    fn sources(&self) -> crate::fleet::Sources {
        crate::fleet::Sources::new(
            None,
            self.targets.clone(),
            None,
            None,
            std::time::Duration::from_secs(2),
        )
    }
}

impl Drop for DemoFleet {
    fn drop(&mut self) {
        for c in &mut self.servers {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The demo's GPU recording, its training process given `pid` when there is a stand-in.
fn demo_gpus(pid: Option<u32>) -> String {
    let Some(pid) = pid else {
        return DEMO_GPUS.to_string();
    };
    DEMO_GPUS
        .lines()
        .filter_map(|l| {
            let mut s: crate::gpu::source::GpuSnapshot = serde_json::from_str(l).ok()?;
            s.processes.iter_mut().for_each(|p| p.pid = pid);
            serde_json::to_string(&s).ok()
        })
        .map(|l| l + "\n")
        .collect()
}

fn default_dir() -> Result<PathBuf> {
    let cache = directories::ProjectDirs::from("", "", "gantry")
        .map(|d| d.cache_dir().to_path_buf())
        .ok_or_else(|| {
            anyhow!(
                UserError::new("no user cache directory is known")
                    .hint("give one: gantry demo DIR")
            )
        })?;
    let stamp = chrono::Local::now().format("%Y%m%d-%H%M%S");
    Ok(cache.join(format!("demo-{stamp}")))
}

fn shell_path(p: &Path) -> String {
    let s = p.display().to_string();
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+~".contains(c))
    {
        s
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// Put the bundled demo runs into a workspace, with start times relative to `now_ms`, through the
/// same path a real run takes: each run's metrics file and log are written, then stored by the
/// ingest tail. Returns the running run to feed live, if any: (run id, its run directory).
pub async fn seed(ws: &Workspace, store: &Store, now_ms: i64) -> Result<Option<(String, PathBuf)>> {
    let runs: Vec<DemoRun> = serde_json::from_str(RUNS_JSON).context("fixtures/demo/runs.json")?;
    let mut live = None;
    let mut made: Vec<(String, String, PathBuf)> = Vec::new();
    // The bench history first: the runs' measured MFU and hardware fingerprints read it.
    super::demo_efficiency::seed_bench(store, now_ms).await?;
    for r in &runs {
        let started_ms = now_ms - r.started_min_ago * 60_000;
        let id = crate::domain::new_run_id();
        let dir = ws.runs_dir().join(&id);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let new = NewRun {
            id: id.clone(),
            experiment: r.experiment.clone(),
            name: r.name.clone(),
            started_ms,
            host: r.host.clone().unwrap_or_else(|| DEMO_HOST.into()),
            user: "demo".into(),
            pid: None,
            command: r.command.clone(),
            cwd: "/home/demo/project".into(),
            git_commit: Some(r.git_commit.clone()),
            git_branch: Some(r.git_branch.clone()),
            git_dirty: Some(r.git_dirty),
            notes: String::new(),
            run_dir: dir.display().to_string(),
            env: [("CUDA_VISIBLE_DEVICES".to_string(), "0".to_string())].into(),
            gpus: vec![super::demo_efficiency::gpu_of(&r.name).0.into()],
        };
        let run = store.create_run(&new).await?;
        let pairs = |m: &BTreeMap<String, String>| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect::<Vec<_>>()
        };
        store.set_params(&run.id, &pairs(&r.params)).await?;
        store.set_tags(&run.id, &pairs(&r.tags)).await?;
        let text = METRICS
            .iter()
            .find(|(n, _)| *n == r.name)
            .map(|(_, t)| *t)
            .ok_or_else(|| anyhow!("no metrics fixture for demo run {}", r.name))?;
        let mut metrics = String::new();
        let mut log = format!("{}\n", r.command.join(" "));
        let mut last_step = 0;
        for (i, line) in text.lines().enumerate() {
            let rec = parse_line(line)
                .map_err(|e| anyhow!("fixtures/demo/metrics/{}.jsonl:{}: {e}", r.name, i + 1))?;
            let step = rec.step.unwrap_or(i as i64);
            last_step = step;
            let t = started_ms + step * r.step_ms;
            metrics += &with_time(line, t);
            if step % 10 == 0 {
                log += &log_line(step, &rec.metrics);
            }
        }
        std::fs::write(dir.join("metrics.jsonl"), metrics)?;
        let running = r.status == RunStatus::Running;
        // A run of another box whose gantry went silent: it stays running, and shows `lost`.
        let silent = r.heartbeat_min_ago.map(|m| now_ms - m * 60_000);
        match (r.status, r.exit_code) {
            (RunStatus::Failed, Some(c)) => {
                log += &format!("loss is NaN at step {last_step}; exiting with {c}\n")
            }
            (RunStatus::Running, _) => {}
            (s, _) => log += &format!("[{s}]\n"),
        }
        std::fs::write(dir.join("output.log"), log)?;
        let mut tail =
            Tail::open(store, &run.id, SOURCE_METRICS, &dir.join("metrics.jsonl")).await?;
        while tail.step(store, now_ms, !running).await?.more {}
        super::demo_efficiency::seed(
            store,
            &super::demo_efficiency::Made {
                id: &run.id,
                name: &r.name,
                host: r.host.as_deref().unwrap_or(DEMO_HOST),
                started_ms,
                step_ms: r.step_ms,
                last_step,
                params: &r.params,
            },
        )
        .await?;
        super::demo_health::seed_events(
            store,
            &run.id,
            &r.name,
            &dir,
            last_step,
            started_ms + last_step * r.step_ms,
        )
        .await?;
        made.push((r.name.clone(), run.id.clone(), dir.clone()));
        let samples = system_samples(started_ms, last_step * r.step_ms, &r.name);
        let batch: Vec<_> = samples
            .iter()
            .map(|(k, s)| (SeriesKind::System, *k, s))
            .collect();
        store.append(&run.id, &batch).await?;
        if let Some(beat) = silent {
            store.heartbeat(&run.id, beat).await?;
        } else if running {
            live = Some((run.id.clone(), dir));
        } else {
            store
                .finish_run(
                    &run.id,
                    r.status,
                    r.exit_code,
                    started_ms + last_step * r.step_ms,
                )
                .await?;
        }
    }
    super::demo_health::seed(ws, store, now_ms).await?;
    seed_models(ws, store, &made).await?;
    Ok(live)
}

/// Two models made from the demo runs, several versions each, with aliases.
async fn seed_models(
    ws: &Workspace,
    store: &Store,
    runs: &[(String, String, PathBuf)],
) -> Result<()> {
    use crate::registry::{NewVersion, Registry, run_ref};
    const MODELS: [(&str, &[&str]); 2] = [
        (
            "resnet50",
            &["resnet50-baseline", "resnet50-cosine", "resnet50-warmup"],
        ),
        ("gpt2-124m", &["gpt2-124m-lr3e-4", "gpt2-124m-lr6e-4"]),
    ];
    let reg = Registry::open(&ws.dir())?;
    for (model, from) in MODELS {
        for run_name in from {
            let Some((_, id, dir)) = runs.iter().find(|(n, _, _)| n == run_name) else {
                continue;
            };
            // Made-up weights, the same every time: 48 KiB from the run's name.
            let mut seed = run_name.bytes().fold(1469598103934665603u64, |a, b| {
                (a ^ u64::from(b)).wrapping_mul(1099511628211)
            });
            let weights: Vec<u8> = (0..48 * 1024)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed as u8
                })
                .collect();
            std::fs::write(dir.join("model.safetensors"), weights)?;
            std::fs::write(
                dir.join("config.json"),
                format!("{{\"model\": \"{model}\", \"run\": \"{run_name}\"}}\n"),
            )?;
            let files = vec![
                ("config.json".to_string(), dir.join("config.json")),
                (
                    "model.safetensors".to_string(),
                    dir.join("model.safetensors"),
                ),
            ];
            let rr = run_ref(store, id).await?;
            let req = NewVersion {
                name: model.into(),
                files,
                run: Some(rr),
                // The second GPT-2 continues the first's training: its lineage.
                from: (*run_name == "gpt2-124m-lr6e-4").then(|| "gpt2-124m@v1".to_string()),
                notes: format!("from {run_name}"),
                author: "demo".into(),
                hard_link: false,
            };
            crate::registry::register(&ws.dir(), store, req, |_| {}).await?;
        }
    }
    reg.promote(
        "resnet50",
        2,
        "production",
        "best val/acc of the sweep",
        "demo",
    )?;
    reg.promote(
        "resnet50",
        3,
        "staging",
        "warmup run, still training",
        "demo",
    )?;
    reg.promote("gpt2-124m", 1, "production", "lowest val/loss", "demo")?;
    // A team remote beside the workspace (a bare repository and a folder of objects), every
    // version pushed but resnet50's newest, so the Models tab shows each place. Needs `git`.
    if let Err(e) = share(ws, &reg) {
        tracing::info!("demo remote left out: {e:#}");
    }
    Ok(())
}

fn share(ws: &Workspace, reg: &crate::registry::Registry) -> Result<()> {
    let dir = ws.dir().join("demo-remote");
    let mut opts = git2::RepositoryInitOptions::new();
    opts.bare(true).initial_head("main");
    git2::Repository::init_opts(dir.join("models.git"), &opts)?;
    let url = format!("file://{}", dir.join("models.git").display());
    let objects = dir.join("objects").display().to_string();
    reg.add_remote("origin", &url, Some(&objects))?;
    let r = reg.remote(Some("origin"))?;
    for m in reg.models()? {
        for v in reg.versions(&m.name)? {
            if !(v.name == "resnet50" && v.version == m.latest) {
                reg.push(&r, Some(&v), &|_, _| {})?;
            }
        }
    }
    Ok(())
}

/// A training process's look every 5 s: busy CPU, steady memory, a busy GPU. Made up, but the same
/// every time (a small linear congruential generator seeded by the run's name).
fn system_samples(start_ms: i64, span_ms: i64, name: &str) -> Vec<(&'static str, Series)> {
    let mut seed = name
        .bytes()
        .fold(7u64, |a, b| a.wrapping_mul(31).wrapping_add(u64::from(b)));
    let mut noise = move || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) as f64 / (1u64 << 31) as f64
    };
    let n = (span_ms / 5000).clamp(1, 400);
    let mut out: Vec<(&'static str, Series)> = SYSTEM_SHAPE
        .iter()
        .map(|(k, _, _)| (*k, Series::default()))
        .collect();
    for i in 0..n {
        let t = start_ms + i * 5000;
        for (j, (_, base, spread)) in SYSTEM_SHAPE.iter().enumerate() {
            let ramp = if j == 1 || j == 3 {
                (i as f64 / 6.0).min(1.0)
            } else {
                1.0
            };
            out[j].1.push(
                t / 1000,
                t,
                (base * ramp + spread * (noise() - 0.5)).max(0.0),
            );
        }
    }
    out
}

/// (series, level, noise) of the demo's system samples.
const SYSTEM_SHAPE: [(&str, f64, f64); 4] = [
    ("cpu_percent", 96.0, 10.0),
    ("rss_mb", 3400.0, 60.0),
    ("gpu_util_percent", 91.0, 12.0),
    ("gpu_mem_mb", 61000.0, 400.0),
];

/// `{"time": seconds, ...}` from a fixture line, and its newline.
fn with_time(line: &str, t_ms: i64) -> String {
    format!(
        "{{\"time\": {:.3}, {}\n",
        t_ms as f64 / 1000.0,
        &line.trim()[1..]
    )
}

fn log_line(step: i64, metrics: &[(String, f64)]) -> String {
    let parts: Vec<String> = metrics
        .iter()
        .map(|(k, v)| format!("{k}={}", crate::format::compact(*v)))
        .collect();
    format!("step {step:>4}  {}\n", parts.join("  "))
}

/// Replay the rest of the running demo run, a step every half second, through its metrics file and
/// log, as a live training process would; then mark it finished.
pub async fn feed(store: Store, run_id: String, dir: PathBuf) -> Result<()> {
    use std::io::Write;
    let metrics_path = dir.join("metrics.jsonl");
    let mut tail = Tail::open(&store, &run_id, SOURCE_METRICS, &metrics_path).await?;
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(500));
    for line in LIVE.lines() {
        tick.tick().await;
        let now = crate::domain::now_ms();
        let rec = parse_line(line).map_err(|e| anyhow!("fixtures/demo/live: {e}"))?;
        let mut m = std::fs::OpenOptions::new()
            .append(true)
            .open(&metrics_path)?;
        m.write_all(with_time(line, now).as_bytes())?;
        let mut l = std::fs::OpenOptions::new()
            .append(true)
            .open(dir.join("output.log"))?;
        l.write_all(log_line(rec.step.unwrap_or(0), &rec.metrics).as_bytes())?;
        tail.step(&store, now, false).await?;
        let step = rec.step.unwrap_or(0);
        if step % 10 == 0 {
            let samples = system_samples(now, 0, &format!("{run_id}{step}"));
            let batch: Vec<_> = samples
                .iter()
                .map(|(k, s)| (SeriesKind::System, *k, s))
                .collect();
            store.append(&run_id, &batch).await?;
        }
    }
    store
        .finish_run(
            &run_id,
            RunStatus::Finished,
            Some(0),
            crate::domain::now_ms(),
        )
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_recording_takes_the_stand_in_pid() {
        assert_eq!(demo_gpus(None), DEMO_GPUS);
        let text = demo_gpus(Some(4242));
        assert_eq!(text.lines().count(), DEMO_GPUS.lines().count());
        for l in text.lines() {
            let s: crate::gpu::source::GpuSnapshot = serde_json::from_str(l).unwrap();
            assert!(!s.processes.is_empty() && s.processes.iter().all(|p| p.pid == 4242));
        }
    }
}
